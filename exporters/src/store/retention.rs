//! Retention: raw results and their artifact files after `raw_retention`, minute rollups after
//! `minute_retention`, hour and day rollups, ledger hours and days and closed incidents after `rollup_retention`,
//! and artifact files no stored result refers to. Work is done in short transactions so ingest is never held up
//! for long.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::rollup::Level;
use super::{Pruned, SqliteStore, StoreError, artifacts, ledger};

/// Pairs pruned per transaction.
const PAIRS_PER_TRANSACTION: usize = 100;

fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

impl SqliteStore {
    /// Removes what is older than the retention, measured from `now_ms`; raw results planned at or after
    /// `raw_floor_ms` stay whatever their age.
    pub(crate) fn prune(&self, now_ms: i64, raw_floor_ms: Option<i64>) -> Result<Pruned, StoreError> {
        let options = &self.inner.options;
        let raw_cut = now_ms - millis(options.raw_retention);
        let raw_cut = raw_floor_ms.map_or(raw_cut, |floor| raw_cut.min(floor));
        let minute_cut = now_ms - millis(options.minute_retention);
        let rollup_cut = now_ms - millis(options.rollup_retention);
        let mut pruned = Pruned::default();
        let pairs: Vec<(i64, i64)> = self.writer()?.pairs.keys().copied().collect();
        let failed = || StoreError::sqlite("pruning old rows");
        for chunk in pairs.chunks(PAIRS_PER_TRANSACTION) {
            let mut writer = self.writer()?;
            let writer = &mut *writer;
            // Rows may go: the next ingest reads them again.
            writer.rollups.clear();
            let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed())?;
            for &(check, region) in chunk {
                pruned.results += tx
                    .prepare_cached("DELETE FROM results WHERE check_id = ?1 AND region_id = ?2 AND planned_at_ms < ?3")
                    .and_then(|mut statement| statement.execute(params![check, region, raw_cut]))
                    .map_err(failed())?;
                for level in Level::ALL {
                    let cut = if level == Level::Minute { minute_cut } else { rollup_cut };
                    let sql = format!(
                        "DELETE FROM {} WHERE check_id = ?1 AND region_id = ?2 AND start_ms <= ?3",
                        level.table()
                    );
                    pruned.rollups += tx
                        .prepare_cached(&sql)
                        .and_then(|mut statement| statement.execute(params![check, region, cut - level.unit_ms()]))
                        .map_err(failed())?;
                }
                pruned.incidents += tx
                    .prepare_cached(
                        "DELETE FROM incidents WHERE check_id = ?1 AND region_id = ?2 AND end_ms IS NOT NULL \
                         AND end_ms < ?3",
                    )
                    .and_then(|mut statement| statement.execute(params![check, region, rollup_cut]))
                    .map_err(failed())?;
            }
            tx.commit().map_err(failed())?;
        }

        let mut writer = self.writer()?;
        let max_id = writer.next_id - 1;
        let tx = writer.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(failed())?;
        // Ledger hours and days go with the hour and day rollups (the longest kept).
        for (table, unit) in [("ledger_hour", ledger::HOUR_MS), ("ledger_day", ledger::DAY_MS)] {
            pruned.ledger += tx
                .execute(&format!("DELETE FROM {table} WHERE start_ms <= ?1"), [rollup_cut - unit])
                .map_err(failed())?;
        }
        let old: Vec<String> = tx
            .prepare("SELECT path FROM artifacts WHERE planned_at_ms < ?1")
            .and_then(|mut statement| statement.query_map([raw_cut], |row| row.get(0))?.collect())
            .map_err(failed())?;
        for relative in &old {
            if artifacts::is_plain(relative) {
                match std::fs::remove_file(self.inner.artifacts.join(relative)) {
                    Ok(()) => pruned.artifacts += 1,
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => return Err(StoreError::io(format!("removing artifact {relative}"))(error)),
                }
            }
        }
        tx.execute("DELETE FROM artifacts WHERE planned_at_ms < ?1", [raw_cut]).map_err(failed())?;
        let mut since =
            [(raw_cut, "raw_pruned_before_ms"), (minute_cut - Level::Minute.unit_ms() + 1, "minute_pruned_before_ms")];
        for (cut, key) in &mut since {
            let before: Option<i64> = tx
                .query_row("SELECT value FROM meta WHERE key = ?1", [*key], |row| row.get(0))
                .optional()
                .map_err(failed())?;
            *cut = before.map_or(*cut, |before| before.max(*cut));
            tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![*key, *cut])
                .map_err(failed())?;
        }
        // Ids are never reused, even when every row is pruned (readers in stored order keep ids).
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('results_max_id', ?1)", [max_id])
            .map_err(failed())?;
        let known: HashSet<String> = tx
            .prepare("SELECT path FROM artifacts")
            .and_then(|mut statement| statement.query_map([], |row| row.get(0))?.collect())
            .map_err(failed())?;
        tx.commit().map_err(failed())?;
        self.inner.raw_pruned_before_ms.store(since[0].0, Ordering::Relaxed);
        self.inner.minute_pruned_before_ms.store(since[1].0, Ordering::Relaxed);
        // Still under the writer lock: no ingest is between writing a file and committing its row.
        pruned.orphans = self.remove_orphans(&known)?;
        drop(writer);
        Ok(pruned)
    }

    /// Removes files under the artifact directory that are not in `known`, and empty day directories.
    fn remove_orphans(&self, known: &HashSet<String>) -> Result<usize, StoreError> {
        let root = &self.inner.artifacts;
        let listing = |dir: &std::path::Path| {
            std::fs::read_dir(dir).map_err(StoreError::io(format!("listing {}", dir.display())))
        };
        let mut removed = 0;
        for day in listing(root)? {
            let day = day.map_err(StoreError::io("listing the artifact directory"))?;
            let day_path = day.path();
            if !day_path.is_dir() {
                continue;
            }
            let mut left = 0;
            for file in listing(&day_path)? {
                let file = file.map_err(StoreError::io("listing the artifact directory"))?;
                let relative = format!("{}/{}", day.file_name().to_string_lossy(), file.file_name().to_string_lossy());
                if known.contains(&relative) || !file.path().is_file() {
                    left += 1;
                    continue;
                }
                std::fs::remove_file(file.path()).map_err(StoreError::io(format!("removing orphan {relative}")))?;
                removed += 1;
            }
            if left == 0 {
                // Another ingest may have created it since: a failure to remove a non-empty directory is fine.
                let _ = std::fs::remove_dir(&day_path);
            }
        }
        Ok(removed)
    }
}
