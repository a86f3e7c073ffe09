//! Validation of a stack file: its shape (serde), then every value, each error located.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use probenet_checks::config::{ConfigErrors, Ctx, Path, Place};
use probenet_checks::yaml::{self, NodeKind};

use super::raw::{RawAlerting, RawKubernetes, RawReceiver, RawRegion, RawStack, RawStore};
use super::{
    AlertingSpec, DEFAULT_ALERTMANAGER_LISTEN, DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_NAMESPACE, DEFAULT_RETENTION,
    DEFAULT_STORE_LISTEN, DEFAULT_VMALERT_LISTEN, Images, KubernetesSpec, PostgresStore, Receiver, RegionSpec,
    Replicas, Route, SchedulerSpec, SchedulerStore, SecretSource, Stack, Storage, StoreKind, StoreSpec, UserSecret,
    UserSecretMode, default_image,
};

/// The most schedulers one stack may run.
pub const MAX_SCHEDULERS: u32 = 16;
/// The most probers one region may run.
pub const MAX_PROBERS: u32 = 64;
/// The longest region name: `probenet-prober-NAME` is still a DNS label (63 characters).
pub const MAX_REGION_NAME: usize = 63 - "probenet-prober-".len();

/// Parses and validates a stack file held in memory; `name` is used in errors and relative `checks` paths are
/// resolved against `base` (the stack file's directory). Pure: reads no file.
pub fn parse_str(name: &str, text: &str, base: &FsPath) -> Result<Stack, ConfigErrors> {
    let root = yaml::parse(text).map_err(|error| {
        ConfigErrors(vec![probenet_checks::ConfigError {
            file: name.to_owned(),
            line: error.mark.line,
            col: error.mark.col,
            path: String::new(),
            message: error.message,
        }])
    })?;
    let mut cx = Ctx::new(name, &root);
    let top = Path::root();
    if !matches!(root.kind, NodeKind::Map(_)) {
        cx.error(&top, "a stack file is a mapping with `name`, `checks`, `scheduler` and `regions`");
        return Err(ConfigErrors(cx.into_errors()));
    }
    let raw = cx.deserialize::<RawStack>(&top);
    let stack = raw.and_then(|raw| stack(&mut cx, raw, base));
    match stack {
        Some(stack) if cx.errors().is_empty() => Ok(stack),
        _ => Err(ConfigErrors(cx.into_errors()).sorted()),
    }
}

fn stack(cx: &mut Ctx<'_>, raw: RawStack, base: &FsPath) -> Option<Stack> {
    let top = Path::root();
    let name = match raw.name {
        Some(name) => dns_label(cx, &top.key("name"), &name, "a stack name").then_some(name),
        None => {
            cx.missing(&top.key("name"), &top, "missing `name`: write for example `name: prod`");
            None
        }
    };
    let checks_places: Vec<Place> = (0..raw.checks.as_ref().map_or(0, Vec::len))
        .map(|index| {
            let at = cx.located(&top.key("checks").index(index), "");
            Place { file: at.file, line: at.line, col: at.col }
        })
        .collect();
    let checks = match raw.checks {
        Some(list) if !list.is_empty() => list.iter().map(|item| base.join(item)).collect(),
        Some(_) => {
            cx.error(&top.key("checks"), "list at least one probenet config file or directory");
            Vec::new()
        }
        None => {
            let message = "missing `checks`: the probenet config files to deploy, such as `checks: [checks.yaml]`";
            cx.missing(&top.key("checks"), &top, message);
            Vec::new()
        }
    };
    let scheduler = scheduler(cx, raw.scheduler, base);
    let regions_path = top.key("regions");
    let regions_place = cx.place(&regions_path);
    let mut explicit_namespace = BTreeSet::new();
    let regions = match raw.regions {
        Some(map) if !map.is_empty() => map
            .into_iter()
            .filter_map(|(name, region)| {
                let path = regions_path.key(&name);
                let region = region.unwrap_or_default();
                if region.kubernetes.as_ref().is_some_and(|kube| kube.namespace.is_some()) {
                    explicit_namespace.insert(name.clone());
                }
                region_spec(cx, &path, &name, region).map(|region| (name, region))
            })
            .collect(),
        Some(_) => {
            cx.error(&regions_path, "declare at least one region, such as `regions: {eu-west: {probers: 2}}`");
            BTreeMap::new()
        }
        None => {
            let message = "missing `regions`: where probers run, such as `regions: {eu-west: {probers: 2}}`";
            cx.missing(&regions_path, &top, message);
            BTreeMap::new()
        }
    };
    distinct_namespaces(cx, &regions, &explicit_namespace);
    let store = store(cx, raw.store.unwrap_or_default());
    let alerting = match (store.kind, raw.alerting) {
        (StoreKind::None, Some(_)) => {
            cx.error_at_key(
                &top.key("alerting"),
                "vmalert and Alertmanager need the victoria-metrics store; with `store: {kind: none}` use the \
                 scheduler's own alerts (notifiers in the checks config)",
            );
            None
        }
        (StoreKind::None, None) => None,
        (StoreKind::VictoriaMetrics, alerting) => alerting_spec(cx, alerting.unwrap_or_default()),
    };
    let kubernetes = kubernetes(cx, raw.kubernetes.unwrap_or_default(), &regions);
    let mut regions = regions;
    if let Some(kubernetes) = &kubernetes {
        // A region without a context runs in the central cluster, whatever context is current.
        for region in regions.values_mut().filter(|region| region.context.is_none()) {
            region.context.clone_from(&kubernetes.context);
        }
    }
    let stack = Stack {
        name: name?,
        checks,
        checks_places,
        scheduler: scheduler?,
        regions,
        regions_place,
        store,
        alerting,
        kubernetes: kubernetes?,
    };
    super::ports::check(cx, &stack);
    Some(stack)
}

/// No two regions in one namespace: their token Secrets and prober Deployments would overwrite each other. Each
/// clash is reported on the later region in the file, naming the first.
fn distinct_namespaces(cx: &mut Ctx<'_>, regions: &BTreeMap<String, RegionSpec>, explicit: &BTreeSet<String>) {
    let mut in_file_order: Vec<(&String, &RegionSpec)> = regions.iter().collect();
    in_file_order.sort_by_key(|(_, region)| (region.place.line, region.place.col));
    let mut first_in: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, region) in in_file_order {
        let Some(first) = first_in.get(region.namespace.as_str()) else {
            first_in.insert(&region.namespace, name);
            continue;
        };
        let path = Path::root().key("regions").key(name);
        let message = format!(
            "namespace {:?} is region {first:?}'s already: each region needs a namespace of its own \
             (`kubernetes: {{namespace: ...}}`)",
            region.namespace
        );
        if explicit.contains(name) {
            cx.error(&path.key("kubernetes").key("namespace"), message);
        } else {
            cx.error_at_key(&path, message);
        }
    }
}

fn scheduler(cx: &mut Ctx<'_>, raw: Option<super::raw::RawScheduler>, base: &FsPath) -> Option<SchedulerSpec> {
    let path = Path::root().key("scheduler");
    let Some(raw) = raw else {
        cx.missing(&path, &Path::root(), "missing `scheduler`: at least its `host`, the name probers reach it by");
        return None;
    };
    let host = match raw.host.clone() {
        Some(host) if is_host(&host) => Some(host),
        Some(host) => {
            cx.error(&path.key("host"), format!("{host:?} is not a host name or address"));
            None
        }
        None => {
            let message = "missing `host`: the name or address probers and browsers reach the scheduler by";
            cx.missing(&path.key("host"), &path, message);
            None
        }
    };
    let listen = socket(cx, &path.key("listen"), raw.listen.as_deref(), DEFAULT_LISTEN);
    let data_dir = absolute(cx, &path.key("data_dir"), raw.data_dir.as_deref().unwrap_or(DEFAULT_DATA_DIR));
    let dashboard_url = match (raw.dashboard_url.clone(), &host, listen) {
        (Some(url), _, _) if url.starts_with("https://") || url.starts_with("http://") => Some(url),
        (Some(url), _, _) => {
            cx.error(&path.key("dashboard_url"), format!("{url:?} is not an http:// or https:// URL"));
            None
        }
        (None, Some(host), Some(listen)) => Some(format!("https://{}:{}/", super::host_for_url(host), listen.port())),
        (None, _, _) => None,
    };
    let store = scheduler_store(cx, &path, &raw, base);
    let replicas = raw.replicas.unwrap_or(1);
    let replicas_ok = if !(1..=MAX_SCHEDULERS).contains(&replicas) {
        cx.error(&path.key("replicas"), format!("a stack runs 1 to {MAX_SCHEDULERS} schedulers"));
        false
    } else if replicas > 1 && store == Some(SchedulerStore::Embedded) {
        cx.error(
            &path.key("replicas"),
            format!(
                "{replicas} schedulers need a store they share: set scheduler.store to a PostgreSQL URL \
                 (postgres://USER@HOST:5432/DB?sslmode=require), or to `postgresql` for a server the local \
                 install runs; the embedded store serves one scheduler"
            ),
        );
        false
    } else if let Some(listen) = listen
        && u32::from(listen.port()) + replicas - 1 > u32::from(u16::MAX)
    {
        cx.error(
            &path.key("listen"),
            format!("{replicas} schedulers listen on port {} and the next ones up: past 65535", listen.port()),
        );
        false
    } else {
        true
    };
    Some(SchedulerSpec {
        host: host?,
        listen: listen?,
        data_dir: data_dir?,
        dashboard_url: dashboard_url?,
        replicas: replicas_ok.then_some(replicas)?,
        store: store?,
    })
}

/// `scheduler.store` and its password and CA: `embedded` (default) or a PostgreSQL URL without a password.
fn scheduler_store(
    cx: &mut Ctx<'_>,
    path: &Path,
    raw: &super::raw::RawScheduler,
    base: &FsPath,
) -> Option<SchedulerStore> {
    if raw.store_listen.is_some() && raw.store.as_deref() != Some("postgresql") {
        cx.error_at_key(&path.key("store_listen"), "only `store: postgresql` (a server the install runs) takes this");
    }
    let url = match raw.store.as_deref() {
        Some("postgresql") => {
            for (key, given) in [
                ("store_password", raw.store_password.is_some()),
                ("store_password_secret", raw.store_password_secret.is_some()),
                ("store_ca", raw.store_ca.is_some()),
                ("store_ca_secret", raw.store_ca_secret.is_some()),
            ] {
                if given {
                    cx.error_at_key(
                        &path.key(key),
                        "`store: postgresql` runs its own server with a password the install makes: leave this out",
                    );
                }
            }
            let at = path.key("store_listen");
            let listen = socket(cx, &at, raw.store_listen.as_deref(), super::DEFAULT_LOCAL_POSTGRES_LISTEN)?;
            if !listen.ip().is_loopback() {
                cx.error(
                    &at,
                    format!("{listen} is not a loopback address: the local PostgreSQL serves this host only"),
                );
                return None;
            }
            return Some(SchedulerStore::Local { listen });
        }
        None | Some("embedded") => {
            for (key, given) in [
                ("store_password", raw.store_password.is_some()),
                ("store_password_secret", raw.store_password_secret.is_some()),
                ("store_ca", raw.store_ca.is_some()),
                ("store_ca_secret", raw.store_ca_secret.is_some()),
            ] {
                if given {
                    cx.error_at_key(
                        &path.key(key),
                        "only a PostgreSQL store (scheduler.store: postgres://...) takes this",
                    );
                }
            }
            return Some(SchedulerStore::Embedded);
        }
        Some(url) => url,
    };
    let at = path.key("store");
    if let Err(problem) = check_postgres_url(url) {
        cx.error(
            &at,
            format!("{problem}: write `embedded`, `postgresql` or postgres://USER@HOST:5432/DB?sslmode=require"),
        );
        return None;
    }
    let password = match (&raw.store_password, &raw.store_password_secret) {
        (Some(text), None) => file_reference(cx, &path.key("store_password"), text, base).map(SecretSource::File),
        (None, Some(name)) => dns_subdomain(cx, &path.key("store_password_secret"), name)
            .then(|| SecretSource::KubernetesSecret(name.clone())),
        (None, None) => {
            cx.error_at_key(
                &at,
                "a PostgreSQL store needs its password: `store_password: ${file:PATH}` or, on Kubernetes, \
                 `store_password_secret: NAME` (a Secret with the key `password`)",
            );
            None
        }
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("store_password_secret"), "give `store_password` or this, not both");
            None
        }
    };
    let ca = match (&raw.store_ca, &raw.store_ca_secret) {
        (None, None) => Some(None),
        (Some(text), None) => {
            file_reference(cx, &path.key("store_ca"), text, base).map(|p| Some(SecretSource::File(p)))
        }
        (None, Some(name)) => dns_subdomain(cx, &path.key("store_ca_secret"), name)
            .then(|| Some(SecretSource::KubernetesSecret(name.clone()))),
        (Some(_), Some(_)) => {
            cx.error_at_key(&path.key("store_ca_secret"), "give `store_ca` or this, not both");
            None
        }
    };
    Some(SchedulerStore::Postgres(PostgresStore { url: url.to_owned(), password: password?, ca: ca? }))
}

/// `postgres://USER@HOST[:PORT]/DB[?...]`, with no password in it.
fn check_postgres_url(url: &str) -> Result<(), String> {
    let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) else {
        return Err(format!("{url:?} is neither `embedded`, `postgresql` nor a postgres:// URL"));
    };
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    let Some((user, host)) = authority.rsplit_once('@') else {
        return Err("the URL names no user (postgres://USER@HOST...)".to_owned());
    };
    if user.contains(':') {
        return Err("the URL holds a password; give it by store_password or store_password_secret".to_owned());
    }
    if user.is_empty() || host.is_empty() || host.starts_with(':') {
        return Err("the URL needs a user and a host".to_owned());
    }
    let database = rest[authority.len()..].strip_prefix('/').unwrap_or_default();
    if database.split('?').next().unwrap_or_default().is_empty() {
        return Err("the URL names no database (postgres://USER@HOST:5432/DB)".to_owned());
    }
    Ok(())
}

/// `${file:PATH}`: the path, resolved against the stack file's directory.
fn file_reference(cx: &mut Ctx<'_>, path: &Path, text: &str, base: &FsPath) -> Option<PathBuf> {
    match text.strip_prefix("${file:").and_then(|rest| rest.strip_suffix('}')) {
        Some(file) if !file.is_empty() => Some(base.join(file)),
        _ => {
            cx.error(path, format!("{text:?} is not a file reference such as ${{file:/etc/probenet/pg-password}}"));
            None
        }
    }
}

/// A Kubernetes object name (RFC 1123 subdomain).
fn dns_subdomain(cx: &mut Ctx<'_>, path: &Path, text: &str) -> bool {
    let ok = text.len() <= 253 && text.split('.').all(is_dns_label);
    if !ok {
        cx.error(path, format!("{text:?} is not a Kubernetes object name (lowercase letters, digits, - and .)"));
    }
    ok
}

fn region_spec(cx: &mut Ctx<'_>, path: &Path, name: &str, raw: RawRegion) -> Option<RegionSpec> {
    let place = cx.place(path);
    let mut ok = true;
    // Kubernetes object names hold the region's name (`probenet-prober-NAME`, `probenet-NAME`): a DNS label.
    let name_ok = name.len() <= MAX_REGION_NAME && is_dns_label(name);
    if !name_ok {
        cx.error_at_key(
            path,
            format!(
                "{name:?} cannot be in Kubernetes object names (probenet-prober-NAME): a region name is 1 to \
                 {MAX_REGION_NAME} lowercase letters, digits and -, starting and ending with a letter or digit, \
                 as in eu-west"
            ),
        );
        ok = false;
    }
    let probers = raw.probers.unwrap_or(1);
    if probers == 0 || probers > MAX_PROBERS {
        cx.error(&path.key("probers"), format!("a region runs 1 to {MAX_PROBERS} probers"));
        ok = false;
    }
    if let Some(netns) = &raw.netns
        && (netns.is_empty()
            || netns.len() > 64
            || !netns.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        cx.error(&path.key("netns"), format!("{netns:?} is not a network namespace name (letters, digits, - _ .)"));
        ok = false;
    }
    if let Some(host) = &raw.scheduler_host
        && !is_host(host)
    {
        cx.error(&path.key("scheduler_host"), format!("{host:?} is not a host name or address"));
        ok = false;
    }
    let kube = raw.kubernetes.unwrap_or_default();
    let namespace = match kube.namespace {
        Some(namespace) => {
            ok &= dns_label(cx, &path.key("kubernetes").key("namespace"), &namespace, "a namespace");
            namespace
        }
        // A valid region name makes a valid namespace (`probenet-` and at most 47 characters).
        None => format!("probenet-{name}"),
    };
    if let Some(port) = raw.metrics_port {
        let last = u32::from(port) + probers.max(1) - 1;
        let problem = match port {
            0 => Some("0 is not a port: write 1 to 65535".to_owned()),
            _ if last > u32::from(u16::MAX) => {
                Some(format!("{probers} probers need ports {port} to {last}, past 65535"))
            }
            _ => None,
        };
        if let Some(problem) = problem {
            cx.error(&path.key("metrics_port"), problem);
            ok = false;
        }
    }
    let (scheduler_host, metrics_port) = (raw.scheduler_host, raw.metrics_port);
    ok.then_some(RegionSpec {
        probers,
        netns: raw.netns,
        scheduler_host,
        metrics_port,
        context: kube.context,
        namespace,
        place,
    })
}

/// Whether `text` can be a host name or an address in a URL.
fn is_host(text: &str) -> bool {
    !text.is_empty() && !text.contains(['/', ' ', '@'])
}

fn store(cx: &mut Ctx<'_>, raw: RawStore) -> StoreSpec {
    let path = Path::root().key("store");
    let kind = match raw.kind.as_deref() {
        None | Some("victoria-metrics") => StoreKind::VictoriaMetrics,
        Some("none") => StoreKind::None,
        Some(other) => {
            cx.error(&path.key("kind"), format!("unknown store {other:?}; stores are victoria-metrics and none"));
            StoreKind::VictoriaMetrics
        }
    };
    let retention = match raw.retention.as_deref() {
        None => DEFAULT_RETENTION,
        Some(text) => match probenet_checks::duration::parse(text) {
            Ok(retention) if retention >= Duration::from_secs(86_400) => retention,
            Ok(_) => {
                cx.error(&path.key("retention"), "keep samples at least 1d");
                DEFAULT_RETENTION
            }
            Err(message) => {
                cx.error(&path.key("retention"), message);
                DEFAULT_RETENTION
            }
        },
    };
    let fallback = SocketAddr::from(([127, 0, 0, 1], 8428));
    let listen = socket(cx, &path.key("listen"), raw.listen.as_deref(), DEFAULT_STORE_LISTEN).unwrap_or(fallback);
    StoreSpec { kind, retention, listen }
}

fn alerting_spec(cx: &mut Ctx<'_>, raw: RawAlerting) -> Option<AlertingSpec> {
    let path = Path::root().key("alerting");
    let vmalert = raw.vmalert.unwrap_or_default();
    let vmalert_listen =
        socket(cx, &path.key("vmalert").key("listen"), vmalert.listen.as_deref(), DEFAULT_VMALERT_LISTEN);
    let evaluation_interval = match vmalert.evaluation_interval.as_deref() {
        None => Some(Duration::from_secs(30)),
        Some(text) => {
            let at = path.key("vmalert").key("evaluation_interval");
            probenet_checks::duration::parse(text).map_err(|message| cx.error(&at, message)).ok()
        }
    };
    let am_path = path.key("alertmanager");
    let am = raw.alertmanager.unwrap_or_default();
    let alertmanager_listen = socket(cx, &am_path.key("listen"), am.listen.as_deref(), DEFAULT_ALERTMANAGER_LISTEN);
    let mut receivers = BTreeMap::new();
    for (name, receiver) in am.receivers.unwrap_or_default() {
        if let Some(receiver) = receiver_spec(cx, &am_path.key("receivers").key(&name), receiver) {
            receivers.insert(name, receiver);
        }
    }
    let receiver = match am.receiver {
        Some(name) => name,
        None if receivers.len() == 1 => receivers.keys().next().cloned().unwrap_or_default(),
        None if receivers.is_empty() => {
            receivers.insert("null".to_owned(), Receiver::Null);
            "null".to_owned()
        }
        None => {
            cx.error(&am_path, "with several receivers, name the default one: `receiver: NAME`");
            String::new()
        }
    };
    let known = |cx: &mut Ctx<'_>, at: &Path, name: &str, receivers: &BTreeMap<String, Receiver>| {
        if !name.is_empty() && !receivers.contains_key(name) {
            let names: Vec<&str> = receivers.keys().map(String::as_str).collect();
            cx.error(at, format!("unknown receiver {name:?}; receivers are {}", names.join(", ")));
        }
    };
    known(cx, &am_path.key("receiver"), &receiver, &receivers);
    let mut routes = Vec::new();
    for (i, route) in am.routes.unwrap_or_default().into_iter().enumerate() {
        let at = am_path.key("routes").index(i);
        let Some(name) = route.receiver else {
            cx.missing(&at.key("receiver"), &at, "a route names its `receiver`");
            continue;
        };
        known(cx, &at.key("receiver"), &name, &receivers);
        routes.push(Route {
            matchers: route.matchers.unwrap_or_default(),
            receiver: name,
            continue_matching: route.continue_matching.unwrap_or(false),
        });
    }
    Some(AlertingSpec {
        vmalert_listen: vmalert_listen?,
        evaluation_interval: evaluation_interval?,
        alertmanager_listen: alertmanager_listen?,
        receiver,
        receivers,
        routes,
    })
}

fn receiver_spec(cx: &mut Ctx<'_>, path: &Path, raw: RawReceiver) -> Option<Receiver> {
    match (raw.webhook_url, raw.email) {
        (Some(url), None) if url.starts_with("https://") || url.starts_with("http://") => {
            Some(Receiver::Webhook { url })
        }
        (Some(_), None) => {
            cx.error(&path.key("webhook_url"), "not an http:// or https:// URL");
            None
        }
        (None, Some(email)) => Some(Receiver::Email { to: email.to, from: email.from, smarthost: email.smarthost }),
        _ => {
            cx.error_at_key(path, "a receiver has exactly one of `webhook_url` and `email`");
            None
        }
    }
}

fn kubernetes(cx: &mut Ctx<'_>, raw: RawKubernetes, regions: &BTreeMap<String, RegionSpec>) -> Option<KubernetesSpec> {
    let path = Path::root().key("kubernetes");
    let mut ok = true;
    let namespace = raw.namespace.unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    ok &= dns_label(cx, &path.key("namespace"), &namespace, "a namespace");
    let image = raw.image.unwrap_or_else(default_image);
    ok &= image_ref(cx, &path.key("image"), &image);
    let mut images = Images::default();
    if let Some(raw) = raw.images {
        let at = path.key("images");
        for (key, value, slot) in [
            ("vmstorage", raw.vmstorage, &mut images.vmstorage),
            ("vminsert", raw.vminsert, &mut images.vminsert),
            ("vmselect", raw.vmselect, &mut images.vmselect),
            ("vmalert", raw.vmalert, &mut images.vmalert),
            ("alertmanager", raw.alertmanager, &mut images.alertmanager),
        ] {
            if let Some(value) = value {
                ok &= image_ref(cx, &at.key(key), &value);
                *slot = value;
            }
        }
    }
    let mut storage = Storage::default();
    if let Some(raw) = raw.storage {
        let at = path.key("storage");
        for (key, value, slot) in [
            ("scheduler", raw.scheduler, &mut storage.scheduler),
            ("vmstorage", raw.vmstorage, &mut storage.vmstorage),
            ("alertmanager", raw.alertmanager, &mut storage.alertmanager),
        ] {
            if let Some(value) = value {
                if !is_quantity(&value) {
                    cx.error(&at.key(key), format!("{value:?} is not a size; write for example 10Gi"));
                    ok = false;
                }
                *slot = value;
            }
        }
    }
    let mut replicas = Replicas::default();
    let raw_replication = raw.replicas.as_ref().and_then(|replicas| replicas.replication_factor);
    if let Some(raw) = raw.replicas {
        let at = path.key("replicas");
        for (key, value, slot) in [
            ("vmstorage", raw.vmstorage, &mut replicas.vmstorage),
            ("vminsert", raw.vminsert, &mut replicas.vminsert),
            ("vmselect", raw.vmselect, &mut replicas.vmselect),
            ("replication_factor", raw.replication_factor, &mut replicas.replication_factor),
        ] {
            if let Some(value) = value {
                if !(1..=32).contains(&value) {
                    cx.error(&at.key(key), "replicas are 1 to 32");
                    ok = false;
                }
                *slot = value;
            }
        }
    }
    let replication_given = raw_replication.is_some();
    if !replication_given {
        replicas.replication_factor = replicas.vmstorage.min(2);
    } else if replicas.replication_factor > replicas.vmstorage {
        let at = path.key("replicas").key("replication_factor");
        cx.error(
            &at,
            format!(
                "{} copies need as many vmstorage nodes; there are {}",
                replicas.replication_factor, replicas.vmstorage
            ),
        );
        ok = false;
    }
    let mut secrets = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, secret) in raw.secrets.unwrap_or_default().into_iter().enumerate() {
        let at = path.key("secrets").index(i);
        let Some(name) = secret.name else {
            cx.missing(&at.key("name"), &at, "name the Secret: `name: NAME`");
            ok = false;
            continue;
        };
        if !dns_subdomain(cx, &at.key("name"), &name) {
            ok = false;
        } else if !seen.insert(name.clone()) {
            cx.error(&at.key("name"), format!("Secret {name:?} is listed twice"));
            ok = false;
        }
        let mode = match secret.as_.as_deref() {
            None | Some("files") => UserSecretMode::Files,
            Some("env") => UserSecretMode::Env,
            Some(other) => {
                cx.error(
                    &at.key("as"),
                    format!("{other:?}: a Secret is given as `env` (envFrom) or `files` (a volume)"),
                );
                ok = false;
                UserSecretMode::Files
            }
        };
        let users = secret.for_.unwrap_or_else(|| vec!["scheduler".to_owned(), "probers".to_owned()]);
        for (j, user) in users.iter().enumerate() {
            if user != "scheduler" && user != "probers" {
                cx.error(&at.key("for").index(j), format!("{user:?}: a Secret is for `scheduler` and/or `probers`"));
                ok = false;
            }
        }
        let (scheduler, probers) = (users.iter().any(|u| u == "scheduler"), users.iter().any(|u| u == "probers"));
        if !scheduler && !probers {
            cx.error(&at.key("for"), "give the Secret to `scheduler`, `probers` or both");
            ok = false;
        }
        secrets.push(UserSecret { name, mode, scheduler, probers });
    }
    let cidrs = raw.scheduler_ingress_cidrs.unwrap_or_default();
    for (i, cidr) in cidrs.iter().enumerate() {
        if !is_cidr(cidr) {
            cx.error(
                &path.key("scheduler_ingress_cidrs").index(i),
                format!("{cidr:?} is not a CIDR such as 203.0.113.0/24"),
            );
            ok = false;
        }
    }
    if cidrs.is_empty() {
        for (name, region) in regions {
            if region.context.is_some() && region.context != raw.context {
                let at = Path::root().key("regions").key(name).key("kubernetes").key("context");
                cx.error(
                    &at,
                    "this region's cluster is not the central one: list its egress addresses in \
                     kubernetes.scheduler_ingress_cidrs so that its probers may reach the scheduler",
                );
                ok = false;
            }
        }
    }
    ok.then_some(KubernetesSpec {
        context: raw.context,
        namespace,
        image,
        storage_class: raw.storage_class,
        scheduler_ingress_cidrs: cidrs,
        images,
        storage,
        replicas,
        secrets,
        raw_sockets: raw.raw_sockets.unwrap_or(false),
    })
}

fn socket(cx: &mut Ctx<'_>, path: &Path, text: Option<&str>, default: &str) -> Option<SocketAddr> {
    let text = text.unwrap_or(default);
    match text.parse() {
        Ok(address) => Some(address),
        Err(_) => {
            cx.error(path, format!("{text:?} is not an address such as 127.0.0.1:8428 or [::1]:8428"));
            None
        }
    }
}

fn absolute(cx: &mut Ctx<'_>, path: &Path, text: &str) -> Option<PathBuf> {
    if text.starts_with('/') && !text.split('/').any(|part| part == "..") {
        Some(PathBuf::from(text))
    } else {
        cx.error(path, format!("{text:?} is not an absolute path"));
        None
    }
}

fn is_dns_label(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !text.starts_with('-')
        && !text.ends_with('-')
}

fn dns_label(cx: &mut Ctx<'_>, path: &Path, text: &str, what: &str) -> bool {
    let ok = is_dns_label(text);
    if !ok {
        cx.error(path, format!("{what} is 1 to 63 lowercase letters, digits and -, as in prod-eu"));
    }
    ok
}

fn image_ref(cx: &mut Ctx<'_>, path: &Path, text: &str) -> bool {
    let ok = !text.is_empty() && !text.contains(char::is_whitespace) && text.contains(':');
    if !ok {
        cx.error(path, format!("{text:?} is not an image with a tag, such as ghcr.io/probenet/probenet:1.0.0"));
    }
    ok
}

fn is_quantity(text: &str) -> bool {
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    digits > 0 && matches!(&text[digits..], "" | "Ki" | "Mi" | "Gi" | "Ti" | "k" | "M" | "G" | "T")
}

fn is_cidr(text: &str) -> bool {
    let Some((ip, prefix)) = text.split_once('/') else {
        return false;
    };
    match (ip.parse::<std::net::IpAddr>(), prefix.parse::<u8>()) {
        (Ok(std::net::IpAddr::V4(_)), Ok(prefix)) => prefix <= 32,
        (Ok(std::net::IpAddr::V6(_)), Ok(prefix)) => prefix <= 128,
        _ => false,
    }
}
