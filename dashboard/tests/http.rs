//! HTTP-level tests: auth (token, cookie login, basic), the public status page, the API's JSON, entity tags,
//! source errors, the event stream, base paths, and the headers of pages and assets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use probenet_dashboard::compact::uptime_hundredths;
use probenet_dashboard::demo::{DemoOptions, DemoSource};
use probenet_dashboard::{Auth, DashboardOptions, Source, State};
use reqwest::StatusCode;
use reqwest::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, ETAG, IF_NONE_MATCH, LOCATION,
    SET_COOKIE, WWW_AUTHENTICATE,
};
use serde_json::Value;
use support::serve;

const TOKEN: &str = "read-t0ken-9f";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

fn demo() -> Arc<DemoSource> {
    Arc::new(DemoSource::new(DemoOptions::default()))
}

fn with_auth(auth: Auth, status_page_public: bool) -> DashboardOptions {
    DashboardOptions { auth: Some(auth), status_page_public, ..DashboardOptions::default() }
}

#[tokio::test]
async fn token_auth_guards_pages_and_api_but_not_the_public_status_page() {
    let server = serve(demo(), with_auth(Auth::Token(TOKEN.to_owned()), true)).await;
    let http = client();
    for path in [
        "/",
        "/checks/x",
        "/alerts",
        "/probers",
        "/slos",
        "/api/ui/overview",
        "/api/ui/events",
        "/api/ui/artifacts/screenshots/6-0.png",
    ] {
        let response = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path} must need the token");
        let body = response.text().await.expect("body");
        assert!(!body.contains(TOKEN), "the token leaked into {path}");
    }
    let api = http.get(server.url("/api/ui/overview")).send().await.expect("request");
    assert_eq!(api.headers()[CONTENT_TYPE], "application/json");

    // A wrong token is refused, the right one accepted as a bearer header.
    let wrong = http.get(server.url("/api/ui/overview")).bearer_auth("read-t0ken-9g").send().await.expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = http.get(server.url("/api/ui/overview")).bearer_auth(TOKEN).send().await.expect("request");
    assert_eq!(right.status(), StatusCode::OK);

    // `?token=` sets an HttpOnly cookie and drops the token from the address; the cookie then works alone.
    let login = http.get(server.url(&format!("/checks/a?range=7d&token={TOKEN}"))).send().await.expect("request");
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    assert_eq!(login.headers()[LOCATION], "/checks/a?range=7d");
    let cookie = login.headers()[SET_COOKIE].to_str().expect("cookie").to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    // A session cookie that does not hold the token (in any form a browser or a proxy log would show).
    assert!(!cookie.contains(TOKEN) && !cookie.contains("Max-Age") && !cookie.contains("Expires"), "{cookie}");
    let pair = cookie.split(';').next().expect("name=value");
    let page = http.get(server.url("/")).header(COOKIE, pair).send().await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    let bad_login = http.get(server.url("/?token=nope")).send().await.expect("request");
    assert_eq!(bad_login.status(), StatusCode::UNAUTHORIZED);
    assert!(bad_login.headers().get(SET_COOKIE).is_none());

    // The status page, its data and the assets need nothing.
    for path in ["/status", "/api/ui/status", "/assets/app.js", "/assets/app.css", "/favicon.ico"] {
        let response = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path} must be public");
    }
}

#[tokio::test]
async fn over_https_the_session_cookie_is_secure_and_hsts_is_sent() {
    let options = DashboardOptions { secure: true, ..with_auth(Auth::Token(TOKEN.to_owned()), true) };
    let server = serve(demo(), options).await;
    let http = client();
    let login = http.get(server.url(&format!("/?token={TOKEN}"))).send().await.expect("request");
    let cookie = login.headers()[SET_COOKIE].to_str().expect("cookie").to_owned();
    assert!(cookie.starts_with("__Host-") && cookie.contains("; Secure") && cookie.contains("Path=/;"), "{cookie}");
    assert!(!cookie.contains(TOKEN), "{cookie}");
    assert_eq!(login.headers()["strict-transport-security"], "max-age=31536000");
    let pair = cookie.split(';').next().expect("name=value");
    let page = http.get(server.url("/")).header(COOKIE, pair).send().await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    // The raw token in a cookie opens nothing: only the session does.
    let raw = http.get(server.url("/")).header(COOKIE, format!("__Host-probenet_session={TOKEN}")).send().await;
    assert_eq!(raw.expect("request").status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_dashboard_without_a_token_answers_only_loopback_names() {
    let server = serve(demo(), DashboardOptions::default()).await;
    let http = client();
    for host in ["localhost", "localhost:8080", "127.0.0.1:9", "[::1]:80", "app.localhost", "127.8.9.10"] {
        let response = http.get(server.url("/api/ui/overview")).header("host", host).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
    // A name an attacker's DNS points at 127.0.0.1 (rebinding) gets nothing.
    for host in ["evil.example", "evil.example:80", "localhost.evil.example", "127.0.0.1.evil.example", ""] {
        let response = http.get(server.url("/api/ui/overview")).header("host", host).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::MISDIRECTED_REQUEST, "{host:?}");
        assert!(!response.text().await.unwrap_or_default().contains("\"checks\""), "{host}");
    }
    // With a token, any name may be used (the token is the guard).
    let guarded = serve(demo(), with_auth(Auth::Token(TOKEN.to_owned()), true)).await;
    let response = http.get(guarded.url("/status")).header("host", "status.example.com").send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_private_status_page_needs_auth_too() {
    let server = serve(demo(), with_auth(Auth::Token(TOKEN.to_owned()), false)).await;
    let http = client();
    for path in ["/status", "/api/ui/status"] {
        let response = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let response = http.get(server.url(path)).bearer_auth(TOKEN).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn basic_auth_challenges_and_accepts_only_the_right_pair() {
    let auth = Auth::Basic { user: "ops".to_owned(), password: "pa:ss w0rd".to_owned() };
    let server = serve(demo(), with_auth(auth, true)).await;
    let http = client();
    let response = http.get(server.url("/")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.headers()[WWW_AUTHENTICATE].to_str().expect("header").starts_with("Basic realm="));
    let encode = |pair: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair));
    for (pair, status) in [
        ("ops:pa:ss w0rd", StatusCode::OK),
        ("ops:pa:ss w0rD", StatusCode::UNAUTHORIZED),
        ("op:pa:ss w0rd", StatusCode::UNAUTHORIZED),
        ("ops:", StatusCode::UNAUTHORIZED),
    ] {
        let response =
            http.get(server.url("/api/ui/slos")).header(AUTHORIZATION, encode(pair)).send().await.expect("request");
        assert_eq!(response.status(), status, "{pair}");
    }
    let bearer = http.get(server.url("/api/ui/slos")).bearer_auth("pa:ss w0rd").send().await.expect("request");
    assert_eq!(bearer.status(), StatusCode::UNAUTHORIZED);
    let status = http.get(server.url("/status")).send().await.expect("request");
    assert_eq!(status.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_overview_api_is_compact_and_matches_the_source() {
    let source = Arc::new(DemoSource::new(DemoOptions { checks: 1000, ..DemoOptions::default() }));
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let response = client().get(server.url("/api/ui/overview")).send().await.expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let etag = response.headers()[ETAG].clone();
    let body = response.bytes().await.expect("body");
    assert!(body.len() < 500_000, "1,000 x 5 overview is {} bytes", body.len());
    let json: Value = serde_json::from_slice(&body).expect("JSON");
    let overview = source.overview().expect("overview");
    assert_eq!(json["regions"], serde_json::json!(overview.regions));
    assert_eq!(json["states"], serde_json::json!(["up", "degraded", "down", "no_data"]));
    let rows = json["checks"].as_array().expect("checks");
    assert_eq!(rows.len(), 1000);
    for (row, check) in rows.iter().zip(&overview.checks) {
        assert_eq!(row[0], check.name.as_str());
        assert_eq!(row[1], check.kind.as_str());
        for (cell, expected) in row[5].as_array().expect("cells").iter().zip(&check.cells) {
            assert_eq!(cell[0], expected.state.index());
            assert_eq!(cell[3].as_i64(), expected.uptime_24h.map(uptime_hundredths));
            assert_eq!(cell[5].as_i64(), expected.uptime_30d.map(uptime_hundredths));
            assert_eq!(cell[6].as_str().map(str::len), Some(expected.sparkline.len()));
        }
    }

    // Unchanged: 304. Changed: a new body.
    let again =
        client().get(server.url("/api/ui/overview")).header(IF_NONE_MATCH, etag.clone()).send().await.expect("request");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let name = overview.checks[0].name.clone();
    let region = overview.checks[0].cells[0].region.clone();
    let new_state = if overview.checks[0].cells[0].state == State::Down { State::Up } else { State::Down };
    assert!(source.set_state(&name, &region, new_state));
    let changed =
        client().get(server.url("/api/ui/overview")).header(IF_NONE_MATCH, etag).send().await.expect("request");
    assert_eq!(changed.status(), StatusCode::OK);
    let json: Value = changed.json().await.expect("JSON");
    assert_eq!(json["checks"][0][5][0][0], new_state.index());
}

#[tokio::test]
async fn check_details_artifacts_and_errors() {
    let source = demo();
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let http = client();
    let browser = source
        .overview()
        .expect("overview")
        .checks
        .into_iter()
        .find(|row| row.kind == "browser")
        .expect("browser check");
    let detail: Value = http
        .get(server.url(&format!("/api/ui/checks/{}?range=6h", browser.name)))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(detail["name"], browser.name.as_str());
    assert_eq!(detail["to_ms"].as_i64(), Some(source.now_ms()));
    assert_eq!(detail["to_ms"].as_i64().unwrap() - detail["from_ms"].as_i64().unwrap(), 6 * 3_600_000);
    assert_eq!(detail["now_ms"].as_i64(), Some(source.now_ms()));
    assert!(detail["definition"].as_str().unwrap().contains("kind: browser"));
    let phases = detail["phases"].as_array().unwrap().len();
    let point = &detail["regions"][0]["latency"][0];
    assert_eq!(point["phases"].as_array().unwrap().len(), phases);
    let screenshot = detail["failures"][0]["screenshot"].as_str().expect("a screenshot").to_owned();

    let png = http.get(server.url(&format!("/api/ui/artifacts/{screenshot}"))).send().await.expect("request");
    assert_eq!(png.status(), StatusCode::OK);
    assert_eq!(png.headers()[CONTENT_TYPE], "image/png");
    assert!(png.bytes().await.unwrap().starts_with(b"\x89PNG"));
    for (path, status) in [
        ("/api/ui/artifacts/../../etc/passwd", StatusCode::NOT_FOUND),
        ("/api/ui/artifacts/screenshots/0-0.png", StatusCode::NOT_FOUND),
        ("/api/ui/checks/no-such-check", StatusCode::NOT_FOUND),
        (&format!("/api/ui/checks/{}?range=1y", browser.name), StatusCode::BAD_REQUEST),
        (&format!("/api/ui/checks/{}?from=10&to=5", browser.name), StatusCode::BAD_REQUEST),
        ("/api/ui/nothing", StatusCode::NOT_FOUND),
    ] {
        let response = http.get(server.url(path)).send().await.expect("request");
        assert_eq!(response.status(), status, "{path}");
    }

    // A failing source answers 503 with its message, as JSON.
    source.fail_with(Some("store unavailable".to_owned()));
    let failed = http.get(server.url("/api/ui/overview")).send().await.expect("request");
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    let json: Value = failed.json().await.expect("JSON");
    assert_eq!(json["error"], "store unavailable");
}

#[tokio::test]
async fn other_endpoints_have_the_documented_shapes() {
    let server = serve(demo(), DashboardOptions::default()).await;
    let http = client();
    let get = |path: &'static str| {
        let request = http.get(server.url(path));
        async move { request.send().await.expect("request").json::<Value>().await.expect("JSON") }
    };
    let alerts = get("/api/ui/alerts").await;
    assert!(alerts["firing"].is_array() && alerts["history"].is_array() && alerts["now_ms"].is_i64());
    assert!(alerts["history"][0]["resolved_at_ms"].is_i64());
    let probers = get("/api/ui/probers").await;
    assert_eq!(probers["regions"].as_array().unwrap().len(), 5);
    assert!(probers["regions"][0]["probers"][0]["last_heartbeat_ms"].is_i64());
    let slos = get("/api/ui/slos").await;
    assert!(slos["slos"][0]["burn_rates"][0]["window"].is_string());
    let status = get("/api/ui/status").await;
    assert_eq!(status["title"], "Example Inc. status");
    assert!(status["checks"][0]["regions"][0]["state"].is_string());
    // The demo's maintenance of its first service, by its place on the page, never by the check's name.
    assert_eq!(status["maintenance"][0]["checks"], serde_json::json!(["service-1"]));
    assert_eq!(status["maintenance"][0]["active"], false);
    let version = get("/api/ui/version").await;
    assert_eq!(version["version"], 1);
}

#[tokio::test]
async fn events_announce_the_version_and_its_changes() {
    let source = demo();
    let server = serve(source.clone(), DashboardOptions::default()).await;
    let mut response = client().get(server.url("/api/ui/events")).send().await.expect("request");
    assert_eq!(response.headers()[CONTENT_TYPE], "text/event-stream");
    let mut seen = String::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("data:1\n") || seen.contains("data: 1\n") {
                break;
            }
        }
        assert!(source.set_state("docs-http-001", "eu-west", State::NoData));
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("data:2\n") || seen.contains("data: 2\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.unwrap_or_else(|_| panic!("events so far: {seen:?}"));
    assert!(seen.contains("event: version") || seen.contains("event:version"), "{seen}");
}

#[tokio::test]
async fn pages_and_assets_carry_the_policy_and_the_base_path() {
    let options = DashboardOptions {
        base_path: "/ui/".to_owned(),
        title: "Ops <dash>".to_owned(),
        ..DashboardOptions::default()
    };
    let server = serve(demo(), options).await;
    let http = client();
    let page = http.get(server.url("/ui")).send().await.expect("request");
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap().split(';').next(), Some("default-src 'self'"));
    let html = page.text().await.unwrap();
    assert!(html.contains("Ops &lt;dash&gt;") && !html.contains("Ops <dash>"), "the title must be escaped");
    assert!(html.contains("src=\"/ui/assets/app.js?v=") && !html.contains("<script>"), "no inline script");
    let slash = http.get(server.url("/ui/?x=1")).send().await.expect("request");
    assert_eq!(slash.headers()[LOCATION], "/ui?x=1");
    assert_eq!(http.get(server.url("/")).send().await.unwrap().status(), StatusCode::NOT_FOUND);
    for asset in ["app.js", "overview.js", "check.js", "lists.js", "status.js", "app.css", "icon.svg"] {
        let response = http.get(server.url(&format!("/ui/assets/{asset}"))).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(response.headers()[CACHE_CONTROL].to_str().unwrap().contains("immutable"));
        assert!(response.headers().contains_key(CONTENT_SECURITY_POLICY));
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("http://") && !text.contains("https://") || asset == "icon.svg",
            "{asset} refers to another site"
        );
    }
    let missing = http.get(server.url("/ui/assets/nope.js")).send().await.expect("request");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

#[test]
fn bad_options_are_refused() {
    let source: Arc<dyn Source> = demo();
    let base = DashboardOptions { base_path: "/a/{b}".to_owned(), ..DashboardOptions::default() };
    assert!(probenet_dashboard::router(source.clone(), base).is_err());
    let empty = with_auth(Auth::Basic { user: "ops".to_owned(), password: String::new() }, true);
    assert!(probenet_dashboard::router(source, empty).is_err());
}

#[test]
fn every_api_route_is_documented() {
    let routes = include_str!("../src/lib.rs");
    let openapi = include_str!("../../docs/openapi.yaml");
    let documented: Vec<&str> =
        openapi.lines().filter_map(|line| line.strip_prefix("  /api/ui/")?.strip_suffix(':')).collect();
    let served: Vec<String> = routes
        .split(".route(\"/api/ui/")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(|path| path.replace("{*path}", "{path}"))
        .filter(|path| path != "login")
        .collect();
    assert!(served.len() >= 9, "{served:?}");
    for path in &served {
        assert!(documented.contains(&path.as_str()), "/api/ui/{path} is not in docs/openapi.yaml");
    }
    assert_eq!(documented.len(), served.len(), "documented {documented:?}, served {served:?}");
}
