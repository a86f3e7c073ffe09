//! The `http` kind: one request (and its redirects) on fresh connections, timed phase by phase
//! as blackbox_exporter times them, and judged against its `expect` block.

mod execute;
mod spec;

pub use spec::{
    BasicAuthSpec, HttpCheck, HttpExpect, HttpExpectSpec, HttpSpec, HttpVersion, IpVersion, JsonAssert, JsonAssertSpec,
    JsonTest, PHASES, StatusMatch, StatusSpec,
};
