//! The maintenance windows added through the API, for replicated schedulers: a table every replica re-reads every
//! couple of seconds (as the tokens), so a window added on one replica is in force on all of them. Adding one is
//! a user's write, not a leader's duty: any replica takes it, and the name's primary key refuses a second.

use tokio_postgres::Client;

use crate::maintenance::ApiWindow;

/// Every window, oldest first (the order of the config source every replica renders alike).
pub async fn list(client: &Client) -> Result<Vec<ApiWindow>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT name, body, token, created_at_ms FROM scheduler_maintenance ORDER BY created_at_ms, name", &[])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0)?;
        let body: String = row.try_get(1)?;
        // Tolerant: a row this build cannot read is left out (and stays in the table).
        let Ok(serde_json::Value::Object(window)) = serde_json::from_str(&body) else {
            tracing::warn!(window = %name, "a maintenance window of the database is not a JSON object; left out");
            continue;
        };
        out.push(ApiWindow { name, window, token: row.try_get(2)?, created_at_ms: row.try_get(3)? });
    }
    Ok(out)
}

/// Adds a window unless its name is taken or `most` windows exist; true when it was added.
pub async fn add(client: &Client, window: &ApiWindow, most: usize) -> Result<bool, tokio_postgres::Error> {
    let body = serde_json::Value::Object(window.window.clone()).to_string();
    let most = i64::try_from(most).unwrap_or(i64::MAX);
    let added = client
        .execute(
            "INSERT INTO scheduler_maintenance (name, body, token, created_at_ms)
             SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM scheduler_maintenance) < $5
             ON CONFLICT (name) DO NOTHING",
            &[&window.name, &body, &window.token, &window.created_at_ms, &most],
        )
        .await?;
    Ok(added == 1)
}

/// Replaces the body of a window (ending it now); true when it exists.
pub async fn update(client: &Client, window: &ApiWindow) -> Result<bool, tokio_postgres::Error> {
    let body = serde_json::Value::Object(window.window.clone()).to_string();
    let changed =
        client.execute("UPDATE scheduler_maintenance SET body = $2 WHERE name = $1", &[&window.name, &body]).await?;
    Ok(changed == 1)
}

/// Removes a window; true when it existed.
pub async fn remove(client: &Client, name: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client.execute("DELETE FROM scheduler_maintenance WHERE name = $1", &[&name]).await? == 1)
}
