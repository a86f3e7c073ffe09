//! The central cluster: namespace, secrets, config, the VictoriaMetrics cluster, vmalert, Alertmanager and
//! the scheduler.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, PodTemplateSpec, Volume, VolumeMount};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::build::{
    claim, config_volume, container, empty_volume, env_from_secret, meta, mount, opaque_secret, pod_security, port,
    probe, resources, secret_volume, selector, selector_labels, service,
};
use super::{
    ALERTMANAGER_PORT, Cluster, File, Object, Secrets, TLS_SECRET, VMALERT_PORT, VMINSERT_PORT, VMSELECT_PORT,
    VMSTORAGE_HTTP_PORT, VMSTORAGE_INSERT_PORT, VMSTORAGE_SELECT_PORT,
};
use crate::layout::STORE_USER;
use crate::stack::{Loaded, Stack, StoreKind};

/// The secret with the scheduler's `tokens.json`.
pub const TOKENS_SECRET: &str = "probenet-scheduler-tokens";
/// The secret with the store's password (`password`).
pub const STORE_SECRET: &str = "probenet-store";
/// The secret with Alertmanager's configuration.
pub const ALERTMANAGER_SECRET: &str = "alertmanager-config";

pub(super) fn cluster(loaded: &Loaded, secrets: &Secrets) -> Cluster {
    let stack = &loaded.stack;
    let ns = stack.kubernetes.namespace.as_str();
    let with_store = stack.store.kind == StoreKind::VictoriaMetrics;
    let mut files = vec![File {
        name: "00-namespace.yaml".to_owned(),
        objects: vec![Object::Namespace(Namespace {
            metadata: meta(ns, None, &stack.name, "namespace"),
            ..Namespace::default()
        })],
    }];
    let secret =
        |name: &str, data: BTreeMap<String, String>| Object::Secret(opaque_secret(name, ns, &stack.name, data));
    let mut private = vec![secret(TOKENS_SECRET, BTreeMap::from([("tokens.json".to_owned(), secrets.tokens_json())]))];
    if with_store {
        private.push(secret(STORE_SECRET, BTreeMap::from([("password".to_owned(), secrets.store_password.clone())])));
    }
    if let Some(alerting) = &stack.alerting {
        let config = crate::files::alertmanager(alerting);
        private.push(secret(ALERTMANAGER_SECRET, BTreeMap::from([("alertmanager.yml".to_owned(), config)])));
    }
    if let Some(tls) = &secrets.tls {
        private.push(secret(
            TLS_SECRET,
            BTreeMap::from([
                ("tls.crt".to_owned(), tls.cert_pem.clone()),
                ("tls.key".to_owned(), tls.key_pem.clone()),
                ("ca.crt".to_owned(), tls.ca_pem.clone()),
            ]),
        ));
    }
    files.push(File { name: "01-secrets.yaml".to_owned(), objects: private });

    let config_map = |name: &str, data: BTreeMap<String, String>| {
        Object::ConfigMap(ConfigMap {
            metadata: meta(name, Some(ns), &stack.name, "config"),
            data: Some(data),
            ..ConfigMap::default()
        })
    };
    let checks = loaded
        .sources
        .iter()
        .enumerate()
        .map(|(index, source)| (config_key(&crate::files::deployed_name(index, &source.name)), source.text.clone()))
        .collect();
    let mut config = vec![config_map("probenet-checks", checks)];
    if with_store {
        let url = format!("http://vminsert.{ns}.svc:{VMINSERT_PORT}/insert/0/prometheus/api/v1/write");
        let text = crate::files::remote_write(&url, None, "/etc/probenet/secrets/password");
        config.push(config_map("probenet-stack", BTreeMap::from([("remote-write.yaml".to_owned(), text)])));
    }
    if stack.alerting.is_some() {
        let rules = probenet_alerting::export::prometheus_rules(&loaded.config);
        config.push(config_map("vmalert-rules", BTreeMap::from([("rules.yaml".to_owned(), rules)])));
    }
    files.push(File { name: "02-config.yaml".to_owned(), objects: config });

    if with_store {
        files.push(File { name: "10-store.yaml".to_owned(), objects: store(stack) });
    }
    if stack.alerting.is_some() {
        files.push(File { name: "20-alerting.yaml".to_owned(), objects: alerting(stack) });
    }
    files.push(File { name: "30-scheduler.yaml".to_owned(), objects: scheduler(stack) });
    files.push(File { name: "40-network-policies.yaml".to_owned(), objects: super::policy::central(stack) });
    Cluster { dir: "central".to_owned(), context: stack.kubernetes.context.clone(), files }
}

/// A config map key (`[-._a-zA-Z0-9]`) made of a file name.
fn config_key(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') { c } else { '_' }).collect()
}

fn pod(stack: &Stack, component: &str, containers: Vec<Container>, volumes: Vec<Volume>) -> PodTemplateSpec {
    PodTemplateSpec {
        metadata: Some(ObjectMeta { labels: Some(selector_labels(&stack.name, component)), ..ObjectMeta::default() }),
        spec: Some(PodSpec {
            containers,
            volumes: (!volumes.is_empty()).then_some(volumes),
            security_context: Some(pod_security()),
            automount_service_account_token: Some(false),
            ..PodSpec::default()
        }),
    }
}

fn deployment(stack: &Stack, name: &str, replicas: u32, template: PodTemplateSpec) -> Object {
    Object::Deployment(Deployment {
        metadata: meta(name, Some(&stack.kubernetes.namespace), &stack.name, name),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: selector(&stack.name, name),
            template,
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    })
}

fn stateful_set(stack: &Stack, name: &str, replicas: u32, template: PodTemplateSpec, claim_size: &str) -> Object {
    Object::StatefulSet(StatefulSet {
        metadata: meta(name, Some(&stack.kubernetes.namespace), &stack.name, name),
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas as i32),
            service_name: Some(name.to_owned()),
            selector: selector(&stack.name, name),
            template,
            volume_claim_templates: Some(vec![claim("data", claim_size, stack.kubernetes.storage_class.as_deref())]),
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    })
}

fn with_probes(mut container: Container, path: &str, port: &str, https: bool) -> Container {
    container.liveness_probe = Some(probe(path, port, https, 30));
    container.readiness_probe = Some(probe(path, port, https, 5));
    container
}

/// Basic auth on a VictoriaMetrics component's HTTP port: its password from the store secret.
fn with_store_auth(mut container: Container, args: &mut Vec<String>) -> Container {
    args.extend(["-envflag.enable".to_owned(), format!("-httpAuth.username={STORE_USER}")]);
    container.args = Some(args.clone());
    container.env = Some(vec![env_from_secret("httpAuth_password", STORE_SECRET, "password")]);
    container
}

fn store(stack: &Stack) -> Vec<Object> {
    let k = &stack.kubernetes;
    let ns = k.namespace.as_str();
    let mut objects = Vec::new();
    let nodes = |port: i32| {
        (0..k.replicas.vmstorage)
            .map(|i| format!("vmstorage-{i}.vmstorage.{ns}.svc:{port}"))
            .collect::<Vec<_>>()
            .join(",")
    };

    let args = vec![
        "-storageDataPath=/storage".to_owned(),
        format!("-retentionPeriod={}d", stack.store.retention_days()),
        format!("-httpListenAddr=:{VMSTORAGE_HTTP_PORT}"),
        format!("-vminsertAddr=:{VMSTORAGE_INSERT_PORT}"),
        format!("-vmselectAddr=:{VMSTORAGE_SELECT_PORT}"),
    ];
    let ports = vec![
        port("http", VMSTORAGE_HTTP_PORT),
        port("vminsert", VMSTORAGE_INSERT_PORT),
        port("vmselect", VMSTORAGE_SELECT_PORT),
    ];
    let mut c = with_probes(container("vmstorage", &k.images.vmstorage, args, ports), "/health", "http", false);
    c.resources = Some(resources(("500m", "1Gi"), ("2", "4Gi")));
    c.volume_mounts = Some(vec![mount("data", "/storage", false)]);
    objects.push(Object::Service(service(
        "vmstorage",
        ns,
        &stack.name,
        "vmstorage",
        &[("http", VMSTORAGE_HTTP_PORT), ("vminsert", VMSTORAGE_INSERT_PORT), ("vmselect", VMSTORAGE_SELECT_PORT)],
        None,
        true,
    )));
    objects.push(stateful_set(
        stack,
        "vmstorage",
        k.replicas.vmstorage,
        pod(stack, "vmstorage", vec![c], vec![]),
        &k.storage.vmstorage,
    ));

    for (name, image, port_number, node_port, replicas, memory) in [
        ("vminsert", &k.images.vminsert, VMINSERT_PORT, VMSTORAGE_INSERT_PORT, k.replicas.vminsert, ("256Mi", "1Gi")),
        ("vmselect", &k.images.vmselect, VMSELECT_PORT, VMSTORAGE_SELECT_PORT, k.replicas.vmselect, ("512Mi", "2Gi")),
    ] {
        let mut args = vec![format!("-httpListenAddr=:{port_number}"), format!("-storageNode={}", nodes(node_port))];
        let c = container(name, image, args.clone(), vec![port("http", port_number)]);
        let mut c = with_probes(with_store_auth(c, &mut args), "/health", "http", false);
        c.resources = Some(resources(("200m", memory.0), ("1", memory.1)));
        let mut volumes = Vec::new();
        if name == "vmselect" {
            // vmselect keeps a query cache: its root file system is read-only.
            c.args.get_or_insert_with(Vec::new).push("-cacheDataPath=/cache".to_owned());
            c.volume_mounts = Some(vec![mount("cache", "/cache", false)]);
            volumes.push(empty_volume("cache"));
        }
        objects.push(Object::Service(service(name, ns, &stack.name, name, &[("http", port_number)], None, false)));
        objects.push(deployment(stack, name, replicas, pod(stack, name, vec![c], volumes)));
    }
    objects
}

fn alerting(stack: &Stack) -> Vec<Object> {
    let k = &stack.kubernetes;
    let ns = k.namespace.as_str();
    let Some(alerting) = &stack.alerting else {
        return Vec::new();
    };
    let mut objects = Vec::new();
    let args = vec![
        "--config.file=/etc/alertmanager/alertmanager.yml".to_owned(),
        "--storage.path=/alertmanager".to_owned(),
        format!("--web.listen-address=:{ALERTMANAGER_PORT}"),
        "--cluster.listen-address=".to_owned(),
    ];
    let mut c = container("alertmanager", &k.images.alertmanager, args, vec![port("http", ALERTMANAGER_PORT)]);
    c.liveness_probe = Some(probe("/-/healthy", "http", false, 30));
    c.readiness_probe = Some(probe("/-/ready", "http", false, 5));
    c.resources = Some(resources(("50m", "64Mi"), ("200m", "256Mi")));
    c.volume_mounts = Some(vec![mount("config", "/etc/alertmanager", true), mount("data", "/alertmanager", false)]);
    let volumes = vec![secret_volume("config", ALERTMANAGER_SECRET)];
    objects.push(Object::Service(service(
        "alertmanager",
        ns,
        &stack.name,
        "alertmanager",
        &[("http", ALERTMANAGER_PORT)],
        None,
        false,
    )));
    objects.push(stateful_set(
        stack,
        "alertmanager",
        1,
        pod(stack, "alertmanager", vec![c], volumes),
        &k.storage.alertmanager,
    ));

    let select = format!("http://vmselect.{ns}.svc:{VMSELECT_PORT}/select/0/prometheus");
    let insert = format!("http://vminsert.{ns}.svc:{VMINSERT_PORT}/insert/0/prometheus");
    let mut args = vec![
        "-rule=/etc/vmalert/rules/rules.yaml".to_owned(),
        format!("-evaluationInterval={}s", alerting.evaluation_interval.as_secs().max(1)),
        format!("-httpListenAddr=:{VMALERT_PORT}"),
        format!("-notifier.url=http://alertmanager.{ns}.svc:{ALERTMANAGER_PORT}"),
    ];
    for (flag, url) in [("datasource", &select), ("remoteRead", &select), ("remoteWrite", &insert)] {
        args.push(format!("-{flag}.url={url}"));
        args.push(format!("-{flag}.basicAuth.username={STORE_USER}"));
        args.push(format!("-{flag}.basicAuth.passwordFile=/etc/vmalert/secrets/password"));
    }
    let c = container("vmalert", &k.images.vmalert, args.clone(), vec![port("http", VMALERT_PORT)]);
    let mut c = with_probes(with_store_auth(c, &mut args), "/health", "http", false);
    c.resources = Some(resources(("100m", "128Mi"), ("500m", "512Mi")));
    c.volume_mounts =
        Some(vec![mount("rules", "/etc/vmalert/rules", true), mount("store", "/etc/vmalert/secrets", true)]);
    let volumes = vec![config_volume("rules", "vmalert-rules"), secret_volume("store", STORE_SECRET)];
    objects.push(Object::Service(service(
        "vmalert",
        ns,
        &stack.name,
        "vmalert",
        &[("http", VMALERT_PORT)],
        None,
        false,
    )));
    objects.push(deployment(stack, "vmalert", 1, pod(stack, "vmalert", vec![c], volumes)));
    objects
}

fn scheduler(stack: &Stack) -> Vec<Object> {
    let k = &stack.kubernetes;
    let ns = k.namespace.as_str();
    let with_store = stack.store.kind == StoreKind::VictoriaMetrics;
    let scheduler_port = super::scheduler_port(stack);
    let mut args = vec!["scheduler".to_owned(), "-c".to_owned(), "/etc/probenet/checks".to_owned()];
    if with_store {
        args.extend(["-c".to_owned(), "/etc/probenet/stack.d".to_owned()]);
    }
    args.extend([
        "--listen".to_owned(),
        format!("0.0.0.0:{scheduler_port}"),
        "--data".to_owned(),
        "/var/lib/probenet".to_owned(),
        "--tls-cert".to_owned(),
        "/etc/probenet/tls/tls.crt".to_owned(),
        "--tls-key".to_owned(),
        "/etc/probenet/tls/tls.key".to_owned(),
        "--dashboard-url".to_owned(),
        stack.scheduler.dashboard_url.clone(),
    ]);
    let c = container("scheduler", &k.image, args, vec![port("https", scheduler_port)]);
    let mut c = with_probes(c, "/healthz", "https", true);
    c.resources = Some(resources(("200m", "256Mi"), ("1", "1Gi")));
    let mut mounts = vec![
        mount("data", "/var/lib/probenet", false),
        VolumeMount {
            sub_path: Some("tokens.json".to_owned()),
            ..mount("tokens", "/var/lib/probenet/tokens.json", true)
        },
        mount("checks", "/etc/probenet/checks", true),
        mount("tls", "/etc/probenet/tls", true),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        secret_volume("tokens", TOKENS_SECRET),
        config_volume("checks", "probenet-checks"),
        secret_volume("tls", TLS_SECRET),
        empty_volume("tmp"),
    ];
    if with_store {
        mounts.push(mount("stack", "/etc/probenet/stack.d", true));
        mounts.push(mount("store", "/etc/probenet/secrets", true));
        volumes.push(config_volume("stack", "probenet-stack"));
        volumes.push(secret_volume("store", STORE_SECRET));
    }
    c.volume_mounts = Some(mounts);
    let name = "probenet-scheduler";
    vec![
        Object::Service(service(
            name,
            ns,
            &stack.name,
            "scheduler",
            &[("https", scheduler_port)],
            Some("LoadBalancer"),
            false,
        )),
        Object::StatefulSet(StatefulSet {
            metadata: meta(name, Some(ns), &stack.name, "scheduler"),
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(name.to_owned()),
                selector: selector(&stack.name, "scheduler"),
                template: pod(stack, "scheduler", vec![c], volumes),
                volume_claim_templates: Some(vec![claim("data", &k.storage.scheduler, k.storage_class.as_deref())]),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        }),
    ]
}
