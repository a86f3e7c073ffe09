//! Replicated schedulers in a local install: the components, ports and command lines of `scheduler.replicas`
//! with a local PostgreSQL (`store: postgresql`) or a PostgreSQL URL, the order they start in, what the stack
//! refuses; and a single scheduler's plan as it always was.

mod common;

use probenet_install::layout::Layout;
use probenet_install::local::{self, Component, Health, Role};
use probenet_install::plan::{Action, ServiceManager};

fn replicated(scheduler: &str) -> String {
    common::STACK.replace("scheduler: {host: probenet.example.com}", scheduler)
}

fn arg_after<'a>(component: &'a Component, flag: &str) -> Option<&'a str> {
    component.exec.windows(2).find(|pair| pair[0] == flag).map(|pair| pair[1].as_str())
}

fn component<'a>(components: &'a [Component], name: &str) -> &'a Component {
    components.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("no component {name}"))
}

fn position(actions: &[Action], what: impl Fn(&Action) -> bool) -> usize {
    actions.iter().position(what).expect("the plan has this action")
}

#[test]
fn three_replicas_on_a_local_postgresql() {
    let stack = replicated(
        "scheduler: {host: probenet.example.com, listen: '0.0.0.0:7443', replicas: 3, store: postgresql, \
         store_listen: '127.0.0.1:7500'}",
    );
    let (dir, loaded) = common::load(&stack, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Systemd);
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "probenet-postgresql",
            "probenet-victoria-metrics",
            "probenet-alertmanager",
            "probenet-vmalert",
            "probenet-scheduler-1",
            "probenet-scheduler-2",
            "probenet-scheduler-3",
            "probenet-prober-eu-west-1",
            "probenet-prober-eu-west-2",
            "probenet-prober-us-east-1",
        ]
    );

    // The database: Debian's server, on its loopback port, in the data dir, healthy when it accepts.
    let database = component(&plan.components, "probenet-postgresql");
    assert_eq!(database.role, Role::Database);
    assert_eq!(database.health, Health::Tcp { address: "127.0.0.1:7500".parse().unwrap() });
    assert_eq!(database.exec[..2], ["/bin/sh", "-c"]);
    assert!(database.exec[2].contains("/usr/lib/postgresql/") && database.exec[2].contains("PG_VERSION"));
    assert_eq!(database.exec[3], layout.postgres_data().display().to_string());
    assert_eq!(arg_after(database, "-p"), Some("7500"));
    assert_eq!(arg_after(database, "-k"), Some(layout.postgres_socket().to_str().unwrap()));
    assert_eq!(database.exec.last().map(String::as_str), Some("listen_addresses=127.0.0.1"));
    assert_eq!(database.writable, [layout.postgres_dir()]);
    assert_eq!(database.user, "probenet");
    assert!(layout.postgres_dir().starts_with(layout.data()));

    // Each replica: its port, its data dir, the shared certificate, the store and its own name.
    let mut data_dirs = Vec::new();
    for (index, port) in [(1, 7443), (2, 7444), (3, 7445)] {
        let name = format!("probenet-scheduler-{index}");
        let replica = component(&plan.components, &name);
        assert_eq!(replica.role, Role::Scheduler);
        assert_eq!(arg_after(replica, "--listen"), Some(format!("0.0.0.0:{port}").as_str()));
        assert_eq!(arg_after(replica, "--tls-cert"), Some(layout.server_cert().to_str().unwrap()));
        assert_eq!(arg_after(replica, "--tls-key"), Some(layout.server_key().to_str().unwrap()));
        assert_eq!(arg_after(replica, "--store"), Some("postgres://probenet@127.0.0.1:7500/probenet"));
        assert_eq!(arg_after(replica, "--store-password-file"), Some(layout.postgres_password().to_str().unwrap()));
        assert_eq!(arg_after(replica, "--store-ca"), None);
        assert_eq!(arg_after(replica, "--replica-name"), Some(name.as_str()));
        let advertised = format!("https://probenet.example.com:{port}");
        assert_eq!(arg_after(replica, "--advertise-url"), Some(advertised.as_str()));
        assert!(
            matches!(&replica.health, Health::Http { url, .. } if *url == format!("https://127.0.0.1:{port}/healthz"))
        );
        assert_eq!(replica.after[0], "probenet-postgresql", "{name} starts after the database");
        let data = arg_after(replica, "--data").unwrap().to_owned();
        assert_eq!(replica.writable, [std::path::PathBuf::from(&data)]);
        data_dirs.push(data);
        // No password on a command line.
        let password_file = layout.postgres_password();
        assert!(replica.exec.iter().all(|arg| !arg.contains("PASSWORD") && !arg.contains(":pw@")), "{password_file:?}");
    }
    assert_eq!(data_dirs[0], layout.data().display().to_string(), "the first replica keeps the tokens");
    data_dirs.dedup();
    assert_eq!(data_dirs.len(), 3, "each replica has its own data dir");

    // Probers reach every replica, through their region's scheduler host.
    let prober = component(&plan.components, "probenet-prober-eu-west-1");
    assert_eq!(
        arg_after(prober, "--scheduler"),
        Some("https://probenet.example.com:7443,https://probenet.example.com:7444,https://probenet.example.com:7445")
    );
    assert_eq!(prober.after, ["probenet-scheduler-1", "probenet-scheduler-2", "probenet-scheduler-3"]);
    let prober = component(&plan.components, "probenet-prober-us-east-1");
    assert_eq!(
        arg_after(prober, "--scheduler"),
        Some("https://10.9.0.1:7443,https://10.9.0.1:7444,https://10.9.0.1:7445")
    );

    // The package, the password, the data directory made before anything starts; the database first.
    let actions: Vec<Action> = plan.actions().cloned().collect();
    let packages = position(
        &actions,
        |a| matches!(a, Action::InstallPackages { packages } if packages.iter().any(|p| p == "postgresql")),
    );
    assert!(
        !actions.iter().any(|a| matches!(a, Action::DisablePackagedService { unit } if unit == "postgresql")),
        "the packaged PostgreSQL service is left alone"
    );
    let password = position(
        &actions,
        |a| matches!(a, Action::CreatePassword { file, env: None, .. } if *file == layout.postgres_password()),
    );
    let dirs = position(
        &actions,
        |a| matches!(a, Action::CreateDir { path, mode: 0o700 } if *path == layout.postgres_socket()),
    );
    let init = position(&actions, |a| {
        matches!(a, Action::InitDatabase { data, password_file, .. }
            if *data == layout.postgres_data() && *password_file == layout.postgres_password())
    });
    let start = |name: &str| position(&actions, |a| matches!(a, Action::Start { component } if component == name));
    assert!(packages < dirs && dirs < password && password < init, "{actions:#?}");
    assert!(init < start("probenet-postgresql"));
    assert!(start("probenet-postgresql") < start("probenet-scheduler-1"));
    assert!(start("probenet-scheduler-1") < start("probenet-scheduler-2"));
    assert!(start("probenet-scheduler-3") < start("probenet-prober-eu-west-1"));
    for index in 2..=3 {
        let data = layout.replica_data(index);
        position(&actions, |a| matches!(a, Action::CreateDir { path, mode: 0o700 } if *path == data));
    }
    // The unit runs PostgreSQL as the components' user, writing only its directory.
    let unit = actions
        .iter()
        .find_map(|a| match a {
            Action::WriteFile { path, contents, .. } if *path == layout.unit_file("probenet-postgresql") => {
                Some(contents.clone())
            }
            _ => None,
        })
        .expect("a unit for PostgreSQL");
    assert!(unit.contains("User=probenet\n"), "{unit}");
    assert!(unit.contains(&format!("ReadWritePaths={}\n", layout.postgres_dir().display())), "{unit}");
}

#[test]
fn one_replica_on_a_postgresql_url_copies_its_secrets() {
    let stack = replicated(
        "scheduler: {host: probenet.example.com, store: 'postgres://pn@db.internal:5432/pn?sslmode=require', \
         store_password: '${file:pg-password}', store_ca: '${file:pg-ca.pem}'}",
    );
    let (dir, loaded) = common::load(&stack, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Supervisor);
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert!(!names.contains(&"probenet-postgresql"), "{names:?}");
    assert!(names.contains(&"probenet-scheduler-1") && !names.contains(&"probenet-scheduler-2"), "{names:?}");
    let replica = component(&plan.components, "probenet-scheduler-1");
    assert_eq!(arg_after(replica, "--store"), Some("postgres://pn@db.internal:5432/pn?sslmode=require"));
    assert_eq!(arg_after(replica, "--store-password-file"), Some(layout.scheduler_store_password().to_str().unwrap()));
    assert_eq!(arg_after(replica, "--store-ca"), Some(layout.scheduler_store_ca().to_str().unwrap()));
    let actions: Vec<Action> = plan.actions().cloned().collect();
    for (from, to) in [("pg-password", layout.scheduler_store_password()), ("pg-ca.pem", layout.scheduler_store_ca())] {
        position(
            &actions,
            |a| matches!(a, Action::CopySecret { from: source, to: copy, .. } if *source == dir.path().join(from) && *copy == to),
        );
    }
    assert!(!actions.iter().any(|a| matches!(a, Action::InitDatabase { .. })));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::InstallPackages { packages } if packages.iter().any(|p| p == "postgresql")))
    );
}

#[test]
fn a_single_scheduler_plan_is_unchanged() {
    let (dir, loaded) = common::load(common::STACK, common::CHECKS);
    let layout = Layout::new(&loaded.stack).with_root(dir.path().join("root"));
    let plan = local::plan(&loaded, &layout, ServiceManager::Supervisor);
    let names: Vec<&str> = plan.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
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
    let s = |path: std::path::PathBuf| path.display().to_string();
    let scheduler = component(&plan.components, "probenet-scheduler");
    assert_eq!(
        scheduler.exec,
        [
            s(layout.binary()),
            "scheduler".to_owned(),
            "-c".to_owned(),
            s(layout.checks_dir()),
            "-c".to_owned(),
            s(layout.stack_config_dir()),
            "--listen".to_owned(),
            "0.0.0.0:7443".to_owned(),
            "--data".to_owned(),
            s(layout.data()),
            "--tls-cert".to_owned(),
            s(layout.server_cert()),
            "--tls-key".to_owned(),
            s(layout.server_key()),
            "--dashboard-url".to_owned(),
            "https://probenet.example.com:7443/".to_owned(),
        ]
    );
    assert_eq!(scheduler.after, ["probenet-victoria-metrics", "probenet-alertmanager", "probenet-vmalert"]);
    assert_eq!(scheduler.writable, [layout.data()]);
    let prober = component(&plan.components, "probenet-prober-eu-west-1");
    assert_eq!(arg_after(prober, "--scheduler"), Some("https://probenet.example.com:7443"));
    assert_eq!(prober.after, ["probenet-scheduler"]);
    let actions: Vec<Action> = plan.actions().cloned().collect();
    assert!(actions.iter().any(
        |a| matches!(a, Action::InstallPackages { packages } if packages == &["victoria-metrics", "prometheus-alertmanager"])
    ));
    assert!(!actions.iter().any(|a| matches!(a, Action::InitDatabase { .. } | Action::CopySecret { .. })));
    let passwords: Vec<&Action> = actions.iter().filter(|a| matches!(a, Action::CreatePassword { .. })).collect();
    assert_eq!(passwords.len(), 2, "the store's password and the dashboard's token");
    assert!(matches!(passwords[0], Action::CreatePassword { file, env: Some((env, variable)), .. }
            if *file == layout.store_password() && *env == layout.store_env() && variable == "httpAuth_password"));
    assert!(
        matches!(passwords[1], Action::CreatePassword { file, env: None, .. } if *file == layout.dashboard_token())
    );
}

fn refused(stack: &str) -> Vec<String> {
    let (_dir, path) = common::write(stack, common::CHECKS);
    match probenet_install::stack::load(&path) {
        Ok(_) => Vec::new(),
        Err(errors) => errors.to_string().lines().map(str::to_owned).collect(),
    }
}

#[test]
fn the_stack_refuses_what_a_local_replicated_install_cannot_run() {
    // A replica's port taken by VictoriaMetrics (127.0.0.1:8428 by default).
    let errors = refused(&replicated(
        "scheduler: {host: probenet.example.com, listen: '0.0.0.0:8427', replicas: 2, store: postgresql}",
    ));
    assert!(
        errors.iter().any(|e| e.contains("VictoriaMetrics would listen on port 8428 like scheduler replica 2")
            || e.contains("scheduler replica 2 would listen on port 8428")),
        "{errors:?}"
    );
    // The database's port taken by a replica.
    let errors = refused(&replicated(
        "scheduler: {host: probenet.example.com, listen: '127.0.0.1:7431', replicas: 2, store: postgresql, \
         store_listen: '127.0.0.1:7432'}",
    ));
    assert!(errors.iter().any(|e| e.contains("the local PostgreSQL would listen on port 7432")), "{errors:?}");
    // Replicas past the last port.
    let errors = refused(&replicated(
        "scheduler: {host: probenet.example.com, listen: '0.0.0.0:65534', replicas: 3, store: postgresql}",
    ));
    assert!(errors.iter().any(|e| e.contains("past 65535")), "{errors:?}");
    // A local server takes no password, listens on loopback only, and store_listen is for it alone.
    let errors = refused(&replicated(
        "scheduler: {host: probenet.example.com, store: postgresql, store_password: '${file:pw}'}",
    ));
    assert!(
        errors.iter().any(|e| e.contains("scheduler.store_password") && e.contains("leave this out")),
        "{errors:?}"
    );
    let errors = refused(&replicated(
        "scheduler: {host: probenet.example.com, store: postgresql, store_listen: '0.0.0.0:7432'}",
    ));
    assert!(errors.iter().any(|e| e.contains("is not a loopback address")), "{errors:?}");
    let errors = refused(&replicated("scheduler: {host: probenet.example.com, store_listen: '127.0.0.1:7432'}"));
    assert!(errors.iter().any(|e| e.contains("only `store: postgresql`")), "{errors:?}");
    // Accepted: the default port of the local server.
    let stack = replicated("scheduler: {host: probenet.example.com, replicas: 2, store: postgresql}");
    assert_eq!(refused(&stack), Vec::<String>::new());
    let (dir, loaded) = common::load(&stack, common::CHECKS);
    assert_eq!(
        loaded.stack.scheduler.store,
        probenet_install::stack::SchedulerStore::Local { listen: "127.0.0.1:7432".parse().unwrap() }
    );
    // Kubernetes has no local server to run.
    let error = probenet_install::kubernetes::render(&loaded, &dir.path().join("out"), false).map(|_| ()).unwrap_err();
    assert!(error.to_string().contains("install local"), "{error}");
}
