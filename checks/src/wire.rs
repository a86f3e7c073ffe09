//! The prober ↔ scheduler protocol: JSON bodies under `/v1/`, shared by both sides so neither depends on the
//! other. Compatibility rule: fields are only ever added (with `#[serde(default)]`), never renamed or removed,
//! and unknown fields are ignored, so an older prober keeps working against a newer scheduler.
//!
//! | call | body | answer |
//! |---|---|---|
//! | `POST /v1/register` | [`Register`] | [`Registered`] |
//! | `POST /v1/heartbeat` | [`Heartbeat`] | [`Registered`] (the lease, renewed) |
//! | `POST /v1/deregister` | [`Heartbeat`] | `204`: the prober's work moves at once |
//! | `GET /v1/assignments?prober=NAME&generation=G&wait_seconds=S` | | [`Assignments`] (with the region's view of the config); held up to `S` seconds while the generation is still `G`; `503` while the region has no view |
//! | `POST /v1/results` | [`ResultBatch`] | [`Ack`] |
//!
//! Every call carries `Authorization: Bearer TOKEN`; a token is bound to one region.

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;

/// The protocol version this build speaks, sent by probers in [`Register`].
pub const PROTOCOL_VERSION: u32 = 1;

/// A prober announcing itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Register {
    /// Unique among the probers of the network (default: host name and process id).
    pub name: String,
    /// The region it probes from; must match its token's region.
    pub region: String,
    /// probenet's version, such as `0.1.0`.
    pub version: String,
    /// The protocol version it speaks.
    pub protocol: u32,
    /// The check kinds it can run (`http`, `dns`, ..., `browser` only where a browser is installed). A kind this
    /// build does not know makes the body invalid (`unknown kind "grpc": this build knows ...`).
    #[serde(default)]
    pub kinds: Vec<crate::Kind>,
}

/// The scheduler's answer to [`Register`] and [`Heartbeat`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// How long the registration lasts without a heartbeat; after it, the prober's work moves to others.
    pub lease_seconds: f64,
    /// How often to heartbeat (a third of the lease).
    pub heartbeat_seconds: f64,
}

/// A heartbeat or a deregistration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The prober's name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// How the prober is doing (a heartbeat's; absent from a deregistration and from older probers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<ProberReport>,
}

/// What a prober tells of its backlog, drops and skips with each heartbeat, for the scheduler's `/metrics` and
/// the dashboard's Probers page. Totals count since the prober started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProberReport {
    /// Results not acknowledged by a scheduler yet: in memory and in the spool.
    pub results_pending: u64,
    /// Bytes of its spool.
    pub spool_bytes: u64,
    /// Results lost: dropped in memory or from a full spool, or refused by the scheduler.
    pub results_dropped_total: u64,
    /// Planned runs not made: overruns, no concurrency slot in time, or far behind.
    pub runs_skipped_total: u64,
    /// The 99th percentile of how late its runs started, in milliseconds (none before its first run).
    pub start_lateness_p99_ms: Option<f64>,
}

/// What one prober must run: its region's view of the config (so the prober validates it with the same code)
/// and its share of (check, region) pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assignments {
    /// Increases whenever the config or the set of live probers changes.
    pub generation: u64,
    /// A hash of the view's files, so a prober re-parses them only when they change; one per region.
    pub config_hash: String,
    /// The view of the config for the prober's region ([`crate::config::view`]): the checks that run there,
    /// region names, defaults, scheduling and the exporters `on: probers`, never notifiers, alerts, the
    /// dashboard or other regions' checks. Files keep their names; their text is the view, not the source.
    pub config: Vec<ConfigFile>,
    /// The pairs this prober runs.
    pub assigned: Vec<Assignment>,
}

/// One config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// The name it was loaded under (used in error messages).
    pub name: String,
    /// Its text.
    pub text: String,
}

/// One (check, region) pair given to a prober.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assignment {
    /// The check's name.
    pub check: String,
    /// The region.
    pub region: String,
    /// For interval checks: runs are planned at `k * interval + offset_ms` milliseconds since the Unix epoch.
    /// Fixed per pair (a hash), so a new owner keeps the phase. 0 for cron checks (they run on their schedule).
    pub offset_ms: u64,
    /// The planned time of the pair's latest result the scheduler stored, or the time of a planned handover
    /// when later (the previous holder lives and ran the pair up to it): a new owner runs a planned time it
    /// missed after this one, late, instead of leaving a hole, and never re-runs its previous holder's last
    /// run. Absent from schedulers before 0.2.0; ignored by probers before 0.2.0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after_ms: Option<i64>,
}

/// One run's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The check.
    pub check: String,
    /// The region.
    pub region: String,
    /// When the run was planned, in milliseconds since the Unix epoch; with `check` and `region` it is the
    /// run's id, on which ingest is idempotent.
    pub planned_at_ms: i64,
    /// When it really started.
    pub started_at_ms: i64,
    /// The prober that ran it.
    pub prober: String,
    /// What happened.
    pub outcome: Outcome,
}

impl RunResult {
    /// The run's id: `(check, region, planned_at_ms)`.
    pub fn id(&self) -> (&str, &str, i64) {
        (&self.check, &self.region, self.planned_at_ms)
    }
}

/// Results sent together; acknowledged (or not) as a whole.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultBatch {
    /// The sending prober.
    pub prober: String,
    /// The results, oldest first.
    pub results: Vec<RunResult>,
}

/// The scheduler's acknowledgement of a [`ResultBatch`]: every result is stored (or was already).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ack {
    /// Results stored now.
    pub accepted: usize,
    /// Results already stored before (a replay); not counted twice.
    pub duplicates: usize,
}

/// The start offset of a (check, region) pair on an `interval_ms` grid: a stable hash, so load spreads evenly
/// over the interval and a new owner keeps the phase.
pub fn offset_ms(check: &str, region: &str, interval_ms: u64) -> u64 {
    if interval_ms == 0 {
        return 0;
    }
    stable_hash(&[check.as_bytes(), b"\0", region.as_bytes()]) % interval_ms
}

/// A 64-bit FNV-1a hash followed by a final mix: stable across builds, machines and versions (unlike std's
/// `DefaultHasher`), which the grid offsets and rendezvous scores need.
pub fn stable_hash(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    // splitmix64's finaliser, so nearby inputs spread over the whole range.
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The next run of an interval pair at or after `now_ms`: `k * interval_ms + offset_ms`.
pub fn next_planned_ms(now_ms: i64, interval_ms: u64, offset_ms: u64) -> i64 {
    let interval = i64::try_from(interval_ms.max(1)).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset_ms).unwrap_or(0) % interval;
    let k = (now_ms - offset).div_euclid(interval);
    let at = k * interval + offset;
    if at < now_ms { at + interval } else { at }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        assert_eq!(offset_ms("homepage", "eu-west", 30_000), offset_ms("homepage", "eu-west", 30_000));
        assert_ne!(offset_ms("homepage", "eu-west", 30_000), offset_ms("homepage", "us-east", 30_000));
        for i in 0..1000 {
            assert!(offset_ms(&format!("c{i}"), "r", 10_000) < 10_000);
        }
        // Pinned values: a change here would move every pair's phase on upgrade.
        assert_eq!(stable_hash(&[b"probenet"]), stable_hash(&[b"probe", b"net"]));
        assert_eq!(stable_hash(&[b""]), 17_665_956_581_633_026_203);
    }

    #[test]
    fn offsets_spread_evenly_over_the_interval() {
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            let offset = offset_ms(&format!("check-{i}"), "eu-west", 10_000);
            buckets[usize::try_from(offset / 1000).unwrap_or(0)] += 1;
        }
        assert!(buckets.iter().all(|count| (800..1200).contains(count)), "{buckets:?}");
    }

    #[test]
    fn next_planned_time_is_on_the_grid() {
        assert_eq!(next_planned_ms(10_000, 1_000, 250), 10_250);
        assert_eq!(next_planned_ms(10_250, 1_000, 250), 10_250);
        assert_eq!(next_planned_ms(10_251, 1_000, 250), 11_250);
        assert_eq!(next_planned_ms(0, 60_000, 0), 0);
    }

    #[test]
    fn an_older_peer_ignores_fields_it_does_not_know() {
        let newer = r#"{"lease_seconds": 15.0, "heartbeat_seconds": 5.0, "something_new": [1, 2]}"#;
        let parsed: Registered = serde_json::from_str(newer).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(parsed.heartbeat_seconds, 5.0);
        let older_register = r#"{"name": "p1", "region": "eu-west", "version": "0.1.0", "protocol": 1}"#;
        let parsed: Register = serde_json::from_str(older_register).unwrap_or_else(|error| panic!("{error}"));
        assert!(parsed.kinds.is_empty());
    }

    #[test]
    fn artifact_bytes_travel_as_base64_and_are_left_out_when_empty() {
        let mut outcome = crate::Outcome::failed(crate::Reason::Assertion, "step 2 failed");
        outcome.artifacts.push(crate::outcome::Artifact {
            name: "failure.png".into(),
            media_type: "image/png".into(),
            data: vec![0x89, b'P', b'N', b'G', 0, 255],
            path: None,
        });
        let json = serde_json::to_value(&outcome).unwrap_or_default();
        assert_eq!(json["artifacts"][0]["data"], "iVBORwD/");
        let back: crate::Outcome = serde_json::from_value(json).unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(back.artifacts[0].data, [0x89, b'P', b'N', b'G', 0, 255]);
        outcome.artifacts[0].data.clear();
        outcome.artifacts[0].path = Some("a.png".into());
        let json = serde_json::to_value(&outcome).unwrap_or_default();
        assert!(json["artifacts"][0].get("data").is_none(), "{json}");
        let bad = r#"{"name": "x", "media_type": "image/png", "data": "not base64!", "path": null}"#;
        assert!(serde_json::from_str::<crate::outcome::Artifact>(bad).is_err());
    }
}
