//! The central cluster: namespace, secrets, config, the VictoriaMetrics cluster, vmalert, Alertmanager and
//! the scheduler.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec, StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::build::{
    claim, config_volume, container, disruption_budget, empty_volume, env_from_field, meta, mount, namespace,
    opaque_secret, pod_security, port, probe, resources, secret_volume, selector, selector_labels, service,
    spread_over_nodes, tcp_probe, user_secrets,
};
use super::{
    ALERTMANAGER_PORT, Cluster, File, Kustomization, Object, Secrets, TLS_SECRET, VMALERT_PORT, VMINSERT_PORT,
    VMSELECT_PORT, VMSTORAGE_HTTP_PORT, VMSTORAGE_INSERT_PORT, VMSTORAGE_SELECT_PORT,
};
use crate::layout::STORE_USER;
use crate::stack::{Loaded, SchedulerStore, SecretSource, Stack, StoreKind};

/// The secret with the scheduler's `tokens.json`.
pub const TOKENS_SECRET: &str = "probenet-scheduler-tokens";
/// The secret with the store's password (`password`).
pub const STORE_SECRET: &str = "probenet-store";
/// The secret with Alertmanager's configuration.
pub const ALERTMANAGER_SECRET: &str = "alertmanager-config";
/// The secret with the dashboard's read token (`token`).
pub const DASHBOARD_SECRET: &str = "probenet-dashboard";
/// Where the scheduler reads the dashboard token.
pub const DASHBOARD_TOKEN_FILE: &str = "/etc/probenet/dashboard/token";
/// The secret with the PostgreSQL password (`password`), when the stack names a file for it.
pub const POSTGRES_SECRET: &str = "probenet-postgres";
/// The secret with the PostgreSQL server's CA (`ca.crt`), when the stack names a file for it.
pub const POSTGRES_CA_SECRET: &str = "probenet-postgres-ca";
/// The annotation of pod templates with the checksum of their config and secrets: a change rolls the pods.
pub const CHECKSUM_ANNOTATION: &str = "probenet.io/config-checksum";

pub(super) fn cluster(loaded: &Loaded, secrets: &Secrets) -> Cluster {
    let stack = &loaded.stack;
    let ns = stack.kubernetes.namespace.as_str();
    let with_store = stack.store.kind == StoreKind::VictoriaMetrics;
    let mut files = vec![File {
        name: "00-namespace.yaml".to_owned(),
        // Every central pod meets the `restricted` profile.
        objects: vec![Object::Namespace(namespace(ns, &stack.name, "restricted"))],
    }];
    let secret =
        |name: &str, data: BTreeMap<String, String>| Object::Secret(opaque_secret(name, ns, &stack.name, data));
    let mut private = vec![secret(TOKENS_SECRET, BTreeMap::from([("tokens.json".to_owned(), secrets.tokens_json())]))];
    if with_store {
        private.push(secret(STORE_SECRET, BTreeMap::from([("password".to_owned(), secrets.store_password.clone())])));
    }
    private.push(secret(DASHBOARD_SECRET, BTreeMap::from([("token".to_owned(), secrets.dashboard_token.clone())])));
    if let Some(password) = &secrets.postgres_password {
        private.push(secret(POSTGRES_SECRET, BTreeMap::from([("password".to_owned(), password.clone())])));
    }
    if let Some(ca) = &secrets.postgres_ca {
        private.push(secret(POSTGRES_CA_SECRET, BTreeMap::from([("ca.crt".to_owned(), ca.clone())])));
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
    let mut stack_files = BTreeMap::new();
    if with_store {
        let url = format!("http://vminsert.{ns}.svc:{VMINSERT_PORT}/insert/0/prometheus/api/v1/write");
        let text = crate::files::remote_write(&url, None, "/etc/probenet/secrets/password");
        stack_files.insert("remote-write.yaml".to_owned(), text);
    }
    if crate::files::dashboard_token_added(loaded) {
        let text = format!(
            "# The dashboard's read token: the Secret {DASHBOARD_SECRET} (its value is in the output directory's \
             secrets/dashboard.token).\ndashboard:\n  token: ${{file:{DASHBOARD_TOKEN_FILE}}}\n"
        );
        stack_files.insert("dashboard.yaml".to_owned(), text);
    }
    if !stack_files.is_empty() {
        config.push(config_map("probenet-stack", stack_files));
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
    files.push(File { name: "30-scheduler.yaml".to_owned(), objects: scheduler(loaded) });
    files.push(File { name: "40-network-policies.yaml".to_owned(), objects: super::policy::central(stack) });
    // The scheduler re-reads tokens.json by itself: a new token needs no restart.
    super::annotate_checksums(&mut files, &[TOKENS_SECRET]);
    let objects = files.iter().flat_map(|file| file.objects.clone()).collect();
    let kustomization = Kustomization {
        namespace: None,
        resources: files.iter().map(|file| file.name.clone()).collect(),
        patches: Vec::new(),
    };
    Cluster { dir: "central".to_owned(), context: stack.kubernetes.context.clone(), files, kustomization, objects }
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

/// Where VictoriaMetrics components mount the store secret.
const STORE_SECRET_DIR: &str = "/etc/victoriametrics/secrets";

/// Basic auth on a VictoriaMetrics component's HTTP port: its password read from the store secret's file
/// (never in an argument or the environment).
fn with_store_auth(mut container: Container, args: &mut Vec<String>, volumes: &mut Vec<Volume>) -> Container {
    args.extend([
        format!("-httpAuth.username={STORE_USER}"),
        format!("-httpAuth.password=file://{STORE_SECRET_DIR}/password"),
    ]);
    container.args = Some(args.clone());
    container.volume_mounts.get_or_insert_with(Vec::new).push(mount("store-auth", STORE_SECRET_DIR, true));
    volumes.push(secret_volume("store-auth", STORE_SECRET));
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
    let mut template = pod(stack, "vmstorage", vec![c], vec![]);
    if let Some(spec) = template.spec.as_mut() {
        spec.affinity = Some(spread_over_nodes(&stack.name, "vmstorage"));
    }
    objects.push(stateful_set(stack, "vmstorage", k.replicas.vmstorage, template, &k.storage.vmstorage));
    // A drain may take down the copies but one of each sample: replicationFactor - 1 nodes (one at least).
    let unavailable = i32::try_from(k.replicas.replication_factor.saturating_sub(1).max(1)).unwrap_or(1);
    objects.push(Object::PodDisruptionBudget(disruption_budget(
        "vmstorage",
        ns,
        &stack.name,
        "vmstorage",
        None,
        Some(unavailable),
    )));

    for (name, image, port_number, node_port, replicas, memory) in [
        ("vminsert", &k.images.vminsert, VMINSERT_PORT, VMSTORAGE_INSERT_PORT, k.replicas.vminsert, ("256Mi", "1Gi")),
        ("vmselect", &k.images.vmselect, VMSELECT_PORT, VMSTORAGE_SELECT_PORT, k.replicas.vmselect, ("512Mi", "2Gi")),
    ] {
        let mut args = vec![
            format!("-httpListenAddr=:{port_number}"),
            format!("-storageNode={}", nodes(node_port)),
            format!("-replicationFactor={}", k.replicas.replication_factor),
        ];
        let c = container(name, image, args.clone(), vec![port("http", port_number)]);
        let mut volumes = Vec::new();
        let mut c = with_probes(with_store_auth(c, &mut args, &mut volumes), "/health", "http", false);
        c.resources = Some(resources(("200m", memory.0), ("1", memory.1)));
        if name == "vmselect" {
            // vmselect keeps a query cache: its root file system is read-only.
            c.args.get_or_insert_with(Vec::new).push("-cacheDataPath=/cache".to_owned());
            c.volume_mounts.get_or_insert_with(Vec::new).push(mount("cache", "/cache", false));
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
    let mut c = container("vmalert", &k.images.vmalert, args.clone(), vec![port("http", VMALERT_PORT)]);
    c.volume_mounts =
        Some(vec![mount("rules", "/etc/vmalert/rules", true), mount("store", "/etc/vmalert/secrets", true)]);
    let mut volumes = vec![config_volume("rules", "vmalert-rules"), secret_volume("store", STORE_SECRET)];
    let mut c = with_probes(with_store_auth(c, &mut args, &mut volumes), "/health", "http", false);
    c.resources = Some(resources(("100m", "128Mi"), ("500m", "512Mi")));
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

/// The scheduler's name inside the cluster (its ClusterIP Service), in its certificate.
pub fn scheduler_service_host(namespace: &str) -> String {
    format!("probenet-scheduler.{namespace}.svc")
}

/// Where the scheduler's pods mount the secret with `tokens.json` (a directory: a `subPath` mount never updates).
const TOKENS_DIR: &str = "/etc/probenet/tokens";
/// The scheduler's data directory in its pods.
const DATA_DIR: &str = "/var/lib/probenet";

fn scheduler(loaded: &Loaded) -> Vec<Object> {
    let stack = &loaded.stack;
    let k = &stack.kubernetes;
    let ns = k.namespace.as_str();
    let with_store = stack.store.kind == StoreKind::VictoriaMetrics;
    let with_stack_config = with_store || crate::files::dashboard_token_added(loaded);
    let scheduler_port = super::scheduler_port(stack);
    let mut args = vec!["scheduler".to_owned(), "-c".to_owned(), "/etc/probenet/checks".to_owned()];
    if with_stack_config {
        args.extend(["-c".to_owned(), "/etc/probenet/stack.d".to_owned()]);
    }
    args.extend([
        "--listen".to_owned(),
        format!("0.0.0.0:{scheduler_port}"),
        "--data".to_owned(),
        DATA_DIR.to_owned(),
        "--tls-cert".to_owned(),
        "/etc/probenet/tls/tls.crt".to_owned(),
        "--tls-key".to_owned(),
        "/etc/probenet/tls/tls.key".to_owned(),
        "--dashboard-url".to_owned(),
        stack.scheduler.dashboard_url.clone(),
    ]);
    let mut mounts = vec![
        mount("data", DATA_DIR, false),
        mount("tokens", TOKENS_DIR, true),
        mount("checks", "/etc/probenet/checks", true),
        mount("tls", "/etc/probenet/tls", true),
        mount("dashboard", "/etc/probenet/dashboard", true),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        secret_volume("tokens", TOKENS_SECRET),
        config_volume("checks", "probenet-checks"),
        secret_volume("tls", TLS_SECRET),
        secret_volume("dashboard", DASHBOARD_SECRET),
        empty_volume("tmp"),
    ];
    if with_stack_config {
        mounts.push(mount("stack", "/etc/probenet/stack.d", true));
        volumes.push(config_volume("stack", "probenet-stack"));
    }
    if with_store {
        mounts.push(mount("store", "/etc/probenet/secrets", true));
        volumes.push(secret_volume("store", STORE_SECRET));
    }
    let postgres = match &stack.scheduler.store {
        SchedulerStore::Postgres(store) => Some(store),
        SchedulerStore::Embedded | SchedulerStore::Local { .. } => None,
    };
    let mut env = Vec::new();
    if let Some(store) = postgres {
        args.extend([
            "--store".to_owned(),
            store.url.clone(),
            "--store-password-file".to_owned(),
            "/etc/probenet/postgres/password".to_owned(),
            "--replica-name".to_owned(),
            "$(POD_NAME)".to_owned(),
            "--advertise-url".to_owned(),
            format!("https://$(POD_IP):{scheduler_port}"),
        ]);
        if loaded.config.objects.is_none() {
            // Without a bucket, the replicas share artifacts through the database.
            args.push("--artifacts-in-database".to_owned());
        }
        let password_secret = match &store.password {
            SecretSource::KubernetesSecret(name) => name.clone(),
            SecretSource::File(_) => POSTGRES_SECRET.to_owned(),
        };
        mounts.push(mount("postgres", "/etc/probenet/postgres", true));
        volumes.push(secret_volume("postgres", &password_secret));
        if let Some(ca) = &store.ca {
            args.extend(["--store-ca".to_owned(), "/etc/probenet/postgres-ca/ca.crt".to_owned()]);
            let ca_secret = match ca {
                SecretSource::KubernetesSecret(name) => name.clone(),
                SecretSource::File(_) => POSTGRES_CA_SECRET.to_owned(),
            };
            mounts.push(mount("postgres-ca", "/etc/probenet/postgres-ca", true));
            volumes.push(secret_volume("postgres-ca", &ca_secret));
        }
        env.push(env_from_field("POD_NAME", "metadata.name"));
        env.push(env_from_field("POD_IP", "status.podIP"));
    }
    let (env_from, user_volumes, user_mounts) = user_secrets(&k.secrets, true);
    mounts.extend(user_mounts);
    volumes.extend(user_volumes);
    let mut c = container("scheduler", &k.image, args, vec![port("https", scheduler_port)]);
    // Ready while it serves (a replica answers 503 while its database does not); alive while it listens: a
    // database outage must not restart every replica.
    c.readiness_probe = Some(probe("/healthz", "https", true, 5));
    c.liveness_probe =
        Some(if postgres.is_some() { tcp_probe("https", 30) } else { probe("/healthz", "https", true, 30) });
    c.resources = Some(resources(("200m", "256Mi"), ("1", "1Gi")));
    c.volume_mounts = Some(mounts);
    c.env = (!env.is_empty()).then_some(env);
    c.env_from = (!env_from.is_empty()).then_some(env_from);

    // The scheduler reads DATA/tokens.json: a link to the Secret's file follows every update of the Secret.
    let mut link = container("tokens-link", &k.image, Vec::new(), Vec::new());
    link.command = Some(vec![
        "/bin/ln".to_owned(),
        "-sfn".to_owned(),
        format!("{TOKENS_DIR}/tokens.json"),
        format!("{DATA_DIR}/tokens.json"),
    ]);
    link.args = None;
    link.ports = None;
    link.resources = Some(resources(("10m", "16Mi"), ("100m", "64Mi")));
    link.volume_mounts = Some(vec![mount("data", DATA_DIR, false)]);

    let mut template = pod(stack, "scheduler", vec![c], volumes);
    if let Some(spec) = template.spec.as_mut() {
        spec.init_containers = Some(vec![link]);
        if scheduler_port < 1024 {
            // A port below 1024 for uid 65534 (no capability reaches a non-root process): a safe sysctl.
            spec.security_context.get_or_insert_with(Default::default).sysctls =
                Some(vec![k8s_openapi::api::core::v1::Sysctl {
                    name: "net.ipv4.ip_unprivileged_port_start".to_owned(),
                    value: "0".to_owned(),
                }]);
        }
    }

    let name = "probenet-scheduler";
    let mut objects =
        vec![Object::Service(service(name, ns, &stack.name, "scheduler", &[("https", scheduler_port)], None, false))];
    if !k.scheduler_ingress_cidrs.is_empty() {
        // Probers of other clusters and users come through the load balancer: `Local` keeps their source
        // address (the network policy's ipBlock sees it), and the load balancer admits only the same ranges.
        let mut public = service(
            PUBLIC_SERVICE,
            ns,
            &stack.name,
            "scheduler",
            &[("https", scheduler_port)],
            Some("LoadBalancer"),
            false,
        );
        if let Some(spec) = public.spec.as_mut() {
            spec.external_traffic_policy = Some("Local".to_owned());
            spec.load_balancer_source_ranges = Some(k.scheduler_ingress_cidrs.clone());
        }
        objects.push(Object::Service(public));
    }
    let replicas = i32::try_from(stack.scheduler.replicas).unwrap_or(1);
    match postgres {
        None => objects.push(Object::StatefulSet(StatefulSet {
            metadata: meta(name, Some(ns), &stack.name, "scheduler"),
            spec: Some(StatefulSetSpec {
                replicas: Some(1),
                service_name: Some(name.to_owned()),
                selector: selector(&stack.name, "scheduler"),
                template,
                volume_claim_templates: Some(vec![claim("data", &k.storage.scheduler, k.storage_class.as_deref())]),
                ..StatefulSetSpec::default()
            }),
            ..StatefulSet::default()
        })),
        Some(_) => {
            // Every replica's state is in PostgreSQL: the data directory is scratch (the tokens link).
            if let Some(spec) = template.spec.as_mut() {
                spec.volumes.get_or_insert_with(Vec::new).push(empty_volume("data"));
                if replicas > 1 {
                    spec.affinity = Some(spread_over_nodes(&stack.name, "scheduler"));
                }
            }
            objects.push(Object::Deployment(Deployment {
                metadata: meta(name, Some(ns), &stack.name, "scheduler"),
                spec: Some(DeploymentSpec {
                    replicas: Some(replicas),
                    selector: selector(&stack.name, "scheduler"),
                    template,
                    ..DeploymentSpec::default()
                }),
                ..Deployment::default()
            }));
            if replicas > 1 {
                objects.push(Object::PodDisruptionBudget(disruption_budget(
                    name,
                    ns,
                    &stack.name,
                    "scheduler",
                    Some(replicas - 1),
                    None,
                )));
            }
        }
    }
    objects
}

/// The scheduler's Service for other clusters and users (a load balancer), when the stack lists the addresses
/// allowed in (`kubernetes.scheduler_ingress_cidrs`).
pub const PUBLIC_SERVICE: &str = "probenet-scheduler-public";
