//! Result sinks: Prometheus exposition, remote write, result logs and the embedded store.
//!
//! Every sink implements [`Sink`]; a [`SinkHandle`] runs it behind its own bounded queue, so a slow or dead
//! sink never blocks probing.

pub mod sink;
pub mod store;

pub use sink::{CheckMeta, Event, Exporters, QueueOptions, SendError, Sink, SinkCounters, SinkHandle};
