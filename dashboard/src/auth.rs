//! Optional auth for the dashboard: a read token (a bearer header, or a `?token=` login that sets a cookie) or
//! HTTP basic auth. Comparisons take constant time; secrets never reach a log or a response.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;

use crate::Ctx;

/// The session cookie a `?token=` login sets over plain HTTP (loopback)...
pub(crate) const COOKIE: &str = "probenet_session";
/// ...and over HTTPS: a `__Host-` cookie, which browsers keep only when it is `Secure`, for `/`, from this host.
pub(crate) const SECURE_COOKIE: &str = "__Host-probenet_session";

/// The session a token opens: derived from it (so it ends when the token changes) without revealing it.
fn session_of(token: &str) -> String {
    probenet_checks::tls::sha256_hex(format!("probenet dashboard session\0{token}").as_bytes())
}

/// Whether a request's Host (or HTTP/2 authority) names this machine's loopback: a token-less dashboard only
/// answers those, so a web page on another name that resolves to 127.0.0.1 (DNS rebinding) reads nothing.
pub(crate) fn loopback_host(request: &Request) -> bool {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|authority| authority.as_str()));
    let Some(host) = host else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host
            .rsplit_once(':')
            .map_or(host, |(name, port)| if port.chars().all(|c| c.is_ascii_digit()) { name } else { host }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The middleware of a token-less dashboard: 421 for a Host that is not a loopback name.
pub(crate) async fn require_loopback_host(request: Request, next: Next) -> Response {
    if loopback_host(&request) {
        return next.run(request).await;
    }
    let body = "This dashboard has no token and answers only at localhost or 127.0.0.1.\n";
    (StatusCode::MISDIRECTED_REQUEST, body).into_response()
}

/// Who may read the dashboard.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A read token: `Authorization: Bearer TOKEN`, or opening any page with `?token=TOKEN` once (which sets an
    /// HttpOnly, SameSite=Strict session cookie derived from it and redirects to the page without it).
    Token(String),
    /// HTTP basic auth with one user.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        password: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::Basic { user, .. } => write!(f, "Basic {{ user: {user:?}, password: <redacted> }}"),
        }
    }
}

impl Auth {
    /// Whether a credential is empty (refused by [`crate::router`]).
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Token(token) => token.is_empty(),
            Self::Basic { user, password } => user.is_empty() || password.is_empty(),
        }
    }
}

/// Compares two secrets in time that depends only on their lengths.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(std::hint::black_box(x ^ y));
    }
    std::hint::black_box(diff) == 0
}

/// The value of one cookie.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The `token` query parameter, and the query without it.
fn token_param(uri: &Uri) -> Option<(String, String)> {
    let query = uri.query()?;
    let mut token = None;
    let mut rest = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("token=") {
            Some(value) => token = Some(percent_decode(value)),
            None if !pair.is_empty() => rest.push(pair),
            None => {}
        }
    }
    Some((token?, rest.join("&")))
}

/// Decodes `%XX` escapes and `+` of a query value (invalid escapes are kept as they are).
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|hex| u8::from_str_radix(hex, 16).ok()) {
                    Some(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What a request presents, checked against `auth`.
fn authorised(auth: &Auth, headers: &HeaderMap) -> bool {
    let authorization = headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()).unwrap_or("");
    match auth {
        Auth::Token(token) => {
            let bearer = authorization
                .strip_prefix("Bearer ")
                .is_some_and(|given| same(given.trim().as_bytes(), token.as_bytes()));
            let session = session_of(token);
            bearer
                || [COOKIE, SECURE_COOKIE]
                    .iter()
                    .filter_map(|name| cookie(headers, name))
                    .any(|given| same(given.as_bytes(), session.as_bytes()))
        }
        Auth::Basic { user, password } => {
            let Some(encoded) = authorization.strip_prefix("Basic ") else {
                return false;
            };
            let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
                return false;
            };
            let expected = [user.as_bytes(), b":", password.as_bytes()].concat();
            same(&decoded, &expected)
        }
    }
}

/// Whether a request wants JSON (the API) rather than a page.
fn wants_api(uri: &Uri) -> bool {
    uri.path().contains("/api/")
}

/// The middleware in front of every protected route.
pub(crate) async fn require(State(ctx): State<Ctx>, request: Request, next: Next) -> Response {
    let live = ctx.source.auth();
    let Some(auth) = live.as_ref().or(ctx.options.auth.as_ref()) else {
        return next.run(request).await;
    };
    if authorised(auth, request.headers()) {
        return next.run(request).await;
    }
    let base = &ctx.options.base_path;
    if let Auth::Token(token) = auth
        && let Some((given, rest)) = token_param(request.uri())
    {
        if same(given.as_bytes(), token.as_bytes()) {
            // The token leaves the address bar (and the history) at once.
            // Inside a nested router the path has lost the base path.
            let path = match request.uri().path() {
                "/" if !base.is_empty() => base.to_owned(),
                path => format!("{base}{path}"),
            };
            let location = if rest.is_empty() { path } else { format!("{path}?{rest}") };
            // A session cookie (gone when the browser closes) holding a value derived from the token, never the
            // token; over HTTPS a `__Host-` cookie marked Secure.
            let session = session_of(token);
            let cookie = if ctx.options.secure {
                format!("{SECURE_COOKIE}={session}; Path=/; Secure; HttpOnly; SameSite=Strict")
            } else {
                let cookie_path = if base.is_empty() { "/" } else { base.as_str() };
                format!("{COOKIE}={session}; Path={cookie_path}; HttpOnly; SameSite=Strict")
            };
            let mut response = Redirect::to(&location).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            return response;
        }
        return challenge(auth, base, true, wants_api(request.uri()));
    }
    challenge(auth, base, false, wants_api(request.uri()))
}

/// The 401 answer: a JSON error for the API, a login form for a page, and a basic-auth challenge.
fn challenge(auth: &Auth, base: &str, wrong: bool, api: bool) -> Response {
    let mut response = if api {
        let body = serde_json::json!({ "error": "authentication required" });
        (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response()
    } else {
        let html = match auth {
            Auth::Token(_) => login_html(base, wrong),
            Auth::Basic { .. } => {
                crate::assets::message_html(base, "Sign in", "This dashboard needs a user name and a password.")
            }
        };
        (StatusCode::UNAUTHORIZED, Html(html)).into_response()
    };
    if matches!(auth, Auth::Basic { .. }) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"probenet\", charset=\"UTF-8\""));
    }
    response
}

/// The login form for token auth (a GET form: the token lands in `?token=`, which sets the cookie).
fn login_html(base: &str, wrong: bool) -> String {
    let note = if wrong { "<p class=\"err\">That token is not valid.</p>" } else { "" };
    let body = format!(
        "<form class=\"login\" method=\"get\" action=\"{base}/\"><h1>Sign in</h1>{note}\
         <label for=\"token\">Read token</label><input id=\"token\" name=\"token\" type=\"password\" \
         autocomplete=\"current-password\" required autofocus><button type=\"submit\">Open the dashboard</button></form>"
    );
    crate::assets::bare_html(base, "Sign in", &body)
}

/// `GET /api/ui/login`: the login form, for links.
pub(crate) async fn login_page(State(ctx): State<Ctx>) -> Response {
    Html(login_html(&ctx.options.base_path, false)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_compares_whole_secrets() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }

    #[test]
    fn token_param_is_decoded_and_removed() {
        let uri: Uri = "/x?a=1&token=ab%2Bc+d&b=2".parse().unwrap();
        assert_eq!(token_param(&uri), Some(("ab+c d".to_owned(), "a=1&b=2".to_owned())));
        let uri: Uri = "/x?a=1".parse().unwrap();
        assert_eq!(token_param(&uri), None);
    }

    #[test]
    fn debug_hides_secrets() {
        let shown =
            format!("{:?} {:?}", Auth::Token("t0p".into()), Auth::Basic { user: "u".into(), password: "pw9".into() });
        assert!(!shown.contains("t0p") && !shown.contains("pw9"), "{shown}");
    }
}
