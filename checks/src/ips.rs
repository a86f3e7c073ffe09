//! Probing every address of a name (`ip_strategy: all`): the runtime resolves the name once, runs the kind's
//! executor once per address with that address pinned (all at once, within the check's one timeout), and
//! judges the whole by `ip_verdict`. A kind only says which host it probes ([`crate::KindCheck::ip_target`]).

use std::net::SocketAddr;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::config::CheckKind;
use crate::net::{IpPlan, IpTarget, IpVerdict, MAX_IPS};
use crate::outcome::{Outcome, Phase, Reason, State};
use crate::run::{RunContext, dispatch, timed_out};

/// The key of an outcome's details that holds one [`IpResult`] per address probed.
pub const IPS_KEY: &str = "ips";

/// How one address of a name did, in a result's details under [`IPS_KEY`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpResult {
    /// The address probed, without a port: the `ip` label of its series.
    pub ip: String,
    /// The address as connected to: `127.0.0.1:8080`, `[::1]:8080` (the bare address for ICMP).
    pub address: String,
    /// Up, degraded or down.
    pub state: State,
    /// Why it failed, when it did.
    #[serde(default)]
    pub reason: Option<Reason>,
    /// The failure, naming the address.
    #[serde(default)]
    pub error: Option<String>,
    /// Seconds its probe took.
    pub duration_seconds: f64,
    /// Its phases, in the order they happened (its `resolve` is 0: the name was resolved once for all).
    #[serde(default)]
    pub phases: Vec<Phase>,
}

impl IpResult {
    /// Whether the address counts as up (up or degraded).
    pub fn success(&self) -> bool {
        self.state != State::Down
    }
}

/// The per-address results of an outcome's details (none when the check probed one address).
pub fn of(details: &serde_json::Value) -> Vec<IpResult> {
    details.get(IPS_KEY).and_then(|ips| Vec::<IpResult>::deserialize(ips).ok()).unwrap_or_default()
}

/// Adds the results of two addresses (192.0.2.1 and 2001:db8::1, both up) to a representative outcome.
pub(crate) fn add_representative(outcome: &mut Outcome) {
    let results: Vec<IpResult> = ["192.0.2.1", "2001:db8::1"]
        .into_iter()
        .map(|ip| IpResult {
            ip: ip.to_owned(),
            address: ip.to_owned(),
            state: State::Up,
            reason: None,
            error: None,
            duration_seconds: outcome.duration_seconds,
            phases: outcome.phases.clone(),
        })
        .collect();
    if !outcome.details.is_object() {
        outcome.details = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(map) = outcome.details.as_object_mut() {
        map.insert(IPS_KEY.to_owned(), serde_json::to_value(results).unwrap_or_default());
    }
}

/// How an address shows in messages: `ip:port`, or the bare address when there is no port (ICMP).
fn shown(addr: SocketAddr) -> String {
    if addr.port() == 0 { addr.ip().to_string() } else { addr.to_string() }
}

/// Runs `kind` once per address of `target.host`, each with its address pinned, and judges the whole. Every
/// part (the lookup, each probe) ends by the run's deadline; an address that did not answer by then fails
/// with reason `timeout`. The runtime adds phases, the log and redaction as for any run.
pub(crate) async fn run_each(kind: &CheckKind, cx: &RunContext, target: &IpTarget) -> Outcome {
    let deadline = tokio::time::Instant::from_std(cx.deadline());
    let verdict = match target.plan {
        IpPlan::Each(verdict) => verdict,
        IpPlan::First => IpVerdict::All,
    };
    let host = &target.host;
    let lookup = cx.timed("resolve", crate::net::lookup(host, target.port, target.version));
    let mut addrs = match tokio::time::timeout_at(deadline, lookup).await {
        Err(_) => return timed_out(cx.timeout()),
        Ok(Err(message)) => return Outcome::failed(Reason::Dns, message),
        Ok(Ok(addrs)) => addrs,
    };
    // The resolver may give an address once per socket type: each is probed once.
    let mut seen = Vec::new();
    addrs.retain(|addr| {
        let new = !seen.contains(&addr.ip());
        seen.push(addr.ip());
        new
    });
    if addrs.len() > MAX_IPS {
        cx.log(format!("{host} has {} addresses: probing the first {MAX_IPS}", addrs.len()));
        addrs.truncate(MAX_IPS);
    }
    let list: Vec<String> = addrs.iter().map(|addr| addr.ip().to_string()).collect();
    cx.log(format!("resolved {host} to {}", list.join(", ")));

    let probes = addrs.iter().map(|addr| async move {
        let pinned = cx.pin(host, addr.ip());
        let started = Instant::now();
        let outcome = match tokio::time::timeout_at(deadline, dispatch(kind, &pinned)).await {
            Ok(outcome) => outcome,
            Err(_) => timed_out(cx.timeout()),
        };
        (*addr, pinned, outcome, started.elapsed())
    });
    let done = futures::future::join_all(probes).await;

    let mut results = Vec::with_capacity(done.len());
    let mut outcomes = Vec::with_capacity(done.len());
    let mut phases = Vec::with_capacity(done.len());
    for (addr, pinned, mut outcome, took) in done {
        if outcome.reason.is_some() && outcome.state != State::Degraded {
            outcome.state = State::Down;
        }
        let address = shown(addr);
        for secret in pinned.secrets() {
            cx.remember_secret(&secret);
        }
        for line in pinned.take_log().into_iter().chain(std::mem::take(&mut outcome.log)) {
            cx.log(format!("{address}: {line}"));
        }
        let own = pinned.take_phases();
        results.push(IpResult {
            ip: addr.ip().to_string(),
            address: address.clone(),
            state: outcome.state,
            reason: outcome.reason,
            // Named once: a kind's own error often already says which address it was connecting to.
            error: outcome
                .error
                .as_ref()
                .map(|error| if error.contains(&address) { error.clone() } else { format!("{address}: {error}") }),
            duration_seconds: took.as_secs_f64(),
            phases: own.clone(),
        });
        phases.push(own);
        outcomes.push(outcome);
    }
    judge(cx, verdict, results, outcomes, phases)
}

/// The whole outcome: the state by `verdict`; the reason, assertions, details and phases of the first failing
/// address (or the first address in the final state), with every address's result added to the details.
fn judge(
    cx: &RunContext,
    verdict: IpVerdict,
    results: Vec<IpResult>,
    mut outcomes: Vec<Outcome>,
    phases: Vec<Vec<Phase>>,
) -> Outcome {
    let failing: Vec<&IpResult> = results.iter().filter(|result| !result.success()).collect();
    let up = results.iter().filter(|result| result.state == State::Up).count();
    let state = match verdict {
        _ if results.is_empty() => State::Down,
        IpVerdict::All if !failing.is_empty() => State::Down,
        IpVerdict::All if up < results.len() => State::Degraded,
        IpVerdict::Any if failing.len() == results.len() => State::Down,
        IpVerdict::Any if up == 0 => State::Degraded,
        IpVerdict::All | IpVerdict::Any => State::Up,
    };
    let chosen = results.iter().position(|result| result.state == state).unwrap_or_default();
    let error = match state {
        State::Down if !failing.is_empty() => {
            let errors: Vec<&str> = failing.iter().filter_map(|result| result.error.as_deref()).collect();
            Some(format!("{} of {} addresses down: {}", failing.len(), results.len(), errors.join("; ")))
        }
        State::Down => Some("no address to probe".to_owned()),
        State::Degraded => results.get(chosen).and_then(|result| result.error.clone()),
        State::Up => {
            if !failing.is_empty() {
                let names: Vec<&str> = failing.iter().map(|result| result.address.as_str()).collect();
                cx.log(format!("up by `ip_verdict: any`, though {} failed", names.join(", ")));
            }
            None
        }
    };
    let reason = match state {
        State::Up => None,
        State::Down | State::Degraded => {
            Some(results.get(chosen).and_then(|result| result.reason).unwrap_or(Reason::Assertion))
        }
    };
    for phase in phases.get(chosen).into_iter().flatten() {
        cx.phase(&phase.name, std::time::Duration::from_secs_f64(phase.seconds.max(0.0)));
    }
    let mut representative = if chosen < outcomes.len() { outcomes.swap_remove(chosen) } else { Outcome::up(0.0) };
    let mut details = match std::mem::take(&mut representative.details) {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    details.insert(IPS_KEY.to_owned(), serde_json::to_value(&results).unwrap_or_default());
    Outcome { state, reason, error, details: serde_json::Value::Object(details), log: Vec::new(), ..representative }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(ip: &str, state: State, reason: Option<Reason>) -> IpResult {
        IpResult {
            ip: ip.to_owned(),
            address: format!("{ip}:80"),
            state,
            reason,
            error: reason.map(|reason| format!("{ip}:80: {}", reason.as_str())),
            duration_seconds: 0.01,
            phases: vec![Phase { name: "connect".to_owned(), seconds: 0.001 }],
        }
    }

    fn judged(verdict: IpVerdict, results: Vec<IpResult>) -> Outcome {
        let cx = RunContext::new("local", std::time::Duration::from_secs(1));
        let outcomes: Vec<Outcome> = results
            .iter()
            .map(|result| Outcome {
                state: result.state,
                reason: result.reason,
                error: result.error.clone(),
                details: serde_json::json!({"remote_address": result.address}),
                ..Outcome::up(0.0)
            })
            .collect();
        let phases = results.iter().map(|result| result.phases.clone()).collect();
        judge(&cx, verdict, results, outcomes, phases)
    }

    #[test]
    fn all_needs_every_address_and_any_needs_one() {
        let mixed = || {
            vec![
                result("127.0.0.1", State::Up, None),
                result("127.0.0.2", State::Down, Some(Reason::Connect)),
                result("127.0.0.3", State::Down, Some(Reason::Timeout)),
            ]
        };
        let all = judged(IpVerdict::All, mixed());
        assert_eq!((all.state, all.reason), (State::Down, Some(Reason::Connect)));
        assert_eq!(all.error.as_deref(), Some("2 of 3 addresses down: 127.0.0.2:80: connect; 127.0.0.3:80: timeout"),);
        // The details are the first failing address's, with every address's result.
        assert_eq!(all.details["remote_address"], "127.0.0.2:80");
        assert_eq!(of(&all.details).len(), 3);
        let any = judged(IpVerdict::Any, mixed());
        assert_eq!((any.state, any.reason, any.error), (State::Up, None, None));
        assert_eq!(any.details["remote_address"], "127.0.0.1:80");

        let down = judged(IpVerdict::Any, vec![result("::1", State::Down, Some(Reason::Tls))]);
        assert_eq!((down.state, down.reason), (State::Down, Some(Reason::Tls)));
        let slow =
            vec![result("127.0.0.1", State::Up, None), result("127.0.0.2", State::Degraded, Some(Reason::Duration))];
        assert_eq!(judged(IpVerdict::All, slow.clone()).state, State::Degraded);
        assert_eq!(judged(IpVerdict::Any, slow).state, State::Up);
        assert_eq!(judged(IpVerdict::All, Vec::new()).state, State::Down);
    }

    #[test]
    fn the_representative_outcome_of_every_address_counts_their_series() {
        let config = |extra: &str| {
            let yaml = format!("checks:\n  - {{name: c, tcp: {{target: \"db.example:5432\"{extra}}}}}\n");
            crate::load_str("c.yaml", &yaml).map(|config| config.checks[0].kind.representative())
        };
        let all = config(", ip_strategy: all").unwrap_or_else(|errors| panic!("{errors:?}"));
        assert_eq!(of(&all.details).len(), 2);
        assert_eq!(all.details["remote_address"], "192.0.2.1:25");
        let first = config("").unwrap_or_else(|errors| panic!("{errors:?}"));
        assert!(of(&first.details).is_empty());
    }
}
