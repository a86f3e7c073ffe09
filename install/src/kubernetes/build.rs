//! Small builders for the typed objects: metadata and labels, resources, probes, security contexts, volumes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HTTPGetAction, PersistentVolumeClaim,
    PersistentVolumeClaimSpec, PodSecurityContext, Probe, ResourceRequirements, SeccompProfile, Secret,
    SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The user (and group) every container runs as: `nobody`.
pub const RUN_AS: i64 = 65534;

/// Labels of everything the stack `stack` deploys for `component`.
pub fn labels(stack: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "probenet".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/component".to_owned(), component.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "probenet-install".to_owned()),
    ])
}

/// The labels that select a component's pods.
pub fn selector_labels(stack: &str, component: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".to_owned(), "probenet".to_owned()),
        ("app.kubernetes.io/instance".to_owned(), stack.to_owned()),
        ("app.kubernetes.io/component".to_owned(), component.to_owned()),
    ])
}

/// A selector of a component's pods.
pub fn selector(stack: &str, component: &str) -> LabelSelector {
    LabelSelector { match_labels: Some(selector_labels(stack, component)), ..LabelSelector::default() }
}

/// Metadata of an object.
pub fn meta(name: &str, namespace: Option<&str>, stack: &str, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: namespace.map(str::to_owned),
        labels: Some(labels(stack, component)),
        ..ObjectMeta::default()
    }
}

/// An `Opaque` secret of `data` (as `stringData`).
pub fn opaque_secret(name: &str, namespace: &str, stack: &str, data: BTreeMap<String, String>) -> Secret {
    Secret {
        metadata: meta(name, Some(namespace), stack, "secret"),
        type_: Some("Opaque".to_owned()),
        string_data: Some(data),
        ..Secret::default()
    }
}

/// Requests and limits: `(cpu, memory)` each.
pub fn resources(requests: (&str, &str), limits: (&str, &str)) -> ResourceRequirements {
    let pair = |(cpu, memory): (&str, &str)| {
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(cpu.to_owned())),
            ("memory".to_owned(), Quantity(memory.to_owned())),
        ])
    };
    ResourceRequirements {
        requests: Some(pair(requests)),
        limits: Some(pair(limits)),
        ..ResourceRequirements::default()
    }
}

/// An HTTP GET probe on a named port.
pub fn probe(path: &str, port: &str, https: bool, initial_delay: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String(port.to_owned()),
            scheme: Some(if https { "HTTPS" } else { "HTTP" }.to_owned()),
            ..HTTPGetAction::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}

/// A container port.
pub fn port(name: &str, number: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.to_owned()),
        container_port: number,
        protocol: Some("TCP".to_owned()),
        ..Default::default()
    }
}

/// A non-root container with a read-only root file system, no privilege escalation and no capability but
/// `add`.
pub fn container_security(add: &[&str]) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(vec!["ALL".to_owned()]),
            add: (!add.is_empty()).then(|| add.iter().map(|cap| (*cap).to_owned()).collect()),
        }),
        ..SecurityContext::default()
    }
}

/// The pod's: non-root, volumes owned by the run-as group, the runtime's default seccomp profile.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        seccomp_profile: Some(SeccompProfile { type_: "RuntimeDefault".to_owned(), ..SeccompProfile::default() }),
        ..PodSecurityContext::default()
    }
}

/// A container of the stack: its image, args, ports, resources, probes and security context.
pub fn container(name: &str, image: &str, args: Vec<String>, ports: Vec<ContainerPort>) -> Container {
    Container {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        args: Some(args),
        ports: Some(ports),
        security_context: Some(container_security(&[])),
        ..Container::default()
    }
}

/// A volume of a secret (files 0440: the run-as user and its group only).
pub fn secret_volume(name: &str, secret: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        secret: Some(k8s_openapi::api::core::v1::SecretVolumeSource {
            secret_name: Some(secret.to_owned()),
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Volume::default()
    }
}

/// A volume of a config map.
pub fn config_volume(name: &str, config_map: &str) -> Volume {
    Volume {
        name: name.to_owned(),
        config_map: Some(k8s_openapi::api::core::v1::ConfigMapVolumeSource {
            name: config_map.to_owned(),
            ..Default::default()
        }),
        ..Volume::default()
    }
}

/// An empty scratch volume.
pub fn empty_volume(name: &str) -> Volume {
    Volume { name: name.to_owned(), empty_dir: Some(Default::default()), ..Volume::default() }
}

/// A read-only (or writable) mount.
pub fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.to_owned(),
        mount_path: path.to_owned(),
        read_only: Some(read_only),
        ..VolumeMount::default()
    }
}

/// A volume claim template.
pub fn claim(name: &str, size: &str, storage_class: Option<&str>) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta { name: Some(name.to_owned()), ..ObjectMeta::default() },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
            storage_class_name: storage_class.map(str::to_owned),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size.to_owned()))])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// A service in front of a component: `(name, port)` each; headless when `headless`.
pub fn service(
    name: &str,
    namespace: &str,
    stack: &str,
    component: &str,
    ports: &[(&str, i32)],
    kind: Option<&str>,
    headless: bool,
) -> Service {
    Service {
        metadata: meta(name, Some(namespace), stack, component),
        spec: Some(ServiceSpec {
            type_: kind.map(str::to_owned),
            cluster_ip: headless.then(|| "None".to_owned()),
            selector: Some(selector_labels(stack, component)),
            ports: Some(
                ports
                    .iter()
                    .map(|(port_name, number)| ServicePort {
                        name: Some((*port_name).to_owned()),
                        port: *number,
                        target_port: Some(IntOrString::String((*port_name).to_owned())),
                        protocol: Some("TCP".to_owned()),
                        ..ServicePort::default()
                    })
                    .collect(),
            ),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A namespace with the Pod Security Standards level its pods meet, enforced (and audited and warned of).
pub fn namespace(name: &str, stack: &str, level: &str) -> k8s_openapi::api::core::v1::Namespace {
    let mut metadata = meta(name, None, stack, "namespace");
    let labels = metadata.labels.get_or_insert_with(BTreeMap::new);
    for mode in ["enforce", "audit", "warn"] {
        labels.insert(format!("pod-security.kubernetes.io/{mode}"), level.to_owned());
        labels.insert(format!("pod-security.kubernetes.io/{mode}-version"), "latest".to_owned());
    }
    k8s_openapi::api::core::v1::Namespace { metadata, ..Default::default() }
}

/// Spread a component's pods over nodes: preferred, so that a cluster with fewer nodes still runs them all.
pub fn spread_over_nodes(stack: &str, component: &str) -> k8s_openapi::api::core::v1::Affinity {
    use k8s_openapi::api::core::v1::{Affinity, PodAffinityTerm, PodAntiAffinity, WeightedPodAffinityTerm};
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                weight: 100,
                pod_affinity_term: PodAffinityTerm {
                    label_selector: Some(selector(stack, component)),
                    topology_key: "kubernetes.io/hostname".to_owned(),
                    ..PodAffinityTerm::default()
                },
            }]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

/// A disruption budget: at least `min_available` pods, or at most `max_unavailable` gone, during a drain.
pub fn disruption_budget(
    name: &str,
    namespace: &str,
    stack: &str,
    component: &str,
    min_available: Option<i32>,
    max_unavailable: Option<i32>,
) -> k8s_openapi::api::policy::v1::PodDisruptionBudget {
    use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
    PodDisruptionBudget {
        metadata: meta(name, Some(namespace), stack, component),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(selector(stack, component)),
            min_available: min_available.map(IntOrString::Int),
            max_unavailable: max_unavailable.map(IntOrString::Int),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

/// An environment variable from the pod's own fields (downward API), such as `metadata.name`.
pub fn env_from_field(name: &str, field: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(k8s_openapi::api::core::v1::ObjectFieldSelector {
                field_path: field.to_owned(),
                ..Default::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// An environment variable from a config map's key.
pub fn env_from_config(name: &str, config_map: &str, key: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            config_map_key_ref: Some(k8s_openapi::api::core::v1::ConfigMapKeySelector {
                name: config_map.to_owned(),
                key: key.to_owned(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The user's Secrets for a component: `envFrom` entries, volumes and their mounts.
pub fn user_secrets(
    secrets: &[crate::stack::UserSecret],
    for_scheduler: bool,
) -> (Vec<k8s_openapi::api::core::v1::EnvFromSource>, Vec<Volume>, Vec<VolumeMount>) {
    use k8s_openapi::api::core::v1::{EnvFromSource, SecretEnvSource};
    let (mut env, mut volumes, mut mounts) = (Vec::new(), Vec::new(), Vec::new());
    for (index, secret) in secrets.iter().enumerate() {
        if !(if for_scheduler { secret.scheduler } else { secret.probers }) {
            continue;
        }
        match secret.mode {
            crate::stack::UserSecretMode::Env => env.push(EnvFromSource {
                secret_ref: Some(SecretEnvSource { name: secret.name.clone(), optional: Some(false) }),
                ..EnvFromSource::default()
            }),
            crate::stack::UserSecretMode::Files => {
                let volume = format!("user-secret-{index}");
                volumes.push(secret_volume(&volume, &secret.name));
                mounts.push(mount(&volume, &crate::stack::user_secret_dir(&secret.name), true));
            }
        }
    }
    (env, volumes, mounts)
}

/// A TCP probe on a named port (liveness that does not depend on what the process talks to).
pub fn tcp_probe(port: &str, initial_delay: i32) -> Probe {
    Probe {
        tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
            port: IntOrString::String(port.to_owned()),
            ..Default::default()
        }),
        initial_delay_seconds: Some(initial_delay),
        period_seconds: Some(10),
        timeout_seconds: Some(5),
        failure_threshold: Some(3),
        ..Probe::default()
    }
}
