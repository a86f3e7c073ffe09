//! Finding secrets in text in every form they travel in (plain, percent- and form-encoded, JSON-, HTML- and
//! Rust-escaped, base64) and replacing them: the one redactor of probenet.
//!
//! Each secret becomes a pattern once, when the redactor is built: a sequence of characters, each of which may
//! be written in any of its encoded forms (so `a%20b`, `a+b`, `a\u0020b` and `a&#32;b` all match `a b`, as do
//! texts where an encoder escaped only some characters). Base64 is different: a secret inside a longer base64
//! string shows only at one of three alignments, so the three stable middles of each alphabet become literal
//! patterns. Text is scanned once per string: at every position the longest match of any pattern is taken, and
//! overlapping matches are merged into one mask, so overlapping secrets leave no piece behind.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};

/// Values shorter than this are never redacted: they would mask ordinary text everywhere.
pub const MIN_SECRET_BYTES: usize = 3;

/// What replaces a secret by default.
pub const MASK: &str = "[redacted]";

/// Replaces every known secret in text, in any of its encodings, with a mask. Built once per set of secrets
/// (a run, a notifier); its `Debug` shows only how many secrets it holds.
#[derive(Clone, Default)]
pub struct Redactor {
    patterns: Vec<Pattern>,
    /// Bytes that can start a match: positions starting with anything else are skipped at once.
    first: Vec<bool>,
    secrets: usize,
    mask: Option<String>,
}

/// One way a secret can be written: a sequence of units, each matched by any of its alternatives.
#[derive(Clone)]
struct Pattern {
    units: Vec<Vec<Box<[u8]>>>,
}

impl Redactor {
    /// A redactor for these secrets; empty ones and ones shorter than [`MIN_SECRET_BYTES`] are ignored.
    pub fn new<S: AsRef<str>>(secrets: &[S]) -> Self {
        let mut values: Vec<&str> =
            secrets.iter().map(AsRef::as_ref).filter(|value| value.len() >= MIN_SECRET_BYTES).collect();
        values.sort_unstable();
        values.dedup();
        let mut patterns = Vec::new();
        for value in &values {
            patterns.push(Pattern { units: value.chars().map(char_forms).collect() });
            for literal in base64_middles(value.as_bytes()) {
                patterns.push(Pattern { units: vec![vec![literal.into_bytes().into_boxed_slice()]] });
            }
        }
        let mut first = vec![false; 256];
        for pattern in &patterns {
            for alternative in pattern.units.first().into_iter().flatten() {
                if let Some(&byte) = alternative.first() {
                    first[usize::from(byte)] = true;
                }
            }
        }
        Self { patterns, first, secrets: values.len(), mask: None }
    }

    /// The same redactor writing `mask` in place of each secret (the default is `[redacted]`).
    #[must_use]
    pub fn with_mask(mut self, mask: &str) -> Self {
        self.mask = Some(mask.to_owned());
        self
    }

    /// Whether it knows no secret (then [`Redactor::redact`] returns its input).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `text` holds a secret in any form.
    pub fn finds(&self, text: &str) -> bool {
        let bytes = text.as_bytes();
        (0..bytes.len()).any(|at| self.longest_at(bytes, at).is_some())
    }

    /// `text` with every secret, in any form, replaced by the mask. Overlapping matches become one mask.
    pub fn redact(&self, text: &str) -> String {
        if self.patterns.is_empty() {
            return text.to_owned();
        }
        let bytes = text.as_bytes();
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for at in 0..bytes.len() {
            let Some(end) = self.longest_at(bytes, at) else { continue };
            match spans.last_mut() {
                Some(last) if at < last.1 => last.1 = last.1.max(end),
                _ => spans.push((at, end)),
            }
        }
        if spans.is_empty() {
            return text.to_owned();
        }
        let mask = self.mask.as_deref().unwrap_or(MASK);
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (start, end) in spans {
            out.push_str(&text[copied..start]);
            out.push_str(mask);
            copied = end;
        }
        out.push_str(&text[copied..]);
        out
    }

    /// Where the longest match starting at `at` ends, if any pattern matches there.
    fn longest_at(&self, bytes: &[u8], at: usize) -> Option<usize> {
        if !self.first[usize::from(bytes[at])] {
            return None;
        }
        self.patterns.iter().filter_map(|pattern| pattern.longest_at(bytes, at)).max()
    }
}

impl Pattern {
    /// Where the longest match starting at `at` ends. Every unit moves a small set of positions forward (an
    /// alternative may be a prefix of another, as `%` and `%25` are), so the work is bounded by the pattern.
    fn longest_at(&self, bytes: &[u8], at: usize) -> Option<usize> {
        let first = self.units.first()?;
        if !first.iter().any(|alt| bytes[at..].starts_with(alt)) {
            return None;
        }
        let mut positions = vec![at];
        let mut next = Vec::new();
        for unit in &self.units {
            next.clear();
            for &position in &positions {
                let rest = &bytes[position..];
                next.extend(unit.iter().filter(|alt| rest.starts_with(alt)).map(|alt| position + alt.len()));
            }
            if next.is_empty() {
                return None;
            }
            next.sort_unstable();
            next.dedup();
            std::mem::swap(&mut positions, &mut next);
        }
        positions.last().copied()
    }
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Redactor({} secrets hidden)", self.secrets)
    }
}

/// Every way one character of a secret may be written: as itself, percent-encoded (upper and lower hex, `+`
/// for a space as in forms), JSON-escaped (short escapes, `\uXXXX` with surrogate pairs), Rust-escaped
/// (`\u{..}`, as `Debug` writes it), HTML-escaped (named and numeric references).
fn char_forms(c: char) -> Vec<Box<[u8]>> {
    let mut forms: Vec<String> = vec![c.to_string()];
    let mut utf8 = [0; 4];
    let encoded = c.encode_utf8(&mut utf8).as_bytes();
    forms.push(encoded.iter().map(|byte| format!("%{byte:02X}")).collect());
    forms.push(encoded.iter().map(|byte| format!("%{byte:02x}")).collect());
    let short = match c {
        ' ' => Some("+"),
        '"' => Some("\\\""),
        '\\' => Some("\\\\"),
        '/' => Some("\\/"),
        '\n' => Some("\\n"),
        '\r' => Some("\\r"),
        '\t' => Some("\\t"),
        '\u{8}' => Some("\\b"),
        '\u{c}' => Some("\\f"),
        '\'' => Some("\\'"),
        _ => None,
    };
    forms.extend(short.map(str::to_owned));
    let mut units = [0; 2];
    let utf16 = c.encode_utf16(&mut units);
    forms.push(utf16.iter().map(|unit| format!("\\u{unit:04x}")).collect());
    forms.push(utf16.iter().map(|unit| format!("\\u{unit:04X}")).collect());
    forms.push(format!("\\u{{{:x}}}", u32::from(c)));
    let named: &[&str] = match c {
        '&' => &["&amp;"],
        '<' => &["&lt;"],
        '>' => &["&gt;"],
        '"' => &["&quot;"],
        '\'' => &["&apos;"],
        _ => &[],
    };
    forms.extend(named.iter().map(|name| (*name).to_owned()));
    forms.push(format!("&#{};", u32::from(c)));
    forms.push(format!("&#x{:x};", u32::from(c)));
    forms.push(format!("&#x{:X};", u32::from(c)));
    forms.sort_unstable();
    forms.dedup();
    forms.into_iter().map(|form| form.into_bytes().into_boxed_slice()).collect()
}

/// The parts of `secret`'s base64 (standard and URL-safe alphabets) that show whatever bytes surround it.
///
/// Inside a longer base64 string the secret starts at offset 0, 1 or 2 of a 3-byte group. For each alignment,
/// encode it after that many zero bytes and keep only the characters made of the secret's bits alone: the
/// first characters also hold the preceding bytes' bits (none, 2 or 3 characters to drop), and the last partial
/// group's final character also holds the next byte's bits. Padding is never kept, so padded and unpadded
/// encodings both contain these middles.
fn base64_middles(secret: &[u8]) -> Vec<String> {
    let mut middles = Vec::new();
    for offset in 0..3 {
        let mut bytes = vec![0; offset];
        bytes.extend_from_slice(secret);
        let total = bytes.len();
        let end = total / 3 * 4 + [0, 1, 2][total % 3];
        let start = [0, 2, 3][offset];
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if end >= start + MIN_SECRET_BYTES {
                middles.push(encoded[start..end].to_owned());
            }
        }
    }
    middles.sort_unstable();
    middles.dedup();
    middles
}

#[cfg(test)]
mod tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};

    use super::*;

    /// A secret with a space, `"`, `\`, `&`, `/`, `+`, `=`, `'`, `<` and non-ASCII, so every encoding differs.
    const SECRET: &str = "p@ss w\"o\\r&d/+=é'<x";

    fn redactor() -> Redactor {
        Redactor::new(&[SECRET])
    }

    fn assert_hidden(text: &str) {
        let out = redactor().redact(text);
        assert!(out.contains(MASK), "nothing redacted in {text:?}: {out:?}");
        assert!(!out.contains("ss w") && !out.contains("p@ss") && !out.contains("p%40ss"), "{out:?}");
        assert!(out.starts_with("before ") && out.ends_with(" after"), "the text around is kept: {out:?}");
    }

    fn percent(text: &str, keep: &str, lower: bool) -> String {
        let mut out = String::new();
        for byte in text.bytes() {
            if byte.is_ascii_alphanumeric() || keep.as_bytes().contains(&byte) {
                out.push(char::from(byte));
            } else if lower {
                out.push_str(&format!("%{byte:02x}"));
            } else {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
        out
    }

    #[test]
    fn plain() {
        assert_hidden(&format!("before {SECRET} after"));
    }

    #[test]
    fn percent_encoded_in_upper_and_lower_hex_and_partly() {
        let upper = percent(SECRET, "", false);
        assert!(upper.contains("%22") && upper.contains("%C3%A9"));
        assert_hidden(&format!("before https://h/?k={upper} after"));
        assert_hidden(&format!("before https://h/?k={} after", percent(SECRET, "", true)));
        // A URL serializer leaves `/`, `+`, `=`, `&`, `@` and `'` as they are.
        assert_hidden(&format!("before https://h/?k={} after", percent(SECRET, "/+=&@'\\", false)));
    }

    #[test]
    fn form_encoded() {
        let form = percent(SECRET, "", false).replace("%20", "+");
        assert!(form.contains("w%22") && form.contains("ss+w"));
        assert_hidden(&format!("before q={form} after"));
    }

    #[test]
    fn json_escaped() {
        let json = serde_json::to_string(SECRET).unwrap_or_default();
        assert!(json.contains("w\\\"o\\\\r"));
        assert_hidden(&format!("before {json} after"));
        for upper in [false, true] {
            let ascii: String = SECRET
                .chars()
                .map(|c| match (c.is_ascii_alphanumeric(), upper) {
                    (true, _) => c.to_string(),
                    (false, false) => format!("\\u{:04x}", u32::from(c)),
                    (false, true) => format!("\\u{:04X}", u32::from(c)),
                })
                .collect();
            assert!(ascii.contains(if upper { "\\u00E9" } else { "\\u00e9" }));
            assert_hidden(&format!("before {ascii} after"));
        }
        // Rust's Debug, as in error messages.
        assert_hidden(&format!("before {SECRET:?} after"));
        assert_hidden(&format!("before {} after", SECRET.escape_default()));
    }

    #[test]
    fn json_escaped_beyond_the_basic_plane() {
        let redactor = Redactor::new(&["emoji-😀-key"]);
        let json = "{\"k\":\"emoji-\\ud83d\\ude00-key\"}";
        assert_eq!(redactor.redact(json), "{\"k\":\"[redacted]\"}");
    }

    #[test]
    fn html_escaped() {
        let named = SECRET.replace('&', "&amp;").replace('"', "&quot;").replace('\'', "&#39;").replace('<', "&lt;");
        assert_hidden(&format!("before {named} after"));
        let apos = named.replace("&#39;", "&apos;").replace("&quot;", "&#x22;").replace('é', "&#233;");
        assert_hidden(&format!("before {apos} after"));
    }

    #[test]
    fn base64_at_every_alignment_in_both_alphabets_padded_or_not() {
        for prefix in ["", "u", "us", "user:", "a-longer-prefix:"] {
            for suffix in ["", "x", "xy", ":tail"] {
                let raw = format!("{prefix}{SECRET}{suffix}");
                for encoded in [STANDARD.encode(&raw), URL_SAFE.encode(&raw), URL_SAFE_NO_PAD.encode(&raw)] {
                    let out = redactor().redact(&format!("before Basic {encoded} after"));
                    assert!(out.contains(MASK), "{raw:?} as {encoded} was not found: {out}");
                    // What is left is the prefix's and suffix's encoding and a few characters at the secret's edges.
                    let left: String = out.replace(MASK, " ").chars().filter(|c| *c != ' ').collect();
                    let around = "beforeBasicafter".len() + (prefix.len() + suffix.len()) * 4 / 3 + 8;
                    assert!(left.len() <= around, "{raw:?}: {out}");
                }
            }
        }
    }

    #[test]
    fn a_basic_auth_header_does_not_reveal_the_password() {
        let redactor = Redactor::new(&["pw-7f3a9c1e-basic"]);
        let header = format!("authorization: Basic {}", STANDARD.encode("monitor:pw-7f3a9c1e-basic"));
        let out = redactor.redact(&header);
        assert!(out.starts_with("authorization: Basic bW9uaXRvcj") && out.contains(MASK), "{out}");
        let tail = out.rsplit(MASK).next().unwrap_or_default();
        assert!(tail.len() <= 3, "only padding and edge characters may remain: {out}");
    }

    #[test]
    fn text_without_secrets_is_unchanged() {
        let redactor = redactor();
        for text in ["", "ordinary text", "p@ss", "é'<x", "%22%5C", "before p@ss w after", "\\u0022 &amp; +"] {
            assert_eq!(redactor.redact(text), text);
            assert!(!redactor.finds(text));
        }
        assert_eq!(Redactor::default().redact("anything"), "anything");
        assert!(Redactor::new(&["ab", ""]).is_empty(), "values under three bytes are ignored");
    }

    #[test]
    fn overlapping_and_nested_secrets_leave_no_piece() {
        let redactor = Redactor::new(&["abcdef", "defghi", "abc"]);
        assert_eq!(redactor.redact("x abcdefghi y"), "x [redacted] y");
        assert_eq!(redactor.redact("x abc y abcdef z"), "x [redacted] y [redacted] z");
        assert_eq!(redactor.redact("abcabc"), "[redacted][redacted]", "adjacent ones are masked one by one");
        let redactor = Redactor::new(&["hunter2", "hunter22"]).with_mask("<redacted>");
        assert_eq!(redactor.redact("hunter22 and hunter2"), "<redacted> and <redacted>");
    }

    #[test]
    fn a_secret_containing_an_escape_character_matches_both_ways() {
        // `%` is both itself and the start of `%25`; the longest reading wins.
        let redactor = Redactor::new(&["50%off"]);
        assert_eq!(redactor.redact("a 50%off b 50%25off c 50%2off"), "a [redacted] b [redacted] c 50%2off");
    }

    #[test]
    fn debug_shows_no_value() {
        assert_eq!(format!("{:?}", redactor()), "Redactor(1 secrets hidden)");
    }
}
