//! The HTML pages (small shells the script fills in), the embedded assets, and the headers every answer gets.

use std::sync::OnceLock;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::Ctx;
use crate::model::{NotifierStatus, ReloadProblem};

/// The embedded files: name, media type, content.
const ASSETS: [(&str, &str, &[u8]); 7] = [
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("overview.js", "text/javascript; charset=utf-8", include_bytes!("../assets/overview.js")),
    ("check.js", "text/javascript; charset=utf-8", include_bytes!("../assets/check.js")),
    ("lists.js", "text/javascript; charset=utf-8", include_bytes!("../assets/lists.js")),
    ("status.js", "text/javascript; charset=utf-8", include_bytes!("../assets/status.js")),
    ("app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("icon.svg", "image/svg+xml", include_bytes!("../assets/icon.svg")),
];

/// The policy of every answer: nothing from elsewhere, no inline script or style.
const CSP: &str =
    "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// A short hash of every asset, appended to their URLs so that they can be cached for a year.
fn assets_version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let all: Vec<u8> = ASSETS.iter().flat_map(|(_, _, bytes)| bytes.iter().copied()).collect();
        format!("{:08x}", crate::api::fnv(&all) & 0xffff_ffff)
    })
}

pub(crate) use probenet_checks::html::escape;

/// The `<head>` and the opening `<body>` of a page.
fn head(base: &str, title: &str, page: &str, app_title: &str) -> String {
    let v = assets_version();
    let title = escape(title);
    let app_title = escape(app_title);
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\"><title>{title} · {app_title}</title>\
         <link rel=\"icon\" type=\"image/svg+xml\" href=\"{base}/assets/icon.svg?v={v}\">\
         <link rel=\"stylesheet\" href=\"{base}/assets/app.css?v={v}\">\
         <script type=\"module\" src=\"{base}/assets/app.js?v={v}\"></script></head>\
         <body data-page=\"{page}\" data-base=\"{base}\">"
    )
}

/// A page without navigation (login, errors).
pub(crate) fn bare_html(base: &str, title: &str, body: &str) -> String {
    format!("{}<main class=\"bare\">{body}</main></body></html>", head(base, title, "bare", "probenet"))
}

/// A short message page.
pub(crate) fn message_html(base: &str, title: &str, message: &str) -> String {
    bare_html(base, title, &format!("<h1>{}</h1><p>{}</p>", escape(title), escape(message)))
}

/// The navigation links: path, label, page id.
const NAV: [(&str, &str, &str); 5] = [
    ("/", "Overview", "overview"),
    ("/alerts", "Alerts", "alerts"),
    ("/probers", "Probers", "probers"),
    ("/slos", "SLOs", "slos"),
    ("/status", "Status", "status"),
];

/// The banner of a refused config reload (an empty, hidden slot when there is none; the script keeps it current).
pub(crate) fn reload_banner(problem: Option<&ReloadProblem>) -> String {
    let Some(problem) = problem else {
        return "<div id=\"reload-problem\" class=\"reload-problem\" role=\"alert\" hidden></div>".to_owned();
    };
    let at = probenet_checks::time::rfc3339_ms(problem.at_ms);
    let errors: String =
        problem.errors.iter().map(|error| format!("<li><code>{}</code></li>", escape(error))).collect();
    format!(
        "<div id=\"reload-problem\" class=\"reload-problem\" role=\"alert\"><b>The config reload of \
         <time datetime=\"{at}\">{at}</time> failed; the previous config is still in use.</b> Fix the files \
         (<code>probenet validate</code> shows the same errors); the next change reloads them.<ul>{errors}</ul></div>"
    )
}

/// The alerts page's card of notifiers and their last delivery (`lists.js` draws the same from the API).
pub(crate) fn notifiers_card(notifiers: &[NotifierStatus]) -> String {
    if notifiers.is_empty() {
        return String::new();
    }
    let rows: String = notifiers
        .iter()
        .map(|notifier| {
            let (state, alert, at, error) = match &notifier.last {
                None => {
                    ("<span class=\"muted\">none yet</span>".to_owned(), String::new(), String::new(), String::new())
                }
                Some(last) => {
                    let class = match last.state.as_str() {
                        "delivered" => "up",
                        "failed" => "down",
                        _ => "degraded",
                    };
                    let at = probenet_checks::time::rfc3339_ms(last.at_ms);
                    (
                        format!("<span class=\"badge {class}\">{}</span>", escape(&last.state)),
                        escape(&last.alert),
                        format!("<time datetime=\"{at}\">{at}</time>"),
                        last.error.as_deref().map(escape).unwrap_or_default(),
                    )
                }
            };
            format!(
                "<tr data-notifier=\"{name}\"><td><b>{name}</b><div class=\"muted\">{kind}</div></td><td>{state}</td>\
                 <td>{alert}</td><td class=\"num\">{at}</td><td class=\"num\">{sent} / {failed}</td>\
                 <td class=\"muted\">{error}</td></tr>",
                name = escape(&notifier.name),
                kind = escape(&notifier.kind),
                sent = notifier.sent,
                failed = notifier.failed,
            )
        })
        .collect();
    format!(
        "<section class=\"card\" id=\"notifiers\"><h2>Notifiers</h2><div class=\"tablewrap\"><table>\
         <tr><th>Notifier</th><th>Last delivery</th><th>Alert</th><th>When</th><th>Sent / failed</th><th>Error</th>\
         </tr>{rows}</table></div></section>"
    )
}

/// A dashboard page: the header with navigation, the banner of a refused config reload, and an empty main the
/// script fills.
fn page(ctx: &Ctx, page: &str, title: &str) -> Response {
    page_with(ctx, page, title, "")
}

/// [`page`] with `first` in the main element until the script draws it.
fn page_with(ctx: &Ctx, page: &str, title: &str, first: &str) -> Response {
    let base = &ctx.options.base_path;
    let app_title = &ctx.options.title;
    let mut nav = String::new();
    for (path, label, id) in NAV {
        let current = if id == page { " aria-current=\"page\"" } else { "" };
        nav.push_str(&format!("<a href=\"{base}{path}\"{current}>{label}</a>"));
    }
    let html = format!(
        "{}<header class=\"top\"><a class=\"brand\" href=\"{base}/\"><img src=\"{base}/assets/icon.svg?v={v}\" \
         alt=\"\" width=\"22\" height=\"22\"><span>{}</span></a><nav>{nav}</nav>\
         <span id=\"live\" class=\"live\" title=\"Live updates\">connecting</span></header>{banner}\
         <main id=\"main\" aria-busy=\"true\">{first}<p class=\"loading\">Loading…</p></main></body></html>",
        head(base, title, page, app_title),
        escape(app_title),
        v = assets_version(),
        banner = reload_banner(ctx.source.reload_problem().as_ref()),
    );
    html_response(html)
}

/// An HTML answer that is never cached (pages are shells, but they carry the asset versions).
fn html_response(html: String) -> Response {
    let mut response = Html(html).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`.
pub(crate) async fn overview_page(State(ctx): State<Ctx>) -> Response {
    page(&ctx, "overview", "Overview")
}

/// `GET /checks/{name}`.
pub(crate) async fn check_page(State(ctx): State<Ctx>, Path(name): Path<String>) -> Response {
    page(&ctx, "check", &name)
}

/// `GET /alerts`: with the notifiers and their last delivery already drawn.
pub(crate) async fn alerts_page(State(ctx): State<Ctx>) -> Response {
    let source = ctx.source.clone();
    let notifiers = match tokio::task::spawn_blocking(move || source.notifiers()).await {
        Ok(Ok(notifiers)) => notifiers,
        _ => Vec::new(),
    };
    page_with(&ctx, "alerts", "Alerts", &notifiers_card(&notifiers))
}

/// `GET /probers`.
pub(crate) async fn probers_page(State(ctx): State<Ctx>) -> Response {
    page(&ctx, "probers", "Probers")
}

/// `GET /slos`.
pub(crate) async fn slos_page(State(ctx): State<Ctx>) -> Response {
    page(&ctx, "slos", "SLOs")
}

/// `GET /status`: the public status page (its own layout, no navigation to the dashboard).
pub(crate) async fn status_page(State(ctx): State<Ctx>) -> Response {
    let base = &ctx.options.base_path;
    let html = format!(
        "{}<main id=\"main\" class=\"status\" aria-busy=\"true\"><p class=\"loading\">Loading…</p></main>\
         <footer class=\"foot\">Monitored by probenet</footer></body></html>",
        head(base, "Status", "status", &ctx.options.title)
    );
    html_response(html)
}

/// `GET /assets/{file}`: an embedded file, cached for a year (its URL carries a version).
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let Some((_, media_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response
}

/// `GET /favicon.ico`: the icon (browsers ask for it whatever the page says).
pub(crate) async fn favicon() -> Response {
    asset(Path("icon.svg".to_owned())).await
}

/// Any other path.
pub(crate) async fn not_found(State(ctx): State<Ctx>, uri: axum::http::Uri) -> Response {
    if uri.path().contains("/api/") {
        return (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({ "error": "not found" }))).into_response();
    }
    let html = message_html(&ctx.options.base_path, "Not found", "There is no page at this address.");
    (StatusCode::NOT_FOUND, Html(html)).into_response()
}

/// Adds the security headers to every answer.
/// HSTS, for a dashboard served over HTTPS: browsers keep to HTTPS for this host for a year.
pub(crate) async fn hsts(mut response: Response) -> Response {
    response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    response
}

pub(crate) async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
