//! The stack file as written: serde types, every key optional so that validation names what is missing.
//! Fields are the YAML keys, documented in docs/install.md.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStack {
    pub name: Option<String>,
    pub checks: Option<Vec<String>>,
    pub scheduler: Option<RawScheduler>,
    pub regions: Option<BTreeMap<String, Option<RawRegion>>>,
    pub store: Option<RawStore>,
    pub alerting: Option<RawAlerting>,
    pub kubernetes: Option<RawKubernetes>,
}

/// `scheduler`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScheduler {
    pub host: Option<String>,
    pub listen: Option<String>,
    pub data_dir: Option<String>,
    pub dashboard_url: Option<String>,
    pub replicas: Option<u32>,
    pub store: Option<String>,
    pub store_password: Option<String>,
    pub store_password_secret: Option<String>,
    pub store_ca: Option<String>,
    pub store_ca_secret: Option<String>,
    pub store_listen: Option<String>,
}

/// One entry of `regions`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    pub probers: Option<u32>,
    pub netns: Option<String>,
    pub scheduler_host: Option<String>,
    pub metrics_port: Option<u16>,
    pub kubernetes: Option<RawRegionKubernetes>,
}

/// A region's `kubernetes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegionKubernetes {
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// `store`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    pub kind: Option<String>,
    pub retention: Option<String>,
    pub listen: Option<String>,
}

/// `alerting`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlerting {
    pub vmalert: Option<RawVmalert>,
    pub alertmanager: Option<RawAlertmanager>,
}

/// `alerting.vmalert`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVmalert {
    pub listen: Option<String>,
    pub evaluation_interval: Option<String>,
}

/// `alerting.alertmanager`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAlertmanager {
    pub listen: Option<String>,
    pub receiver: Option<String>,
    pub receivers: Option<BTreeMap<String, RawReceiver>>,
    pub routes: Option<Vec<RawRoute>>,
}

/// One receiver.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub webhook_url: Option<String>,
    pub email: Option<RawEmail>,
}

/// A receiver's `email`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEmail {
    pub to: String,
    pub from: String,
    pub smarthost: String,
}

/// One route.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    #[serde(rename = "match")]
    pub matchers: Option<BTreeMap<String, String>>,
    pub receiver: Option<String>,
    #[serde(rename = "continue")]
    pub continue_matching: Option<bool>,
}

/// `kubernetes`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKubernetes {
    pub context: Option<String>,
    pub namespace: Option<String>,
    pub image: Option<String>,
    pub storage_class: Option<String>,
    pub scheduler_ingress_cidrs: Option<Vec<String>>,
    pub images: Option<RawImages>,
    pub storage: Option<RawStorage>,
    pub replicas: Option<RawReplicas>,
    pub secrets: Option<Vec<RawUserSecret>>,
    pub raw_sockets: Option<bool>,
}

/// One entry of `kubernetes.secrets`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUserSecret {
    pub name: Option<String>,
    #[serde(rename = "as")]
    pub as_: Option<String>,
    #[serde(rename = "for")]
    pub for_: Option<Vec<String>>,
}

/// `kubernetes.images`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawImages {
    pub vmstorage: Option<String>,
    pub vminsert: Option<String>,
    pub vmselect: Option<String>,
    pub vmalert: Option<String>,
    pub alertmanager: Option<String>,
}

/// `kubernetes.storage`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub scheduler: Option<String>,
    pub vmstorage: Option<String>,
    pub alertmanager: Option<String>,
}

/// `kubernetes.replicas`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplicas {
    pub vmstorage: Option<u32>,
    pub vminsert: Option<u32>,
    pub vmselect: Option<u32>,
    pub replication_factor: Option<u32>,
}
