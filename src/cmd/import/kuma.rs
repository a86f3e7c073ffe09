//! `probenet import uptime-kuma BACKUP`: the monitors of an Uptime Kuma backup export (JSON) as checks.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use super::out::{CheckOut, Line, Out};
use super::read_input;
use super::source::{J, parse_json};
use super::value::{DNS_RECORDS, Map, json_equals, label_name, list, literal, n, s, split_userinfo};

pub fn import(backup: &Path, include_paused: bool) -> Result<Out, Vec<Line>> {
    let file = backup.display().to_string();
    let text = read_input(backup)?;
    let root = parse_json(&file, &text)?;
    let doc = J::root(&file, &root);
    let Some(monitors) = doc.get("monitorList").filter(|m| m.value.is_array()) else {
        return Err(vec![doc.line("no `monitorList` list: is this an Uptime Kuma backup export?")]);
    };
    let version = doc.get("version").and_then(|v| v.str()).map(|v| format!(" (Uptime Kuma {v})")).unwrap_or_default();
    let mut out = Out::new("uptime-kuma", format!("the Uptime Kuma backup {file}{version}"));
    for (key, value) in doc.entries() {
        match key {
            "version" | "monitorList" => {}
            "notificationList" => {
                let count = value.items().len();
                if count > 0 {
                    out.drop(
                        value.place(),
                        format!("{count} notification provider{} not carried over: declare probenet `notifiers:` and `alerts:` (docs/notifiers.md)", if count == 1 { "" } else { "s" }),
                    );
                }
            }
            _ => out.drop(value.place(), "not carried over"),
        }
    }
    // Group monitors are not checks; their names label their children.
    let groups: BTreeMap<i64, &str> = monitors
        .items()
        .iter()
        .filter(|m| m.get("type").and_then(|t| t.str()) == Some("group"))
        .filter_map(|m| Some((m.get("id")?.value.as_i64()?, m.get("name")?.str()?)))
        .collect();
    let mut paused = Vec::new();
    for monitor in monitors.items() {
        let name = monitor.get("name").and_then(|v| v.str()).unwrap_or("");
        if monitor.get("type").and_then(|t| t.str()) == Some("group") {
            continue;
        }
        if monitor.get("active").is_some_and(|a| !a.truthy()) && !include_paused {
            paused.push(format!("{name} ({})", monitor.place()));
            continue;
        }
        import_monitor(&monitor, &groups, &mut out);
    }
    if !paused.is_empty() {
        out.note(format!("Paused monitors were not written; `--include-paused` writes them: {}.", paused.join(", ")));
    }
    Ok(out)
}

/// The request options Kuma's HTTP-based monitors (`http`, `keyword`, `json-query`) share.
fn http(monitor: &J<'_>, name: &str, out: &mut Out) -> Option<Map> {
    let url_j = monitor.get("url")?;
    let url = url_j.str()?;
    let mut spec = Map::default();
    match split_userinfo(url) {
        Some((user, true, bare)) => {
            spec.set("url", s(&bare));
            let used_at = format!("http.basic_auth.password of check {name}");
            let password = out.secret(name, "password", used_at, url_j.place());
            spec.set("basic_auth", Map::default().with("username", s(&user)).with("password", s(&password)).node());
        }
        _ => spec.set("url", s(url)),
    }
    if let Some(method) = monitor.get("method").and_then(|m| m.str()).filter(|m| !m.eq_ignore_ascii_case("GET")) {
        spec.set("method", s(&method.to_ascii_uppercase()));
    }
    let mut headers = Map::default();
    if let Some(raw) = monitor.get("headers").filter(|h| h.str().is_some_and(|t| !t.trim().is_empty())) {
        match serde_json::from_str::<serde_json::Map<String, Value>>(raw.str().unwrap_or_default()) {
            Ok(parsed) => {
                for (header, value) in &parsed {
                    let at = super::out::Place { path: format!("{}.{header}", raw.path), ..raw.place() };
                    let Some(text) =
                        value.as_str().map(str::to_owned).or_else(|| value.as_number().map(ToString::to_string))
                    else {
                        out.drop(at, "a header value that is not a string");
                        continue;
                    };
                    let written = if probenet_checks::config::is_credential_header(header) {
                        out.secret(name, header, format!("http.headers.{header} of check {name}"), at)
                    } else {
                        literal(&text)
                    };
                    headers.set(header, s(&written));
                }
            }
            Err(_) => out.drop(raw.place(), "the headers are not a JSON object: not carried over"),
        }
    }
    if let Some(body) = monitor.get("body").and_then(|b| b.str()) {
        spec.set("body", s(&literal(body)));
        let has_type = headers.has("Content-Type") || headers.has("content-type");
        let encoding = monitor.get("httpBodyEncoding").and_then(|e| e.str()).unwrap_or("json");
        let content_type = match encoding {
            "json" => Some("application/json"),
            "form" => Some("application/x-www-form-urlencoded"),
            "xml" => Some("text/xml; charset=utf-8"),
            _ => None,
        };
        if let (false, Some(content_type)) = (has_type, content_type) {
            headers.set("Content-Type", s(content_type));
        }
    }
    if !headers.is_empty() {
        spec.set("headers", headers.node());
    }
    let auth = monitor.get("authMethod").and_then(|a| a.str());
    let user = monitor.get("basic_auth_user").and_then(|u| u.str());
    match (auth, user) {
        (None | Some("basic"), Some(user)) => {
            let at = monitor.key_place("basic_auth_pass");
            let password = out.secret(name, "password", format!("http.basic_auth.password of check {name}"), at);
            spec.set("basic_auth", Map::default().with("username", s(user)).with("password", s(&password)).node());
        }
        (None | Some("basic"), None) => {}
        (Some(other), _) => {
            out.drop(monitor.key_place("authMethod"), format!("{other} authentication is not carried over"))
        }
    }
    if let Some(redirects) = monitor.get("maxredirects").and_then(|m| m.number()) {
        if redirects == 0.0 {
            spec.set("follow_redirects", n(false));
        } else if redirects != 10.0 {
            spec.set("max_redirects", n(redirects.round()));
        }
    }
    if monitor.get("ignoreTls").is_some_and(|i| i.truthy()) {
        spec.set("tls", Map::default().with("insecure", n(true)).node());
    }
    for key in ["tlsCert", "tlsKey", "tlsCa"] {
        if monitor.get(key).and_then(|v| v.str()).is_some() {
            out.drop(
                monitor.key_place(key),
                "inline TLS material is not carried over: save it to a file and set `tls` options",
            );
        }
    }
    Some(spec)
}

/// Kuma's accepted status codes (`200-299`, `404`) as probenet's (`2xx`, 404).
fn status_codes(codes: &J<'_>, out: &mut Out) -> Vec<probenet_checks::yaml::Node> {
    let mut written = Vec::new();
    for item in codes.items() {
        let Some(text) = item.str() else { continue };
        match text.split_once('-') {
            None => match text.trim().parse::<u16>() {
                Ok(code) => written.push(n(code)),
                Err(_) => out.drop(item.place(), "not a status code"),
            },
            Some((low, high)) => match (low.trim().parse::<u16>(), high.trim().parse::<u16>()) {
                (Ok(low), Ok(high)) if low.is_multiple_of(100) && high % 100 == 99 && low <= high => {
                    written.extend((low / 100..=high / 100).map(|class| s(&format!("{class}xx"))));
                }
                (Ok(low), Ok(high)) if low <= high && high - low < 100 => written.extend((low..=high).map(n)),
                _ => out.drop(item.place(), "not a status code range probenet writes"),
            },
        }
    }
    written
}

fn import_monitor(monitor: &J<'_>, groups: &BTreeMap<i64, &str>, out: &mut Out) {
    let monitor_type = monitor.get("type").and_then(|t| t.str()).unwrap_or("").to_owned();
    let raw_name = monitor.get("name").and_then(|v| v.str()).unwrap_or("");
    let kind = match monitor_type.as_str() {
        "http" | "keyword" | "json-query" => "http",
        "port" => "tcp",
        "ping" => "icmp",
        "dns" => "dns",
        "real-browser" => "browser",
        other => {
            out.drop(
                monitor.key_place("type"),
                format!("monitor type {other:?}: probenet has no such check; {raw_name:?} is not written"),
            );
            return;
        }
    };
    if monitor.get("upsideDown").is_some_and(|u| u.truthy()) {
        out.drop(
            monitor.key_place("upsideDown"),
            format!(
                "upside down mode (up when the check fails) has no probenet equivalent; {raw_name:?} is not written"
            ),
        );
        return;
    }
    let name = out.name(raw_name, &monitor_type);
    let hostname = monitor.get("hostname").and_then(|h| h.str());
    let spec = match monitor_type.as_str() {
        "http" | "keyword" | "json-query" => http(monitor, &name, out).map(|mut spec| {
            let mut expect = Map::default();
            if let Some(codes) = monitor.get("accepted_statuscodes") {
                let codes = status_codes(&codes, out);
                if !codes.is_empty() && codes != [s("2xx")] {
                    expect.set("status", list(codes));
                }
            }
            if monitor_type == "keyword" {
                keyword(monitor, &mut expect, out);
            }
            if monitor_type == "json-query" {
                json_query(monitor, &mut expect, out);
            }
            if !expect.is_empty() {
                spec.set("expect", expect.node());
            }
            spec
        }),
        "port" => match (hostname, monitor.get("port").and_then(|p| p.number())) {
            (Some(host), Some(port)) if port > 0.0 => {
                let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
                Some(Map::default().with("target", s(&target)))
            }
            _ => None,
        },
        "ping" => hostname.map(|host| {
            let mut spec = Map::default().with("host", s(host));
            if let Some(size) = monitor.get("packetSize").and_then(|p| p.number()).filter(|size| *size != 56.0) {
                spec.set("payload_size", n(size.round()));
            }
            spec
        }),
        "dns" => hostname.map(|host| dns(monitor, host, out)),
        _ => monitor
            .get("url")
            .and_then(|u| u.str())
            .map(|url| Map::default().with("steps", list(vec![Map::default().with("goto", s(url)).node()]))),
    };
    let Some(spec) = spec else {
        out.drop(monitor.place(), format!("{raw_name:?} lacks its URL or host: not written"));
        return;
    };
    let mut labels = Map::default();
    if let Some(group) = monitor.get("parent").and_then(|p| p.value.as_i64()).and_then(|id| groups.get(&id)) {
        labels.set("group", s(group));
    }
    for tag in monitor.get("tags").map(|t| t.items()).unwrap_or_default() {
        let Some(tag_name) = tag.get("name").and_then(|t| t.str()) else { continue };
        let value = tag.get("value").and_then(|v| v.str()).unwrap_or("true");
        match label_name(tag_name) {
            Some(label) => labels.set(&label, s(value)),
            None => {
                out.drop(tag.place(), format!("tag {tag_name:?} is a label probenet sets itself: not carried over"))
            }
        }
    }
    let seconds = |key: &str| {
        let j = monitor.get(key)?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let ms = (j.number()? * 1000.0).round() as u64;
        (ms > 0).then(|| (ms, j.place()))
    };
    let interval = seconds("interval").filter(|(ms, _)| *ms != 60_000);
    let timeout = seconds("timeout");
    if let Some(retries) = monitor.get("maxretries").filter(|r| r.number().is_some_and(|r| r > 0.0)) {
        out.drop(
            retries.place(),
            "retries before down are not carried over: a probenet alert's `consecutive` or `for` waits instead",
        );
    }
    if monitor.get("expiryNotification").is_some_and(|e| e.truthy()) {
        out.drop(
            monitor.key_place("expiryNotification"),
            "certificate expiry notifications are not carried over: set `expect.min_days_remaining` to fail the check instead",
        );
    }
    if monitor.get("proxyId").is_some_and(|p| !p.value.is_null()) {
        out.drop(monitor.key_place("proxyId"), "proxies are not carried over");
    }
    let (interval, timeout) = out.schedule(interval, timeout);
    out.push(CheckOut { name, interval, timeout, labels, kind, spec, from: monitor.place() });
}

/// `keyword` and `invertKeyword`: the body must (not) contain the keyword, case-sensitive as in Kuma.
fn keyword(monitor: &J<'_>, expect: &mut Map, out: &mut Out) {
    match monitor.get("keyword").and_then(|k| k.str()) {
        Some(keyword) if monitor.get("invertKeyword").is_some_and(|i| i.truthy()) => {
            expect.set("body_not_contains", s(keyword));
        }
        Some(keyword) => expect.set("body_contains", s(keyword)),
        None => out.drop(monitor.key_place("keyword"), "no keyword: only the status is checked"),
    }
}

/// `jsonPath` and `expectedValue`: a simple path (`status`, `$.data.state`, `items[0].id`) becomes a JSONPath
/// equality; other JSONata expressions are not carried over.
fn json_query(monitor: &J<'_>, expect: &mut Map, out: &mut Out) {
    let expression = monitor.get("jsonPath").and_then(|p| p.str()).unwrap_or("").trim();
    let operator = monitor.get("jsonPathOperator").and_then(|o| o.str()).unwrap_or("==");
    let expected = monitor.get("expectedValue").and_then(|v| v.str());
    let path = expression.strip_prefix('$').unwrap_or(expression).trim_start_matches('.');
    let simple = !path.is_empty()
        && path.chars().all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c))
        && path.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_');
    match (simple, operator, expected) {
        (true, "==", Some(expected)) => {
            expect.set("json", list(vec![json_equals(&format!("$.{path}"), expected).node()]));
        }
        (true, "==", None) => out.drop(monitor.key_place("expectedValue"), "no expected value: not carried over"),
        (true, _, _) => {
            out.drop(monitor.key_place("jsonPathOperator"), "probenet compares JSON values for equality only")
        }
        (false, _, _) => out.drop(
            monitor.key_place("jsonPath"),
            "a JSONata expression that is not a plain path is not carried over: write a probenet `json` assertion",
        ),
    }
}

/// A `dns` monitor: the name asked, the record type, the server and its port.
fn dns(monitor: &J<'_>, host: &str, out: &mut Out) -> Map {
    let mut spec = Map::default().with("query", s(host));
    let record = monitor.get("dns_resolve_type").and_then(|t| t.str()).unwrap_or("A").to_ascii_uppercase();
    if DNS_RECORDS.contains(&record.as_str()) {
        spec.set("record", s(&record));
    } else {
        out.drop(monitor.key_place("dns_resolve_type"), "a record type probenet does not ask; A is asked");
    }
    if let Some(server) = monitor.get("dns_resolve_server").and_then(|v| v.str()) {
        let port = monitor.get("port").and_then(|p| p.number()).filter(|p| *p > 0.0 && *p != 53.0);
        let server = match port {
            Some(port) if server.contains(':') => format!("[{server}]:{port}"),
            Some(port) => format!("{server}:{port}"),
            None => server.to_owned(),
        };
        spec.set("server", s(&server));
    }
    if monitor.get("conditions").is_some_and(|c| c.value.as_array().is_some_and(|a| !a.is_empty())) {
        out.drop(monitor.key_place("conditions"), "DNS conditions are not carried over: set `expect.answers`");
    }
    spec
}
