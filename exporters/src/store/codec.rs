//! Byte encodings of the store: the log-scale latency histogram, phase sums, and the compressed result body.

use std::collections::BTreeMap;

use probenet_checks::outcome::Outcome;
use serde::{Deserialize, Serialize};

/// The smallest duration the histogram resolves, in seconds (0.1 ms); anything below falls in bucket 0.
pub const HISTOGRAM_MIN_SECONDS: f64 = 1e-4;
/// Buckets per doubling of the duration: each bucket spans a factor of 2^(1/8) ≈ 1.0905.
pub const HISTOGRAM_BUCKETS_PER_OCTAVE: f64 = 8.0;
/// The largest relative error of a percentile read from the histogram, for durations of at least
/// [`HISTOGRAM_MIN_SECONDS`]: the bucket's geometric middle is at most 2^(1/16) - 1 ≈ 4.4% from any value in it.
pub const HISTOGRAM_RELATIVE_ERROR: f64 = 0.0443;

/// A fixed log-scale histogram of run durations: 256 buckets from 0.1 ms up (8 per octave), kept sparse.
/// Histograms add and subtract exactly, so rollups of any level combine into the histogram of a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: BTreeMap<u8, u64>,
}

impl Histogram {
    /// The bucket of a duration in seconds.
    pub fn bucket(seconds: f64) -> u8 {
        if !seconds.is_finite() || seconds <= HISTOGRAM_MIN_SECONDS {
            return if seconds.is_nan() || seconds <= HISTOGRAM_MIN_SECONDS { 0 } else { u8::MAX };
        }
        let index = ((seconds / HISTOGRAM_MIN_SECONDS).log2() * HISTOGRAM_BUCKETS_PER_OCTAVE).floor();
        if index >= 255.0 { u8::MAX } else { index as u8 }
    }

    /// The value a bucket stands for: its geometric middle (0.1 ms for bucket 0).
    pub fn value(bucket: u8) -> f64 {
        if bucket == 0 {
            return HISTOGRAM_MIN_SECONDS;
        }
        HISTOGRAM_MIN_SECONDS * ((f64::from(bucket) + 0.5) / HISTOGRAM_BUCKETS_PER_OCTAVE).exp2()
    }

    /// Counts one duration.
    pub fn record(&mut self, seconds: f64) {
        *self.counts.entry(Self::bucket(seconds)).or_insert(0) += 1;
    }

    /// Adds another histogram to this one.
    pub fn add(&mut self, other: &Histogram) {
        for (bucket, count) in &other.counts {
            *self.counts.entry(*bucket).or_insert(0) += count;
        }
    }

    /// Removes another histogram's counts from this one (saturating at zero).
    pub fn subtract(&mut self, other: &Histogram) {
        for (bucket, count) in &other.counts {
            if let Some(mine) = self.counts.get_mut(bucket) {
                *mine = mine.saturating_sub(*count);
            }
        }
        self.counts.retain(|_, count| *count > 0);
    }

    /// How many durations were counted.
    pub fn total(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The `q` quantile (0..=1) by nearest rank, as the value of its bucket; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in &self.counts {
            seen += count;
            if seen >= rank {
                return Some(Self::value(*bucket));
            }
        }
        self.counts.keys().next_back().map(|bucket| Self::value(*bucket))
    }

    /// The sparse encoding: (bucket byte, count varint) pairs in bucket order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 2);
        for (bucket, count) in &self.counts {
            out.push(*bucket);
            put_varint(&mut out, *count);
        }
        out
    }

    /// Decodes [`Histogram::encode`]'s output; `None` when malformed.
    pub fn decode(mut bytes: &[u8]) -> Option<Self> {
        let mut counts = BTreeMap::new();
        while let Some((bucket, rest)) = bytes.split_first() {
            let (count, rest) = get_varint(rest)?;
            *counts.entry(*bucket).or_insert(0) += count;
            bytes = rest;
        }
        Some(Self { counts })
    }
}

/// Per phase name: (sum of seconds, runs that had the phase).
pub type PhaseSums = BTreeMap<String, (f64, u64)>;

/// Marks the compact phase encoding (schema version 4 on); the legacy one starts with a name length.
const PHASES_COMPACT: u8 = 0xFF;

/// Encodes phase sums: a marker byte, then per phase the name (dictionary index or inline, see
/// [`super::body`]), the count varint shifted left by one, its low bit set when the sum follows as exact
/// nanoseconds (varint), else the sum as f64 little-endian.
pub fn encode_phases(phases: &PhaseSums) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + phases.len() * 10);
    if phases.is_empty() {
        return out;
    }
    out.push(PHASES_COMPACT);
    for (name, (sum, count)) in phases {
        super::body::put_name(&mut out, name);
        match super::body::exact_nanos(*sum) {
            Some(nanos) => {
                put_varint(&mut out, (count << 1) | 1);
                put_varint(&mut out, nanos);
            }
            None => {
                put_varint(&mut out, count << 1);
                out.extend_from_slice(&sum.to_le_bytes());
            }
        }
    }
    out
}

/// Encodes phase sums the way schema versions 1 to 3 did: per phase, name length varint, name, sum as f64
/// little-endian, count varint.
pub fn encode_legacy_phases(phases: &PhaseSums) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, (sum, count)) in phases {
        put_varint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&sum.to_le_bytes());
        put_varint(&mut out, *count);
    }
    out
}

/// Decodes [`encode_phases`]'s (or [`encode_legacy_phases`]'s) output; `None` when malformed.
pub fn decode_phases(bytes: &[u8]) -> Option<PhaseSums> {
    let mut phases = PhaseSums::new();
    if let Some((&PHASES_COMPACT, mut rest)) = bytes.split_first() {
        while !rest.is_empty() {
            let name = super::body::get_name(&mut rest)?;
            let (code, after) = get_varint(rest)?;
            let (sum, after) = if code & 1 == 1 {
                let (nanos, after) = get_varint(after)?;
                (super::body::from_nanos(nanos), after)
            } else {
                (f64::from_le_bytes(after.get(..8)?.try_into().ok()?), after.get(8..)?)
            };
            let entry = phases.entry(name).or_insert((0.0, 0));
            entry.0 += sum;
            entry.1 += code >> 1;
            rest = after;
        }
        return Some(phases);
    }
    let mut bytes = bytes;
    while !bytes.is_empty() {
        let (len, rest) = get_varint(bytes)?;
        let len = usize::try_from(len).ok()?;
        let name = std::str::from_utf8(rest.get(..len)?).ok()?.to_owned();
        let sum = f64::from_le_bytes(rest.get(len..len + 8)?.try_into().ok()?);
        let (count, rest) = get_varint(rest.get(len + 8..)?)?;
        let entry = phases.entry(name).or_insert((0.0, 0));
        entry.0 += sum;
        entry.1 += count;
        bytes = rest;
    }
    Some(phases)
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn get_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[i + 1..]));
        }
    }
    None
}

/// What the `body` column holds besides the indexed columns: everything needed to rebuild the `RunResult`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Body {
    /// When the run really started.
    pub started_at_ms: i64,
    /// The prober that ran it.
    pub prober: String,
    /// The outcome, with artifact paths set and their bytes left out.
    pub outcome: Outcome,
}

#[derive(Serialize)]
struct BodyRef<'a> {
    started_at_ms: i64,
    prober: &'a str,
    outcome: &'a Outcome,
}

/// Encodes a [`Body`] made of these parts in the compact form (see [`super::body`]). What the row's columns
/// hold is left out (`started_at_ms` is kept relative to `planned_at_ms`; the outcome's state and duration are
/// the `state` and `duration` columns), and so are the `log` lines of a run that was up (they say what every
/// successful run says; failed and degraded runs keep theirs).
pub fn encode_body(planned_at_ms: i64, started_at_ms: i64, prober: &str, outcome: &Outcome) -> Result<Vec<u8>, String> {
    let relative = started_at_ms.wrapping_sub(planned_at_ms);
    let mut value = serde_json::to_value(BodyRef { started_at_ms: relative, prober, outcome })
        .map_err(|error| error.to_string())?;
    if let Some(fields) = value.get_mut("outcome").and_then(serde_json::Value::as_object_mut) {
        fields.remove("state");
        fields.remove("duration_seconds");
        if outcome.state == probenet_checks::outcome::State::Up {
            fields.insert("log".into(), serde_json::Value::Array(Vec::new()));
        }
    }
    Ok(super::body::encode(&value))
}

/// The body as schema versions 1 to 3 stored it: JSON compressed with Snappy.
pub fn encode_legacy_body(started_at_ms: i64, prober: &str, outcome: &Outcome) -> Result<Vec<u8>, String> {
    let json = serde_json::to_vec(&BodyRef { started_at_ms, prober, outcome }).map_err(|error| error.to_string())?;
    snap::raw::Encoder::new().compress_vec(&json).map_err(|error| error.to_string())
}

/// Reverses [`encode_body`] (and [`encode_legacy_body`]), given the row's `planned_at_ms`, `state` code and
/// `duration`.
/// A stored row back as the result it was: its body decoded, the pair's names given.
pub(crate) fn decode_result(
    check: String,
    region: String,
    planned_at_ms: i64,
    body: &[u8],
    state: i64,
    duration: f64,
) -> Result<probenet_checks::wire::RunResult, super::StoreError> {
    let body = decode_body(body, planned_at_ms, state, duration)
        .map_err(|message| super::StoreError::Codec(format!("decoding the result of {check}/{region}: {message}")))?;
    Ok(probenet_checks::wire::RunResult {
        check,
        region,
        planned_at_ms,
        started_at_ms: body.started_at_ms,
        prober: body.prober,
        outcome: body.outcome,
    })
}

pub fn decode_body(bytes: &[u8], planned_at_ms: i64, state: i64, duration: f64) -> Result<Body, String> {
    if let Some(mut value) = super::body::decode(bytes) {
        if let Some(started) = value.get_mut("started_at_ms") {
            let relative = started.as_i64().ok_or("a body without its start time")?;
            *started = planned_at_ms.wrapping_add(relative).into();
        }
        if let Some(fields) = value.get_mut("outcome").and_then(serde_json::Value::as_object_mut) {
            let state = match state {
                0 => "up",
                1 => "degraded",
                _ => "down",
            };
            fields.entry("state").or_insert_with(|| state.into());
            fields.entry("duration_seconds").or_insert_with(|| duration.into());
        }
        return serde_json::from_value(value).map_err(|error| error.to_string());
    }
    let json = snap::raw::Decoder::new().decompress_vec(bytes).map_err(|error| error.to_string())?;
    serde_json::from_slice(&json).map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_round_trips_and_bounds_the_error() {
        let mut histogram = Histogram::default();
        for i in 1..=1000 {
            histogram.record(f64::from(i) / 1000.0);
        }
        let decoded = Histogram::decode(&histogram.encode()).unwrap();
        assert_eq!(decoded, histogram);
        for (q, exact) in [(0.5, 0.5), (0.9, 0.9), (0.99, 0.99)] {
            let estimate = histogram.quantile(q).unwrap();
            assert!((estimate - exact).abs() / exact <= HISTOGRAM_RELATIVE_ERROR, "{q}: {estimate}");
        }
        let mut other = histogram.clone();
        other.subtract(&histogram);
        assert_eq!(other.total(), 0);
        assert_eq!(Histogram::bucket(f64::INFINITY), 255);
        assert_eq!(Histogram::bucket(0.0), 0);
    }

    #[test]
    fn phases_round_trip() {
        let mut phases = PhaseSums::new();
        phases.insert("connect".into(), (0.25, 3));
        phases.insert("tls".into(), (1.5, 2));
        phases.insert("a custom phase".into(), (0.1 + 0.2, 7));
        assert_eq!(decode_phases(&encode_phases(&phases)), Some(phases.clone()));
        assert_eq!(decode_phases(&encode_legacy_phases(&phases)), Some(phases));
        assert_eq!(decode_phases(&[5, b'a']), None);
    }
}
