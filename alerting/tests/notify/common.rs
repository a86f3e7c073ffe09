//! Shared test helpers: a sample notification, an HTTP receiver that records requests and answers from a
//! script, free ports and bounded polling.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use probenet_alerting::{Notification, Notifier, Status};

/// A firing notification with every field set.
pub fn sample() -> Notification {
    Notification {
        alert: "site-down".into(),
        key: "site-down/homepage".into(),
        status: Status::Firing,
        severity: "page".into(),
        check: Some("homepage".into()),
        target: Some("https://example.com/".into()),
        regions: vec!["eu-west".into(), "us-east".into()],
        total_regions: 3,
        since_ms: 1_714_564_800_000,
        ended_ms: None,
        reason: Some("timeout".into()),
        error: Some("no response within 10s".into()),
        labels: BTreeMap::from([("team".into(), "web".into())]),
        summary: "homepage is down in 2 of 3 regions since 12:00 UTC".into(),
        dashboard_url: Some("https://dash.example.com/checks/homepage".into()),
    }
}

/// The sample, resolved 15 minutes later.
pub fn resolved() -> Notification {
    let mut notification = sample();
    notification.status = Status::Resolved;
    notification.ended_ms = Some(notification.since_ms + 15 * 60_000);
    notification
}

/// The sample's subject line when firing.
pub const FIRING_SUBJECT: &str = "[FIRING] site-down: homepage down in eu-west, us-east";
/// The sample's subject line when resolved.
pub const RESOLVED_SUBJECT: &str = "[RESOLVED] site-down: homepage recovered (was down in eu-west, us-east)";
/// The sample's dashboard link.
pub const DASHBOARD: &str = "https://dash.example.com/checks/homepage";

/// The facts of the firing sample, as every notifier shows them (label, value), the dashboard aside.
pub const FIRING_FACTS: [(&str, &str); 8] = [
    ("Check", "homepage"),
    ("Target", "https://example.com/"),
    ("Regions", "eu-west, us-east (2 of 3)"),
    ("Since", "2024-05-01 12:00:00 UTC"),
    ("Reason", "timeout"),
    ("Error", "no response within 10s"),
    ("Severity", "page"),
    ("Labels", "team=web"),
];

/// The facts of the resolved sample: the firing ones and when it ended.
pub fn resolved_facts() -> Vec<(&'static str, &'static str)> {
    let mut facts = FIRING_FACTS.to_vec();
    facts.insert(4, ("Ended", "2024-05-01 12:15:00 UTC (after 15m)"));
    facts
}

/// The facts, one line each, as `line(label, value)` writes them.
pub fn fact_lines(facts: &[(&str, &str)], line: impl Fn(&str, &str) -> String) -> String {
    facts.iter().map(|(label, value)| line(label, value)).collect::<Vec<_>>().join("\n")
}

/// A receiver answering every request with this status and body.
pub async fn answering(status: StatusCode, body: &'static str) -> Receiver {
    Receiver::with_judge(Arc::new(move |_: &Received| (status, body.to_owned()))).await
}

/// Delivers the firing sample, then its resolution; the two requests, each checked to be a JSON POST to `path`.
pub async fn firing_then_resolved_json(notifier: &impl Notifier, receiver: &Receiver, path: &str) -> Vec<Received> {
    notifier.deliver(&sample()).await.unwrap();
    notifier.deliver(&resolved()).await.unwrap();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(request.line(), ("POST".into(), path.into()));
        assert_eq!(request.header("content-type").as_deref(), Some("application/json"));
    }
    requests
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// The body as text, exactly as sent.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).expect("a UTF-8 body")
    }

    /// Method, path and query, as sent.
    pub fn line(&self) -> (String, String) {
        (self.method.to_string(), self.uri.path_and_query().map(ToString::to_string).unwrap_or_default())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|value| value.to_str().expect("an ASCII header").to_owned())
    }
}

/// Decides the answer to a request (after it is recorded).
pub type Judge = Arc<dyn Fn(&Received) -> (StatusCode, String) + Send + Sync>;

/// An HTTP receiver on loopback: records every request; answers from `script` first, then with `judge`.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<(StatusCode, String)>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Self {
        Self::with_judge(Arc::new(|_: &Received| (StatusCode::OK, "ok".to_owned()))).await
    }

    pub async fn with_judge(judge: Judge) -> Self {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script: Arc<Mutex<VecDeque<(StatusCode, String)>>> = Arc::default();
        let (record, answers) = (received.clone(), script.clone());
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (record, answers, judge) = (record.clone(), answers.clone(), judge.clone());
            async move {
                let request = Received { method, uri, headers, body };
                let answer = answers.lock().unwrap().pop_front().unwrap_or_else(|| judge(&request));
                record.lock().unwrap().push(request);
                answer.into_response()
            }
        };
        let router = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, received, script, task: Arc::new(task) }
    }

    /// Answers the next requests with these, in order.
    pub fn then(&self, status: u16, body: &str) -> &Self {
        self.script.lock().unwrap().push_back((StatusCode::from_u16(status).unwrap(), body.to_owned()));
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

/// A loopback port nothing listens on (bound, then released).
pub fn refused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Polls `probe` every 50 ms until it gives a value or `limit` passes.
pub async fn poll<T, F, Fut>(limit: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
