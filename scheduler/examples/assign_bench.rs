//! Benchmark of the assignment: a full assignment of 100,000 checks x 10 regions over 1,000 probers (median
//! of 5), and the share of pairs that move when one prober joins or leaves, against the ideal 1/N.
//! Run by `bench/scheduler` (release mode).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use probenet_scheduler::assign::{CheckInput, ProberInput, Table, assign};

const CHECKS: usize = 100_000;
const REGIONS: usize = 10;
const PROBERS: usize = 1_000;
const RUNS: usize = 5;
const TRIALS: usize = 5;

struct Prober {
    name: String,
    region: String,
}

fn inputs(probers: &[Prober]) -> Vec<ProberInput<'_>> {
    probers.iter().map(|p| ProberInput { name: &p.name, region: &p.region, kinds: &[] }).collect()
}

/// Owner names per pair (first slot).
fn owners<'a>(table: &Table, probers: &'a [Prober]) -> Vec<Option<&'a str>> {
    (0..table.len()).map(|pair| table.owner(pair).map(|p| probers[p].name.as_str())).collect()
}

fn main() {
    let regions: Vec<String> = (0..REGIONS).map(|r| format!("region-{r}")).collect();
    let names: Vec<String> = (0..CHECKS).map(|c| format!("check-{c:06}")).collect();
    let intervals = [10_000u64, 30_000, 60_000, 300_000];
    let checks: Vec<CheckInput<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| CheckInput {
            name,
            kind: probenet_checks::Kind::Http,
            interval_ms: intervals[i % intervals.len()],
            regions: &regions,
        })
        .collect();
    let probers: Vec<Prober> =
        (0..PROBERS).map(|p| Prober { name: format!("prober-{p:04}"), region: regions[p % REGIONS].clone() }).collect();

    let mut times: Vec<Duration> = Vec::new();
    let mut table = Table::default();
    for _ in 0..RUNS {
        let start = Instant::now();
        table = assign(&checks, &inputs(&probers), 1);
        times.push(start.elapsed());
    }
    times.sort();
    let median = times[RUNS / 2];
    let pairs = table.len();
    let counts: Vec<usize> = (0..PROBERS).map(|p| table.assigned(p)).collect();
    let (min, max) = (counts.iter().min().copied().unwrap_or(0), counts.iter().max().copied().unwrap_or(0));
    println!("full assignment: {CHECKS} checks x {REGIONS} regions = {pairs} pairs over {PROBERS} probers");
    println!(
        "  median of {RUNS}: {:.1} ms (min {:.1}, max {:.1}); pairs per prober: min {min}, max {max}, ideal {}",
        ms(median),
        ms(times[0]),
        ms(times[RUNS - 1]),
        pairs / PROBERS
    );
    let start = Instant::now();
    let replicated = assign(&checks, &inputs(&probers), 2);
    println!("  with probers_per_region 2: {:.1} ms ({} slots)", ms(start.elapsed()), replicated.len() * 2);

    let before = owners(&table, &probers);
    let per_region = PROBERS / REGIONS;
    let clone = |list: &[Prober]| {
        list.iter().map(|p| Prober { name: p.name.clone(), region: p.region.clone() }).collect::<Vec<_>>()
    };

    // One prober joins (five trials, each in another region, each from the same start).
    let mut ratios = Vec::new();
    for trial in 0..TRIALS {
        let mut joined = clone(&probers);
        let name = format!("prober-new-{trial}");
        joined.push(Prober { name: name.clone(), region: regions[trial % REGIONS].clone() });
        let after = assign(&checks, &inputs(&joined), 1);
        let after = owners(&after, &joined);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let elsewhere = before.iter().zip(&after).filter(|(a, b)| a != b && **b != Some(name.as_str())).count();
        ratios.push(report("joins", moved, pairs, PROBERS + 1, per_region + 1));
        assert_eq!(elsewhere, 0, "a pair moved to a prober other than the newcomer");
    }
    summary("join", "newcomer", &ratios);

    // One prober leaves (five trials, each in another region).
    let mut ratios = Vec::new();
    for trial in 0..TRIALS {
        let leaver = probers[trial * (PROBERS / TRIALS) + trial % REGIONS].name.clone();
        let left: Vec<Prober> = clone(&probers).into_iter().filter(|p| p.name != leaver).collect();
        let after = assign(&checks, &inputs(&left), 1);
        let after = owners(&after, &left);
        let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        let others = before.iter().zip(&after).filter(|(a, b)| a != b && a.as_deref() != Some(leaver.as_str())).count();
        ratios.push(report("leaves", moved, pairs, PROBERS, per_region));
        assert_eq!(others, 0, "a pair moved that was not the leaver's");
    }
    summary("leave", "leaver", &ratios);
}

/// Prints one trial and returns moved / ideal.
fn report(what: &str, moved: usize, pairs: usize, n: usize, region_n: usize) -> f64 {
    let fraction = moved as f64 / pairs as f64;
    let ideal = 1.0 / n as f64;
    println!(
        "  one prober {what}: {moved} pairs moved = {:.4}% of all (ideal 1/{n} = {:.4}%), {:.3}% of its region's \
         (ideal 1/{region_n} = {:.3}%): {:.3} x ideal",
        fraction * 100.0,
        ideal * 100.0,
        moved as f64 / (pairs / REGIONS) as f64 * 100.0,
        100.0 / region_n as f64,
        fraction / ideal
    );
    fraction / ideal
}

fn summary(what: &str, who: &str, ratios: &[f64]) {
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let (min, max) = ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
    println!(
        "{what}: moved / ideal over {} trials: mean {mean:.3}, min {min:.3}, max {max:.3} (only the {who}'s share moved)",
        ratios.len()
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
