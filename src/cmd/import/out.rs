//! What an import produces: the checks written, the secrets the user must set, and the located list of what
//! was not carried over; rendered as a commented probenet config and a report on stderr.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use probenet_checks::ConfigError;
use probenet_checks::yaml::{Node, emit};

use super::value::{Map, list, ms_text, s};

/// Where something is in an input file: `FILE:LINE:COL: PATH` for YAML, `FILE: PATH` for JSON (line 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub col: usize,
    /// The path inside the file, such as `modules.http_2xx.http.method` or `monitorList[3].keyword`.
    pub path: String,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.col)?;
        }
        if !self.path.is_empty() {
            write!(f, ": {}", self.path)?;
        }
        Ok(())
    }
}

/// One located line of the report: an error, or something not carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub place: Place,
    pub message: String,
}

impl Line {
    pub fn new(place: Place, message: impl Into<String>) -> Self {
        Line { place, message: message.into() }
    }

    /// A line about a file as a whole (cannot be read, too large).
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Line::new(Place { file: file.to_owned(), line: 0, col: 0, path: String::new() }, message)
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// A secret moved out of the config into an environment variable.
#[derive(Debug, Clone)]
struct Secret {
    var: String,
    /// Where the reference is in the output, such as `checks[2].http.headers.Authorization`.
    used_at: String,
    /// Where the value was in the input.
    from: Place,
}

/// One check, ready to be written.
#[derive(Debug)]
pub struct CheckOut {
    pub name: String,
    /// Milliseconds.
    pub interval: Option<u64>,
    /// Milliseconds.
    pub timeout: Option<u64>,
    pub labels: Map,
    /// The kind key: `http`, `dns`, `tls`, `tcp`, `icmp` or `browser`.
    pub kind: &'static str,
    pub spec: Map,
    /// What it was made from: an endpoint, a monitor, a scrape target.
    pub from: Place,
}

/// A check as written, with what it was made from.
#[derive(Debug)]
struct Written {
    name: String,
    from: Place,
    node: Node,
}

/// Everything an import found, filled by one tool's module.
#[derive(Debug)]
pub struct Out {
    /// What was read, for the header: such as "Gatus config gatus.yaml".
    source: String,
    /// The subcommand, for the header: such as "gatus".
    tool: &'static str,
    checks: Vec<Written>,
    names: BTreeSet<String>,
    vars: BTreeSet<String>,
    secrets: Vec<Secret>,
    /// Not carried over, in the order found (see [`Out::dropped`]).
    dropped: Vec<Line>,
    /// Things the user should know that are not about one option (paused monitors skipped).
    notes: Vec<String>,
}

/// The longest check name written; longer derived names are cut.
const MAX_NAME: usize = 60;

impl Out {
    pub fn new(tool: &'static str, source: impl Into<String>) -> Self {
        Out {
            source: source.into(),
            tool,
            checks: Vec::new(),
            names: BTreeSet::new(),
            vars: BTreeSet::new(),
            secrets: Vec::new(),
            dropped: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// A unique check name derived from `wanted` (lowercase, other characters as `-`), else from `fallback`:
    /// the second `shop` is `shop-2`.
    pub fn name(&mut self, wanted: &str, fallback: &str) -> String {
        let mut base = slug(wanted);
        if base.is_empty() {
            base = slug(fallback);
        }
        if base.is_empty() {
            base = "check".to_owned();
        }
        let mut name = base.clone();
        let mut n = 2;
        while self.names.contains(&name) {
            name = format!("{base}-{n}");
            n += 1;
        }
        self.names.insert(name.clone());
        name
    }

    /// Records that a secret found at `from` is read from an environment variable named after the check and
    /// `what`; returns the reference to write, `${env:VAR}`. The value itself is never kept.
    pub fn secret(&mut self, check: &str, what: &str, used_at: impl Into<String>, from: Place) -> String {
        let mut base: String = format!("{check}_{what}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
            .collect();
        while base.contains("__") {
            base = base.replace("__", "_");
        }
        if base.starts_with(|c: char| c.is_ascii_digit()) {
            base = format!("CHECK_{base}");
        }
        let mut var = base.clone();
        let mut n = 2;
        while self.vars.contains(&var) {
            var = format!("{base}_{n}");
            n += 1;
        }
        self.vars.insert(var.clone());
        self.secrets.push(Secret { var: var.clone(), used_at: used_at.into(), from });
        format!("${{env:{var}}}")
    }

    /// Records an environment variable the source already referenced (Gatus's `${NAME}`) as one to set.
    pub fn existing_secret(&mut self, var: &str, used_at: impl Into<String>, from: Place) {
        self.vars.insert(var.to_owned());
        self.secrets.push(Secret { var: var.to_owned(), used_at: used_at.into(), from });
    }

    /// Something at `place` that the output does not carry over, and why (listed in file order).
    pub fn drop(&mut self, place: Place, message: impl Into<String>) {
        let line = Line::new(place, message);
        // A module's option shared by several checks is listed once.
        if !self.dropped.contains(&line) {
            self.dropped.push(line);
        }
    }

    /// What was not carried over, by file, line and column (JSON lines in the order found).
    fn dropped(&self) -> Vec<&Line> {
        let mut lines: Vec<&Line> = self.dropped.iter().collect();
        lines.sort_by(|a, b| {
            (&a.place.file, a.place.line, a.place.col).cmp(&(&b.place.file, b.place.line, b.place.col))
        });
        lines
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// The interval and timeout as probenet takes them: the interval within 1s..1h, the timeout at most the
    /// interval (1m when unset); each change is listed at its place.
    pub fn schedule(
        &mut self,
        interval: Option<(u64, Place)>,
        timeout: Option<(u64, Place)>,
    ) -> (Option<u64>, Option<u64>) {
        let interval = interval.map(|(ms, place)| {
            if ms < 1_000 {
                self.drop(
                    place,
                    format!("interval {}: probenet runs a check at most every second; 1s written", ms_text(ms)),
                );
                1_000
            } else if ms > 3_600_000 {
                self.drop(
                    place,
                    format!("interval {}: probenet runs a check at least hourly; 1h written", ms_text(ms)),
                );
                3_600_000
            } else {
                ms
            }
        });
        let every = interval.unwrap_or(60_000);
        let timeout = timeout.and_then(|(ms, place)| {
            if ms == 0 {
                None
            } else if ms > every {
                self.drop(
                    place,
                    format!(
                        "timeout {}: a probenet timeout is at most the interval; {} written",
                        ms_text(ms),
                        ms_text(every)
                    ),
                );
                Some(every)
            } else {
                Some(ms)
            }
        });
        (interval, timeout)
    }

    pub fn push(&mut self, mut check: CheckOut) {
        // One echo request must fit in the timeout: under a second, it is sent within it.
        if let ("icmp", Some(timeout @ ..1_000)) = (check.kind, check.timeout) {
            check.spec.set("interval", s(&ms_text(timeout.max(10))));
        }
        let mut map = Map::default();
        map.set("name", s(&check.name));
        if let Some(ms) = check.interval {
            map.set("interval", s(&ms_text(ms)));
        }
        if let Some(ms) = check.timeout {
            map.set("timeout", s(&ms_text(ms)));
        }
        if !check.labels.is_empty() {
            map.set("labels", check.labels.node());
        }
        map.set(check.kind, check.spec.node());
        self.checks.push(Written { name: check.name, from: check.from, node: map.node() });
    }

    /// Takes out the checks probenet's validation refuses (a URL or a regex it does not accept), each listed as
    /// not carried over with the validator's message at the place it came from. Gives back the errors that
    /// are not about one check: those would be a bug of the import.
    pub fn reject(&mut self, errors: Vec<ConfigError>) -> Result<(), Vec<ConfigError>> {
        let mut refused: Vec<(usize, String)> = Vec::new();
        let mut other = Vec::new();
        for error in errors {
            let index = error.path.strip_prefix("checks[").and_then(|rest| {
                let (index, rest) = rest.split_once(']')?;
                Some((index.parse::<usize>().ok()?, rest.trim_start_matches('.').to_owned()))
            });
            match index {
                Some((index, path)) if index < self.checks.len() => {
                    let about = if path.is_empty() { String::new() } else { format!("{path}: ") };
                    refused.push((index, format!("{about}{}", error.message)));
                }
                _ => other.push(error),
            }
        }
        if !other.is_empty() || refused.is_empty() {
            return Err(other);
        }
        refused.sort_by_key(|(index, _)| std::cmp::Reverse(*index));
        for (index, message) in refused {
            if index >= self.checks.len() {
                continue;
            }
            let check = self.checks.remove(index);
            self.secrets.retain(|secret| !secret.used_at.ends_with(&format!(" of check {}", check.name)));
            self.drop(check.from, format!("not written: probenet refuses {message}"));
        }
        Ok(())
    }

    /// The config: a header saying where it came from, the region, the secrets to set and what was not
    /// carried over, then `regions` and `checks`.
    pub fn render(&self, region: &str) -> String {
        let mut text = String::new();
        let mut comment = |line: &str| {
            if line.is_empty() {
                text.push_str("#\n");
            }
            let indent = line.len() - line.trim_start().len();
            for (i, wrapped) in wrap(&one_line(line), 110 - indent).iter().enumerate() {
                let pad = if i == 0 { indent } else { indent + 2 };
                text.push_str(&format!("# {}{wrapped}\n", " ".repeat(pad)));
            }
        };
        comment(&format!("Imported by `probenet import {}` from {}.", self.tool, self.source));
        comment("Check it with `probenet validate FILE`; docs/import.md says what maps to what.");
        comment("");
        comment(&format!(
            "Regions: every check runs from the one region declared below, `{region}`. Rename it after where your \
             prober runs (`probenet prober --region NAME`) and declare more regions to probe from several places."
        ));
        if !self.secrets.is_empty() {
            comment("");
            comment(
                "Secrets are read from environment variables where the checks run; set each to the value the source held:",
            );
            for secret in &self.secrets {
                comment(&format!("  {}: {} (from {})", secret.var, secret.used_at, secret.from));
            }
        }
        if !self.notes.is_empty() {
            comment("");
            for note in &self.notes {
                comment(note);
            }
        }
        if !self.dropped.is_empty() {
            comment("");
            comment("Not carried over:");
            for line in self.dropped() {
                comment(&format!("  {line}"));
            }
        }
        let mut regions = Map::default();
        regions.set(region, Map::default().node());
        let mut root = Map::default();
        root.set("regions", regions.node());
        root.set("checks", list(self.checks.iter().map(|check| check.node.clone()).collect()));
        text.push_str(&emit(&root.node()));
        text
    }

    /// The report printed on stderr: what was not carried over, one located line each, then what was written
    /// and which environment variables to set (by name; never a value).
    pub fn summary(&self, output: Option<&Path>, region: &str) -> String {
        let mut text = String::new();
        for line in self.dropped() {
            text.push_str(&format!("{line}\n"));
        }
        let checks = self.checks.len();
        let plural = if checks == 1 { "" } else { "s" };
        let to = output.map_or_else(|| "standard output".to_owned(), |path| path.display().to_string());
        text.push_str(&format!(
            "probenet: wrote {checks} check{plural} to {to}, all in region `{region}` (rename it or add more)\n"
        ));
        if !self.dropped.is_empty() {
            let n = self.dropped.len();
            text.push_str(&format!(
                "probenet: {n} thing{} not carried over, listed above\n",
                if n == 1 { "" } else { "s" }
            ));
        }
        for note in &self.notes {
            text.push_str(&format!("probenet: {}\n", one_line(note)));
        }
        if !self.secrets.is_empty() {
            text.push_str(
                "probenet: set these environment variables where the checks run, each to the value the source held:\n",
            );
            for secret in &self.secrets {
                text.push_str(&format!("  {}  for {} (from {})\n", secret.var, secret.used_at, secret.from));
            }
        }
        text
    }
}

/// Text for a header comment: one line, control characters as spaces.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Words of `text` in lines of at most `width` characters (a longer word alone on its line).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

/// `[a-z0-9][a-z0-9_-]*`: lowercase ASCII letters and digits kept, `_` kept, everything else one `-`.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches(|c| c == '-' || c == '_');
    let cut: String = out.chars().take(MAX_NAME).collect();
    cut.trim_end_matches(['-', '_']).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_slugs_made_unique() {
        let mut out = Out::new("gatus", "x");
        assert_eq!(out.name("Shop / Checkout (EU)", "x"), "shop-checkout-eu");
        assert_eq!(out.name("shop checkout eu", "x"), "shop-checkout-eu-2");
        assert_eq!(out.name("!!!", "dns"), "dns");
    }
}
