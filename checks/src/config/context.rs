//! The validation context: where errors go, how they find their line and column, and small parsers
//! (durations, regexes, URLs, secrets) that every kind shares.

use std::collections::HashMap;
use std::time::Duration;

use regex::Regex;

use super::Place;
use super::error::ConfigError;
use super::path::Path;
use crate::secret::Template;
use crate::yaml::{Mark, Node, NodeKind, from_node, join_key};

/// A secret reference and where it is written, so `validate` can check it resolves on this machine.
#[derive(Debug, Clone)]
pub struct SecretRef {
    /// The template holding the reference.
    pub template: Template,
    /// An error prototype pointing at the reference (file, line, col, path).
    pub place: ConfigError,
}

/// Collects the errors of one file while its sections are validated. Validation is pure: no I/O.
///
/// Other crates validate their own YAML files with it too (the installer's stack file): deserialize with
/// [`Ctx::deserialize`], check values with [`Ctx::error`] and [`Ctx::missing`], then take [`Ctx::into_errors`].
#[derive(Debug)]
pub struct Ctx<'a> {
    file: &'a str,
    root: &'a Node,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) secrets: Vec<SecretRef>,
    /// Things that work but should change, such as a credential written literally. The config is still used.
    pub(crate) warnings: Vec<ConfigError>,
    /// Paths of keys dropped by `deserialize` for not fitting (not to be reported missing too).
    pruned: Vec<String>,
    /// Regular expressions compiled so far, by their text: a pattern written on many checks (generated
    /// configs repeat theirs) is compiled once and shared. One compiled `\w` costs hundreds of KiB.
    regexes: HashMap<String, Regex>,
}

impl<'a> Ctx<'a> {
    /// A context for `file`, whose parsed tree is `root`.
    pub fn new(file: &'a str, root: &'a Node) -> Self {
        Self {
            file,
            root,
            errors: Vec::new(),
            secrets: Vec::new(),
            warnings: Vec::new(),
            pruned: Vec::new(),
            regexes: HashMap::new(),
        }
    }

    /// The errors recorded so far, in the order they were found.
    pub fn errors(&self) -> &[ConfigError] {
        &self.errors
    }

    /// The errors recorded, in the order they were found.
    pub fn into_errors(self) -> Vec<ConfigError> {
        self.errors
    }

    /// The file being validated.
    pub fn file(&self) -> &'a str {
        self.file
    }

    /// The node at `path`, if the file has it.
    pub fn node(&self, path: &Path) -> Option<&'a Node> {
        self.root.find(&path.segs())
    }

    /// Which of `keys` the mapping at `path` has, in the order they are written (a key whose value is `null`
    /// counts only with `with_null`).
    pub fn written<'k>(&self, path: &Path, keys: &[&'k str], with_null: bool) -> Vec<&'k str> {
        let Some(node) = self.node(path) else { return Vec::new() };
        let mut present: Vec<(crate::yaml::Mark, &'k str)> = keys
            .iter()
            .filter(|key| with_null || node.get(key).is_some_and(|value| !value.is_null()))
            .filter_map(|key| Some((node.key_mark(key)?, *key)))
            .collect();
        present.sort();
        present.into_iter().map(|(_, key)| key).collect()
    }

    /// "Exactly one of these keys" (a check's kind, a notifier's kind): the one written at `path`, else
    /// `None` after reporting `none` (when given) or, at the second key written, that a `what` has exactly one
    /// kind but this one has both.
    pub fn one_of<'k>(&mut self, path: &Path, keys: &[&'k str], what: &str, none: Option<String>) -> Option<&'k str> {
        match self.written(path, keys, true).as_slice() {
            [] => {
                if let Some(message) = none {
                    self.error(path, message);
                }
                None
            }
            [key] => Some(key),
            [first, second, ..] => {
                let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
                let message =
                    format!("{article} {what} has exactly one kind, but this one has both `{first}` and `{second}`");
                self.error_at_key(&path.key(second), message);
                None
            }
        }
    }

    /// Where `path` is written: its value, or the nearest ancestor that exists.
    pub fn mark(&self, path: &Path) -> Mark {
        let mut at = path.clone();
        loop {
            if let Some(node) = self.node(&at) {
                return node.mark;
            }
            if at.is_root() {
                return self.root.mark;
            }
            at = at.parent();
        }
    }

    /// Where the key that ends `path` is written (falls back to the value's place).
    pub fn key_mark(&self, path: &Path) -> Mark {
        if let (Some(key), Some(parent)) = (path.last_key(), self.node(&path.parent()))
            && let Some(mark) = parent.key_mark(key)
        {
            return mark;
        }
        self.mark(path)
    }

    /// The place of the key that ends `path` (falls back to the value's place).
    pub fn place(&self, path: &Path) -> Place {
        let mark = self.key_mark(path);
        Place { file: self.file.to_owned(), line: mark.line, col: mark.col }
    }

    /// An error located at the value of `path`.
    pub fn located(&self, path: &Path, message: impl Into<String>) -> ConfigError {
        self.at(self.mark(path), path, message)
    }

    fn at(&self, mark: Mark, path: &Path, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_owned(),
            line: mark.line,
            col: mark.col,
            path: path.to_string(),
            message: message.into(),
        }
    }

    /// Records an error at the value of `path`.
    pub fn error(&mut self, path: &Path, message: impl Into<String>) {
        let error = self.located(path, message);
        self.errors.push(error);
    }

    /// Records an error at the key that ends `path` (for "unknown", "duplicate", "not allowed here").
    pub fn error_at_key(&mut self, path: &Path, message: impl Into<String>) {
        let error = self.at(self.key_mark(path), path, message);
        self.errors.push(error);
    }

    /// Validates the steps written at `path` (a list under the key `key`) one by one with `step`, each at its
    /// index, after refusing an empty list and one of more than `max` steps. `None` when any step is wrong.
    pub fn steps<S, T>(
        &mut self,
        path: &Path,
        key: &str,
        steps: Vec<S>,
        max: usize,
        mut step: impl FnMut(&mut Self, &Path, S) -> Option<T>,
    ) -> Option<Vec<T>> {
        if self.node(path).is_some() && steps.is_empty() {
            self.error(path, format!("`{key}` has no step; add steps or remove `{key}`"));
            return None;
        }
        if steps.len() > max {
            self.error(path, format!("`{key}` has {} steps, more than the allowed {max}", steps.len()));
            return None;
        }
        let mut ok = true;
        let mut out = Vec::with_capacity(steps.len());
        for (i, one) in steps.into_iter().enumerate() {
            match step(self, &path.index(i), one) {
                Some(one) => out.push(one),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Records a warning at the value of `path`: the config is valid, but something in it should change.
    pub fn warn(&mut self, path: &Path, message: impl Into<String>) {
        let warning = self.located(path, message);
        self.warnings.push(warning);
    }

    /// The warnings recorded so far, in the order they were found.
    pub fn warnings(&self) -> &[ConfigError] {
        &self.warnings
    }

    /// Records an error found elsewhere.
    pub fn push(&mut self, error: ConfigError) {
        self.errors.push(error);
    }

    /// Records an error at the value of `at` saying that the key ending `path` is missing, unless that key is
    /// written but was dropped by [`Ctx::deserialize`] for not fitting (its error is already recorded).
    pub fn missing(&mut self, path: &Path, at: &Path, message: impl Into<String>) {
        let path = path.to_string();
        if !self.pruned.contains(&path) {
            self.error(at, message);
        }
    }

    /// Deserializes the node at `path` into `T`, recording a located error for every part that does not fit.
    ///
    /// A serde deserializer stops at its first error. To report every one, the mapping entry holding an error
    /// (as deep as the error's path goes) is removed from a copy of the node and deserialization is tried again,
    /// once per entry at most. When that ends in a value, it is returned (built without the broken keys) so that
    /// validation can still report the semantic errors of the rest; the recorded errors keep the config from
    /// being used, and [`Ctx::missing`] does not report a dropped key as missing. A broken list item takes its
    /// whole list out, and then no value is returned, since validating what is left would report misleading
    /// errors ("`script` has no step").
    pub fn deserialize<T: serde::de::DeserializeOwned>(&mut self, path: &Path) -> Option<T> {
        let node = self.node(path)?;
        let base = path.to_string();
        let mut current = std::borrow::Cow::Borrowed(node);
        let mut keys: Vec<String> = Vec::new();
        let mut whole = true;
        for _ in 0..=count_entries(node) {
            let error = match from_node::<T>(&current, &base) {
                Ok(value) => return whole.then_some(value),
                Err(error) => error,
            };
            // A required key removed for being broken is not also "missing".
            if keys.iter().any(|key| error.message == format!("missing field {key:?}")) {
                return None;
            }
            let located = self.at(error.mark, path, error.message);
            self.errors.push(ConfigError { path: error.path.clone(), ..located });
            let pruned = prune_child(current.to_mut(), &base, &error.path)?;
            whole &= pruned.exact;
            keys.push(pruned.key);
            self.pruned.push(pruned.path);
        }
        None
    }

    /// Parses a duration written at `path`.
    pub fn duration(&mut self, path: &Path, text: &str) -> Option<Duration> {
        crate::duration::parse(text).map_err(|message| self.error(path, message)).ok()
    }

    /// Parses an optional duration written at `path`.
    pub fn opt_duration(&mut self, path: &Path, text: Option<&str>) -> Option<Duration> {
        text.and_then(|text| self.duration(path, text))
    }

    /// Compiles a regular expression written at `path`.
    pub fn regex(&mut self, path: &Path, text: &str) -> Option<Regex> {
        if let Some(regex) = self.regexes.get(text) {
            return Some(regex.clone());
        }
        match regex::RegexBuilder::new(text).size_limit(1 << 20).build() {
            Ok(regex) => {
                self.regexes.insert(text.to_owned(), regex.clone());
                Some(regex)
            }
            Err(error) => {
                let detail = error.to_string();
                let last = detail.lines().rev().find(|line| !line.trim().is_empty()).unwrap_or("invalid");
                let last = last.trim().trim_start_matches("error: ");
                self.error(path, format!("{text:?} is not a valid regular expression: {last}"));
                None
            }
        }
    }

    /// Parses a string that may hold `${env:..}` / `${file:..}` references; remembers them for `validate`.
    pub fn template(&mut self, path: &Path, text: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(template) => {
                if template.has_secrets() {
                    let place = self.located(path, String::new());
                    self.secrets.push(SecretRef { template: template.clone(), place });
                }
                Some(template)
            }
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    /// Parses a template that holds a credential (a password, a token, an authorization header); warns when it
    /// is written literally, since then it sits in the config file for anyone who can read it.
    pub fn credential(&mut self, path: &Path, text: &str) -> Option<Template> {
        let template = self.template(path, text)?;
        if !template.has_secrets() && !text.trim().is_empty() {
            self.warn(path, LITERAL_CREDENTIAL);
        }
        Some(template)
    }

    /// Parses the value of the request header `name`: a credential when the name says so (see
    /// [`is_credential_header`]), any template otherwise.
    pub fn header_value(&mut self, path: &Path, name: &str, text: &str) -> Option<Template> {
        if is_credential_header(name) { self.credential(path, text) } else { self.template(path, text) }
    }

    /// Parses a byte size such as `1MiB`, `512KiB`, `10MB` or `4096` written at `path`.
    pub fn size(&mut self, path: &Path, text: &str) -> Option<u64> {
        parse_size(text).map_err(|message| self.error(path, message)).ok()
    }

    /// Checks a `host:port` target and returns its parts.
    pub fn host_port(&mut self, path: &Path, text: &str, default_port: Option<u16>) -> Option<(String, u16)> {
        match split_host_port(text, default_port) {
            Ok(parts) => Some(parts),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }
}

/// The warning for a credential written literally.
pub const LITERAL_CREDENTIAL: &str =
    "a credential written literally in the config; write it as a secret reference, ${env:NAME} or ${file:PATH}";

/// Whether a request header of this name carries credentials: `Authorization`, `Proxy-Authorization`, `Cookie`,
/// and names that speak of a token, secret, password, session or key (`X-Api-Key`, `X-Auth-Token`...).
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["auth", "token", "secret", "passw", "cookie", "session", "credential", "signature"]
        .iter()
        .any(|word| name.contains(word))
        || name.ends_with("key")
}

/// Whether a CSS selector names an input that takes a credential (`#password`, `input[type=password]`...).
pub fn is_credential_selector(selector: &str) -> bool {
    let selector = selector.to_ascii_lowercase();
    ["passw", "secret", "token", "apikey", "api-key", "api_key", "credential"]
        .iter()
        .any(|word| selector.contains(word))
}

/// The mapping entries in `node`, at every depth: how many times `deserialize` may prune.
fn count_entries(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 0,
        NodeKind::Seq(items) => items.iter().map(count_entries).sum(),
        NodeKind::Map(entries) => entries.iter().map(|(_, value)| 1 + count_entries(value)).sum(),
    }
}

/// A mapping entry removed by [`prune_child`].
struct Pruned {
    /// Its key as written.
    key: String,
    /// Its path from the file's root.
    path: String,
    /// Whether it was exactly the broken entry (rather than a list holding it).
    exact: bool,
}

/// Removes from `node` (whose path is `base`) the entry that holds the error at `error_path`, as deep as the
/// path goes; `None` when the error is about `node` itself.
fn prune_child(node: &mut Node, base: &str, error_path: &str) -> Option<Pruned> {
    let NodeKind::Map(entries) = &mut node.kind else {
        // A list item cannot be dropped without shifting the paths of the items after it: the list goes whole.
        return None;
    };
    let (at, child_path) = entries.iter().enumerate().find_map(|(at, (key, _))| {
        let child = join_key(base, &key.text);
        let within =
            error_path == child || error_path.strip_prefix(&child).is_some_and(|rest| rest.starts_with(['.', '[']));
        within.then_some((at, child))
    })?;
    let exact = error_path == child_path;
    if !exact && let Some(found) = prune_child(&mut entries[at].1, &child_path, error_path) {
        return Some(found);
    }
    Some(Pruned { key: entries.remove(at).0.text, path: child_path, exact })
}

/// Parses a byte size: a number with an optional unit `B`, `KB`, `MB`, `GB`, `KiB`, `MiB`, `GiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed.find(|c: char| !c.is_ascii_digit()).unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let bad = || format!("{text:?} is not a size; write for example 4096, 512KiB or 10MiB");
    let number: u64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1000,
        "MB" => 1000 * 1000,
        "GB" => 1000 * 1000 * 1000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(bad()),
    };
    number.checked_mul(scale).ok_or_else(bad)
}

/// Splits `host:port`, `[v6]:port`, or a bare host when a default port is given.
pub fn split_host_port(text: &str, default_port: Option<u16>) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("{text:?} is not a valid target: {why}");
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing \"]\""))?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad("unexpected text after \"]\"")),
        }
    } else if text.matches(':').count() > 1 {
        (text, None)
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ', '@']) {
        return Err(bad("write host:port, for example db.example.com:5432"));
    }
    let port = match port {
        Some(port) => port.parse::<u16>().ok().filter(|port| *port > 0).ok_or_else(|| bad("bad port"))?,
        None => default_port.ok_or_else(|| bad("a port is required, as in host:port"))?,
    };
    Ok((host.to_owned(), port))
}

#[cfg(test)]
mod tests {
    use super::{Ctx, is_credential_header, is_credential_selector, parse_size, split_host_port};
    use crate::config::path::Path;
    use crate::yaml::Node;

    #[test]
    fn a_pattern_written_on_many_checks_is_compiled_once_and_a_bad_one_is_an_error_each_time() {
        let root: Node = crate::yaml::parse("{}").unwrap();
        let mut cx = Ctx::new("t.yaml", &root);
        let path = Path::root();
        for _ in 0..3 {
            let regex = cx.regex(&path, r"(Wel\w+)").unwrap();
            assert_eq!(regex.captures("Welcome").unwrap().get(1).unwrap().as_str(), "Welcome");
        }
        assert!(cx.regex(&path, "^ok$").unwrap().is_match("ok"));
        assert_eq!(cx.regexes.len(), 2, "one compiled regex per distinct pattern");
        assert!(cx.regex(&path, "(unclosed").is_none() && cx.regex(&path, "(unclosed").is_none());
        assert_eq!(cx.errors().len(), 2, "{:?}", cx.errors());
        assert_eq!(cx.regexes.len(), 2, "errors are not kept");
    }

    #[test]
    fn credential_headers_and_selectors() {
        for name in ["Authorization", "proxy-authorization", "Cookie", "X-Api-Key", "X-Auth-Token", "api_key"] {
            assert!(is_credential_header(name), "{name}");
        }
        for name in ["Accept", "Content-Type", "User-Agent", "X-Request-Id", "Cache-Control"] {
            assert!(!is_credential_header(name), "{name}");
        }
        assert!(is_credential_selector("input[type=password]") && is_credential_selector("#api-key"));
        assert!(!is_credential_selector("#email") && !is_credential_selector("input[name=q]"));
    }

    #[test]
    fn parses_sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("10 MB"), Ok(10_000_000));
        assert!(parse_size("1 TiB").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn splits_targets() {
        assert_eq!(split_host_port("a.example:25", None), Ok(("a.example".to_owned(), 25)));
        assert_eq!(split_host_port("[::1]:443", None), Ok(("::1".to_owned(), 443)));
        assert_eq!(split_host_port("::1", Some(443)), Ok(("::1".to_owned(), 443)));
        assert_eq!(split_host_port("a.example", Some(443)), Ok(("a.example".to_owned(), 443)));
        assert!(split_host_port("a.example", None).is_err());
        assert!(split_host_port("a.example:0", None).is_err());
        assert!(split_host_port("a.example:99999", None).is_err());
        assert!(split_host_port("http://a.example:80", None).is_err());
    }
}
