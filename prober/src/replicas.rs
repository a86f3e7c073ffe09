//! The scheduler replicas a prober may talk to (`--scheduler a,b,c`; a name with several addresses counts once
//! per address) and the one it is on: it sticks to one while it answers, and moves to the next on a connection
//! error, a timeout or a 5xx.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use probenet_exporters::{FamilySamples, MetricType};
use reqwest::Url;

use crate::client::ClientError;

/// How long resolving a scheduler's name at start may take; past it, the name is left to the system
/// resolver at each connection.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// One place to send calls: a base URL, and the address its connections go to when its name was resolved
/// to several.
pub(crate) struct Replica {
    /// The base URL, ending in `/`.
    pub base: Url,
    /// The address every connection goes to (the URL's name still names the host for TLS and `Host`), or
    /// none to let the system resolver choose at each connection.
    pub addr: Option<SocketAddr>,
    /// The HTTP client, pinned to `addr` when there is one (so each replica has its own connection pool).
    pub http: reqwest::Client,
}

impl Replica {
    /// The URL as logs and metrics show it (no trailing `/`; a URL never carries credentials, the parser
    /// refuses them).
    pub fn url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The URL, with the pinned address if any: `https://scheduler.example.com:7443 (10.0.0.2:7443)`.
    pub fn describe(&self) -> String {
        match self.addr {
            Some(addr) => format!("{} ({addr})", self.url()),
            None => self.url(),
        }
    }
}

/// The replicas, in the order given, and the one in use.
pub(crate) struct Replicas {
    list: Vec<Replica>,
    current: AtomicUsize,
    /// Whether the replica in use answered since the prober moved to it: a move away from it is news (a
    /// warning); a move on while looking for one that answers is not (every replica down would log a line
    /// per replica per call).
    settled: AtomicBool,
    switches: Arc<AtomicU64>,
}

impl Replicas {
    /// The replicas in order; the first is used first. `list` is never empty.
    pub fn new(list: Vec<Replica>, switches: Arc<AtomicU64>) -> Self {
        assert!(!list.is_empty(), "at least one scheduler");
        Self { list, current: AtomicUsize::new(0), settled: AtomicBool::new(false), switches }
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// The index of the one in use.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Acquire)
    }

    /// The replica at `index`.
    pub fn get(&self, index: usize) -> &Replica {
        &self.list[index % self.list.len()]
    }

    /// The replica at `index` answered (a success, or an answer any replica would give).
    pub fn answered(&self, index: usize) {
        if self.current() == index
            && !self.settled.swap(true, Ordering::AcqRel)
            && self.switches.load(Ordering::Relaxed) > 0
        {
            tracing::info!(scheduler = %self.list[index].describe(), "this scheduler replica answers; staying on it");
        }
    }

    /// `failed` did not answer (`reason`): moves to the next replica, unless another call already moved on
    /// from it. Returns the index of the replica to use now.
    pub fn fail_over(&self, failed: usize, reason: &str) -> usize {
        if self.list.len() == 1 {
            return 0;
        }
        let next = (failed + 1) % self.list.len();
        match self.current.compare_exchange(failed, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                let news = self.settled.swap(false, Ordering::AcqRel);
                Switched { from: &self.list[failed], to: &self.list[next], reason, news }.emit(&self.switches);
                next
            }
            Err(now) => now,
        }
    }

    /// `probenet_prober_scheduler_current{url, address}` (1 for the replica in use, 0 for the others: as many
    /// series as replicas) and `probenet_prober_scheduler_switches_total`.
    pub fn families(&self) -> Vec<FamilySamples> {
        let current = self.current();
        let series = self
            .list
            .iter()
            .enumerate()
            .map(|(index, replica)| {
                let address = replica.addr.map(|addr| addr.to_string()).unwrap_or_default();
                let labels = vec![("url".to_owned(), replica.url()), ("address".to_owned(), address)];
                (labels, if index == current { 1.0 } else { 0.0 })
            })
            .collect();
        vec![
            FamilySamples {
                name: "probenet_prober_scheduler_current".into(),
                help: "1 for the scheduler replica the prober talks to now, 0 for the other replicas it knows".into(),
                kind: MetricType::Gauge,
                series,
            },
            FamilySamples::single(
                "probenet_prober_scheduler_switches_total",
                "Moves to another scheduler replica after a connection error, a timeout or a 5xx",
                MetricType::Counter,
                self.switches.load(Ordering::Relaxed) as f64,
            ),
        ]
    }
}

/// The event of a move to another replica: one log line and one count, together.
struct Switched<'a> {
    from: &'a Replica,
    to: &'a Replica,
    reason: &'a str,
    /// The replica left had been answering (a warning), rather than being one more that does not while the
    /// prober looks for one that does (a debug line).
    news: bool,
}

impl Switched<'_> {
    fn emit(&self, switches: &AtomicU64) {
        switches.fetch_add(1, Ordering::Relaxed);
        let (from, to) = (self.from.describe(), self.to.describe());
        if self.news {
            tracing::warn!(%from, %to, reason = %self.reason, "moving to another scheduler replica");
        } else {
            tracing::debug!(%from, %to, reason = %self.reason, "moving to another scheduler replica");
        }
    }
}

/// The scheduler URLs of `--scheduler`: each item may itself be a comma-separated list; blanks are skipped
/// and repeats dropped (keeping the first). Each is checked as [`parse_base`] says.
pub(crate) fn parse_list(items: &[impl AsRef<str>]) -> Result<Vec<Url>, ClientError> {
    let mut urls: Vec<Url> = Vec::new();
    for item in items {
        for text in item.as_ref().split(',').map(str::trim).filter(|text| !text.is_empty()) {
            let url = parse_base(text)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    if urls.is_empty() {
        let given = items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(",");
        return Err(ClientError::Url { url: given, message: "no scheduler url".to_owned() });
    }
    Ok(urls)
}

/// One scheduler URL: `https://host:port[/path]`, or `http://` to a loopback address only, so a token never
/// crosses a network in clear. The result ends in `/`.
pub(crate) fn parse_base(text: &str) -> Result<Url, ClientError> {
    let bad = |message: &str| ClientError::Url { url: text.to_owned(), message: message.to_owned() };
    let mut url = Url::parse(text.trim()).map_err(|error| bad(&error.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" => {
            let host = url.host_str().unwrap_or_default();
            let bare = host.trim_start_matches('[').trim_end_matches(']');
            let loopback = host.eq_ignore_ascii_case("localhost")
                || bare.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            if !loopback {
                return Err(bad("plain http is only allowed to a loopback address; use https"));
            }
        }
        _ => return Err(bad("use an https:// url")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("no credentials in the url, please; the token goes in the token file"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("no query or fragment, please"));
    }
    // A base path must end with `/` for `join` to keep it.
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Where each URL's connections go: a URL whose host name resolves to several addresses becomes one target
/// per address (in the resolver's order), each pinned to its address; any other URL (an IP address, a name
/// with one address, a name that does not resolve now) is one target left to the system resolver, which
/// then follows DNS changes. `overrides` (host name → addresses) replaces DNS for the names it holds.
pub(crate) async fn expand(
    urls: Vec<Url>,
    overrides: &HashMap<String, Vec<SocketAddr>>,
) -> Vec<(Url, Option<SocketAddr>)> {
    let mut targets = Vec::new();
    for url in urls {
        let (Some(host), Some(port)) = (url.host_str().map(str::to_owned), url.port_or_known_default()) else {
            targets.push((url, None));
            continue;
        };
        if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
            targets.push((url, None));
            continue;
        }
        let mut addrs: Vec<SocketAddr> = match overrides.get(&host) {
            Some(addrs) => addrs.iter().map(|addr| SocketAddr::new(addr.ip(), port)).collect(),
            None => match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(error)) => {
                    tracing::warn!(%url, "cannot resolve the scheduler's name now ({error}); trying at each connection");
                    Vec::new()
                }
                Err(_) => {
                    tracing::warn!(%url, "resolving the scheduler's name takes too long; trying at each connection");
                    Vec::new()
                }
            },
        };
        let mut seen = Vec::new();
        addrs.retain(|addr| {
            let new = !seen.contains(addr);
            seen.push(*addr);
            new
        });
        if addrs.len() > 1 {
            tracing::info!(%url, addresses = addrs.len(), "the scheduler's name has several addresses: one replica each");
            targets.extend(addrs.into_iter().map(|addr| (url.clone(), Some(addr))));
        } else {
            targets.push((url, None));
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(parse_base("https://scheduler.example.com:7400").is_ok());
        assert!(parse_base("http://127.0.0.1:7400").is_ok());
        assert!(parse_base("http://[::1]:7400").is_ok());
        assert!(parse_base("http://localhost:7400").is_ok());
        assert!(parse_base("http://scheduler.example.com").is_err());
        assert!(parse_base("http://10.0.0.1:7400").is_err());
        assert!(parse_base("ftp://127.0.0.1").is_err());
        assert!(parse_base("not a url").is_err());
        assert!(parse_base("https://user:secret@example.com").is_err());
        let url = parse_base("https://example.com/probenet").unwrap();
        assert_eq!(url.join("v1/register").unwrap().as_str(), "https://example.com/probenet/v1/register");
    }

    #[test]
    fn a_list_is_split_trimmed_and_deduplicated() {
        let urls = parse_list(&[" https://a:7443, https://b:7443 ,,https://a:7443/", "https://c:7443"]).unwrap();
        let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
        assert_eq!(urls, ["https://a:7443/", "https://b:7443/", "https://c:7443/"]);
        assert!(parse_list(&[" , "]).is_err());
        let none: [&str; 0] = [];
        assert!(parse_list(&none).is_err());
        let error = parse_list(&["https://a:7443,http://b.example.com"]).unwrap_err().to_string();
        assert!(error.contains("b.example.com"), "{error}");
    }

    #[tokio::test]
    async fn a_name_with_several_addresses_is_one_target_per_address() {
        let urls = parse_list(&["https://sched.test:7443,https://10.0.0.9:7443,https://one.test"]).unwrap();
        let overrides = HashMap::from([
            ("sched.test".to_owned(), vec!["10.0.0.1:1".parse().unwrap(), "10.0.0.2:1".parse().unwrap()]),
            ("one.test".to_owned(), vec!["10.0.0.3:443".parse().unwrap()]),
        ]);
        let targets = expand(urls, &overrides).await;
        let shown: Vec<(String, Option<String>)> =
            targets.iter().map(|(url, addr)| (url.to_string(), addr.map(|addr| addr.to_string()))).collect();
        assert_eq!(
            shown,
            [
                ("https://sched.test:7443/".to_owned(), Some("10.0.0.1:7443".to_owned())),
                ("https://sched.test:7443/".to_owned(), Some("10.0.0.2:7443".to_owned())),
                ("https://10.0.0.9:7443/".to_owned(), None),
                ("https://one.test/".to_owned(), None),
            ]
        );
    }
}
