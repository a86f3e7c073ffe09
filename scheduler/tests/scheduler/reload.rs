//! Config reload on file change: a bad config is rejected with its located errors and the old one keeps
//! running; a good one bumps the generation and its new pairs are assigned.

use std::time::Duration;

use crate::util::{CONFIG, Net, eventually};

#[tokio::test]
async fn a_bad_config_is_rejected_and_a_good_one_applied() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let before = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(before.assigned.len(), 3);

    // An unknown region and a bad interval: both errors, located.
    let bad = CONFIG.replace("regions: [eu]", "regions: [mars]").replace("interval: 10s", "interval: soon");
    net.write_config(&bad);
    let errors = eventually(Duration::from_secs(15), || async {
        let config = net.admin_get("/api/v1/config").await;
        let errors = config["errors"].as_array().cloned().unwrap_or_default();
        (!errors.is_empty()).then_some(errors)
    })
    .await;
    assert_eq!(errors.len(), 2, "{errors:?}");
    for error in &errors {
        assert!(error["file"].as_str().unwrap().ends_with("checks.yaml"), "{error}");
        assert!(error["line"].as_u64().unwrap() > 0, "{error}");
        assert!(error["text"].as_str().unwrap().contains("checks.yaml:"), "{error}");
    }
    assert!(errors.iter().any(|error| error["path"].as_str().unwrap().contains("regions")), "{errors:?}");
    assert!(errors.iter().any(|error| error["path"].as_str().unwrap().contains("interval")), "{errors:?}");
    // The old config keeps running: same generation, same pairs, same config text handed out.
    let during = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(during.generation, before.generation);
    assert_eq!(during.config_hash, before.config_hash);
    assert_eq!(during.assigned.len(), 3);
    let metrics = net.metrics().await;
    assert!(metrics.contains("probenet_scheduler_config_reloads_total{result=\"error\"} 1"), "{metrics}");

    // A long-poll wakes when a good config with a new check arrives.
    let poll = {
        let client = net.client.clone();
        let url = format!("{}/v1/assignments?prober=p1&generation={}&wait_seconds=30", net.base, before.generation);
        let token = net.eu.clone();
        tokio::spawn(async move { client.get(url).bearer_auth(token).send().await.unwrap().text().await.unwrap() })
    };
    let good = format!("{CONFIG}  - name: added\n    regions: [eu]\n    tcp: {{target: '127.0.0.1:9'}}\n");
    net.write_config(&good);
    let woke: probenet_checks::wire::Assignments = serde_json::from_str(&poll.await.unwrap()).unwrap();
    assert!(woke.generation > before.generation);
    assert_ne!(woke.config_hash, before.config_hash);
    assert!(woke.config[0].text.contains("name: added"), "{}", woke.config[0].text);
    assert!(woke.assigned.iter().any(|a| a.check == "added" && a.region == "eu"), "{:?}", woke.assigned);
    assert_eq!(woke.assigned.len(), 4);
    let config = net.admin_get("/api/v1/config").await;
    assert_eq!(config["errors"], serde_json::json!([]));
    assert_eq!(config["checks"], 4);
    net.stop().await;
}

#[tokio::test]
async fn touching_the_files_without_changing_them_keeps_the_generation() {
    let net = Net::start(CONFIG).await;
    let generation = net.admin_get("/api/v1/config").await["generation"].as_u64().unwrap();
    net.write_config(CONFIG);
    eventually(Duration::from_secs(15), || async {
        let metrics = net.metrics().await;
        metrics.contains("probenet_scheduler_config_reloads_total{result=\"ok\"} 1").then_some(())
    })
    .await;
    assert_eq!(net.admin_get("/api/v1/config").await["generation"].as_u64().unwrap(), generation);
    net.stop().await;
}

#[tokio::test]
async fn a_reload_changes_the_dashboard_token_and_never_opens_the_dashboard() {
    let with_token = |token: &str| format!("{CONFIG}dashboard: {{token: {token}}}\n");
    let net = Net::start(&with_token("first-read-token-1")).await;
    let status = |token: &'static str| {
        let net = &net;
        async move { net.call("GET", Some(token), "/api/ui/version", None).await.0.as_u16() }
    };
    assert_eq!(status("first-read-token-1").await, 200);
    assert_eq!(status("second-read-token-2").await, 401);

    // A new token applies on reload: the old one stops working.
    net.write_config(&with_token("second-read-token-2"));
    eventually(Duration::from_secs(15), || async { (status("second-read-token-2").await == 200).then_some(()) }).await;
    assert_eq!(status("first-read-token-1").await, 401);

    // Removing it does not open the dashboard: the running token stays until a restart.
    let mut without = CONFIG.to_owned();
    without.push_str("  - name: added\n    regions: [eu]\n    tcp: {target: '127.0.0.1:9'}\n");
    net.write_config(&without);
    eventually(Duration::from_secs(15), || async {
        (net.admin_get("/api/v1/config").await["checks"] == 4).then_some(())
    })
    .await;
    let anonymous = net.call("GET", None, "/api/ui/version", None).await.0.as_u16();
    assert_eq!(anonymous, 401, "a reload that drops the token must not open the dashboard");
    assert_eq!(status("second-read-token-2").await, 200);
    net.stop().await;
}

#[tokio::test]
async fn an_emptied_file_or_one_cut_before_its_checks_stops_nothing() {
    let net = Net::start(CONFIG).await;
    net.register("p1", "eu").await;
    let before = net.assignments("p1", "eu", 0, 0).await;
    assert_eq!(before.assigned.len(), 3);
    let rejected = async |count: u64| {
        eventually(Duration::from_secs(15), || async {
            let metrics = net.metrics().await;
            let line = format!("probenet_scheduler_config_reloads_total{{result=\"error\"}} {count}");
            metrics.contains(&line).then_some(())
        })
        .await;
        let config = net.admin_get("/api/v1/config").await;
        let during = net.assignments("p1", "eu", 0, 0).await;
        assert_eq!((during.generation, during.assigned.len()), (before.generation, 3), "nothing stops");
        assert_eq!(config["checks"], 3);
        config["errors"][0]["text"].as_str().unwrap().to_owned()
    };

    // A save cut to nothing (0 bytes, or only a comment).
    net.write_config("");
    let error = rejected(1).await;
    assert!(error.contains("checks.yaml:1:1: the file is empty (a half-saved edit?)"), "{error}");
    net.write_config("# editing...\n");
    assert!(rejected(2).await.contains("the file is empty"));

    // Cut after the regions: a valid file, without any check.
    let cut = &CONFIG[..CONFIG.find("checks:").unwrap()];
    net.write_config(cut);
    let error = rejected(3).await;
    assert!(error.contains("no checks and no `checks` key, while 3 run now"), "{error}");

    // Saying so stops every check.
    net.write_config(&format!("{cut}checks: []\n"));
    eventually(Duration::from_secs(15), || async {
        (net.admin_get("/api/v1/config").await["checks"] == 0).then_some(())
    })
    .await;
    assert!(net.assignments("p1", "eu", 0, 0).await.assigned.is_empty());
    net.stop().await;
}
