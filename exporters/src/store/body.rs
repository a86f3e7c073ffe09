//! The compact result body (schema version 4 on): the JSON value of `{started_at_ms, prober, outcome}` in a
//! small binary form: a fixed dictionary of the strings every outcome repeats (field names, states, phase
//! names, common detail keys and values) coded as one byte, integers and exact-nanosecond floats as varints.
//! Lossless: decoding gives back the same JSON value, so the same `RunResult`.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Number, Value};

/// The first byte of a compact body (a legacy Snappy body never starts a valid compact decode by accident:
/// the whole input must decode, see [`decode`]).
pub const MAGIC: u8 = 0xB7;

/// Strings coded as their index. Append only: a stored body refers to entries by position.
const DICT: &[&str] = &[
    "started_at_ms",
    "prober",
    "outcome",
    "state",
    "duration_seconds",
    "phases",
    "reason",
    "error",
    "assertions",
    "details",
    "log",
    "artifacts",
    "name",
    "seconds",
    "expected",
    "observed",
    "passed",
    "media_type",
    "path",
    "up",
    "degraded",
    "down",
    "resolve",
    "connect",
    "tls",
    "processing",
    "transfer",
    "dns",
    "timeout",
    "status",
    "body",
    "header",
    "duration",
    "redirects",
    "rcode",
    "loss",
    "assertion",
    "protocol",
    "secret",
    "unsupported",
    "cert_expired",
    "cert_not_yet_valid",
    "cert_untrusted",
    "cert_hostname",
    "cert_expiring",
    "browser_unavailable",
    "http_version",
    "HTTP/1.1",
    "HTTP/2",
    "HTTP/3",
    "body_bytes",
    "version",
    "cipher",
    "cipher_suite",
    "TLSv1.2",
    "TLSv1.3",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "cert_not_after",
    "status_code",
    "200",
    "200-299",
    "remote_address",
    "local_address",
    "address",
    "alpn",
    "h2",
    "http/1.1",
    "certificate",
    "rtt_seconds",
    "type",
    "id",
    "count",
    "sent",
    "received",
    "min",
    "max",
    "stddev",
    "query",
    "record",
    "items",
    "server",
    "sni",
    "server_name",
    "trusted",
    "verify_error",
    "socket",
    "transport",
    "tls_version",
    "response_bytes",
    "NOERROR",
    "NXDOMAIN",
    "SERVFAIL",
    "A",
    "AAAA",
    "steps_run",
    "screenshot",
    "image/png",
    "first_byte",
    "request",
    "response",
    "headers",
    "content-type",
    "text/html",
    "application/json",
    "last_chain_expiry_unix",
    "last_chain_expiry",
    "serial",
    "problems",
    "true",
    "false",
];

const NULL: u8 = 0;
const FALSE: u8 = 1;
const TRUE: u8 = 2;
const UINT: u8 = 3;
const NEG: u8 = 4;
const NANOS: u8 = 5;
const FLOAT: u8 = 6;
const STRING: u8 = 7;
const ARRAY: u8 = 8;
const OBJECT: u8 = 9;
/// An array of two or more objects with the same keys (phases, assertions): the keys once, then the values.
const TABLE: u8 = 10;

/// The keys of an array of objects that all have the same keys, if it is one (two or more items).
fn table_keys(items: &[Value]) -> Option<Vec<&String>> {
    let first = items.first()?.as_object()?;
    if items.len() < 2 || first.is_empty() {
        return None;
    }
    let keys: Vec<&String> = first.keys().collect();
    let same = items.iter().all(|item| {
        item.as_object().is_some_and(|map| map.len() == keys.len() && map.keys().zip(&keys).all(|(a, b)| a == *b))
    });
    same.then_some(keys)
}

/// Encodes a JSON value.
pub fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(MAGIC);
    put_value(&mut out, value);
    out
}

/// Decodes [`encode`]'s output; `None` unless the whole input is one valid compact body.
pub fn decode(bytes: &[u8]) -> Option<Value> {
    let (&magic, mut rest) = bytes.split_first()?;
    if magic != MAGIC {
        return None;
    }
    let value = get_value(&mut rest, 0)?;
    rest.is_empty().then_some(value)
}

/// Appends a name: its dictionary index, or its length and bytes.
pub(crate) fn put_name(out: &mut Vec<u8>, text: &str) {
    put_str(out, text);
}

/// Reads a name written by [`put_name`], advancing `bytes`.
pub(crate) fn get_name(bytes: &mut &[u8]) -> Option<String> {
    get_str(bytes)
}

/// The dictionary's index by string (the first entry of a string wins).
fn dict_index() -> &'static HashMap<&'static str, usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = HashMap::with_capacity(DICT.len());
        for (i, entry) in DICT.iter().enumerate() {
            index.entry(*entry).or_insert(i);
        }
        index
    })
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    match dict_index().get(text) {
        Some(index) => put_varint(out, *index as u64),
        None => {
            put_varint(out, (DICT.len() + text.len()) as u64);
            out.extend_from_slice(text.as_bytes());
        }
    }
}

fn get_str(bytes: &mut &[u8]) -> Option<String> {
    let code = usize::try_from(get_varint(bytes)?).ok()?;
    if let Some(entry) = DICT.get(code) {
        return Some((*entry).to_owned());
    }
    let len = code - DICT.len();
    let text = std::str::from_utf8(bytes.get(..len)?).ok()?.to_owned();
    *bytes = &bytes[len..];
    Some(text)
}

/// The nanoseconds of a float that `Duration::as_secs_f64` gives back exactly (how probers measure phases
/// and durations), so it is stored as a varint.
pub(crate) fn exact_nanos(value: f64) -> Option<u64> {
    if !(0.0..1e9).contains(&value) {
        return None;
    }
    let nanos = (value * 1e9).round() as u64;
    (from_nanos(nanos) == value).then_some(nanos)
}

/// The float of [`exact_nanos`]'s nanoseconds.
pub(crate) fn from_nanos(nanos: u64) -> f64 {
    std::time::Duration::from_nanos(nanos).as_secs_f64()
}

fn put_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => out.push(NULL),
        Value::Bool(false) => out.push(FALSE),
        Value::Bool(true) => out.push(TRUE),
        Value::Number(number) => {
            if let Some(n) = number.as_u64() {
                out.push(UINT);
                put_varint(out, n);
            } else if let Some(n) = number.as_i64() {
                out.push(NEG);
                put_varint(out, (-(n + 1)) as u64);
            } else {
                let float = number.as_f64().unwrap_or(0.0);
                match exact_nanos(float) {
                    Some(nanos) => {
                        out.push(NANOS);
                        put_varint(out, nanos);
                    }
                    None => {
                        out.push(FLOAT);
                        out.extend_from_slice(&float.to_le_bytes());
                    }
                }
            }
        }
        Value::String(text) => {
            out.push(STRING);
            put_str(out, text);
        }
        Value::Array(items) if let Some(keys) = table_keys(items) => {
            out.push(TABLE);
            put_varint(out, items.len() as u64);
            put_varint(out, keys.len() as u64);
            for key in &keys {
                put_str(out, key);
            }
            for item in items {
                for key in &keys {
                    put_value(out, &item[key.as_str()]);
                }
            }
        }
        Value::Array(items) => {
            out.push(ARRAY);
            put_varint(out, items.len() as u64);
            for item in items {
                put_value(out, item);
            }
        }
        Value::Object(map) => {
            out.push(OBJECT);
            put_varint(out, map.len() as u64);
            for (key, item) in map {
                put_str(out, key);
                put_value(out, item);
            }
        }
    }
}

fn get_value(bytes: &mut &[u8], depth: usize) -> Option<Value> {
    if depth > 128 {
        return None;
    }
    let (&tag, rest) = bytes.split_first()?;
    *bytes = rest;
    Some(match tag {
        NULL => Value::Null,
        FALSE => Value::Bool(false),
        TRUE => Value::Bool(true),
        UINT => Value::Number(get_varint(bytes)?.into()),
        NEG => Value::Number((-i64::try_from(get_varint(bytes)?).ok()? - 1).into()),
        NANOS => Value::Number(Number::from_f64(from_nanos(get_varint(bytes)?))?),
        FLOAT => {
            let float = f64::from_le_bytes(bytes.get(..8)?.try_into().ok()?);
            *bytes = &bytes[8..];
            Value::Number(Number::from_f64(float)?)
        }
        STRING => Value::String(get_str(bytes)?),
        ARRAY => {
            let len = usize::try_from(get_varint(bytes)?).ok()?;
            let mut items = Vec::with_capacity(len.min(bytes.len()));
            for _ in 0..len {
                items.push(get_value(bytes, depth + 1)?);
            }
            Value::Array(items)
        }
        TABLE => {
            let len = usize::try_from(get_varint(bytes)?).ok()?;
            let width = usize::try_from(get_varint(bytes)?).ok()?;
            let mut keys = Vec::with_capacity(width.min(bytes.len()));
            for _ in 0..width {
                keys.push(get_str(bytes)?);
            }
            let mut items = Vec::with_capacity(len.min(bytes.len()));
            for _ in 0..len {
                let mut map = Map::new();
                for key in &keys {
                    map.insert(key.clone(), get_value(bytes, depth + 1)?);
                }
                items.push(Value::Object(map));
            }
            Value::Array(items)
        }
        OBJECT => {
            let len = get_varint(bytes)?;
            let mut map = Map::new();
            for _ in 0..len {
                let key = get_str(bytes)?;
                map.insert(key, get_value(bytes, depth + 1)?);
            }
            Value::Object(map)
        }
        _ => return None,
    })
}

/// Appends a LEB128 varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Reads a LEB128 varint, advancing `bytes`.
pub(crate) fn get_varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *bytes = &bytes[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let value = serde_json::json!({
            "a": [1, -5, 0.1, 0.123456789123, 1e300, -2.5, 200.0, "tls", "free text", null, true, false],
            "outcome": {"phases": [{"name": "connect", "seconds": 0.0123}, {"name": "tls", "seconds": 0.5}]},
            "mixed": [{"a": 1}, {"b": 2}, {"a": 3}], "empty": [{}, {}],
            "n": i64::MIN, "u": u64::MAX
        });
        let bytes = encode(&value);
        assert_eq!(decode(&bytes), Some(value));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
        assert_eq!(decode(&[MAGIC, 99]), None);
    }
}
