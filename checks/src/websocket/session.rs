//! An open WebSocket connection: the steps (send, expect) and the closing handshake, judged as they go.

use std::time::{Duration, Instant};

use async_tungstenite::WebSocketStream;
use async_tungstenite::tokio::TokioAdapter;
use async_tungstenite::tungstenite::protocol::CloseFrame;
use async_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use async_tungstenite::tungstenite::{Error as WsError, Message, error::CapacityError};
use futures::StreamExt as _;
use tokio::io::{AsyncRead, AsyncWrite};

use super::details::Conversation;
use super::spec::{Expect, Matcher, WebsocketCheck, WebsocketStep};
use crate::http::JsonTest;
use crate::outcome::{Judgement, Reason};
use crate::run::RunContext;

/// The most characters of a received message kept in the details.
const RECEIVED_CHARS: usize = 512;
/// The most time kept between giving up a wait and the check's timeout (a tenth of the timeout when shorter).
const MAX_MARGIN: Duration = Duration::from_millis(250);
/// How long a close after a failed step waits for the server's close frame.
const POLITE_CLOSE: Duration = Duration::from_millis(200);
/// The code probenet closes with.
const NORMAL: u16 = 1000;
/// The code reported for a close frame without one (RFC 6455 section 7.4.1).
const NO_STATUS: u16 = 1005;

/// An open connection and what was said over it.
pub(super) struct Session<S> {
    ws: WebSocketStream<TokioAdapter<S>>,
    frames_limit: u32,
    /// When waiting stops, whatever a step's `within` says: shortly before the check's timeout.
    deadline: Instant,
    /// The check's timeout, for messages.
    timeout: Duration,
    conversation: Conversation,
}

/// Why an `expect` step ended without its message.
enum Miss {
    /// The step's `within` passed (`Some`), or the check's timeout came near (`None`).
    Timeout(Option<Duration>),
    /// Other messages came (and `skip_others` is off): the last one.
    Unexpected(String),
    /// The server closed the connection (its close frame, if it sent one).
    Closed(Option<(u16, String)>),
    /// `max_frames` frames came without the message.
    Frames,
    /// A message larger than `max_message_size`.
    TooLarge(usize),
    /// Reading failed.
    Error(String),
}

impl Miss {
    /// The `step_failure` of the details.
    fn key(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "expect_timeout",
            Self::Unexpected(_) => "unexpected_message",
            Self::Closed(_) => "closed",
            Self::Frames => "frame_limit",
            Self::TooLarge(_) => "message_too_large",
            Self::Error(_) => "read_failed",
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    /// A session over `ws` for a run of `cx`. Waits without a time of their own end a little before the check's
    /// timeout, so that the run still says which step was waiting and what came.
    pub(super) fn new(ws: WebSocketStream<TokioAdapter<S>>, frames_limit: u32, cx: &RunContext) -> Self {
        let timeout = cx.timeout();
        let margin = (timeout / 10).min(MAX_MARGIN);
        let deadline = Instant::now() + timeout.saturating_sub(cx.elapsed()).saturating_sub(margin);
        Self { ws, frames_limit, deadline, timeout, conversation: Conversation::default() }
    }

    /// What was said.
    pub(super) fn into_conversation(self) -> Conversation {
        self.conversation
    }

    /// Runs the steps until their end or the first failure; returns whether one failed. Every `expect` shows up
    /// as an assertion: those after a failure as not reached.
    pub(super) async fn steps(&mut self, cx: &RunContext, steps: &[WebsocketStep], judgement: &mut Judgement) -> bool {
        let mut failed = false;
        for (i, step) in steps.iter().enumerate() {
            match step {
                WebsocketStep::Expect(expect) if failed => {
                    let name = format!("steps[{i}].expect");
                    let not_reached = "not reached: an earlier step failed".to_owned();
                    judgement.check(Reason::Assertion, &name, describe(&expect.matcher), not_reached, false);
                }
                WebsocketStep::Send(_) if failed => {}
                WebsocketStep::Send(template) => {
                    let name = format!("steps[{i}].send");
                    let text = match cx.resolve(template) {
                        Ok(text) => text,
                        Err(error) => {
                            self.fail(judgement, &name, "secret", Reason::Secret, format!("{name}: {}", error.0), None);
                            failed = true;
                            continue;
                        }
                    };
                    if let Err(error) = self.ws.send(Message::text(text)).await {
                        let message = format!("{name}: sending failed: {}", describe_error(&error));
                        self.fail(judgement, &name, "send_failed", Reason::Connect, message, None);
                        failed = true;
                        continue;
                    }
                    self.conversation.messages_sent += 1;
                    self.conversation.steps_run += 1;
                }
                WebsocketStep::Expect(expect) => {
                    let name = format!("steps[{i}].expect");
                    match self.expect(expect).await {
                        Ok(text) => {
                            judgement.check(Reason::Assertion, &name, describe(&expect.matcher), quoted(&text), true);
                            self.conversation.steps_run += 1;
                        }
                        Err((miss, last)) => {
                            self.missed(cx, judgement, &name, expect, miss, last);
                            failed = true;
                        }
                    }
                }
            }
        }
        failed
    }

    /// Records an `expect` step that ended without its message: its assertion, the run's failure, the details.
    fn missed(
        &mut self,
        cx: &RunContext,
        judgement: &mut Judgement,
        name: &str,
        expect: &Expect,
        miss: Miss,
        last: Option<String>,
    ) {
        let (reason, why) = match &miss {
            Miss::Timeout(Some(within)) => {
                (Reason::Assertion, format!("no matching message within {}", crate::duration::format(*within)))
            }
            Miss::Timeout(None) => (
                Reason::Assertion,
                format!("no matching message before the check's timeout of {}", crate::duration::format(self.timeout)),
            ),
            Miss::Unexpected(_) => (Reason::Assertion, "another message came".to_owned()),
            Miss::Closed(frame) => (Reason::Assertion, closed_words(frame.as_ref())),
            Miss::Frames => {
                (Reason::Assertion, format!("{} frames read without a matching message", self.frames_limit))
            }
            Miss::TooLarge(max) => {
                (Reason::Protocol, format!("a message is larger than max_message_size ({max} bytes)"))
            }
            Miss::Error(error) => (Reason::Protocol, format!("reading failed: {error}")),
        };
        let received = match &miss {
            Miss::Unexpected(text) => Some(text.clone()),
            _ => last,
        };
        let observed = match (&miss, &received) {
            (_, Some(text)) => quoted(text),
            (Miss::Closed(frame), None) => closed_words(frame.as_ref()),
            _ => "nothing".to_owned(),
        };
        judgement.check(reason, name, describe(&expect.matcher), observed, false);
        let message = match &received {
            Some(text) => format!("{name}: {why}; received {}", quoted(text)),
            None => format!("{name}: {why}"),
        };
        self.fail(judgement, name, miss.key(), reason, message, received.map(|text| cx_cut(cx, &text)));
    }

    /// Records the failure of the step `name`: the run's reason and message (unless an assertion gave them
    /// already), and the details.
    fn fail(
        &mut self,
        judgement: &mut Judgement,
        name: &str,
        key: &str,
        reason: Reason,
        message: String,
        received: Option<String>,
    ) {
        // A failed assertion set the judgement's failure; a failure outside assertions sets it here. Either way
        // the message says which step failed and why.
        judgement.failure = Some((reason, message));
        self.conversation.failed_step = Some(name.to_owned());
        self.conversation.step_failure = Some(key.to_owned());
        self.conversation.received = received;
    }

    /// Reads until a message matches `expect`: its text, or why not and the last message read.
    async fn expect(&mut self, expect: &Expect) -> Result<String, (Miss, Option<String>)> {
        let (deadline, within) = match expect.within {
            Some(within) if Instant::now() + within <= self.deadline => (Instant::now() + within, Some(within)),
            _ => (self.deadline, None),
        };
        let mut last = None;
        for _ in 0..self.frames_limit {
            let Ok(next) = tokio::time::timeout_at(deadline.into(), self.ws.next()).await else {
                return Err((Miss::Timeout(within), last));
            };
            let text = match next {
                None => return Err((Miss::Closed(None), last)),
                Some(Err(WsError::Capacity(CapacityError::MessageTooLong { max_size, .. }))) => {
                    return Err((Miss::TooLarge(max_size), last));
                }
                Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => {
                    return Err((Miss::Closed(None), last));
                }
                Some(Err(error)) => return Err((Miss::Error(describe_error(&error)), last)),
                Some(Ok(Message::Close(frame))) => {
                    let frame = self.server_closed(frame.as_ref(), "server");
                    return Err((Miss::Closed(Some(frame)), last));
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Text(text))) => self.received(text.as_bytes()),
                Some(Ok(Message::Binary(data))) => self.received(&data),
            };
            if matches(&expect.matcher, &text) {
                return Ok(text);
            }
            if !expect.skip_others {
                return Err((Miss::Unexpected(text), None));
            }
            last = Some(text);
        }
        Err((Miss::Frames, last))
    }

    /// Counts a message received and gives its text.
    fn received(&mut self, data: &[u8]) -> String {
        self.conversation.messages_received += 1;
        self.conversation.bytes_received += data.len() as u64;
        String::from_utf8_lossy(data).into_owned()
    }

    /// Records the server's close frame; gives its code and reason.
    fn server_closed(&mut self, frame: Option<&CloseFrame>, by: &str) -> (u16, String) {
        let (code, reason) = match frame {
            Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
            None => (NO_STATUS, String::new()),
        };
        self.conversation.close_code = Some(code);
        self.conversation.close_reason = (!reason.is_empty()).then(|| reason.clone());
        self.conversation.closed_by = Some(by.to_owned());
        (code, reason)
    }

    /// The closing handshake. After the steps passed: takes a close frame the server already sent, or sends
    /// ours and waits for the server's, and judges its code. After a failure: closes politely, and judges the
    /// code only if the server closed.
    pub(super) async fn close(&mut self, check: &WebsocketCheck, failed: bool, judgement: &mut Judgement) {
        let expected = check.close.code;
        // A close frame that already arrived means the server closed first.
        for _ in 0..self.frames_limit {
            if self.conversation.closed_by.is_some() {
                break;
            }
            match tokio::time::timeout(Duration::ZERO, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.server_closed(frame.as_ref(), "server");
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    self.received(text.as_bytes());
                }
                Ok(Some(Ok(Message::Binary(data)))) => {
                    self.received(&data);
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {}
                Ok(None | Some(Err(_))) | Err(_) => break,
            }
        }
        let by_server = self.conversation.closed_by.is_some();
        let ours = CloseFrame { code: CloseCode::from(NORMAL), reason: "".into() };
        // After the server's close frame this sends the reply tungstenite queued; errors change nothing.
        let sent = match tokio::time::timeout_at(self.deadline.into(), self.ws.close(Some(ours))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(describe_error(&error)),
            Err(_) => Err("the check's timeout came near".to_owned()),
        };
        if failed && !by_server {
            let polite = (Instant::now() + POLITE_CLOSE).min(self.deadline);
            let _ = tokio::time::timeout_at(polite.into(), self.ws.next()).await;
            return;
        }
        let observed = if by_server {
            self.conversation.close_code.map(|code| close_words(code, self.conversation.close_reason.as_deref()))
        } else {
            match self.await_close(check.close.within).await {
                Ok(()) => self
                    .conversation
                    .close_code
                    .map(|code| close_words(code, self.conversation.close_reason.as_deref())),
                Err(why) => {
                    let why = match (&sent, why) {
                        (Err(error), _) => format!("closing failed: {error}"),
                        (Ok(()), why) => why,
                    };
                    judgement.check(Reason::Assertion, "close", format!("code {expected}"), why, false);
                    return;
                }
            }
        };
        let code = self.conversation.close_code.unwrap_or(NO_STATUS);
        // A close frame without a code, in reply to ours, echoes ours.
        let passed = code == expected || (code == NO_STATUS && expected == NORMAL && !by_server);
        let observed = observed.unwrap_or_else(|| "no close frame".to_owned());
        let observed = if by_server { format!("{observed}, the server closed first") } else { observed };
        judgement.check(Reason::Assertion, "close", format!("code {expected}"), observed, passed);
    }

    /// Waits for the server's close frame after ours, skipping other frames (at most `max_frames`).
    async fn await_close(&mut self, within: Duration) -> Result<(), String> {
        let own = Instant::now() + within;
        let deadline = own.min(self.deadline);
        for _ in 0..self.frames_limit {
            match tokio::time::timeout_at(deadline.into(), self.ws.next()).await {
                Err(_) if own <= self.deadline => {
                    return Err(format!("no close frame within {}", crate::duration::format(within)));
                }
                Err(_) => {
                    let timeout = crate::duration::format(self.timeout);
                    return Err(format!("no close frame before the check's timeout of {timeout}"));
                }
                Ok(None | Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed))) => {
                    return Err("the connection ended without a close frame".to_owned());
                }
                Ok(Some(Err(error))) => return Err(format!("reading failed: {}", describe_error(&error))),
                Ok(Some(Ok(Message::Close(frame)))) => {
                    self.server_closed(frame.as_ref(), "client");
                    return Ok(());
                }
                Ok(Some(Ok(Message::Text(text)))) => {
                    self.received(text.as_bytes());
                }
                Ok(Some(Ok(Message::Binary(data)))) => {
                    self.received(&data);
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {}
            }
        }
        Err(format!("{} frames read without a close frame", self.frames_limit))
    }
}

/// Whether `text` is the message `matcher` waits for.
fn matches(matcher: &Matcher, text: &str) -> bool {
    match matcher {
        Matcher::Text(expected) => text == expected,
        Matcher::Regex(regex) => regex.is_match(text),
        Matcher::Json { path, test, .. } => {
            let Ok(document) = serde_json::from_str::<serde_json::Value>(text) else {
                return false;
            };
            let nodes = path.query(&document).all();
            match test {
                JsonTest::Equals(value) => nodes.contains(&value),
                JsonTest::Regex(regex) => nodes.iter().any(|node| match node {
                    serde_json::Value::String(text) => regex.is_match(text),
                    other => regex.is_match(&other.to_string()),
                }),
                JsonTest::Exists(exists) => nodes.is_empty() != *exists,
            }
        }
    }
}

/// What `matcher` expects, for an assertion.
fn describe(matcher: &Matcher) -> String {
    match matcher {
        Matcher::Text(text) => quoted(text),
        Matcher::Regex(regex) => format!("/{regex}/"),
        Matcher::Json { text, test, .. } => match test {
            JsonTest::Equals(value) => format!("JSON with {text} equal to {value}"),
            JsonTest::Regex(regex) => format!("JSON with {text} matching /{regex}/"),
            JsonTest::Exists(_) => format!("JSON with a node at {text}"),
        },
    }
}

/// A close code and reason in words: `1011 ("internal error")`.
fn close_words(code: u16, reason: Option<&str>) -> String {
    match reason {
        Some(reason) => format!("code {code} ({reason:?})"),
        None => format!("code {code}"),
    }
}

/// How the server closed, in words.
fn closed_words(frame: Option<&(u16, String)>) -> String {
    match frame {
        Some((code, reason)) => {
            let reason = (!reason.is_empty()).then_some(reason.as_str());
            format!("the server closed the connection with {}", close_words(*code, reason))
        }
        None => "the connection ended".to_owned(),
    }
}

/// A tungstenite error in words.
fn describe_error(error: &WsError) -> String {
    match error {
        WsError::Io(error) => crate::net::describe(error),
        other => other.to_string(),
    }
}

/// A received text as the details keep it: its secrets redacted while it is whole, then cut.
fn cx_cut(cx: &RunContext, text: &str) -> String {
    let text = cx.redact(text);
    if text.chars().count() <= RECEIVED_CHARS {
        text
    } else {
        format!("{}...", text.chars().take(RECEIVED_CHARS).collect::<String>())
    }
}

/// An observed text, quoted. Not escaped or cut here: the runtime redacts secrets first, then bounds it.
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}
