//! probenet's check model: the YAML config, its validation, the check kinds and the outcome of a run.
//!
//! The flow is `load` (files → located YAML trees) → `spec` (raw serde types, one per file section) →
//! `validate` (one pure function into ready [`Config`] types, every error at once) → `run` (one check, once).

pub mod clock;
pub mod config;
pub mod details;
pub mod duration;
pub mod evidence;
pub mod html;
pub mod ips;
pub mod kind;
pub mod metrics;
pub mod net;
pub mod outcome;
pub mod run;
pub mod secret;
pub mod time;
pub mod wire;
pub mod yaml;

pub mod api;
pub mod browser;
pub mod dns;
pub mod grpc;
pub mod http;
pub mod icmp;
pub mod tcp;
pub mod tls;
pub mod websocket;

pub use config::{Check, CheckKind, Config, ConfigError, ConfigErrors, Schedule, load_paths, load_str};
pub use kind::{Kind, KindCheck};
pub use outcome::{Assertion, Outcome, Phase, Reason, State};
pub use run::{RunContext, run_once};
