//! The web dashboard: uptime and latency per check per region, alerts, probers, SLOs, a public status page,
//! and the JSON read API the pages use.
//!
//! The data comes from a [`Source`] (implemented over the store and the alert engine); [`router`] serves the
//! pages, the API (`/api/ui/...`, described in `docs/openapi.yaml`), live updates (server-sent events) and the
//! embedded assets. The front end is plain JavaScript and CSS embedded in the binary: no CDN, no web fonts, no
//! inline script (the Content-Security-Policy is `default-src 'self'`).

mod api;
mod assets;
mod auth;
pub mod compact;
pub mod demo;
mod grafana;
pub mod model;
mod source;
pub mod status;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

pub use auth::Auth;
pub use grafana::{GrafanaCheck, grafana_dashboard};
pub use model::State;
pub use source::{Source, SourceError, SourceResult};

/// How the dashboard is served.
#[derive(Debug, Clone)]
pub struct DashboardOptions {
    /// Who may read the dashboard; `None` lets anyone who reaches it.
    pub auth: Option<Auth>,
    /// Whether the status page (`/status` and `/api/ui/status`) is readable without auth.
    pub status_page_public: bool,
    /// The path the dashboard is mounted at: `""` for the root, or `/ui` say (no trailing slash).
    pub base_path: String,
    /// The title in the header and the browser tab, such as `probenet`.
    pub title: String,
    /// Whether it is served over HTTPS: the session cookie is then `Secure` and HSTS is sent.
    pub secure: bool,
}

impl Default for DashboardOptions {
    fn default() -> Self {
        Self {
            auth: None,
            status_page_public: true,
            base_path: String::new(),
            title: "probenet".to_owned(),
            secure: false,
        }
    }
}

/// Why the options cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    /// The base path has characters other than letters, digits, `-`, `_`, `.`, `~` and `/`, or an empty segment.
    #[error("invalid dashboard base path {0:?}: use letters, digits, '-', '_', '.' and '/' only, like /ui")]
    BasePath(String),
    /// An auth setting is empty.
    #[error("empty dashboard credentials")]
    EmptyCredentials,
}

/// The shared state of every handler.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub source: Arc<dyn Source>,
    pub options: Arc<DashboardOptions>,
}

/// Normalises a base path: `""`, `"/"` give `""`; `"ui/"` gives `"/ui"`.
fn normalise_base(base: &str) -> Result<String, OptionsError> {
    let trimmed = base.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    let valid = trimmed.split('/').all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment != ".."
            && segment.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
    });
    if valid { Ok(format!("/{trimmed}")) } else { Err(OptionsError::BasePath(base.to_owned())) }
}

/// The dashboard's routes, under `options.base_path`: the pages `/`, `/checks/{name}`, `/alerts`, `/probers`,
/// `/slos` and `/status`; the API under `/api/ui/` (`/api/ui/reload`: a refused config reload, also shown as a
/// banner on every page but the status page); live updates at `/api/ui/events`; assets under `/assets/`.
pub fn router(source: Arc<dyn Source>, options: DashboardOptions) -> Result<Router, OptionsError> {
    let base = normalise_base(&options.base_path)?;
    if let Some(auth) = &options.auth
        && auth.is_empty()
    {
        return Err(OptionsError::EmptyCredentials);
    }
    let options = DashboardOptions { base_path: base.clone(), ..options };
    let status_public = options.status_page_public;
    let (secure, open) = (options.secure, options.auth.is_none());
    let ctx = Ctx { source, options: Arc::new(options) };

    let mut protected = Router::new()
        .route("/", get(assets::overview_page))
        .route("/checks/{name}", get(assets::check_page))
        .route("/alerts", get(assets::alerts_page))
        .route("/probers", get(assets::probers_page))
        .route("/slos", get(assets::slos_page))
        .route("/api/ui/overview", get(api::overview))
        .route("/api/ui/checks/{name}", get(api::check))
        .route("/api/ui/artifacts/{*path}", get(api::artifact))
        .route("/api/ui/alerts", get(api::alerts))
        .route("/api/ui/probers", get(api::probers))
        .route("/api/ui/slos", get(api::slos))
        .route("/api/ui/version", get(api::version))
        .route("/api/ui/reload", get(api::reload))
        .route("/api/ui/events", get(api::events));
    let status = Router::new().route("/status", get(assets::status_page)).route("/api/ui/status", get(api::status));
    let mut public = Router::new()
        .route("/assets/{file}", get(assets::asset))
        .route("/favicon.ico", get(assets::favicon))
        .route("/api/ui/login", get(auth::login_page));
    if status_public {
        public = public.merge(status);
    } else {
        protected = protected.merge(status);
    }
    let protected = protected.layer(axum::middleware::from_fn_with_state(ctx.clone(), auth::require));
    let mut inner = protected.merge(public).fallback(assets::not_found);
    if open {
        inner = inner.layer(axum::middleware::from_fn(auth::require_loopback_host));
    }
    let inner = inner.layer(axum::middleware::map_response(assets::security_headers));
    let inner = if secure { inner.layer(axum::middleware::map_response(assets::hsts)) } else { inner };
    let inner = inner.with_state(ctx);
    Ok(if base.is_empty() {
        inner
    } else {
        // `/ui/` goes to `/ui`, keeping the query (a `?token=` login from the form, say).
        let slash = format!("{base}/");
        let target = base.clone();
        let redirect = move |uri: axum::http::Uri| async move {
            let location = match uri.query() {
                Some(query) => format!("{target}?{query}"),
                None => target.clone(),
            };
            axum::response::Redirect::permanent(&location)
        };
        Router::new().route(&slash, get(redirect)).nest(&base, inner)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_are_normalised_or_refused() {
        assert_eq!(normalise_base("").unwrap(), "");
        assert_eq!(normalise_base("/").unwrap(), "");
        assert_eq!(normalise_base("ui/").unwrap(), "/ui");
        assert_eq!(normalise_base("/a/b-c").unwrap(), "/a/b-c");
        assert!(normalise_base("/a/{x}").is_err());
        assert!(normalise_base("/a//b").is_err());
        assert!(normalise_base("/../x").is_err());
    }
}
