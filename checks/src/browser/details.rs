//! What a browser run reports in its outcome's details (the executor, in `probenet-browser`, fills it).

use serde::{Deserialize, Serialize};

/// The details of a `browser` run that reached the browser (one without a usable browser is `null`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrowserDetails {
    /// Every step run, in order.
    pub steps: Vec<StepDetails>,
    /// The step that failed, if one did.
    pub failed_step: Option<FailedStep>,
    /// The page's URL at the end.
    pub url: Option<String>,
    /// Its title.
    pub title: Option<String>,
    /// Navigation timing of the first page.
    pub navigation: Option<Navigation>,
    /// Web vitals of the first page.
    pub web_vitals: Option<WebVitals>,
    /// Every document, in the order first seen.
    pub pages: Vec<PageDetails>,
    /// The browser it ran in.
    pub browser: BrowserInfo,
    /// Console errors and uncaught exceptions.
    pub console_errors: usize,
    /// The first few of them.
    pub console_messages: Vec<String>,
    /// Requests sent.
    pub requests: usize,
    /// Requests that failed: no response, or a status of 400 or more.
    pub failed_requests: usize,
    /// The first few of them.
    pub failed_request_list: Vec<FailedRequest>,
}

/// One step of a journey.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct StepDetails {
    /// Its number, from 1.
    pub step: usize,
    /// Its action (`goto`, `click`...).
    pub action: String,
    /// What it acts on.
    pub target: String,
    /// How long it took.
    pub seconds: f64,
    /// Whether it passed.
    pub passed: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The step that failed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedStep {
    /// Its number, from 1.
    pub step: usize,
    /// Its action.
    pub action: String,
    /// What it acts on.
    pub target: String,
    /// Why it failed.
    pub error: Option<String>,
    /// The failure reason.
    pub reason: Option<String>,
    /// The page's URL then.
    pub url: Option<String>,
}

/// Navigation timing of a page, in seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Navigation {
    /// The document's URL.
    pub url: String,
    /// The HTTP status of its response.
    pub status: Option<u16>,
    /// Time to first byte.
    pub ttfb_seconds: Option<f64>,
    /// DOMContentLoaded.
    pub dom_content_loaded_seconds: Option<f64>,
    /// The load event.
    pub load_seconds: Option<f64>,
    /// From sending the document's request to the last byte of its response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_seconds: Option<f64>,
    /// Bytes of the document's request: request line, headers and body, as HTTP/1.1 writes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent_bytes: Option<u64>,
    /// Bytes of the document's response as transferred: headers and the (compressed) body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_bytes: Option<u64>,
}

/// Web vitals of a page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebVitals {
    /// First Contentful Paint, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fcp_seconds: Option<f64>,
    /// Largest Contentful Paint, seconds.
    pub lcp_seconds: Option<f64>,
    /// Cumulative Layout Shift.
    pub cls: Option<f64>,
    /// The longest interaction, seconds.
    pub inp_seconds: Option<f64>,
}

/// One document of a journey: its navigation timing, then its web vitals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageDetails {
    /// URL, status and navigation timing.
    #[serde(flatten)]
    pub navigation: Navigation,
    /// Web vitals.
    #[serde(flatten)]
    pub vitals: WebVitals,
}

/// The browser a journey ran in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BrowserInfo {
    /// Its version.
    pub version: String,
    /// Whether this run started it.
    pub launched: bool,
    /// Whether it runs in Chromium's sandbox.
    pub sandbox: bool,
}

/// A request that failed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FailedRequest {
    /// Its URL.
    pub url: String,
    /// Why.
    pub error: String,
}

impl crate::details::Details for BrowserDetails {
    const RECORD_KEYS: &'static [&'static str] = &["failed_step", "url", "title"];
}
