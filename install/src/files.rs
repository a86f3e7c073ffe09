//! The configuration files an install writes: the deployed checks config, the remote write exporter, vmalert's
//! rules and Alertmanager's configuration (shared with the Kubernetes target).

use std::path::Path;

use serde_json::{Value, json};

use crate::layout::{Layout, STORE_USER};
use crate::plan::{Action, PRIVATE};
use crate::stack::{AlertingSpec, Loaded, Receiver, StoreKind};
use crate::yaml_out;

/// Mode of configuration files the components' group may read.
pub const SHARED: u32 = 0o640;

/// The name a deployed copy of a checks config file gets: its load order, then its base name, so that the
/// scheduler reads the copies in the order the originals were read.
pub fn deployed_name(index: usize, source: &str) -> String {
    let base = Path::new(source).file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{index:02}-{base}")
}

/// The remote write exporter the scheduler gets besides the user's checks config.
pub fn remote_write(url: &str, ca_file: Option<&str>, password_file: &str) -> String {
    let mut remote_write = json!({"url": url});
    if let Some(ca) = ca_file {
        remote_write["ca_file"] = json!(ca);
    }
    remote_write["basic_auth"] = json!({"username": STORE_USER, "password": format!("${{file:{password_file}}}")});
    let value = json!({"exporters": [{"remote_write": remote_write}]});
    format!(
        "# Written by probenet install: the scheduler remote-writes every result to the bundled VictoriaMetrics.\n{}",
        yaml_out::to_string(&value)
    )
}

/// Alertmanager's configuration for `alerting`.
pub fn alertmanager(alerting: &AlertingSpec) -> String {
    let receivers: Vec<Value> = alerting
        .receivers
        .iter()
        .map(|(name, receiver)| match receiver {
            Receiver::Null => json!({"name": name}),
            Receiver::Webhook { url } => {
                json!({"name": name, "webhook_configs": [{"url": url, "send_resolved": true}]})
            }
            Receiver::Email { to, from, smarthost } => json!({"name": name,
                "email_configs": [{"to": to, "from": from, "smarthost": smarthost, "send_resolved": true}]}),
        })
        .collect();
    let routes: Vec<Value> = alerting
        .routes
        .iter()
        .map(|route| {
            let matchers: Vec<Value> =
                route.matchers.iter().map(|(name, value)| json!(format!("{name}={}", quote_matcher(value)))).collect();
            json!({"receiver": route.receiver, "matchers": matchers, "continue": route.continue_matching})
        })
        .collect();
    let mut route = json!({"receiver": alerting.receiver, "group_by": ["alertname", "check"],
        "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"});
    if !routes.is_empty() {
        route["routes"] = Value::Array(routes);
    }
    let value = json!({"route": route, "receivers": receivers});
    format!("# Written by probenet install from the stack file's alerting section.\n{}", yaml_out::to_string(&value))
}

fn quote_matcher(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Whether the install gives the dashboard its token (a config file of its own naming the token file): the
/// checks config sets no `dashboard` section (a second file may not set one; with a section of its own, the
/// user adds `token: ${file:...}` to it).
pub fn dashboard_token_added(loaded: &Loaded) -> bool {
    loaded.config.dashboard.token.is_none()
        && !loaded.sources.iter().any(|source| source.text.lines().any(|line| line.starts_with("dashboard:")))
}

/// The config file giving the scheduler the dashboard token in `token_file`.
pub fn dashboard_config(token_file: &str) -> String {
    format!(
        "# Written by probenet install: the dashboard's read token (open the dashboard once with ?token=...).\n\
         dashboard:\n  token: ${{file:{token_file}}}\n"
    )
}

/// The actions writing every configuration file of a local install.
pub fn config_files(loaded: &Loaded, layout: &Layout) -> Vec<Action> {
    let mut actions = Vec::new();
    for (index, source) in loaded.sources.iter().enumerate() {
        actions.push(Action::WriteFile {
            path: layout.checks_dir().join(deployed_name(index, &source.name)),
            mode: SHARED,
            purpose: format!("checks config from {}", source.name),
            contents: source.text.clone(),
        });
    }
    let stack = &loaded.stack;
    if stack.store.kind == StoreKind::VictoriaMetrics {
        let url = format!("https://{}/api/v1/write", loopback(stack.store.listen));
        let ca = layout.ca_cert().display().to_string();
        let password = layout.store_password().display().to_string();
        actions.push(Action::WriteFile {
            path: layout.remote_write_file(),
            mode: SHARED,
            purpose: "the scheduler's remote write to VictoriaMetrics".to_owned(),
            contents: remote_write(&url, Some(&ca), &password),
        });
    }
    if dashboard_token_added(loaded) {
        actions.push(Action::WriteFile {
            path: layout.dashboard_config(),
            mode: SHARED,
            purpose: "the dashboard's read token for the scheduler".to_owned(),
            contents: dashboard_config(&layout.dashboard_token().display().to_string()),
        });
    }
    if let Some(alerting) = &stack.alerting {
        actions.push(Action::WriteFile {
            path: layout.vmalert_rules(),
            mode: SHARED,
            purpose: "vmalert rules exported from the checks config".to_owned(),
            contents: vmalert_rules(&probenet_alerting::export::prometheus_rules(&loaded.config)),
        });
        actions.push(Action::WriteFile {
            path: layout.alertmanager_config(),
            mode: PRIVATE,
            purpose: "Alertmanager routes and receivers".to_owned(),
            contents: alertmanager(alerting),
        });
        let web = json!({"tls_server_config": {
            "cert_file": layout.server_cert().display().to_string(),
            "key_file": layout.server_key().display().to_string(),
            "client_auth_type": "RequireAndVerifyClientCert",
            "client_ca_file": layout.ca_cert().display().to_string(),
        }});
        actions.push(Action::WriteFile {
            path: layout.alertmanager_web(),
            mode: SHARED,
            purpose: "Alertmanager TLS, client certificates required".to_owned(),
            contents: yaml_out::to_string(&web),
        });
    }
    actions
}

/// The exported rules as the distribution's vmalert reads them: without `keep_firing_for`, which older
/// vmalert releases (Debian's) refuse as an unknown field; alerts then resolve at the first passing evaluation.
pub fn vmalert_rules(rules: &str) -> String {
    let mut out: String =
        rules.lines().filter(|line| !line.trim_start().starts_with("keep_firing_for:")).collect::<Vec<_>>().join("\n");
    out.push('\n');
    out
}

/// Where to connect to a listener (loopback when it listens on every address).
pub fn loopback(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}
