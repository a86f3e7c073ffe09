//! Dotted paths into the config (`checks[2].http.expect.status[1]`), used to place errors.

use std::fmt;

use crate::yaml::PathSeg;

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// A path from the root of one file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Path(Vec<Seg>);

impl Path {
    /// The root of a file.
    pub fn root() -> Self {
        Self(Vec::new())
    }

    /// This path plus a mapping key.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        Self(segs)
    }

    /// This path plus a list index.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        Self(segs)
    }

    /// The path without its last step (the root stays the root).
    pub fn parent(&self) -> Self {
        let mut segs = self.0.clone();
        segs.pop();
        Self(segs)
    }

    /// The last key of the path, if it ends in a key.
    pub fn last_key(&self) -> Option<&str> {
        match self.0.last() {
            Some(Seg::Key(key)) => Some(key),
            _ => None,
        }
    }

    /// Whether this is the root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The path in the form the YAML tree looks up.
    pub fn segs(&self) -> Vec<PathSeg<'_>> {
        self.0
            .iter()
            .map(|seg| match seg {
                Seg::Key(key) => PathSeg::Key(key),
                Seg::Index(index) => PathSeg::Index(*index),
            })
            .collect()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(key) if !is_simple(key) => write!(f, "[{key:?}]")?,
                Seg::Key(key) if i == 0 => f.write_str(key)?,
                Seg::Key(key) => write!(f, ".{key}")?,
                Seg::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Keys written bare in a path; any other key is written `["like this"]`, as the YAML module does.
fn is_simple(key: &str) -> bool {
    !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_like_users_read_it() {
        let path = Path::root().key("checks").index(2).key("http").key("expect").key("status").index(1);
        assert_eq!(path.to_string(), "checks[2].http.expect.status[1]");
        assert_eq!(path.parent().to_string(), "checks[2].http.expect.status");
        assert_eq!(Path::root().to_string(), "");
        assert_eq!(Path::root().key("regions").key("EU West").to_string(), "regions[\"EU West\"]");
    }
}
