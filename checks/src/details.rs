//! What every kind's details type is: one struct per kind (`checks/src/<kind>/details.rs`), written by its
//! executor and read by the exporters, serialized into an outcome's `details` as the same JSON as ever.
//!
//! The JSON is the contract (it is on the wire, in the store, in `probenet run --output json`): fields keep the
//! order and spelling the executors always wrote, `null` stays `null`, and a group of keys that a run did not
//! reach (the TLS session of a connection that failed) stays absent, through `#[serde(flatten)]` on an
//! `Option` whose first key is required ([`present`]). Reading is tolerant: any other missing key takes its
//! default, so results stored by older versions (or written by hand in tests) still read.
//! `checks/tests/details.rs` proves on recorded results of every kind that a round trip through these types
//! gives the same bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// A kind's details type.
pub trait Details: Serialize + DeserializeOwned + Default {
    /// The keys copied into a result's log record when their value is a string, number or bool: the few facts
    /// worth searching logs for (the HTTP status, addresses, the DNS rcode...).
    const RECORD_KEYS: &'static [&'static str];

    /// The address probed (`host:port` or an IP address), whatever the kind calls it: `probe_ip_protocol`.
    fn address(&self) -> Option<&str> {
        None
    }

    /// The details as an outcome holds them.
    fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads an outcome's details (`null`, or what an older version wrote, gives the defaults).
    fn read(value: &Value) -> Self {
        Self::deserialize(value).unwrap_or_default()
    }
}

/// Deserializes a key that must be present but may be `null`: the first key of a flattened group, so that
/// the group reads as `None` when the key is absent (serde treats a missing `Option` as `None` otherwise).
pub fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(deserializer)
}

/// Deserializes a key that may be absent, `null` or a value, as `None`, `Some(None)` or `Some(Some(value))`
/// (with `#[serde(default, skip_serializing_if = "Option::is_none")]`), so each of the three writes back as
/// it was.
pub fn tri_state<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}
