//! Holds a region with a delay line open until killed: `delayline NAME DELAY_MS` prints the two namespaces.
//! Whole-process benchmarks use it to run a prober and its target on either side of a known delay.

use std::time::Duration;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let name = args.next().unwrap_or_else(|| "bench".to_owned());
    let delay_ms: u64 = args.next().and_then(|text| text.parse().ok()).unwrap_or(10);
    let region = probenet_testkit::Region::create(&name, Duration::from_millis(delay_ms))?;
    println!("{} {}", region.prober_ns(), region.target_ns());
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let _ = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = stop.send(());
    });
    let _ = stopped.recv_timeout(Duration::from_secs(3600));
    drop(region);
    Ok(())
}
