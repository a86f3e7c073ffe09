//! docs/config.md holds the generated reference exactly: a change to the config types must update the docs.

#[test]
fn docs_config_md_matches_the_schema() {
    let doc = std::fs::read_to_string("../docs/config.md").unwrap_or_default();
    let begin = "<!-- BEGIN GENERATED REFERENCE -->\n";
    let end = "<!-- END GENERATED REFERENCE -->";
    let start = doc.find(begin).map(|at| at + begin.len());
    let stop = doc.find(end);
    let (Some(start), Some(stop)) = (start, stop) else {
        panic!("docs/config.md lacks the generated-reference markers");
    };
    let generated = probenet_checks::config::reference::markdown();
    assert!(
        doc[start..stop] == generated,
        "docs/config.md is out of date: regenerate the part between the markers with `probenet schema --markdown`"
    );
    // Every kind key and every documented top-level key appears in the reference.
    for key in [
        "`regions`",
        "`defaults`",
        "`checks`",
        "`http`",
        "`dns`",
        "`tls`",
        "`tcp`",
        "`icmp`",
        "`browser`",
        "`websocket`",
        "`api`",
        "`grpc`",
    ] {
        assert!(generated.contains(key), "{key} is missing from the reference");
    }
}
