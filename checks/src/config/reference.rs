//! The config reference in Markdown, generated from the JSON Schema so the docs cannot drift from the code.

use std::collections::{BTreeSet, VecDeque};
use std::fmt::Write as _;

use serde_json::Value;

/// Renders every type of the config schema as a Markdown section with a table of its keys.
pub fn markdown() -> String {
    let schema = super::spec::json_schema();
    let empty = serde_json::Map::new();
    let definitions = schema.get("definitions").and_then(Value::as_object).unwrap_or(&empty);
    let mut out = String::new();
    let mut queue: VecDeque<(String, &Value)> = VecDeque::from([("probenet config".to_owned(), &schema)]);
    let mut seen = BTreeSet::new();
    while let Some((name, node)) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let _ = writeln!(out, "### {name}\n");
        if let Some(description) = node.get("description").and_then(Value::as_str) {
            let _ = writeln!(out, "{}\n", one_paragraph(description));
        }
        let mut refs = Vec::new();
        if let Some(properties) = node.get("properties").and_then(Value::as_object) {
            let required: Vec<&str> = node
                .get("required")
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            out.push_str("| key | type | required | description |\n|---|---|---|---|\n");
            for (key, property) in properties {
                let ty = type_of(property, &mut refs);
                let description = property.get("description").and_then(Value::as_str).unwrap_or("");
                let required = if required.contains(&key.as_str()) { "yes" } else { "" };
                let _ = writeln!(out, "| `{key}` | {ty} | {required} | {} |", cell(description));
            }
            out.push('\n');
        } else if let Some(variants) = node.get("oneOf").or_else(|| node.get("anyOf")).and_then(Value::as_array) {
            out.push_str("One of:\n\n| form | description |\n|---|---|\n");
            for variant in variants {
                let form = variant_form(variant, &mut refs);
                let description = variant.get("description").and_then(Value::as_str).unwrap_or("");
                let _ = writeln!(out, "| {form} | {} |", cell(description));
            }
            out.push('\n');
        } else {
            let _ = writeln!(out, "Type: {}\n", type_of(node, &mut refs));
        }
        for reference in refs {
            if let Some(definition) = definitions.get(&reference) {
                queue.push_back((reference, definition));
            }
        }
    }
    out
}

fn variant_form(variant: &Value, refs: &mut Vec<String>) -> String {
    if let Some(properties) = variant.get("properties").and_then(Value::as_object)
        && let Some((key, value)) = properties.iter().next()
    {
        return format!("`{key}:` {}", type_of(value, refs));
    }
    if let Some(values) = variant.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(|value| format!("`{}`", value.as_str().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(", ");
    }
    if let Some(value) = variant.get("const").and_then(Value::as_str) {
        return format!("`{value}`");
    }
    type_of(variant, refs)
}

fn type_of(node: &Value, refs: &mut Vec<String>) -> String {
    if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next().unwrap_or(reference).to_owned();
        let link = format!("[{name}](#{})", name.to_lowercase());
        refs.push(name);
        return link;
    }
    // A described reference: `{"description": ..., "allOf": [{"$ref": ...}]}`.
    if let Some([single]) = node.get("allOf").and_then(Value::as_array).map(Vec::as_slice) {
        return type_of(single, refs);
    }
    if let Some(variants) = node.get("anyOf").or_else(|| node.get("oneOf")).and_then(Value::as_array) {
        let forms: Vec<String> = variants
            .iter()
            .filter(|variant| variant.get("type").and_then(Value::as_str) != Some("null"))
            .map(|variant| type_of(variant, refs))
            .collect();
        return forms.join(" or ");
    }
    if let Some(values) = node.get("enum").and_then(Value::as_array) {
        let values: Vec<String> = values.iter().filter_map(Value::as_str).map(|value| format!("`{value}`")).collect();
        return format!("one of {}", values.join(", "));
    }
    let types: Vec<&str> = match node.get("type") {
        Some(Value::String(ty)) => vec![ty.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).filter(|ty| *ty != "null").collect(),
        _ => Vec::new(),
    };
    let rendered: Vec<String> = types
        .iter()
        .map(|ty| match *ty {
            "array" => format!("list of {}", node.get("items").map(|items| type_of(items, refs)).unwrap_or_default()),
            "object" => match node.get("additionalProperties") {
                Some(value @ Value::Object(_)) => {
                    format!("map of string to {}", type_of(value, refs))
                }
                _ => "mapping".to_owned(),
            },
            other => other.to_owned(),
        })
        .collect();
    if rendered.is_empty() { "any".to_owned() } else { rendered.join(" or ") }
}

fn one_paragraph(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cell(text: &str) -> String {
    one_paragraph(text).replace('|', "\\|")
}
