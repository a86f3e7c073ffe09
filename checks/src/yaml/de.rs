//! Serde deserializer over a located YAML tree; every error carries the innermost node's mark and dotted path.

use std::fmt;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, EnumAccess, Expected, MapAccess, SeqAccess, Unexpected, VariantAccess,
    Visitor,
};

use super::tree::{Key, Mark, Node, NodeKind, Plain, quote, resolve_plain};

/// Longest text (in characters) quoted in an error message.
const QUOTE_MAX: usize = 40;

/// A deserialization error: where, which path, what.
///
/// An error whose `mark` is `Mark::default()` (line 0) is not located yet; the deserializer
/// fills in the innermost node's mark and path when the error passes through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    /// Where the offending node (or key) is written.
    pub mark: Mark,
    /// Dotted path of the offending node, e.g. `checks[2].http.expect.status[1]`.
    pub path: String,
    /// A short, user-facing description.
    pub message: String,
}

impl DeError {
    /// A located error.
    pub fn new(mark: Mark, path: impl Into<String>, message: impl Into<String>) -> Self {
        DeError { mark, path: path.into(), message: message.into() }
    }

    fn unlocated(message: String) -> Self {
        DeError { mark: Mark::default(), path: String::new(), message }
    }

    /// Fills in mark and path unless the error is already located (innermost location wins).
    pub(super) fn located(mut self, mark: Mark, path: &str) -> Self {
        if self.mark == Mark::default() {
            self.mark = mark;
            path.clone_into(&mut self.path);
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// Picks the candidate closest to `input`, if any is close enough to suggest.
fn suggest<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let input = input.to_lowercase();
    let mut best: Option<(&'a str, f64)> = None;
    for &cand in candidates {
        let lower = cand.to_lowercase();
        let jw = strsim::jaro_winkler(&input, &lower);
        let lev = strsim::levenshtein(&input, &lower);
        let shortest = input.chars().count().min(lower.chars().count());
        let close = jw >= 0.8 || (lev <= 2 && lev < shortest);
        if close && best.is_none_or(|(_, score)| jw > score) {
            best = Some((cand, jw));
        }
    }
    best.map(|(cand, _)| cand)
}

/// `unknown {what} "x" (did you mean "y"?)` or `unknown {what} "x"; expected one of: a, b`.
fn unknown(what: &str, input: &str, expected: &[&str]) -> String {
    let head = format!("unknown {what} {}", quote(input, QUOTE_MAX));
    if let Some(best) = suggest(input, expected) {
        format!("{head} (did you mean {}?)", quote(best, QUOTE_MAX))
    } else if expected.is_empty() {
        head
    } else {
        format!("{head}; expected one of: {}", expected.join(", "))
    }
}

/// Describes what serde found, without Rust type names.
fn describe_unexpected(u: Unexpected<'_>) -> String {
    match u {
        Unexpected::Bool(_) => "a boolean".into(),
        Unexpected::Unsigned(n) => format!("the number {n}"),
        Unexpected::Signed(n) => format!("the number {n}"),
        Unexpected::Float(n) => format!("the number {n}"),
        Unexpected::Char(c) => format!("a string {}", quote(c.encode_utf8(&mut [0; 4]), QUOTE_MAX)),
        Unexpected::Str(s) => format!("a string {}", quote(s, QUOTE_MAX)),
        Unexpected::Bytes(_) => "binary data".into(),
        Unexpected::Unit | Unexpected::Option => "null".into(),
        Unexpected::NewtypeStruct => "a value".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a mapping".into(),
        Unexpected::Enum => "a choice".into(),
        Unexpected::UnitVariant => "a name".into(),
        Unexpected::NewtypeVariant | Unexpected::TupleVariant | Unexpected::StructVariant => "a mapping".into(),
        Unexpected::Other(s) => s.into(),
    }
}

/// Rewrites serde's `Expected` descriptions (which may name Rust types) into user terms.
fn humanize_expected(exp: &dyn Expected) -> String {
    let s = exp.to_string();
    let count = |rest: &str| {
        rest.split(' ')
            .find_map(|w| w.parse::<usize>().ok())
            .map_or_else(|| "a list".to_string(), |n| format!("a list of {n} items"))
    };
    match s.as_str() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            "an integer".into()
        }
        "f32" | "f64" => "a number".into(),
        "bool" | "a boolean" => "a boolean".into(),
        "char" | "a character" => "a single character".into(),
        "a string" | "a borrowed string" | "string" => "a string".into(),
        "option" => "a value or null".into(),
        "unit" => "null".into(),
        "a map" => "a mapping".into(),
        "a sequence" => "a list".into(),
        "field identifier" => "a field name".into(),
        "variant identifier" => "a variant name".into(),
        _ if s.starts_with("unit struct ") || s.starts_with("unit variant") => "null".into(),
        _ if s.starts_with("struct ") || s.starts_with("struct variant ") => "a mapping".into(),
        _ if s.starts_with("tuple") || s.starts_with("a tuple") || s.starts_with("an array") => count(&s),
        _ if s.starts_with("newtype ") || s.starts_with("enum ") || s.contains("::") => "a valid value".into(),
        _ => s,
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::unlocated(msg.to_string())
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        DeError::unlocated(format!("expected {}, found {}", humanize_expected(exp), describe_unexpected(unexp)))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        let items = if len == 1 { "item" } else { "items" };
        DeError::unlocated(format!("expected {}, found {len} {items}", humanize_expected(exp)))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::unlocated(unknown("variant", variant, expected))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError::unlocated(unknown("field", field, expected))
    }

    fn missing_field(field: &'static str) -> Self {
        DeError::unlocated(format!("missing field {}", quote(field, QUOTE_MAX)))
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError::unlocated(format!("duplicate field {}", quote(field, QUOTE_MAX)))
    }
}

/// Appends a mapping key to a dotted path: `a.b`, or `a["x.y"]` for keys that are not simple names.
pub fn join_key(prefix: &str, key: &str) -> String {
    let simple = !key.is_empty() && key.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    match (simple, prefix.is_empty()) {
        (true, true) => key.to_string(),
        (true, false) => format!("{prefix}.{key}"),
        (false, _) => format!("{prefix}[{}]", quote(key, usize::MAX)),
    }
}

/// Appends a sequence index to a dotted path: `a[3]`.
pub fn join_index(prefix: &str, index: usize) -> String {
    format!("{prefix}[{index}]")
}

/// Deserialize `T` from `node`; `path` is the dotted path of `node` itself (e.g. "checks[2]"), used as the prefix of error paths.
pub fn from_node<T: DeserializeOwned>(node: &Node, path: &str) -> Result<T, DeError> {
    T::deserialize(De::node(node, path.to_string())).map_err(|e| e.located(node.mark, path))
}

/// What a deserializer looks at: a node's content, or a mapping key (always a string-ish scalar).
#[derive(Clone, Copy)]
enum View<'de> {
    Scalar {
        text: &'de str,
        plain: bool,
        /// Keys are never null and deserialize as strings in `deserialize_any`.
        key: bool,
    },
    Seq(&'de [Node]),
    Map(&'de [(Key, Node)]),
}

struct De<'de> {
    view: View<'de>,
    mark: Mark,
    path: String,
}

impl<'de> De<'de> {
    fn node(node: &'de Node, path: String) -> Self {
        let view = match &node.kind {
            NodeKind::Scalar { text, plain } => View::Scalar { text, plain: *plain, key: false },
            NodeKind::Seq(items) => View::Seq(items),
            NodeKind::Map(pairs) => View::Map(pairs),
        };
        De { view, mark: node.mark, path }
    }

    fn key(key: &'de Key, path: String) -> Self {
        De { view: View::Scalar { text: &key.text, plain: true, key: true }, mark: key.mark, path }
    }

    fn locate(&self, e: DeError) -> DeError {
        e.located(self.mark, &self.path)
    }

    fn err(&self, message: String) -> DeError {
        DeError::new(self.mark, self.path.clone(), message)
    }

    /// Resolution of a plain scalar; `None` for quoted scalars and collections. Keys are never null.
    fn resolved(&self) -> Option<Plain> {
        match self.view {
            View::Scalar { text, plain: true, .. } => match (resolve_plain(text), self.view) {
                (Plain::Null, View::Scalar { key: true, .. }) => Some(Plain::Str),
                (p, _) => Some(p),
            },
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        self.resolved() == Some(Plain::Null)
    }

    fn found(&self) -> String {
        match self.view {
            View::Scalar { text, .. } => match self.resolved() {
                Some(Plain::Null) => "null".into(),
                Some(Plain::Bool(_)) => "a boolean".into(),
                Some(Plain::Int(_) | Plain::Float(_)) => format!("the number {text}"),
                Some(Plain::Str) | None => format!("a string {}", quote(text, QUOTE_MAX)),
            },
            View::Seq(_) => "a list".into(),
            View::Map(_) => "a mapping".into(),
        }
    }

    fn expected(&self, what: &str) -> DeError {
        self.err(format!("expected {what}, found {}", self.found()))
    }

    fn text(&self) -> &'de str {
        match self.view {
            View::Scalar { text, .. } => text,
            View::Seq(_) | View::Map(_) => "",
        }
    }

    fn int(&self, min: i128, max: i128) -> Result<i128, DeError> {
        match self.resolved() {
            Some(Plain::Int(Some(v))) if (min..=max).contains(&v) => Ok(v),
            Some(Plain::Int(_)) => {
                Err(self.err(format!("{} is out of range for this field ({min} to {max})", self.text())))
            }
            _ => Err(self.expected("an integer")),
        }
    }

    fn float(&self) -> Result<f64, DeError> {
        match self.resolved() {
            #[allow(clippy::cast_precision_loss)]
            Some(Plain::Int(Some(v))) => Ok(v as f64),
            Some(Plain::Float(v)) => Ok(v),
            Some(Plain::Int(None)) => self
                .text()
                .parse::<f64>()
                .map_err(|_| self.err(format!("{} is out of range for this field", self.text()))),
            _ => Err(self.expected("a number")),
        }
    }

    fn seq<V: Visitor<'de>>(self, items: &'de [Node], visitor: V) -> Result<V::Value, DeError> {
        let mut acc = SeqAcc { iter: items.iter().enumerate(), parent: &self.path };
        let value = visitor.visit_seq(&mut acc).map_err(|e| self.locate(e))?;
        let left = acc.iter.len();
        if left > 0 {
            let used = items.len() - left;
            return Err(self.err(format!("expected a list of {used} items, found {} items", items.len())));
        }
        Ok(value)
    }

    fn map<V: Visitor<'de>>(self, pairs: &'de [(Key, Node)], visitor: V) -> Result<V::Value, DeError> {
        let mut acc = MapAcc { iter: pairs.iter(), parent: &self.path, value: None, last_key: None };
        match visitor.visit_map(&mut acc) {
            Ok(v) => Ok(v),
            Err(e) => match acc.last_key {
                Some((mark, path)) if e.message.starts_with("duplicate field ") => Err(e.located(mark, &path)),
                _ => Err(self.locate(e)),
            },
        }
    }
}

/// One scalar seen as a list of one (see [`crate::config::OneOrMany`]).
struct One<'de>(Option<De<'de>>);

impl<'de> SeqAccess<'de> for One<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        self.0.take().map(|de| seed.deserialize(de)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(usize::from(self.0.is_some()))
    }
}

macro_rules! de_int {
    ($method:ident, $ty:ty, $visit:ident) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let v = self.int(i128::from(<$ty>::MIN), i128::from(<$ty>::MAX))?;
            let v = <$ty>::try_from(v).map_err(|_| self.expected("an integer"))?;
            visitor.$visit(v).map_err(|e| self.locate(e))
        }
    };
}

impl<'de> de::Deserializer<'de> for De<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.view {
            View::Seq(items) => return self.seq(items, visitor),
            View::Map(pairs) => return self.map(pairs, visitor),
            View::Scalar { text, key: true, .. } | View::Scalar { text, plain: false, .. } => {
                visitor.visit_borrowed_str(text)
            }
            View::Scalar { text, .. } => match resolve_plain(text) {
                Plain::Null => visitor.visit_unit(),
                Plain::Bool(b) => visitor.visit_bool(b),
                Plain::Int(Some(v)) => {
                    if let Ok(u) = u64::try_from(v) {
                        visitor.visit_u64(u)
                    } else if let Ok(i) = i64::try_from(v) {
                        visitor.visit_i64(i)
                    } else {
                        #[allow(clippy::cast_precision_loss)]
                        visitor.visit_f64(v as f64)
                    }
                }
                Plain::Int(None) => match text.parse::<f64>() {
                    Ok(f) => visitor.visit_f64(f),
                    Err(_) => visitor.visit_borrowed_str(text),
                },
                Plain::Float(f) => visitor.visit_f64(f),
                Plain::Str => visitor.visit_borrowed_str(text),
            },
        };
        result.map_err(|e| self.locate(e))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.resolved() {
            Some(Plain::Bool(b)) => visitor.visit_bool(b).map_err(|e| self.locate(e)),
            _ => Err(self.expected("a boolean")),
        }
    }

    de_int!(deserialize_i8, i8, visit_i8);
    de_int!(deserialize_i16, i16, visit_i16);
    de_int!(deserialize_i32, i32, visit_i32);
    de_int!(deserialize_i64, i64, visit_i64);
    de_int!(deserialize_u8, u8, visit_u8);
    de_int!(deserialize_u16, u16, visit_u16);
    de_int!(deserialize_u32, u32, visit_u32);
    de_int!(deserialize_u64, u64, visit_u64);
    de_int!(deserialize_i128, i128, visit_i128);

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let v = self.int(0, i128::MAX)?;
        let v = u128::try_from(v).map_err(|_| self.expected("an integer"))?;
        visitor.visit_u128(v).map_err(|e| self.locate(e))
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let v = self.float()?;
        #[allow(clippy::cast_possible_truncation)]
        let narrow = v as f32;
        if v.is_finite() && !narrow.is_finite() {
            return Err(self.err(format!("{} is out of range for this field", self.text())));
        }
        visitor.visit_f32(narrow).map_err(|e| self.locate(e))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let v = self.float()?;
        visitor.visit_f64(v).map_err(|e| self.locate(e))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let mut chars = self.text().chars();
        match (self.view, chars.next(), chars.next()) {
            (View::Scalar { .. }, Some(c), None) if !self.is_null() => {
                visitor.visit_char(c).map_err(|e| self.locate(e))
            }
            _ => Err(self.expected("a single character")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.view {
            View::Scalar { text, .. } if !self.is_null() => {
                visitor.visit_borrowed_str(text).map_err(|e| self.locate(e))
            }
            _ => Err(self.expected("a string")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, DeError> {
        Err(self.err("binary data is not supported".into()))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            visitor.visit_none().map_err(|e| self.locate(e))
        } else {
            let (mark, path) = (self.mark, self.path.clone());
            visitor.visit_some(self).map_err(|e| e.located(mark, &path))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() { visitor.visit_unit().map_err(|e| self.locate(e)) } else { Err(self.expected("null")) }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        let (mark, path) = (self.mark, self.path.clone());
        // A list written as its one item (`rcode: NOERROR`): a list of one, the item located at the scalar.
        if name == crate::config::ONE_OR_MANY {
            match self.view {
                View::Scalar { .. } if !self.is_null() => {
                    return visitor.visit_seq(One(Some(self))).map_err(|e| e.located(mark, &path));
                }
                View::Map(_) => return Err(self.expected("a value or a list")),
                View::Scalar { .. } | View::Seq(_) => {}
            }
        }
        visitor.visit_newtype_struct(self).map_err(|e| e.located(mark, &path))
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.view {
            View::Seq(items) => self.seq(items, visitor),
            _ => Err(self.expected("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.view {
            View::Map(pairs) => self.map(pairs, visitor),
            _ => Err(self.expected("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let one_of = format!("expected exactly one of: {}", variants.join(", "));
        let access = match self.view {
            View::Scalar { .. } if self.is_null() => {
                return Err(self.err(format!("{one_of}, found null")));
            }
            View::Scalar { text, plain, .. } => EnumAcc {
                name: text,
                name_de: De { view: View::Scalar { text, plain, key: true }, mark: self.mark, path: self.path.clone() },
                value: None,
            },
            View::Map([(key, value)]) => {
                let path = join_key(&self.path, &key.text);
                EnumAcc { name: &key.text, name_de: De::key(key, path), value: Some(value) }
            }
            View::Map(_) => return Err(self.err(one_of)),
            View::Seq(_) => return Err(self.err(format!("{one_of}, found a list"))),
        };
        visitor.visit_enum(access).map_err(|e| self.locate(e))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.view {
            View::Scalar { text, .. } => visitor.visit_borrowed_str(text).map_err(|e| self.locate(e)),
            _ => Err(self.expected("a name")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit().map_err(|e| self.locate(e))
    }

    fn is_human_readable(&self) -> bool {
        true
    }
}

struct SeqAcc<'a, 'de> {
    iter: std::iter::Enumerate<std::slice::Iter<'de, Node>>,
    parent: &'a str,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_, 'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DeError> {
        let Some((i, node)) = self.iter.next() else {
            return Ok(None);
        };
        let path = join_index(self.parent, i);
        // Locate here too: a `Deserialize` impl may fail after our deserializer returned.
        seed.deserialize(De::node(node, path.clone())).map(Some).map_err(|e| e.located(node.mark, &path))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct MapAcc<'a, 'de> {
    iter: std::slice::Iter<'de, (Key, Node)>,
    parent: &'a str,
    /// The value of the key just returned, with its path.
    value: Option<(&'de Node, String)>,
    /// Mark and path of the key just returned.
    last_key: Option<(Mark, String)>,
}

impl<'de> MapAccess<'de> for MapAcc<'_, 'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        let Some((key, node)) = self.iter.next() else {
            return Ok(None);
        };
        let path = join_key(self.parent, &key.text);
        let k = seed.deserialize(De::key(key, path.clone())).map_err(|e| e.located(key.mark, &path))?;
        self.last_key = Some((key.mark, path.clone()));
        self.value = Some((node, path));
        Ok(Some(k))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, DeError> {
        match self.value.take() {
            Some((node, path)) => {
                seed.deserialize(De::node(node, path.clone())).map_err(|e| e.located(node.mark, &path))
            }
            None => Err(de::Error::custom("a value was requested before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct EnumAcc<'de> {
    /// The variant name as written.
    name: &'de str,
    /// Deserializer for the variant name (the scalar, or the single key).
    name_de: De<'de>,
    /// The value under the single key, if written as a mapping.
    value: Option<&'de Node>,
}

struct VariantAcc<'de> {
    name: &'de str,
    mark: Mark,
    path: String,
    value: Option<&'de Node>,
}

impl<'de> EnumAccess<'de> for EnumAcc<'de> {
    type Error = DeError;
    type Variant = VariantAcc<'de>;

    fn variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<(T::Value, VariantAcc<'de>), DeError> {
        let (mark, path) = (self.name_de.mark, self.name_de.path.clone());
        let v = seed.deserialize(self.name_de).map_err(|e| e.located(mark, &path))?;
        Ok((v, VariantAcc { name: self.name, mark, path, value: self.value }))
    }
}

impl VariantAcc<'_> {
    fn needs_value(&self) -> DeError {
        DeError::new(self.mark, self.path.clone(), format!("{} needs a value", quote(self.name, QUOTE_MAX)))
    }
}

impl<'de> VariantAccess<'de> for VariantAcc<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            Some(node) if !node.is_null() => {
                Err(DeError::new(node.mark, self.path, format!("{} takes no value", quote(self.name, QUOTE_MAX))))
            }
            _ => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(node) => {
                seed.deserialize(De::node(node, self.path.clone())).map_err(|e| e.located(node.mark, &self.path))
            }
            None => Err(self.needs_value()),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_seq(De::node(node, self.path), visitor),
            None => Err(self.needs_value()),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => de::Deserializer::deserialize_map(De::node(node, self.path), visitor),
            None => Err(self.needs_value()),
        }
    }
}
