//! Writing a tree back as YAML: block style, every string that is not a safe plain word double-quoted, so
//! that parsing the text gives the same tree (marks aside). Anchors and merges are already expanded in a tree.

use std::fmt::Write as _;

use super::tree::{Key, Node, NodeKind, Plain, resolve_plain};

/// The tree as block-style YAML text. Parsing it gives a tree [`same_content`] as `root`.
pub fn emit(root: &Node) -> String {
    let mut out = String::new();
    match &root.kind {
        NodeKind::Map(pairs) if !pairs.is_empty() => map(&mut out, pairs, 0, false),
        NodeKind::Seq(items) if !items.is_empty() => seq(&mut out, items, 0, false),
        NodeKind::Map(_) => out.push_str("{}\n"),
        NodeKind::Seq(_) => out.push_str("[]\n"),
        NodeKind::Scalar { text, plain } => {
            out.push_str(&scalar(text, *plain));
            out.push('\n');
        }
    }
    out
}

/// Whether two trees hold the same content, marks aside. A plain scalar that resolves to a string equals
/// the same text quoted: the config reads both alike.
pub fn same_content(a: &Node, b: &Node) -> bool {
    match (&a.kind, &b.kind) {
        (NodeKind::Scalar { text: ta, plain: pa }, NodeKind::Scalar { text: tb, plain: pb }) => {
            ta == tb && typed(ta, *pa) == typed(tb, *pb)
        }
        (NodeKind::Seq(xs), NodeKind::Seq(ys)) => {
            xs.len() == ys.len() && xs.iter().zip(ys).all(|(x, y)| same_content(x, y))
        }
        (NodeKind::Map(xs), NodeKind::Map(ys)) => {
            xs.len() == ys.len()
                && xs.iter().zip(ys).all(|((kx, vx), (ky, vy))| kx.text == ky.text && same_content(vx, vy))
        }
        _ => false,
    }
}

/// Whether a scalar resolves to something other than a string (null, boolean, number).
fn typed(text: &str, plain: bool) -> bool {
    plain && resolve_plain(text) != Plain::Str
}

fn indent(out: &mut String, width: usize) {
    out.extend(std::iter::repeat_n(' ', width));
}

/// A mapping at `width`; its first line continues the current one when `inline` (after `- `).
fn map(out: &mut String, pairs: &[(Key, Node)], width: usize, inline: bool) {
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, width);
        }
        out.push_str(&key_text(&key.text));
        out.push(':');
        value_after(out, value, width);
    }
}

/// A sequence at `width`; its first line continues the current one when `inline`.
fn seq(out: &mut String, items: &[Node], width: usize, inline: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline {
            indent(out, width);
        }
        out.push('-');
        match &item.kind {
            NodeKind::Map(pairs) if !pairs.is_empty() => {
                out.push(' ');
                map(out, pairs, width + 2, true);
            }
            NodeKind::Seq(inner) if !inner.is_empty() => {
                out.push(' ');
                seq(out, inner, width + 2, true);
            }
            _ => value_after(out, item, width),
        }
    }
}

/// A value after `key:` or `-`: scalars and empty collections on the same line, others below, indented.
fn value_after(out: &mut String, value: &Node, width: usize) {
    match &value.kind {
        NodeKind::Map(pairs) if !pairs.is_empty() => {
            out.push('\n');
            map(out, pairs, width + 2, false);
        }
        NodeKind::Seq(items) if !items.is_empty() => {
            out.push('\n');
            seq(out, items, width + 2, false);
        }
        NodeKind::Map(_) => out.push_str(" {}\n"),
        NodeKind::Seq(_) => out.push_str(" []\n"),
        NodeKind::Scalar { text, plain } => {
            let written = scalar(text, *plain);
            if !written.is_empty() {
                out.push(' ');
                out.push_str(&written);
            }
            out.push('\n');
        }
    }
}

/// A scalar: typed plain scalars (null, booleans, numbers) as written, strings plain when that is safe,
/// double-quoted otherwise.
fn scalar(text: &str, plain: bool) -> String {
    if typed(text, plain) || (plain && safe_plain(text)) { text.to_owned() } else { quoted(text) }
}

/// A key: plain when it is a safe word that reads as a string, double-quoted otherwise (`"<<"` is then a
/// key, not a merge).
fn key_text(text: &str) -> String {
    if safe_plain(text) && !text.contains(':') && resolve_plain(text) == Plain::Str {
        text.to_owned()
    } else {
        quoted(text)
    }
}

/// Whether `text` reads back as the same plain string in block context: a conservative set of characters,
/// starting with a letter, digit or one of `/ $ _ (`, with no `: `, no trailing `:` and no outer spaces.
fn safe_plain(text: &str) -> bool {
    let first_ok = text.chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '$' | '_' | '('));
    let chars_ok = text.chars().all(|c| c.is_ascii_alphanumeric() || " -_./:@$+=,()~%{}".contains(c));
    first_ok
        && chars_ok
        && !text.ends_with([' ', ':'])
        && !text.contains(": ")
        && !text.contains("  ")
        && resolve_plain(text) == Plain::Str
}

/// A double-quoted scalar with YAML escapes.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;

    fn round_trip(src: &str) -> String {
        let tree = parse(src).unwrap_or_else(|error| panic!("{src:?}: {error}"));
        let text = emit(&tree);
        let back =
            parse(&text).unwrap_or_else(|error| panic!("{text}\n{}:{}: {error}", error.mark.line, error.mark.col));
        assert!(same_content(&tree, &back), "{src}\n--- emitted ---\n{text}");
        text
    }

    #[test]
    fn block_flow_and_aliases_read_back_the_same() {
        round_trip("a: 1\nb: [x, 'y', {c: d}]\nc: {}\nd: []\ne:\nf: ~\ng: -1.5e3\nh: .inf\ni: 0x1F\n");
        round_trip("base: &b {url: 'http://x/#frag', timeout: 5s}\nuse: *b\nmerged:\n  <<: *b\n  timeout: 9s\n");
        round_trip("- - a\n  - b\n- []\n- {}\n- k: v\n  l: [1, 2]\n- \"\"\n-\n");
        round_trip("\"<<\": not a merge\n\"true\": key\n\"1\": one\n\"\": empty\n\"a: b\": colon\n");
    }

    #[test]
    fn strings_keep_their_type_and_text() {
        let text = round_trip(
            "q: '1'\nt: !!str true\nm: |\n  two\n  lines\nf: >\n  folded\n  text\nu: \"tab\\t\\u0001 é \\u2028\"\nh: a #c\nx: ${env:X}\n",
        );
        assert!(text.contains("q: \"1\"\n"), "{text}");
        assert!(text.contains("t: \"true\"\n"), "{text}");
        assert!(text.contains("m: \"two\\nlines\\n\"\n"), "{text}");
        assert!(text.contains("x: ${env:X}\n"), "{text}");
        assert!(text.contains("h: a\n"), "{text}");
    }

    #[test]
    fn a_string_that_reads_as_a_number_stays_a_string() {
        let quoted = parse("a: '30'\n").unwrap_or_else(|error| panic!("{error}"));
        let plain = parse("a: 30\n").unwrap_or_else(|error| panic!("{error}"));
        assert!(!same_content(&quoted, &plain));
        assert_eq!(emit(&quoted), "a: \"30\"\n");
        assert_eq!(emit(&plain), "a: 30\n");
    }
}
