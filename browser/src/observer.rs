//! What a page reports while a journey runs: console errors, uncaught exceptions, requests and the failed ones.
//! Events queue up in the connection and are drained between steps, so nothing runs beside the journey.

use std::collections::HashMap;

use chromiumoxide_cdp::cdp::browser_protocol::network::{
    EventLoadingFailed, EventRequestWillBeSent, EventResponseReceived, RequestId, ResourceType,
};
use chromiumoxide_cdp::cdp::js_protocol::runtime::{ConsoleApiCalledType, EventConsoleApiCalled, EventExceptionThrown};
use serde_json::Value;

use crate::cdp::Events;
use crate::page::Page;

/// The most messages (and failed requests) kept for the details; all are counted.
const KEEP: usize = 10;
/// The longest message kept.
const MESSAGE_CHARS: usize = 200;
/// The most request URLs remembered to name a failed request.
const URLS: usize = 2000;

/// The event streams of one page.
#[derive(Debug)]
pub struct Observer {
    console: Events<EventConsoleApiCalled>,
    exceptions: Events<EventExceptionThrown>,
    requests: Events<EventRequestWillBeSent>,
    responses: Events<EventResponseReceived>,
    failures: Events<EventLoadingFailed>,
    /// What was seen so far.
    pub seen: Observed,
}

/// What the page reported.
#[derive(Debug, Default)]
pub struct Observed {
    /// Console errors and uncaught exceptions.
    pub console_errors: usize,
    /// The first few of them.
    pub console_messages: Vec<String>,
    /// Requests sent (redirects not counted again, the browser's own favicon request not counted).
    pub requests: usize,
    /// Requests that failed: no response, or a status of 400 or more.
    pub failed_requests: usize,
    /// The first few of them: URL and why.
    pub failed: Vec<(String, String)>,
    urls: HashMap<RequestId, String>,
}

impl Observer {
    /// Subscribes to a page's events (before it loads anything, and before its domains are enabled).
    pub fn attach(page: &Page) -> Self {
        Self {
            console: page.subscribe(),
            exceptions: page.subscribe(),
            requests: page.subscribe(),
            responses: page.subscribe(),
            failures: page.subscribe(),
            seen: Observed::default(),
        }
    }

    /// Takes in every event that has arrived.
    pub fn drain(&mut self) {
        for event in self.requests.ready() {
            let favicon = event.r#type.as_ref().is_some_and(|kind| browser_favicon(kind, &event.request.url));
            if event.redirect_response.is_none() && !favicon {
                self.seen.requests += 1;
            }
            if self.seen.urls.len() < URLS {
                self.seen.urls.insert(event.request_id.clone(), event.request.url.clone());
            }
        }
        for event in self.responses.ready() {
            if event.response.status >= 400 && !browser_favicon(&event.r#type, &event.response.url) {
                let why = format!("HTTP {}", event.response.status);
                self.seen.failed_request(event.response.url.clone(), why);
            }
        }
        for event in self.failures.ready() {
            // A request the page itself dropped (a navigation away, an aborted fetch) did not fail.
            let url = self.seen.urls.get(&event.request_id).cloned().unwrap_or_default();
            if event.canceled == Some(true) || browser_favicon(&event.r#type, &url) {
                continue;
            }
            let why = match &event.blocked_reason {
                Some(reason) => format!("blocked ({})", reason.as_ref()),
                None => event.error_text.clone(),
            };
            self.seen.failed_request(url, why);
        }
        for event in self.console.ready() {
            if event.r#type == ConsoleApiCalledType::Error || event.r#type == ConsoleApiCalledType::Assert {
                let parts: Vec<String> = event
                    .args
                    .iter()
                    .map(|arg| match &arg.value {
                        Some(Value::String(text)) => text.clone(),
                        Some(other) => other.to_string(),
                        None => arg.description.clone().unwrap_or_default(),
                    })
                    .collect();
                self.seen.console_error(format!("console.error: {}", parts.join(" ")));
            }
        }
        for event in self.exceptions.ready() {
            self.seen.console_error(format!("uncaught {}", crate::driver::exception_text(&event.exception_details)));
        }
    }
}

impl Observed {
    fn failed_request(&mut self, url: String, why: String) {
        self.failed_requests += 1;
        if self.failed.len() < KEEP {
            self.failed.push((cut(&url), why));
        }
    }

    fn console_error(&mut self, message: String) {
        self.console_errors += 1;
        if self.console_messages.len() < KEEP {
            self.console_messages.push(cut(&message));
        }
    }
}

/// Whether a request is the browser's own look for `/favicon.ico`, which pages do not ask for.
fn browser_favicon(kind: &ResourceType, url: &str) -> bool {
    *kind == ResourceType::Other
        && url::Url::parse(url).is_ok_and(|url| url.path() == "/favicon.ico" && url.query().is_none())
}

fn cut(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    match line.char_indices().nth(MESSAGE_CHARS) {
        Some((at, _)) => format!("{}...", &line[..at]),
        None => line.to_owned(),
    }
}
