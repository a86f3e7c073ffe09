//! The probers: one Kustomize base (`base/prober/`: the prober Deployment and the namespace's default-deny
//! policy, the same in every region) and one overlay per region (`regions/NAME/`: its namespace, its token and CA,
//! the config map naming its region and scheduler URL, and a patch with its Deployment's name, replicas and
//! config checksum).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{ConfigMap, PodSecurityContext, PodSpec, PodTemplateSpec, Sysctl};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::json;

use super::build::{
    container, container_security, empty_volume, env_from_config, meta, mount, namespace, opaque_secret, pod_security,
    port, probe, resources, secret_volume, selector, selector_labels, user_secrets,
};
use super::central::{CHECKSUM_ANNOTATION, scheduler_service_host};
use super::{CA_SECRET, Cluster, File, Kustomization, Object, PROBER_PORT, Patch, Secrets};
use crate::stack::{Loaded, RegionSpec, Stack};

/// The secret with a region's prober token (`token`).
pub const TOKEN_SECRET: &str = "probenet-prober-token";
/// The base's prober Deployment, and each region's config map (`region`, `scheduler`).
pub const PROBER: &str = "probenet-prober";
/// The base's directory.
pub const BASE_DIR: &str = "base/prober";

/// Whether the probers open unprivileged ping sockets (ICMP checks without raw sockets).
fn ping_sockets(loaded: &Loaded) -> bool {
    !loaded.stack.kubernetes.raw_sockets && loaded.config.checks.iter().any(|check| check.kind.key() == "icmp")
}

/// The Pod Security level of a region's namespace: `restricted`, or `privileged` when the probers get NET_RAW
/// (no other level admits that capability).
fn pod_security_level(loaded: &Loaded) -> &'static str {
    if loaded.stack.kubernetes.raw_sockets { "privileged" } else { "restricted" }
}

/// The URL the probers of a region dial: the scheduler's Service when they run in the central cluster and have
/// no `scheduler_host` of their own, else its public name (through the load balancer).
pub fn scheduler_url(stack: &Stack, spec: &RegionSpec) -> String {
    if spec.scheduler_host.is_none() && spec.context == stack.kubernetes.context {
        format!("https://{}:{}", scheduler_service_host(&stack.kubernetes.namespace), super::scheduler_port(stack))
    } else {
        stack.scheduler.url_for(spec)
    }
}

/// The base's prober Deployment: no namespace; region and scheduler come from the region's config map.
fn base_deployment(loaded: &Loaded) -> Deployment {
    let stack = &loaded.stack;
    let kinds: Vec<&str> = loaded.config.checks.iter().map(|check| check.kind.key()).collect();
    let args = vec![
        "prober".to_owned(),
        "--scheduler".to_owned(),
        "$(PROBENET_SCHEDULER)".to_owned(),
        "--region".to_owned(),
        "$(PROBENET_REGION)".to_owned(),
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
    c.env = Some(vec![
        env_from_config("PROBENET_SCHEDULER", PROBER, "scheduler"),
        env_from_config("PROBENET_REGION", PROBER, "region"),
    ]);
    c.liveness_probe = Some(probe("/healthz", "metrics", false, 30));
    c.readiness_probe = Some(probe("/healthz", "metrics", false, 5));
    c.resources = Some(if kinds.contains(&"browser") {
        resources(("500m", "1Gi"), ("2", "2Gi"))
    } else {
        resources(("100m", "128Mi"), ("1", "512Mi"))
    });
    if stack.kubernetes.raw_sockets {
        // Asked for: raw sockets. Granted only to a process with the capability in its effective set, so the
        // image must run with it (the namespace is `privileged`).
        c.security_context = Some(container_security(&["NET_RAW"]));
    }
    let mut mounts = vec![
        mount("token", "/etc/probenet/token", true),
        mount("ca", "/etc/probenet/ca", true),
        mount("spool", "/var/spool/probenet", false),
        mount("tmp", "/tmp", false),
    ];
    let mut volumes = vec![
        secret_volume("token", TOKEN_SECRET),
        secret_volume("ca", CA_SECRET),
        empty_volume("spool"),
        empty_volume("tmp"),
    ];
    let (env_from, user_volumes, user_mounts) = user_secrets(&stack.kubernetes.secrets, false);
    mounts.extend(user_mounts);
    volumes.extend(user_volumes);
    c.volume_mounts = Some(mounts);
    c.env_from = (!env_from.is_empty()).then_some(env_from);
    let mut security: PodSecurityContext = pod_security();
    if ping_sockets(loaded) {
        // ICMP through unprivileged ping sockets (SOCK_DGRAM): a safe sysctl, no capability.
        security.sysctls =
            Some(vec![Sysctl { name: "net.ipv4.ping_group_range".to_owned(), value: "0 2147483647".to_owned() }]);
    }
    Deployment {
        metadata: meta(PROBER, None, &stack.name, "prober"),
        spec: Some(DeploymentSpec {
            replicas: Some(1),
            selector: selector(&stack.name, "prober"),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(selector_labels(&stack.name, "prober")),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![c],
                    volumes: Some(volumes),
                    security_context: Some(security),
                    automount_service_account_token: Some(false),
                    // Each prober's work is handed back on SIGTERM: give it time to flush.
                    termination_grace_period_seconds: Some(60),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

/// The base's files.
pub(super) fn base(loaded: &Loaded) -> Vec<File> {
    vec![
        File { name: "prober.yaml".to_owned(), objects: vec![Object::Deployment(base_deployment(loaded))] },
        File { name: "network-policy.yaml".to_owned(), objects: super::policy::region(&loaded.stack, None) },
    ]
}

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
    let config = Object::ConfigMap(ConfigMap {
        metadata: meta(PROBER, Some(ns), &stack.name, "config"),
        data: Some(BTreeMap::from([
            ("region".to_owned(), region.to_owned()),
            ("scheduler".to_owned(), scheduler_url(stack, spec)),
        ])),
        ..ConfigMap::default()
    });
    let files = vec![
        File {
            name: "00-namespace.yaml".to_owned(),
            objects: vec![Object::Namespace(namespace(ns, &stack.name, pod_security_level(loaded)))],
        },
        File { name: "01-secrets.yaml".to_owned(), objects: private },
        File { name: "02-config.yaml".to_owned(), objects: vec![config] },
    ];

    // What the overlay renders: the base in this namespace, the Deployment renamed, scaled and annotated.
    let mut objects: Vec<Object> = files.iter().flat_map(|file| file.objects.clone()).collect();
    let name = format!("{PROBER}-{region}");
    let mut deployment = base_deployment(loaded);
    deployment.metadata.name = Some(name.clone());
    deployment.metadata.namespace = Some(ns.to_owned());
    let replicas = i32::try_from(spec.probers).unwrap_or(1);
    if let Some(spec) = deployment.spec.as_mut() {
        spec.replicas = Some(replicas);
    }
    let checksum =
        super::config_checksum(deployment.spec.as_ref().and_then(|spec| spec.template.spec.as_ref()), &objects, &[]);
    if let Some(template) = deployment.spec.as_mut().and_then(|spec| spec.template.metadata.as_mut()) {
        template.annotations = Some(BTreeMap::from([(CHECKSUM_ANNOTATION.to_owned(), checksum.clone())]));
    }
    objects.push(Object::Deployment(deployment));
    objects.extend(super::policy::region(stack, Some(ns)));

    let mut resources: Vec<String> = files.iter().map(|file| file.name.clone()).collect();
    resources.push(format!("../../{BASE_DIR}"));
    Cluster {
        dir: format!("regions/{region}"),
        context: spec.context.clone(),
        files,
        kustomization: Kustomization {
            namespace: Some(ns.to_owned()),
            resources,
            patches: vec![Patch {
                kind: "Deployment".to_owned(),
                name: PROBER.to_owned(),
                ops: vec![
                    json!({"op": "replace", "path": "/metadata/name", "value": name}),
                    json!({"op": "replace", "path": "/spec/replicas", "value": replicas}),
                    json!({"op": "add", "path": "/spec/template/metadata/annotations",
                        "value": {CHECKSUM_ANNOTATION: checksum}}),
                ],
            }],
        },
        objects,
    }
}
