//! `probenet run`: the quick start against a local site, both outputs, check selection, exit codes and
//! failures before any HTTP (connection refused, unresolvable host), a browser check that cannot connect,
//! and `ip_strategy: all` probing each address of a name that has two.

use crate::util::{Config, Hosts, Pki, REPO, Server, assertion, closed_port, http_check, phase, run_json};

/// `examples/quickstart.yaml`, pointed at `srv` instead of 127.0.0.1:8000.
fn quickstart(srv: &Server) -> Config {
    let text = std::fs::read_to_string(format!("{REPO}/examples/quickstart.yaml")).unwrap();
    assert!(text.contains("127.0.0.1:8000"), "the quick start no longer targets 127.0.0.1:8000");
    Config::new(&text.replace("127.0.0.1:8000", &srv.addr().to_string()))
}

/// The quick start's two plain HTTP checks of the shop, from its first region.
const QUICKSTART_HTTP: &[&str] = &["--check", "shop-homepage", "--check", "shop-health", "--region", "local-a"];

/// The quick start's demo site, with the home page answering `status` and `body`.
async fn demo_site(status: u16, body: &str) -> Server {
    Server::http1().route("/", status, body).json("/health.json", r#"{"status": "ok"}"#).start().await
}

#[tokio::test]
async fn quickstart_passes_against_the_demo_site() {
    let srv = demo_site(200, "Welcome to the shop").await;
    let out = quickstart(&srv).run_json(QUICKSTART_HTTP).await;
    out.assert_code(0);
    assert_eq!(out.json_lines().len(), 2, "{}", out.stdout);
    // Printed in the order they finish: taken by name.
    let lines = [out.check("shop-homepage"), out.check("shop-health")];
    for (line, path) in lines.iter().zip(["/", "/health.json"]) {
        assert_eq!(line["success"], true, "{line}");
        assert_eq!(line["state"], "up", "{line}");
        assert_eq!(line["kind"], "http");
        assert_eq!(line["region"], "local-a");
        assert_eq!(line["target"], srv.url(path));
        assert!(line["reason"].is_null() && line["error"].is_null(), "{line}");
        for name in ["resolve", "connect", "processing", "transfer"] {
            assert!(phase(line, name) >= 0.0);
        }
        assert!(line["phases"].get("tls").is_none(), "plain HTTP has no tls phase: {line}");
        let status = assertion(line, "status");
        assert_eq!(status["observed"], "200");
        assert_eq!(status["passed"], true);
        assert_eq!(line["details"]["status_code"], 200);
        assert_eq!(line["details"]["http_version"], "1.1");
        assert_eq!(line["details"]["tls"], false);
        assert!(line["duration_seconds"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(lines[0]["check"], "shop-homepage");
    assert_eq!(lines[1]["check"], "shop-health");
    assert_eq!(assertion(&lines[0], "body_contains")["observed"], "found");
    assert_eq!(assertion(&lines[1], "header content-type")["passed"], true);
    assert_eq!(assertion(&lines[1], "json $.status")["passed"], true);
    assert_eq!((srv.hits("/"), srv.hits("/health.json")), (1, 1));
}

#[tokio::test]
async fn quickstart_fails_with_reason_status_when_the_home_page_answers_500() {
    let srv = demo_site(500, "Welcome, but broken").await;
    let out = quickstart(&srv).run_json(QUICKSTART_HTTP).await;
    out.assert_code(1);
    let home = out.check("shop-homepage");
    assert_eq!(home["success"], false);
    assert_eq!(home["state"], "down");
    assert_eq!(home["reason"], "status");
    assert_eq!(home["error"], "status: expected 200, got 500");
    assert_eq!(assertion(&home, "status")["observed"], "500");
    assert_eq!(out.check("shop-health")["success"], true, "the other check is unaffected");
}

#[tokio::test]
async fn quickstart_fails_with_reason_body_when_the_welcome_is_missing() {
    let srv = demo_site(200, "Under maintenance").await;
    let out = quickstart(&srv).run_json(QUICKSTART_HTTP).await;
    out.assert_code(1);
    let home = out.check("shop-homepage");
    assert_eq!(home["success"], false);
    assert_eq!(home["reason"], "body");
    assert_eq!(assertion(&home, "status")["passed"], true);
    let body = assertion(&home, "body_contains");
    assert_eq!(body["passed"], false);
    assert_eq!(body["expected"], "\"Welcome\"");
    assert_eq!(body["observed"], "not found");
}

#[tokio::test]
async fn table_output_names_every_check_and_marks_failures_down() {
    let srv = demo_site(500, "oops").await;
    let out = quickstart(&srv).run_table(QUICKSTART_HTTP).await;
    out.assert_code(1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let columns: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(columns, ["CHECK", "KIND", "REGION", "RESULT", "DURATION", "REASON"]);
    let row = |name: &str| -> Vec<&str> {
        let line = lines.iter().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("{}", out.stdout));
        line.split_whitespace().collect()
    };
    let home = row("shop-homepage ");
    assert_eq!((home[1], home[2], home[3], home[5]), ("http", "local-a", "DOWN", "status"), "{}", out.stdout);
    let health = row("shop-health ");
    assert_eq!((health[3], health[5]), ("up", "-"), "{}", out.stdout);
    assert!(out.stdout.contains("\nshop-homepage: status: expected 200, got 500\n"), "{}", out.stdout);
}

#[tokio::test]
async fn check_selects_one_check_and_an_unknown_name_suggests_the_closest() {
    let srv = demo_site(200, "Welcome").await;
    let config = quickstart(&srv);
    let out = config.run_json(&["--check", "shop-health"]).await;
    out.assert_code(0);
    assert_eq!(out.only()["check"], "shop-health");
    assert_eq!((srv.hits("/"), srv.hits("/health.json")), (0, 1), "only the selected check ran");

    let out = config.run_json(&["--check", "shop-helth"]).await;
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "probenet: no check named \"shop-helth\" (did you mean \"shop-health\"?)\n");
    assert_eq!(srv.hits("/health.json"), 1, "nothing ran");
}

#[tokio::test]
async fn a_config_error_exits_2_before_running_anything() {
    let srv = demo_site(200, "Welcome").await;
    let config = Config::new(&http_check("home", &srv.url("/"), "expect: {status: [200], max_duration: 2 secs}"));
    let out = config.run_json(&[]).await;
    out.assert_code(2);
    assert_eq!(out.stdout, "");
    let file = config.path.display();
    assert_eq!(
        out.stderr,
        format!(
            "{file}:6:45: checks[0].http.expect.max_duration: \"2 secs\" is not a duration; \
             write for example 500ms, 30s, 5m or 1h30m\nprobenet: 1 error in the config; nothing was applied\n"
        )
    );
    assert_eq!(srv.hits("/"), 0);
}

#[tokio::test]
async fn connection_refused_fails_with_reason_connect() {
    let port = closed_port().await;
    let out = run_json(&http_check("refused", &format!("http://127.0.0.1:{port}/"), "")).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["success"], false);
    assert_eq!(result["reason"], "connect");
    let error = result["error"].as_str().unwrap();
    assert!(error.starts_with(&format!("connect to 127.0.0.1:{port}: ")), "{error}");
    assert!(phase(&result, "connect") >= 0.0);
    assert!(result["phases"].get("processing").is_none(), "no request was sent: {result}");
}

#[tokio::test]
async fn an_unresolvable_host_fails_with_reason_dns() {
    // `.invalid` never resolves (RFC 2606), online or offline.
    let out = run_json(&http_check("nowhere", "http://nonexistent.invalid/", "")).await;
    out.assert_code(1);
    let result = out.only();
    assert_eq!(result["success"], false);
    assert_eq!(result["reason"], "dns");
    assert!(result["error"].as_str().unwrap().starts_with("resolving nonexistent.invalid: "), "{result}");
    assert!(result["phases"].get("connect").is_none(), "{result}");
}

#[tokio::test]
async fn a_browser_check_runs_and_against_a_closed_port_fails_never_succeeds() {
    let port = closed_port().await;
    let yaml = format!(
        r#"checks:
  - name: a-browser
    timeout: 30s
    browser: {{steps: [{{goto: "http://127.0.0.1:{port}/"}}]}}
"#
    );
    let artifacts = tempfile::tempdir().unwrap();
    let out = Config::new(&yaml).run_json(&["--artifacts", artifacts.path().to_str().unwrap()]).await;
    out.assert_code(1);
    let line = out.only();
    assert_eq!(line["kind"], "browser");
    assert_eq!(line["success"], false, "{line}");
    assert_eq!(line["state"], "down", "{line}");
    // With Chromium the page cannot load; without it the check says so. Never `unsupported`, never a success.
    let chromium = probenet_browser::find_binary(|name| std::env::var_os(name)).is_ok();
    let expected = if chromium { "connect" } else { "browser_unavailable" };
    assert_eq!(line["reason"], expected, "{line}");
    if chromium {
        let error = line["error"].as_str().unwrap_or_default();
        assert!(error.starts_with("step 1 goto ") && error.contains("ERR_CONNECTION_REFUSED"), "{line}");
        assert_eq!(line["details"]["failed_step"]["step"], 1, "{line}");
        // The screenshot of the failing step is written under --artifacts.
        let path = line["artifacts"][0]["path"].as_str().unwrap_or_default();
        assert!(path.starts_with(artifacts.path().to_str().unwrap()) && path.ends_with("failure-step-1.png"), "{line}");
        assert!(std::fs::read(path).unwrap().starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {path}");
    }
}

#[tokio::test]
async fn region_selects_and_labels_results_and_an_unknown_one_exits_2() {
    let srv = Server::http1().route("/", 200, "hi").start().await;
    let yaml = format!(
        r#"regions:
  eu-west: {{}}
  us-east: {{}}
checks:
  - name: everywhere
    http: {{url: "{url}"}}
  - name: us-only
    regions: [us-east]
    http: {{url: "{url}"}}
"#,
        url = srv.url("/")
    );
    let config = Config::new(&yaml);
    let out = config.run_json(&[]).await;
    out.assert_code(0);
    assert_eq!(out.check("everywhere")["region"], "eu-west", "a check's first region by default");
    assert_eq!(out.check("us-only")["region"], "us-east");

    let out = config.run_json(&["--region", "eu-west"]).await;
    out.assert_code(0);
    assert_eq!(out.only()["check"], "everywhere");

    let out = config.run_json(&["--region", "mars"]).await;
    out.assert_code(2);
    assert_eq!(out.stderr, "probenet: unknown region \"mars\"; declared regions: eu-west, us-east\n");
    assert_eq!(srv.hits("/"), 3);
}

/// `probenet run` on a fast and a slow check, stdout piped: the lines it printed so far are read from a thread.
struct Streaming {
    child: crate::util::processes::Kill,
    lines: std::sync::mpsc::Receiver<String>,
    _config: Config,
}

impl Streaming {
    fn start(srv: &Server, output: &[&str]) -> Self {
        let yaml = format!(
            "checks:\n  - name: slow\n    timeout: 20s\n    http: {{url: \"{}\"}}\n  - name: fast\n    http: {{url: \"{}\"}}\n",
            srv.url("/slow"),
            srv.url("/fast")
        );
        let config = Config::new(&yaml);
        let mut child = crate::util::processes::command()
            .arg("run")
            .arg(&config.path)
            .args(output)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self { child: crate::util::processes::Kill(child), lines, _config: config }
    }

    /// The next line printed, within 10 s.
    #[track_caller]
    fn next_line(&self) -> String {
        self.lines.recv_timeout(std::time::Duration::from_secs(10)).expect("a line within 10 s")
    }

    /// Ctrl-C, then the exit code, what else it printed on stdout, and its stderr.
    fn interrupt(mut self) -> (i32, Vec<String>, String) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.0.id()).unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).unwrap();
        let start = std::time::Instant::now();
        let status = loop {
            if let Some(status) = self.child.0.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "probenet run did not stop on Ctrl-C");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let mut stderr = String::new();
        use std::io::Read as _;
        self.child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        let rest: Vec<String> = self.lines.iter().collect();
        (status.code().unwrap_or(-1), rest, stderr)
    }
}

async fn slow_and_fast() -> Server {
    Server::http1()
        .slow_head("/slow", std::time::Duration::from_secs(15), "late")
        .route("/fast", 200, "hi")
        .start()
        .await
}

// Multi-threaded: the test blocks on the child's output while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_stream_as_checks_finish_and_ctrl_c_keeps_the_finished_ones() {
    let srv = slow_and_fast().await;
    let run = Streaming::start(&srv, &["--output", "json"]);
    let first: serde_json::Value = serde_json::from_str(&run.next_line()).unwrap();
    assert_eq!(first["check"], "fast", "the fast check's line comes first, while the slow one runs: {first}");
    assert_eq!(first["success"], true);
    let start = std::time::Instant::now();
    while srv.hits("/slow") == 0 {
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "the slow check is running");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let (code, rest, stderr) = run.interrupt();
    assert_eq!(code, 130, "{stderr}");
    assert!(rest.is_empty(), "nothing more after the fast line: {rest:?}");
    assert_eq!(stderr, "probenet: interrupted: 1 of 2 checks finished; the others were stopped\n");
}

// Multi-threaded: the test blocks on the child's output while the server answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn table_rows_stream_as_checks_finish() {
    let srv = slow_and_fast().await;
    let run = Streaming::start(&srv, &[]);
    let header: Vec<String> = run.next_line().split_whitespace().map(str::to_owned).collect();
    assert_eq!(header, ["CHECK", "KIND", "REGION", "RESULT", "DURATION", "REASON"]);
    let row: Vec<String> = run.next_line().split_whitespace().map(str::to_owned).collect();
    assert_eq!((row[0].as_str(), row[3].as_str()), ("fast", "up"), "{row:?}");
    let (code, rest, _) = run.interrupt();
    assert_eq!(code, 130);
    assert!(rest.is_empty(), "{rest:?}");
}

/// `multi.test` has two addresses: 127.0.0.1, where the test servers listen, and 127.0.0.2, where nothing
/// listens on their ports (connections are refused).
const MULTI_HOSTS: &str = "127.0.0.1 multi.test\n127.0.0.2 multi.test\n";

/// The per-address series a result's details give (`name{ip} value`), as the exporters write them.
fn ip_series(kind: probenet_checks::Kind, details: &serde_json::Value) -> Vec<String> {
    struct Written(Vec<String>);
    impl probenet_checks::metrics::SeriesWriter for Written {
        fn push(&mut self, name: &'static str, labels: &[(&str, &str)], value: f64) {
            if name.starts_with("probenet_ip_") {
                let labels: Vec<String> = labels.iter().map(|(key, value)| format!("{key}={value}")).collect();
                let value = if name == "probenet_ip_success" { value.to_string() } else { "seconds".to_owned() };
                self.0.push(format!("{name}{{{}}} {value}", labels.join(",")));
            }
        }
    }
    let outcome = probenet_checks::Outcome { details: details.clone(), ..probenet_checks::Outcome::up(0.0) };
    let mut written = Written(Vec::new());
    kind.series(&outcome, &mut written);
    written.0.sort();
    written.0
}

/// The per-address result of `ip` in a result's details.
#[track_caller]
fn ip_result<'a>(result: &'a serde_json::Value, ip: &str) -> &'a serde_json::Value {
    result["details"]["ips"]
        .as_array()
        .and_then(|all| all.iter().find(|one| one["ip"] == ip))
        .unwrap_or_else(|| panic!("no result for {ip} in {result}"))
}

#[tokio::test]
async fn ip_strategy_all_probes_every_address_of_a_name_and_names_the_refusing_one() {
    let test = "run::ip_strategy_all_probes_every_address_of_a_name_and_names_the_refusing_one";
    let Some(hosts) = Hosts::new_or_skip(test, MULTI_HOSTS) else { return };
    let pki = Pki::new();
    let plain = Server::http1().route("/", 200, "hello").start().await;
    // A certificate for the name only: a probe pinned to an address still sends and checks the name.
    let secure = Server::tls(pki.leaf(&["multi.test"], (2020, 1, 1), (2090, 1, 1))).route("/", 200, "hi").start().await;
    let (p, s) = (plain.addr().port(), secure.addr().port());
    let config = Config::new("");
    let ca = config.dir().join("ca.pem");
    std::fs::write(&ca, pki.ca_pem()).unwrap();
    let ca = ca.display();
    let yaml = format!(
        "checks:\n\
         - {{name: http-all, timeout: 5s, http: {{url: \"http://multi.test:{p}/\", ip_strategy: all}}}}\n\
         - {{name: http-any, timeout: 5s, http: {{url: \"http://multi.test:{p}/\", ip_strategy: all, ip_verdict: any}}}}\n\
         - {{name: http-first, timeout: 5s, http: {{url: \"http://multi.test:{p}/\"}}}}\n\
         - {{name: tcp-all, timeout: 5s, tcp: {{target: \"multi.test:{p}\", ip_strategy: all}}}}\n\
         - {{name: https-any, timeout: 5s, http: {{url: \"https://multi.test:{s}/\", ip_strategy: all, ip_verdict: any, tls: {{ca_file: \"{ca}\"}}}}}}\n\
         - {{name: tls-all, timeout: 5s, tls: {{target: \"multi.test:{s}\", ca_file: \"{ca}\", ip_strategy: all}}}}\n"
    );
    std::fs::write(&config.path, yaml).unwrap();
    let out = hosts.run_json(&config, &[]).await;
    out.assert_code(1);

    // `all`: down, with the refusing address's reason, and its error names it (and only it).
    for (name, port) in [("http-all", p), ("tcp-all", p), ("tls-all", s)] {
        let result = out.check(name);
        assert_eq!((&result["success"], &result["reason"]), (&false.into(), &"connect".into()), "{result}");
        let error = result["error"].as_str().unwrap();
        assert!(error.starts_with("1 of 2 addresses down: ") && error.contains("connect"), "{error}");
        assert_eq!(error.matches(&format!("127.0.0.2:{port}")).count(), 1, "named once: {error}");
        assert!(!error.contains(&format!("127.0.0.1:{port}")), "{error}");
        assert_eq!(result["details"]["ips"].as_array().map(Vec::len), Some(2), "{result}");
        let (good, refused) = (ip_result(&result, "127.0.0.1"), ip_result(&result, "127.0.0.2"));
        assert_eq!((&good["state"], &good["address"]), (&"up".into(), &format!("127.0.0.1:{port}").into()), "{result}");
        assert!(good["error"].is_null() && good["duration_seconds"].as_f64().unwrap() > 0.0, "{result}");
        assert_eq!((&refused["state"], &refused["reason"]), (&"down".into(), &"connect".into()), "{result}");
        assert!(phase(&result, "resolve") >= 0.0);
    }
    // The name was checked against the certificate over the pinned address.
    assert_eq!(ip_result(&out.check("tls-all"), "127.0.0.1")["state"], "up");

    // `any`: up, with the details of an address that is up.
    let any = out.check("http-any");
    assert_eq!((&any["success"], &any["state"]), (&true.into(), &"up".into()), "{any}");
    assert!(any["error"].is_null() && any["reason"].is_null(), "{any}");
    assert_eq!(any["details"]["status_code"], 200, "{any}");
    assert_eq!(ip_result(&any, "127.0.0.2")["reason"], "connect");
    let https = out.check("https-any");
    assert_eq!((&https["success"], &https["details"]["tls"]), (&true.into(), &true.into()), "{https}");
    assert_eq!(ip_result(&https, "127.0.0.1")["state"], "up", "{https}");

    // Per-address series beside the aggregate ones.
    assert_eq!(
        ip_series(probenet_checks::Kind::Http, &out.check("http-all")["details"]),
        [
            "probenet_ip_duration_seconds{ip=127.0.0.1} seconds",
            "probenet_ip_duration_seconds{ip=127.0.0.2} seconds",
            "probenet_ip_success{ip=127.0.0.1} 1",
            "probenet_ip_success{ip=127.0.0.2} 0",
        ]
    );

    // The default probes one address: no per-address results or series, and at most one request.
    let first = out.check("http-first");
    assert!(first["details"].get("ips").is_none(), "{first}");
    assert!(ip_series(probenet_checks::Kind::Http, &first["details"]).is_empty());
    let first_hits = usize::from(first["success"] == true);
    // http-all and http-any each reached 127.0.0.1 once; tcp-all sent no request.
    assert_eq!(plain.hits("/"), 2 + first_hits, "{first}");
    assert_eq!(secure.hits("/"), 1);
}

#[tokio::test]
async fn ip_strategy_all_probes_at_most_16_addresses_of_a_name() {
    let test = "run::ip_strategy_all_probes_at_most_16_addresses_of_a_name";
    let lines: String = (1..=20).map(|n| format!("127.0.0.{n} many.test\n")).collect();
    let Some(hosts) = Hosts::new_or_skip(test, &lines) else { return };
    let srv = Server::http1().route("/", 200, "hello").start().await;
    let port = srv.addr().port();
    let config = Config::new(&format!(
        "checks:\n  - {{name: many, timeout: 5s, tcp: {{target: \"many.test:{port}\", ip_strategy: all, ip_verdict: any}}}}\n"
    ));
    let out = hosts.run_json(&config, &[]).await;
    out.assert_code(0);
    let result = out.only();
    assert_eq!(result["success"], true, "{result}");
    let ips = result["details"]["ips"].as_array().unwrap();
    assert_eq!(ips.len(), 16, "{result}");
    assert_eq!(ips.iter().filter(|one| one["state"] == "up").count(), 1, "{result}");
}

#[tokio::test]
async fn ip_strategy_all_ends_every_probe_by_the_check_timeout_and_pings_each_address() {
    let test = "run::ip_strategy_all_ends_every_probe_by_the_check_timeout_and_pings_each_address";
    let Some(hosts) = Hosts::new_or_skip(test, MULTI_HOSTS) else { return };
    // 127.0.0.1 accepts and then says nothing for 5 s; 127.0.0.2 refuses.
    let srv = Server::http1().slow_head("/", std::time::Duration::from_secs(5), "late").start().await;
    let port = srv.addr().port();
    let config = Config::new(&format!(
        "checks:\n\
         - {{name: slow, timeout: 1s, http: {{url: \"http://multi.test:{port}/\", ip_strategy: all}}}}\n\
         - {{name: ping, timeout: 2s, icmp: {{host: multi.test, ip_version: ipv4, ip_strategy: all}}}}\n"
    ));
    let started = std::time::Instant::now();
    let out = hosts.run_json(&config, &[]).await;
    out.assert_code(1);
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "{:?}", started.elapsed());

    let slow = out.check("slow");
    assert_eq!((&slow["success"], &slow["reason"]), (&false.into(), &"timeout".into()), "{slow}");
    assert!(slow["duration_seconds"].as_f64().unwrap() < 1.5, "{slow}");
    // Both addresses are reported: the silent one timed out, the other refused at once.
    assert_eq!(ip_result(&slow, "127.0.0.1")["reason"], "timeout", "{slow}");
    assert_eq!(ip_result(&slow, "127.0.0.2")["reason"], "connect", "{slow}");
    let error = slow["error"].as_str().unwrap();
    assert!(error.starts_with("2 of 2 addresses down: 127.0.0.1:"), "{error}");

    let ping = out.check("ping");
    assert_eq!(ping["success"], true, "{ping}");
    for ip in ["127.0.0.1", "127.0.0.2"] {
        let one = ip_result(&ping, ip);
        assert_eq!((&one["state"], &one["address"]), (&"up".into(), &ip.into()), "{ping}");
    }
}
