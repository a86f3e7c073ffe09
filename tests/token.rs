//! `probenet token create|list|revoke`: tokens are listed by id (never shown again) and revoked by id; a
//! revoked token stops working against a running scheduler.

use std::time::Duration;

use crate::util::processes::{Kill, command, free_port, plain_scheduler, token, wait_for};

#[test]
fn tokens_are_listed_by_id_and_a_revoked_one_stops_working() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let eu = token(&data, &["--region", "eu"]);
    let admin = token(&data, &["--admin"]);
    let list = command().args(["token", "list", "--data"]).arg(&data).output().unwrap();
    assert!(list.status.success());
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(listed.contains("region eu") && listed.contains("admin"), "{listed}");
    assert!(!listed.contains(&eu[4..]) && !listed.contains(&admin[4..]), "a token is shown again:\n{listed}");
    let eu_id = listed.lines().find(|line| line.contains("region eu")).unwrap().split_whitespace().next().unwrap();

    let checks = dir.path().join("checks.yaml");
    std::fs::write(&checks, "regions: {eu: {}}\nchecks:\n  - name: a\n    http: {url: 'http://127.0.0.1:9/'}\n")
        .unwrap();
    let port = free_port();
    let _scheduler = Kill(plain_scheduler(dir.path(), &checks, &data, port).spawn().unwrap());
    let status = |token: &str| {
        reqwest::blocking::Client::new()
            .get(format!("http://127.0.0.1:{port}/v1/assignments?prober=x"))
            .bearer_auth(token)
            .send()
            .map(|response| response.status().as_u16())
            .unwrap_or(0)
    };
    wait_for("the scheduler", Duration::from_secs(20), dir.path(), || status(&eu) == 404);

    let revoke = command().args(["token", "revoke", "--data"]).arg(&data).arg(eu_id).output().unwrap();
    assert!(revoke.status.success(), "{}", String::from_utf8_lossy(&revoke.stderr));
    wait_for("the revoked token refused", Duration::from_secs(10), dir.path(), || status(&eu) == 401);
    let after =
        String::from_utf8_lossy(&command().args(["token", "list", "--data"]).arg(&data).output().unwrap().stdout)
            .into_owned();
    assert!(!after.contains(eu_id) && after.contains("admin"), "{after}");
    let again = command().args(["token", "revoke", "--data"]).arg(&data).arg(eu_id).output().unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no token has the id"));
}
