//! The `tcp` kind: a TCP connection to `host:port` and an optional send/expect script over it, as
//! blackbox_exporter's tcp prober with `query_response`.

mod execute;
mod spec;

pub use spec::{TcpCheck, TcpSpec, TcpStep, TcpStepSpec};
