//! A DevTools protocol client over Chromium's pipe transport (`--remote-debugging-pipe`: commands in on fd 3,
//! answers and events out on fd 4, each message ended by a NUL byte): typed commands matched to their answers by
//! id, events handed to subscribers by method and session, and every message, queue and wait bounded.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chromiumoxide_cdp::cdp::browser_protocol::target::SessionId;
use chromiumoxide_types::{Command, MethodType};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::sync::{mpsc, oneshot, watch};

/// The largest message read from Chromium (a PNG screenshot of a big page, base64-encoded); a longer one is
/// skipped, and the call waiting for it times out.
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;
/// How long a command may wait for its answer unless the caller gives up sooner.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Commands queued for the writer at most (senders wait beyond that).
const OUTGOING: usize = 256;
/// Events queued per subscription at most; later ones are dropped (and counted) until it is read.
pub const EVENT_QUEUE: usize = 10_000;

/// Why a command gave no result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CdpError {
    /// The pipe is closed: Chromium exited or the connection was shut down.
    Closed,
    /// No answer within [`COMMAND_TIMEOUT`].
    Timeout(String),
    /// Chromium answered with an error.
    Protocol {
        /// The command.
        method: String,
        /// Chromium's message.
        message: String,
    },
    /// A navigation failed: Chromium's text, such as `net::ERR_CONNECTION_REFUSED`.
    Navigation(String),
    /// A command or its answer did not match the protocol's types.
    Decode {
        /// The command.
        method: String,
        /// What did not match.
        error: String,
    },
}

impl std::fmt::Display for CdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Closed => write!(f, "the DevTools pipe is closed"),
            Self::Timeout(method) => write!(f, "{method}: no answer within {}s", COMMAND_TIMEOUT.as_secs()),
            Self::Protocol { method, message } => write!(f, "{method}: {message}"),
            Self::Navigation(text) => write!(f, "{text}"),
            Self::Decode { method, error } => write!(f, "{method}: unexpected message: {error}"),
        }
    }
}

impl std::error::Error for CdpError {}

type Answer = Result<Value, CdpError>;

/// A connection to one Chromium. Clones share it.
#[derive(Debug, Clone)]
pub struct Cdp {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    next_id: AtomicU64,
    outgoing: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    subscribers: Mutex<Vec<Subscriber>>,
    closed: AtomicBool,
    /// Turns true when the pipe closes.
    closed_tx: watch::Sender<bool>,
    /// Events dropped because a subscriber's queue was full.
    dropped: AtomicU64,
}

#[derive(Debug)]
struct Subscriber {
    method: &'static str,
    session: Option<String>,
    events: mpsc::Sender<Value>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Cdp {
    /// Starts the connection's reader and writer tasks on the current runtime: `input` is Chromium's fd 4 (what
    /// it writes), `output` its fd 3 (what it reads).
    pub fn start(
        input: impl AsyncRead + Unpin + Send + 'static,
        output: impl AsyncWrite + Unpin + Send + 'static,
    ) -> Self {
        let (outgoing, queue) = mpsc::channel(OUTGOING);
        let inner = Arc::new(Inner {
            next_id: AtomicU64::new(1),
            outgoing,
            pending: Mutex::default(),
            subscribers: Mutex::default(),
            closed: AtomicBool::new(false),
            closed_tx: watch::channel(false).0,
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(write_messages(Arc::downgrade(&inner), queue, output));
        tokio::spawn(read_messages(inner.clone(), input));
        Self { inner }
    }

    /// Sends a command (to the browser, or to the page of `session`) and awaits its typed answer.
    pub async fn execute<C: Command>(&self, session: Option<&SessionId>, command: C) -> Result<C::Response, CdpError> {
        let method = command.identifier().into_owned();
        let params = serde_json::to_value(&command)
            .map_err(|error| CdpError::Decode { method: method.clone(), error: error.to_string() })?;
        let value = self.call(&method, session.map(|session| session.inner().as_str()), params).await?;
        C::response_from_value(value).map_err(|error| CdpError::Decode { method, error: error.to_string() })
    }

    /// Sends one message and awaits its answer's `result`.
    async fn call(&self, method: &str, session: Option<&str>, params: Value) -> Answer {
        if self.is_closed() {
            return Err(CdpError::Closed);
        }
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut message = serde_json::json!({"id": id, "method": method, "params": params});
        if let (Some(session), Value::Object(map)) = (session, &mut message) {
            map.insert("sessionId".to_owned(), Value::String(session.to_owned()));
        }
        let (answer_tx, answer) = oneshot::channel();
        lock(&self.inner.pending).insert(id, answer_tx);
        // Forgets the call however this future ends (answered, timed out, or dropped by its caller).
        let _forget = Forget { inner: &self.inner, id };
        // Registered before the check, so that a close in between fails this call too.
        if self.is_closed() {
            return Err(CdpError::Closed);
        }
        let mut bytes = serde_json::to_vec(&message)
            .map_err(|error| CdpError::Decode { method: method.to_owned(), error: error.to_string() })?;
        bytes.push(0);
        let answered = async {
            self.inner.outgoing.send(bytes).await.map_err(|_| CdpError::Closed)?;
            answer.await.unwrap_or(Err(CdpError::Closed))
        };
        match tokio::time::timeout(COMMAND_TIMEOUT, answered).await {
            Ok(answer) => answer.map_err(|error| match error {
                CdpError::Protocol { message, .. } => CdpError::Protocol { method: method.to_owned(), message },
                other => other,
            }),
            Err(_) => Err(CdpError::Timeout(method.to_owned())),
        }
    }

    /// The events `E` of the page of `session` (or of the browser itself, for `None`) from now on. The stream
    /// ends when the pipe closes.
    pub fn subscribe<E: MethodType + DeserializeOwned>(&self, session: Option<&SessionId>) -> Events<E> {
        let (events, queue) = mpsc::channel(EVENT_QUEUE);
        let method = match E::method_id() {
            std::borrow::Cow::Borrowed(method) => method,
            // Generated events have static names; an owned one is leaked once per subscription at most.
            std::borrow::Cow::Owned(method) => Box::leak(method.into_boxed_str()),
        };
        if !self.is_closed() {
            let session = session.map(|session| session.inner().clone());
            let mut subscribers = lock(&self.inner.subscribers);
            subscribers.retain(|subscriber| !subscriber.events.is_closed());
            subscribers.push(Subscriber { method, session, events });
        }
        Events { queue, _event: PhantomData }
    }

    /// Whether the pipe is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Resolves once the pipe is closed.
    pub async fn closed(&self) {
        let mut closed = self.inner.closed_tx.subscribe();
        let _ = closed.wait_for(|closed| *closed).await;
    }
}

/// Removes a call's entry from the pending ones when the call ends.
struct Forget<'a> {
    inner: &'a Inner,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        lock(&self.inner.pending).remove(&self.id);
    }
}

impl Inner {
    /// Marks the pipe closed: every pending and later call fails, every event stream ends.
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let pending: Vec<_> = lock(&self.pending).drain().collect();
        for (_, answer) in pending {
            let _ = answer.send(Err(CdpError::Closed));
        }
        lock(&self.subscribers).clear();
        self.closed_tx.send_replace(true);
    }

    /// Handles one message from Chromium: an answer to a call, or an event.
    fn dispatch(&self, bytes: &[u8]) {
        let Ok(Value::Object(mut message)) = serde_json::from_slice::<Value>(bytes) else {
            return;
        };
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            let Some(answer) = lock(&self.pending).remove(&id) else {
                return;
            };
            let result = match message.remove("error") {
                Some(error) => {
                    let text = error.get("message").and_then(Value::as_str).unwrap_or("unknown error");
                    let message = match error.get("data").and_then(Value::as_str) {
                        Some(data) => format!("{text} ({data})"),
                        None => text.to_owned(),
                    };
                    Err(CdpError::Protocol { method: String::new(), message })
                }
                None => Ok(message.remove("result").unwrap_or(Value::Object(serde_json::Map::new()))),
            };
            let _ = answer.send(result);
            return;
        }
        let Some(Value::String(method)) = message.remove("method") else {
            return;
        };
        let session = match message.remove("sessionId") {
            Some(Value::String(session)) => Some(session),
            _ => None,
        };
        let params = message.remove("params").unwrap_or(Value::Null);
        let mut subscribers = lock(&self.subscribers);
        subscribers.retain(|subscriber| !subscriber.events.is_closed());
        for subscriber in subscribers.iter().filter(|s| s.method == method && s.session == session) {
            if subscriber.events.try_send(params.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Writes queued messages to Chromium until the connection is dropped or the pipe breaks.
async fn write_messages(
    inner: std::sync::Weak<Inner>,
    mut queue: mpsc::Receiver<Vec<u8>>,
    mut output: impl AsyncWrite + Unpin,
) {
    while let Some(message) = queue.recv().await {
        if output.write_all(&message).await.is_err() || output.flush().await.is_err() {
            break;
        }
    }
    if let Some(inner) = inner.upgrade() {
        inner.close();
    }
}

/// Reads NUL-terminated messages from Chromium until the pipe closes, then fails what is pending.
async fn read_messages(inner: Arc<Inner>, mut input: impl AsyncRead + Unpin) {
    let mut message: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = match input.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        let mut rest = &buffer[..read];
        while let Some(end) = rest.iter().position(|byte| *byte == 0) {
            if !skipping && message.len() + end <= MAX_MESSAGE {
                message.extend_from_slice(&rest[..end]);
                inner.dispatch(&message);
            }
            message.clear();
            skipping = false;
            rest = &rest[end + 1..];
        }
        if skipping {
            continue;
        }
        if message.len() + rest.len() > MAX_MESSAGE {
            // Too long: dropped up to its end.
            message = Vec::new();
            skipping = true;
        } else {
            message.extend_from_slice(rest);
        }
        // Every connection handle is gone: nobody reads what comes next.
        if Arc::strong_count(&inner) == 1 {
            break;
        }
    }
    inner.close();
}

/// A subscription to one kind of event, decoded as it is read. Undecodable events are skipped.
#[derive(Debug)]
pub struct Events<E> {
    queue: mpsc::Receiver<Value>,
    _event: PhantomData<fn() -> E>,
}

impl<E: DeserializeOwned> Events<E> {
    /// The next event; `None` once the pipe is closed.
    pub async fn next(&mut self) -> Option<E> {
        loop {
            let params = self.queue.recv().await?;
            if let Ok(event) = serde_json::from_value(params) {
                return Some(event);
            }
        }
    }

    /// Every event that has arrived, without waiting.
    pub fn ready(&mut self) -> Vec<E> {
        let mut events = Vec::new();
        while let Ok(params) = self.queue.try_recv() {
            if let Ok(event) = serde_json::from_value(params) {
                events.push(event);
            }
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use chromiumoxide_cdp::cdp::browser_protocol::browser::GetVersionParams;
    use chromiumoxide_cdp::cdp::browser_protocol::page::EventLifecycleEvent;
    use tokio::io::{AsyncBufReadExt as _, BufReader};

    use super::*;

    /// A connection to a fake Chromium: what the client writes, and a writer for what the fake answers.
    fn fake() -> (Cdp, BufReader<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (client_out, fake_in) = tokio::io::duplex(1 << 20);
        let (fake_out, client_in) = tokio::io::duplex(1 << 20);
        (Cdp::start(client_in, client_out), BufReader::new(fake_in), fake_out)
    }

    async fn read_call(reader: &mut BufReader<tokio::io::DuplexStream>) -> Value {
        let mut bytes = Vec::new();
        reader.read_until(0, &mut bytes).await.expect("read");
        assert_eq!(bytes.pop(), Some(0), "every message ends with a NUL");
        serde_json::from_slice(&bytes).expect("JSON")
    }

    async fn send(writer: &mut tokio::io::DuplexStream, message: Value) {
        let mut bytes = serde_json::to_vec(&message).expect("JSON");
        bytes.push(0);
        writer.write_all(&bytes).await.expect("write");
    }

    #[tokio::test]
    async fn answers_are_matched_by_id_and_events_by_session() {
        let (cdp, mut reader, mut writer) = fake();
        let session = SessionId::from("S1".to_owned());
        let mut mine = cdp.subscribe::<EventLifecycleEvent>(Some(&session));
        let mut browser = cdp.subscribe::<EventLifecycleEvent>(None);
        let first = tokio::spawn({
            let cdp = cdp.clone();
            async move { cdp.execute(None, GetVersionParams::default()).await }
        });
        let second = tokio::spawn({
            let cdp = cdp.clone();
            let session = session.clone();
            async move { cdp.execute(Some(&session), GetVersionParams::default()).await }
        });
        let (a, b) = (read_call(&mut reader).await, read_call(&mut reader).await);
        let (to_browser, to_page) = if a.get("sessionId").is_none() { (a, b) } else { (b, a) };
        assert_eq!(to_browser["method"], "Browser.getVersion");
        assert_eq!(to_page["sessionId"], "S1");
        let version = |product: &str| {
            serde_json::json!({"protocolVersion": "1.3", "product": product, "revision": "r",
                "userAgent": "u", "jsVersion": "j"})
        };
        // Answered in the other order, with an event in between, in one write.
        let lifecycle = serde_json::json!({"frameId": "F", "loaderId": "L", "name": "load", "timestamp": 1.0});
        let mut bytes = Vec::new();
        for message in [
            serde_json::json!({"id": to_page["id"], "result": version("page")}),
            serde_json::json!({"method": "Page.lifecycleEvent", "sessionId": "S1", "params": lifecycle}),
            serde_json::json!({"id": to_browser["id"], "error": {"code": -32000, "message": "nope"}}),
        ] {
            bytes.extend(serde_json::to_vec(&message).expect("JSON"));
            bytes.push(0);
        }
        writer.write_all(&bytes).await.expect("write");
        assert_eq!(second.await.expect("task").expect("answer").product, "page");
        let error = first.await.expect("task").expect_err("an error");
        assert_eq!(error.to_string(), "Browser.getVersion: nope");
        assert_eq!(mine.next().await.map(|event| event.name), Some("load".to_owned()));
        assert!(browser.ready().is_empty(), "a page's event is not the browser's");
    }

    #[tokio::test]
    async fn a_closed_pipe_fails_pending_and_later_calls_and_ends_event_streams() {
        let (cdp, mut reader, writer) = fake();
        let mut events = cdp.subscribe::<EventLifecycleEvent>(None);
        let pending = tokio::spawn({
            let cdp = cdp.clone();
            async move { cdp.execute(None, GetVersionParams::default()).await }
        });
        read_call(&mut reader).await;
        drop(writer);
        assert_eq!(pending.await.expect("task").expect_err("closed"), CdpError::Closed);
        assert_eq!(cdp.execute(None, GetVersionParams::default()).await.expect_err("closed"), CdpError::Closed);
        assert!(events.next().await.is_none());
        cdp.closed().await;
        assert!(cdp.is_closed());
    }

    #[tokio::test]
    async fn an_oversized_message_is_skipped_and_the_next_one_is_read() {
        let (cdp, mut reader, mut writer) = fake();
        let call = tokio::spawn({
            let cdp = cdp.clone();
            async move { cdp.execute(None, GetVersionParams::default()).await }
        });
        let id = read_call(&mut reader).await["id"].clone();
        let writing = tokio::spawn(async move {
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..(MAX_MESSAGE >> 20) + 1 {
                writer.write_all(&chunk).await.expect("write");
            }
            writer.write_all(&[0]).await.expect("write");
            let answer = serde_json::json!({"id": id, "result": {"protocolVersion": "1.3", "product": "ok",
                "revision": "r", "userAgent": "u", "jsVersion": "j"}});
            send(&mut writer, answer).await;
            writer
        });
        assert_eq!(call.await.expect("task").expect("answer").product, "ok");
        drop(writing.await.expect("writer"));
    }
}
