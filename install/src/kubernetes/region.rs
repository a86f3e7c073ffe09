//! A region's cluster: its namespace, the probers' token and CA, the prober deployment and its policy.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{Namespace, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::build::{
    container, container_security, empty_volume, meta, mount, opaque_secret, pod_security, port, probe, resources,
    secret_volume, selector, selector_labels,
};
use super::{CA_SECRET, Cluster, File, Object, PROBER_PORT, Secrets};
use crate::stack::{Loaded, RegionSpec};

/// The secret with a region's prober token (`token`).
pub const TOKEN_SECRET: &str = "probenet-prober-token";

pub(super) fn cluster(loaded: &Loaded, region: &str, spec: &RegionSpec, secrets: &Secrets) -> Cluster {
    let stack = &loaded.stack;
    let ns = spec.namespace.as_str();
    let secret =
        |name: &str, data: BTreeMap<String, String>| Object::Secret(opaque_secret(name, ns, &stack.name, data));
    let token = secrets.tokens.get(region).cloned().unwrap_or_default();
    let mut private = vec![secret(TOKEN_SECRET, BTreeMap::from([("token".to_owned(), token)]))];
    if let Some(tls) = &secrets.tls {
        private.push(secret(CA_SECRET, BTreeMap::from([("ca.crt".to_owned(), tls.ca_pem.clone())])));
    }

    let kinds: Vec<&str> = loaded.config.checks.iter().map(|check| check.kind.key()).collect();
    let args = vec![
        "prober".to_owned(),
        "--scheduler".to_owned(),
        stack.scheduler.url_for(spec),
        "--region".to_owned(),
        region.to_owned(),
        "--token-file".to_owned(),
        "/etc/probenet/token/token".to_owned(),
        "--ca".to_owned(),
        "/etc/probenet/ca/ca.crt".to_owned(),
        "--spool".to_owned(),
        "/var/spool/probenet".to_owned(),
        "--metrics-listen".to_owned(),
        format!("0.0.0.0:{PROBER_PORT}"),
    ];
    let mut c = container("prober", &stack.kubernetes.image, args, vec![port("metrics", PROBER_PORT)]);
    c.liveness_probe = Some(probe("/healthz", "metrics", false, 30));
    c.readiness_probe = Some(probe("/healthz", "metrics", false, 5));
    c.resources = Some(if kinds.contains(&"browser") {
        resources(("500m", "1Gi"), ("2", "2Gi"))
    } else {
        resources(("100m", "128Mi"), ("1", "512Mi"))
    });
    if kinds.contains(&"icmp") {
        c.security_context = Some(container_security(&["NET_RAW"]));
    }
    c.volume_mounts = Some(vec![
        mount("token", "/etc/probenet/token", true),
        mount("ca", "/etc/probenet/ca", true),
        mount("spool", "/var/spool/probenet", false),
        mount("tmp", "/tmp", false),
    ]);
    let volumes = vec![
        secret_volume("token", TOKEN_SECRET),
        secret_volume("ca", CA_SECRET),
        empty_volume("spool"),
        empty_volume("tmp"),
    ];
    let name = format!("probenet-prober-{region}");
    let deployment = Deployment {
        metadata: meta(&name, Some(ns), &stack.name, "prober"),
        spec: Some(DeploymentSpec {
            replicas: Some(spec.probers as i32),
            selector: selector(&stack.name, "prober"),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels(&stack.name, "prober")),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![c],
                    volumes: Some(volumes),
                    security_context: Some(pod_security()),
                    automount_service_account_token: Some(false),
                    // Each prober's work is handed back on SIGTERM: give it time to flush.
                    termination_grace_period_seconds: Some(60),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    };
    Cluster {
        dir: format!("region-{region}"),
        context: spec.context.clone(),
        files: vec![
            File {
                name: "00-namespace.yaml".to_owned(),
                objects: vec![Object::Namespace(Namespace {
                    metadata: meta(ns, None, &stack.name, "namespace"),
                    ..Namespace::default()
                })],
            },
            File { name: "01-secrets.yaml".to_owned(), objects: private },
            File { name: "10-prober.yaml".to_owned(), objects: vec![Object::Deployment(deployment)] },
            File { name: "40-network-policies.yaml".to_owned(), objects: super::policy::region(stack, ns) },
        ],
    }
}
