//! `probenet import blackbox|gatus|uptime-kuma`: fixtures in each tool's format become a config that validates,
//! with exact checks, secrets as environment variables, and every option not carried over listed at its place.

use std::path::{Path, PathBuf};

use crate::util::{Output, REPO, probenet};

/// Values the fixtures hold as secrets: none may reach the written config or the report.
const LEAKS: [&str; 2] = ["do-not-leak", "DO-NOT-LEAK"];

fn fixture(name: &str) -> String {
    format!("{REPO}/tests/fixtures/import/{name}")
}

/// `probenet import ARGS... -o DIR/checks.yaml`, run from the fixtures' folder so that the report names them
/// as the user would; returns the run and the config written.
async fn import(args: &[&str]) -> (Output, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let written = dir.path().join("checks.yaml");
    let out = probenet(["import"].iter().chain(args).chain(&["-o", written.to_str().unwrap()]))
        .current_dir(format!("{REPO}/tests/fixtures/import"))
        .output()
        .await;
    let text = std::fs::read_to_string(&written).unwrap_or_default();
    (out, text, dir)
}

/// The written check named `name`, as its YAML lines (from `  - name:` to the next check).
#[track_caller]
fn check(config: &str, name: &str) -> String {
    let start = format!("  - name: {name}\n");
    let at = config.find(&start).unwrap_or_else(|| panic!("no check {name:?} in:\n{config}"));
    let rest = &config[at..];
    let end = rest[start.len()..].find("  - name: ").map_or(rest.len(), |end| end + start.len());
    rest[..end].to_owned()
}

/// The report's lines about what was not carried over (`FILE...: MESSAGE`, before the summary).
fn dropped(stderr: &str) -> Vec<&str> {
    stderr.lines().take_while(|line| !line.starts_with("probenet: ")).collect()
}

/// `probenet validate` on the written config, with the given environment variables set.
async fn validates(path: &Path, env: &[&str]) -> Output {
    let mut command = probenet(["validate", path.to_str().unwrap()]);
    for name in env {
        command = command.env(name, "set-by-the-test");
    }
    command.output().await
}

#[track_caller]
fn assert_no_secret(out: &Output, config: &str) {
    for leak in LEAKS {
        assert!(!config.contains(leak), "a secret in the config:\n{config}");
        assert!(!out.stderr.contains(leak) && !out.stdout.contains(leak), "a secret in the report:\n{}", out.stderr);
    }
}

fn written(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("checks.yaml")
}

// -------------------------------------------------------------------------------------------------------------
// blackbox_exporter
// -------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn blackbox_jobs_and_targets_become_checks_of_their_modules_kind() {
    let (out, config, dir) = import(&["blackbox", "blackbox.yml", "prometheus.yml"]).await;
    out.assert_code(0);
    assert!(config.starts_with("# Imported by `probenet import blackbox` from the blackbox_exporter modules of"));
    assert!(config.contains("\nregions:\n  local: {}\nchecks:\n"), "{config}");
    assert_eq!(
        check(&config, "shop-http-shop-example-com"),
        "  - name: shop-http-shop-example-com\n    interval: 30s\n    timeout: 5s\n    labels:\n      team: web\n    \
         http:\n      url: https://shop.example.com/\n      ip_version: ipv4\n"
    );
    assert_eq!(
        check(&config, "orders-api-api-example-com-v1-orders-ping"),
        "  - name: orders-api-api-example-com-v1-orders-ping\n    interval: 1m\n    timeout: 8s\n    http:\n      \
         url: https://api.example.com/v1/orders/ping\n      method: POST\n      body: \"{\\\"ping\\\": true}\"\n      \
         headers:\n        Content-Type: application/json\n        Authorization: ${env:HTTP_POST_2XX_AUTHORIZATION}\n      \
         expect:\n        status:\n          - 200\n          - 201\n        body_regex: \"\\\"ok\\\":\\\\s*true\"\n"
    );
    assert_eq!(
        check(&config, "admin-admin-example-com-api-status"),
        "  - name: admin-admin-example-com-api-status\n    interval: 30s\n    timeout: 10s\n    http:\n      \
         url: https://admin.example.com/api/status\n      basic_auth:\n        username: probe\n        \
         password: ${env:HTTP_ADMIN_PASSWORD}\n      tls:\n        insecure: true\n      expect:\n        \
         body_not_regex: \"(?:maintenance)|(?:internal error)\"\n        headers:\n          \
         Content-Type: \"^application/json\"\n"
    );
    assert_eq!(
        check(&config, "databases-cache-example-com-6379"),
        "  - name: databases-cache-example-com-6379\n    interval: 30s\n    timeout: 5s\n    labels:\n      team: data\n    \
         tcp:\n      target: cache.example.com:6379\n"
    );
    // blackbox_exporter ends every `send` with a newline; the script says so.
    assert_eq!(
        check(&config, "mail-mail-example-com-25"),
        "  - name: mail-mail-example-com-25\n    interval: 2m\n    timeout: 10s\n    tcp:\n      \
         target: mail.example.com:25\n      script:\n        - expect: \"^220 \"\n        \
         - send: \"EHLO probe.example.com\\n\"\n        - expect: \"^250\"\n        - send: \"QUIT\\n\"\n"
    );
    assert_eq!(
        check(&config, "gateway-gateway-example-com"),
        "  - name: gateway-gateway-example-com\n    interval: 15s\n    timeout: 5s\n    icmp:\n      \
         host: gateway.example.com\n      ip_version: ipv4\n"
    );
    assert_eq!(
        check(&config, "dns-192-0-2-53"),
        "  - name: dns-192-0-2-53\n    interval: 30s\n    timeout: 3s\n    dns:\n      server: 192.0.2.53\n      \
         query: shop.example.com\n      record: A\n      transport: udp\n      expect:\n        rcode:\n          \
         - NOERROR\n        answer_regex:\n          \
         - \"shop\\\\.example\\\\.com\\\\.\\\\s+\\\\d+\\\\s+IN\\\\s+A\\\\s+203\\\\.0\\\\.113\\\\.\"\n"
    );
    assert_eq!(config.matches("\n  - name: ").count(), 9, "{config}");
    let summary: Vec<&str> = out.stderr.lines().skip_while(|line| !line.starts_with("probenet: ")).collect();
    assert_eq!(
        summary[0],
        format!(
            "probenet: wrote 9 checks to {}, all in region `local` (rename it or add more)",
            written(&dir).display()
        )
    );
    assert!(out.stderr.contains("were skipped: node."), "{}", out.stderr);
    assert!(out.stderr.contains("Modules no scrape job uses were not written: ssh_banner."), "{}", out.stderr);
    let valid = validates(&written(&dir), &["HTTP_POST_2XX_AUTHORIZATION", "HTTP_ADMIN_PASSWORD"]).await;
    valid.assert_code(0);
    assert!(valid.stdout.starts_with("ok: 9 checks, 1 region"), "{}", valid.stdout);
}

#[tokio::test]
async fn blackbox_lists_each_option_not_carried_over_at_its_place() {
    let (out, config, _dir) = import(&["blackbox", "blackbox.yml", "prometheus.yml"]).await;
    out.assert_code(0);
    let expected = [
        "blackbox.yml:21:7: modules.http_post_2xx.http.fail_if_not_ssl: option not carried over",
        "blackbox.yml:33:9: modules.http_admin.http.tls_config.min_version: TLS option not carried over",
        "blackbox.yml:35:7: modules.http_admin.http.fail_if_header_matches: option not carried over",
        "blackbox.yml:41:7: modules.http_admin.http.compression: option not carried over",
        "blackbox.yml:56:7: modules.smtp_banner.tcp.source_ip_address: option not carried over",
        "blackbox.yml:63:7: modules.icmp.icmp.dont_fragment: option not carried over",
        "blackbox.yml:76:9: modules.dns_shop.dns.validate_answer_rrs.fail_if_not_matches_regexp: probenet asserts \
         that some record matches or that none does; not carried over",
        "prometheus.yml:87:19: scrape_configs[8].static_configs[0].targets[0]: module \"grpc_health\" uses prober \
         \"grpc\", which probenet has no check for: no check written",
        "prometheus.yml:88:5: scrape_configs[8].file_sd_configs: targets from service discovery are not carried \
         over; list them in static_configs",
    ];
    assert_eq!(dropped(&out.stderr), expected);
    assert!(out.stderr.contains("probenet: 9 things not carried over, listed above\n"), "{}", out.stderr);
    // The config's header lists them too.
    assert!(config.contains("# Not carried over:\n#   blackbox.yml:21:7: modules.http_post_2xx.http.fail_if_not_ssl"));
}

#[tokio::test]
async fn blackbox_secrets_become_environment_variables_named_in_the_report() {
    let (out, config, dir) = import(&["blackbox", "blackbox.yml", "prometheus.yml"]).await;
    out.assert_code(0);
    assert_no_secret(&out, &config);
    assert!(out.stderr.contains(
        "  HTTP_POST_2XX_AUTHORIZATION  for http.headers.Authorization of the checks of module http_post_2xx (from \
         blackbox.yml:18:9: modules.http_post_2xx.http.headers.Authorization)\n"
    ));
    assert!(
        out.stderr.contains("  HTTP_ADMIN_PASSWORD  for http.basic_auth.password of the checks of module http_admin")
    );
    // Until they are set, validation names each one.
    let unset = validates(&written(&dir), &[]).await;
    unset.assert_code(1);
    assert!(unset.stderr.contains("environment variable HTTP_POST_2XX_AUTHORIZATION is not set"), "{}", unset.stderr);
    assert!(unset.stderr.contains("environment variable HTTP_ADMIN_PASSWORD is not set"), "{}", unset.stderr);
}

#[tokio::test]
async fn a_scrape_job_naming_an_unknown_module_is_an_error_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let prometheus = dir.path().join("prometheus.yml");
    std::fs::write(
        &prometheus,
        "scrape_configs:\n  - job_name: web\n    metrics_path: /probe\n    params:\n      module: [http_2x]\n    \
         static_configs:\n      - targets: [https://example.com/]\n",
    )
    .unwrap();
    let output = dir.path().join("checks.yaml");
    let out = probenet(["import", "blackbox", &fixture("blackbox.yml"), prometheus.to_str().unwrap()])
        .args(["-o", output.to_str().unwrap()])
        .current_dir(dir.path())
        .output()
        .await;
    out.assert_code(1);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            format!(
                "{}:5:16: scrape_configs[0].params.module[0]: job \"web\" names module \"http_2x\", which {} does not \
                 define (did you mean \"http_2xx\"?); it defines: http_2xx, http_post_2xx, http_admin, tcp_connect, \
                 smtp_banner, icmp, dns_shop, grpc_health, ssh_banner",
                prometheus.display(),
                fixture("blackbox.yml")
            ),
            "probenet: 1 error in the input; nothing was written".to_owned(),
        ]
    );
    assert!(!output.exists());
}

#[tokio::test]
async fn a_module_timeout_longer_than_the_scrape_interval_is_shortened_and_listed_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("blackbox.yml"),
        "modules:\n  slow_http:\n    prober: http\n    timeout: 20s\n  no_name:\n    prober: dns\n",
    )
    .unwrap();
    // Targets given as probe parameters (no relabeling), and a DNS module without the name to ask.
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "scrape_configs:\n  - job_name: slow\n    metrics_path: /probe\n    scrape_interval: 10s\n    params:\n      \
         module: [slow_http]\n      target: [https://a.example.com/, \"https://probe:pw-do-not-leak@b.example.com/\"]\n    \
         static_configs:\n      - targets: [127.0.0.1:9115]\n  - job_name: dns\n    metrics_path: /probe\n    \
         params:\n      module: [no_name]\n    static_configs:\n      - targets: [192.0.2.53]\n",
    )
    .unwrap();
    let out = probenet(["import", "blackbox", "blackbox.yml", "prometheus.yml"]).current_dir(dir.path()).output().await;
    out.assert_code(0);
    assert_eq!(
        check(&out.stdout, "slow-a-example-com"),
        "  - name: slow-a-example-com\n    interval: 10s\n    timeout: 10s\n    http:\n      url: https://a.example.com/\n"
    );
    // A password in a target URL is neither in the name nor in the URL: it is read from a variable.
    assert_eq!(
        check(&out.stdout, "slow-b-example-com"),
        "  - name: slow-b-example-com\n    interval: 10s\n    timeout: 10s\n    http:\n      url: https://b.example.com/\n      \
         basic_auth:\n        username: probe\n        password: ${env:SLOW_B_EXAMPLE_COM_PASSWORD}\n"
    );
    assert_no_secret(&out, "");
    assert_eq!(
        dropped(&out.stderr),
        [
            "blackbox.yml:4:5: modules.slow_http.timeout: timeout 20s: a probenet timeout is at most the interval; \
             10s written",
            "prometheus.yml:10:5: scrape_configs[1]: no relabeling copies __address__ into __param_target: the static \
             targets are taken as the probed targets",
            "prometheus.yml:15:19: scrape_configs[1].static_configs[0].targets[0]: module \"no_name\" has no \
             `dns.query_name`: no check written",
        ]
    );
}

#[tokio::test]
async fn an_icmp_timeout_under_a_second_sends_its_echo_request_within_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blackbox.yml"), "modules:\n  quick_ping:\n    prober: icmp\n    timeout: 500ms\n")
        .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        "scrape_configs:\n  - job_name: ping\n    metrics_path: /probe\n    params: {module: [quick_ping]}\n    \
         static_configs: [{targets: [192.0.2.1]}]\n    relabel_configs:\n      - source_labels: [__address__]\n        \
         target_label: __param_target\n",
    )
    .unwrap();
    let out = probenet(["import", "blackbox", "blackbox.yml", "prometheus.yml"]).current_dir(dir.path()).output().await;
    out.assert_code(0);
    assert_eq!(
        check(&out.stdout, "ping-192-0-2-1"),
        "  - name: ping-192-0-2-1\n    timeout: 500ms\n    icmp:\n      host: 192.0.2.1\n      interval: 500ms\n"
    );
    assert_eq!(dropped(&out.stderr), Vec::<&str>::new());
}

// -------------------------------------------------------------------------------------------------------------
// Gatus
// -------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn gatus_endpoints_become_checks_with_their_conditions_as_assertions() {
    let (out, config, dir) = import(&["gatus", "gatus.yaml"]).await;
    out.assert_code(0);
    assert_eq!(
        check(&config, "shop-homepage"),
        "  - name: shop-homepage\n    interval: 30s\n    labels:\n      group: shop\n    http:\n      \
         url: https://shop.example.com/\n      expect:\n        status:\n          - 200\n        \
         max_duration: 500ms\n        body_contains: Welcome\n        min_days_remaining: 10\n"
    );
    // Gatus compares text: a boolean is matched as text by an anchored regex.
    assert_eq!(
        check(&config, "shop-health"),
        "  - name: shop-health\n    labels:\n      group: shop\n    http:\n      url: https://shop.example.com/health\n      \
         expect:\n        status:\n          - 2xx\n        json:\n          - path: $.status\n            equals: UP\n          \
         - path: \"$.checks[0].healthy\"\n            regex: \"^true$\"\n"
    );
    assert_eq!(
        check(&config, "orders-api"),
        "  - name: orders-api\n    timeout: 5s\n    http:\n      url: https://api.example.com/v1/orders\n      \
         method: POST\n      body: \"{\\\"dry_run\\\": true}\"\n      tls:\n        insecure: true\n      headers:\n        \
         Content-Type: application/json\n        Authorization: Bearer ${env:ORDERS_TOKEN}\n        \
         X-Api-Key: ${env:ORDERS_API_X_API_KEY}\n      expect:\n        status:\n          - 200\n          - 201\n"
    );
    assert_eq!(
        check(&config, "database"),
        "  - name: database\n    interval: 1m\n    tcp:\n      target: db.example.com:5432\n"
    );
    assert_eq!(
        check(&config, "gateway"),
        "  - name: gateway\n    interval: 15s\n    icmp:\n      host: gateway.example.com\n      expect:\n        \
         max_rtt: 50ms\n"
    );
    assert_eq!(
        check(&config, "shop-dns"),
        "  - name: shop-dns\n    dns:\n      query: shop.example.com\n      record: A\n      server: 192.0.2.53\n      \
         expect:\n        rcode:\n          - NOERROR\n        answers:\n          - 203.0.113.10\n"
    );
    assert_eq!(
        check(&config, "certificate"),
        "  - name: certificate\n    interval: 1h\n    tls:\n      target: shop.example.com:443\n      expect:\n        \
         min_days_remaining: 30\n"
    );
    assert_eq!(config.matches("\n  - name: ").count(), 8, "{config}");
    let valid = validates(&written(&dir), &["ORDERS_TOKEN", "ORDERS_API_X_API_KEY"]).await;
    valid.assert_code(0);
    assert!(valid.stdout.starts_with("ok: 8 checks, 1 region"), "{}", valid.stdout);
}

#[tokio::test]
async fn gatus_lists_each_setting_and_condition_not_carried_over_at_its_place() {
    let (out, config, _dir) = import(&["gatus", "gatus.yaml"]).await;
    out.assert_code(0);
    let expected = [
        "gatus.yaml:2:1: storage: setting not carried over",
        "gatus.yaml:6:1: alerting: alerting providers are not carried over: declare probenet `notifiers:` and \
         `alerts:` (docs/notifiers.md)",
        "gatus.yaml:20:5: endpoints[0].alerts: alerts are not carried over: write probenet `alerts:` for this check \
         and `notifiers:` (docs/alerting.md)",
        "gatus.yaml:31:9: endpoints[1].conditions[3]: condition not carried over: probenet has no assertion like \
         len([BODY].checks) for http checks",
        "gatus.yaml:46:9: endpoints[2].conditions[1]: condition not carried over: probenet has no assertion like \
         [IP] for http checks",
        "gatus.yaml:78:5: endpoints[7].url: probenet has no check for \"wss\" endpoints: no check written",
        "gatus.yaml:89:5: endpoints[9].ui: option not carried over",
        "gatus.yaml:92:9: endpoints[9].conditions[0]: condition not carried over: probenet has no assertion like \
         [DOMAIN_EXPIRATION] for http checks",
        // A value probenet's validation refuses takes its check out, and says so where it came from.
        "gatus.yaml:94:5: endpoints[10]: not written: probenet refuses http.url: \"https://shop example.com/\" is \
         not a valid URL: invalid international domain name",
    ];
    assert_eq!(dropped(&out.stderr), expected);
    assert_no_secret(&out, &config);
    assert!(out.stderr.contains(
        "  ORDERS_TOKEN  for http.headers.Authorization of check orders-api (from gatus.yaml:38:7: \
         endpoints[2].headers.Authorization)\n"
    ));
    assert!(out.stderr.contains(
        "  ORDERS_API_X_API_KEY  for http.headers.X-Api-Key of check orders-api (from gatus.yaml:39:7: \
         endpoints[2].headers.X-Api-Key)\n"
    ));
}

#[tokio::test]
async fn disabled_gatus_endpoints_are_named_and_written_only_when_asked() {
    let (out, config, _dir) = import(&["gatus", "gatus.yaml"]).await;
    out.assert_code(0);
    assert!(!config.contains("- name: old-admin"), "{config}");
    assert!(
        out.stderr.contains(
            "probenet: Disabled endpoints (`enabled: false`) were not written; `--include-paused` writes them: \
             old-admin (gatus.yaml:83:5: endpoints[8]).\n"
        ),
        "{}",
        out.stderr
    );
    let (out, config, _dir) = import(&["gatus", "gatus.yaml", "--include-paused"]).await;
    out.assert_code(0);
    assert_eq!(check(&config, "old-admin"), "  - name: old-admin\n    http:\n      url: https://admin.example.com/\n");
}

// -------------------------------------------------------------------------------------------------------------
// Uptime Kuma
// -------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn uptime_kuma_monitors_become_checks_of_their_type() {
    let (out, config, dir) = import(&["uptime-kuma", "uptime-kuma.json"]).await;
    out.assert_code(0);
    assert!(config.starts_with(
        "# Imported by `probenet import uptime-kuma` from the Uptime Kuma backup uptime-kuma.json (Uptime Kuma 1.23.16)."
    ));
    assert_eq!(
        check(&config, "shop-homepage"),
        "  - name: shop-homepage\n    timeout: 48s\n    labels:\n      group: Shop\n      team: web\n    http:\n      \
         url: https://shop.example.com/\n"
    );
    assert_eq!(
        check(&config, "shop-search"),
        "  - name: shop-search\n    interval: 30s\n    timeout: 24s\n    labels:\n      group: Shop\n    http:\n      \
         url: \"https://shop.example.com/search?q=socks\"\n      expect:\n        body_contains: results\n"
    );
    assert_eq!(
        check(&config, "orders-api"),
        "  - name: orders-api\n    interval: 2m\n    timeout: 10s\n    http:\n      url: https://api.example.com/v1/orders\n      \
         method: POST\n      body: \"{\\\"dry_run\\\": true}\"\n      headers:\n        \
         Authorization: ${env:ORDERS_API_AUTHORIZATION}\n        Accept: application/json\n        \
         Content-Type: application/json\n      expect:\n        status:\n          - 2xx\n          - 3xx\n"
    );
    assert_eq!(
        check(&config, "health-json"),
        "  - name: health-json\n    timeout: 48s\n    http:\n      url: https://shop.example.com/health.json\n      \
         expect:\n        json:\n          - path: $.status\n            equals: ok\n"
    );
    assert_eq!(
        check(&config, "admin"),
        "  - name: admin\n    timeout: 48s\n    http:\n      url: https://admin.example.com/\n      basic_auth:\n        \
         username: monitor\n        password: ${env:ADMIN_PASSWORD}\n      tls:\n        insecure: true\n      \
         expect:\n        status:\n          - 2xx\n          - 401\n"
    );
    assert_eq!(
        check(&config, "database-port"),
        "  - name: database-port\n    timeout: 48s\n    tcp:\n      target: db.example.com:5432\n"
    );
    assert_eq!(
        check(&config, "gateway-ping"),
        "  - name: gateway-ping\n    interval: 20s\n    timeout: 10s\n    icmp:\n      host: gateway.example.com\n"
    );
    assert_eq!(
        check(&config, "shop-dns"),
        "  - name: shop-dns\n    interval: 5m\n    timeout: 48s\n    dns:\n      query: shop.example.com\n      \
         record: MX\n      server: 192.0.2.53\n"
    );
    // Two hours is more than probenet's longest interval: an hour, and the report says so.
    assert_eq!(
        check(&config, "exports"),
        "  - name: exports\n    interval: 1h\n    timeout: 1m\n    http:\n      url: https://export.example.com/status\n"
    );
    assert_eq!(
        check(&config, "no-errors"),
        "  - name: no-errors\n    timeout: 48s\n    http:\n      url: https://shop.example.com/\n      expect:\n        \
         body_not_contains: Internal Server Error\n"
    );
    // The second monitor named "Shop homepage" gets a name of its own.
    assert_eq!(
        check(&config, "shop-homepage-2"),
        "  - name: shop-homepage-2\n    timeout: 30s\n    browser:\n      steps:\n        - goto: https://shop.example.com/\n"
    );
    assert_eq!(config.matches("\n  - name: ").count(), 11, "{config}");
    let valid = validates(&written(&dir), &["ORDERS_API_AUTHORIZATION", "ADMIN_PASSWORD"]).await;
    valid.assert_code(0);
    assert!(valid.stdout.starts_with("ok: 11 checks, 1 region"), "{}", valid.stdout);
}

#[tokio::test]
async fn uptime_kuma_lists_what_is_not_carried_over_by_json_path_and_keeps_secrets_out() {
    let (out, config, _dir) = import(&["uptime-kuma", "uptime-kuma.json"]).await;
    out.assert_code(0);
    let expected = [
        "uptime-kuma.json: notificationList: 1 notification provider not carried over: declare probenet \
         `notifiers:` and `alerts:` (docs/notifiers.md)",
        "uptime-kuma.json: monitorList[2].maxretries: retries before down are not carried over: a probenet alert's \
         `consecutive` or `for` waits instead",
        "uptime-kuma.json: monitorList[5].expiryNotification: certificate expiry notifications are not carried \
         over: set `expect.min_days_remaining` to fail the check instead",
        "uptime-kuma.json: monitorList[9].type: monitor type \"push\": probenet has no such check; \"Nightly job\" \
         is not written",
        "uptime-kuma.json: monitorList[10].type: monitor type \"redis\": probenet has no such check; \"Cache\" is \
         not written",
        "uptime-kuma.json: monitorList[12].interval: interval 2h: probenet runs a check at least hourly; 1h written",
    ];
    assert_eq!(dropped(&out.stderr), expected);
    assert_no_secret(&out, &config);
    assert!(out.stderr.contains(
        "  ORDERS_API_AUTHORIZATION  for http.headers.Authorization of check orders-api (from uptime-kuma.json: \
         monitorList[3].headers.Authorization)\n"
    ));
    assert!(out.stderr.contains(
        "  ADMIN_PASSWORD  for http.basic_auth.password of check admin (from uptime-kuma.json: \
         monitorList[5].basic_auth_pass)\n"
    ));
}

#[tokio::test]
async fn paused_kuma_monitors_are_named_and_written_only_when_asked() {
    let (out, config, _dir) = import(&["uptime-kuma", "uptime-kuma.json"]).await;
    out.assert_code(0);
    assert!(!config.contains("- name: old-blog"), "{config}");
    assert!(out.stderr.contains(
        "probenet: Paused monitors were not written; `--include-paused` writes them: Old blog (uptime-kuma.json: \
         monitorList[11]).\n"
    ));
    let (out, config, _dir) = import(&["uptime-kuma", "uptime-kuma.json", "--include-paused"]).await;
    out.assert_code(0);
    assert_eq!(
        check(&config, "old-blog"),
        "  - name: old-blog\n    timeout: 48s\n    http:\n      url: https://blog.example.com/\n"
    );
}

// -------------------------------------------------------------------------------------------------------------
// Bad input and standard output
// -------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_yaml_and_json_are_errors_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gatus.yaml"), "endpoints:\n  - name: web\n    url: [https://example.com/\n")
        .unwrap();
    std::fs::write(
        dir.path().join("kuma.json"),
        "{\"version\": \"1.23.0\",\n \"monitorList\": [\n  {\"id\": 1,}\n ]}\n",
    )
    .unwrap();
    let out = probenet(["import", "gatus", "gatus.yaml"]).current_dir(dir.path()).output().await;
    out.assert_code(1);
    assert_eq!(out.stdout, "");
    let first = out.stderr.lines().next().unwrap();
    assert!(first.starts_with("gatus.yaml:4:1: invalid YAML: "), "{}", out.stderr);
    assert!(out.stderr.ends_with("probenet: 1 error in the input; nothing was written\n"), "{}", out.stderr);

    let out = probenet(["import", "uptime-kuma", "kuma.json"]).current_dir(dir.path()).output().await;
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        "kuma.json:3:12: invalid JSON: trailing comma\nprobenet: 1 error in the input; nothing was written\n"
    );
}

#[tokio::test]
async fn another_tools_file_is_refused_saying_what_was_expected() {
    // A Kuma backup is JSON, so valid YAML, but not a Gatus config; a Gatus config is not JSON.
    let out = probenet(["import", "gatus", "uptime-kuma.json"]).current_dir(fixture("")).output().await;
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        "uptime-kuma.json:1:1: no `endpoints:`: is this a Gatus config file?\n\
         probenet: 1 error in the input; nothing was written\n"
    );
    let out = probenet(["import", "uptime-kuma", "gatus.yaml"]).current_dir(fixture("")).output().await;
    out.assert_code(1);
    assert!(out.stderr.starts_with("gatus.yaml:1:1: invalid JSON: "), "{}", out.stderr);
    let out =
        probenet(["import", "blackbox", "prometheus.yml", "blackbox.yml"]).current_dir(fixture("")).output().await;
    out.assert_code(1);
    assert!(
        out.stderr.starts_with("prometheus.yml:2:1: no `modules:` mapping: is this blackbox_exporter's config file?\n"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_file_over_16_mib_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("backup.json");
    let file = std::fs::File::create(&big).unwrap();
    file.set_len((16 << 20) + 1).unwrap();
    let out = probenet(["import", "uptime-kuma", "backup.json"]).current_dir(dir.path()).output().await;
    out.assert_code(1);
    assert_eq!(
        out.stderr,
        "backup.json: the file is 16777217 bytes, larger than the 16 MiB `probenet import` reads\n\
         probenet: 1 error in the input; nothing was written\n"
    );
}

#[tokio::test]
async fn without_o_the_config_goes_to_standard_output_and_the_report_to_standard_error() {
    let out = probenet(["import", "gatus", "gatus.yaml"]).current_dir(fixture("")).output().await;
    out.assert_code(0);
    assert!(out.stdout.starts_with("# Imported by `probenet import gatus` from the Gatus config gatus.yaml."));
    assert!(out.stdout.contains("\n  - name: shop-homepage\n"), "{}", out.stdout);
    assert!(!out.stderr.contains("- name:"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("probenet: wrote 8 checks to standard output, all in region `local` (rename it or add more)\n"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn the_region_can_be_named() {
    let (out, config, _dir) = import(&["gatus", "gatus.yaml", "--region", "eu-west"]).await;
    out.assert_code(0);
    assert!(config.contains("\nregions:\n  eu-west: {}\n"), "{config}");
    assert!(config.contains("the one region declared below, `eu-west`"), "{config}");
    let (out, _config, _dir) = import(&["gatus", "gatus.yaml", "--region", "EU West"]).await;
    out.assert_code(2);
    assert!(out.stderr.contains("--region \"EU West\" is not a region name"), "{}", out.stderr);
}
