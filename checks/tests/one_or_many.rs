//! Lists of alternatives accept a single value too: `rcode: NOERROR` is `rcode: [NOERROR]`, `status: 200` is
//! `status: [200]`, `regions: eu` is `regions: [eu]`, `notify: oncall` is `notify: [oncall]`. A bad single
//! value is reported at its place, like a bad item of a list.
#![allow(clippy::unwrap_used)]

use probenet_checks::load_str;

/// Every list written as one value (`{}` stands for the value), or as a list of it.
fn config(one: bool) -> String {
    let list = |value: &str| if one { value.to_owned() } else { format!("[{value}]") };
    format!(
        "regions: {{eu: {{}}, us: {{}}}}\ndefaults: {{regions: {eu}}}\nnotifiers:\n  oncall: {{webhook: {{url: \
         \"https://hooks.example/x\"}}}}\nchecks:\n  - name: web\n    regions: {us}\n    slo: {{objective: 99.9, \
         notify: {oncall}}}\n    http:\n      url: https://example.com/\n      expect: {{status: {status}}}\n  \
         - name: ns\n    dns:\n      query: example.com\n      server: 127.0.0.1\n      expect:\n        rcode: \
         {rcode}\n        answers: {answer}\n        answer_regex: {regex}\n        answer_not_regex: {regex}\n        \
         authority_regex: {regex}\n        authority_not_regex: {regex}\n        additional_regex: {regex}\n        \
         additional_not_regex: {regex}\nalerts:\n  - name: down\n    checks: {web}\n    notify: {oncall}\n\
         probe_health: {{notify: {oncall}}}\n",
        eu = list("eu"),
        us = list("us"),
        oncall = list("oncall"),
        status = list("\"3xx\""),
        rcode = list("NXDOMAIN"),
        answer = list("203.0.113.10"),
        regex = list("'IN\\s+A'"),
        web = list("web"),
    )
}

#[test]
fn a_single_value_reads_as_a_list_of_it() {
    let one = load_str("one.yaml", &config(true)).unwrap_or_else(|errors| panic!("{errors}"));
    let many = load_str("one.yaml", &config(false)).unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(format!("{:?}", one.checks), format!("{:?}", many.checks));
    assert_eq!(format!("{:?}", one.alerts), format!("{:?}", many.alerts));
    assert_eq!(format!("{:?}", one.probe_health), format!("{:?}", many.probe_health));
    assert_eq!(one.checks[0].regions, ["us"]);
    assert_eq!(one.checks[1].regions, ["eu"], "defaults.regions");
    assert_eq!(one.alerts[0].notify, ["oncall"]);
    // And it means what the list means: 3xx only, NXDOMAIN only.
    let debug = format!("{:?}", one.checks);
    assert!(debug.contains("NXDOMAIN") && !debug.contains("NOERROR"), "{debug}");
}

#[test]
fn a_bad_single_value_is_reported_at_its_place() {
    let yaml = config(true).replace("rcode: NXDOMAIN", "rcode: NXDOMAN").replace("status: \"3xx\"", "status: 9xx");
    let errors = load_str("one.yaml", &yaml).unwrap_err().to_string();
    assert!(
        errors.contains("one.yaml:17:16: checks[1].dns.expect.rcode[0]: \"NXDOMAN\" is not a response code"),
        "{errors}"
    );
    assert!(
        errors.contains("one.yaml:11:24: checks[0].http.expect.status[0]: \"9xx\" is not a status code"),
        "{errors}"
    );
    // A mapping is neither a value nor a list.
    let yaml = config(true).replace("rcode: NXDOMAIN", "rcode: {a: b}");
    let errors = load_str("one.yaml", &yaml).unwrap_err().to_string();
    assert!(
        errors.contains("one.yaml:17:16: checks[1].dns.expect.rcode: expected a value or a list, found a mapping"),
        "{errors}"
    );
}
