//! Text with `${steps.<step>.<variable>}` references to values captured by earlier steps, beside the secret
//! references (`${env:..}`, `${file:..}`) of a [`Template`]: parsed and checked at validation, filled in when a
//! step runs.

use std::collections::BTreeMap;

use crate::config::{Ctx, Path};
use crate::outcome::{Failure, Reason};
use crate::run::RunContext;
use crate::secret::Template;

/// The values captured so far in a run, by step and variable name. Never shown: they count as secrets.
pub(crate) type Vars = BTreeMap<(String, String), String>;

/// One piece of a [`StepText`].
#[derive(Debug, Clone)]
enum Piece {
    /// Text that may hold secret references.
    Text(Template),
    /// A value captured by an earlier step.
    Var { step: String, var: String },
}

/// A string that may hold secrets and `${steps.<step>.<variable>}` references. `Debug` and
/// [`StepText::written`] show references, never values.
#[derive(Debug, Clone)]
pub struct StepText {
    pieces: Vec<Piece>,
    written: String,
}

/// What the steps before the one being validated capture, and every step's name.
pub(crate) struct Scope<'a> {
    /// The names of all the check's steps, in order.
    pub(crate) names: &'a [String],
    /// The index of the step being validated.
    pub(crate) current: usize,
    /// What each step captures, in step order.
    pub(crate) captures: &'a [Vec<String>],
}

impl StepText {
    /// The text as written in the config.
    pub fn written(&self) -> &str {
        &self.written
    }

    /// Whether the text reads a secret or a captured value (either is treated as a credential).
    pub fn is_sensitive(&self) -> bool {
        self.pieces.iter().any(|piece| match piece {
            Piece::Text(template) => template.has_secrets(),
            Piece::Var { .. } => true,
        })
    }

    /// Whether the text uses a captured value.
    pub fn has_vars(&self) -> bool {
        self.pieces.iter().any(|piece| matches!(piece, Piece::Var { .. }))
    }

    /// The text with each variable replaced by `placeholder` (or written as a reference without one) and secret
    /// references kept as written: for checking the shape of a URL at validation.
    pub fn with_placeholders(&self, placeholder: Option<&str>) -> String {
        self.pieces
            .iter()
            .map(|piece| match (piece, placeholder) {
                (Piece::Text(template), _) => template.display_form(),
                (Piece::Var { .. }, Some(placeholder)) => placeholder.to_owned(),
                (Piece::Var { step, var }, None) => format!("${{steps.{step}.{var}}}"),
            })
            .collect()
    }

    /// Parses `text` written at `path`, checking that every variable names an earlier step and one of its
    /// captures. Secret references are remembered by `cx` as for every kind.
    pub(crate) fn parse(cx: &mut Ctx<'_>, path: &Path, text: &str, scope: &Scope<'_>) -> Option<Self> {
        let segments = match split(text) {
            Ok(segments) => segments,
            Err(message) => {
                cx.error(path, message);
                return None;
            }
        };
        let mut ok = true;
        let mut pieces = Vec::new();
        for segment in segments {
            match segment {
                Segment::Text(text) => match cx.template(path, &text) {
                    Some(template) => pieces.push(Piece::Text(template)),
                    None => ok = false,
                },
                Segment::Var(step, var) => match check_var(scope, &step, &var) {
                    Ok(()) => pieces.push(Piece::Var { step, var }),
                    Err(message) => {
                        cx.error(path, format!("${{steps.{step}.{var}}}: {message}"));
                        ok = false;
                    }
                },
            }
        }
        ok.then(|| Self { pieces, written: text.to_owned() })
    }

    /// The text with its secrets and captured values filled in (secrets are remembered for redaction; captured
    /// values were when they were captured). The error names the reference, never a value.
    pub(crate) fn resolve(&self, cx: &RunContext, vars: &Vars) -> Result<String, Failure> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(template) => {
                    out.push_str(&cx.resolve(template).map_err(|error| Failure::new(Reason::Secret, error.0))?);
                }
                Piece::Var { step, var } => match vars.get(&(step.clone(), var.clone())) {
                    Some(value) => out.push_str(value),
                    // Validation makes every reference point at an earlier step, which captured it or failed.
                    None => {
                        return Err(Failure::new(
                            Reason::Assertion,
                            format!("${{steps.{step}.{var}}} was not captured"),
                        ));
                    }
                },
            }
        }
        Ok(out)
    }
}

/// Why `${steps.<step>.<var>}` cannot be used where `scope` says, if it cannot.
fn check_var(scope: &Scope<'_>, step: &str, var: &str) -> Result<(), String> {
    let Some(index) = scope.names.iter().position(|name| name == step) else {
        let earlier = scope.names[..scope.current].iter().map(String::as_str);
        let hint = crate::config::suggest(step, earlier).map(|close| format!(" (did you mean {close:?}?)"));
        return Err(format!("no earlier step is named {step:?}{}", hint.unwrap_or_default()));
    };
    if index == scope.current {
        return Err(format!("a step cannot use its own captures; step {step:?} is this one"));
    }
    if index > scope.current {
        return Err(format!("step {step:?} runs after this one; only earlier steps' captures can be used"));
    }
    let captured = scope.captures.get(index).map(Vec::as_slice).unwrap_or_default();
    if captured.iter().any(|name| name == var) {
        return Ok(());
    }
    let known = if captured.is_empty() {
        "it captures nothing".to_owned()
    } else {
        let hint = crate::config::suggest(var, captured.iter().map(String::as_str))
            .map(|close| format!("did you mean {close:?}? "))
            .unwrap_or_default();
        format!("{hint}it captures {}", captured.join(", "))
    };
    Err(format!("step {step:?} captures no {var:?}; {known}"))
}

/// A piece of text as written: literal text (with any secret references) or a variable reference.
#[derive(Debug, PartialEq, Eq)]
enum Segment {
    Text(String),
    Var(String, String),
}

/// Whether `name` is a step or variable name: 1 to 64 letters, digits, `_` and `-`.
pub(crate) fn is_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Splits `text` at its `${steps.<step>.<var>}` references. `$${` stays as written, for [`Template::parse`]
/// to read as a literal `${`.
fn split(text: &str) -> Result<Vec<Segment>, String> {
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        literal.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$${") {
            literal.push_str("$${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${steps.") {
            let end = after
                .find('}')
                .ok_or_else(|| "unterminated variable reference: \"${steps.\" has no closing \"}\"".to_owned())?;
            let reference = &after[..end];
            match reference.split_once('.') {
                Some((step, var)) if is_name(step) && is_name(var) => {
                    if !literal.is_empty() {
                        out.push(Segment::Text(std::mem::take(&mut literal)));
                    }
                    out.push(Segment::Var(step.to_owned(), var.to_owned()));
                }
                _ => {
                    return Err(format!(
                        "\"${{steps.{reference}}}\" is not a variable reference; write ${{steps.<step name>.<variable>}}"
                    ));
                }
            }
            rest = &after[end + 1..];
        } else {
            literal.push('$');
            rest = &rest[1..];
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        out.push(Segment::Text(literal));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Segment {
        Segment::Text(s.to_owned())
    }

    #[test]
    fn splits_variables_from_text_and_leaves_secrets_and_escapes() {
        assert_eq!(
            split("Bearer ${steps.login.token} ${env:X}"),
            Ok(vec![text("Bearer "), Segment::Var("login".into(), "token".into()), text(" ${env:X}")])
        );
        assert_eq!(split("$${steps.a.b} costs $5"), Ok(vec![text("$${steps.a.b} costs $5")]));
        assert_eq!(split("${steps.a.b}"), Ok(vec![Segment::Var("a".into(), "b".into())]));
        assert!(split("${steps.a}").unwrap_err().contains("is not a variable reference"));
        assert!(split("${steps.a.b").unwrap_err().contains("unterminated"));
        assert!(split("${steps.a b.c}").is_err());
    }
}
