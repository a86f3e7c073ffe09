//! The container image, for real: `scripts/image` builds it offline (its Debian base from mmdebstrap), then a
//! scheduler and one prober per region run from it on a podman network, as uid 65534 under the default seccomp
//! profile, with runc and no NET_RAW (ICMP through ping sockets). HTTP, TLS, DNS, ICMP and browser checks of
//! targets on the network's gateway (and of the scheduler's address) pass in both regions, and tini is PID 1.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::processes::{free_port, token};
use crate::util::{Pki, REPO};

/// The regions, and the capabilities of their prober: none but `SYS_CHROOT` (which Chromium's sandbox needs),
/// and none at all (Chromium then runs without its sandbox, and says so). Never `NET_RAW`.
const REGIONS: [(&str, &[&str]); 2] =
    [("eu-west", &["--cap-drop", "ALL", "--cap-add", "SYS_CHROOT"]), ("us-east", &["--cap-drop", "ALL"])];
const CHECKS: [&str; 5] = ["web", "cert", "resolver", "ping", "journey"];
/// What every container gets: runc (crun fails on these hybrid cgroups) and limits that need no privilege.
const RUN_FLAGS: [&str; 6] = ["--runtime", "runc", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"];
const TITLE: &str = "probenet container test";

/// Runs a command to its end, at most `limit` (then kills it and fails).
fn run(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot run {command:?}: {error}"));
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn podman(args: &[&str]) -> Output {
    run(Command::new("podman").args(args), Duration::from_secs(120))
}

#[track_caller]
fn podman_ok(args: &[&str]) -> String {
    let output = podman(args);
    assert!(output.status.success(), "podman {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// Why this host cannot run the test at all, if it cannot.
fn host_cannot_run_containers() -> Option<String> {
    for program in ["podman", "mmdebstrap", "runc"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {program}")]).output();
        if !found.is_ok_and(|output| output.status.success()) {
            return Some(format!("{program} is not installed (apt-get install podman runc mmdebstrap)"));
        }
    }
    let info = podman(&["info", "--format", "{{.Host.OCIRuntime.Name}}"]);
    if !info.status.success() {
        return Some(format!("`podman info` fails: {}", String::from_utf8_lossy(&info.stderr).trim()));
    }
    None
}

/// Removes what the test made (containers, network, image tag), also when it fails.
struct Cleanup {
    containers: Vec<String>,
    network: Option<String>,
    tag: Option<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for name in &self.containers {
            let _ = podman(&["rm", "--force", "--time", "0", name]);
        }
        if let Some(network) = &self.network {
            let _ = podman(&["network", "rm", "--force", network]);
        }
        if let Some(tag) = &self.tag {
            let _ = podman(&["rmi", "--force", tag]);
        }
    }
}

/// Serves a page with a title on `ip:port` (bounded: at most 10,000 connections).
fn serve_http(ip: Ipv4Addr, port: u16) {
    let listener = TcpListener::bind((ip, port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10_000) {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = stream.read(&mut buf);
                let body = format!("<!doctype html><title>{TITLE}</title><h1>Welcome</h1>");
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(body.as_bytes());
            });
        }
    });
}

/// Completes TLS handshakes on `ip:port` with a certificate for `ip` signed by `pki` (bounded).
fn serve_tls(ip: Ipv4Addr, port: u16, pki: &Pki) {
    let config = pki.leaf(&[&ip.to_string()], (2000, 1, 1), (2099, 12, 31)).server_config();
    let listener = TcpListener::bind((ip, port)).unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10_000) {
            let Ok(mut stream) = stream else { continue };
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(mut tls) = rustls::ServerConnection::new(config) else { return };
                while tls.is_handshaking() {
                    if tls.complete_io(&mut stream).is_err() {
                        return;
                    }
                }
                let _ = tls.complete_io(&mut stream);
            });
        }
    });
}

/// Answers every DNS query on `ip:port` (UDP) with one A record, 203.0.113.10 (bounded).
fn serve_dns(ip: Ipv4Addr, port: u16) {
    let socket = UdpSocket::bind((ip, port)).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for _ in 0..10_000 {
            let Ok((len, from)) = socket.recv_from(&mut buf) else { continue };
            // The header (12 bytes), then one question: a name, a type and a class.
            let Some(end) = buf[12..len].iter().position(|&byte| byte == 0).map(|at| 12 + at + 1 + 4) else {
                continue;
            };
            if end > len {
                continue;
            }
            let mut reply = Vec::with_capacity(end + 16);
            reply.extend_from_slice(&buf[..2]); // id
            reply.extend_from_slice(&[0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]); // answer, recursion; 1 question, 1 answer
            reply.extend_from_slice(&buf[12..end]);
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 10]);
            let _ = socket.send_to(&reply, from);
        }
    });
}

fn config(gateway: Ipv4Addr, scheduler_ip: Ipv4Addr, ports: (u16, u16, u16)) -> String {
    let (http, tls, dns) = ports;
    let mut yaml = String::from("regions:\n");
    for (region, _) in REGIONS {
        yaml.push_str(&format!("  {region}: {{}}\n"));
    }
    yaml.push_str(&format!(
        "defaults: {{interval: 5s, timeout: 4s}}
checks:
  - name: web
    http: {{url: \"http://{gateway}:{http}/\", expect: {{body_contains: Welcome}}}}
  - name: cert
    tls: {{target: \"{gateway}:{tls}\", ca_file: /etc/probenet/targets-ca.pem}}
  - name: resolver
    dns: {{query: shop.probenet.test, server: \"{gateway}:{dns}\", expect: {{answers: [\"203.0.113.10\"]}}}}
  - name: ping
    icmp: {{host: \"{scheduler_ip}\", count: 2, interval: 200ms}}
  - name: journey
    interval: 30s
    timeout: 25s
    browser:
      steps:
        - goto: \"http://{gateway}:{http}/\"
        - expect_title: \"{TITLE}\"
"
    ));
    yaml
}

/// A network that does not exist yet: 10.251.N.0/24 for a free N.
fn create_network(name: &str) -> Ipv4Addr {
    let taken = podman_ok(&["network", "ls", "--format", "{{range .Subnets}}{{.Subnet}} {{end}}"]);
    for offset in 0..50 {
        let n = u8::try_from((std::process::id() + offset) % 250).unwrap();
        let subnet = format!("10.251.{n}.0/24");
        if taken.contains(&subnet) {
            continue;
        }
        if podman(&["network", "create", "--subnet", &subnet, name]).status.success() {
            return Ipv4Addr::new(10, 251, n, 0);
        }
    }
    panic!("no free 10.251.N.0/24 subnet for a podman network");
}

#[test]
fn the_image_runs_a_scheduler_and_probers_in_two_regions() {
    if let Some(why) = host_cannot_run_containers() {
        println!("skip: {why}");
        eprintln!("skip: {why}");
        return;
    }
    let id = std::process::id();
    let tag = format!("localhost/probenet-test:{id}");
    let mut cleanup = Cleanup { containers: Vec::new(), network: None, tag: None };

    // The image, the offline way, with this test's (debug) binary in it.
    let started = Instant::now();
    let built = run(
        Command::new(Path::new(REPO).join("scripts/image")).args([
            "--binary",
            env!("CARGO_BIN_EXE_probenet"),
            "--tag",
            &tag,
            "--no-archive",
        ]),
        Duration::from_secs(20 * 60),
    );
    cleanup.tag = Some(tag.clone());
    assert!(built.status.success(), "scripts/image failed:\n{}", String::from_utf8_lossy(&built.stderr));
    eprintln!("image built in {:.0?}", started.elapsed());

    // Can this host run a container at all? (A failure here is the host's, not the image's.)
    let mut probe = vec!["run", "--rm"];
    probe.extend(RUN_FLAGS);
    probe.extend([tag.as_str(), "--version"]);
    let ran = podman(&probe);
    if !ran.status.success() {
        let why = String::from_utf8_lossy(&ran.stderr);
        println!("skip: podman cannot run a container here: {}", why.trim());
        eprintln!("skip: podman cannot run a container here: {}", why.trim());
        return;
    }

    let network = format!("probenet-test-{id}");
    let subnet = create_network(&network);
    cleanup.network = Some(network.clone());
    let [a, b, c, _] = subnet.octets();
    let gateway = Ipv4Addr::new(a, b, c, 1);
    let scheduler_ip = Ipv4Addr::new(a, b, c, 10);

    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&etc).unwrap();
    let (http_port, tls_port, dns_port) = (free_port(), free_port(), free_port());
    std::fs::write(etc.join("checks.yaml"), config(gateway, scheduler_ip, (http_port, tls_port, dns_port))).unwrap();
    let pki = Pki::new();
    std::fs::write(etc.join("targets-ca.pem"), pki.ca_pem()).unwrap();
    for (region, _) in REGIONS {
        std::fs::write(etc.join(format!("{region}.token")), token(&data, &["--region", region])).unwrap();
    }
    let admin = token(&data, &["--admin"]);
    // Everything the containers read or write belongs to their user, 65534.
    let chown = Command::new("chown").args(["-R", "65534:65534"]).arg(&data).arg(&etc).status().unwrap();
    assert!(chown.success());

    // The scheduler, with its own CA (plain HTTP is for loopback only), its API published on the host's loopback.
    let api_port = free_port();
    let scheduler = format!("probenet-test-scheduler-{id}");
    let (checks_mount, data_mount, publish) = (
        format!("{}:/etc/probenet/checks.yaml:ro", etc.join("checks.yaml").display()),
        format!("{}:/data", data.display()),
        format!("127.0.0.1:{api_port}:8443"),
    );
    let mut args = vec!["run", "--detach", "--name", &scheduler, "--network", &network];
    let scheduler_ip_text = scheduler_ip.to_string();
    args.extend(["--ip", &scheduler_ip_text, "--publish", &publish, "--volume", &checks_mount]);
    args.extend(["--volume", &data_mount]);
    args.extend(RUN_FLAGS);
    args.extend([tag.as_str(), "scheduler", "-c", "/etc/probenet/checks.yaml", "--listen", "0.0.0.0:8443"]);
    args.extend(["--data", "/data", "--san", &scheduler_ip_text]);
    podman_ok(&args);
    cleanup.containers.push(scheduler.clone());

    // The targets, on the host at the network's gateway (its bridge exists once a container runs on it).
    serve_http(gateway, http_port);
    serve_tls(gateway, tls_port, &pki);
    serve_dns(gateway, dns_port);

    let logs = |name: &str| {
        let output = podman(&["logs", "--tail", "40", name]);
        format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
    };
    let ca = data.join("ca.pem");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ca.exists() {
        assert!(Instant::now() < deadline, "the scheduler made no CA within 30s:\n{}", logs(&scheduler));
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));
    let client = reqwest::blocking::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap()])
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let get = |path: &str| -> Option<Value> {
        let response = client.get(format!("https://127.0.0.1:{api_port}{path}")).bearer_auth(&admin).send().ok()?;
        response.status().is_success().then(|| response.json().ok()).flatten()
    };

    // One prober per region, ICMP through ping sockets.
    let mut probers = Vec::new();
    for (region, caps) in REGIONS {
        let name = format!("probenet-test-{region}-{id}");
        let mounts = [
            format!("{}:/etc/probenet/scheduler-ca.pem:ro", ca.display()),
            format!("{}:/etc/probenet/token:ro", etc.join(format!("{region}.token")).display()),
            format!("{}:/etc/probenet/targets-ca.pem:ro", etc.join("targets-ca.pem").display()),
        ];
        let scheduler_url = format!("https://{scheduler_ip}:8443");
        let mut args = vec!["run", "--detach", "--name", &name, "--network", &network];
        args.extend(caps);
        args.extend(["--sysctl", "net.ipv4.ping_group_range=0 2147483647"]);
        for mount in &mounts {
            args.extend(["--volume", mount.as_str()]);
        }
        args.extend(RUN_FLAGS);
        args.extend([tag.as_str(), "prober", "--scheduler", &scheduler_url, "--region", region]);
        args.extend(["--token-file", "/etc/probenet/token", "--ca", "/etc/probenet/scheduler-ca.pem"]);
        args.extend(["--name", &name, "--spool", "/tmp/spool"]);
        podman_ok(&args);
        cleanup.containers.push(name.clone());
        probers.push(name);
    }

    // Every check passes in both regions (the browser's first start in a fresh container takes a while).
    let wanted = CHECKS.len() * REGIONS.len();
    let deadline = Instant::now() + Duration::from_secs(180);
    let pairs = loop {
        let pairs = get("/api/v1/checks").and_then(|value| value.as_array().cloned()).unwrap_or_default();
        let up = pairs.iter().filter(|pair| pair["state"] == "up").count();
        if pairs.len() == wanted && up == wanted {
            break pairs;
        }
        if Instant::now() > deadline {
            let states: Vec<String> = pairs
                .iter()
                .map(|pair| {
                    let outcome = &pair["last_result"]["outcome"];
                    format!("{}@{}: {} {}", pair["check"], pair["region"], pair["state"], outcome["message"])
                })
                .collect();
            let mut all_logs = format!("--- {scheduler}\n{}", logs(&scheduler));
            for prober in &probers {
                all_logs.push_str(&format!("\n--- {prober}\n{}", logs(prober)));
            }
            panic!("not every check is up within 180s:\n{}\n{all_logs}", states.join("\n"));
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!("every check up in both regions {:.0?} after the build", started.elapsed());
    for pair in &pairs {
        let details = &pair["last_result"]["outcome"]["details"];
        if pair["check"] == "ping" {
            assert_eq!(details["socket"], "datagram", "ICMP without NET_RAW goes through a ping socket: {pair}");
        }
        if pair["check"] == "journey" {
            // Sandboxed where it can be; without (and saying why) where the sandbox cannot start.
            let sandboxed = pair["region"] == "eu-west";
            assert_eq!(details["browser"]["sandbox"], sandboxed, "{pair}");
        }
    }

    // tini is PID 1 of the prober containers, and the probers run as 65534.
    for prober in &probers {
        let cmdline = podman_ok(&["exec", prober, "cat", "/proc/1/cmdline"]);
        assert!(cmdline.starts_with("/usr/bin/tini\0"), "PID 1 of {prober}: {cmdline:?}");
        assert_eq!(podman_ok(&["exec", prober, "id", "-u"]), "65534");
    }
}
