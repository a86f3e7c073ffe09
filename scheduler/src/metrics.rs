//! The scheduler's own series, written in the Prometheus text format (0.0.4) by the exporters' one writer
//! ([`probenet_exporters::exposition::text`]).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use probenet_exporters::{FamilySamples, MetricType};

use crate::state::{Plan, Shared};

/// Renders every series.
pub fn render(shared: &Shared, plan: &Plan) -> String {
    let mut families = Vec::new();
    let mut by_region: BTreeMap<&str, usize> =
        plan.config.config.regions.keys().map(|region| (region.as_str(), 0)).collect();
    for prober in &plan.probers {
        *by_region.entry(prober.region.as_str()).or_default() += 1;
    }
    families.push(labelled(
        "probenet_scheduler_probers",
        MetricType::Gauge,
        "Live probers, by region.",
        by_region.iter().map(|(region, count)| (vec![("region", (*region).to_owned())], *count as u64)),
    ));
    families.push(gauge(
        "probenet_scheduler_pairs",
        "(check, region) pairs in the running config.",
        plan.table.len() as u64,
    ));
    families.push(gauge(
        "probenet_scheduler_unassigned_pairs",
        "Pairs no live prober of their region can run.",
        plan.table.unassigned() as u64,
    ));
    if let Some(cluster) = shared.cluster() {
        families.push(gauge(
            "probenet_scheduler_leader",
            "1 on the replica that leads (assigns and evaluates alerts), 0 on the others.",
            u64::from(cluster.leading().is_some()),
        ));
        families.push(gauge(
            "probenet_scheduler_database_up",
            "1 while the database answers this replica.",
            u64::from(cluster.healthy()),
        ));
    } else {
        families.push(gauge("probenet_scheduler_leader", "1 on the replica that leads; a single scheduler leads.", 1));
    }
    if let Some(artifacts) = &shared.artifacts {
        families.extend(artifacts.families());
    }
    let totals = shared.store.totals();
    families.push(counter("probenet_scheduler_results_ingested_total", "Results stored.", totals.accepted as u64));
    families.push(counter(
        "probenet_scheduler_results_duplicate_total",
        "Results received again (a replay) and not stored twice.",
        totals.duplicates as u64,
    ));
    families.push(counter(
        "probenet_scheduler_results_dropped_total",
        "Results of checks no longer in the config: acknowledged, not stored.",
        shared.results_dropped.load(Ordering::Relaxed),
    ));
    families.push(labelled(
        "probenet_scheduler_results_refused_total",
        MetricType::Counter,
        "Results refused at ingest (forged, foreign or off-schedule runs), by reason.",
        crate::ownership::Refusal::ALL.into_iter().map(|why| {
            (vec![("reason", why.label().to_owned())], shared.results_refused[why as usize].load(Ordering::Relaxed))
        }),
    ));
    families.push(labelled(
        "probenet_scheduler_config_reloads_total",
        MetricType::Counter,
        "Config reloads, by result.",
        [
            (vec![("result", "ok".to_owned())], shared.reloads_ok.load(Ordering::Relaxed)),
            (vec![("result", "error".to_owned())], shared.reloads_error.load(Ordering::Relaxed)),
        ],
    ));
    families.push(gauge(
        "probenet_scheduler_generation",
        "Changes of the config or the prober set so far.",
        plan.generation,
    ));
    maintenance(&mut families, &plan.config.config.maintenance, probenet_checks::time::now_ms());
    let live = plan.probers.iter().map(|prober| (prober.region.as_str(), prober.name.as_str()));
    families.extend(shared.health.families(live, std::time::Instant::now()));
    alerting(&mut families, shared);
    families.extend(shared.backups.families());
    if plan.config.config.objects.as_ref().is_some_and(|objects| objects.archive_after.is_some()) {
        // Written by the replica that leads (it runs the archive); 0 on the others.
        families.extend(shared.archive.families());
    }
    probenet_exporters::exposition::text(&families)
}

/// One series per maintenance window of the config: 1 while it is in force, 0 otherwise.
fn maintenance(
    families: &mut Vec<FamilySamples>,
    windows: &[probenet_checks::config::maintenance::Maintenance],
    now_ms: i64,
) {
    if windows.is_empty() {
        return;
    }
    families.push(labelled(
        "probenet_maintenance_active",
        MetricType::Gauge,
        "1 while a maintenance window of the config is in force, 0 otherwise, by window and mode (mute, pause).",
        windows.iter().map(|window| {
            let labels = vec![("window", window.name.clone()), ("mode", window.mode.as_str().to_owned())];
            (labels, u64::from(window.active(now_ms)))
        }),
    ));
}

/// The alert engine's series: alerts firing, and per notifier the notifications sent, retried and failed.
fn alerting(families: &mut Vec<FamilySamples>, shared: &Shared) {
    let (notifiers, firing) = shared.alerting.counters();
    families.push(gauge("probenet_alerts_firing", "Alerts firing now.", firing as u64));
    type Read = fn(&probenet_alerting::notify::NotifierCounters) -> u64;
    let counted: [(&str, &str, Read); 4] = [
        ("probenet_notifications_sent", "Notifications delivered, by notifier.", |c| c.sent),
        ("probenet_notifications_retried", "Failed delivery attempts that were retried, by notifier.", |c| c.retried),
        ("probenet_notifications_failed", "Notifications given up, by notifier.", |c| c.failed),
        ("probenet_notifications_pending", "Notifications waiting to be delivered, by notifier.", |c| c.pending),
    ];
    for (name, help, value) in counted {
        let kind = if name.ends_with("pending") { MetricType::Gauge } else { MetricType::Counter };
        let series = notifiers.iter().map(|(notifier, counters)| {
            (vec![("notifier", notifier.clone()), ("kind", counters.kind.clone())], value(counters))
        });
        families.push(labelled(name, kind, help, series));
    }
}

fn labelled(
    name: &str,
    kind: MetricType,
    help: &str,
    series: impl IntoIterator<Item = (Vec<(&'static str, String)>, u64)>,
) -> FamilySamples {
    let series = series
        .into_iter()
        .map(|(labels, value)| {
            (labels.into_iter().map(|(label, value)| (label.to_owned(), value)).collect(), value as f64)
        })
        .collect();
    FamilySamples { name: name.to_owned(), help: help.to_owned(), kind, series }
}

fn gauge(name: &str, help: &str, value: u64) -> FamilySamples {
    FamilySamples::single(name, help, MetricType::Gauge, value as f64)
}

fn counter(name: &str, help: &str, value: u64) -> FamilySamples {
    FamilySamples::single(name, help, MetricType::Counter, value as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn label_values_are_escaped() {
        assert_eq!(probenet_exporters::exposition::escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
