//! Located validation of one YAML file outside `probenet-checks`: every error as `FILE:LINE:COL: PATH: MESSAGE`.
//!
//! `probenet_checks::config::Ctx` keeps its errors crate-private, so this is the same idea in small: deserialize a
//! node, and when a key does not fit, record the error, drop that key from a copy and try again, so that every
//! shape error is reported at once.

use probenet_checks::config::{ConfigError, Path, Place};
use probenet_checks::yaml::{Mark, Node, NodeKind, from_node, join_key};

/// Collects the errors of one file while it is validated.
#[derive(Debug)]
pub(crate) struct Cx<'a> {
    file: &'a str,
    root: &'a Node,
    /// What was found wrong so far.
    pub errors: Vec<ConfigError>,
    /// Paths of keys dropped for not fitting their type (not to be reported missing too).
    pruned: Vec<String>,
}

impl<'a> Cx<'a> {
    /// A context for `file`, whose tree is `root`.
    pub fn new(file: &'a str, root: &'a Node) -> Self {
        Self { file, root, errors: Vec::new(), pruned: Vec::new() }
    }

    /// The node at `path`, if the file has it.
    pub fn node(&self, path: &Path) -> Option<&'a Node> {
        self.root.find(&path.segs())
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

    /// Where the key ending `path` is written (falls back to its value's place).
    pub fn key_mark(&self, path: &Path) -> Mark {
        if let (Some(key), Some(parent)) = (path.last_key(), self.node(&path.parent()))
            && let Some(mark) = parent.key_mark(key)
        {
            return mark;
        }
        self.mark(path)
    }

    /// The place of the key ending `path`.
    pub fn place(&self, path: &Path) -> Place {
        let mark = self.key_mark(path);
        Place { file: self.file.to_owned(), line: mark.line, col: mark.col }
    }

    /// Records an error at the value of `path`.
    pub fn error(&mut self, path: &Path, message: impl Into<String>) {
        let mark = self.mark(path);
        self.push(mark, path.to_string(), message.into());
    }

    /// Records an error at the key ending `path`.
    pub fn error_at_key(&mut self, path: &Path, message: impl Into<String>) {
        let mark = self.key_mark(path);
        self.push(mark, path.to_string(), message.into());
    }

    fn push(&mut self, mark: Mark, path: String, message: String) {
        self.errors.push(ConfigError { file: self.file.to_owned(), line: mark.line, col: mark.col, path, message });
    }

    /// Records that the key ending `path` is missing, unless it was written and dropped for not fitting.
    pub fn missing(&mut self, path: &Path, at: &Path, message: impl Into<String>) {
        if !self.pruned.contains(&path.to_string()) {
            self.error(at, message);
        }
    }

    /// Deserializes the node at `path` into `T`, recording a located error for every key that does not fit and
    /// dropping it, so the value returned (`None` only when nothing fits) lets validation report the rest.
    pub fn deserialize<T: serde::de::DeserializeOwned>(&mut self, path: &Path) -> Option<T> {
        let node = self.node(path)?;
        let base = path.to_string();
        let mut current = node.clone();
        for _ in 0..=count_nodes(node) {
            match from_node::<T>(&current, &base) {
                Ok(value) => return Some(value),
                Err(error) => {
                    self.push(error.mark, error.path.clone(), error.message);
                    match prune(&mut current, &base, &error.path) {
                        Some(dropped) => self.pruned.push(dropped),
                        None => return None,
                    }
                }
            }
        }
        None
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => 1 + entries.iter().map(|(_, value)| count_nodes(value)).sum::<usize>(),
    }
}

/// Removes from `node` (at path `base`) the deepest mapping entry holding the error at `error_path` and returns
/// its path; `None` when the error is about `node` itself (nothing left to drop).
fn prune(node: &mut Node, base: &str, error_path: &str) -> Option<String> {
    let NodeKind::Map(entries) = &mut node.kind else {
        return None;
    };
    let found = entries.iter().position(|(key, _)| {
        let child = join_key(base, &key.text);
        error_path == child || error_path.strip_prefix(&child).is_some_and(|rest| rest.starts_with(['.', '[']))
    });
    let at = found?;
    let child = join_key(base, &entries[at].0.text);
    if error_path != child
        && let Some(dropped) = prune(&mut entries[at].1, &child, error_path)
    {
        return Some(dropped);
    }
    entries.remove(at);
    Some(child)
}
