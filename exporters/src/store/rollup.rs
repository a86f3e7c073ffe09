//! Rollup rows (per minute, hour and day, per check and region): the aggregate, its rows, and the plan that
//! covers a time window with the fewest rows.

use rusqlite::{Connection, OptionalExtension, params};

use super::codec::{Histogram, PhaseSums, decode_phases, encode_phases};
pub use super::merge::{Latest, RowCache, merge_rows};

/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;
/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a (UTC) day.
pub const DAY_MS: i64 = 86_400_000;

/// A rollup level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    /// `rollup_minute`.
    Minute,
    /// `rollup_hour`.
    Hour,
    /// `rollup_day`.
    Day,
}

impl Level {
    /// Every level, finest first.
    pub const ALL: [Level; 3] = [Level::Minute, Level::Hour, Level::Day];

    /// The table holding this level.
    pub fn table(self) -> &'static str {
        match self {
            Level::Minute => "rollup_minute",
            Level::Hour => "rollup_hour",
            Level::Day => "rollup_day",
        }
    }

    /// The bucket width in milliseconds.
    pub fn unit_ms(self) -> i64 {
        match self {
            Level::Minute => MINUTE_MS,
            Level::Hour => HOUR_MS,
            Level::Day => DAY_MS,
        }
    }

    /// The start of the bucket holding `at_ms`.
    pub fn start(self, at_ms: i64) -> i64 {
        at_ms.div_euclid(self.unit_ms()) * self.unit_ms()
    }
}

/// The aggregate of some runs: counts by state, summed duration, duration histogram and phase sums.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Agg {
    /// Runs.
    pub runs: i64,
    /// Runs that were up.
    pub up: i64,
    /// Runs that were degraded.
    pub degraded: i64,
    /// Runs that were down.
    pub down: i64,
    /// Summed duration of every run, in seconds.
    pub seconds: f64,
    /// Durations of every run.
    pub hist: Histogram,
    /// Phase sums.
    pub phases: PhaseSums,
}

/// How every backend shapes its aggregates into answers: one place for what a bucket, a latency row and a
/// latency point hold.
impl Agg {
    /// The bucket starting at `start_ms` (zero runs when nothing ran in it).
    pub(crate) fn bucket(&self, start_ms: i64) -> super::Bucket {
        super::Bucket {
            start_ms,
            runs: self.runs,
            up: self.up,
            degraded: self.degraded,
            down: self.down,
            avg_seconds: (self.runs > 0).then(|| self.seconds / self.runs as f64),
        }
    }

    /// A region's latency: percentiles from the histogram (within 4.4%), exact means; `None` without runs.
    pub(crate) fn latency(&self, region: String) -> Option<super::Latency> {
        (self.runs > 0).then(|| super::Latency {
            region,
            runs: self.runs,
            p50: self.hist.quantile(0.5),
            p90: self.hist.quantile(0.9),
            p95: self.hist.quantile(0.95),
            p99: self.hist.quantile(0.99),
            avg: Some(self.seconds / self.runs as f64),
            phases: self.phase_averages(),
        })
    }

    /// The latency of the step starting at `start_ms`; `None` without runs.
    pub(crate) fn point(&self, start_ms: i64) -> Option<super::LatencyPoint> {
        (self.runs > 0).then(|| super::LatencyPoint {
            start_ms,
            runs: self.runs,
            p50: self.hist.quantile(0.5),
            p95: self.hist.quantile(0.95),
            avg: Some(self.seconds / self.runs as f64),
            phases: self.phase_averages(),
        })
    }
}

/// A window cut in buckets, for the per-bucket aggregates both backends compute: which rollup terms to read, and
/// which bucket each row falls in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Buckets {
    /// The window's start.
    pub from_ms: i64,
    /// Its end (excluded).
    pub to_ms: i64,
    /// The bucket width (at least 1).
    pub bucket_ms: i64,
    /// Keyed by region too, or all regions together (region 0).
    pub per_region: bool,
}

impl Buckets {
    /// The terms to read: `window(start, end)` of every bucket (at most 100,000 buckets).
    pub(crate) fn terms(&self, mut window: impl FnMut(i64, i64) -> Vec<Term>) -> Vec<Term> {
        let count = ((self.to_ms - self.from_ms).max(0) + self.bucket_ms - 1) / self.bucket_ms;
        let mut terms = Vec::new();
        for index in 0..count.min(100_000) {
            let start = self.from_ms + index * self.bucket_ms;
            terms.extend(window(start, (start + self.bucket_ms).min(self.to_ms)));
        }
        terms
    }

    /// Adds a row (`sign` 1) or takes it away (-1) in the bucket of `at`; rows outside the window are skipped.
    pub(crate) fn add(
        &self,
        out: &mut std::collections::BTreeMap<(i64, i64), Agg>,
        sign: i64,
        region: i64,
        at: i64,
        agg: &Agg,
    ) {
        if at < self.from_ms || at >= self.to_ms {
            return;
        }
        let key = ((at - self.from_ms) / self.bucket_ms, if self.per_region { region } else { 0 });
        out.entry(key).or_default().combine(agg, sign);
    }
}

/// Every bucket of `bucket_ms` from `from_ms` to `to_ms` out of a series keyed by (bucket index, 0), empty ones
/// included (at most 100,000).
pub(crate) fn buckets(
    series: &std::collections::BTreeMap<(i64, i64), Agg>,
    from_ms: i64,
    to_ms: i64,
    bucket_ms: i64,
) -> Vec<super::Bucket> {
    let count = ((to_ms - from_ms).max(0) + bucket_ms - 1) / bucket_ms;
    (0..count.min(100_000))
        .map(|index| series.get(&(index, 0)).cloned().unwrap_or_default().bucket(from_ms + index * bucket_ms))
        .collect()
}

/// The steps with runs of a series keyed by (step index, 0), as latency points.
pub(crate) fn points(
    series: std::collections::BTreeMap<(i64, i64), Agg>,
    from_ms: i64,
    step_ms: i64,
) -> Vec<super::LatencyPoint> {
    series.into_iter().filter_map(|((index, _), agg)| agg.point(from_ms + index * step_ms)).collect()
}

impl Agg {
    /// Counts one run with the given state code (0 up, 1 degraded, 2 down), duration and phases.
    pub fn record<'a>(&mut self, state: i64, seconds: f64, phases: impl IntoIterator<Item = (&'a str, f64)>) {
        self.runs += 1;
        match state {
            0 => self.up += 1,
            1 => self.degraded += 1,
            _ => self.down += 1,
        }
        self.seconds += seconds;
        self.hist.record(seconds);
        for (name, value) in phases {
            let entry = self.phases.entry(name.to_owned()).or_insert((0.0, 0));
            entry.0 += value;
            entry.1 += 1;
        }
    }

    /// Adds (`sign` 1) or removes (`sign` -1) another aggregate.
    pub fn combine(&mut self, other: &Agg, sign: i64) {
        self.runs += sign * other.runs;
        self.up += sign * other.up;
        self.degraded += sign * other.degraded;
        self.down += sign * other.down;
        self.seconds += sign as f64 * other.seconds;
        if sign >= 0 {
            self.hist.add(&other.hist);
        } else {
            self.hist.subtract(&other.hist);
        }
        for (name, (sum, count)) in &other.phases {
            let entry = self.phases.entry(name.clone()).or_insert((0.0, 0));
            entry.0 += sign as f64 * sum;
            entry.1 = if sign >= 0 { entry.1 + count } else { entry.1.saturating_sub(*count) };
        }
        self.phases.retain(|_, (_, count)| *count > 0);
    }

    /// Average phase seconds, over the runs that had each phase.
    pub fn phase_averages(&self) -> std::collections::BTreeMap<String, f64> {
        self.phases
            .iter()
            .filter(|(_, (_, count))| *count > 0)
            .map(|(name, (sum, count))| (name.clone(), sum / *count as f64))
            .collect()
    }
}

/// Running counts (runs, up, degraded, down) kept in each rollup row since schema version 4: in minute and
/// hour rows, of the pair's UTC day through the end of the bucket; in day rows, of everything before the day.
pub type Counts = [i64; 4];

/// The running-count columns of a level's table.
pub fn prefix_columns(level: Level) -> &'static str {
    match level {
        Level::Day => "before_runs, before_up, before_degraded, before_down",
        _ => "day_runs, day_up, day_degraded, day_down",
    }
}

/// The counts of an aggregate.
pub fn counts(agg: &Agg) -> Counts {
    [agg.runs, agg.up, agg.degraded, agg.down]
}

pub(crate) fn add_counts(a: Counts, b: Counts) -> Counts {
    [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]
}

/// Reads one rollup row and its running counts.
pub fn read_row(
    conn: &Connection,
    level: Level,
    check: i64,
    region: i64,
    start: i64,
) -> rusqlite::Result<Option<(Agg, Counts)>> {
    let sql = format!(
        "SELECT runs, up, degraded, down, seconds, hist, phases, {} FROM {} \
         WHERE check_id = ?1 AND region_id = ?2 AND start_ms = ?3",
        prefix_columns(level),
        level.table()
    );
    conn.prepare_cached(&sql)?
        .query_row(params![check, region, start], |row| Ok((row_agg(row)?, row_counts(row, 7)?)))
        .optional()
}

/// Four integer columns from `first` on.
pub fn row_counts(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Counts> {
    let get = |i: usize| row.get::<_, Option<i64>>(first + i).map(Option::unwrap_or_default);
    Ok([get(0)?, get(1)?, get(2)?, get(3)?])
}

/// Reads the aggregate columns of a row selected as `runs, up, degraded, down, seconds, hist, phases`.
pub fn row_agg(row: &rusqlite::Row<'_>) -> rusqlite::Result<Agg> {
    row_agg_at(row, 0)
}

/// As [`row_agg`], with the aggregate columns starting at `first`.
pub fn row_agg_at(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Agg> {
    let hist: Vec<u8> = row.get(first + 5)?;
    let phases: Vec<u8> = row.get(first + 6)?;
    Ok(Agg {
        runs: row.get(first)?,
        up: row.get(first + 1)?,
        degraded: row.get(first + 2)?,
        down: row.get(first + 3)?,
        seconds: row.get(first + 4)?,
        hist: Histogram::decode(&hist).unwrap_or_default(),
        phases: decode_phases(&phases).unwrap_or_default(),
    })
}

/// Writes (inserts or replaces) one rollup row with its running counts (see [`Counts`]).
pub fn write_row(
    conn: &Connection,
    level: Level,
    check: i64,
    region: i64,
    start: i64,
    agg: &Agg,
    prefix: Counts,
) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT OR REPLACE INTO {} (check_id, region_id, start_ms, runs, up, degraded, down, seconds, hist, phases, \
         {}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        level.table(),
        prefix_columns(level)
    );
    conn.prepare_cached(&sql)?.execute(params![
        check,
        region,
        start,
        agg.runs,
        agg.up,
        agg.degraded,
        agg.down,
        agg.seconds,
        agg.hist.encode(),
        encode_phases(&agg.phases),
        prefix[0],
        prefix[1],
        prefix[2],
        prefix[3]
    ])?;
    Ok(())
}

/// Writes one rollup row without running counts (schema versions before 4; used by their backfills).
pub fn write_legacy_row(
    conn: &Connection,
    level: Level,
    check: i64,
    region: i64,
    start: i64,
    agg: &Agg,
) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT OR REPLACE INTO {} (check_id, region_id, start_ms, runs, up, degraded, down, seconds, hist, phases) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        level.table()
    );
    conn.prepare_cached(&sql)?.execute(params![
        check,
        region,
        start,
        agg.runs,
        agg.up,
        agg.degraded,
        agg.down,
        agg.seconds,
        agg.hist.encode(),
        encode_phases(&agg.phases)
    ])?;
    Ok(())
}

/// Rebuilds a coarser level from a finer one over every row (used by migrations that add a level).
pub fn backfill(conn: &Connection, from: Level, to: Level) -> rusqlite::Result<()> {
    let sql = format!(
        "SELECT check_id, region_id, start_ms, runs, up, degraded, down, seconds, hist, phases FROM {} \
         ORDER BY check_id, region_id, start_ms",
        from.table()
    );
    let mut statement = conn.prepare(&sql)?;
    let mut rows = statement.query([])?;
    let mut current: Option<((i64, i64, i64), Agg)> = None;
    while let Some(row) = rows.next()? {
        let key = (row.get(0)?, row.get(1)?, to.start(row.get(2)?));
        let agg = row_agg_at(row, 3)?;
        match &mut current {
            Some((at, sum)) if *at == key => sum.combine(&agg, 1),
            _ => {
                if let Some(((check, region, start), sum)) = current.take() {
                    write_legacy_row(conn, to, check, region, start, &sum)?;
                }
                current = Some((key, agg));
            }
        }
    }
    if let Some(((check, region, start), sum)) = current {
        write_legacy_row(conn, to, check, region, start, &sum)?;
    }
    Ok(())
}

/// A source of rows for part of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Raw results with `planned_at_ms` in the range.
    Raw,
    /// Rollup rows of a level with `start_ms` in the range.
    Rollup(Level),
}

/// One term of a plan: add (`sign` 1) or subtract (-1) the rows of `source` in `[from_ms, to_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// 1 or -1.
    pub sign: i64,
    /// Where the rows come from.
    pub source: Source,
    /// Start, inclusive.
    pub from_ms: i64,
    /// End, exclusive.
    pub to_ms: i64,
}

/// What is still stored: rows before these may have been pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    /// Raw results planned at or after this are all kept.
    pub raw_since_ms: i64,
    /// Minute rollups starting at or after this are all kept.
    pub minute_since_ms: i64,
}

impl Kept {
    /// Everything kept.
    pub const ALL: Kept = Kept { raw_since_ms: i64::MIN, minute_since_ms: i64::MIN };
}

/// Covers `[from_ms, to_ms)` with terms: whole days from `rollup_day`, whole hours, whole minutes, and raw
/// results for the partial minutes at the edges. Where raw results at an edge were pruned, a partial minute
/// counts whole when it starts inside the window and not at all otherwise; likewise a partial hour where its
/// minute rollups were pruned. With
/// `complement`, an edge may instead be covered as a coarser row minus what lies outside the window, whichever
/// reads fewer rows (uptime counts subtract exactly; histograms are only ever added).
pub fn plan(from_ms: i64, to_ms: i64, kept: Kept, complement: bool) -> Vec<Term> {
    let mut terms = Vec::new();
    cover(&mut terms, 1, from_ms, to_ms, Some(Level::Day), kept, complement);
    terms
}

fn finer(level: Level) -> Option<Level> {
    match level {
        Level::Day => Some(Level::Hour),
        Level::Hour => Some(Level::Minute),
        Level::Minute => None,
    }
}

fn cover(terms: &mut Vec<Term>, sign: i64, a: i64, b: i64, level: Option<Level>, kept: Kept, complement: bool) {
    if a >= b {
        return;
    }
    if level == Some(Level::Minute) && a < kept.minute_since_ms {
        // Minute rows are gone: the partial hour counts whole when it starts inside [a, b).
        if Level::Hour.start(a) == a {
            terms.push(Term { sign, source: Source::Rollup(Level::Hour), from_ms: a, to_ms: a + 1 });
        }
        return;
    }
    let Some(level) = level else {
        if a >= kept.raw_since_ms {
            terms.push(Term { sign, source: Source::Raw, from_ms: a, to_ms: b });
        } else {
            // Raw rows are gone: the partial minute counts whole when it starts inside [a, b).
            let minute = Level::Minute.start(a);
            if minute == a {
                terms.push(Term { sign, source: Source::Rollup(Level::Minute), from_ms: a, to_ms: a + 1 });
            }
        }
        return;
    };
    let unit = level.unit_ms();
    let first = a.div_euclid(unit) * unit + if a.rem_euclid(unit) == 0 { 0 } else { unit };
    let last = b.div_euclid(unit) * unit;
    if level.start(a) == level.start(b - 1) && (a != first || b != last) {
        // Inside one bucket of this level, not the whole of it.
        let bucket = level.start(a);
        if complement && cost(level, a, b) > 1 + cost(level, bucket, a) + cost(level, b, bucket + unit) {
            terms.push(Term { sign, source: Source::Rollup(level), from_ms: bucket, to_ms: bucket + 1 });
            cover(terms, -sign, bucket, a, finer(level), kept, complement);
            cover(terms, -sign, b, bucket + unit, finer(level), kept, complement);
        } else {
            cover(terms, sign, a, b, finer(level), kept, complement);
        }
        return;
    }
    if first < last {
        terms.push(Term { sign, source: Source::Rollup(level), from_ms: first, to_ms: last });
    }
    cover(terms, sign, a, first, Some(level), kept, complement);
    cover(terms, sign, last, b, Some(level), kept, complement);
}

/// Rows read to cover `[a, b)` (inside one bucket of `level`) with finer levels: the whole finer buckets plus,
/// per partial finer bucket, one row more (a crude but monotone estimate).
fn cost(level: Level, a: i64, b: i64) -> i64 {
    if a >= b {
        return 0;
    }
    match finer(level) {
        None => 2,
        Some(finer_level) => {
            let unit = finer_level.unit_ms();
            let whole = (b.div_euclid(unit) - (a + unit - 1).div_euclid(unit)).max(0);
            let partial = i64::from(a.rem_euclid(unit) != 0) + i64::from(b.rem_euclid(unit) != 0);
            whole + partial * 2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covered(terms: &[Term], at: i64) -> i64 {
        terms
            .iter()
            .map(|term| {
                let width = match term.source {
                    Source::Raw => 1,
                    Source::Rollup(level) => level.unit_ms(),
                };
                let (start, end) = match term.source {
                    Source::Raw => (term.from_ms, term.to_ms),
                    Source::Rollup(_) => (term.from_ms, term.to_ms.max(term.from_ms + 1)),
                };
                let bucket_start = if width == 1 { at } else { at.div_euclid(width) * width };
                if bucket_start >= start && bucket_start < end { term.sign } else { 0 }
            })
            .sum()
    }

    #[test]
    fn plans_cover_every_instant_once() {
        let day = DAY_MS;
        let windows = [
            (0, 30 * day),
            (12_345, 30 * day + 7_777_777),
            (day - 1, day + 1),
            (5 * HOUR_MS + 17 * MINUTE_MS + 3, 5 * HOUR_MS + 59 * MINUTE_MS),
            (23 * HOUR_MS + 59 * MINUTE_MS + 1, 25 * HOUR_MS + 1),
        ];
        for complement in [false, true] {
            for (from, to) in windows {
                let terms = plan(from, to, Kept::ALL, complement);
                for at in [from - 1, from, from + 1, (from + to) / 2, to - 1, to, to + 1] {
                    let expected = i64::from(at >= from && at < to);
                    assert_eq!(covered(&terms, at), expected, "{from}..{to} at {at} ({complement}): {terms:?}");
                }
            }
        }
    }
}
