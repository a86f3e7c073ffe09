//! No two components of a local stack on one port: the scheduler (each replica), the local PostgreSQL,
//! VictoriaMetrics, vmalert, Alertmanager and
//! each prober's `/metrics` (those in a network namespace of their own excepted), each conflict reported at the
//! later of the two places.

use std::net::SocketAddr;

use probenet_checks::config::{Ctx, Path};

use super::{SchedulerStore, Stack, StoreKind};

/// Reports every port two listeners of `stack` share.
pub(super) fn check(cx: &mut Ctx<'_>, stack: &Stack) {
    let top = Path::root();
    let mut listeners: Vec<(SocketAddr, Path, String)> =
        vec![(stack.scheduler.listen, top.key("scheduler").key("listen"), "the scheduler".to_owned())];
    for (offset, listen) in stack.scheduler.replica_listens().into_iter().enumerate().skip(1) {
        let what = format!("scheduler replica {}", offset + 1);
        listeners.push((listen, top.key("scheduler").key("replicas"), what));
    }
    if let SchedulerStore::Local { listen } = stack.scheduler.store {
        listeners.push((listen, top.key("scheduler").key("store_listen"), "the local PostgreSQL".to_owned()));
    }
    if stack.store.kind == StoreKind::VictoriaMetrics {
        listeners.push((stack.store.listen, top.key("store").key("listen"), "VictoriaMetrics".to_owned()));
    }
    if let Some(alerting) = &stack.alerting {
        let path = top.key("alerting");
        listeners.push((alerting.vmalert_listen, path.key("vmalert").key("listen"), "vmalert".to_owned()));
        let am = path.key("alertmanager").key("listen");
        listeners.push((alerting.alertmanager_listen, am, "Alertmanager".to_owned()));
    }
    for (region, index, address) in stack.prober_metrics() {
        let Some(spec) = stack.regions.get(&region) else { continue };
        if spec.netns.is_some() {
            continue;
        }
        let path = top.key("regions").key(&region);
        let path = if spec.metrics_port.is_some() { path.key("metrics_port") } else { path };
        listeners.push((address, path, format!("prober {region}-{index}'s /metrics")));
    }
    for (later, (address, path, what)) in listeners.iter().enumerate() {
        let clash = listeners[..later].iter().find(|(other, ..)| {
            other.port() == address.port()
                && (other.ip() == address.ip() || other.ip().is_unspecified() || address.ip().is_unspecified())
        });
        if let Some((_, other_path, other)) = clash {
            let message = format!(
                "{what} would listen on port {} like {other} ({other_path}): give one another port{}",
                address.port(),
                if what.starts_with("prober") { " (`metrics_port` of the region)" } else { "" }
            );
            cx.error(path, message);
        }
    }
}
