//! The check kinds: one closed, `Copy` enum ([`Kind`]) that every crate names a kind by, and the one trait
//! ([`KindCheck`]) that a kind's folder implements.
//!
//! Adding a kind is its folder (`checks/src/<kind>/`, with a `KindCheck` impl) plus one line in [`kinds!`]
//! below and one variant of [`crate::CheckKind`]; every place that lists kinds matches on [`Kind`] or
//! [`crate::CheckKind`] without a `_ =>` arm, so the compiler lists what is missing (validation, dispatch,
//! limits, metrics).

use std::fmt;
use std::time::Duration;

use crate::config::{CheckKind, KindSpec};
use crate::details::Details;
use crate::metrics::{Family, SeriesWriter};
use crate::outcome::Outcome;
use crate::run::Execute;

/// Declares [`Kind`] and its table: one line per kind, its variant and its key as written in YAML (and on the
/// wire, in metrics labels, in the store).
macro_rules! kinds {
    ($($(#[$doc:meta])* $variant:ident = $key:literal, limit $limit:literal;)*) => {
        /// A check kind. Serialized as its key (`"http"`), so the wire and store formats are plain strings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $($(#[$doc])* $variant,)*
        }

        impl Kind {
            /// Every kind, in the order the docs list them.
            pub const ALL: [Kind; [$($key),*].len()] = [$(Kind::$variant),*];

            /// The kind key, as written in YAML: `http`, `dns`...
            pub const fn key(self) -> &'static str {
                match self {
                    $(Kind::$variant => $key,)*
                }
            }

            /// How many checks of this kind a prober runs at once unless told otherwise.
            pub const fn default_limit(self) -> usize {
                match self {
                    $(Kind::$variant => $limit,)*
                }
            }
        }
    };
}

kinds! {
    /// An HTTP(S) request.
    Http = "http", limit 256;
    /// A DNS query.
    Dns = "dns", limit 256;
    /// A TLS handshake.
    Tls = "tls", limit 128;
    /// A TCP connection.
    Tcp = "tcp", limit 256;
    /// ICMP echo requests.
    Icmp = "icmp", limit 64;
    /// A browser journey.
    Browser = "browser", limit 2;
    /// A WebSocket conversation.
    Websocket = "websocket", limit 256;
    /// A sequence of HTTP requests.
    Api = "api", limit 128;
    /// A gRPC health check or call.
    Grpc = "grpc", limit 256;
}

impl Kind {
    /// The kind of this key, if it is one.
    pub fn from_key(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.key() == key)
    }

    /// Its position in [`Kind::ALL`], for tables indexed by kind.
    pub fn index(self) -> usize {
        Self::ALL.iter().position(|kind| *kind == self).unwrap_or_default()
    }

    /// Every key, comma-separated, for messages: `http, dns, tls, tcp, icmp, browser, websocket, api, grpc`.
    pub fn keys() -> String {
        Self::ALL.map(Kind::key).join(", ")
    }
}

/// Something to do with a kind's types (its [`KindCheck`] and, through it, its details type): see
/// [`Kind::visit`].
pub trait KindVisitor {
    /// What the visit gives.
    type Output;
    /// Does it for the kind whose check is `C`.
    fn visit<C: KindCheck>(self) -> Self::Output;
}

impl Kind {
    /// Calls `visitor` with this kind's check type: the one exhaustive match from a [`Kind`] to its types, so
    /// anything that needs a kind's types (its details, its record keys) goes through here.
    pub fn visit<V: KindVisitor>(self, visitor: V) -> V::Output {
        match self {
            Kind::Http => visitor.visit::<crate::http::HttpCheck>(),
            Kind::Dns => visitor.visit::<crate::dns::DnsCheck>(),
            Kind::Tls => visitor.visit::<crate::tls::TlsCheck>(),
            Kind::Tcp => visitor.visit::<crate::tcp::TcpCheck>(),
            Kind::Icmp => visitor.visit::<crate::icmp::IcmpCheck>(),
            Kind::Browser => visitor.visit::<crate::browser::BrowserCheck>(),
            Kind::Websocket => visitor.visit::<crate::websocket::WebsocketCheck>(),
            Kind::Api => visitor.visit::<crate::api::ApiCheck>(),
            Kind::Grpc => visitor.visit::<crate::grpc::GrpcCheck>(),
        }
    }

    /// The keys of this kind's details copied into a result's log record (see [`Details::RECORD_KEYS`]).
    pub fn record_keys(self) -> &'static [&'static str] {
        struct Keys;
        impl KindVisitor for Keys {
            type Output = &'static [&'static str];
            fn visit<C: KindCheck>(self) -> Self::Output {
                <C::Details as Details>::RECORD_KEYS
            }
        }
        self.visit(Keys)
    }

    /// Reads `details` strictly as this kind's details type and writes them back: the same JSON when the
    /// type describes what the executor wrote (`checks/tests/details.rs` checks this on recorded results).
    /// The runtime's per-address results (`ips`, see [`crate::ips`]) are read and written as theirs.
    pub fn rewrite_details(self, details: &serde_json::Value) -> Result<serde_json::Value, serde_json::Error> {
        if let Some(ips) = details.get(crate::ips::IPS_KEY) {
            let ips: Vec<crate::ips::IpResult> = serde::Deserialize::deserialize(ips)?;
            let mut rest = details.clone();
            if let Some(map) = rest.as_object_mut() {
                map.remove(crate::ips::IPS_KEY);
            }
            let mut rewritten = match &rest {
                serde_json::Value::Object(map) if map.is_empty() => rest,
                _ => self.rewrite_details(&rest)?,
            };
            if let Some(map) = rewritten.as_object_mut() {
                map.insert(crate::ips::IPS_KEY.to_owned(), serde_json::to_value(ips)?);
            }
            return Ok(rewritten);
        }
        struct Rewrite<'a>(&'a serde_json::Value);
        impl KindVisitor for Rewrite<'_> {
            type Output = Result<serde_json::Value, serde_json::Error>;
            fn visit<C: KindCheck>(self) -> Self::Output {
                let typed: C::Details = serde::Deserialize::deserialize(self.0)?;
                serde_json::to_value(typed)
            }
        }
        self.visit(Rewrite(details))
    }

    /// The metric families only this kind writes (see [`KindCheck::FAMILIES`]).
    pub fn families(self) -> &'static [Family] {
        struct Families;
        impl KindVisitor for Families {
            type Output = &'static [Family];
            fn visit<C: KindCheck>(self) -> Self::Output {
                C::FAMILIES
            }
        }
        self.visit(Families)
    }

    /// Grafana synthetic monitoring's name for this kind (see [`KindCheck::SM_CHECK_NAME`]).
    pub fn sm_check_name(self) -> &'static str {
        struct Name;
        impl KindVisitor for Name {
            type Output = &'static str;
            fn visit<C: KindCheck>(self) -> Self::Output {
                C::SM_CHECK_NAME
            }
        }
        self.visit(Name)
    }

    /// Writes this kind's series of `outcome` (its details read as this kind's type) into `out`, then the
    /// runtime's per-address series ([`crate::metrics::per_ip`]).
    pub fn series(self, outcome: &Outcome, out: &mut dyn SeriesWriter) {
        struct Series<'a>(&'a Outcome, &'a mut dyn SeriesWriter);
        impl KindVisitor for Series<'_> {
            type Output = ();
            fn visit<C: KindCheck>(self) {
                C::series(self.0, &C::Details::read(&self.0.details), self.1);
            }
        }
        self.visit(Series(outcome, out));
        crate::metrics::per_ip(out, outcome);
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A key that is not a kind this build knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown kind {shown:?}: this build knows {known}", shown = self.0.chars().take(32).collect::<String>(), known = Kind::keys())]
pub struct UnknownKind(pub String);

impl std::str::FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(key: &str) -> Result<Self, Self::Err> {
        Self::from_key(key).ok_or_else(|| UnknownKind(key.to_owned()))
    }
}

impl serde::Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.key())
    }
}

impl<'de> serde::Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let key = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        key.parse().map_err(serde::de::Error::custom)
    }
}

/// What a kind's folder provides: the one interface behind [`Kind`]. Implemented by each kind's validated
/// check type (`http::HttpCheck`...).
pub trait KindCheck: Execute + Sized {
    /// Which kind this is.
    const KIND: Kind;
    /// The kind's raw YAML body, which validates into this check.
    type Spec: KindSpec<Check = Self>;
    /// What its runs report in their outcome's details.
    type Details: Details;
    /// The metric families only this kind writes, in exposition order, each named `probe_<key>_...` or
    /// `probenet_<key>_...` (the shared ones are [`crate::metrics::SHARED`] and [`crate::metrics::TLS`]).
    const FAMILIES: &'static [Family];
    /// Grafana synthetic monitoring's name for this kind: the `check_name` label of `sm_check_info`, which picks
    /// the app's dashboard (`ping` for `icmp`).
    const SM_CHECK_NAME: &'static str;

    /// Writes the series of one of its outcomes: its own families and the shared ones it has data for.
    fn series(outcome: &Outcome, details: &Self::Details, out: &mut dyn SeriesWriter);

    /// The check as a [`CheckKind`].
    fn wrap(self) -> CheckKind;

    /// What the check probes, as the `instance` label shows it.
    fn target(&self) -> String;

    /// Why this check cannot finish within `timeout` whatever the target does, and the keys of the kind's body
    /// (the first one written is blamed) that make it so. Most kinds have no such rule.
    fn timeout_problem(&self, timeout: Duration) -> Option<(&'static [&'static str], String)> {
        let _ = timeout;
        None
    }

    /// The host this check probes and which of its addresses (`ip_strategy`), for a kind whose executor
    /// resolves one host through [`crate::net::resolve`]: with `ip_strategy: all`, the runtime probes each
    /// address with it pinned. Most kinds have none.
    fn ip_target(&self) -> Option<crate::net::IpTarget> {
        None
    }

    /// The duration over which a run that passed counts as degraded, if the check sets one (HTTP's
    /// `degraded_after`): the dashboard draws it on the latency chart.
    fn degraded_after(&self) -> Option<Duration> {
        None
    }

    /// A successful outcome with every detail this check reports, so that counting the series it writes
    /// (`probenet install`'s cost estimate) counts every one.
    fn representative(&self) -> Outcome;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_a_key_of_a_check() {
        // The raw check (config/spec.rs) has one field per kind; without it `deny_unknown_fields` refuses the key.
        let schema = crate::config::spec::json_schema();
        let properties = &schema["definitions"]["Check"]["properties"];
        for kind in Kind::ALL {
            assert!(properties.get(kind.key()).is_some(), "RawCheck has no `{}` field: {properties}", kind.key());
        }
    }

    #[test]
    fn keys_round_trip_and_serialize_as_plain_strings() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_key(kind.key()), Some(kind));
            assert_eq!(Kind::ALL[kind.index()], kind);
            let json = serde_json::to_string(&kind).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", kind.key()));
            assert_eq!(serde_json::from_str::<Kind>(&json).ok(), Some(kind));
        }
        assert_eq!(Kind::keys(), "http, dns, tls, tcp, icmp, browser, websocket, api, grpc");
        let error = serde_json::from_str::<Kind>("\"smtp\"").err().map(|e| e.to_string()).unwrap_or_default();
        for kind in Kind::ALL {
            // Every kind's check type says it is that kind.
            struct Which;
            impl KindVisitor for Which {
                type Output = Kind;
                fn visit<C: KindCheck>(self) -> Kind {
                    C::KIND
                }
            }
            assert_eq!(kind.visit(Which), kind);
            assert!(!kind.record_keys().is_empty(), "{kind}");
        }
        assert!(error.starts_with("unknown kind \"smtp\": this build knows http, dns"), "{error}");
    }
}
