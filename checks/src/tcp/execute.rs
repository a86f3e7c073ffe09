//! Running a TCP check: resolve, connect, then the send/expect script; every `expect` is an assertion.

use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::details::{Conversation, TcpDetails};
use super::spec::{TcpCheck, TcpStep};
use crate::clock::{Clock, PhaseClocks};
use crate::details::Details as _;
use crate::outcome::{Assertion, Judgement, Outcome, Reason};
use crate::run::{Execute, RunContext};
use crate::tls::Handshake;

/// The most unmatched data an `expect` step buffers before it gives up.
const MAX_BUFFERED: usize = 64 * 1024;
/// How much of the first data received is kept to find the banner.
const BANNER_BYTES: usize = 1024;
/// The longest text shown in an assertion or an error.
const SHOWN_CHARS: usize = 120;

impl Execute for TcpCheck {
    async fn execute(&self, cx: &RunContext) -> Outcome {
        let addr = match cx.timed("resolve", crate::net::resolve(cx, &self.host, self.port, self.ip_version)).await {
            Ok(addr) => addr,
            Err(message) => return Outcome::failed(Reason::Dns, message),
        };
        if addr.ip().to_string() != self.host {
            cx.log(format!("resolved {} to {}", self.host, addr.ip()));
        }
        let mut clocks = PhaseClocks::default();
        clocks.note("resolve", Clock::Stopwatch);
        let started = Instant::now();
        let connected = TcpStream::connect(addr).await;
        let stopwatch = started.elapsed();
        let stream = match connected {
            Ok(stream) => {
                let (connect, clock) = crate::clock::connect_phase(&stream, stopwatch, crate::clock::kernel_allowed());
                cx.phase("connect", connect);
                clocks.note("connect", clock);
                stream
            }
            Err(error) => {
                cx.phase("connect", stopwatch);
                let details = TcpDetails { remote_address: Some(addr.to_string()), ..TcpDetails::default() };
                let failed = Outcome::failed(Reason::Connect, format!("connect to {addr}: {error}"));
                return Outcome { details: details.to_value(), ..failed };
            }
        };
        stream.set_nodelay(true).ok();
        let local = stream.local_addr().map(|addr| addr.to_string()).ok();
        let mut session = Session::default();
        let mut handshake = None;
        match &self.tls {
            None => session.talk(cx, stream, &self.script).await,
            Some(tls) => {
                let name = tls.server_name.clone().unwrap_or_else(|| self.host.clone());
                match tls.connect(cx, stream, addr, &name, &[], None).await {
                    Ok((stream, seen)) => {
                        clocks.note("tls", Clock::Stopwatch);
                        handshake = Some(seen);
                        session.talk(cx, stream, &self.script).await;
                    }
                    Err(failure) => return failure.into(),
                }
            }
        }
        if !self.script.is_empty() {
            clocks.note("script", Clock::Stopwatch);
        }
        let details = TcpDetails {
            remote_address: Some(addr.to_string()),
            conversation: Some(Conversation {
                local_address: local,
                bytes_sent: session.sent,
                bytes_received: session.received,
                banner: session.banner(),
                steps_run: session.steps_run,
            }),
            tls: handshake.as_ref().map(Handshake::details).unwrap_or_default(),
            clocks: Some(clocks),
        };
        Judgement { assertions: session.assertions, failure: session.failure }.into_outcome(details.to_value())
    }
}

/// The state of one conversation.
#[derive(Debug, Default)]
struct Session {
    /// Received data not yet consumed by an `expect`.
    buffer: Vec<u8>,
    /// The first bytes ever received, for the banner.
    head: Vec<u8>,
    sent: u64,
    received: u64,
    steps_run: usize,
    assertions: Vec<Assertion>,
    failure: Option<(Reason, String)>,
}

/// Why an `expect` step stopped reading without a match.
enum Miss {
    Closed,
    Error(std::io::Error),
    Timeout(Duration),
    Full,
}

impl Session {
    /// Runs the script until its end or its first failing step. Steps after a failure are reported as
    /// not reached, so that every `expect` shows up as an assertion.
    /// Runs the script over `stream` (plain or TLS), then closes it politely.
    async fn talk<S: AsyncRead + AsyncWrite + Unpin>(&mut self, cx: &RunContext, mut stream: S, script: &[TcpStep]) {
        if !script.is_empty() {
            cx.timed("script", self.run(cx, &mut stream, script)).await;
        }
        // A polite close; the peer may already be gone, which changes nothing.
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.shutdown()).await;
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(&mut self, cx: &RunContext, stream: &mut S, script: &[TcpStep]) {
        for (i, step) in script.iter().enumerate() {
            let name = format!("script[{i}].expect");
            if self.failure.is_some() {
                if let TcpStep::Expect { pattern, .. } = step {
                    self.assert(&name, pattern, "not reached: an earlier step failed".to_owned(), false);
                }
                continue;
            }
            match step {
                TcpStep::Send(template) => {
                    let text = match cx.resolve(template) {
                        Ok(text) => text,
                        Err(error) => {
                            self.failure = Some((Reason::Secret, error.0));
                            continue;
                        }
                    };
                    if let Err(error) = stream.write_all(text.as_bytes()).await {
                        self.failure = Some((Reason::Connect, format!("script[{i}].send: {error}")));
                        continue;
                    }
                    self.sent += text.len() as u64;
                }
                TcpStep::Expect { pattern, regex, timeout } => {
                    let deadline = timeout.map(|timeout| Instant::now() + timeout);
                    match self.read_until(stream, regex, deadline, *timeout).await {
                        Ok(line) => self.assert(&name, pattern, shorten(&line), true),
                        Err(miss) => {
                            let observed = match last_line(&self.buffer) {
                                Some(line) => shorten(&line),
                                None => "nothing".to_owned(),
                            };
                            let why = match miss {
                                Miss::Closed => "the connection closed".to_owned(),
                                Miss::Error(error) => format!("reading failed: {error}"),
                                Miss::Timeout(after) => {
                                    format!("no match within {}", crate::duration::format(after))
                                }
                                Miss::Full => format!("{} KiB read without a match", MAX_BUFFERED / 1024),
                            };
                            let read = if self.buffer.is_empty() {
                                "nothing read".to_owned()
                            } else {
                                format!("read {}", shorten(&String::from_utf8_lossy(&self.buffer)))
                            };
                            self.assert(&name, pattern, observed, false);
                            self.failure =
                                Some((Reason::Assertion, format!("{name}: /{pattern}/ did not match: {why}; {read}")));
                            continue;
                        }
                    }
                }
            }
            self.steps_run += 1;
        }
    }

    fn assert(&mut self, name: &str, pattern: &str, observed: String, passed: bool) {
        self.assertions.push(Assertion { name: name.to_owned(), expected: format!("/{pattern}/"), observed, passed });
    }

    /// Reads until `regex` matches the unconsumed data; consumes through the end of the matched line and
    /// returns that line.
    async fn read_until<S: AsyncRead + Unpin>(
        &mut self,
        stream: &mut S,
        regex: &regex::bytes::Regex,
        deadline: Option<Instant>,
        timeout: Option<Duration>,
    ) -> Result<String, Miss> {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(found) = regex.find(&self.buffer) {
                let (start, end) = (found.start(), found.end());
                let line_start = self.buffer[..start].iter().rposition(|b| *b == b'\n').map_or(0, |at| at + 1);
                let consumed = if end > 0 && self.buffer[end - 1] == b'\n' {
                    end
                } else {
                    self.buffer[end..].iter().position(|b| *b == b'\n').map_or(end, |at| end + at + 1)
                };
                let line = String::from_utf8_lossy(&self.buffer[line_start..consumed]);
                let line = line.trim_end_matches(['\r', '\n']).to_owned();
                self.buffer.drain(..consumed);
                return Ok(line);
            }
            let room = MAX_BUFFERED.saturating_sub(self.buffer.len()).min(chunk.len());
            if room == 0 {
                return Err(Miss::Full);
            }
            let read = stream.read(&mut chunk[..room]);
            let result = match deadline {
                Some(deadline) => match tokio::time::timeout_at(deadline.into(), read).await {
                    Ok(result) => result,
                    Err(_) => return Err(Miss::Timeout(timeout.unwrap_or_default())),
                },
                None => read.await,
            };
            match result {
                Ok(0) => return Err(Miss::Closed),
                Ok(n) => {
                    let data = &chunk[..n];
                    self.received += n as u64;
                    let keep = BANNER_BYTES.saturating_sub(self.head.len()).min(n);
                    self.head.extend_from_slice(&data[..keep]);
                    self.buffer.extend_from_slice(data);
                }
                Err(error) => return Err(Miss::Error(error)),
            }
        }
    }

    /// The first line received, if any data came.
    fn banner(&self) -> Option<String> {
        if self.head.is_empty() {
            return None;
        }
        let end = self.head.iter().position(|b| *b == b'\n').unwrap_or(self.head.len());
        let line = String::from_utf8_lossy(&self.head[..end]);
        Some(cut(line.trim_end_matches('\r')))
    }
}

/// The last non-empty line of `data`.
fn last_line(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    text.lines().rev().find(|line| !line.trim().is_empty()).map(|line| line.trim_end_matches('\r').to_owned())
}

/// At most [`SHOWN_CHARS`] characters of `text`.
fn cut(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        text.to_owned()
    } else {
        format!("{}...", text.chars().take(SHOWN_CHARS).collect::<String>())
    }
}

/// `text` shortened and quoted, with control characters escaped.
fn shorten(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        format!("{:?}...", text.chars().take(SHOWN_CHARS).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_skips_trailing_blank_lines() {
        assert_eq!(last_line(b"250-a\r\n250 b\r\n\r\n"), Some("250 b".to_owned()));
        assert_eq!(last_line(b"partial"), Some("partial".to_owned()));
        assert_eq!(last_line(b""), None);
    }

    #[test]
    fn shorten_quotes_and_cuts() {
        assert_eq!(shorten("a\tb"), "\"a\\tb\"");
        let long = "x".repeat(500);
        assert!(shorten(&long).ends_with("..."));
        assert!(shorten(&long).len() < 200);
    }
}
