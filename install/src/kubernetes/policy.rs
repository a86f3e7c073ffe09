//! Network policies: deny every ingress in probenet's namespaces, then allow only the paths the stack needs.

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::build::{meta, selector};
use super::{ALERTMANAGER_PORT, Object, VMINSERT_PORT, VMSELECT_PORT, VMSTORAGE_INSERT_PORT, VMSTORAGE_SELECT_PORT};
use crate::stack::{Stack, StoreKind};

fn deny_all(stack: &Stack, namespace: Option<&str>) -> Object {
    Object::NetworkPolicy(NetworkPolicy {
        metadata: meta("default-deny-ingress", namespace, &stack.name, "network-policy"),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ..NetworkPolicySpec::default()
        }),
    })
}

/// A peer: pods of a component in this namespace, or in any namespace.
fn pods(stack: &Stack, component: &str, any_namespace: bool) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(selector(&stack.name, component)),
        namespace_selector: any_namespace.then(LabelSelector::default),
        ..NetworkPolicyPeer::default()
    }
}

fn allow(stack: &Stack, component: &str, port: i32, from: Vec<NetworkPolicyPeer>) -> Object {
    Object::NetworkPolicy(NetworkPolicy {
        metadata: meta(
            &format!("allow-{component}-{port}"),
            Some(&stack.kubernetes.namespace),
            &stack.name,
            "network-policy",
        ),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(&stack.name, component)),
            policy_types: Some(vec!["Ingress".to_owned()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(vec![NetworkPolicyPort {
                    port: Some(IntOrString::Int(port)),
                    protocol: Some("TCP".to_owned()),
                    ..NetworkPolicyPort::default()
                }]),
            }]),
            ..NetworkPolicySpec::default()
        }),
    })
}

/// The central namespace's policies.
pub(super) fn central(stack: &Stack) -> Vec<Object> {
    let mut objects = vec![deny_all(stack, Some(&stack.kubernetes.namespace))];
    let mut to_scheduler = vec![pods(stack, "prober", true)];
    to_scheduler.extend(stack.kubernetes.scheduler_ingress_cidrs.iter().map(|cidr| NetworkPolicyPeer {
        ip_block: Some(IPBlock { cidr: cidr.clone(), except: None }),
        ..NetworkPolicyPeer::default()
    }));
    objects.push(allow(stack, "scheduler", super::scheduler_port(stack), to_scheduler));
    if stack.store.kind == StoreKind::VictoriaMetrics {
        let mut writers = vec![pods(stack, "scheduler", false)];
        if stack.alerting.is_some() {
            writers.push(pods(stack, "vmalert", false));
            objects.push(allow(stack, "vmselect", VMSELECT_PORT, vec![pods(stack, "vmalert", false)]));
            objects.push(allow(stack, "alertmanager", ALERTMANAGER_PORT, vec![pods(stack, "vmalert", false)]));
        }
        objects.push(allow(stack, "vminsert", VMINSERT_PORT, writers));
        objects.push(allow(stack, "vmstorage", VMSTORAGE_INSERT_PORT, vec![pods(stack, "vminsert", false)]));
        objects.push(allow(stack, "vmstorage", VMSTORAGE_SELECT_PORT, vec![pods(stack, "vmselect", false)]));
    }
    objects
}

/// A region namespace's policy: probers accept no connection (they only dial out). Without a namespace in the
/// base (the overlay sets it).
pub(super) fn region(stack: &Stack, namespace: Option<&str>) -> Vec<Object> {
    vec![deny_all(stack, namespace)]
}
