//! The scheduler's own series in the Prometheus text format (0.0.4), written by hand.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::state::{Plan, Shared};

/// Renders every series.
pub fn render(shared: &Shared, plan: &Plan) -> String {
    let mut out = String::new();
    let mut by_region: BTreeMap<&str, usize> =
        plan.config.config.regions.keys().map(|region| (region.as_str(), 0)).collect();
    for prober in &plan.probers {
        *by_region.entry(prober.region.as_str()).or_default() += 1;
    }
    header(&mut out, "probenet_scheduler_probers", "gauge", "Live probers, by region.");
    for (region, count) in &by_region {
        let _ = writeln!(out, "probenet_scheduler_probers{{region=\"{}\"}} {count}", escape(region));
    }
    gauge(
        &mut out,
        "probenet_scheduler_pairs",
        "(check, region) pairs in the running config.",
        plan.table.len() as u64,
    );
    gauge(
        &mut out,
        "probenet_scheduler_unassigned_pairs",
        "Pairs no live prober of their region can run.",
        plan.table.unassigned() as u64,
    );
    if let Some(cluster) = shared.cluster() {
        gauge(
            &mut out,
            "probenet_scheduler_leader",
            "1 on the replica that leads (assigns and evaluates alerts), 0 on the others.",
            u64::from(cluster.leading().is_some()),
        );
        gauge(
            &mut out,
            "probenet_scheduler_database_up",
            "1 while the database answers this replica.",
            u64::from(cluster.healthy()),
        );
    } else {
        gauge(&mut out, "probenet_scheduler_leader", "1 on the replica that leads; a single scheduler leads.", 1);
    }
    if let Some(artifacts) = &shared.artifacts {
        artifacts.metrics(&mut out);
    }
    let totals = shared.store.totals();
    counter(&mut out, "probenet_scheduler_results_ingested_total", "Results stored.", totals.accepted as u64);
    counter(
        &mut out,
        "probenet_scheduler_results_duplicate_total",
        "Results received again (a replay) and not stored twice.",
        totals.duplicates as u64,
    );
    counter(
        &mut out,
        "probenet_scheduler_results_dropped_total",
        "Results of checks no longer in the config: acknowledged, not stored.",
        shared.results_dropped.load(Ordering::Relaxed),
    );
    header(
        &mut out,
        "probenet_scheduler_results_refused_total",
        "counter",
        "Results refused at ingest (forged, foreign or off-schedule runs), by reason.",
    );
    for why in crate::ownership::Refusal::ALL {
        let _ = writeln!(
            out,
            "probenet_scheduler_results_refused_total{{reason=\"{}\"}} {}",
            why.label(),
            shared.results_refused[why as usize].load(Ordering::Relaxed)
        );
    }
    header(&mut out, "probenet_scheduler_config_reloads_total", "counter", "Config reloads, by result.");
    let _ = writeln!(
        out,
        "probenet_scheduler_config_reloads_total{{result=\"ok\"}} {}",
        shared.reloads_ok.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "probenet_scheduler_config_reloads_total{{result=\"error\"}} {}",
        shared.reloads_error.load(Ordering::Relaxed)
    );
    gauge(
        &mut out,
        "probenet_scheduler_generation",
        "Changes of the config or the prober set so far.",
        plan.generation,
    );
    alerting(&mut out, shared);
    shared.backups.render(&mut out);
    if plan.config.config.objects.as_ref().is_some_and(|objects| objects.archive_after.is_some()) {
        // Written by the replica that leads (it runs the archive); 0 on the others.
        out.push_str(&shared.archive.render());
    }
    out
}

/// The alert engine's series: alerts firing, and per notifier the notifications sent, retried and failed.
fn alerting(out: &mut String, shared: &Shared) {
    let (notifiers, firing) = shared.alerting.counters();
    gauge(out, "probenet_alerts_firing", "Alerts firing now.", firing as u64);
    type Read = fn(&probenet_alerting::notify::NotifierCounters) -> u64;
    let families: [(&str, &str, Read); 4] = [
        ("probenet_notifications_sent", "Notifications delivered, by notifier.", |c| c.sent),
        ("probenet_notifications_retried", "Failed delivery attempts that were retried, by notifier.", |c| c.retried),
        ("probenet_notifications_failed", "Notifications given up, by notifier.", |c| c.failed),
        ("probenet_notifications_pending", "Notifications waiting to be delivered, by notifier.", |c| c.pending),
    ];
    for (name, help, value) in families {
        let kind = if name.ends_with("pending") { "gauge" } else { "counter" };
        header(out, name, kind, help);
        for (notifier, counters) in &notifiers {
            let labels = format!("notifier=\"{}\",kind=\"{}\"", escape(notifier), escape(&counters.kind));
            let _ = writeln!(out, "{name}{{{labels}}} {}", value(counters));
        }
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn gauge(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

/// A label value escaped for the text format.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(super::escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
