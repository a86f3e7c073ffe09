//! The local install plan: what it creates (certificates and keys 0600, tokens, units, packages), in a safe
//! order, with config files that the real tools accept, and what it changes on a host that has some of it.

mod common;

use std::path::PathBuf;
use std::process::Command;

use probenet_install::layout::Layout;
use probenet_install::local::{self, Component, Health, Role};
use probenet_install::plan::{Action, Change, PRIVATE, ServiceManager};

fn position(actions: &[Action], what: impl Fn(&Action) -> bool) -> usize {
    actions.iter().position(what).expect("the plan has this action")
}

#[test]
fn the_local_plan_creates_everything_in_a_safe_order() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let root = dir.path().join("root");
    let layout = Layout::new(&loaded.stack).with_root(&root);
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let actions: Vec<Action> = plan.actions().cloned().collect();

    let packages = position(
        &actions,
        |a| matches!(a, Action::InstallPackages { packages } if packages == &["victoria-metrics", "prometheus-alertmanager"]),
    );
    let user = position(&actions, |a| matches!(a, Action::CreateUser { .. }));
    let secrets_dir =
        position(&actions, |a| matches!(a, Action::CreateDir { path, mode: 0o700 } if *path == layout.secrets_dir()));
    let ca = position(
        &actions,
        |a| matches!(a, Action::CreateCa { cert, key } if *cert == layout.ca_cert() && *key == layout.ca_key()),
    );
    let server = position(&actions, |a| {
        matches!(a, Action::CreateCert { sans, cert, .. } if *cert == layout.server_cert()
            && sans == &["probenet.example.com", "10.9.0.1", "localhost", "127.0.0.1", "::1"])
    });
    let password =
        position(&actions, |a| matches!(a, Action::CreatePassword { file, .. } if *file == layout.store_password()));
    let tokens: Vec<usize> = ["eu-west", "us-east"]
        .iter()
        .map(|region| {
            position(&actions, |a| matches!(a, Action::CreateToken { region: r, file, .. } if r == region && *file == layout.token_file(region)))
        })
        .collect();
    let units: Vec<usize> = actions
        .iter()
        .enumerate()
        .filter(
            |(_, a)| matches!(a, Action::WriteFile { path, .. } if path.extension().is_some_and(|e| e == "service")),
        )
        .map(|(i, _)| i)
        .collect();
    assert_eq!(units.len(), 3 + 1 + 3, "store, alertmanager, vmalert, scheduler, 3 probers");
    let starts: Vec<&str> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Start { component } => Some(component.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        starts,
        [
            "probenet-victoria-metrics",
            "probenet-alertmanager",
            "probenet-vmalert",
            "probenet-scheduler",
            "probenet-prober-eu-west-1",
            "probenet-prober-eu-west-2",
            "probenet-prober-us-east-1",
        ]
    );
    let first_start = position(&actions, |a| matches!(a, Action::Start { .. }));
    assert!(packages < user && user < secrets_dir && secrets_dir < ca && ca < server && server < password);
    assert!(tokens.iter().all(|t| password < *t && *t < units[0]), "tokens before units");
    assert!(units.iter().all(|u| *u < first_start), "every unit is written before anything starts");
    // Every start is followed by its wait: nothing starts before what it needs is healthy.
    for (i, action) in actions.iter().enumerate() {
        if let Action::Start { component } = action {
            assert!(
                matches!(&actions[i + 1], Action::WaitHealthy { component: c, .. } if c == component),
                "{component}"
            );
        }
    }
    assert!(
        matches!(actions.last(), Some(Action::ShowResults { dashboard_url }) if dashboard_url == "https://probenet.example.com:7443/")
    );

    // Files that may hold secrets are 0600; the plan as printed shows modes, never contents.
    let mode_of = |path: &PathBuf| {
        actions.iter().find_map(|a| match a {
            Action::WriteFile { path: p, mode, .. } if p == path => Some(*mode),
            _ => None,
        })
    };
    assert_eq!(mode_of(&layout.alertmanager_config()), Some(PRIVATE));
    let shown = plan.to_string();
    for line in [
        format!("+ create CA {} and key {} (0600)", layout.ca_cert().display(), layout.ca_key().display()),
        format!("+ create prober token for region eu-west in {} (0600)", layout.token_file("eu-west").display()),
        format!("+ create directory {} (0700)", layout.secrets_dir().display()),
        "> install packages victoria-metrics prometheus-alertmanager (asks first unless --yes)".to_owned(),
        format!("+ write {} (0600,", layout.alertmanager_config().display()),
        "active series:".to_owned(),
    ] {
        assert!(shown.contains(&line), "{line:?} not in\n{shown}");
    }
    assert!(!shown.contains("secret-path"), "a receiver's URL is shown:\n{shown}");
}

fn unit_of(plan: &probenet_install::Plan, layout: &Layout, component: &str) -> String {
    plan.actions()
        .find_map(|a| match a {
            Action::WriteFile { path, contents, .. } if *path == layout.unit_file(component) => Some(contents.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no unit for {component}"))
}

#[test]
fn units_wire_tls_tokens_and_namespaces() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let scheduler = unit_of(&plan, &layout, "probenet-scheduler");
    for part in [
        format!("--tls-cert {}", layout.server_cert().display()),
        format!("--tls-key {}", layout.server_key().display()),
        format!("-c {} -c {}", layout.checks_dir().display(), layout.stack_config_dir().display()),
        "--listen 0.0.0.0:7443".to_owned(),
        "User=probenet".to_owned(),
        "After=network-online.target probenet-victoria-metrics.service probenet-alertmanager.service probenet-vmalert.service".to_owned(),
    ] {
        assert!(scheduler.contains(&part), "{part:?} not in\n{scheduler}");
    }
    let prober = unit_of(&plan, &layout, "probenet-prober-us-east-1");
    for part in [
        "--scheduler https://10.9.0.1:7443 --region us-east".to_owned(),
        format!("--token-file {}", layout.token_file("us-east").display()),
        format!("--ca {}", layout.ca_cert().display()),
        "NetworkNamespacePath=/run/netns/pn-us".to_owned(),
        "AmbientCapabilities=CAP_NET_RAW".to_owned(),
        "Restart=on-failure".to_owned(),
    ] {
        assert!(prober.contains(&part), "{part:?} not in\n{prober}");
    }
    let store = unit_of(&plan, &layout, "probenet-victoria-metrics");
    assert!(store.contains(&format!("EnvironmentFile={}", layout.store_env().display())), "{store}");
    assert!(store.contains("-tls ") && store.contains("-httpAuth.username=probenet"), "{store}");
    assert!(!store.contains("httpAuth.password"), "the password is only in the environment file:\n{store}");
    let vmalert = unit_of(&plan, &layout, "probenet-vmalert");
    assert!(vmalert.contains(&format!("-notifier.tlsCertFile={}", layout.client_cert().display())), "{vmalert}");

    // A prober in a namespace is waited for through the scheduler; one on the host by its own /healthz.
    let health = |name: &str| plan.components.iter().find(|c| c.name == name).map(|c| c.health.clone());
    assert_eq!(health("probenet-prober-us-east-1"), Some(Health::Registered { name: "us-east-1".to_owned() }));
    assert!(
        matches!(health("probenet-prober-eu-west-2"), Some(Health::Http { url, .. }) if url == "http://127.0.0.1:9471/healthz")
    );
}

#[test]
fn the_files_it_writes_are_accepted_by_probenet_promtool_and_amtool() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    for action in plan.actions() {
        if let Action::WriteFile { path, contents, .. } = action {
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, contents).expect("write");
        }
    }
    // The scheduler's config: the deployed copies plus the remote write exporter.
    let config = probenet_checks::load_paths(&[layout.checks_dir(), layout.stack_config_dir()])
        .unwrap_or_else(|errors| panic!("{errors}"));
    assert_eq!(config.checks.len(), 5);
    assert_eq!(config.exporters.len(), 1);

    for (tool, args) in [
        (
            "/usr/bin/promtool",
            vec!["check".to_owned(), "rules".to_owned(), layout.vmalert_rules().display().to_string()],
        ),
        ("/usr/bin/amtool", vec!["check-config".to_owned(), layout.alertmanager_config().display().to_string()]),
    ] {
        assert!(
            std::path::Path::new(tool).exists(),
            "{tool} is missing: install prometheus and prometheus-alertmanager"
        );
        let output = Command::new(tool).args(&args).output().expect("run the tool");
        assert!(
            output.status.success(),
            "{tool} rejects the file:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn a_second_look_at_the_host_keeps_what_is_there_and_changes_what_differs() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let mut plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let rules = layout.vmalert_rules();
    let am = layout.alertmanager_config();
    let rules_text = plan
        .actions()
        .find_map(|a| match a {
            Action::WriteFile { path, contents, .. } if *path == rules => Some(contents.clone()),
            _ => None,
        })
        .expect("rules");
    std::fs::create_dir_all(rules.parent().expect("parent")).expect("mkdir");
    std::fs::create_dir_all(am.parent().expect("parent")).expect("mkdir");
    std::fs::write(&rules, rules_text).expect("write");
    std::fs::write(&am, "route: {receiver: old}\n").expect("write");
    std::fs::create_dir_all(layout.tls_dir()).expect("mkdir");
    std::fs::write(layout.ca_cert(), "CA").expect("write");
    std::fs::write(layout.ca_key(), "KEY").expect("write");
    plan.compare_with_host();
    let change = |what: &dyn Fn(&Action) -> bool| plan.steps.iter().find(|s| what(&s.action)).map(|s| s.change);
    assert_eq!(change(&|a| matches!(a, Action::WriteFile { path, .. } if *path == rules)), Some(Change::Keep));
    assert_eq!(change(&|a| matches!(a, Action::WriteFile { path, .. } if *path == am)), Some(Change::Update));
    assert_eq!(change(&|a| matches!(a, Action::CreateCa { .. })), Some(Change::Keep), "a CA is never replaced");
    assert_eq!(change(&|a| matches!(a, Action::CreateCert { .. })), Some(Change::Create));
    let shown = plan.to_string();
    assert!(shown.contains(&format!("~ change {} (0600", am.display())), "{shown}");
    assert!(shown.contains(&format!("= keep CA {}", layout.ca_cert().display())), "{shown}");
}

#[test]
fn without_systemd_the_supervisor_gets_the_components() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Supervisor);
    assert!(!plan.actions().any(|a| matches!(a, Action::DisablePackagedService { .. })));
    assert!(
        !plan
            .actions()
            .any(|a| matches!(a, Action::WriteFile { path, .. } if path.extension().is_some_and(|e| e == "service")))
    );
    let text = plan
        .actions()
        .find_map(|a| match a {
            Action::WriteFile { path, contents, mode, .. } if *path == layout.supervisor_file() => {
                assert_eq!(*mode, PRIVATE);
                Some(contents.clone())
            }
            _ => None,
        })
        .expect("the supervisor's file");
    let components: Vec<Component> = serde_json::from_str(&text).expect("components as JSON");
    assert_eq!(components, plan.components);
    assert!(matches!(&components[4].role, Role::Prober { region, index: 1 } if region == "eu-west"));
}

#[test]
fn without_the_store_only_probenet_is_installed() {
    let stack = common::STACK.replace(
        "alerting:\n  alertmanager:\n    receivers:\n      ops: {webhook_url: 'https://hooks.example/secret-path'}\n",
        "store: {kind: none}\n",
    );
    let (dir, loaded) = common::load(&stack, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    assert!(!plan.actions().any(|a| matches!(a, Action::InstallPackages { .. })));
    let passwords: Vec<&PathBuf> = plan
        .actions()
        .filter_map(|a| match a {
            Action::CreatePassword { file, .. } => Some(file),
            _ => None,
        })
        .collect();
    assert_eq!(passwords, [&layout.dashboard_token()], "no store password, only the dashboard's token");
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names[0], "probenet-scheduler");
    assert!(
        !plan.actions().any(|a| matches!(a, Action::WriteFile { path, .. } if *path == layout.remote_write_file()))
    );
}

#[test]
fn the_install_makes_a_dashboard_token_unless_the_config_has_one() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let token = layout.dashboard_token();
    let made = position(
        &plan.actions().cloned().collect::<Vec<_>>(),
        |a| matches!(a, Action::CreatePassword { file, env: None, .. } if *file == token),
    );
    let config = plan
        .actions()
        .find_map(|a| match a {
            Action::WriteFile { path, contents, .. } if *path == layout.dashboard_config() => Some(contents.clone()),
            _ => None,
        })
        .expect("a config file gives the scheduler the token");
    assert!(made > 0);
    assert!(config.contains(&format!("token: ${{file:{}}}", token.display())), "{config}");
    // The scheduler reads it with the checks: together they are a valid config with a dashboard token.
    let scheduler = plan.components.iter().find(|c| c.role == Role::Scheduler).expect("a scheduler");
    let stack_dir = layout.stack_config_dir().display().to_string();
    assert!(scheduler.exec.windows(2).any(|pair| pair[0] == "-c" && pair[1] == stack_dir), "{:?}", scheduler.exec);
    let sources = [
        probenet_checks::wire::ConfigFile { name: "checks.yaml".to_owned(), text: common::CHECKS.to_owned() },
        probenet_checks::wire::ConfigFile { name: "dashboard.yaml".to_owned(), text: config },
    ];
    let both = probenet_checks::config::load_sources(&sources).unwrap_or_else(|errors| panic!("{errors}"));
    assert!(both.dashboard.token.is_some());

    // A config with its own token: nothing made.
    let checks = format!("dashboard: {{token: \"${{env:DASH}}\"}}\n{}", common::CHECKS);
    let (dir, loaded) = common::load(common::STACK, &checks);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    assert!(
        !plan.actions().any(|a| matches!(a, Action::CreatePassword { file, .. } if *file == layout.dashboard_token()))
    );
    assert!(!plan.actions().any(|a| matches!(a, Action::WriteFile { path, .. } if *path == layout.dashboard_config())));
}
