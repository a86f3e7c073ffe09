//! Page measurements: the script added to every document before it loads (PerformanceObservers for Largest
//! Contentful Paint, Cumulative Layout Shift and interaction latency), and the snapshot read after each step
//! together with the document's navigation timing.

use probenet_checks::browser::{Navigation, PageDetails, WebVitals};
use serde_json::Value;

/// Runs at the start of every document of a journey, before the page's own scripts.
///
/// - LCP: the `startTime` of the last `largest-contentful-paint` entry (as the web-vitals library reports it).
/// - CLS: the largest session window of layout shifts without recent input (gaps under 1 s, windows up to 5 s).
/// - INP: the longest interaction (`event` entries with an `interactionId`, and `first-input`), in ms. With the
///   few interactions of a journey this is the worst one, which is what INP reports below 50 interactions.
pub const INIT_SCRIPT: &str = r#"(() => {
  if (window.__probenet) return;
  const m = { lcp: null, cls: 0, inp: null, win: 0, winStart: 0, last: 0 };
  Object.defineProperty(window, '__probenet', { value: m, enumerable: false });
  const observers = [];
  const observe = (type, each, extra) => {
    try {
      const observer = new PerformanceObserver((list) => list.getEntries().forEach(each));
      observer.observe(Object.assign({ type, buffered: true }, extra || {}));
      observers.push([observer, each]);
    } catch (e) {}
  };
  // Entries recorded but not delivered yet.
  m.flush = () => observers.forEach(([observer, each]) => observer.takeRecords().forEach(each));
  observe('largest-contentful-paint', (e) => { m.lcp = e.startTime; });
  observe('layout-shift', (e) => {
    if (e.hadRecentInput) return;
    if (m.win > 0 && e.startTime - m.last < 1000 && e.startTime - m.winStart < 5000) {
      m.win += e.value;
    } else {
      m.win = e.value;
      m.winStart = e.startTime;
    }
    m.last = e.startTime;
    if (m.win > m.cls) m.cls = m.win;
  });
  const interaction = (e) => { m.inp = Math.max(m.inp || 0, e.duration); };
  observe('event', (e) => { if (e.interactionId) interaction(e); }, { durationThreshold: 16 });
  observe('first-input', interaction);
})();"#;

/// Evaluates to the current document's measurements (times in ms from the navigation's start).
pub const SNAPSHOT: &str = r#"(() => {
  const n = performance.getEntriesByType('navigation')[0];
  const m = window.__probenet || {};
  if (m.flush) m.flush();
  const at = (t) => (n && t > 0 ? t : null);
  return {
    origin: performance.timeOrigin,
    url: location.href,
    title: document.title,
    status: n && n.responseStatus ? n.responseStatus : null,
    ttfb: n ? at(n.responseStart) : null,
    request: n && n.responseEnd > 0 && n.requestStart > 0 ? n.responseEnd - n.requestStart : null,
    received: n && n.transferSize > 0 ? n.transferSize : null,
    fcp: (() => {
      const paint = performance.getEntriesByName('first-contentful-paint')[0];
      return paint ? paint.startTime : null;
    })(),
    dcl: n ? at(n.domContentLoadedEventStart) : null,
    load: n ? at(n.loadEventStart) : null,
    lcp: m.lcp === undefined ? null : m.lcp,
    cls: m.cls === undefined ? null : m.cls,
    inp: m.inp === undefined ? null : m.inp,
  };
})()"#;

/// Like [`SNAPSHOT`], once the page has painted its first content and three more frames (at most about a
/// second), so that what the last step changed is measured too: paint entries (LCP) are recorded only once a
/// frame is presented, a few frames after it was drawn.
pub fn settled_snapshot() -> String {
    format!(
        r#"new Promise((done) => {{
  const start = performance.now();
  let frames = 0;
  const tick = () => {{
    if (performance.getEntriesByType('paint').some((e) => e.name === 'first-contentful-paint')) frames++;
    if (frames >= 3 || performance.now() - start > 1000) done(); else requestAnimationFrame(tick);
  }};
  requestAnimationFrame(tick);
  setTimeout(done, 1200);
}}).then(() => {SNAPSHOT})"#
    )
}

/// The measurements of one document, as last read.
#[derive(Debug, Clone, PartialEq)]
pub struct PageSnapshot {
    /// `performance.timeOrigin`: tells documents apart.
    pub origin: f64,
    /// The document's URL.
    pub url: String,
    /// Its title.
    pub title: String,
    /// The HTTP status of the document's response.
    pub status: Option<u16>,
    /// Time to first byte, ms.
    pub ttfb: Option<f64>,
    /// From sending the document's request to the last byte of its response, ms.
    pub request: Option<f64>,
    /// Bytes of the document's response as transferred.
    pub received: Option<u64>,
    /// First Contentful Paint, ms.
    pub fcp: Option<f64>,
    /// DOMContentLoaded, ms.
    pub dcl: Option<f64>,
    /// The load event, ms.
    pub load: Option<f64>,
    /// Largest Contentful Paint, ms.
    pub lcp: Option<f64>,
    /// Cumulative Layout Shift.
    pub cls: Option<f64>,
    /// The longest interaction, ms.
    pub inp: Option<f64>,
}

impl PageSnapshot {
    /// Reads a [`SNAPSHOT`] result; `None` for what is not a web page (`about:blank`).
    pub fn parse(value: &Value) -> Option<Self> {
        let url = value.get("url")?.as_str()?.to_owned();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return None;
        }
        let number = |key: &str| value.get(key).and_then(Value::as_f64).filter(|n| n.is_finite());
        Some(Self {
            origin: number("origin")?,
            url,
            title: value.get("title").and_then(Value::as_str).unwrap_or_default().to_owned(),
            status: value.get("status").and_then(Value::as_u64).and_then(|status| u16::try_from(status).ok()),
            ttfb: number("ttfb"),
            request: number("request"),
            received: value.get("received").and_then(Value::as_u64),
            fcp: number("fcp"),
            dcl: number("dcl"),
            load: number("load"),
            lcp: number("lcp"),
            cls: number("cls"),
            inp: number("inp"),
        })
    }

    /// The snapshot as the outcome's details show it (seconds).
    pub fn details(&self) -> PageDetails {
        PageDetails { navigation: self.navigation(), vitals: self.vitals() }
    }

    /// Its navigation timing, in seconds.
    pub fn navigation(&self) -> Navigation {
        Navigation {
            url: self.url.clone(),
            status: self.status,
            ttfb_seconds: self.ttfb.map(seconds),
            dom_content_loaded_seconds: self.dcl.map(seconds),
            load_seconds: self.load.map(seconds),
            request_seconds: self.request.map(seconds),
            // From the browser's network events, not the page: see `Observed::document_bytes`.
            sent_bytes: None,
            received_bytes: self.received,
        }
    }

    /// Its web vitals (seconds, and the layout shift to four decimals).
    pub fn vitals(&self) -> WebVitals {
        WebVitals {
            fcp_seconds: self.fcp.map(seconds),
            lcp_seconds: self.lcp.map(seconds),
            cls: self.cls.map(cls),
            inp_seconds: self.inp.map(seconds),
        }
    }
}

/// A layout shift score kept to four decimals.
pub fn cls(score: f64) -> f64 {
    (score * 10_000.0).round() / 10_000.0
}

/// Milliseconds to seconds, kept to the millisecond.
pub fn seconds(ms: f64) -> f64 {
    (ms.max(0.0)).round() / 1000.0
}

/// The documents of a journey in the order they were first seen, each with its latest snapshot.
#[derive(Debug, Default)]
pub struct Pages {
    list: Vec<PageSnapshot>,
}

/// The most documents a journey keeps measurements for.
const MAX_PAGES: usize = 20;

impl Pages {
    /// Records a snapshot, replacing the earlier one of the same document.
    pub fn record(&mut self, snapshot: PageSnapshot) {
        if let Some(page) = self.list.iter_mut().find(|page| page.origin == snapshot.origin) {
            *page = snapshot;
        } else if self.list.len() < MAX_PAGES {
            self.list.push(snapshot);
        }
    }

    /// The first document (the one the journey's first `goto` loaded).
    pub fn first(&self) -> Option<&PageSnapshot> {
        self.list.first()
    }

    /// Every document.
    pub fn all(&self) -> &[PageSnapshot] {
        &self.list
    }
}
