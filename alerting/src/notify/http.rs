//! What the HTTP notifiers share: the client (timeout, CA file, no redirects), URL checks, sending one
//! request and sorting its failure into retry or reject, and scrubbing secrets out of messages.

use std::path::Path;
use std::time::Duration;

use reqwest::StatusCode;

use super::BuildError;
use crate::DeliveryError;

/// The `User-Agent` of every request.
pub(crate) const USER_AGENT: &str = concat!("probenet/", env!("CARGO_PKG_VERSION"));

/// How much of a refusing receiver's body goes into an error message.
const MAX_BODY_IN_ERROR: usize = 200;

/// A client with the given timeout and trust; redirects are not followed (a redirected POST is refused).
pub(crate) fn client(timeout: Duration, ca_file: Option<&Path>, insecure: bool) -> Result<reqwest::Client, BuildError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(if timeout.is_zero() { Duration::from_secs(10) } else { timeout })
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|error| BuildError::CaFile(format!("{}: {error}", path.display())))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| BuildError::CaFile(format!("{}: {error}", path.display())))?;
        if certs.is_empty() {
            return Err(BuildError::CaFile(format!("{}: no certificate", path.display())));
        }
        builder = builder.tls_certs_merge(certs);
    }
    if insecure {
        builder = builder.tls_danger_accept_invalid_certs(true);
    }
    builder.build().map_err(|error| BuildError::Client(probenet_checks::net::describe(&error.without_url())))
}

/// Parses an http(s) URL; the error never repeats the URL (it may hold a token).
pub(crate) fn parse_url(what: &str, url: &str) -> Result<reqwest::Url, BuildError> {
    let parsed = reqwest::Url::parse(url.trim()).map_err(|error| BuildError::Url(format!("{what}: {error}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(BuildError::Url(format!("{what}: scheme must be http or https")));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(BuildError::Url(format!("{what}: no host")));
    }
    Ok(parsed)
}

/// The part of a URL safe to show: scheme, host and port (paths, queries and credentials may hold tokens).
pub(crate) fn origin(url: &reqwest::Url) -> String {
    url.origin().ascii_serialization()
}

/// Replaces every secret in messages with `<redacted>`, in any encoding (a URL percent-encoded in an error,
/// a token JSON-escaped in a receiver's reply): a last line of defence behind errors that are built without
/// URLs and secrets in the first place. The matching is probenet's one redactor.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    inner: probenet_checks::secret::Redactor,
}

impl Redactor {
    /// A redactor for these secrets (empty ones and very short ones, which would mangle messages, are skipped).
    pub(crate) fn new(secrets: impl IntoIterator<Item = String>) -> Self {
        let secrets: Vec<String> = secrets.into_iter().filter(|secret| secret.len() >= 4).collect();
        Self { inner: probenet_checks::secret::Redactor::new(&secrets).with_mask("<redacted>") }
    }

    /// The secrets of a URL: the whole URL, its path, query and password.
    pub(crate) fn url_parts(url: &reqwest::Url) -> Vec<String> {
        let mut parts = vec![url.as_str().to_owned()];
        if url.path().len() > 1 {
            parts.push(url.path().to_owned());
            // Each path segment too: a receiver may echo back only the token.
            parts.extend(url.path_segments().into_iter().flatten().filter(|s| s.len() >= 8).map(str::to_owned));
        }
        parts.extend(url.query().map(str::to_owned));
        // Each query value too (`sig=...`, `token=...`): a receiver may echo back only one of them.
        parts.extend(url.query_pairs().map(|(_, value)| value.into_owned()).filter(|value| value.len() >= 8));
        parts.extend(url.password().map(str::to_owned));
        parts
    }

    /// `message` with every secret replaced.
    pub(crate) fn clean(&self, message: impl Into<String>) -> String {
        self.inner.redact(&message.into())
    }

    /// The error with its message cleaned.
    pub(crate) fn error(&self, error: DeliveryError) -> DeliveryError {
        match error {
            DeliveryError::Retry(message) => DeliveryError::Retry(self.clean(message)),
            DeliveryError::Reject(message) => DeliveryError::Reject(self.clean(message)),
        }
    }
}

/// Sends a request; 2xx gives the response body, 408, 425, 429 and 5xx a retry, anything else (3xx, 4xx)
/// a reject. Transport errors (refused, reset, timeout, TLS) are retried. Messages name no URL.
pub(crate) async fn send(request: reqwest::RequestBuilder, redactor: &Redactor) -> Result<String, DeliveryError> {
    let result = async {
        let response = request.send().await.map_err(|error| DeliveryError::Retry(transport(error)))?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(body);
        }
        let message = match snippet(&body) {
            Some(snippet) => format!("http {}: {snippet}", status.as_u16()),
            None => format!("http {}", status.as_u16()),
        };
        Err(if retryable(status) { DeliveryError::Retry(message) } else { DeliveryError::Reject(message) })
    }
    .await;
    result.map_err(|error| redactor.error(error))
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
        || status.as_u16() == 425
}

/// A transport error and its causes, without the URL.
fn transport(error: reqwest::Error) -> String {
    let timeout = error.is_timeout();
    let text = probenet_checks::net::describe(&error.without_url());
    if timeout && !text.contains("timed out") { format!("{text}: timed out") } else { text }
}

/// The start of a response body on one line, if there is any.
fn snippet(body: &str) -> Option<String> {
    let line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return None;
    }
    let mut cut: String = line.chars().take(MAX_BODY_IN_ERROR).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    Some(cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactor_replaces_url_parts_and_secrets() {
        let url =
            parse_url("url", "https://hooks.example.com/services/T000/B000/XXXXXXXXSECRET?token=abcd1234").unwrap();
        let redactor = Redactor::new(Redactor::url_parts(&url).into_iter().chain(["hunter22".to_owned()]));
        let message = redactor.clean(format!("{url} said XXXXXXXXSECRET, token=abcd1234 and hunter22"));
        assert!(!message.contains("SECRET") && !message.contains("abcd1234") && !message.contains("hunter22"));
        let message = redactor.clean("the token abcd1234 is not valid");
        assert_eq!(message, "the token <redacted> is not valid");
        assert_eq!(origin(&url), "https://hooks.example.com");
    }

    #[test]
    fn redactor_finds_secrets_encoded() {
        let redactor = Redactor::new(["s3cr3t/t0ken+x".to_owned()]);
        let message = redactor
            .clean("error sending request for url (https://h/?k=s3cr3t%2Ft0ken%2Bx): {\"t\":\"s3cr3t\\/t0ken+x\"}");
        assert_eq!(message, "error sending request for url (https://h/?k=<redacted>): {\"t\":\"<redacted>\"}");
    }

    #[test]
    fn statuses_sort_into_retry_and_reject() {
        assert!(retryable(StatusCode::INTERNAL_SERVER_ERROR) && retryable(StatusCode::TOO_MANY_REQUESTS));
        assert!(!retryable(StatusCode::BAD_REQUEST) && !retryable(StatusCode::NOT_FOUND));
        assert_eq!(snippet("  a\n b  ").as_deref(), Some("a b"));
        assert_eq!(snippet(" \n"), None);
    }
}
