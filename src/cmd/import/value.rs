//! Values written into the config: YAML nodes (`s`, `n`, `list`, [`Map`]), durations, label names, and text
//! made safe for fields that may hold secrets, for regular expressions and for JSON assertions.

use std::fmt;

use probenet_checks::yaml::{Key, Mark, Node, NodeKind};

/// The record types probenet's DNS check asks for.
pub const DNS_RECORDS: [&str; 10] = ["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT", "CAA"];

/// A label name probenet takes (letters, digits and `_`, not starting with a digit or `__`), or `None` for
/// the names it reserves (`job`, `instance`, `probe`).
pub fn label_name(text: &str) -> Option<String> {
    let mut name: String = text.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name = format!("tag_{name}");
    }
    while name.starts_with("__") {
        name.remove(0);
    }
    (!["job", "instance", "probe"].contains(&name.as_str())).then_some(name)
}

/// Text that goes into a field that may hold secret references, with every `${` written `$${` so that it
/// stays literal.
pub fn literal(text: &str) -> String {
    text.replace("${", "$${")
}

/// A Go, Prometheus or Gatus duration (`300ms`, `1m30s`, `1.5h`, `2d`, `1w`) in milliseconds, rounded up.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "0" {
        return Some(0);
    }
    let mut rest = text;
    let mut total_ns: f64 = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = &rest[number_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "d" => 86_400e9,
            "w" => 7.0 * 86_400e9,
            "y" => 365.0 * 86_400e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total_ns += number * scale;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((total_ns / 1e6).ceil() as u64)
}

/// Milliseconds as a probenet duration: `250ms`, `30s`, `1m30s`, `2h`.
pub fn ms_text(ms: u64) -> String {
    if !ms.is_multiple_of(1000) {
        return format!("{ms}ms");
    }
    let secs = ms / 1000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// A string scalar: written plain when it reads back as the same string, quoted otherwise.
pub fn s(text: &str) -> Node {
    let plain = Node { kind: NodeKind::Scalar { text: text.to_owned(), plain: true }, mark: Mark::default() };
    if plain.type_name() == "a string" {
        plain
    } else {
        Node { kind: NodeKind::Scalar { text: text.to_owned(), plain: false }, mark: Mark::default() }
    }
}

/// A typed scalar: a number or a boolean, written as is.
pub fn n(value: impl fmt::Display) -> Node {
    Node { kind: NodeKind::Scalar { text: value.to_string(), plain: true }, mark: Mark::default() }
}

pub fn list(items: Vec<Node>) -> Node {
    Node { kind: NodeKind::Seq(items), mark: Mark::default() }
}

/// A mapping in the order its keys are set; setting a key again replaces its value.
#[derive(Debug, Default, Clone)]
pub struct Map(Vec<(Key, Node)>);

impl Map {
    pub fn set(&mut self, key: &str, value: Node) {
        match self.0.iter_mut().find(|(k, _)| k.text == key) {
            Some((_, slot)) => *slot = value,
            None => self.0.push((Key { text: key.to_owned(), mark: Mark::default() }, value)),
        }
    }

    /// This mapping with `key` set.
    pub fn with(mut self, key: &str, value: Node) -> Self {
        self.set(key, value);
        self
    }

    /// Sets every key of `other`, in its order.
    pub fn extend(&mut self, other: Map) {
        for (key, value) in other.0 {
            self.set(&key.text, value);
        }
    }

    /// Removes `key` and returns its value.
    pub fn take(&mut self, key: &str) -> Option<Node> {
        let at = self.0.iter().position(|(k, _)| k.text == key)?;
        Some(self.0.remove(at).1)
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k.text == key)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn node(self) -> Node {
        Node { kind: NodeKind::Map(self.0), mark: Mark::default() }
    }
}

/// A URL's user and whether it holds a password (`https://user:pass@host/`), and the URL without them.
pub fn split_userinfo(url: &str) -> Option<(String, bool, String)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (userinfo, host) = rest[..authority_end].rsplit_once('@')?;
    let (user, password) = userinfo.split_once(':').map_or((userinfo, false), |(user, _)| (user, true));
    Some((user.to_owned(), password, format!("{scheme}://{host}{}", &rest[authority_end..])))
}

/// A JSON body assertion that `path` holds `value` as the source tools compare it, as text: a string is
/// `equals`; a number or boolean an anchored regex, which matches `1` and `"1"` alike.
pub fn json_equals(path: &str, value: &str) -> Map {
    let assertion = Map::default().with("path", s(path));
    if n(value).type_name() == "a string" {
        assertion.with("equals", s(value))
    } else {
        assertion.with("regex", s(&format!("^{}$", regex_escape(value))))
    }
}

/// `text` as a regular expression that matches it literally.
pub fn regex_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_go_and_prometheus_write_them() {
        assert_eq!(parse_duration("1m30s"), Some(90_000));
        assert_eq!(parse_duration("300ms"), Some(300));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000));
        assert_eq!(parse_duration("2d"), Some(172_800_000));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(ms_text(90_000), "1m30s");
        assert_eq!(ms_text(3_600_000), "1h");
        assert_eq!(ms_text(1_500), "1500ms");
    }

    #[test]
    fn userinfo_is_taken_out_of_a_url() {
        assert_eq!(
            split_userinfo("https://bob:pw@example.com/a@b"),
            Some(("bob".to_owned(), true, "https://example.com/a@b".to_owned()))
        );
        assert_eq!(split_userinfo("https://example.com/a@b"), None);
    }
}
