//! Regions are real: probes from two network namespaces whose path to the target runs through delay lines of
//! 10 ms and 80 ms see at least that much in their `connect` phase, and the far region is the slower one.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use crate::util::processes::can_create_namespaces;
use probenet_testkit::{Region, TARGET_IP};

/// Serves a fixed HTTP response on TARGET_IP inside the region's target namespace, on a background thread.
fn serve_in_target(region: &Region) -> SocketAddr {
    let listener = region
        .in_target(|| TcpListener::bind((TARGET_IP, 0)))
        .unwrap_or_else(|error| panic!("binding in {}: {error}", region.target_ns()));
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(64) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nWelcome");
        }
    });
    addr
}

/// Runs one HTTP check from the region's prober namespace and returns its JSON line.
fn probe_from(region: &Region, target: SocketAddr) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("region.yaml");
    let yaml = format!(
        "checks:\n  - name: far-away\n    timeout: 5s\n    http:\n      url: http://{target}/\n      expect: {{body_contains: Welcome}}\n"
    );
    std::fs::write(&config, yaml).unwrap();
    let output = region
        .prober_command(env!("CARGO_BIN_EXE_probenet"))
        .args(["run", "--output", "json"])
        .arg(&config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "probe from {} failed: {stdout} {}",
        region.prober_ns(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_str(stdout.lines().next().unwrap_or_default()).unwrap()
}

#[test]
fn connect_phase_reflects_each_regions_delay() {
    if !can_create_namespaces() {
        return;
    }
    let near = Region::create("near", Duration::from_millis(10)).unwrap();
    let far = Region::create("far", Duration::from_millis(80)).unwrap();
    let near_target = serve_in_target(&near);
    let far_target = serve_in_target(&far);

    let mut near_connect = Vec::new();
    let mut far_connect = Vec::new();
    for _ in 0..3 {
        for (region, target, samples) in [(&near, near_target, &mut near_connect), (&far, far_target, &mut far_connect)]
        {
            let line = probe_from(region, target);
            assert_eq!(line["success"], true, "{line}");
            let connect = line["phases"]["connect"].as_f64().unwrap();
            let processing = line["phases"]["processing"].as_f64().unwrap();
            // Every round trip crosses the delay line: the handshake, and the request to its first byte.
            assert!(
                connect >= region.delay().as_secs_f64(),
                "{}: connect {connect}s < {:?}",
                region.prober_ns(),
                region.delay()
            );
            assert!(
                processing >= region.delay().as_secs_f64(),
                "{}: processing {processing}s < {:?}",
                region.prober_ns(),
                region.delay()
            );
            samples.push(connect);
        }
    }
    near_connect.sort_by(f64::total_cmp);
    far_connect.sort_by(f64::total_cmp);
    let (near_median, far_median) = (near_connect[1], far_connect[1]);
    assert!(far_median > near_median + 0.05, "far {far_median}s should exceed near {near_median}s by about 70ms");
}

#[test]
fn namespaces_are_removed_when_the_region_is_dropped() {
    if !can_create_namespaces() {
        return;
    }
    let region = Region::create("cleanup", Duration::from_millis(1)).unwrap();
    let names = [region.prober_ns().to_owned(), region.target_ns().to_owned()];
    drop(region);
    let list = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    for name in names {
        assert!(!list.contains(&name), "{name} is still there");
    }
}

#[test]
fn a_control_link_reaches_the_root_namespace_without_the_delay() {
    if !can_create_namespaces() {
        return;
    }
    let region = Region::create("control", Duration::from_secs(2)).unwrap();
    let (host_ip, _) = region.control_link().unwrap();
    let listener = TcpListener::bind((host_ip, 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1) {
            let _ = stream.map(|mut stream| stream.write_all(b"hi"));
        }
    });
    let started = std::time::Instant::now();
    let got = region
        .in_prober(move || {
            let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
            let mut buf = String::new();
            stream.read_to_string(&mut buf)?;
            Ok(buf)
        })
        .unwrap();
    assert_eq!(got, "hi");
    // The 2 s delay line is not on this path (a bound far from any real timing, not a timing assertion).
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}
