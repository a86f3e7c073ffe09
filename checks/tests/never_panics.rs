//! Loading a config never panics: arbitrary bytes, arbitrary YAML-ish text and mutated real configs all give
//! either a config or located errors.

use proptest::prelude::*;

use probenet_checks::load_str;

/// Pieces of real configs, so generated text reaches validation and not only the YAML parser.
const WORDS: &[&str] = &[
    "regions",
    "defaults",
    "checks",
    "name",
    "interval",
    "schedule",
    "timezone",
    "timeout",
    "labels",
    "http",
    "dns",
    "tls",
    "tcp",
    "icmp",
    "browser",
    "url",
    "method",
    "headers",
    "expect",
    "status",
    "body_regex",
    "body_contains",
    "max_duration",
    "degraded_after",
    "query",
    "record",
    "server",
    "target",
    "host",
    "count",
    "steps",
    "goto",
    "click",
    "fill",
    "selector",
    "text",
    "eu-west",
    "us-east",
    "30s",
    "1m",
    "0ms",
    "99999d",
    "*/5 * * * *",
    "2xx",
    "200",
    "-1",
    "1e99",
    "null",
    "~",
    "true",
    "[",
    "]",
    "{",
    "}",
    ":",
    ",",
    "- ",
    "'",
    "\"",
    "&a",
    "*a",
    "<<",
    "${env:X}",
    "${file:}",
    "${",
    "http://127.0.0.1/",
    "h:1",
    "[::1]:53",
    "(",
    "\\",
    "\t",
    "\u{feff}",
    "é",
];

fn yamlish() -> impl Strategy<Value = String> {
    let token = prop::sample::select(WORDS);
    let line = (0usize..6, prop::collection::vec(token, 0..6))
        .prop_map(|(indent, words)| format!("{}{}", "  ".repeat(indent), words.join(" ")));
    prop::collection::vec(line, 0..25).prop_map(|lines| lines.join("\n"))
}

const VALID: &str = r##"regions:
  eu-west: {}
  us-east: {labels: {provider: aws}}
defaults: {interval: 1m, timeout: 10s, regions: [eu-west]}
checks:
  - name: homepage
    interval: 30s
    labels: {team: web}
    http:
      url: https://shop.example.com/
      headers: {Authorization: "Bearer ${env:SHOP_TOKEN}"}
      expect: {status: [200, "3xx"], body_contains: Welcome, body_regex: "v[0-9]+", max_duration: 2s}
  - name: resolver
    dns: {query: shop.example.com, record: A, server: "192.0.2.53:53", expect: {rcode: [NOERROR], answers: ["203.0.113.10"]}}
  - name: cert
    schedule: "0 * * * *"
    tls: {target: "shop.example.com:443", expect: {min_days_remaining: 14}}
  - name: journey
    browser: {steps: [{goto: "https://shop.example.com/"}, {click: "#buy"}, {expect_text: Thanks}]}
"##;

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = load_str("fuzz.yaml", &String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn arbitrary_yamlish_text(text in yamlish()) {
        let _ = load_str("fuzz.yaml", &text);
    }

    #[test]
    fn mutated_valid_config(at in 0usize..VALID.len(), cut in 0usize..40, insert in prop::sample::select(WORDS)) {
        let start = (0..=at).rev().find(|i| VALID.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + cut).min(VALID.len());
        let end = (end..=VALID.len()).find(|i| VALID.is_char_boundary(*i)).unwrap_or(VALID.len());
        let text = format!("{}{insert}{}", &VALID[..start], &VALID[end..]);
        if let Err(errors) = load_str("fuzz.yaml", &text) {
            // Every error is located in the file, or is about the file as a whole.
            for error in errors.0 {
                prop_assert!(error.line <= text.lines().count() + 1, "{error}");
            }
        }
    }
}

#[test]
fn the_valid_base_config_loads() {
    let config = load_str("base.yaml", VALID).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.checks.len(), 4);
    assert_eq!(config.regions.len(), 2);
}
