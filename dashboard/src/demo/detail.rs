//! The check page of the demo source: latency series, daily uptime and made-up failures with screenshots.

use super::{
    DAY_MS, DEGRADED_AFTER, DemoSource, HOUR_MS, INTERVAL_MS, down_streak, has_degraded_after, kind_error, mix, phases,
};
use crate::model::{
    Assertion, Cell, CheckDetail, CheckRow, DailyUptime, Failure, LatencyPoint, Range, RegionDetail, State,
};

/// The YAML a user might have written for a row.
fn definition(row: &CheckRow) -> String {
    let labels: String = row.labels.iter().map(|(key, value)| format!("      {key}: {value}\n")).collect();
    let kind = match row.kind.as_str() {
        "https" => "http",
        other => other,
    };
    let degraded = if has_degraded_after(&row.kind) {
        format!("    degraded_after: {}ms\n", DEGRADED_AFTER * 1000.0)
    } else {
        String::new()
    };
    format!(
        "checks:\n  - name: {}\n    kind: {kind}\n    target: {}\n    interval: 30s\n    timeout: 10s\n{degraded}    labels:\n{labels}",
        row.name, row.target
    )
}

impl DemoSource {
    pub(super) fn detail(&self, row: &CheckRow, check_index: usize, range: Range) -> CheckDetail {
        let seed = self.options.seed;
        let kinds = phases(&row.kind);
        let span = (range.to_ms - range.from_ms).max(1);
        let step = (span / 240).max(60_000);
        let first = range.from_ms - range.from_ms.rem_euclid(step);
        let today = self.options.now_ms - self.options.now_ms.rem_euclid(DAY_MS);
        let started = self.options.running_for_ms.map(|running| self.options.now_ms - running);
        let degraded_after = has_degraded_after(&row.kind).then_some(DEGRADED_AFTER);
        let regions = row
            .cells
            .iter()
            .enumerate()
            .map(|(r, cell)| {
                let far = 1.0 + r as f64 * 0.35;
                let mut at = first;
                let mut latency = Vec::new();
                while at < range.to_ms && cell.state != State::NoData {
                    if started.is_some_and(|started| at + step <= started) {
                        at += step;
                        continue;
                    }
                    let mut rng = mix(seed, &[check_index as u64, r as u64, at as u64]);
                    let failures = u32::from(rng.unit() < 0.02);
                    let spike = if rng.unit() < 0.05 { 2.5 } else { 1.0 };
                    let values: Vec<Option<f64>> = kinds
                        .iter()
                        .map(|(_, typical)| Some(typical * far * spike * (0.7 + 0.6 * rng.unit())))
                        .collect();
                    let total = values.iter().flatten().sum();
                    latency.push(LatencyPoint { at_ms: at, seconds: Some(total), phases: values, failures });
                    at += step;
                }
                let daily: Vec<DailyUptime> = (0..30)
                    .map(|d| {
                        let mut rng = mix(seed, &[check_index as u64, r as u64, 2, d]);
                        let day_ms = today - (29 - d as i64) * DAY_MS;
                        let uptime = match cell.state {
                            State::NoData => None,
                            _ if started.is_some_and(|started| day_ms + DAY_MS <= started) => None,
                            _ if rng.unit() < 0.85 => Some(1.0),
                            _ => Some(1.0 - (rng.unit().powi(3) * 0.03 * 2000.0).round() / 2000.0),
                        };
                        DailyUptime { day_ms, uptime }
                    })
                    .collect();
                let reason = match cell.state {
                    State::Degraded => Some(match (degraded_after, cell.last_seconds) {
                        (Some(limit), Some(took)) => {
                            format!("took {took:.2} s, over degraded_after {}", seconds(limit))
                        }
                        _ => "3 of the last 12 runs failed (flapping)".to_owned(),
                    }),
                    State::Down => Some(kind_error(&row.kind).1.to_owned()),
                    State::Up | State::NoData => None,
                };
                let days: Vec<f64> = daily.iter().filter_map(|day| day.uptime).collect();
                let daily_uptime = (!days.is_empty()).then(|| days.iter().sum::<f64>() / days.len() as f64);
                RegionDetail {
                    region: cell.region.clone(),
                    state: cell.state,
                    uptime: cell.uptime_24h,
                    latency,
                    daily,
                    daily_uptime,
                    reason,
                }
            })
            .collect();
        let mut rng = mix(seed, &[check_index as u64, 3]);
        let regions_with_data: Vec<&Cell> = row.cells.iter().filter(|cell| cell.state != State::NoData).collect();
        let count = if row.kind == "browser" { 4 } else { rng.below(5) };
        let mut failures: Vec<Failure> = (0..count)
            .filter_map(|k| {
                let cell = regions_with_data.get(rng.below(regions_with_data.len().max(1)))?;
                let planned_at_ms = self.options.now_ms - (rng.below(72) as i64 + 1) * HOUR_MS - k as i64 * 60_000;
                Some(failure(row, cell, planned_at_ms, check_index, k))
            })
            .collect();
        // A down region has failed on every run for a while: the same error, run after run.
        for (r, cell) in row.cells.iter().enumerate().filter(|(_, cell)| cell.state == State::Down) {
            let last = cell.last_run_ms.unwrap_or(self.options.now_ms);
            for n in 0..down_streak(check_index, r) {
                failures.push(failure(row, cell, last - n * INTERVAL_MS, check_index, 0));
            }
        }
        failures.retain(|failure| {
            failure.planned_at_ms >= range.from_ms
                && failure.planned_at_ms < range.to_ms
                && started.is_none_or(|started| failure.planned_at_ms >= started)
        });
        failures.sort_by_key(|failure| std::cmp::Reverse(failure.planned_at_ms));
        CheckDetail {
            name: row.name.clone(),
            kind: row.kind.clone(),
            target: row.target.clone(),
            labels: row.labels.clone(),
            definition: definition(row),
            from_ms: range.from_ms,
            to_ms: range.to_ms,
            phases: kinds.iter().map(|(name, _)| (*name).to_owned()).collect(),
            regions,
            failures,
            first_run_ms: Some(started.unwrap_or(self.options.now_ms - 400 * DAY_MS)),
            degraded_after_seconds: degraded_after,
            maintenance: (check_index == 0).then(|| self.maintenance_of(&row.name)).into_iter().collect(),
            uptime_as_of_ms: Some(self.options.now_ms.div_euclid(HOUR_MS) * HOUR_MS),
        }
    }
}

/// Seconds as written in a config: `250ms`, `2s`.
fn seconds(value: f64) -> String {
    if value < 1.0 { format!("{}ms", (value * 1000.0).round()) } else { format!("{value}s") }
}

/// A made-up failure of a row in a region.
fn failure(row: &CheckRow, cell: &Cell, planned_at_ms: i64, check_index: usize, k: usize) -> Failure {
    let assertion = |name: &str, expected: &str, observed: &str, passed| Assertion {
        name: name.to_owned(),
        expected: expected.to_owned(),
        observed: observed.to_owned(),
        passed,
    };
    let (reason, error) = kind_error(&row.kind);
    let assertions = match row.kind.as_str() {
        "http" | "https" => {
            vec![assertion("status", "200", "503", false), assertion("max_duration", "2s", "0.41s", true)]
        }
        "browser" => vec![assertion("expect_text", "Welcome", "Service unavailable", false)],
        "tls" => vec![assertion("min_days_remaining", "14", "6", false)],
        "dns" => vec![assertion("rcode", "NOERROR", "SERVFAIL", false)],
        _ => Vec::new(),
    };
    let screenshot = (row.kind == "browser").then(|| format!("screenshots/{check_index}-{k}.png"));
    Failure {
        region: cell.region.clone(),
        planned_at_ms,
        reason: reason.to_owned(),
        error: error.to_owned(),
        assertions,
        screenshot,
        traceroute: (row.kind == "tcp").then(|| format!("traceroutes/{check_index}-{k}.json")),
    }
}
