//! The compact JSON of `GET /api/ui/overview`: arrays instead of objects, integers instead of fractions, and a
//! sparkline as one character per point, so that 1,000 checks x 5 regions stay well under 500 KB.
//!
//! ```text
//! { "now": ms, "regions": [region...], "states": ["up","degraded","down","no_data"],
//!   "checks": [[name, kind, target, {label: value}, spark_max_ms, [cell | null per region]]] }
//! cell = [state index, seconds since the last run | null, last duration in ms | null,
//!         uptime 24 h | null, uptime 7 d | null, uptime 30 d | null, sparkline, runs, run gaps (, newest run
//!         (, reason))]
//! runs = the recent runs, oldest first: a duration level per run, after `!` for a degraded run and `~` for a
//!        failed one (an up run is one character)
//! run gaps = null without runs, else the seconds between consecutive runs: one number when they are all equal
//!        (a check on an interval), else a list
//! newest run = seconds since the newest of the runs, only when it is not the last run of the cell's element 1
//!        (null when only the reason follows)
//! reason = why the last run was degraded or down (`duration`, `status`...), only then
//! ```
//!
//! Uptimes are in hundredths of a percent, rounded down (`9995` is 99.95%: see [`uptime_hundredths`]). A
//! sparkline character is one of [`SPARK_DIGITS`] (its index: `0` is 0 ms, `63` is `spark_max_ms`) or `.`
//! for a point without data. A run's duration level is also a digit of [`SPARK_DIGITS`], on a log scale:
//! level `n` is `2^(n/4)` ms (1 ms to 55 s, each level 19% above the one below, so within 9.5%); `.` for a
//! run without a duration. Run times are the gaps between consecutive runs, one number when they are all
//! equal (a check on an interval).

use serde_json::{Value, json};

use crate::model::{Overview, State};

/// The 64 digits of a sparkline point, lowest first.
pub const SPARK_DIGITS: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";

/// The most points a sparkline keeps (the newest).
pub const SPARK_POINTS: usize = 60;

/// An uptime in hundredths of a percent, rounded down so that 99.999% never shows as 100.00%. A tiny
/// allowance absorbs floating-point error (1999/2000 gives 9995, not 9994).
pub fn uptime_hundredths(uptime: f64) -> i64 {
    let scaled = (uptime.clamp(0.0, 1.0) * 10_000.0 + 1e-6).floor();
    // In 0..=10_000 after the clamp, so the cast is exact.
    scaled as i64
}

/// An uptime as the pages show it: `99.95%`, `100%`, or `–` without data.
pub fn format_uptime(uptime: Option<f64>) -> String {
    match uptime {
        None => "–".to_owned(),
        Some(uptime) => {
            let hundredths = uptime_hundredths(uptime);
            if hundredths == 10_000 {
                "100%".to_owned()
            } else {
                format!("{}.{:02}%", hundredths / 100, hundredths % 100)
            }
        }
    }
}

/// Milliseconds with one decimal, for JSON.
fn millis(seconds: f64) -> f64 {
    (seconds * 10_000.0).round() / 10.0
}

/// Encodes a sparkline against a row's maximum.
fn spark(points: &[Option<f64>], max_ms: f64) -> String {
    let start = points.len().saturating_sub(SPARK_POINTS);
    points[start..]
        .iter()
        .map(|point| match point {
            Some(seconds) if seconds.is_finite() && max_ms > 0.0 => {
                let level = (seconds * 1000.0 / max_ms * 63.0).round().clamp(0.0, 63.0) as usize;
                char::from(SPARK_DIGITS[level])
            }
            Some(_) => '0',
            None => '.',
        })
        .collect()
}

/// The level of a run's duration: `2^(level/4)` ms, see the module documentation.
pub fn duration_level(seconds: f64) -> u8 {
    let ms = (seconds * 1000.0).max(1.0);
    (ms.log2() * 4.0).round().clamp(0.0, 63.0) as u8
}

/// Encodes recent runs: their states and levels, the gaps between them, and the newest one's age when it is
/// not the cell's last run.
fn runs(cell: &crate::model::Cell, now: i64) -> (String, Value, Option<i64>) {
    let start = cell.recent.len().saturating_sub(crate::model::RECENT_RUNS);
    let recent = &cell.recent[start..];
    let mut text = String::with_capacity(recent.len() + 2);
    for run in recent {
        match run.state {
            State::Up | State::NoData => {}
            State::Degraded => text.push('!'),
            State::Down => text.push('~'),
        }
        text.push(match run.seconds.filter(|seconds| seconds.is_finite()) {
            Some(seconds) => char::from(SPARK_DIGITS[usize::from(duration_level(seconds))]),
            None => '.',
        });
    }
    let Some(newest) = recent.last() else { return (text, Value::Null, None) };
    let gaps: Vec<i64> = recent.windows(2).map(|pair| (pair[1].at_ms - pair[0].at_ms).max(0) / 1000).collect();
    let gaps = match gaps.first() {
        Some(first) if gaps.iter().all(|gap| gap == first) => json!(first),
        None => json!(0),
        _ => json!(gaps),
    };
    let ago = (cell.last_run_ms != Some(newest.at_ms)).then(|| (now - newest.at_ms).max(0) / 1000);
    (text, gaps, ago)
}

/// The compact overview.
pub fn encode_overview(overview: &Overview) -> Value {
    let now = overview.generated_at_ms;
    let checks: Vec<Value> = overview
        .checks
        .iter()
        .map(|row| {
            let max_ms = row
                .cells
                .iter()
                .flat_map(|cell| cell.sparkline.iter().flatten())
                .filter(|seconds| seconds.is_finite())
                .fold(0.0_f64, |max, seconds| max.max(seconds * 1000.0));
            // Whole milliseconds (a sparkline's scale needs no more).
            let max_ms = max_ms.ceil();
            let scale = max_ms as i64;
            let cells: Vec<Value> = overview
                .regions
                .iter()
                .map(|region| match row.cells.iter().find(|cell| &cell.region == region) {
                    None => Value::Null,
                    Some(cell) => {
                        let (recent, gaps, newest_ago) = runs(cell, now);
                        let cell_reason = cell.reason.clone();
                        let mut cell = json!([
                            cell.state.index(),
                            cell.last_run_ms.map(|at| (now - at).max(0) / 1000),
                            cell.last_seconds.filter(|s| s.is_finite()).map(millis),
                            cell.uptime_24h.map(uptime_hundredths),
                            cell.uptime_7d.map(uptime_hundredths),
                            cell.uptime_30d.map(uptime_hundredths),
                            spark(&cell.sparkline, max_ms),
                            recent,
                            gaps,
                        ]);
                        if let Some(array) = cell.as_array_mut() {
                            if newest_ago.is_some() || cell_reason.is_some() {
                                array.push(json!(newest_ago));
                            }
                            if let Some(reason) = cell_reason {
                                array.push(json!(reason));
                            }
                        }
                        cell
                    }
                })
                .collect();
            json!([row.name, row.kind, row.target, row.labels, scale, cells])
        })
        .collect();
    json!({
        "now": now,
        "regions": overview.regions,
        "states": State::ALL.iter().map(|state| state.as_str()).collect::<Vec<_>>(),
        "checks": checks,
        "uptime_as_of": overview.uptime_as_of_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Cell, CheckRow, RecentRun};

    #[test]
    fn uptimes_round_down() {
        assert_eq!(format_uptime(Some(1999.0 / 2000.0)), "99.95%");
        assert_eq!(format_uptime(Some(0.99999)), "99.99%");
        assert_eq!(format_uptime(Some(1.0)), "100%");
        assert_eq!(format_uptime(Some(0.0)), "0.00%");
        assert_eq!(format_uptime(Some(0.5)), "50.00%");
        assert_eq!(format_uptime(None), "–");
    }

    #[test]
    fn overview_is_compact() {
        let overview = Overview {
            generated_at_ms: 10_000,
            regions: vec!["a".into(), "b".into()],
            checks: vec![CheckRow {
                name: "web".into(),
                kind: "http".into(),
                target: "https://example.test".into(),
                labels: Default::default(),
                cells: vec![Cell {
                    region: "b".into(),
                    state: State::Down,
                    last_run_ms: Some(4_000),
                    last_seconds: Some(0.1234),
                    uptime_24h: Some(0.5),
                    uptime_7d: None,
                    uptime_30d: Some(1.0),
                    sparkline: vec![Some(0.2), None, Some(0.1), Some(0.0)],
                    recent: vec![
                        RecentRun { at_ms: 1_000, state: State::Up, seconds: Some(0.016) },
                        RecentRun { at_ms: 3_000, state: State::Degraded, seconds: Some(1.0) },
                        RecentRun { at_ms: 4_000, state: State::Down, seconds: None },
                    ],
                    reason: None,
                }],
            }],
            uptime_as_of_ms: Some(7_200_000),
        };
        let value = encode_overview(&overview);
        assert_eq!(value["uptime_as_of"], json!(7_200_000));
        assert_eq!(value["checks"][0][4], json!(200));
        assert_eq!(value["checks"][0][5][0], Value::Null);
        assert_eq!(value["checks"][0][5][1], json!([2, 6, 123.4, 5000, null, 10000, "_.W0", "G!e~.", [2, 1]]));
        // A reason follows the newest run's place (null here: the newest run is the last one).
        let mut with_reason = overview.clone();
        with_reason.checks[0].cells[0].reason = Some("status".into());
        let value = encode_overview(&with_reason);
        assert_eq!(value["checks"][0][5][1][9], Value::Null);
        assert_eq!(value["checks"][0][5][1][10], json!("status"));
        assert_eq!(duration_level(0.001), 0);
        assert_eq!(duration_level(0.016), 16);
        assert_eq!(duration_level(1.0), 40);
        assert_eq!(duration_level(600.0), 63);
    }
}
