//! The uptime ledger over a store: the results of the chosen checks read pair by pair, with the config's
//! quorums, retries and maintenance windows. `probenet report`, the dashboard and the status page all compute
//! their uptime here, so they agree for the same window.

use probenet_alerting::Rules;
use probenet_alerting::ledger::{self, CheckPolicy, ImpairedSpan, Input, Ledger, Sample};
use probenet_checks::Config;
use probenet_exporters::store::ledger::HOUR_MS;
use probenet_exporters::store::{LedgerSum, ResultQuery, Store, StoreError};

/// Results read per query.
const PAGE: usize = 10_000;
/// At most this many pages per (check, region): 100 million results.
const MAX_PAGES: usize = 10_000;

/// The policies of `checks` (every check of the config when `None`), in config order.
pub fn policies(config: &Config, checks: Option<&[String]>) -> Vec<CheckPolicy> {
    let rules = Rules::from_config(config);
    let all = CheckPolicy::from_rules(&rules);
    config
        .checks
        .iter()
        .filter(|check| checks.is_none_or(|wanted| wanted.contains(&check.name)))
        .filter_map(|check| all.iter().find(|policy| policy.name == check.name).cloned())
        .collect()
}

/// The stored results of `policies` that a ledger over `[from_ms, to_ms)` reads.
pub fn samples(
    store: &dyn Store,
    policies: &[CheckPolicy],
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<Sample>, StoreError> {
    let (since, until) = ledger::fetch_window(policies, from_ms, to_ms);
    let mut out = Vec::new();
    for policy in policies {
        for region in &policy.regions {
            let mut next = since;
            for _ in 0..MAX_PAGES {
                let page = store.results(&ResultQuery {
                    check: Some(policy.name.clone()),
                    region: Some(region.clone()),
                    since_ms: Some(next),
                    until_ms: Some(until),
                    only_failures: false,
                    limit: PAGE,
                    oldest_first: true,
                })?;
                let Some(last) = page.last() else { break };
                next = last.planned_at_ms + 1;
                let full = page.len() == PAGE;
                out.extend(page.iter().map(Sample::from));
                if !full {
                    break;
                }
            }
        }
    }
    Ok(out)
}

/// The ledger of `checks` (every check when `None`) over `[from_ms, to_ms)`.
pub fn compute(
    store: &dyn Store,
    config: &Config,
    checks: Option<&[String]>,
    impaired: &[ImpairedSpan],
    from_ms: i64,
    to_ms: i64,
) -> Result<Ledger, StoreError> {
    let mut ledgers = compute_many(store, config, checks, impaired, &[(from_ms, to_ms)])?;
    Ok(ledgers.pop().unwrap_or_else(|| {
        ledger::compute(&Input { checks: &[], samples: &[], maintenance: &[], impaired: &[], from_ms, to_ms })
    }))
}

/// The ledgers of several windows `[from, to)` (the days of a month, the last 24 hours, 7 and 30 days), the
/// results read once.
pub fn compute_many(
    store: &dyn Store,
    config: &Config,
    checks: Option<&[String]>,
    impaired: &[ImpairedSpan],
    windows: &[(i64, i64)],
) -> Result<Vec<Ledger>, StoreError> {
    compute_policies(store, config, &policies(config, checks), impaired, windows)
}

/// [`compute_many`] for checks whose policies are known (a few at a time: their results are held together).
pub fn compute_policies(
    store: &dyn Store,
    config: &Config,
    policies: &[CheckPolicy],
    impaired: &[ImpairedSpan],
    windows: &[(i64, i64)],
) -> Result<Vec<Ledger>, StoreError> {
    let (Some(from), Some(to)) =
        (windows.iter().map(|window| window.0).min(), windows.iter().map(|window| window.1).max())
    else {
        return Ok(Vec::new());
    };
    let samples = samples(store, policies, from, to)?;
    Ok(windows
        .iter()
        .map(|(from_ms, to_ms)| {
            ledger::compute(&Input {
                checks: policies,
                samples: &samples,
                maintenance: &config.maintenance,
                impaired,
                from_ms: *from_ms,
                to_ms: *to_ms,
            })
        })
        .collect())
}

/// `ledger` (computed from raw results over `[from, to)`) with the figures of its whole hours before the oldest
/// raw result kept taken from the stored ledger hours instead, for each check and region whose hours were all
/// written there: a report over weeks older than raw retention. Figures only: the downtime spans of those hours need the raw results (restore
/// the archive for them). Returns the ledger and the hours' end (`None` when no stored hour was used).
pub fn with_stored_hours(
    store: &dyn Store,
    config: &Config,
    checks: Option<&[String]>,
    impaired: &[ImpairedSpan],
    mut ledger: Ledger,
) -> Result<(Ledger, Option<i64>), StoreError> {
    let first_hour = -(-ledger.from_ms).div_euclid(HOUR_MS) * HOUR_MS;
    let last_hour = ledger.to_ms.div_euclid(HOUR_MS) * HOUR_MS;
    let cut = oldest_raw_ms(store)?.map_or(last_hour, |oldest| (oldest.div_euclid(HOUR_MS) * HOUR_MS).min(last_hour));
    if cut <= first_hour {
        return Ok((ledger, None));
    }
    let stored = store.ledger_sums(None, first_hour, cut)?;
    if stored.is_empty() {
        return Ok((ledger, None));
    }
    // What the raw results say of those hours (little: they are gone), to take out.
    let raw = compute(store, config, checks, impaired, first_hour, cut)?;
    // Only where every hour of the part was written: else the raw figures stay.
    let find = |check: &str, region: Option<&str>| {
        stored
            .iter()
            .find(|sum| sum.check == check && sum.region.as_deref() == region)
            .filter(|sum: &&LedgerSum| {
                let ms = &sum.ms;
                ms.up_ms + ms.down_ms + ms.unknown_ms + ms.maintenance_ms == cut - first_hour
            })
            .map(|sum| {
                let ms = &sum.ms;
                [ms.up_ms, ms.down_ms, ms.unknown_ms, ms.maintenance_ms, ms.muted_up_ms, ms.muted_down_ms]
            })
    };
    for (check, part) in ledger.checks.iter_mut().zip(&raw.checks) {
        if let Some(ms) = find(&check.check, None) {
            check.overall.swap_part(&part.overall, ms);
        }
        for (region, part) in check.regions.iter_mut().zip(&part.regions) {
            if let Some(ms) = find(&check.check, Some(&region.region)) {
                region.figures.swap_part(&part.figures, ms);
            }
        }
    }
    Ok((ledger, Some(cut)))
}

/// When the oldest raw result kept was planned: the oldest of every pair's, each found through the pair's key.
pub fn oldest_raw_ms(store: &dyn Store) -> Result<Option<i64>, StoreError> {
    let mut oldest: Option<i64> = None;
    for pair in store.pairs()? {
        let first = store.results(&ResultQuery {
            check: Some(pair.check),
            region: Some(pair.region),
            limit: 1,
            oldest_first: true,
            ..ResultQuery::default()
        })?;
        if let Some(run) = first.first() {
            oldest = Some(oldest.map_or(run.planned_at_ms, |known| known.min(run.planned_at_ms)));
        }
    }
    Ok(oldest)
}
