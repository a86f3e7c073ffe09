//! What a page reports while a journey runs: console errors, uncaught exceptions, requests and the failed ones.
//! Events queue up in the connection and are drained between steps, so nothing runs beside the journey.

use std::collections::HashMap;

use chromiumoxide_cdp::cdp::browser_protocol::network::{
    EventLoadingFailed, EventRequestWillBeSent, EventResponseReceived, Request, RequestId, ResourceType,
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
    /// The bytes of each document request (the last one sent to a URL), by URL: see [`request_bytes`].
    pub document_bytes: HashMap<String, u64>,
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
            if event.r#type == Some(ResourceType::Document) && self.seen.document_bytes.len() < URLS {
                self.seen.document_bytes.insert(event.request.url.clone(), request_bytes(&event.request));
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

/// The size of a request as HTTP/1.1 writes it: the request line, each header line, the blank line and the
/// body. (Chromium's events give the headers it sends, not the bytes on the wire, which HTTP/2 compresses.)
fn request_bytes(request: &Request) -> u64 {
    let target = url::Url::parse(&request.url)
        .map(|url| url.path().len() + url.query().map_or(0, |query| query.len() + 1))
        .unwrap_or(request.url.len());
    let line = request.method.len() + 1 + target + " HTTP/1.1\r\n".len();
    let headers: usize = match request.headers.inner() {
        Value::Object(headers) => {
            headers.iter().map(|(name, value)| name.len() + 2 + value.as_str().map_or(0, str::len) + 2).sum()
        }
        _ => 0,
    };
    let body: usize = request
        .post_data_entries
        .iter()
        .flatten()
        .filter_map(|entry| entry.bytes.as_ref())
        .map(|bytes| {
            // Base64: 3 bytes in every 4 characters, less the padding.
            let text: &str = bytes.as_ref();
            text.len() / 4 * 3 - text.bytes().rev().take_while(|byte| *byte == b'=').count()
        })
        .sum();
    (line + headers + 2 + body) as u64
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
