//! The Kubernetes manifests: written as YAML, parsed back with probenet's YAML parser into typed k8s-openapi
//! objects equal to the ones built, and their content checked (images, ports, secrets, probes, resources,
//! security contexts, network policies), secret files 0600, tokens nowhere else; secrets kept across renders and
//! renewed by `--rotate`; the replicated scheduler; `kubectl kustomize` renders every directory into the objects
//! built, and every object validates against the Kubernetes schemas (kubernetes-validate, 1.29 and newest).

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, PodSpec, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use probenet_install::kubernetes::{self, Object, Secrets, TlsMaterial};
use serde_json::Value;

/// A parsed object: (cluster dir, file name, kind, JSON).
type Parsed = (String, String, String, Value);

const TOKEN_EU: &str = "pnt_eu-token-0123456789abcdef";
const TOKEN_US: &str = "pnt_us-token-0123456789abcdef";
const PASSWORD: &str = "store-password-0123456789";
const TOKEN_ADMIN: &str = "pnt_admin-token-0123456789abcdef";
const TOKEN_DASHBOARD: &str = "pnt_dashboard-token-0123456789ab";

fn secrets(tls: bool) -> Secrets {
    Secrets {
        tokens: BTreeMap::from([
            ("eu-west".to_owned(), TOKEN_EU.to_owned()),
            ("us-east".to_owned(), TOKEN_US.to_owned()),
        ]),
        admin_token: TOKEN_ADMIN.to_owned(),
        dashboard_token: TOKEN_DASHBOARD.to_owned(),
        store_password: PASSWORD.to_owned(),
        postgres_password: None,
        postgres_ca: None,
        created_at: "2026-01-01T00:00:00Z".to_owned(),
        tls: tls.then(|| TlsMaterial {
            ca_pem: "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n".to_owned(),
            cert_pem: "-----BEGIN CERTIFICATE-----\nSERVER\n-----END CERTIFICATE-----\n".to_owned(),
            key_pem: "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n".to_owned(),
        }),
    }
}

const STACK: &str = "\
name: test
checks: [checks.yaml]
scheduler: {host: probenet.example.com}
regions:
  eu-west: {probers: 2}
  us-east: {probers: 1, scheduler_host: 10.9.0.1, kubernetes: {context: us, namespace: probes-us}}
alerting:
  alertmanager:
    receivers:
      ops: {webhook_url: 'https://hooks.example/secret-path'}
kubernetes:
  namespace: monitoring
  image: ghcr.io/probenet/probenet:9.9.9
  storage_class: fast
  scheduler_ingress_cidrs: [203.0.113.0/24]
  replicas: {vmstorage: 3}
";

/// Every object of every written file, parsed back: (directory below `dir`, file name, kind, JSON); neither
/// `kustomization.yaml` nor `secrets/`.
fn parse_back(dir: &Path) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut files = walk(dir);
    files.sort();
    for file in files {
        let rel = file.strip_prefix(dir).expect("below").to_path_buf();
        let parent = rel.parent().expect("a parent").to_string_lossy().into_owned();
        let name = rel.file_name().expect("name").to_string_lossy().into_owned();
        if parent.is_empty() || parent == "secrets" || name == "kustomization.yaml" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read");
        for value in documents(&text, &file.display().to_string()) {
            let kind = value["kind"].as_str().expect("a kind").to_owned();
            out.push((parent.clone(), name.clone(), kind, value));
        }
    }
    out
}

/// The documents of a multi-document YAML text.
fn documents(text: &str, what: &str) -> Vec<Value> {
    // Documents start at a `---` line (PEM lines hold `---` too, indented in literal blocks).
    let text = format!("\n{text}");
    text.split("\n---\n")
        .filter(|doc| !doc.trim().is_empty())
        .map(|doc| {
            let node = probenet_checks::yaml::parse(doc).unwrap_or_else(|e| panic!("{what}: {}: {doc}", e.message));
            probenet_checks::yaml::from_node(&node, "").unwrap_or_else(|e| panic!("{what}: {}", e.message))
        })
        .collect()
}

/// The objects each cluster applies (what `kubectl kustomize` renders), as parsed objects.
fn rendered(manifests: &kubernetes::Manifests) -> Vec<Parsed> {
    manifests
        .clusters
        .iter()
        .flat_map(|c| c.objects.iter().map(move |o| (c.dir.clone(), String::new(), o.kind().to_owned(), o.to_value())))
        .collect()
}

/// The typed object a parsed document is.
fn typed(kind: &str, value: &Value) -> Object {
    let v = value.clone();
    match kind {
        "Namespace" => Object::Namespace(serde_json::from_value::<Namespace>(v).expect("a Namespace")),
        "Secret" => Object::Secret(serde_json::from_value::<Secret>(v).expect("a Secret")),
        "ConfigMap" => Object::ConfigMap(serde_json::from_value::<ConfigMap>(v).expect("a ConfigMap")),
        "Service" => Object::Service(serde_json::from_value::<Service>(v).expect("a Service")),
        "Deployment" => Object::Deployment(serde_json::from_value::<Deployment>(v).expect("a Deployment")),
        "StatefulSet" => Object::StatefulSet(serde_json::from_value::<StatefulSet>(v).expect("a StatefulSet")),
        "NetworkPolicy" => Object::NetworkPolicy(serde_json::from_value::<NetworkPolicy>(v).expect("a NetworkPolicy")),
        "PodDisruptionBudget" => Object::PodDisruptionBudget(serde_json::from_value(v).expect("a PodDisruptionBudget")),
        other => panic!("unexpected kind {other}"),
    }
}

/// The manifests of [`STACK`], written; the objects each cluster applies.
fn build(tls: bool) -> (tempfile::TempDir, kubernetes::Manifests, Vec<Parsed>) {
    let (dir, loaded) = common::load(STACK, common::CHECKS);
    let manifests = kubernetes::manifests(&loaded, &secrets(tls));
    let out = dir.path().join("k8s");
    manifests.write(&out).expect("write");
    let objects = rendered(&manifests);
    (dir, manifests, objects)
}

fn find<'a>(parsed: &'a [Parsed], kind: &str, name: &str) -> &'a Value {
    parsed
        .iter()
        .find(|(_, _, k, v)| k == kind && v["metadata"]["name"] == name)
        .map(|(_, _, _, v)| v)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn pod_spec(value: &Value) -> PodSpec {
    serde_json::from_value(value["spec"]["template"]["spec"].clone()).expect("a pod spec")
}

#[test]
fn every_file_parses_back_into_the_typed_objects_built() {
    let (dir, manifests, _) = build(true);
    let mut built: Vec<(String, String, Object)> = manifests
        .clusters
        .iter()
        .flat_map(|c| {
            c.files.iter().flat_map(move |f| f.objects.iter().map(move |o| (c.dir.clone(), f.name.clone(), o.clone())))
        })
        .collect();
    built.extend(
        manifests
            .base
            .iter()
            .flat_map(|f| f.objects.iter().map(move |o| ("base/prober".to_owned(), f.name.clone(), o.clone()))),
    );
    built.sort_by_key(|(dir, file, _)| (dir.clone(), file.clone()));
    let parsed = parse_back(&dir.path().join("k8s"));
    assert_eq!(built.len(), parsed.len());
    for ((dir, file, object), (pdir, pfile, kind, value)) in built.iter().zip(&parsed) {
        assert_eq!((dir, file), (pdir, pfile));
        assert_eq!(typed(kind, value), *object, "{dir}/{file}: {kind} {} differs after the round trip", object.name());
    }
    let dirs: Vec<&str> = manifests.clusters.iter().map(|c| c.dir.as_str()).collect();
    assert_eq!(dirs, ["central", "regions/eu-west", "regions/us-east"]);
    for kustomization in ["central", "base/prober", "regions/eu-west", "regions/us-east"] {
        assert!(dir.path().join("k8s").join(kustomization).join("kustomization.yaml").is_file(), "{kustomization}");
    }
}

#[test]
fn images_ports_probes_resources_and_security() {
    let (_dir, _, parsed) = build(true);
    let expect = [
        ("StatefulSet", "probenet-scheduler", "ghcr.io/probenet/probenet:9.9.9", 7443, "/healthz", "HTTPS"),
        ("StatefulSet", "vmstorage", "victoriametrics/vmstorage:", 8482, "/health", "HTTP"),
        ("Deployment", "vminsert", "victoriametrics/vminsert:", 8480, "/health", "HTTP"),
        ("Deployment", "vmselect", "victoriametrics/vmselect:", 8481, "/health", "HTTP"),
        ("Deployment", "vmalert", "victoriametrics/vmalert:", 8880, "/health", "HTTP"),
        ("StatefulSet", "alertmanager", "quay.io/prometheus/alertmanager:", 9093, "/-/ready", "HTTP"),
        ("Deployment", "probenet-prober-eu-west", "ghcr.io/probenet/probenet:9.9.9", 9470, "/healthz", "HTTP"),
    ];
    for (kind, name, image, port, path, scheme) in expect {
        let spec = pod_spec(find(&parsed, kind, name));
        let c: &Container = &spec.containers[0];
        assert!(c.image.as_deref().is_some_and(|i| i.starts_with(image)), "{name}: {:?}", c.image);
        let ports = c.ports.as_ref().expect("ports");
        assert_eq!(ports[0].container_port, port, "{name}");
        let readiness = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("a readiness probe");
        assert_eq!((readiness.path.as_deref(), readiness.scheme.as_deref()), (Some(path), Some(scheme)), "{name}");
        assert!(c.liveness_probe.is_some(), "{name}: no liveness probe");
        let resources = c.resources.as_ref().expect("resources");
        for set in [&resources.requests, &resources.limits] {
            let set = set.as_ref().expect("requests and limits");
            assert!(set.contains_key("cpu") && set.contains_key("memory"), "{name}: {set:?}");
        }
        let security = c.security_context.as_ref().expect("a security context");
        assert_eq!(security.read_only_root_filesystem, Some(true), "{name}");
        assert_eq!(security.run_as_non_root, Some(true), "{name}");
        assert_eq!(security.allow_privilege_escalation, Some(false), "{name}");
        assert_eq!(spec.security_context.as_ref().and_then(|s| s.run_as_non_root), Some(true), "{name}");
    }
    assert!(
        find(&parsed, "StatefulSet", "vmstorage")["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .is_some_and(|i| i.ends_with("-cluster"))
    );
    assert_eq!(find(&parsed, "StatefulSet", "vmstorage")["spec"]["replicas"], 3);
    let claim = &find(&parsed, "StatefulSet", "probenet-scheduler")["spec"]["volumeClaimTemplates"][0]["spec"];
    assert_eq!(
        (claim["storageClassName"].as_str(), claim["resources"]["requests"]["storage"].as_str()),
        (Some("fast"), Some("10Gi"))
    );
    // ICMP checks: unprivileged ping sockets through the safe sysctl; no capability at all.
    let prober = pod_spec(find(&parsed, "Deployment", "probenet-prober-eu-west"));
    let caps =
        prober.containers[0].security_context.as_ref().and_then(|s| s.capabilities.clone()).expect("capabilities");
    assert_eq!((caps.add, caps.drop), (None, Some(vec!["ALL".to_owned()])));
    let sysctls = prober.security_context.as_ref().and_then(|s| s.sysctls.clone()).expect("sysctls");
    assert_eq!(
        sysctls.iter().map(|s| (s.name.as_str(), s.value.as_str())).collect::<Vec<_>>(),
        [("net.ipv4.ping_group_range", "0 2147483647")]
    );
    assert_eq!(find(&parsed, "Deployment", "probenet-prober-eu-west")["spec"]["replicas"], 2);
    assert_eq!(
        prober_args(&parsed, "eu-west")[..5],
        ["prober", "--scheduler", "https://probenet-scheduler.monitoring.svc:7443", "--region", "eu-west"]
    );
    // A region with its own scheduler_host reaches the scheduler by it.
    assert_eq!(prober_args(&parsed, "us-east")[..3], ["prober", "--scheduler", "https://10.9.0.1:7443"]);
    let storage_nodes =
        find(&parsed, "Deployment", "vminsert")["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(storage_nodes.contains("-storageNode=vmstorage-0.vmstorage.monitoring.svc:8400,vmstorage-1.vmstorage.monitoring.svc:8400,vmstorage-2.vmstorage.monitoring.svc:8400"), "{storage_nodes}");
    assert!(storage_nodes.contains("-replicationFactor=2"), "{storage_nodes}");
    // In-cluster probers dial the ClusterIP Service; other clusters the load balancer, which keeps their
    // address (Local) and admits only the listed ranges.
    let internal = find(&parsed, "Service", "probenet-scheduler");
    assert_eq!(internal["spec"].get("type"), None);
    let public = find(&parsed, "Service", "probenet-scheduler-public");
    assert_eq!(public["spec"]["type"], "LoadBalancer");
    assert_eq!(public["spec"]["externalTrafficPolicy"], "Local");
    assert_eq!(public["spec"]["loadBalancerSourceRanges"], serde_json::json!(["203.0.113.0/24"]));
}

/// A region's prober arguments as the pod runs them: `$(VAR)` replaced by the region's config map.
fn prober_args(parsed: &[Parsed], region: &str) -> Vec<String> {
    let deployment = find(parsed, "Deployment", &format!("probenet-prober-{region}"));
    let ns = deployment["metadata"]["namespace"].as_str().expect("namespace");
    let config = parsed
        .iter()
        .find(|(_, _, k, v)| {
            k == "ConfigMap" && v["metadata"]["name"] == "probenet-prober" && v["metadata"]["namespace"] == ns
        })
        .map(|(_, _, _, v)| v)
        .expect("the region's config map");
    let container = &pod_spec(deployment).containers[0];
    let vars: Vec<(String, String)> = container
        .env
        .iter()
        .flatten()
        .map(|e| {
            let key = e.value_from.as_ref().and_then(|f| f.config_map_key_ref.as_ref()).expect("from the config map");
            (format!("$({})", e.name), config["data"][&key.key].as_str().expect("a value").to_owned())
        })
        .collect();
    container
        .args
        .clone()
        .expect("args")
        .into_iter()
        .map(|arg| vars.iter().fold(arg, |arg, (var, value)| arg.replace(var, value)))
        .collect()
}

#[test]
fn secrets_are_referenced_where_they_exist_and_tokens_only_hashed_centrally() {
    let (dir, _, parsed) = build(true);
    // Every secret a pod mounts or reads exists in the pod's namespace.
    let secrets: Vec<(String, String)> = parsed
        .iter()
        .filter(|(_, _, k, _)| k == "Secret")
        .map(|(_, _, _, v)| {
            (
                v["metadata"]["namespace"].as_str().unwrap_or_default().to_owned(),
                v["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (_, _, kind, value) in parsed.iter().filter(|(_, _, k, _)| k == "Deployment" || k == "StatefulSet") {
        let ns = value["metadata"]["namespace"].as_str().expect("namespace").to_owned();
        let spec = pod_spec(value);
        let mut used: Vec<String> =
            spec.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.clone()).collect();
        for c in &spec.containers {
            used.extend(
                c.env
                    .iter()
                    .flatten()
                    .filter_map(|e| Some(e.value_from.as_ref()?.secret_key_ref.as_ref()?.name.clone())),
            );
        }
        for secret in used {
            assert!(secrets.contains(&(ns.clone(), secret.clone())), "{kind} in {ns} uses missing secret {secret}");
        }
    }
    let token = find(&parsed, "Secret", "probenet-prober-token");
    assert_eq!(token["metadata"]["namespace"], "probenet-eu-west");
    assert_eq!(token["stringData"]["token"], TOKEN_EU);
    let hashes = find(&parsed, "Secret", "probenet-scheduler-tokens")["stringData"]["tokens.json"]
        .as_str()
        .expect("tokens.json")
        .to_owned();
    assert!(hashes.contains(&probenet_checks::tls::sha256_hex(TOKEN_EU.as_bytes())), "{hashes}");
    assert!(hashes.contains(&probenet_checks::tls::sha256_hex(TOKEN_ADMIN.as_bytes())), "{hashes}");
    assert!(!hashes.contains(TOKEN_EU) && !hashes.contains(TOKEN_US) && !hashes.contains(TOKEN_ADMIN));
    assert_eq!(find(&parsed, "Secret", "probenet-dashboard")["stringData"]["token"], TOKEN_DASHBOARD);
    assert_eq!(find(&parsed, "Secret", "probenet-store")["stringData"]["password"], PASSWORD);

    // Secret files are 0600; nothing else holds a token, the password or a key.
    let out = dir.path().join("k8s");
    for entry in walk(&out) {
        let text = std::fs::read_to_string(&entry).expect("read");
        let mode = std::fs::metadata(&entry).expect("metadata").permissions().mode() & 0o777;
        if entry.ends_with("01-secrets.yaml") {
            assert_eq!(mode, 0o600, "{}", entry.display());
        } else {
            assert_eq!(mode, 0o644, "{}", entry.display());
            for secret in [TOKEN_EU, TOKEN_US, TOKEN_ADMIN, TOKEN_DASHBOARD, PASSWORD, "PRIVATE KEY", "secret-path"] {
                assert!(!text.contains(secret), "{} holds {secret}", entry.display());
            }
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir").flatten() {
        let path = entry.path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn network_policies_allow_only_what_they_should() {
    let (_dir, _, parsed) = build(true);
    let policies: Vec<&Value> =
        parsed.iter().filter(|(_, _, k, _)| k == "NetworkPolicy").map(|(_, _, _, v)| v).collect();
    // Each namespace denies every ingress by default.
    for ns in ["monitoring", "probenet-eu-west", "probes-us"] {
        assert!(
            policies.iter().any(|p| p["metadata"]["namespace"] == ns
                && p["spec"]["podSelector"] == serde_json::json!({})
                && p["spec"].get("ingress").is_none()),
            "no default deny in {ns}"
        );
    }
    // (target component, port) -> the components (or CIDRs) allowed in.
    let mut allowed: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    for p in policies.iter().filter(|p| p["spec"].get("ingress").is_some()) {
        let policy: NetworkPolicy = serde_json::from_value((*p).clone()).expect("a policy");
        let spec = policy.spec.expect("spec");
        let target = spec
            .pod_selector
            .and_then(|s| s.match_labels)
            .and_then(|l| l.get("app.kubernetes.io/component").cloned())
            .expect("target");
        for rule in spec.ingress.expect("ingress") {
            let ports = rule.ports.expect("ports");
            assert_eq!(ports.len(), 1, "one port per rule");
            let port = match &ports[0].port {
                Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(port)) => i64::from(*port),
                other => panic!("port {other:?}"),
            };
            for peer in rule.from.expect("from") {
                let who = match (peer.pod_selector, peer.ip_block) {
                    (Some(selector), None) => selector
                        .match_labels
                        .and_then(|l| l.get("app.kubernetes.io/component").cloned())
                        .expect("component"),
                    (None, Some(block)) => block.cidr,
                    _ => panic!("a peer is pods or a CIDR"),
                };
                allowed.entry((target.clone(), port)).or_default().push(who);
            }
        }
    }
    let expected: BTreeMap<(String, i64), Vec<String>> = [
        (("scheduler", 7443), vec!["prober", "203.0.113.0/24"]),
        (("vminsert", 8480), vec!["scheduler", "vmalert"]),
        (("vmselect", 8481), vec!["vmalert"]),
        (("vmstorage", 8400), vec!["vminsert"]),
        (("vmstorage", 8401), vec!["vmselect"]),
        (("alertmanager", 9093), vec!["vmalert"]),
    ]
    .into_iter()
    .map(|((target, port), from)| ((target.to_owned(), port), from.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(allowed, expected);
}

#[test]
fn the_deployed_config_validates_and_the_readme_applies_in_order() {
    let (_dir, manifests, parsed) = build(true);
    let mut sources = Vec::new();
    for name in ["probenet-checks", "probenet-stack"] {
        let data = find(&parsed, "ConfigMap", name)["data"].as_object().expect("data").clone();
        for (key, text) in data {
            sources
                .push(probenet_checks::wire::ConfigFile { name: key, text: text.as_str().expect("text").to_owned() });
        }
    }
    let config = probenet_checks::config::load_sources(&sources).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((config.checks.len(), config.exporters.len()), (5, 1));
    assert!(config.dashboard.token.is_some(), "the dashboard gets its token");

    let readme = manifests.readme();
    let central = readme.find("kubectl apply --server-side -k central/\n").expect("central first");
    let eu = readme.find("kubectl apply --server-side -k regions/eu-west/\n").expect("eu-west");
    let us =
        readme.find("kubectl --context us apply --server-side -k regions/us-east/\n").expect("us-east in its context");
    assert!(central < eu && eu < us, "{readme}");
    assert!(
        readme.contains("certificate holds `probenet.example.com`, `10.9.0.1`, `probenet-scheduler.monitoring.svc`"),
        "{readme}"
    );
    for secret in [TOKEN_EU, PASSWORD] {
        assert!(!readme.contains(secret));
    }
    let plan = manifests.plan(Path::new("k8s"), probenet_install::cost::Cost::default()).to_string();
    assert!(plan.contains("+ Deployment probes-us/probenet-prober-us-east in regions/us-east/"), "{plan}");
    assert!(!plan.contains(TOKEN_EU), "{plan}");
}

#[test]
fn generated_secrets_are_random_and_shown_nowhere() {
    let a = Secrets::generate(["eu", "us"]).expect("random");
    let b = Secrets::generate(["eu", "us"]).expect("random");
    assert_ne!(a.tokens["eu"], b.tokens["eu"]);
    assert_ne!(a.tokens["eu"], a.tokens["us"]);
    assert!(a.tokens["eu"].starts_with("pnt_") && a.tokens["eu"].len() == 4 + 43, "{}", a.tokens["eu"].len());
    assert!(!format!("{a:?}").contains(&a.tokens["eu"]));
}

/// The manifests of another stack over the same checks, written and parsed back.
fn build_stack(stack: &str) -> (tempfile::TempDir, kubernetes::Manifests, Vec<Parsed>) {
    let (dir, loaded) = common::load(stack, common::CHECKS);
    let manifests = kubernetes::manifests(&loaded, &secrets(true));
    let out = dir.path().join("k8s");
    manifests.write(&out).expect("write");
    let objects = rendered(&manifests);
    (dir, manifests, objects)
}

#[test]
fn the_scheduler_port_follows_its_listen_address() {
    let stack = STACK.replace(
        "scheduler: {host: probenet.example.com}",
        "scheduler: {host: probenet.example.com, listen: 0.0.0.0:9443}",
    );
    let (_dir, _, parsed) = build_stack(&stack);
    let scheduler = pod_spec(find(&parsed, "StatefulSet", "probenet-scheduler"));
    let c = &scheduler.containers[0];
    assert_eq!(c.ports.as_ref().expect("ports")[0].container_port, 9443);
    let args = c.args.clone().expect("args");
    let listen = args.iter().position(|a| a == "--listen").expect("--listen");
    assert_eq!(args[listen + 1], "0.0.0.0:9443");
    let service: Service =
        serde_json::from_value(find(&parsed, "Service", "probenet-scheduler").clone()).expect("a Service");
    let ports = service.spec.and_then(|s| s.ports).expect("ports");
    assert_eq!(ports.iter().map(|p| p.port).collect::<Vec<_>>(), [9443]);
    let policy = find(&parsed, "NetworkPolicy", "allow-scheduler-9443");
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 9443);
    assert_eq!(
        prober_args(&parsed, "eu-west")[..3],
        ["prober", "--scheduler", "https://probenet-scheduler.monitoring.svc:9443"]
    );
    assert_eq!(prober_args(&parsed, "us-east")[..3], ["prober", "--scheduler", "https://10.9.0.1:9443"]);
    // No sysctl: the port is not privileged.
    assert_eq!(scheduler.security_context.and_then(|s| s.sysctls), None);
}

#[test]
fn port_443_is_rendered_with_the_safe_sysctl_for_unprivileged_ports() {
    let stack = STACK.replace(
        "scheduler: {host: probenet.example.com}",
        "scheduler: {host: probenet.example.com, listen: 0.0.0.0:443}",
    );
    let (_dir, _, parsed) = build_stack(&stack);
    let scheduler = pod_spec(find(&parsed, "StatefulSet", "probenet-scheduler"));
    // uid 65534 binds 443 without any capability (none reaches a non-root process).
    let sysctls = scheduler.security_context.and_then(|s| s.sysctls).expect("sysctls");
    assert_eq!(
        sysctls.iter().map(|s| (s.name.as_str(), s.value.as_str())).collect::<Vec<_>>(),
        [("net.ipv4.ip_unprivileged_port_start", "0")]
    );
    let c = &scheduler.containers[0];
    assert_eq!(c.ports.as_ref().expect("ports")[0].container_port, 443);
    assert_eq!(c.security_context.as_ref().and_then(|s| s.capabilities.as_ref()).and_then(|c| c.add.clone()), None);
    assert_eq!(find(&parsed, "Service", "probenet-scheduler-public")["spec"]["ports"][0]["port"], 443);
    assert_eq!(prober_args(&parsed, "us-east")[..3], ["prober", "--scheduler", "https://10.9.0.1:443"]);
}

/// The located errors of a stack that does not load, each as `probenet install` prints it.
fn refused(stack: &str, checks: &str) -> Vec<String> {
    let (_dir, path) = common::write(stack, checks);
    match probenet_install::stack::load(&path) {
        Ok(_) => panic!("stack loads:\n{stack}"),
        Err(errors) => {
            errors.0.iter().map(|e| format!("stack.yaml:{}:{}: {}: {}", e.line, e.col, e.path, e.message)).collect()
        }
    }
}

#[test]
fn a_region_name_that_cannot_name_kubernetes_objects_is_refused_where_written() {
    let stack = STACK.replace("  eu-west: {probers: 2}", "  eu_west: {probers: 2, kubernetes: {namespace: probes-eu}}");
    let checks = common::CHECKS.replace("  eu-west: {}", "  eu_west: {}").replace("[eu-west]", "[eu_west]");
    assert_eq!(
        refused(&stack, &checks),
        [
            "stack.yaml:5:3: regions.eu_west: \"eu_west\" cannot be in Kubernetes object names (probenet-prober-NAME): a \
             region name is 1 to 47 lowercase letters, digits and -, starting and ending with a letter or digit, as in \
             eu-west"
        ]
    );
    let long = "a".repeat(48);
    let stack = STACK.replace("  eu-west: {probers: 2}", &format!("  {long}: {{probers: 2}}"));
    let errors = refused(&stack, &common::CHECKS.replace("  eu-west: {}", &format!("  {long}: {{}}")));
    assert!(errors.iter().any(|e| e.starts_with(&format!("stack.yaml:5:3: regions.{long}: "))), "{errors:?}");
}

#[test]
fn two_regions_in_one_namespace_are_refused_on_the_second() {
    let stack = STACK.replace("  eu-west: {probers: 2}", "  eu-west: {probers: 2, kubernetes: {namespace: probes-us}}");
    assert_eq!(
        refused(&stack, common::CHECKS),
        ["stack.yaml:6:88: regions.us-east.kubernetes.namespace: namespace \"probes-us\" is region \"eu-west\"'s \
             already: each region needs a namespace of its own (`kubernetes: {namespace: ...}`)"]
    );
    // A default namespace (`probenet-NAME`) taken by another region: reported at the region's name.
    let stack = STACK
        .replace("  eu-west: {probers: 2}", "  eu-west: {probers: 2, kubernetes: {namespace: probenet-us-east}}")
        .replace(", namespace: probes-us", "");
    assert_eq!(
        refused(&stack, common::CHECKS),
        ["stack.yaml:6:3: regions.us-east: namespace \"probenet-us-east\" is region \"eu-west\"'s already: each \
             region needs a namespace of its own (`kubernetes: {namespace: ...}`)"]
    );
}

#[test]
fn a_region_without_a_context_is_applied_in_the_central_one() {
    let stack = STACK.replace("  namespace: monitoring", "  context: central\n  namespace: monitoring");
    let (_dir, manifests, _) = build_stack(&stack);
    let contexts: Vec<(&str, Option<&str>)> =
        manifests.clusters.iter().map(|c| (c.dir.as_str(), c.context.as_deref())).collect();
    assert_eq!(
        contexts,
        [("central", Some("central")), ("regions/eu-west", Some("central")), ("regions/us-east", Some("us"))]
    );
    let readme = manifests.readme();
    for line in [
        "kubectl --context central apply --server-side -k central/\n",
        "kubectl --context central apply --server-side -k regions/eu-west/\n",
        "kubectl --context us apply --server-side -k regions/us-east/\n",
    ] {
        assert!(readme.contains(line), "{line}: {readme}");
    }
    assert!(!readme.contains("kubectl apply"), "{readme}");
}

/// Every secret value of a rendered directory: (file below `out`, its bytes) for `secrets/*` and the Secrets of
/// every `01-secrets.yaml`.
fn secret_values(out: &Path) -> BTreeMap<String, String> {
    let mut values = BTreeMap::new();
    for file in walk(out) {
        let rel = file.strip_prefix(out).expect("below").display().to_string();
        if rel.starts_with("secrets/") {
            values.insert(rel, std::fs::read_to_string(&file).expect("read"));
        } else if rel.ends_with("01-secrets.yaml") {
            for doc in documents(&std::fs::read_to_string(&file).expect("read"), &rel) {
                for (key, value) in doc["stringData"].as_object().expect("stringData") {
                    let name = doc["metadata"]["name"].as_str().expect("name");
                    values.insert(format!("{rel}:{name}:{key}"), value.as_str().expect("text").to_owned());
                }
            }
        }
    }
    values
}

#[test]
fn rendering_again_keeps_every_secret_and_rotate_renews_them_all() {
    let (dir, loaded) = common::load(STACK, common::CHECKS);
    let out = dir.path().join("k8s");
    let (first, _) = kubernetes::render(&loaded, &out, false).expect("render");
    let before = secret_values(&out);
    for key in [
        "secrets/ca.pem",
        "secrets/ca-key.pem",
        "secrets/server.pem",
        "secrets/server-key.pem",
        "secrets/admin.token",
        "secrets/dashboard.token",
        "secrets/store-password",
        "secrets/prober-eu-west.token",
        "secrets/prober-us-east.token",
        "central/01-secrets.yaml:probenet-store:password",
        "central/01-secrets.yaml:probenet-tls:tls.key",
        "regions/eu-west/01-secrets.yaml:probenet-prober-token:token",
    ] {
        assert!(before.contains_key(key), "no {key}: {:?}", before.keys().collect::<Vec<_>>());
    }
    let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
    assert_eq!(mode(&out.join("secrets")), 0o700);
    assert_eq!(mode(&out.join("secrets/ca-key.pem")), 0o600);
    assert_eq!(mode(&out.join("secrets/admin.token")), 0o600);
    // The admin token's hash is in the scheduler's tokens.json, the token in secrets/ only.
    let admin = before["secrets/admin.token"].trim().to_owned();
    let tokens = &before["central/01-secrets.yaml:probenet-scheduler-tokens:tokens.json"];
    assert!(tokens.contains(&probenet_checks::tls::sha256_hex(admin.as_bytes())), "{tokens}");
    assert_eq!(before["central/01-secrets.yaml:probenet-dashboard:token"], before["secrets/dashboard.token"].trim());
    // The server certificate holds the in-cluster name probers dial.
    assert!(first.tls_names.contains(&"probenet-scheduler.monitoring.svc".to_owned()));

    // Again: not one byte of a secret changes, nor any file.
    let files_before: BTreeMap<String, String> =
        walk(&out).into_iter().map(|p| (p.display().to_string(), std::fs::read_to_string(&p).expect("read"))).collect();
    let (second, _) = kubernetes::render(&loaded, &out, false).expect("render again");
    assert_eq!(secret_values(&out), before);
    let files_after: BTreeMap<String, String> =
        walk(&out).into_iter().map(|p| (p.display().to_string(), std::fs::read_to_string(&p).expect("read"))).collect();
    assert_eq!(files_after, files_before, "a second render changed a file");
    assert_eq!(first, second);

    // --rotate: every secret is new, and the pods that read them roll (their checksums change).
    let (third, _) = kubernetes::render(&loaded, &out, true).expect("rotate");
    let after = secret_values(&out);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>());
    for (key, value) in &before {
        // The time stamp, and Alertmanager's config (the stack file's, not a made secret).
        if key.ends_with("created-at") || key.contains("alertmanager-config") {
            continue;
        }
        assert_ne!(&after[key], value, "{key} was not renewed");
    }
    let checksum = |m: &kubernetes::Manifests, name: &str| {
        let objects = rendered(m);
        find(&objects, "Deployment", name)["spec"]["template"]["metadata"]["annotations"]
            [kubernetes::CHECKSUM_ANNOTATION]
            .as_str()
            .expect("a checksum")
            .to_owned()
    };
    for name in ["probenet-prober-eu-west", "vminsert", "vmalert"] {
        assert_ne!(checksum(&second, name), checksum(&third, name), "{name} would not roll");
    }
}

#[test]
fn a_config_change_rolls_exactly_the_pods_that_read_it() {
    let checksum = |objects: &[Parsed], kind: &str, name: &str| {
        find(objects, kind, name)["spec"]["template"]["metadata"]["annotations"][kubernetes::CHECKSUM_ANNOTATION]
            .as_str()
            .unwrap_or_else(|| panic!("{kind} {name}: no checksum"))
            .to_owned()
    };
    let (_d1, _, before) = build_stack(STACK);
    let changed =
        STACK.replace("webhook_url: 'https://hooks.example/secret-path'", "webhook_url: 'https://hooks.example/other'");
    let (_d2, _, after) = build_stack(&changed);
    assert_ne!(checksum(&before, "StatefulSet", "alertmanager"), checksum(&after, "StatefulSet", "alertmanager"));
    assert_eq!(checksum(&before, "Deployment", "vmalert"), checksum(&after, "Deployment", "vmalert"));
    assert_eq!(
        checksum(&before, "StatefulSet", "probenet-scheduler"),
        checksum(&after, "StatefulSet", "probenet-scheduler")
    );
    // Checks config: the scheduler and vmalert (its rules) roll; the probers get their work from the scheduler.
    let (dir, loaded) = common::load(STACK, &common::CHECKS.replace("interval: 10s", "interval: 20s"));
    let objects = rendered(&kubernetes::manifests(&loaded, &secrets(true)));
    drop(dir);
    assert_ne!(
        checksum(&before, "StatefulSet", "probenet-scheduler"),
        checksum(&objects, "StatefulSet", "probenet-scheduler")
    );
    assert_eq!(
        checksum(&before, "Deployment", "probenet-prober-eu-west"),
        checksum(&objects, "Deployment", "probenet-prober-eu-west")
    );
    // Tokens are re-read by the scheduler: a new prober token does not restart it, but restarts that prober.
    let mut other = secrets(true);
    other.tokens.insert("eu-west".to_owned(), "pnt_another-token".to_owned());
    let (dir, loaded) = common::load(STACK, common::CHECKS);
    let objects = rendered(&kubernetes::manifests(&loaded, &other));
    drop(dir);
    assert_eq!(
        checksum(&before, "StatefulSet", "probenet-scheduler"),
        checksum(&objects, "StatefulSet", "probenet-scheduler")
    );
    assert_ne!(
        checksum(&before, "Deployment", "probenet-prober-eu-west"),
        checksum(&objects, "Deployment", "probenet-prober-eu-west")
    );
    assert_eq!(
        checksum(&before, "Deployment", "probenet-prober-us-east"),
        checksum(&objects, "Deployment", "probenet-prober-us-east")
    );
}

#[test]
fn tokens_are_mounted_as_a_directory_and_linked_never_by_sub_path() {
    let (_dir, _, parsed) = build(true);
    for (_, _, kind, value) in parsed.iter().filter(|(_, _, k, _)| k == "Deployment" || k == "StatefulSet") {
        let spec = pod_spec(value);
        for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
            for m in c.volume_mounts.iter().flatten() {
                assert_eq!(m.sub_path, None, "{kind} {}: {} by subPath", value["metadata"]["name"], m.mount_path);
            }
        }
    }
    let scheduler = pod_spec(find(&parsed, "StatefulSet", "probenet-scheduler"));
    let link = &scheduler.init_containers.as_ref().expect("an init container")[0];
    assert_eq!(
        link.command.clone().expect("a command"),
        ["/bin/ln", "-sfn", "/etc/probenet/tokens/tokens.json", "/var/lib/probenet/tokens.json"]
    );
    // VictoriaMetrics reads its password from a file, never from an argument or the environment.
    for (kind, name) in [("Deployment", "vminsert"), ("Deployment", "vmselect"), ("Deployment", "vmalert")] {
        let c = &pod_spec(find(&parsed, kind, name)).containers[0];
        let args = c.args.clone().expect("args");
        assert!(
            args.contains(&"-httpAuth.password=file:///etc/victoriametrics/secrets/password".to_owned()),
            "{name}: {args:?}"
        );
        assert!(!args.iter().any(|a| a.contains(PASSWORD)) && c.env.is_none(), "{name}");
    }
}

#[test]
fn vmstorage_replicates_spreads_and_has_a_disruption_budget() {
    let (_dir, _, parsed) = build(true);
    let vmstorage = pod_spec(find(&parsed, "StatefulSet", "vmstorage"));
    let terms = vmstorage
        .affinity
        .and_then(|a| a.pod_anti_affinity)
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
        .expect("anti-affinity");
    assert_eq!(terms[0].pod_affinity_term.topology_key, "kubernetes.io/hostname");
    let pdb = find(&parsed, "PodDisruptionBudget", "vmstorage");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"], "vmstorage");
    for name in ["vminsert", "vmselect"] {
        let args = pod_spec(find(&parsed, "Deployment", name)).containers[0].args.clone().expect("args");
        assert!(args.contains(&"-replicationFactor=2".to_owned()), "{name}: {args:?}");
    }
    // More copies than nodes: refused where written.
    let stack = STACK.replace("replicas: {vmstorage: 3}", "replicas: {vmstorage: 3, replication_factor: 4}");
    let errors = refused(&stack, common::CHECKS);
    assert_eq!(
        errors,
        [
            "stack.yaml:16:48: kubernetes.replicas.replication_factor: 4 copies need as many vmstorage nodes; there are 3"
        ]
    );
}

#[test]
fn namespaces_carry_the_pod_security_level_their_pods_meet() {
    let (_dir, _, parsed) = build(true);
    for ns in ["monitoring", "probenet-eu-west", "probes-us"] {
        let labels = &find(&parsed, "Namespace", ns)["metadata"]["labels"];
        for mode in ["enforce", "audit", "warn"] {
            assert_eq!(labels[format!("pod-security.kubernetes.io/{mode}")], "restricted", "{ns}");
        }
    }
    // Raw sockets asked for: NET_RAW, which only `privileged` admits, in the regions' namespaces only.
    let stack = STACK.replace("  replicas: {vmstorage: 3}", "  replicas: {vmstorage: 3}\n  raw_sockets: true");
    let (_dir, _, parsed) = build_stack(&stack);
    assert_eq!(
        find(&parsed, "Namespace", "probenet-eu-west")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
    assert_eq!(
        find(&parsed, "Namespace", "monitoring")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let prober = pod_spec(find(&parsed, "Deployment", "probenet-prober-eu-west"));
    let caps = prober.containers[0].security_context.as_ref().and_then(|s| s.capabilities.clone()).expect("caps");
    assert_eq!(caps.add, Some(vec!["NET_RAW".to_owned()]));
    assert_eq!(prober.security_context.and_then(|s| s.sysctls), None);
}

#[test]
fn user_secrets_reach_the_scheduler_and_probers() {
    let stack = STACK.replace(
        "  replicas: {vmstorage: 3}",
        "  replicas: {vmstorage: 3}\n  secrets:\n    - {name: smtp, as: env, for: [scheduler]}\n    - {name: api-keys}",
    );
    let (_dir, _, parsed) = build_stack(&stack);
    let scheduler = pod_spec(find(&parsed, "StatefulSet", "probenet-scheduler"));
    let c = &scheduler.containers[0];
    let env_from: Vec<String> =
        c.env_from.iter().flatten().filter_map(|e| Some(e.secret_ref.as_ref()?.name.clone())).collect();
    assert_eq!(env_from, ["smtp"]);
    let mounted = |spec: &PodSpec| -> Vec<(String, String)> {
        let c = &spec.containers[0];
        spec.volumes
            .iter()
            .flatten()
            .filter_map(|v| {
                let secret = v.secret.as_ref()?.secret_name.clone()?;
                let m = c.volume_mounts.iter().flatten().find(|m| m.name == v.name)?;
                Some((secret, m.mount_path.clone()))
            })
            .filter(|(secret, _)| secret == "api-keys")
            .collect()
    };
    assert_eq!(mounted(&scheduler), [("api-keys".to_owned(), "/etc/probenet/user-secrets/api-keys".to_owned())]);
    let prober = pod_spec(find(&parsed, "Deployment", "probenet-prober-eu-west"));
    assert_eq!(mounted(&prober), [("api-keys".to_owned(), "/etc/probenet/user-secrets/api-keys".to_owned())]);
    assert_eq!(prober.containers[0].env_from, None, "smtp is the scheduler's only");
    let readme = build_stack(&stack).1.readme();
    for line in [
        "- `smtp` in `-n monitoring`: every key an environment variable (scheduler)\n",
        "- `api-keys` in `-n probenet-eu-west`: every key a file in /etc/probenet/user-secrets/api-keys (probers)\n",
        "- `api-keys` in `--context us -n probes-us`: every key a file in /etc/probenet/user-secrets/api-keys (probers)\n",
    ] {
        assert!(readme.contains(line), "{line}{readme}");
    }
    assert!(readme.find("your Secrets") < readme.find("## Apply"), "{readme}");
    let errors =
        refused(&STACK.replace("  replicas: {vmstorage: 3}", "  secrets: [{name: x, as: volume}]"), common::CHECKS);
    assert_eq!(
        errors,
        [
            "stack.yaml:16:27: kubernetes.secrets[0].as: \"volume\": a Secret is given as `env` (envFrom) or `files` (a volume)"
        ]
    );
}

const POSTGRES: &str = "scheduler:
  host: probenet.example.com
  replicas: 3
  store: postgres://probenet@pg-rw.db.svc:5432/probenet?sslmode=require
  store_password_secret: pg-app
  store_ca_secret: pg-ca
";

#[test]
fn replicated_schedulers_on_postgresql_render_a_deployment_a_budget_and_spread() {
    let stack = STACK.replace("scheduler: {host: probenet.example.com}\n", POSTGRES);
    let (_dir, _, parsed) = build_stack(&stack);
    assert!(!parsed.iter().any(|(_, _, k, v)| k == "StatefulSet" && v["metadata"]["name"] == "probenet-scheduler"));
    let deployment = find(&parsed, "Deployment", "probenet-scheduler");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let spec = pod_spec(deployment);
    let terms = spec
        .affinity
        .clone()
        .and_then(|a| a.pod_anti_affinity)
        .and_then(|a| a.preferred_during_scheduling_ignored_during_execution)
        .expect("anti-affinity");
    assert_eq!(terms[0].pod_affinity_term.topology_key, "kubernetes.io/hostname");
    assert_eq!(
        terms[0]
            .pod_affinity_term
            .label_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref())
            .map(|l| l["app.kubernetes.io/component"].clone()),
        Some("scheduler".to_owned())
    );
    let pdb = find(&parsed, "PodDisruptionBudget", "probenet-scheduler");
    assert_eq!(pdb["spec"]["minAvailable"], 2);
    // No volume claim: the state is in PostgreSQL; the data directory is scratch.
    let data = spec.volumes.iter().flatten().find(|v| v.name == "data").expect("a data volume");
    assert!(data.empty_dir.is_some() && data.persistent_volume_claim.is_none());
    let c = &spec.containers[0];
    let args = c.args.clone().expect("args");
    let after = |flag: &str| {
        args[args.iter().position(|a| a == flag).unwrap_or_else(|| panic!("no {flag}: {args:?}")) + 1].clone()
    };
    assert_eq!(after("--store"), "postgres://probenet@pg-rw.db.svc:5432/probenet?sslmode=require");
    assert_eq!(after("--store-password-file"), "/etc/probenet/postgres/password");
    assert_eq!(after("--store-ca"), "/etc/probenet/postgres-ca/ca.crt");
    assert_eq!(after("--replica-name"), "$(POD_NAME)");
    assert_eq!(after("--advertise-url"), "https://$(POD_IP):7443");
    let fields: Vec<(String, String)> = c
        .env
        .iter()
        .flatten()
        .map(|e| {
            (
                e.name.clone(),
                e.value_from.as_ref().and_then(|f| f.field_ref.as_ref()).expect("a field").field_path.clone(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [("POD_NAME".to_owned(), "metadata.name".to_owned()), ("POD_IP".to_owned(), "status.podIP".to_owned())]
    );
    let secrets: Vec<String> =
        spec.volumes.iter().flatten().filter_map(|v| v.secret.as_ref()?.secret_name.clone()).collect();
    assert!(secrets.contains(&"pg-app".to_owned()) && secrets.contains(&"pg-ca".to_owned()), "{secrets:?}");
    // Ready follows /healthz (503 while the database does not answer); alive only needs the port.
    let readiness = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("readiness");
    assert_eq!(readiness.path.as_deref(), Some("/healthz"));
    assert!(c.liveness_probe.as_ref().is_some_and(|p| p.tcp_socket.is_some() && p.http_get.is_none()));

    let (_dir, manifests, _) = build_stack(&stack);
    assert!(manifests.readme().contains("keep the tokens in PostgreSQL"));
    assert!(!build(true).1.readme().contains("PostgreSQL"));

    // The password from a file: into a Secret of ours.
    let (dir, path) = common::write(
        &stack
            .replace("store_password_secret: pg-app", "store_password: ${file:pg-password}")
            .replace("  store_ca_secret: pg-ca\n", ""),
        common::CHECKS,
    );
    std::fs::write(dir.path().join("pg-password"), "s3cret-pg\n").expect("write");
    let loaded = probenet_install::stack::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let (manifests, _) = kubernetes::render(&loaded, &dir.path().join("k8s"), false).expect("render");
    let objects = rendered(&manifests);
    assert_eq!(find(&objects, "Secret", "probenet-postgres")["stringData"]["password"], "s3cret-pg");
    let spec = pod_spec(find(&objects, "Deployment", "probenet-scheduler"));
    assert!(!spec.containers[0].args.clone().expect("args").contains(&"--store-ca".to_owned()));
}

#[test]
fn the_defects_of_the_issue_are_refused_where_written() {
    // An embedded store cannot serve three schedulers.
    let stack = STACK
        .replace("scheduler: {host: probenet.example.com}", "scheduler: {host: probenet.example.com, replicas: 3}");
    assert_eq!(
        refused(&stack, common::CHECKS),
        ["stack.yaml:3:51: scheduler.replicas: 3 schedulers need a store they share: set scheduler.store to a \
          PostgreSQL URL (postgres://USER@HOST:5432/DB?sslmode=require), or to `postgresql` for a server the \
          local install runs; the embedded store serves one scheduler"]
    );
    // A password in the URL, and a PostgreSQL store without a password.
    let stack = STACK.replace(
        "scheduler: {host: probenet.example.com}",
        "scheduler: {host: probenet.example.com, store: 'postgres://u:pw@db:5432/p'}",
    );
    assert_eq!(
        refused(&stack, common::CHECKS),
        ["stack.yaml:3:48: scheduler.store: the URL holds a password; give it by store_password or \
          store_password_secret: write `embedded`, `postgresql` or postgres://USER@HOST:5432/DB?sslmode=require"]
    );
    let stack = STACK.replace(
        "scheduler: {host: probenet.example.com}",
        "scheduler: {host: probenet.example.com, store: 'postgres://u@db:5432/p'}",
    );
    let errors = refused(&stack, common::CHECKS);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("stack.yaml:3:41: scheduler.store: a PostgreSQL store needs its password"),
        "{errors:?}"
    );
}

/// A tool the tests run: on PATH, or in the venv `.ci/run` makes. `None` (after a `skip:` line) when missing
/// outside CI; on CI a missing tool fails the test.
fn tool(name: &str) -> Option<std::path::PathBuf> {
    let paths = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&paths)
        .chain([std::path::PathBuf::from("/opt/probenet-ci/venv/bin")])
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(std::env::var_os("CI").is_none(), "{name} is missing on CI: .ci/run installs it");
        println!("skip: {name} is not installed (.ci/run installs it)");
    }
    found
}

fn run(command: &mut std::process::Command) -> (bool, String) {
    let output = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), text)
}

/// Stacks that between them render every kind of object: the test stack with user secrets, and replicated
/// schedulers on PostgreSQL with raw sockets.
fn every_shape() -> Vec<(tempfile::TempDir, kubernetes::Manifests)> {
    let with_secrets = STACK.replace(
        "  replicas: {vmstorage: 3}",
        "  replicas: {vmstorage: 3}\n  secrets:\n    - {name: smtp, as: env, for: [scheduler]}\n    - {name: api-keys}",
    );
    let replicated = STACK
        .replace("scheduler: {host: probenet.example.com}\n", POSTGRES)
        .replace("  replicas: {vmstorage: 3}", "  replicas: {vmstorage: 3}\n  raw_sockets: true");
    [with_secrets, replicated]
        .iter()
        .map(|stack| {
            let (dir, loaded) = common::load(stack, common::CHECKS);
            let (manifests, _) = kubernetes::render(&loaded, &dir.path().join("k8s"), false).expect("render");
            (dir, manifests)
        })
        .collect()
}

#[test]
fn kubectl_kustomize_renders_each_directory_into_the_objects_built() {
    let Some(kubectl) = tool("kubectl") else { return };
    for (dir, manifests) in every_shape() {
        let out = dir.path().join("k8s");
        for cluster in &manifests.clusters {
            let (ok, text) = run(std::process::Command::new(&kubectl).arg("kustomize").arg(out.join(&cluster.dir)));
            assert!(ok, "kubectl kustomize {}: {text}", cluster.dir);
            let mut got: Vec<Value> = documents(&text, &cluster.dir);
            let mut want: Vec<Value> = cluster.objects.iter().map(Object::to_value).collect();
            let key = |v: &Value| format!("{}/{}/{}", v["kind"], v["metadata"]["namespace"], v["metadata"]["name"]);
            got.sort_by_key(key);
            want.sort_by_key(key);
            assert_eq!(
                got.iter().map(key).collect::<Vec<_>>(),
                want.iter().map(key).collect::<Vec<_>>(),
                "{}",
                cluster.dir
            );
            for (got, want) in got.iter().zip(&want) {
                assert_eq!(got, want, "{}: {} renders otherwise", cluster.dir, key(want));
            }
        }
    }
}

#[test]
fn every_object_validates_strictly_against_kubernetes_1_29_and_the_newest_schemas() {
    let Some(validate) = tool("kubernetes-validate") else { return };
    let (_, version) = run(std::process::Command::new(&validate).arg("--version"));
    let newest = version.trim().to_owned();
    assert!(newest.split('.').count() == 3, "kubernetes-validate --version: {version}");
    let files = tempfile::tempdir().expect("temp dir");
    let mut paths = Vec::new();
    let mut kinds = std::collections::BTreeSet::new();
    for (index, (_dir, manifests)) in every_shape().into_iter().enumerate() {
        for (n, object) in manifests.clusters.iter().flat_map(|c| c.objects.iter()).enumerate() {
            kinds.insert(object.kind());
            let path = files.path().join(format!("{index}-{n:03}.yaml"));
            std::fs::write(&path, probenet_install::yaml_out::to_documents(&[object.to_value()])).expect("write");
            paths.push(path);
        }
    }
    for expected in [
        "Namespace",
        "Secret",
        "ConfigMap",
        "Service",
        "Deployment",
        "StatefulSet",
        "NetworkPolicy",
        "PodDisruptionBudget",
    ] {
        assert!(kinds.contains(expected), "no {expected} validated");
    }
    for version in ["1.29.0", newest.as_str()] {
        let (ok, text) =
            run(std::process::Command::new(&validate).args(["--strict", "--no-warn", "-k", version]).args(&paths));
        assert!(ok, "kubernetes-validate --strict -k {version}:\n{text}");
        let passed = text.lines().filter(|line| line.starts_with("INFO")).count();
        assert_eq!(passed, paths.len(), "{version}: {text}");
    }
}
