//! Migrations and the replica table on a real PostgreSQL.

use std::time::Duration;

use probenet_scheduler::ha::{self, SchemaError, members, schema};

use crate::util::{database, pool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_migrate_at_once() {
    let Some(pg) = database("three_replicas_migrate_at_once").await else { return };
    let url = pg.create_database("fresh");
    let mut runs = Vec::new();
    for _ in 0..3 {
        let pool = pool(&url);
        runs.push(tokio::spawn(async move {
            let mut client = pool.get().await.unwrap_or_else(|error| panic!("connect: {error}"));
            ha::migrate(&mut client).await
        }));
    }
    for run in runs {
        let version = run.await.unwrap_or_else(|error| panic!("join: {error}"));
        version.unwrap_or_else(|error| panic!("migrate: {error}"));
    }
    let client = pool(&url).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let rows = client
        .query("SELECT component, version FROM schema_migrations ORDER BY component, version", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let recorded: Vec<(String, i64)> = rows.iter().map(|row| (row.get(0), row.get(1))).collect();
    let expected: Vec<(String, i64)> = schema::ALL
        .iter()
        .flat_map(|m| m.steps.iter().map(|(version, _)| (m.component.to_owned(), *version)))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(recorded, expected, "each step recorded once");
    for table in ["scheduler_lease", "scheduler_members"] {
        client.query(&format!("SELECT * FROM {table}"), &[]).await.unwrap_or_else(|e| panic!("{table}: {e}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let Some(pg) = database("a_newer_schema_is_refused").await else { return };
    let mut client = pool(&pg.url()).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    client
        .execute("INSERT INTO schema_migrations (component, version) VALUES ('scheduler', 99)", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let error = ha::migrate(&mut client).await.err();
    let Some(error @ SchemaError::NewerSchema { component: "scheduler", found: 99, .. }) = error else {
        panic!("expected NewerSchema, got {error:?}");
    };
    assert_eq!(
        error.to_string(),
        format!(
            "the database schema of the scheduler is version 99, newer than this build knows ({}): refusing to \
             downgrade; run a newer probenet",
            schema::MIGRATIONS.latest()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_announce_themselves() {
    let Some(pg) = database("replicas_announce_themselves").await else { return };
    let client = pool(&pg.url()).get().await.unwrap_or_else(|error| panic!("connect: {error}"));
    let announce = |name: &'static str, url: &'static str| members::announce(&client, name, url, "0.2.0");
    announce("b", "https://b:8443").await.unwrap_or_else(|error| panic!("{error}"));
    announce("a", "https://a:8443").await.unwrap_or_else(|error| panic!("{error}"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    announce("a", "https://a.example:8443").await.unwrap_or_else(|error| panic!("{error}"));
    let all = members::seen_within(&client, Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<(&str, &str)> = all.iter().map(|m| (m.name.as_str(), m.url.as_str())).collect();
    assert_eq!(names, [("a", "https://a.example:8443"), ("b", "https://b:8443")]);
    assert!(all[1].age >= Duration::from_millis(250), "{:?}", all[1].age);
    let recent = members::seen_within(&client, Duration::from_millis(200)).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(recent.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(), ["a"]);
}
