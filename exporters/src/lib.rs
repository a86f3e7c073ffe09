//! Result sinks: Prometheus exposition, remote write, result logs, Loki, OTLP and the embedded store.
//!
//! Every sink implements [`Sink`]; a [`SinkHandle`] runs it behind its own bounded queue, so a slow or dead
//! sink never blocks probing.

pub mod archive;
pub mod build;
pub mod exposition;
pub mod fed;
pub mod logs;
pub mod loki;
pub mod otlp;
pub mod outputs;
pub mod record;
pub mod remote_write;
pub mod samples;
pub mod sink;
pub mod store;

pub use exposition::{FamilySamples, Latest, ProberHealth, sink_families};
pub use logs::{LogOptions, LogSink};
pub use loki::{LokiError, LokiOptions, LokiSink};
pub use otlp::{OtlpError, OtlpOptions, OtlpSink};
pub use outputs::{Outputs, Rebuilt};
pub use record::{RecordOptions, Secrets, record};
pub use remote_write::{RemoteWriteError, RemoteWriteOptions, RemoteWriteSink};
pub use samples::{Family, MetricType, Sample, SeriesOptions, Totals};
pub use sink::{CheckMeta, Event, Exporters, QueueOptions, SendError, Sink, SinkCounters, SinkHandle};
