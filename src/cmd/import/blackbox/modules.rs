//! blackbox_exporter's modules file: each module compiled once into the kind and fields of the checks of its
//! targets, every option probenet cannot carry over listed at its place.

use crate::cmd::import::out::{Out, Place};
use crate::cmd::import::source::Y;
use crate::cmd::import::value::{DNS_RECORDS, Map, list, literal, n, parse_duration, s};

/// A module compiled once: its kind, timeout and the check fields that do not depend on the target.
#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub kind: Kind,
    pub timeout: Option<(u64, Place)>,
    /// The check's fields after those the target gives (`url`, `target`, `host`, `server`).
    pub spec: Map,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Http,
    Tcp,
    Icmp,
    Dns,
    /// A module probenet writes no check for, and why (`uses prober "grpc", which ...`).
    Unsupported(String),
}

impl Kind {
    /// The probenet kind key, `None` for a prober probenet has no check for.
    pub fn key(&self) -> Option<&'static str> {
        match self {
            Kind::Http => Some("http"),
            Kind::Tcp => Some("tcp"),
            Kind::Icmp => Some("icmp"),
            Kind::Dns => Some("dns"),
            Kind::Unsupported(_) => None,
        }
    }
}

impl Module {
    /// Compiles a module's definition, listing every option probenet cannot carry over at its place.
    pub fn compile(name: &str, y: &Y<'_>, out: &mut Out) -> Module {
        let prober = y.get("prober").and_then(|p| p.str()).unwrap_or("").to_owned();
        let kind = match prober.as_str() {
            "http" => Kind::Http,
            "tcp" => Kind::Tcp,
            "icmp" => Kind::Icmp,
            "dns" => Kind::Dns,
            other => Kind::Unsupported(format!("uses prober {other:?}, which probenet has no check for")),
        };
        let mut timeout = None;
        let mut spec = Map::default();
        for (key, value) in y.entries() {
            match key {
                "prober" => {}
                "timeout" => match value.str().and_then(parse_duration) {
                    Some(ms) => timeout = Some((ms, value.place())),
                    None => out.drop(value.place(), "not a duration"),
                },
                "http" if matches!(kind, Kind::Http) => spec = http(name, &value, out),
                "tcp" if matches!(kind, Kind::Tcp) => spec = tcp(&value, out),
                "icmp" if matches!(kind, Kind::Icmp) => spec = icmp(&value, out),
                "dns" if matches!(kind, Kind::Dns) => spec = dns(&value, out),
                _ if matches!(kind, Kind::Unsupported(_)) => {}
                _ => out.drop(value.place(), "option not carried over"),
            }
        }
        let kind = if matches!(kind, Kind::Dns) && !spec.has("query") {
            Kind::Unsupported("has no `dns.query_name`".to_owned())
        } else {
            kind
        };
        Module { name: name.to_owned(), kind, timeout, spec }
    }
}

/// The `http:` options of a module.
fn http(module: &str, y: &Y<'_>, out: &mut Out) -> Map {
    let mut spec = Map::default();
    let mut headers = Map::default();
    let mut expect = Map::default();
    let mut expect_headers = Map::default();
    let mut tls = Map::default();
    let mut preferred = None;
    let mut fallback = None;
    for (key, value) in y.entries() {
        match key {
            "valid_status_codes" => {
                let codes: Vec<_> = value.items().iter().filter_map(Y::int).map(n).collect();
                if !codes.is_empty() {
                    expect.set("status", list(codes));
                }
            }
            "method" => set_str(&mut spec, "method", &value, out),
            "headers" => {
                for (header, v) in value.entries() {
                    let Some(text) = v.str() else { continue };
                    let written = if probenet_checks::config::is_credential_header(header) {
                        let used_at = format!("http.headers.{header} of the checks of module {module}");
                        out.secret(module, header, used_at, v.place())
                    } else {
                        literal(text)
                    };
                    headers.set(header, s(&written));
                }
            }
            "body" => {
                if let Some(text) = value.str() {
                    spec.set("body", s(&literal(text)));
                }
            }
            "body_file" => {
                if let Some(path) = value.str() {
                    spec.set("body", s(&format!("${{file:{path}}}")));
                }
            }
            "follow_redirects" => {
                if value.bool() == Some(false) {
                    spec.set("follow_redirects", n(false));
                }
            }
            "no_follow_redirects" => {
                if value.bool() == Some(true) {
                    spec.set("follow_redirects", n(false));
                }
            }
            "enable_http2" => {
                if value.bool() == Some(false) {
                    spec.set("http_version", s("1.1"));
                }
            }
            "fail_if_body_matches_regexp" => {
                let regexes: Vec<&str> = value.items().iter().filter_map(Y::str).collect();
                match regexes.as_slice() {
                    [] => {}
                    [one] => expect.set("body_not_regex", s(one)),
                    many => {
                        let any = many.iter().map(|r| format!("(?:{r})")).collect::<Vec<_>>().join("|");
                        expect.set("body_not_regex", s(&any));
                    }
                }
            }
            "fail_if_body_not_matches_regexp" => {
                for (i, item) in value.items().iter().enumerate() {
                    match (i, item.str()) {
                        (0, Some(regex)) => expect.set("body_regex", s(regex)),
                        _ => out.drop(
                            item.place(),
                            "probenet takes one body regex that must match; only the first is carried over",
                        ),
                    }
                }
            }
            "fail_if_header_not_matches" => {
                for item in value.items() {
                    let header = item.get("header").and_then(|h| h.str());
                    let regex = item.get("regexp").and_then(|r| r.str());
                    match (header, regex) {
                        (Some(header), Some(regex)) if !expect_headers.has(header) => {
                            expect_headers.set(header, s(regex));
                            if item.get("allow_missing").and_then(|a| a.bool()) == Some(true) {
                                out.drop(item.place(), "allow_missing: probenet requires the header to be present");
                            }
                        }
                        _ => out.drop(item.place(), "header assertion not carried over"),
                    }
                }
            }
            "tls_config" => client_tls(&value, &mut tls, out),
            "basic_auth" => {
                let mut auth = Map::default();
                for (k, v) in value.entries() {
                    match (k, v.str()) {
                        ("username", Some(user)) => auth.set("username", s(user)),
                        ("password", Some(_)) => {
                            let used_at = format!("http.basic_auth.password of the checks of module {module}");
                            auth.set("password", s(&out.secret(module, "password", used_at, v.place())));
                        }
                        ("password_file", Some(path)) => auth.set("password", s(&format!("${{file:{path}}}"))),
                        _ => out.drop(v.place(), "option not carried over"),
                    }
                }
                if auth.has("username") && auth.has("password") {
                    spec.set("basic_auth", auth.node());
                }
            }
            "bearer_token" => {
                let used_at = format!("http.bearer_token of the checks of module {module}");
                spec.set("bearer_token", s(&out.secret(module, "bearer_token", used_at, value.place())));
            }
            "bearer_token_file" => {
                if let Some(path) = value.str() {
                    spec.set("bearer_token", s(&format!("${{file:{path}}}")));
                }
            }
            "authorization" => {
                let kind = value.get("type").and_then(|t| t.str()).unwrap_or("Bearer");
                let credential = match (value.get("credentials"), value.get("credentials_file").and_then(|f| f.str())) {
                    (_, Some(path)) => Some(format!("${{file:{path}}}")),
                    (Some(c), None) => {
                        let used_at = format!("http.headers.Authorization of the checks of module {module}");
                        Some(out.secret(module, "credentials", used_at, c.place()))
                    }
                    (None, None) => None,
                };
                match credential {
                    Some(credential) if kind.eq_ignore_ascii_case("bearer") => spec.set("bearer_token", s(&credential)),
                    Some(credential) => headers.set("Authorization", s(&format!("{kind} {credential}"))),
                    None => out.drop(value.place(), "no credentials: not carried over"),
                }
            }
            "preferred_ip_protocol" => preferred = Some(value),
            "ip_protocol_fallback" => fallback = Some(value),
            "body_size_limit" => match value.str().and_then(base2_size) {
                Some(size) => spec.set("body_limit", s(&size)),
                None => out.drop(value.place(), "not a size probenet reads"),
            },
            _ => out.drop(value.place(), "option not carried over"),
        }
    }
    if let Some(version) = ip_version(preferred, fallback, out) {
        spec.set("ip_version", s(version));
    }
    if !headers.is_empty() {
        spec.set("headers", headers.node());
    }
    if !tls.is_empty() {
        spec.set("tls", tls.node());
    }
    if !expect_headers.is_empty() {
        expect.set("headers", expect_headers.node());
    }
    if !expect.is_empty() {
        spec.set("expect", expect.node());
    }
    spec
}

/// `tls_config` as probenet's client TLS options.
fn client_tls(y: &Y<'_>, tls: &mut Map, out: &mut Out) {
    for (key, value) in y.entries() {
        let field = match key {
            "ca_file" => "ca_file",
            "cert_file" => "client_cert",
            "key_file" => "client_key",
            "server_name" => "server_name",
            "insecure_skip_verify" => {
                if value.bool() == Some(true) {
                    tls.set("insecure", n(true));
                }
                continue;
            }
            _ => {
                out.drop(value.place(), "TLS option not carried over");
                continue;
            }
        };
        set_str(tls, field, &value, out);
    }
}

/// `preferred_ip_protocol` and `ip_protocol_fallback` as `ip_version`: `ip4` is IPv4 only; `ip6` is IPv6
/// only when fallback is off (blackbox_exporter's default, IPv6 falling back to IPv4, is probenet's `any`).
fn ip_version(preferred: Option<Y<'_>>, fallback: Option<Y<'_>>, out: &mut Out) -> Option<&'static str> {
    let falls_back = fallback.as_ref().and_then(Y::bool).unwrap_or(true);
    match preferred.as_ref().and_then(Y::str) {
        Some("ip4") => {
            if falls_back && let Some(fallback) = fallback {
                out.drop(fallback.place(), "probenet's ipv4 does not fall back to IPv6");
            }
            Some("ipv4")
        }
        Some("ip6") if !falls_back => Some("ipv6"),
        Some("ip6") | None => None,
        Some(_) => {
            if let Some(preferred) = preferred {
                out.drop(preferred.place(), "not ip4 or ip6: not carried over");
            }
            None
        }
    }
}

/// The `tcp:` options of a module.
fn tcp(y: &Y<'_>, out: &mut Out) -> Map {
    let mut spec = Map::default();
    let mut script = Vec::new();
    let mut tls = Map::default();
    let mut use_tls = false;
    let mut tls_options = None;
    let mut preferred = None;
    let mut fallback = None;
    for (key, value) in y.entries() {
        match key {
            "query_response" => {
                for step in value.items() {
                    for (k, v) in step.entries() {
                        match (k, v.str()) {
                            ("expect", Some(regex)) => script.push(Map::default().with("expect", s(regex))),
                            // blackbox_exporter sends a newline after each `send`.
                            ("send", Some(text)) => {
                                script.push(Map::default().with("send", s(&format!("{}\n", literal(text)))))
                            }
                            _ => out.drop(v.place(), "script option not carried over"),
                        }
                    }
                }
            }
            "tls" => use_tls = value.bool() == Some(true),
            "tls_config" => tls_options = Some(value),
            "preferred_ip_protocol" => preferred = Some(value),
            "ip_protocol_fallback" => fallback = Some(value),
            _ => out.drop(value.place(), "option not carried over"),
        }
    }
    if let Some(version) = ip_version(preferred, fallback, out) {
        spec.set("ip_version", s(version));
    }
    if !script.is_empty() {
        spec.set("script", list(script.into_iter().map(Map::node).collect()));
    }
    if use_tls {
        if let Some(options) = tls_options {
            client_tls(&options, &mut tls, out);
        }
        spec.set("tls", tls.node());
    }
    spec
}

/// The `icmp:` options of a module.
fn icmp(y: &Y<'_>, out: &mut Out) -> Map {
    let mut spec = Map::default();
    let mut preferred = None;
    let mut fallback = None;
    for (key, value) in y.entries() {
        match key {
            "payload_size" => match value.int() {
                Some(size) if (0..=65_500).contains(&size) => spec.set("payload_size", n(size)),
                _ => out.drop(value.place(), "not a payload size probenet takes (0 to 65500)"),
            },
            "preferred_ip_protocol" => preferred = Some(value),
            "ip_protocol_fallback" => fallback = Some(value),
            _ => out.drop(value.place(), "option not carried over"),
        }
    }
    if let Some(version) = ip_version(preferred, fallback, out) {
        spec.set("ip_version", s(version));
    }
    spec
}

/// The `dns:` options of a module.
fn dns(y: &Y<'_>, out: &mut Out) -> Map {
    let mut spec = Map::default();
    let mut expect = Map::default();
    if let Some(query) = y.get("query_name") {
        set_str(&mut spec, "query", &query, out);
    }
    // blackbox_exporter asks ANY when `query_type` is unset; probenet has no ANY.
    let record = y.get("query_type");
    let record_text = record.as_ref().and_then(Y::str).map(str::to_ascii_uppercase);
    match (record_text, record) {
        (Some(text), _) if DNS_RECORDS.contains(&text.as_str()) => spec.set("record", s(&text)),
        (_, Some(record)) => {
            out.drop(record.place(), format!("probenet asks one of {}; A is asked", DNS_RECORDS.join(", ")));
            spec.set("record", s("A"));
        }
        (_, None) => {
            out.drop(y.place(), "no query_type: blackbox_exporter asks ANY, which probenet does not; A is asked");
            spec.set("record", s("A"));
        }
    }
    for (key, value) in y.entries() {
        match key {
            "query_name" | "query_type" => {}
            "query_class" => match value.str().map(str::to_ascii_uppercase) {
                Some(class) if ["IN", "CH", "HS"].contains(&class.as_str()) => spec.set("class", s(&class)),
                _ => out.drop(value.place(), "query class not carried over (probenet asks IN, CH or HS)"),
            },
            "transport_protocol" => match value.str() {
                Some(transport @ ("udp" | "tcp")) => spec.set("transport", s(transport)),
                _ => out.drop(value.place(), "transport not carried over (probenet speaks udp or tcp)"),
            },
            "recursion_desired" => {
                if value.bool() == Some(false) {
                    spec.set("recursion", n(false));
                }
            }
            "valid_rcodes" => {
                let codes: Vec<_> = value.items().iter().filter_map(Y::str).map(s).collect();
                if !codes.is_empty() {
                    expect.set("rcode", list(codes));
                }
            }
            "validate_answer_rrs" => rrs(&value, "answer", &mut expect, out),
            "validate_authority_rrs" => rrs(&value, "authority", &mut expect, out),
            "validate_additional_rrs" => rrs(&value, "additional", &mut expect, out),
            "dns_over_tls" if value.bool() != Some(true) => {}
            _ => out.drop(value.place(), "option not carried over"),
        }
    }
    if !expect.is_empty() {
        spec.set("expect", expect.node());
    }
    spec
}

/// `validate_*_rrs` as `*_regex` (one record must match each) and `*_not_regex` (no record may match).
fn rrs(y: &Y<'_>, section: &str, expect: &mut Map, out: &mut Out) {
    for (key, value) in y.entries() {
        let field = match key {
            "fail_if_matches_regexp" => format!("{section}_not_regex"),
            "fail_if_none_matches_regexp" => format!("{section}_regex"),
            _ => {
                out.drop(
                    value.place(),
                    "probenet asserts that some record matches or that none does; not carried over",
                );
                continue;
            }
        };
        let regexes: Vec<_> = value.items().iter().filter_map(Y::str).map(s).collect();
        if !regexes.is_empty() {
            expect.set(&field, list(regexes));
        }
    }
}

fn set_str(map: &mut Map, key: &str, value: &Y<'_>, out: &mut Out) {
    match value.str() {
        Some(text) => map.set(key, s(text)),
        None => out.drop(value.place(), format!("expected a string, found {}", value.node.type_name())),
    }
}

/// blackbox_exporter's sizes are powers of two whatever their unit (`10MB` is 10 MiB): as probenet writes them.
fn base2_size(text: &str) -> Option<String> {
    let text = text.trim();
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: u64 = text[..digits].parse().ok()?;
    let unit = match text[digits..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => "",
        "K" | "KB" | "KIB" => "KiB",
        "M" | "MB" | "MIB" => "MiB",
        "G" | "GB" | "GIB" => "GiB",
        _ => return None,
    };
    Some(format!("{number}{unit}"))
}
