//! The Prometheus text exposition (format 0.0.4) of the latest result of each (check, region) pair, plus a
//! process's own health, for `/metrics` on probers and on the scheduler.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use probenet_checks::wire::RunResult;

use crate::samples::{FAMILIES, MetricType, Sample, SeriesOptions, Totals, family, samples};
use crate::sink::{CheckMeta, Event, SendError, Sink, SinkHandle};

/// The `Content-Type` of the text exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One family a process adds about itself (`probenet_prober_*`, `probenet_sink_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct FamilySamples {
    /// The family name; counters end in `_total`.
    pub name: String,
    /// The `# HELP` text.
    pub help: String,
    /// The type (gauge or counter).
    pub kind: MetricType,
    /// Each series' labels and value.
    pub series: Vec<(Vec<(String, String)>, f64)>,
}

impl FamilySamples {
    /// A family of one unlabelled series.
    pub fn single(name: &str, help: &str, kind: MetricType, value: f64) -> Self {
        Self { name: name.to_owned(), help: help.to_owned(), kind, series: vec![(Vec::new(), value)] }
    }
}

/// A prober's own health, rendered as `probenet_prober_*` families.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProberHealth {
    /// The prober's name.
    pub prober: String,
    /// Its region.
    pub region: String,
    /// probenet's version.
    pub version: String,
    /// (check, region) pairs assigned to it now.
    pub assigned: u64,
    /// Runs finished since it started.
    pub runs_total: u64,
    /// Results waiting to be acknowledged by the scheduler.
    pub results_pending: u64,
    /// Results the scheduler acknowledged since it started.
    pub results_sent_total: u64,
    /// Whether the last call to the scheduler succeeded.
    pub scheduler_up: bool,
    /// When it started, unix seconds.
    pub start_time_seconds: f64,
}

impl ProberHealth {
    /// The families that describe it.
    pub fn families(&self) -> Vec<FamilySamples> {
        let info = vec![
            ("prober".to_owned(), self.prober.clone()),
            ("region".to_owned(), self.region.clone()),
            ("version".to_owned(), self.version.clone()),
        ];
        vec![
            FamilySamples {
                name: "probenet_prober_info".into(),
                help: "The prober's name, region and version".into(),
                kind: MetricType::Gauge,
                series: vec![(info, 1.0)],
            },
            FamilySamples::single(
                "probenet_prober_assigned_checks",
                "Check and region pairs assigned to this prober",
                MetricType::Gauge,
                self.assigned as f64,
            ),
            FamilySamples::single(
                "probenet_prober_runs_total",
                "Runs finished since the prober started",
                MetricType::Counter,
                self.runs_total as f64,
            ),
            FamilySamples::single(
                "probenet_prober_results_pending",
                "Results waiting for the scheduler's acknowledgement",
                MetricType::Gauge,
                self.results_pending as f64,
            ),
            FamilySamples::single(
                "probenet_prober_results_sent_total",
                "Results the scheduler acknowledged",
                MetricType::Counter,
                self.results_sent_total as f64,
            ),
            FamilySamples::single(
                "probenet_prober_scheduler_up",
                "Whether the last call to the scheduler succeeded",
                MetricType::Gauge,
                if self.scheduler_up { 1.0 } else { 0.0 },
            ),
            FamilySamples::single(
                "probenet_prober_start_time_seconds",
                "When the prober started, in unixtime",
                MetricType::Gauge,
                self.start_time_seconds,
            ),
        ]
    }
}

/// The `probenet_sink_*` families of running sinks: events sent, retried, dropped and queued, per sink.
pub fn sink_families(sinks: &[SinkHandle]) -> Vec<FamilySamples> {
    let mut families = [
        ("probenet_sink_sent_total", "Events a sink delivered", MetricType::Counter),
        ("probenet_sink_retries_total", "Failed deliveries a sink retried", MetricType::Counter),
        ("probenet_sink_dropped_total", "Events a sink gave up", MetricType::Counter),
        ("probenet_sink_queued", "Events waiting in a sink's queue", MetricType::Gauge),
        (
            "probenet_sink_behind_seconds",
            "Age of the oldest result a sink has read and not delivered yet (0: caught up)",
            MetricType::Gauge,
        ),
    ]
    .map(|(name, help, kind)| FamilySamples { name: name.into(), help: help.into(), kind, series: Vec::new() });
    for sink in sinks {
        let counters = sink.counters();
        let labels = vec![("sink".to_owned(), sink.name().to_owned()), ("kind".to_owned(), sink.kind().to_owned())];
        let values = [
            counters.sent as f64,
            counters.retried as f64,
            counters.dropped as f64,
            counters.queued as f64,
            counters.behind_ms as f64 / 1000.0,
        ];
        for (family, value) in families.iter_mut().zip(values) {
            family.series.push((labels.clone(), value));
        }
    }
    families.into_iter().collect()
}

#[derive(Debug)]
struct Entry {
    check: Arc<CheckMeta>,
    result: Arc<RunResult>,
    totals: Totals,
}

/// The latest result of each (check, region) pair, fed by [`Event`]s, rendered as the text exposition.
/// Thread-safe; also a [`Sink`], so it can sit behind a [`SinkHandle`] like any other.
#[derive(Debug, Default)]
pub struct Latest {
    options: Mutex<SeriesOptions>,
    pairs: Mutex<BTreeMap<(String, String), Entry>>,
}

impl Latest {
    /// An empty registry.
    pub fn new(options: SeriesOptions) -> Self {
        Self { options: Mutex::new(options), pairs: Mutex::new(BTreeMap::new()) }
    }

    /// Labels the series of every later render with `options` (a config reload changed them).
    pub fn set_options(&self, options: SeriesOptions) {
        *self.options.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = options;
    }

    /// Takes an event: a result replaces its pair's previous one (an older result is ignored); a removal drops
    /// the pair.
    pub fn record(&self, event: &Event) {
        let mut pairs = self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::Result { check, result } => {
                let key = (check.name.clone(), result.region.clone());
                let entry = pairs.entry(key).or_insert_with(|| Entry {
                    check: check.clone(),
                    result: result.clone(),
                    totals: Totals::default(),
                });
                if entry.totals.observe(result) {
                    entry.check = check.clone();
                    entry.result = result.clone();
                }
            }
            Event::Removed { check, region, .. } => {
                pairs.remove(&(check.name.clone(), region.clone()));
            }
        }
    }

    /// The (check, region) pairs held.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).keys().cloned().collect()
    }

    /// Pairs held.
    pub fn len(&self) -> usize {
        self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether no pair is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The exposition of every pair's latest result.
    pub fn render(&self) -> String {
        self.render_with(&[])
    }

    /// The exposition of every pair's latest result followed by `extra` families.
    pub fn render_with(&self, extra: &[FamilySamples]) -> String {
        self.render_chunks(extra).concat()
    }

    /// The exposition in pieces, one per family, for a server to send one after another. Each pair's samples
    /// are written as text as soon as they are made, so a scrape holds the text once, never every sample of
    /// every pair with its labels (at tens of thousands of pairs that was several times the text, and a large
    /// heap the process kept after the scrape).
    pub fn render_chunks(&self, extra: &[FamilySamples]) -> Vec<String> {
        let options = self.options.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let mut by_family = vec![String::new(); FAMILIES.len()];
        {
            let pairs = self.pairs.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for entry in pairs.values() {
                for sample in samples(&entry.check, &entry.result, &entry.totals, &options) {
                    write_sample(&mut by_family, &sample);
                }
            }
        }
        chunks(by_family, extra)
    }
}

impl Sink for Latest {
    fn kind(&self) -> &'static str {
        "exposition"
    }

    fn send<'a>(&'a self, batch: &'a [Event]) -> BoxFuture<'a, Result<(), SendError>> {
        for event in batch {
            self.record(event);
        }
        Box::pin(async { Ok(()) })
    }
}

/// Renders samples (grouped by family, one `# HELP` and `# TYPE` each, without timestamps) and `extra` families.
pub fn render(samples: &[Sample], extra: &[FamilySamples]) -> String {
    let mut by_family = vec![String::new(); FAMILIES.len()];
    for sample in samples {
        write_sample(&mut by_family, sample);
    }
    chunks(by_family, extra).concat()
}

/// Appends a sample's line to the text of its family in [`FAMILIES`] (`by_family`, one per family), after
/// the family's header if it is its first line.
fn write_sample(by_family: &mut [String], sample: &Sample) {
    let Some(family) = family(sample.name) else { return };
    let Some(i) = FAMILIES.iter().position(|known| known.name == family.name) else { return };
    let out = &mut by_family[i];
    if out.is_empty() {
        header(out, family.name, family.help, family.kind);
    }
    line(out, sample.name, &sample.labels, sample.value);
}

/// The text of each family that has series, then that of each of `extra` that has series.
fn chunks(by_family: Vec<String>, extra: &[FamilySamples]) -> Vec<String> {
    let mut out: Vec<String> = by_family.into_iter().filter(|text| !text.is_empty()).collect();
    let mut tail = String::new();
    for family in extra.iter().filter(|family| !family.series.is_empty()) {
        write_family(&mut tail, family);
    }
    if !tail.is_empty() {
        out.push(tail);
    }
    out
}

/// Every family in the text format, in order (see [`write_family`]).
pub fn text(families: &[FamilySamples]) -> String {
    let mut out = String::new();
    for family in families {
        write_family(&mut out, family);
    }
    out
}

/// Writes one family: its `# HELP` and `# TYPE` lines, then each series (none is fine: the header stays).
/// The one writer of the text format, also for the scheduler's own series.
pub fn write_family(out: &mut String, family: &FamilySamples) {
    header(out, &family.name, &family.help, family.kind);
    for (labels, value) in &family.series {
        line(out, &family.name, labels, *value);
    }
}

fn header(out: &mut String, name: &str, help: &str, kind: MetricType) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {}", kind.as_str());
}

fn line(out: &mut String, name: &str, labels: &[(String, String)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, value)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape(value));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", format_value(value));
}

/// A label value escaped for the text format: backslash, double quote and line feed.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A value as the text format spells it (`NaN`, `+Inf`, `-Inf`, or the shortest decimal).
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf".to_owned() } else { "-Inf".to_owned() }
    } else {
        value.to_string()
    }
}
