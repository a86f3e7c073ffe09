//! Reading the tools' files: a located YAML cursor (each value knows its `FILE:LINE:COL` and path) and a JSON
//! cursor (each value knows its path, such as `monitorList[3].keyword`).

use probenet_checks::yaml::{Mark, Node, NodeKind, join_index, join_key, parse};
use serde_json::Value;

use super::out::{Line, Place};

/// A YAML value with where it is written.
#[derive(Debug, Clone)]
pub struct Y<'a> {
    pub node: &'a Node,
    file: &'a str,
    /// The dotted path, such as `modules.http_2xx.timeout`.
    pub path: String,
    /// Where the value is introduced: its key when it is a mapping value, else the value itself.
    mark: Mark,
}

/// Parses a YAML file, or says where its syntax is wrong.
pub fn parse_yaml(file: &str, text: &str) -> Result<Node, Vec<Line>> {
    parse(text).map_err(|error| {
        let place = Place { file: file.to_owned(), line: error.mark.line, col: error.mark.col, path: String::new() };
        vec![Line::new(place, format!("invalid YAML: {}", error.message))]
    })
}

impl<'a> Y<'a> {
    pub fn root(file: &'a str, node: &'a Node) -> Self {
        Y { node, file, path: String::new(), mark: node.mark }
    }

    pub fn place(&self) -> Place {
        Place { file: self.file.to_owned(), line: self.mark.line, col: self.mark.col, path: self.path.clone() }
    }

    /// A located line at this value.
    pub fn line(&self, message: impl Into<String>) -> Line {
        Line::new(self.place(), message)
    }

    pub fn get(&self, key: &str) -> Option<Y<'a>> {
        let NodeKind::Map(pairs) = &self.node.kind else { return None };
        pairs.iter().find(|(k, _)| k.text == key).map(|(k, v)| Y {
            node: v,
            file: self.file,
            path: join_key(&self.path, key),
            mark: k.mark,
        })
    }

    /// The pairs of a mapping, in order (none for other values).
    pub fn entries(&self) -> Vec<(&'a str, Y<'a>)> {
        let NodeKind::Map(pairs) = &self.node.kind else { return Vec::new() };
        pairs
            .iter()
            .map(|(k, v)| {
                (k.text.as_str(), Y { node: v, file: self.file, path: join_key(&self.path, &k.text), mark: k.mark })
            })
            .collect()
    }

    /// The items of a list; a single value is a list of one; null is empty.
    pub fn items(&self) -> Vec<Y<'a>> {
        match &self.node.kind {
            NodeKind::Seq(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Y { node: v, file: self.file, path: join_index(&self.path, i), mark: v.mark })
                .collect(),
            _ if self.node.is_null() => Vec::new(),
            _ => vec![self.clone()],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.node.kind, NodeKind::Map(_))
    }

    /// The text of a scalar that is not null.
    pub fn str(&self) -> Option<&'a str> {
        match &self.node.kind {
            NodeKind::Scalar { text, .. } if !self.node.is_null() => Some(text),
            _ => None,
        }
    }

    /// A plain `true` or `false`.
    pub fn bool(&self) -> Option<bool> {
        match (&self.node.kind, self.node.type_name()) {
            (NodeKind::Scalar { text, .. }, "a boolean") => Some(text.eq_ignore_ascii_case("true")),
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match (&self.node.kind, self.node.type_name()) {
            (NodeKind::Scalar { text, .. }, "a number") => text.parse().ok(),
            _ => None,
        }
    }
}

/// A JSON value with its path.
#[derive(Debug, Clone)]
pub struct J<'a> {
    pub value: &'a Value,
    file: &'a str,
    pub path: String,
}

/// Parses a JSON file, or says where its syntax is wrong.
pub fn parse_json(file: &str, text: &str) -> Result<Value, Vec<Line>> {
    serde_json::from_str(text).map_err(|error| {
        let message = error.to_string();
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(head, _)| head).to_owned();
        let place = Place { file: file.to_owned(), line: error.line(), col: error.column(), path: String::new() };
        vec![Line::new(place, format!("invalid JSON: {message}"))]
    })
}

impl<'a> J<'a> {
    pub fn root(file: &'a str, value: &'a Value) -> Self {
        J { value, file, path: String::new() }
    }

    pub fn place(&self) -> Place {
        Place { file: self.file.to_owned(), line: 0, col: 0, path: self.path.clone() }
    }

    pub fn line(&self, message: impl Into<String>) -> Line {
        Line::new(self.place(), message)
    }

    pub fn get(&self, key: &str) -> Option<J<'a>> {
        self.value.get(key).map(|value| J { value, file: self.file, path: join_key(&self.path, key) })
    }

    /// The place of `key` under this value, whether or not it is there.
    pub fn key_place(&self, key: &str) -> Place {
        Place { path: join_key(&self.path, key), ..self.place() }
    }

    pub fn entries(&self) -> Vec<(&'a str, J<'a>)> {
        match self.value {
            Value::Object(map) => map
                .iter()
                .map(|(k, value)| (k.as_str(), J { value, file: self.file, path: join_key(&self.path, k) }))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn items(&self) -> Vec<J<'a>> {
        match self.value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, value)| J { value, file: self.file, path: join_index(&self.path, i) })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// A string that is not empty.
    pub fn str(&self) -> Option<&'a str> {
        self.value.as_str().filter(|text| !text.is_empty())
    }

    /// A boolean, also written 0/1 as SQLite exports do.
    pub fn truthy(&self) -> bool {
        match self.value {
            Value::Bool(b) => *b,
            Value::Number(n) => n.as_f64().is_some_and(|v| v != 0.0),
            Value::String(text) => text == "1" || text == "true",
            Value::Null | Value::Array(_) | Value::Object(_) => false,
        }
    }

    /// A number, also written as a string.
    pub fn number(&self) -> Option<f64> {
        match self.value {
            Value::Number(n) => n.as_f64(),
            Value::String(text) => text.trim().parse().ok(),
            Value::Null | Value::Bool(_) | Value::Array(_) | Value::Object(_) => None,
        }
    }
}
