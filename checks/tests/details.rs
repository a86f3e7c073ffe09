//! The typed details of every kind write the very JSON the executors wrote before they had types: each line of
//! `fixtures/details.jsonl` is the details of a real run (recorded from this repository's tests, before the
//! types existed: checks, browser and root `http`/`run` tests), and a round trip through the kind's details
//! type must give it back byte for byte. Those bytes are what the wire, the store and `probenet run --output
//! json` carry.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use probenet_checks::Kind;
use serde_json::Value;

const FIXTURES: &str = include_str!("fixtures/details.jsonl");

#[test]
fn recorded_details_of_every_kind_round_trip_byte_for_byte() {
    let mut seen: BTreeMap<Kind, usize> = BTreeMap::new();
    for (number, line) in FIXTURES.lines().enumerate() {
        let recorded: Value = serde_json::from_str(line).unwrap();
        let kind: Kind = serde_json::from_value(recorded["kind"].clone()).unwrap();
        let details = &recorded["details"];
        if details.is_null() {
            // A run that failed before its kind had anything to say (`Outcome::failed`): no type involved.
            continue;
        }
        let rewritten = kind
            .rewrite_details(details)
            .unwrap_or_else(|error| panic!("line {}: {kind} details do not read: {error}\n{details}", number + 1));
        let (before, after) = (serde_json::to_string(details).unwrap(), serde_json::to_string(&rewritten).unwrap());
        assert_eq!(after, before, "line {}: {kind} details changed", number + 1);
        *seen.entry(kind).or_default() += 1;
    }
    for kind in Kind::ALL {
        assert!(seen.get(&kind).is_some_and(|count| *count > 0), "no recorded details of kind {kind}");
    }
}

#[test]
fn every_recorded_shape_of_a_kind_is_there() {
    // The groups each kind writes only when a run gets that far (the TLS session, the DNS answer, the TCP
    // conversation): each shape is recorded at least once, so the round trip covers absent groups too.
    let shapes: BTreeMap<(String, String), usize> = FIXTURES
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|recorded| {
            let keys: Vec<String> = recorded["details"].as_object()?.keys().cloned().collect();
            Some((recorded["kind"].as_str()?.to_owned(), keys.join(",")))
        })
        .fold(BTreeMap::new(), |mut shapes, shape| {
            *shapes.entry(shape).or_default() += 1;
            shapes
        });
    let has = |kind: &str, first: &str| shapes.keys().any(|(k, keys)| k == kind && keys.starts_with(first));
    assert!(has("http", "status_code,") && has("http", "tls_version,") && has("http", "certificate"));
    assert!(has("tcp", "remote_address,local_address") && has("tcp", "certificate") && has("tcp", "tls_version,"));
    assert!(shapes.contains_key(&("tcp".to_owned(), "remote_address".to_owned())));
    assert!(has("dns", "query,") && shapes.keys().any(|(k, keys)| k == "dns" && !keys.contains("rcode")));
    assert!(shapes.keys().any(|(k, keys)| k == "tls" && !keys.contains("verdict")));
    assert!(has("websocket", "remote_address,status_code,subprotocol,messages_sent,"));
    assert!(has("websocket", "remote_address,tls_version,") && has("websocket", "remote_address,status_code,"));
    assert!(shapes.contains_key(&("websocket".to_owned(), "remote_address".to_owned())));
    assert!(shapes.contains_key(&("websocket".to_owned(), "remote_address,status_code,subprotocol".to_owned())));
    assert!(has("grpc", "remote_address,serving_status,status_code,method,response"));
    assert!(has("grpc", "remote_address,status_code,method,response,tls_version,"));
    assert!(shapes.contains_key(&("grpc".to_owned(), "remote_address".to_owned())));
    assert!(shapes.contains_key(&("grpc".to_owned(), "remote_address,method".to_owned())));
}
