//! `probenet export`: the alert rules pass `promtool check rules`, the Grafana dashboard is JSON with panels
//! over every configured check's series, and a broken config exports nothing.

use crate::util::{REPO, probenet};

#[tokio::test]
async fn exported_rules_pass_promtool_and_the_grafana_dashboard_names_the_checks() {
    let rules = probenet(["export", "rules", "-c", "examples/alerting.yaml"]).current_dir(REPO).output().await;
    rules.assert_code(0);
    assert!(rules.stdout.contains("groups:") && rules.stdout.contains("probe_success"), "{}", rules.stdout);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.yaml");
    std::fs::write(&file, &rules.stdout).unwrap();
    let promtool = std::process::Command::new("/usr/bin/promtool").args(["check", "rules"]).arg(&file).output();
    let promtool = promtool.expect("promtool (Debian's prometheus package) is needed");
    assert!(promtool.status.success(), "{}", String::from_utf8_lossy(&promtool.stdout));

    let grafana = probenet(["export", "grafana", "-c", "examples/quickstart.yaml"]).current_dir(REPO).output().await;
    grafana.assert_code(0);
    let dashboard: serde_json::Value = serde_json::from_str(&grafana.stdout).unwrap();
    let panels = dashboard["panels"].as_array().map_or(0, Vec::len);
    assert!(panels >= 4, "{dashboard}");
    assert!(grafana.stdout.contains("probe_success") && grafana.stdout.contains("probe_http_duration_seconds"));
    assert!(grafana.stdout.contains("shop-checkout"), "the checks are offered in the check variable");

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "checks:\n  - name: x\n    http: {url: nope}\n").unwrap();
    let out = probenet(["export", "rules", "-c"]).arg(&broken).output().await;
    out.assert_code(2);
    assert!(out.stdout.is_empty() && out.stderr.contains("broken.yaml:3:"), "{}", out.stderr);
}

#[tokio::test]
async fn export_takes_the_config_paths_as_validate_and_run_do() {
    // Positional paths, as `probenet validate PATH...` and `probenet run PATH...`; `-c PATH` gives the same.
    for what in ["rules", "grafana"] {
        let option = probenet(["export", what, "-c", "examples/alerting.yaml"]).current_dir(REPO).output().await;
        option.assert_code(0);
        let positional = probenet(["export", what, "examples/alerting.yaml"]).current_dir(REPO).output().await;
        positional.assert_code(0);
        assert_eq!(positional.stdout, option.stdout, "export {what}");
        // Several paths merge, as for validate.
        let two = probenet(["export", what, "examples/alerting.yaml", "examples/dns.yaml"]).current_dir(REPO);
        let two = two.output().await;
        two.assert_code(0);
        assert_ne!(two.stdout, option.stdout, "export {what} merges both files");
        // No path at all is a usage error naming PATH.
        let none = probenet(["export", what]).current_dir(REPO).output().await;
        none.assert_code(2);
        assert!(none.stderr.contains("<PATH>"), "{}", none.stderr);
    }
}
