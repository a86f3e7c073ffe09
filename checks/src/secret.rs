//! Strings that may hold secrets: `${env:NAME}` and `${file:PATH}` references, resolved when a check runs.
//!
//! A [`Template`] is parsed at validation time (pure) and resolved at run time. Its `Debug` never shows
//! resolved values, and every resolved value is registered with the run so it can be redacted from outcomes.

use std::fmt;
use std::path::PathBuf;

mod redact;

pub use redact::{MASK, MIN_SECRET_BYTES, Redactor};

/// One piece of a template: literal text or a reference to a secret.
#[derive(Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Env(String),
    File(PathBuf),
}

/// A string with zero or more secret references, such as `Bearer ${env:SHOP_TOKEN}`.
#[derive(Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// A reference that could not be resolved. Its message names the reference, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ResolveError(pub String);

impl Template {
    /// Parses `text`. `$${` writes a literal `${`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at..];
            if let Some(after) = rest.strip_prefix("$${") {
                literal.push_str("${");
                rest = after;
            } else if let Some(after) = rest.strip_prefix("${") {
                let end = after
                    .find('}')
                    .ok_or_else(|| "unterminated secret reference: \"${\" has no closing \"}\"".to_owned())?;
                let reference = &after[..end];
                let part = match reference.split_once(':') {
                    Some(("env", name)) if is_env_name(name) => Part::Env(name.to_owned()),
                    Some(("env", name)) => {
                        return Err(format!("${{env:{name}}}: {name:?} is not an environment variable name"));
                    }
                    Some(("file", path)) if !path.is_empty() => Part::File(PathBuf::from(path)),
                    Some(("file", _)) => return Err("${file:}: the file path is empty".to_owned()),
                    _ => {
                        return Err(format!(
                            "unknown secret reference \"${{{reference}}}\"; write ${{env:NAME}} or ${{file:PATH}} (or $${{ for a literal)"
                        ));
                    }
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(part);
                rest = &after[end + 1..];
            } else {
                literal.push('$');
                rest = &rest[1..];
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// A template of plain text without references.
    pub fn literal(text: &str) -> Self {
        Self { parts: vec![Part::Literal(text.to_owned())] }
    }

    /// Whether resolving this template reads a secret.
    pub fn has_secrets(&self) -> bool {
        self.parts.iter().any(|part| !matches!(part, Part::Literal(_)))
    }

    /// Checks that every reference resolves on this machine, without keeping any value.
    pub fn check_resolvable(&self) -> Result<(), ResolveError> {
        self.resolve(&mut Vec::new()).map(|_| ())
    }

    /// Resolves every reference. Each secret value read is pushed onto `secrets` for redaction.
    pub fn resolve(&self, secrets: &mut Vec<String>) -> Result<String, ResolveError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Env(name) => {
                    let value = std::env::var(name).map_err(|_| {
                        ResolveError(format!("secret ${{env:{name}}}: environment variable {name} is not set"))
                    })?;
                    remember(secrets, &value);
                    out.push_str(&value);
                }
                Part::File(path) => {
                    let value = std::fs::read_to_string(path).map_err(|error| {
                        ResolveError(format!("secret ${{file:{}}}: {}", path.display(), io_reason(&error)))
                    })?;
                    let value = value.trim_end_matches(['\n', '\r']).to_owned();
                    remember(secrets, &value);
                    out.push_str(&value);
                }
            }
        }
        Ok(out)
    }

    /// The template as written, with references shown as references (never values).
    pub fn display_form(&self) -> String {
        self.parts
            .iter()
            .map(|part| match part {
                Part::Literal(text) => text.replace("${", "$${"),
                Part::Env(name) => format!("${{env:{name}}}"),
                Part::File(path) => format!("${{file:{}}}", path.display()),
            })
            .collect()
    }
}

fn io_reason(error: &std::io::Error) -> &'static str {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file",
        std::io::ErrorKind::PermissionDenied => "permission denied",
        std::io::ErrorKind::IsADirectory => "is a directory",
        std::io::ErrorKind::InvalidData => "the file is not UTF-8 text",
        _ => "cannot be read",
    }
}

fn remember(secrets: &mut Vec<String>, value: &str) {
    // Very short values would redact ordinary text everywhere; they are still never logged by us.
    if value.len() >= MIN_SECRET_BYTES && !secrets.iter().any(|known| known == value) {
        secrets.push(value.to_owned());
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({:?})", self.display_form())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_resolves_env_and_file() {
        let dir = tempfile::tempdir().ok();
        let path = dir.as_ref().map(|d| d.path().join("token")).unwrap_or_default();
        std::fs::write(&path, "s3cr3t-file\n").ok();
        let template = Template::parse(&format!("Bearer ${{file:{}}} and $${{literal}}", path.display()));
        let template = template.unwrap_or_else(|e| panic!("{e}"));
        assert!(template.has_secrets());
        let mut secrets = Vec::new();
        assert_eq!(template.resolve(&mut secrets), Ok("Bearer s3cr3t-file and ${literal}".to_owned()));
        assert_eq!(secrets, vec!["s3cr3t-file".to_owned()]);
        assert!(!format!("{template:?}").contains("s3cr3t"));
    }

    #[test]
    fn rejects_bad_references() {
        assert!(Template::parse("${env:}").is_err());
        assert!(Template::parse("${env:1X}").is_err());
        assert!(Template::parse("${vault:x}").unwrap_err().contains("unknown secret reference"));
        assert!(Template::parse("abc ${env:X").unwrap_err().contains("unterminated"));
        assert_eq!(Template::parse("cost: $5"), Ok(Template::literal("cost: $5")));
    }

    #[test]
    fn unresolvable_reference_names_the_variable_only() {
        let template = Template::parse("${env:PROBENET_TEST_SURELY_UNSET}").unwrap_or_else(|e| panic!("{e}"));
        let error = template.check_resolvable().unwrap_err();
        assert_eq!(
            error.0,
            "secret ${env:PROBENET_TEST_SURELY_UNSET}: environment variable PROBENET_TEST_SURELY_UNSET is not set"
        );
    }

    #[test]
    fn redacts_known_values() {
        let redactor = Redactor::new(&["abc123".to_owned()]);
        assert_eq!(redactor.redact("auth Bearer abc123 failed"), "auth Bearer [redacted] failed");
    }
}
