//! The `dashboard` section: the web page's title, its read token, and the public status page.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Ctx, Path, suggest};
use crate::secret::Template;

/// The dashboard served by the scheduler (and by `probenet up`).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Dashboard")]
pub struct RawDashboard {
    /// The title in the page header (default `probenet`).
    pub title: Option<String>,
    /// A read token for the dashboard, as a secret reference (`${env:NAME}`, `${file:PATH}`): open
    /// `https://scheduler/?token=...` once, or send `Authorization: Bearer ...`. Without it the dashboard is
    /// served only when the scheduler listens on a loopback address. A reload applies a new token at once.
    pub token: Option<String>,
    /// A public, read-only status page at `/status`.
    pub status_page: Option<RawStatusPage>,
}

/// The public status page.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "StatusPage")]
pub struct RawStatusPage {
    /// Its title, such as `Example Inc. status`.
    pub title: Option<String>,
    /// Whether it is served without the dashboard's token (default `true`).
    pub public: Option<bool>,
    /// The checks it shows, in order.
    pub checks: Vec<String>,
    /// Names shown to the public instead of the check names, such as `{shop-homepage: Shop}`.
    pub names: Option<std::collections::BTreeMap<String, String>>,
}

/// The validated dashboard options.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The page title.
    pub title: String,
    /// The read token.
    pub token: Option<Template>,
    /// The status page.
    pub status_page: Option<StatusPage>,
}

/// The title when the config sets none.
pub const DEFAULT_TITLE: &str = "probenet";

impl Default for Dashboard {
    /// A config without a `dashboard` section: the default title, no token, no status page.
    fn default() -> Self {
        Self { title: DEFAULT_TITLE.to_owned(), token: None, status_page: None }
    }
}

/// The validated status page.
#[derive(Debug, Clone)]
pub struct StatusPage {
    /// Its title.
    pub title: String,
    /// Served without the token.
    pub public: bool,
    /// (check, shown name), in order.
    pub checks: Vec<(String, String)>,
}

/// Validates the `dashboard` section of one file; `checks` are every check name of the config.
pub(super) fn validate_dashboard(cx: &mut Ctx<'_>, checks: &[&str]) -> Option<Dashboard> {
    let base = Path::root().key("dashboard");
    let node = cx.node(&base)?;
    let raw = if node.is_null() { RawDashboard::default() } else { cx.deserialize::<RawDashboard>(&base)? };
    let token = raw.token.as_deref().and_then(|text| cx.credential(&base.key("token"), text));
    let status_page = raw.status_page.map(|page| {
        let mut shown = Vec::new();
        let unknown = |cx: &mut Ctx<'_>, path: &Path, check: &str| {
            let hint = suggest(check, checks.iter().copied())
                .map(|close| format!(" (did you mean {close:?}?)"))
                .unwrap_or_default();
            cx.error(path, format!("unknown check {check:?}{hint}"));
        };
        let names = page.names.unwrap_or_default();
        for check in names.keys() {
            if !page.checks.contains(check) {
                let path = base.key("status_page").key("names").key(check);
                if checks.contains(&check.as_str()) {
                    cx.error_at_key(&path, format!("{check:?} is not one of the status page's `checks`"));
                } else {
                    unknown(cx, &path, check);
                }
            }
        }
        for (index, check) in page.checks.into_iter().enumerate() {
            if !checks.contains(&check.as_str()) {
                unknown(cx, &base.key("status_page").key("checks").index(index), &check);
                continue;
            }
            let name = names.get(&check).cloned().unwrap_or_else(|| check.clone());
            shown.push((check, name));
        }
        StatusPage {
            title: page.title.unwrap_or_else(|| "Status".to_owned()),
            public: page.public.unwrap_or(true),
            checks: shown,
        }
    });
    Some(Dashboard { title: raw.title.unwrap_or_else(|| DEFAULT_TITLE.to_owned()), token, status_page })
}

#[cfg(test)]
mod tests {
    use crate::wire::ConfigFile;

    fn title(yaml: &str) -> String {
        let file = ConfigFile { name: "t.yaml".to_owned(), text: yaml.to_owned() };
        let config = crate::config::load_sources(&[file]).unwrap_or_else(|errors| panic!("{errors}"));
        config.dashboard.title
    }

    #[test]
    fn the_title_is_probenet_unless_set() {
        let check = "checks:\n  - name: a\n    http: {url: \"http://127.0.0.1/\"}\n";
        assert_eq!(title(check), "probenet", "no dashboard section");
        assert_eq!(title(&format!("dashboard: {{}}\n{check}")), "probenet");
        assert_eq!(title(&format!("dashboard: {{title: Shop}}\n{check}")), "Shop");
    }
}
