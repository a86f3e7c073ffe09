//! The Kubernetes manifests: written as YAML, parsed back with probenet's YAML parser into typed k8s-openapi
//! objects equal to the ones built, and their content checked (images, ports, secrets, probes, resources,
//! security contexts, network policies), secret files 0600, tokens nowhere else.

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

fn secrets(tls: bool) -> Secrets {
    Secrets {
        tokens: BTreeMap::from([
            ("eu-west".to_owned(), TOKEN_EU.to_owned()),
            ("us-east".to_owned(), TOKEN_US.to_owned()),
        ]),
        store_password: PASSWORD.to_owned(),
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

/// Every object of every written file, parsed back: (cluster dir, file name, kind, JSON).
fn parse_back(dir: &Path) -> Vec<Parsed> {
    let mut out = Vec::new();
    let mut clusters: Vec<_> =
        std::fs::read_dir(dir).expect("out dir").flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
    clusters.sort();
    for cluster in clusters {
        let mut files: Vec<_> = std::fs::read_dir(&cluster).expect("cluster dir").flatten().map(|e| e.path()).collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            // Documents start at a `---` line (PEM lines hold `---` too, indented in literal blocks).
            let text = format!("\n{text}");
            for doc in text.split("\n---\n").filter(|doc| !doc.trim().is_empty()) {
                let node = probenet_checks::yaml::parse(doc)
                    .unwrap_or_else(|e| panic!("{}: {}: {doc}", file.display(), e.message));
                let value: Value = probenet_checks::yaml::from_node(&node, "")
                    .unwrap_or_else(|e| panic!("{}: {}", file.display(), e.message));
                let kind = value["kind"].as_str().expect("a kind").to_owned();
                let name = |p: &Path| p.file_name().expect("name").to_string_lossy().into_owned();
                out.push((name(&cluster), name(&file), kind, value));
            }
        }
    }
    out
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
        other => panic!("unexpected kind {other}"),
    }
}

fn build(tls: bool) -> (tempfile::TempDir, kubernetes::Manifests, Vec<Parsed>) {
    let (dir, loaded) = common::load(STACK, common::CHECKS);
    let manifests = kubernetes::manifests(&loaded, &secrets(tls));
    let out = dir.path().join("k8s");
    manifests.write(&out).expect("write");
    let parsed = parse_back(&out);
    (dir, manifests, parsed)
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
    let (_dir, manifests, parsed) = build(true);
    let built: Vec<(String, String, Object)> = manifests
        .clusters
        .iter()
        .flat_map(|c| {
            c.files.iter().flat_map(move |f| f.objects.iter().map(move |o| (c.dir.clone(), f.name.clone(), o.clone())))
        })
        .collect();
    assert_eq!(built.len(), parsed.len());
    for ((dir, file, object), (pdir, pfile, kind, value)) in built.iter().zip(&parsed) {
        assert_eq!((dir, file), (pdir, pfile));
        assert_eq!(typed(kind, value), *object, "{dir}/{file}: {kind} {} differs after the round trip", object.name());
    }
    let dirs: Vec<&str> = manifests.clusters.iter().map(|c| c.dir.as_str()).collect();
    assert_eq!(dirs, ["central", "region-eu-west", "region-us-east"]);
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
    // ICMP checks: the prober may open raw sockets, nothing else.
    let prober = pod_spec(find(&parsed, "Deployment", "probenet-prober-eu-west"));
    let caps =
        prober.containers[0].security_context.as_ref().and_then(|s| s.capabilities.clone()).expect("capabilities");
    assert_eq!((caps.add, caps.drop), (Some(vec!["NET_RAW".to_owned()]), Some(vec!["ALL".to_owned()])));
    assert_eq!(find(&parsed, "Deployment", "probenet-prober-eu-west")["spec"]["replicas"], 2);
    let args = prober.containers[0].args.clone().expect("args");
    assert_eq!(args[..5], ["prober", "--scheduler", "https://probenet.example.com:7443", "--region", "eu-west"]);
    // A region with its own scheduler_host reaches the scheduler by it.
    let us = pod_spec(find(&parsed, "Deployment", "probenet-prober-us-east")).containers[0].args.clone();
    assert_eq!(us.expect("args")[..3], ["prober", "--scheduler", "https://10.9.0.1:7443"]);
    let storage_nodes =
        find(&parsed, "Deployment", "vminsert")["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(storage_nodes.contains("-storageNode=vmstorage-0.vmstorage.monitoring.svc:8400,vmstorage-1.vmstorage.monitoring.svc:8400,vmstorage-2.vmstorage.monitoring.svc:8400"), "{storage_nodes}");
    assert_eq!(find(&parsed, "Service", "probenet-scheduler")["spec"]["type"], "LoadBalancer");
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
    assert!(!hashes.contains(TOKEN_EU) && !hashes.contains(TOKEN_US));
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
            for secret in [TOKEN_EU, TOKEN_US, PASSWORD, "PRIVATE KEY", "secret-path"] {
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
    let (_dir, manifests, parsed) = build(false);
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
    assert!(
        !parsed.iter().any(|(_, _, k, v)| k == "Secret" && v["metadata"]["name"] == "probenet-tls"),
        "no TLS given: none written"
    );

    let readme = manifests.readme();
    let central = readme.find("kubectl apply -f central/").expect("central first");
    let eu = readme.find("kubectl apply -f region-eu-west/").expect("eu-west");
    let us = readme.find("kubectl --context us apply -f region-us-east/").expect("us-east in its context");
    assert!(central < eu && eu < us, "{readme}");
    assert!(readme.contains("create secret generic probenet-tls"), "{readme}");
    assert!(readme.contains("reach it by (`probenet.example.com`, `10.9.0.1`)"), "{readme}");
    for secret in [TOKEN_EU, PASSWORD] {
        assert!(!readme.contains(secret));
    }
    let plan = manifests.plan(Path::new("k8s"), probenet_install::cost::Cost::default()).to_string();
    assert!(plan.contains("+ Deployment probes-us/probenet-prober-us-east in region-us-east/10-prober.yaml"), "{plan}");
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
    let parsed = parse_back(&out);
    (dir, manifests, parsed)
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
    let eu = pod_spec(find(&parsed, "Deployment", "probenet-prober-eu-west")).containers[0].args.clone();
    assert_eq!(eu.expect("args")[..3], ["prober", "--scheduler", "https://probenet.example.com:9443"]);
    let us = pod_spec(find(&parsed, "Deployment", "probenet-prober-us-east")).containers[0].args.clone();
    assert_eq!(us.expect("args")[..3], ["prober", "--scheduler", "https://10.9.0.1:9443"]);
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
        [("central", Some("central")), ("region-eu-west", Some("central")), ("region-us-east", Some("us"))]
    );
    let readme = manifests.readme();
    for line in [
        "kubectl --context central apply -f central/\n",
        "kubectl --context central apply -f region-eu-west/\n",
        "kubectl --context us apply -f region-us-east/\n",
    ] {
        assert!(readme.contains(line), "{line}: {readme}");
    }
    assert!(!readme.contains("kubectl apply"), "{readme}");
}
