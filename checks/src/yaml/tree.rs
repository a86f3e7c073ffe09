//! Located YAML tree: parses one YAML document into `Node`s that remember their line and column.

use std::collections::HashMap;
use std::fmt;

use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, Tag};

/// Maximum number of nested collections in a document (after expanding aliases).
pub const MAX_DEPTH: usize = 64;
/// Maximum number of nodes in a document, aliases expanded. A file is at most 16 MiB, so this only stops a
/// document that aliases blow up; a file of many checks written out (10,000 checks is about 300,000 nodes)
/// stays well under it.
pub const MAX_NODES: usize = 4_000_000;
/// Maximum number of nodes that aliases add by expanding (the "billion laughs" bound): aliases are for sharing
/// a few defaults, not for multiplying a document.
pub const MAX_ALIAS_NODES: usize = 100_000;

/// A place in the source: 1-based line and 1-based column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mark {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column number, counted in characters.
    pub col: usize,
}

impl Mark {
    fn from_marker(m: Marker) -> Self {
        Mark { line: m.line(), col: m.col() + 1 }
    }
}

/// The shape and content of a node.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar with its source text; `plain` is false for quoted, literal (|) and folded (>) scalars and for `!!str`-tagged ones.
    Scalar {
        /// The scalar's value, after unescaping/folding.
        text: String,
        /// Whether the scalar was written plain (unquoted, untagged as a string).
        plain: bool,
    },
    /// A sequence (list).
    Seq(Vec<Node>),
    /// Keys keep source order; keys are always scalars (text of the key).
    Map(Vec<(Key, Node)>),
}

/// A mapping key: its text and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// The key's text.
    pub text: String,
    /// Where the key is written.
    pub mark: Mark,
}

/// A YAML node with its source location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where the node starts.
    pub mark: Mark,
}

/// A YAML syntax or structure error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    /// Where the problem is.
    pub mark: Mark,
    /// A short, user-facing description.
    pub message: String,
}

impl YamlError {
    fn new(mark: Mark, message: impl Into<String>) -> Self {
        YamlError { mark, message: message.into() }
    }
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for YamlError {}

/// One step of a path into a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathSeg<'a> {
    /// A mapping key.
    Key(&'a str),
    /// A sequence index (0-based).
    Index(usize),
}

/// How a plain scalar resolves under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Plain {
    Null,
    Bool(bool),
    /// An integer; `None` when it does not fit in an `i128`.
    Int(Option<i128>),
    Float(f64),
    Str,
}

/// Resolves a plain scalar's text per the YAML 1.2 core schema.
pub(super) fn resolve_plain(text: &str) -> Plain {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Plain::Null,
        "true" | "True" | "TRUE" => return Plain::Bool(true),
        "false" | "False" | "FALSE" => return Plain::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return Plain::Float(f64::NAN),
        _ => {}
    }
    if let Some(int) = resolve_int(text) {
        return Plain::Int(int);
    }
    let (negative, unsigned) = match (text.strip_prefix('-'), text.strip_prefix('+')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        (None, None) => (false, text),
    };
    if matches!(unsigned, ".inf" | ".Inf" | ".INF") {
        return Plain::Float(if negative { f64::NEG_INFINITY } else { f64::INFINITY });
    }
    if is_float_syntax(unsigned)
        && let Ok(v) = text.parse::<f64>()
    {
        return Plain::Float(v);
    }
    Plain::Str
}

/// `Some(parsed)` if `text` is a core-schema integer (`None` inside when it overflows `i128`).
fn resolve_int(text: &str) -> Option<Option<i128>> {
    let all = |s: &str, f: fn(&u8) -> bool| !s.is_empty() && s.as_bytes().iter().all(f);
    if let Some(hex) = text.strip_prefix("0x") {
        return all(hex, u8::is_ascii_hexdigit).then(|| i128::from_str_radix(hex, 16).ok());
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return all(oct, |b| (b'0'..=b'7').contains(b)).then(|| i128::from_str_radix(oct, 8).ok());
    }
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    all(digits, u8::is_ascii_digit).then(|| text.parse::<i128>().ok())
}

/// `(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?`
fn is_float_syntax(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let frac = digits(&mut i);
        if int_digits == 0 && frac == 0 {
            return false;
        }
    } else if int_digits == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Quotes `text` for a message: escapes quotes and control characters, truncates to `max` chars.
pub(super) fn quote(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max) + 2);
    out.push('"');
    for (i, c) in text.chars().enumerate() {
        if i == max {
            out.push_str("...");
            break;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.extend(c.escape_unicode()),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Node {
    /// The tree of a JSON value, unplaced (marks 0:0): strings become quoted scalars (always strings), numbers,
    /// booleans and null plain ones. [`super::emit`] writes it as YAML the config reads as that JSON.
    pub fn from_json(value: &serde_json::Value) -> Node {
        use serde_json::Value;
        let plain = |text: String| NodeKind::Scalar { text, plain: true };
        let kind = match value {
            Value::Null => plain("null".to_owned()),
            Value::Bool(value) => plain(value.to_string()),
            Value::Number(number) => plain(number.to_string()),
            Value::String(text) => NodeKind::Scalar { text: text.clone(), plain: false },
            Value::Array(items) => NodeKind::Seq(items.iter().map(Node::from_json).collect()),
            Value::Object(fields) => NodeKind::Map(
                fields
                    .iter()
                    .map(|(key, value)| (Key { text: key.clone(), mark: Mark::default() }, Node::from_json(value)))
                    .collect(),
            ),
        };
        Node { kind, mark: Mark::default() }
    }

    /// True for a plain scalar `""`, `~`, `null`, `Null` or `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if resolve_plain(text) == Plain::Null)
    }

    /// Looks up `key` in a mapping; `None` if absent or if this is not a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(pairs) => pairs.iter().find(|(k, _)| k.text == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Where `key` itself is written in this mapping.
    pub fn key_mark(&self, key: &str) -> Option<Mark> {
        match &self.kind {
            NodeKind::Map(pairs) => pairs.iter().find(|(k, _)| k.text == key).map(|(k, _)| k.mark),
            _ => None,
        }
    }

    /// Follows `path` from this node.
    pub fn find(&self, path: &[PathSeg<'_>]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.kind) {
                (PathSeg::Key(k), NodeKind::Map(_)) => node.get(k)?,
                (PathSeg::Index(i), NodeKind::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// A user-facing name of this node's type ("a string", "a number", "a boolean", "null", "a list", "a mapping").
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { plain: false, .. } => "a string",
            NodeKind::Scalar { text, plain: true } => match resolve_plain(text) {
                Plain::Null => "null",
                Plain::Bool(_) => "a boolean",
                Plain::Int(_) | Plain::Float(_) => "a number",
                Plain::Str => "a string",
            },
            NodeKind::Seq(_) => "a list",
            NodeKind::Map(_) => "a mapping",
        }
    }
}

/// An anchored node kept for aliases, with its size (node count) and height (collection nesting).
struct Anchored {
    node: Node,
    size: usize,
    height: usize,
}

enum FrameKind {
    Seq(Vec<Node>),
    Map {
        pairs: Vec<(Key, Node)>,
        /// Key text -> where it was first written (explicit keys only).
        seen: HashMap<String, Mark>,
        /// The key waiting for its value, and whether it is a merge key (`<<`).
        pending: Option<(Key, bool)>,
        /// Merge values with the index in `pairs` where they were written.
        merges: Vec<(usize, Node)>,
    },
}

struct Frame {
    kind: FrameKind,
    mark: Mark,
    anchor: usize,
    size: usize,
    height: usize,
}

struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Anchored>,
    /// Nodes in the tree so far (aliases counted expanded).
    nodes: usize,
    /// Nodes held as anchor copies.
    anchor_nodes: usize,
    /// Nodes added by expanding aliases.
    alias_nodes: usize,
    root: Option<Node>,
}

fn too_large(mark: Mark) -> YamlError {
    YamlError::new(mark, format!("document too large: more than {MAX_NODES} nodes after expanding aliases"))
}

fn too_many_aliased(mark: Mark) -> YamlError {
    YamlError::new(mark, format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"))
}

fn too_deep(mark: Mark) -> YamlError {
    YamlError::new(mark, format!("nesting deeper than {MAX_DEPTH} levels"))
}

fn tag_name(tag: &Tag) -> String {
    if tag.is_yaml_core_schema() {
        format!("!!{}", tag.suffix)
    } else if tag.handle == "!" {
        format!("!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

/// Checks a tag; returns whether it forces a string (`!!str` or the non-specific `!`).
fn check_tag(tag: Option<&Tag>, mark: Mark) -> Result<bool, YamlError> {
    let Some(tag) = tag else { return Ok(false) };
    if tag.is_yaml_core_schema() {
        match tag.suffix.as_str() {
            "str" => return Ok(true),
            "int" | "float" | "bool" | "null" | "map" | "seq" => return Ok(false),
            _ => {}
        }
    } else if tag.handle.is_empty() && tag.suffix == "!" {
        return Ok(true);
    }
    Err(YamlError::new(mark, format!("unsupported tag {}", quote(&tag_name(tag), 60))))
}

fn scan_error(err: &ScanError) -> YamlError {
    let info = err.info();
    let message = if info.contains("unknown anchor") {
        "unknown alias (no anchor with that name before it)".to_string()
    } else if info == "did not find expected <document start>" {
        "unexpected content after the document (check the indentation)".to_string()
    } else if let Some(rest) = info.strip_prefix("unexpected character: `") {
        let c = rest.strip_suffix('\'').unwrap_or(rest);
        format!("unexpected character {}", quote(c, 10))
    } else {
        info.to_string()
    };
    YamlError::new(Mark::from_marker(*err.marker()), message)
}

impl Builder {
    fn count(&mut self, n: usize, mark: Mark) -> Result<(), YamlError> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES {
            return Err(too_large(mark));
        }
        Ok(())
    }

    /// Opens a collection after checking depth and key position.
    fn open(&mut self, kind: FrameKind, mark: Mark, anchor: usize) -> Result<(), YamlError> {
        self.check_not_key(mark)?;
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(mark));
        }
        self.count(1, mark)?;
        self.stack.push(Frame { kind, mark, anchor, size: 1, height: 1 });
        Ok(())
    }

    fn check_not_key(&self, mark: Mark) -> Result<(), YamlError> {
        if let Some(Frame { kind: FrameKind::Map { pending: None, .. }, .. }) = self.stack.last() {
            return Err(YamlError::new(mark, "mapping keys must be plain strings"));
        }
        Ok(())
    }

    fn close(&mut self, mark: Mark) -> Result<(), YamlError> {
        let Some(frame) = self.stack.pop() else {
            return Err(YamlError::new(mark, "unbalanced collection end"));
        };
        let kind = match frame.kind {
            FrameKind::Seq(items) => NodeKind::Seq(items),
            FrameKind::Map { pairs, seen, pending, merges } => {
                if let Some((key, _)) = pending {
                    return Err(YamlError::new(key.mark, "mapping key without a value"));
                }
                NodeKind::Map(apply_merges(pairs, seen, merges)?)
            }
        };
        let node = Node { kind, mark: frame.mark };
        self.finish(node, frame.anchor, frame.size, frame.height, false)
    }

    /// Registers an anchor if any, then attaches the node to its parent.
    fn finish(&mut self, node: Node, anchor: usize, size: usize, height: usize, plain: bool) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchor_nodes = self.anchor_nodes.saturating_add(size);
            if self.anchor_nodes > MAX_NODES {
                return Err(too_large(node.mark));
            }
            self.anchors.insert(anchor, Anchored { node: node.clone(), size, height });
        }
        self.attach(node, size, height, plain)
    }

    fn attach(&mut self, node: Node, size: usize, height: usize, plain: bool) -> Result<(), YamlError> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        frame.size = frame.size.saturating_add(size);
        frame.height = frame.height.max(height + 1);
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map { pairs, seen, pending, merges } => match pending.take() {
                None => {
                    let NodeKind::Scalar { text, .. } = node.kind else {
                        return Err(YamlError::new(node.mark, "mapping keys must be plain strings"));
                    };
                    let is_merge = plain && text == "<<";
                    if let Some(first) = seen.get(&text) {
                        return Err(YamlError::new(
                            node.mark,
                            format!(
                                "duplicate key {} (first at line {} column {})",
                                quote(&text, 40),
                                first.line,
                                first.col
                            ),
                        ));
                    }
                    seen.insert(text.clone(), node.mark);
                    *pending = Some((Key { text, mark: node.mark }, is_merge));
                }
                Some((_, true)) => merges.push((pairs.len(), node)),
                Some((key, false)) => pairs.push((key, node)),
            },
        }
        Ok(())
    }

    fn alias(&mut self, id: usize, mark: Mark) -> Result<(), YamlError> {
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(YamlError::new(mark, "alias refers to a node that is not complete yet (recursive alias)"));
        };
        let (size, height) = (anchored.size, anchored.height);
        if height > 0 {
            self.check_not_key(mark)?;
        }
        if self.stack.len() + height > MAX_DEPTH {
            return Err(too_deep(mark));
        }
        self.alias_nodes = self.alias_nodes.saturating_add(size);
        if self.alias_nodes > MAX_ALIAS_NODES {
            return Err(too_many_aliased(mark));
        }
        self.count(size, mark)?;
        // Bounded recursion: the clone is at most MAX_DEPTH deep and MAX_NODES large.
        let Some(anchored) = self.anchors.get(&id) else {
            return Err(YamlError::new(mark, "unknown alias"));
        };
        let mut node = anchored.node.clone();
        node.mark = mark;
        let plain = matches!(node.kind, NodeKind::Scalar { plain: true, .. });
        self.attach(node, size, height, plain)
    }
}

/// Splices merged (`<<`) pairs into `pairs`; explicit keys win, earlier merge sources win.
fn apply_merges(
    pairs: Vec<(Key, Node)>,
    mut seen: HashMap<String, Mark>,
    merges: Vec<(usize, Node)>,
) -> Result<Vec<(Key, Node)>, YamlError> {
    if merges.is_empty() {
        return Ok(pairs);
    }
    let mut inserts: Vec<(usize, Vec<(Key, Node)>)> = Vec::new();
    for (at, value) in merges {
        let bad = |mark| YamlError::new(mark, "a merge key (<<) needs a mapping or a list of mappings");
        let sources = match value.kind {
            NodeKind::Map(p) => vec![p],
            NodeKind::Seq(items) => {
                let mut maps = Vec::with_capacity(items.len());
                for item in items {
                    match item.kind {
                        NodeKind::Map(p) => maps.push(p),
                        _ => return Err(bad(item.mark)),
                    }
                }
                maps
            }
            NodeKind::Scalar { .. } => return Err(bad(value.mark)),
        };
        let mut merged = Vec::new();
        for source in sources {
            for (k, v) in source {
                if !seen.contains_key(&k.text) {
                    seen.insert(k.text.clone(), k.mark);
                    merged.push((k, v));
                }
            }
        }
        inserts.push((at, merged));
    }
    let extra: usize = inserts.iter().map(|(_, m)| m.len()).sum();
    let mut out = Vec::with_capacity(pairs.len() + extra);
    let mut inserts = inserts.into_iter().peekable();
    for (i, pair) in pairs.into_iter().enumerate() {
        while let Some((_, merged)) = inserts.next_if(|(at, _)| *at == i) {
            out.extend(merged);
        }
        out.push(pair);
    }
    for (_, merged) in inserts {
        out.extend(merged);
    }
    Ok(out)
}

/// Parse one YAML document. An empty input (or only comments) gives a plain empty scalar (null).
pub fn parse(src: &str) -> Result<Node, YamlError> {
    let mut parser = Parser::new_from_str(src);
    let mut b =
        Builder { stack: Vec::new(), anchors: HashMap::new(), nodes: 0, anchor_nodes: 0, alias_nodes: 0, root: None };
    let mut documents = 0usize;
    let mut end = Mark { line: 1, col: 1 };
    while let Some(next) = parser.next_event() {
        let (event, span) = next.map_err(|e| scan_error(&e))?;
        let mark = Mark::from_marker(span.start);
        end = mark;
        match event {
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => {}
            Event::StreamEnd => break,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(YamlError::new(mark, "only one YAML document per file is supported"));
                }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let forced_str = check_tag(tag.as_deref(), mark)?;
                let plain = style == ScalarStyle::Plain && !forced_str;
                b.count(1, mark)?;
                let node = Node { kind: NodeKind::Scalar { text: text.into_owned(), plain }, mark };
                b.finish(node, anchor, 1, 0, plain)?;
            }
            Event::SequenceStart(anchor, tag) => {
                check_tag(tag.as_deref(), mark)?;
                b.open(FrameKind::Seq(Vec::new()), mark, anchor)?;
            }
            Event::MappingStart(anchor, tag) => {
                check_tag(tag.as_deref(), mark)?;
                let kind =
                    FrameKind::Map { pairs: Vec::new(), seen: HashMap::new(), pending: None, merges: Vec::new() };
                b.open(kind, mark, anchor)?;
            }
            Event::SequenceEnd | Event::MappingEnd => b.close(mark)?,
            Event::Alias(id) => b.alias(id, mark)?,
        }
    }
    if !b.stack.is_empty() {
        return Err(YamlError::new(end, "unexpected end of input"));
    }
    Ok(b.root.unwrap_or(Node {
        kind: NodeKind::Scalar { text: String::new(), plain: true },
        mark: Mark { line: 1, col: 1 },
    }))
}
