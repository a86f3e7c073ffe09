//! What an `api` run reports in its outcome's details: one entry per step run, and which step failed.

use serde::{Deserialize, Serialize};

use crate::tls::TlsPart;

/// The details of an `api` run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiDetails {
    /// The steps run, in order: every step up to and including the one that failed.
    pub steps: Vec<StepDetails>,
    /// The name of the step that failed, if one did.
    pub failed_step: Option<String>,
    /// The TLS session and certificate of the last `https://` step that reached one.
    #[serde(flatten)]
    pub tls: TlsPart,
}

/// One step as it ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepDetails {
    /// The step's name.
    pub name: String,
    /// Its URL as written in the config (variables and secrets shown as references).
    pub url: String,
    /// Whether the step passed.
    pub passed: bool,
    /// The final response's status code, 0 without a response.
    pub status_code: u16,
    /// The final response's HTTP version: `1.0`, `1.1`, `2` (empty without a response).
    pub http_version: String,
    /// Redirects followed.
    pub redirects: u32,
    /// Body bytes read.
    pub content_length: usize,
    /// Whether the body was longer than `body_limit` and cut there.
    pub body_truncated: bool,
    /// Seconds from the step's start to its end.
    pub duration_seconds: f64,
    /// Seconds per phase, summed over the step's redirects.
    pub phases: StepPhases,
    /// The values captured: their names and lengths, never the values.
    pub captured: Vec<Captured>,
}

/// A step's phases, in seconds, as `http` times them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepPhases {
    /// Name resolution.
    pub resolve: f64,
    /// The TCP connection.
    pub connect: f64,
    /// The TLS handshake.
    pub tls: f64,
    /// From the request to the response's first byte.
    pub processing: f64,
    /// Reading the body.
    pub transfer: f64,
}

impl StepPhases {
    /// The seconds of `phase` (one of [`crate::http::PHASES`]).
    pub fn get(&self, phase: &str) -> f64 {
        match phase {
            "resolve" => self.resolve,
            "connect" => self.connect,
            "tls" => self.tls,
            "processing" => self.processing,
            "transfer" => self.transfer,
            _ => 0.0,
        }
    }

    /// Sets the seconds of `phase`.
    pub fn set(&mut self, phase: &str, seconds: f64) {
        match phase {
            "resolve" => self.resolve = seconds,
            "connect" => self.connect = seconds,
            "tls" => self.tls = seconds,
            "processing" => self.processing = seconds,
            "transfer" => self.transfer = seconds,
            _ => {}
        }
    }
}

/// A captured value, as results show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Captured {
    /// The variable name.
    pub name: String,
    /// The value's length in bytes.
    pub length: usize,
}

impl crate::details::Details for ApiDetails {
    const RECORD_KEYS: &'static [&'static str] = &["failed_step", "cipher_suite"];
}
