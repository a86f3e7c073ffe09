//! The uptime ledger over a store: the results of the chosen checks read pair by pair, with the config's
//! quorums, retries and maintenance windows. `probenet report`, the dashboard and the status page all compute
//! their uptime here, so they agree for the same window.

use probenet_alerting::Rules;
use probenet_alerting::ledger::{self, CheckPolicy, ImpairedSpan, Input, Ledger, Sample};
use probenet_checks::Config;
use probenet_exporters::store::{ResultQuery, Store, StoreError};

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
    let (Some(from), Some(to)) =
        (windows.iter().map(|window| window.0).min(), windows.iter().map(|window| window.1).max())
    else {
        return Ok(Vec::new());
    };
    let policies = policies(config, checks);
    let samples = samples(store, &policies, from, to)?;
    Ok(windows
        .iter()
        .map(|(from_ms, to_ms)| {
            ledger::compute(&Input {
                checks: &policies,
                samples: &samples,
                maintenance: &config.maintenance,
                impaired,
                from_ms: *from_ms,
                to_ms: *to_ms,
            })
        })
        .collect())
}
