//! `probenet import gatus CONFIG`: Gatus's `endpoints:` as checks, their conditions as assertions.

use std::path::Path;

use super::out::{CheckOut, Line, Out};
use super::read_input;
use super::source::{Y, parse_yaml};
use super::value::{
    DNS_RECORDS, Map, json_equals, label_name, list, literal, n, parse_duration, regex_escape, s, split_userinfo,
};

pub fn import(config: &Path, include_paused: bool) -> Result<Out, Vec<Line>> {
    let file = config.display().to_string();
    let text = read_input(config)?;
    let root = parse_yaml(&file, &text)?;
    let doc = Y::root(&file, &root);
    let Some(endpoints) = doc.get("endpoints") else {
        return Err(vec![doc.line("no `endpoints:`: is this a Gatus config file?")]);
    };
    let mut out = Out::new("gatus", format!("the Gatus config {file}"));
    for (key, value) in doc.entries() {
        match key {
            "endpoints" => {}
            "alerting" => out.drop(
                value.place(),
                "alerting providers are not carried over: declare probenet `notifiers:` and `alerts:` (docs/notifiers.md)",
            ),
            "external-endpoints" => out.drop(value.place(), "external endpoints (pushed results) are not carried over"),
            _ => out.drop(value.place(), "setting not carried over"),
        }
    }
    let mut paused = Vec::new();
    for endpoint in endpoints.items() {
        let name = endpoint.get("name").and_then(|y| y.str()).unwrap_or("");
        if endpoint.get("enabled").and_then(|y| y.bool()) == Some(false) && !include_paused {
            paused.push(format!("{name} ({})", endpoint.place()));
            continue;
        }
        import_endpoint(&endpoint, &mut out);
    }
    if !paused.is_empty() {
        out.note(format!(
            "Disabled endpoints (`enabled: false`) were not written; `--include-paused` writes them: {}.",
            paused.join(", ")
        ));
    }
    Ok(out)
}

/// The kinds of check a Gatus endpoint can become.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Http,
    Tcp,
    Icmp,
    Tls,
    Dns,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Http => "http",
            Kind::Tcp => "tcp",
            Kind::Icmp => "icmp",
            Kind::Tls => "tls",
            Kind::Dns => "dns",
        }
    }
}

fn import_endpoint(endpoint: &Y<'_>, out: &mut Out) {
    let raw_name = endpoint.get("name").and_then(|y| y.str()).unwrap_or("");
    let group = endpoint.get("group").and_then(|y| y.str());
    let Some(url_y) = endpoint.get("url") else {
        out.drop(endpoint.place(), "an endpoint without `url`: no check written");
        return;
    };
    let url = url_y.str().unwrap_or("");
    let (kind, target) = if endpoint.get("dns").is_some() {
        (Kind::Dns, url.to_owned())
    } else if url.starts_with("http://") || url.starts_with("https://") {
        (Kind::Http, url.to_owned())
    } else if let Some(rest) = url.strip_prefix("tcp://") {
        (Kind::Tcp, rest.to_owned())
    } else if let Some(rest) = url.strip_prefix("icmp://") {
        (Kind::Icmp, rest.to_owned())
    } else if let Some(rest) = url.strip_prefix("tls://") {
        (Kind::Tls, rest.to_owned())
    } else {
        let message = match url.split_once("://") {
            Some((scheme, _)) => format!("probenet has no check for {scheme:?} endpoints: no check written"),
            None => "not a URL probenet has a check for: no check written".to_owned(),
        };
        out.drop(url_y.place(), message);
        return;
    };
    if target.contains('$') {
        out.drop(url_y.place(), "the URL uses an environment variable, which probenet URLs cannot: no check written");
        return;
    }
    let wanted = group.map_or_else(|| raw_name.to_owned(), |group| format!("{group}-{raw_name}"));
    let name = out.name(&wanted, kind.key());
    let mut spec = Map::default();
    let mut expect = Map::default();
    let mut labels = Map::default();
    let mut interval = None;
    let mut timeout = None;
    match kind {
        Kind::Http => match split_userinfo(&target) {
            Some((user, has_password, bare)) => {
                spec.set("url", s(&bare));
                if has_password {
                    let used_at = format!("http.basic_auth.password of check {name}");
                    let password = out.secret(&name, "password", used_at, url_y.place());
                    spec.set(
                        "basic_auth",
                        Map::default().with("username", s(&user)).with("password", s(&password)).node(),
                    );
                } else {
                    out.drop(url_y.place(), "a user without a password in the URL is not carried over");
                }
            }
            None => spec.set("url", s(&target)),
        },
        Kind::Tcp | Kind::Tls => spec.set("target", s(&target)),
        Kind::Icmp => spec.set("host", s(&target)),
        Kind::Dns => {}
    }
    let mut headers = Map::default();
    for (key, value) in endpoint.entries() {
        match key {
            "name" | "url" | "enabled" => {}
            "group" => {
                if let Some(group) = value.str() {
                    labels.set("group", s(group));
                }
            }
            "interval" => match value.str().and_then(parse_duration) {
                Some(ms) => interval = Some((ms, value.place())),
                None => out.drop(value.place(), "not a duration"),
            },
            "method" if kind == Kind::Http => {
                if let Some(method) = value.str() {
                    spec.set("method", s(method));
                }
            }
            "headers" if kind == Kind::Http => {
                for (header, v) in value.entries() {
                    let Some(text) = v.str() else { continue };
                    let used_at = format!("http.headers.{header} of check {name}");
                    let written = match env_refs(text, &used_at, &v, out) {
                        Some(converted) => converted,
                        None if probenet_checks::config::is_credential_header(header) => {
                            out.secret(&name, header, used_at, v.place())
                        }
                        None => literal(text),
                    };
                    headers.set(header, s(&written));
                }
            }
            "body" if kind == Kind::Http => {
                if let Some(text) = value.str() {
                    let used_at = format!("http.body of check {name}");
                    let written = env_refs(text, &used_at, &value, out).unwrap_or_else(|| literal(text));
                    spec.set("body", s(&written));
                }
            }
            "dns" if kind == Kind::Dns => dns(&value, &target, &mut spec, out),
            "client" => {
                for (option, v) in value.entries() {
                    match option {
                        "insecure" if matches!(kind, Kind::Http | Kind::Tls) => {
                            if v.bool() == Some(true) {
                                if kind == Kind::Http {
                                    spec.set("tls", Map::default().with("insecure", n(true)).node());
                                } else {
                                    spec.set("insecure", n(true));
                                }
                            }
                        }
                        "ignore-redirect" if kind == Kind::Http => {
                            if v.bool() == Some(true) {
                                spec.set("follow_redirects", n(false));
                            }
                        }
                        "timeout" => match v.str().and_then(parse_duration) {
                            Some(ms) => timeout = Some((ms, v.place())),
                            None => out.drop(v.place(), "not a duration"),
                        },
                        _ => out.drop(v.place(), "client option not carried over"),
                    }
                }
            }
            "conditions" => {
                for condition in value.items() {
                    match condition.str() {
                        Some(text) => {
                            let tls = kind == Kind::Tls || target.starts_with("https://");
                            if let Err(why) = map_condition(text, kind, tls, &mut expect) {
                                out.drop(condition.place(), format!("condition not carried over: {why}"));
                            }
                        }
                        None => out.drop(condition.place(), "not a condition"),
                    }
                }
            }
            "extra-labels" => {
                for (label, v) in value.entries() {
                    match (label_name(label), v.str()) {
                        (Some(written), Some(text)) if written == label => labels.set(label, s(text)),
                        _ => out.drop(v.place(), "label not carried over: names are letters, digits and `_`, and job, instance and probe are probenet's"),
                    }
                }
            }
            "alerts" => out.drop(
                value.place(),
                "alerts are not carried over: write probenet `alerts:` for this check and `notifiers:` (docs/alerting.md)",
            ),
            _ => out.drop(value.place(), "option not carried over"),
        }
    }
    if !headers.is_empty() {
        spec.set("headers", headers.node());
    }
    if !expect.is_empty() {
        spec.set("expect", expect.node());
    }
    if kind == Kind::Dns && !spec.has("query") {
        out.drop(endpoint.place(), "a DNS endpoint needs `dns.query-name`: no check written");
        return;
    }
    let (interval, timeout) = out.schedule(interval, timeout);
    out.push(CheckOut { name, interval, timeout, labels, kind: kind.key(), spec, from: endpoint.place() });
}

/// Gatus's `dns:` block: the endpoint's URL is the server asked.
fn dns(y: &Y<'_>, server: &str, spec: &mut Map, out: &mut Out) {
    if let Some(query) = y.get("query-name").and_then(|q| q.str()) {
        spec.set("query", s(query));
    }
    let record = y.get("query-type").and_then(|q| q.str()).map(str::to_ascii_uppercase);
    match record {
        Some(record) if DNS_RECORDS.contains(&record.as_str()) => spec.set("record", s(&record)),
        Some(_) => {
            if let Some(at) = y.get("query-type") {
                out.drop(at.place(), "a record type probenet does not ask; A is asked");
            }
        }
        None => {}
    }
    spec.set("server", s(server));
    for (key, value) in y.entries() {
        if key != "query-name" && key != "query-type" {
            out.drop(value.place(), "DNS option not carried over");
        }
    }
}

/// Gatus's `${NAME}` and `$NAME` (read from its environment) as `${env:NAME}`, each recorded as a variable
/// to set; `None` when the text references none.
fn env_refs(text: &str, used_at: &str, y: &Y<'_>, out: &mut Out) -> Option<String> {
    let mut written = String::new();
    let mut found = false;
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        written.push_str(&literal(&rest[..at]));
        let after = &rest[at + 1..];
        let (name, consumed) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            },
            None => {
                let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if valid {
            found = true;
            out.existing_secret(name, used_at, y.place());
            written.push_str(&format!("${{env:{name}}}"));
            rest = &after[consumed..];
        } else {
            written.push('$');
            rest = after;
        }
    }
    written.push_str(&literal(rest));
    found.then_some(written)
}

/// Maps one condition onto the check's `expect`, or says why it cannot be; `tls` says whether the check
/// speaks TLS (certificate conditions need it).
fn map_condition(text: &str, kind: Kind, tls: bool, expect: &mut Map) -> Result<(), String> {
    let (left, op, right) = split_condition(text).ok_or("not of the form `LEFT OPERATOR RIGHT`")?;
    match (left, kind) {
        ("[CONNECTED]", _) if op == "==" && right == "true" => Ok(()),
        ("[STATUS]", Kind::Http) => status(op, right, expect),
        ("[RESPONSE_TIME]", Kind::Http | Kind::Icmp) => {
            let ms: u64 = right.parse().map_err(|_| "the response time is not a number of milliseconds")?;
            if op != "<" && op != "<=" {
                return Err("probenet limits the response time from above only".to_owned());
            }
            expect.set(if kind == Kind::Http { "max_duration" } else { "max_rtt" }, s(&format!("{ms}ms")));
            Ok(())
        }
        ("[CERTIFICATE_EXPIRATION]", Kind::Http | Kind::Tls) if tls && (op == ">" || op == ">=") => {
            let ms = parse_duration(right).ok_or("not a duration")?;
            let days = ms.div_ceil(86_400_000);
            expect.set("min_days_remaining", n(days));
            Ok(())
        }
        ("[DNS_RCODE]", Kind::Dns) if op == "==" => {
            expect.set("rcode", list(vec![s(right)]));
            Ok(())
        }
        ("[BODY]", Kind::Dns) if op == "==" && !right.contains('(') => {
            expect.set("answers", list(vec![s(right)]));
            Ok(())
        }
        ("[BODY]", Kind::Http) => body(op, right, expect),
        (left, Kind::Http) if left.starts_with("[BODY].") || left.starts_with("[BODY][") => {
            json(&format!("${}", &left["[BODY]".len()..]), op, right, expect)
        }
        (left, Kind::Http) if left.starts_with("has([BODY]") && left.ends_with(')') => {
            let path = format!("${}", &left["has([BODY]".len()..left.len() - 1]);
            let exists = match (op, right) {
                ("==", "true") => true,
                ("==", "false") => false,
                _ => return Err("has() is compared with true or false".to_owned()),
            };
            push_json(expect, Map::default().with("path", s(&path)).with("exists", n(exists)));
            Ok(())
        }
        (left, kind) => Err(format!("probenet has no assertion like {left} for {} checks", kind.key())),
    }
}

/// `LEFT OP RIGHT` with Gatus's operators.
fn split_condition(text: &str) -> Option<(&str, &'static str, &str)> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((left, right)) = text.split_once(op) {
            return Some((left.trim(), op, right.trim()));
        }
    }
    None
}

fn status(op: &str, right: &str, expect: &mut Map) -> Result<(), String> {
    let codes: Vec<u16> = match op {
        "==" => match right.strip_prefix("any(").and_then(|inner| inner.strip_suffix(')')) {
            Some(inner) => inner.split(',').map(|code| code.trim().parse().ok()).collect::<Option<_>>(),
            None => right.parse().ok().map(|code| vec![code]),
        }
        .ok_or("not a status code")?,
        "<" | "<=" => {
            let below: u16 = right.parse().map_err(|_| "not a status code")?;
            let below = if op == "<=" { below + 1 } else { below };
            if !below.is_multiple_of(100) || !(200..=600).contains(&below) {
                return Err("probenet matches status codes and whole classes (2xx)".to_owned());
            }
            let classes = (2..below / 100).map(|class| s(&format!("{class}xx"))).collect();
            expect.set("status", list(classes));
            return Ok(());
        }
        _ => return Err("probenet matches status codes and classes".to_owned()),
    };
    expect.set("status", list(codes.into_iter().map(n).collect()));
    Ok(())
}

/// `[BODY] == pat(*text*)` as `body_contains`, other patterns and values as anchored `body_regex`.
fn body(op: &str, right: &str, expect: &mut Map) -> Result<(), String> {
    let pattern = right.strip_prefix("pat(").and_then(|inner| inner.strip_suffix(')'));
    let contained = pattern
        .and_then(|p| p.strip_prefix('*'))
        .and_then(|p| p.strip_suffix('*'))
        .filter(|inner| !inner.contains('*'));
    match (op, contained, pattern) {
        ("==", Some(inner), _) => expect.set("body_contains", s(inner)),
        ("!=", Some(inner), _) => expect.set("body_not_contains", s(inner)),
        ("==", None, Some(pattern)) => expect.set("body_regex", s(&glob(pattern))),
        ("!=", None, Some(pattern)) => expect.set("body_not_regex", s(&glob(pattern))),
        ("==", None, None) => expect.set("body_regex", s(&format!("^{}$", regex_escape(right)))),
        ("!=", None, None) => expect.set("body_not_regex", s(&format!("^{}$", regex_escape(right)))),
        _ => return Err("probenet compares the body for (in)equality and patterns only".to_owned()),
    }
    Ok(())
}

/// `[BODY].path == value` as a JSONPath assertion. Gatus compares text, so numbers and booleans are matched
/// as text too (an anchored regex matches `1` and `"1"` alike).
fn json(path: &str, op: &str, right: &str, expect: &mut Map) -> Result<(), String> {
    if op != "==" {
        return Err("probenet's JSON assertions test equality and patterns only".to_owned());
    }
    let assertion = Map::default().with("path", s(path));
    let assertion = if let Some(pattern) = right.strip_prefix("pat(").and_then(|inner| inner.strip_suffix(')')) {
        assertion.with("regex", s(&glob(pattern)))
    } else if let Some(inner) = right.strip_prefix("any(").and_then(|inner| inner.strip_suffix(')')) {
        let any: Vec<String> = inner.split(',').map(|v| regex_escape(v.trim())).collect();
        assertion.with("regex", s(&format!("^(?:{})$", any.join("|"))))
    } else {
        json_equals(path, right)
    };
    push_json(expect, assertion);
    Ok(())
}

fn push_json(expect: &mut Map, assertion: Map) {
    let mut items = match expect.take("json") {
        Some(probenet_checks::yaml::Node { kind: probenet_checks::yaml::NodeKind::Seq(items), .. }) => items,
        _ => Vec::new(),
    };
    items.push(assertion.node());
    expect.set("json", list(items));
}

/// Gatus's `pat()` glob (`*` any text) as an anchored regex.
fn glob(pattern: &str) -> String {
    let parts: Vec<String> = pattern.split('*').map(regex_escape).collect();
    format!("^{}$", parts.join(".*"))
}
