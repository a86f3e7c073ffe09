//! A small YAML emitter for `serde_json::Value`: block style, strings quoted only when a plain scalar would be
//! read back as something else, multi-line strings as literal blocks.

use serde_json::Value;

/// One document, ending in a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => map_lines(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => seq_lines(&mut out, items, 0),
        scalar => {
            out.push_str(&inline(scalar, 0));
            out.push('\n');
        }
    }
    out
}

/// Several documents separated by `---`.
pub fn to_documents<'a>(values: impl IntoIterator<Item = &'a Value>) -> String {
    values.into_iter().map(|value| format!("---\n{}", to_string(value))).collect()
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn map_lines(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    for (i, (key, value)) in map.iter().enumerate() {
        // The first key of a map that is a list item follows its `- `.
        if i > 0 || !out.ends_with("- ") {
            pad(out, indent);
        }
        out.push_str(&string(key, indent));
        out.push(':');
        value_after_key(out, value, indent);
    }
}

fn value_after_key(out: &mut String, value: &Value, indent: usize) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            map_lines(out, map, indent + 2);
        }
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            seq_lines(out, items, indent + 2);
        }
        scalar => {
            out.push(' ');
            out.push_str(&inline(scalar, indent + 2));
            out.push('\n');
        }
    }
}

fn seq_lines(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        pad(out, indent);
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => map_lines(out, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                seq_lines(out, inner, indent + 2);
            }
            scalar => {
                out.push_str(&inline(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// A scalar (or an empty collection) on the current line; a literal block for multi-line text.
fn inline(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(flag) => flag.to_string(),
        Value::Number(number) => number.to_string(),
        Value::String(text) => string(text, indent),
        Value::Array(_) => "[]".to_owned(),
        Value::Object(_) => "{}".to_owned(),
    }
}

fn string(text: &str, indent: usize) -> String {
    if is_plain(text) {
        text.to_owned()
    } else if can_be_literal(text) {
        literal(text, indent)
    } else {
        quoted(text)
    }
}

/// A double-quoted scalar: JSON's escapes are YAML's.
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// Whether a plain scalar reads back as this very string under YAML 1.1 and 1.2 (conservative).
fn is_plain(text: &str) -> bool {
    let Some(first) = text.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '/' || first == '_') || text.ends_with([' ', ':']) {
        return false;
    }
    let reserved = ["null", "true", "false", "yes", "no", "on", "off", "y", "n"];
    if reserved.iter().any(|word| text.eq_ignore_ascii_case(word)) {
        return false;
    }
    let chars: Vec<char> = text.chars().collect();
    chars.iter().enumerate().all(|(i, c)| match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' | '_' | '.' | '-' | '/' | '@' | '=' | '+' | ',' | '(' | ')' => true,
        ':' => chars.get(i + 1).is_some_and(|next| *next != ' '),
        ' ' => chars.get(i + 1).is_some_and(|next| *next != ' ' && *next != '#'),
        _ => false,
    })
}

/// Multi-line text without characters a literal block cannot hold.
fn can_be_literal(text: &str) -> bool {
    text.contains('\n')
        && !text.starts_with([' ', '\n'])
        && !text.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{feff}')
        && !text.lines().any(|line| line.ends_with(' ') || line.ends_with('\t'))
}

fn literal(text: &str, indent: usize) -> String {
    let body = text.trim_end_matches('\n');
    let trailing = text.len() - body.len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let mut out = format!("|{chomp}");
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.extend(std::iter::repeat_n(' ', indent));
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_only_when_it_reads_back_the_same() {
        for plain in ["abc", "ghcr.io/probenet/probenet:1.0.0", "http://a:8428/x", "a b", "/etc/probenet"] {
            assert!(is_plain(plain), "{plain}");
        }
        for quoted in ["", "yes", "No", "1", "10Gi", "0600", "-x", "a: b", "a #b", "x:", "*", "a\"b", " a", "@x"] {
            assert!(!is_plain(quoted), "{quoted}");
        }
    }

    #[test]
    fn literal_blocks_keep_trailing_newlines() {
        assert_eq!(literal("a\nb\n", 2), "|\n  a\n  b");
        assert_eq!(literal("a\nb", 2), "|-\n  a\n  b");
        assert_eq!(literal("a\n\nb\n\n", 0), "|+\na\n\nb\n");
    }
}
