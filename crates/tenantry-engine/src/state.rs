//! The state database: inventory (what tenantry created), journal (intent
//! before acting, outcome after), sticky port reservations and the routing
//! entries of users who may depart.
//!
//! WAL mode: a killed process loses nothing that was committed, and every
//! intent is committed before the change it announces is attempted.

use crate::{Error, Result};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeMap;
use std::path::Path;
use tenantry_core::{Change, Inventory, Owner, ResourceId, RetainedRoute};

/// The schema, as numbered migrations: migration `n` brings a database at
/// `PRAGMA user_version = n - 1` to `n`. Never edit one that has shipped;
/// add the next.
const MIGRATIONS: &[&str] = &[
    // 1: the schema of the first releases. They wrote it without a version
    // (user_version 0), so every statement tolerates finding it in place.
    "
CREATE TABLE IF NOT EXISTS runs (
    run INTEGER PRIMARY KEY AUTOINCREMENT,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    summary TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL,
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    action TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('intent', 'done', 'failed', 'interrupted')),
    error TEXT,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_pending ON journal (phase) WHERE phase = 'intent';
CREATE INDEX IF NOT EXISTS journal_by_id ON journal (id);
CREATE TABLE IF NOT EXISTS inventory (
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    since TEXT NOT NULL,
    PRIMARY KEY (target, id)
);
CREATE TABLE IF NOT EXISTS ports (
    user TEXT NOT NULL,
    pool TEXT NOT NULL,
    port INTEGER NOT NULL UNIQUE,
    PRIMARY KEY (user, pool)
);
CREATE TABLE IF NOT EXISTS routes (
    user TEXT PRIMARY KEY,
    idp_user TEXT NOT NULL,
    os_user TEXT NOT NULL,
    admin INTEGER NOT NULL
);
",
    // 2: who started each run and from which roster (audit, `history`).
    "
ALTER TABLE runs ADD COLUMN actor TEXT;
ALTER TABLE runs ADD COLUMN roster_digest TEXT;
CREATE INDEX IF NOT EXISTS journal_by_run ON journal (run);
",
    // 3: the phase `unknown` — a change whose peer stopped answering may or
    // may not have been applied. SQLite cannot alter a CHECK, so the journal
    // is copied into a table that allows it.
    "
CREATE TABLE journal_v3 (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run INTEGER NOT NULL,
    target TEXT NOT NULL,
    id TEXT NOT NULL,
    owner TEXT NOT NULL,
    action TEXT NOT NULL,
    phase TEXT NOT NULL CHECK (phase IN ('intent', 'done', 'failed', 'interrupted', 'unknown')),
    error TEXT,
    at TEXT NOT NULL
);
INSERT INTO journal_v3 (seq, run, target, id, owner, action, phase, error, at)
    SELECT seq, run, target, id, owner, action, phase, error, at FROM journal;
DROP TABLE journal;
ALTER TABLE journal_v3 RENAME TO journal;
CREATE INDEX journal_pending ON journal (phase) WHERE phase = 'intent';
CREATE INDEX journal_by_id ON journal (id);
CREATE INDEX journal_by_run ON journal (run);
",
    // 4: closing an intent looks it up by run and id. With an index on `run`
    // alone, each of a run's outcomes scanned all of its intents: recording
    // 11,000 outcomes took seconds of CPU, stolen from the peers on a small
    // host. `(run, id)` serves both that lookup and every query by run.
    "
DROP INDEX IF EXISTS journal_by_run;
CREATE INDEX journal_by_run ON journal (run, id);
",
];

/// How a journalled change ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Done,
    /// The peer refused it, or it was not attempted.
    Failed(String),
    /// The peer stopped answering: it may have been applied.
    Unknown(String),
}

/// Closes one change's intent with its outcome: a lookup in `journal_by_run`.
const CLOSE_INTENT: &str = "UPDATE journal SET phase = ?4, error = ?5, at = ?6 WHERE run = ?1 AND target = ?2 AND id = ?3 AND phase = 'intent'";

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Who starts a run and with what, for the run record.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RunInfo {
    /// The command line (or `serve` and what triggered it).
    pub command: String,
    /// Who ran it: the OS user, or the controller's identity.
    pub actor: Option<String>,
    /// SHA-256 of the roster text the run derived from.
    pub roster_digest: Option<String>,
}

impl From<&str> for RunInfo {
    fn from(command: &str) -> RunInfo {
        RunInfo { command: command.to_string(), ..RunInfo::default() }
    }
}

/// One run, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRecord {
    pub run: i64,
    pub command: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub summary: Option<String>,
    pub actor: Option<String>,
    pub roster_digest: Option<String>,
}

/// One journal line, for `tenantry why`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JournalEntry {
    pub run: i64,
    pub target: String,
    pub action: String,
    pub phase: String,
    pub error: Option<String>,
    pub at: String,
}

/// One journalled change with its resource and owner, for `tenantry history`
/// and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeRecord {
    pub run: i64,
    pub target: String,
    pub id: String,
    pub owner: String,
    pub action: String,
    /// `intent`, `done`, `failed`, `interrupted` or `unknown`.
    pub phase: String,
    pub error: Option<String>,
    pub at: String,
}

#[derive(Debug)]
pub struct State {
    conn: Connection,
    path: String,
}

impl State {
    /// Open (creating if needed) the state database at `path`.
    pub fn open(path: &Path) -> Result<State> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|source| Error::StateDir { path: dir.display().to_string(), source })?;
        }
        let display = path.display().to_string();
        let conn = Connection::open(path).map_err(|source| Error::State { path: display.clone(), source })?;
        State::init(conn, display)
    }

    pub fn in_memory() -> Result<State> {
        State::init(Connection::open_in_memory()?, ":memory:".to_string())
    }

    fn init(conn: Connection, path: String) -> Result<State> {
        let wrap = |source| Error::State { path: path.clone(), source };
        conn.pragma_update(None, "journal_mode", "WAL").map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(wrap)?;
        // Another process's short write transaction is waited for, not an error.
        conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(wrap)?;
        let mut state = State { conn, path };
        state.migrate()?;
        Ok(state)
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    /// Bring the database to [`SCHEMA_VERSION`], one migration per
    /// transaction (a killed upgrade leaves a consistent, older version).
    fn migrate(&mut self) -> Result<()> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(Error::NewerSchema { path: self.path.clone(), found, known: SCHEMA_VERSION });
        }
        for (index, migration) in MIGRATIONS.iter().enumerate().skip(usize::try_from(found).unwrap_or(0)) {
            let version = index + 1;
            let tx = self.conn.transaction()?;
            tx.execute_batch(migration).map_err(|source| Error::Migration {
                path: self.path.clone(),
                version,
                source,
            })?;
            tx.pragma_update(None, "user_version", i64::try_from(version).unwrap_or(i64::MAX))?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Intents left without an outcome by a killed run. Their objects may
    /// exist, so they join the inventory (deleting what is absent is a no-op,
    /// and only then can a half-done create be pruned later).
    pub fn recover(&mut self, now: &str) -> Result<usize> {
        let tx = self.conn.transaction()?;
        let recovered = {
            let mut pending =
                tx.prepare("SELECT seq, target, id, owner, action FROM journal WHERE phase = 'intent'")?;
            let rows: Vec<(i64, String, String, String, String)> = pending
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                .collect::<rusqlite::Result<_>>()?;
            for (seq, target, id, owner, action) in &rows {
                if action != "delete" {
                    tx.execute(
                        "INSERT OR IGNORE INTO inventory (target, id, owner, since) VALUES (?1, ?2, ?3, ?4)",
                        params![target, id, owner, now],
                    )?;
                }
                tx.execute("UPDATE journal SET phase = 'interrupted' WHERE seq = ?1", params![seq])?;
            }
            rows.len()
        };
        tx.commit()?;
        Ok(recovered)
    }

    pub fn inventory(&self) -> Result<Inventory> {
        let mut statement = self.conn.prepare("SELECT target, id, owner FROM inventory")?;
        let mut inventory = Inventory::default();
        let rows = statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?;
        for row in rows {
            let (target, id, owner) = row?;
            let id: ResourceId = id
                .parse()
                .map_err(|e: tenantry_core::ParseIdError| Error::Corrupt(format!("inventory id `{id}`: {e}")))?;
            inventory.insert(id, &target, Owner::from_label(&owner));
        }
        Ok(inventory)
    }

    pub fn ports(&self) -> Result<BTreeMap<String, BTreeMap<String, u16>>> {
        let mut statement = self.conn.prepare("SELECT user, pool, port FROM ports")?;
        let mut out: BTreeMap<String, BTreeMap<String, u16>> = BTreeMap::new();
        let rows =
            statement.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, u16>(2)?)))?;
        for row in rows {
            let (user, pool, port) = row?;
            out.entry(user).or_default().insert(pool, port);
        }
        Ok(out)
    }

    /// Record port reservations; an existing reservation is never moved.
    pub fn reserve_ports(&mut self, ports: &BTreeMap<String, BTreeMap<String, u16>>) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (user, pools) in ports {
            for (pool, port) in pools {
                let holder: Option<(String, String)> = tx
                    .query_row("SELECT user, pool FROM ports WHERE port = ?1", params![port], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()?;
                match holder {
                    Some((other, other_pool)) if other != *user || other_pool != *pool => {
                        return Err(Error::PortConflict { port: *port, first: other, second: user.clone() });
                    }
                    Some(_) => {}
                    None => {
                        tx.execute(
                            "INSERT OR IGNORE INTO ports (user, pool, port) VALUES (?1, ?2, ?3)",
                            params![user, pool, port],
                        )?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn routes(&self) -> Result<BTreeMap<String, RetainedRoute>> {
        let mut statement = self.conn.prepare("SELECT user, idp_user, os_user, admin FROM routes")?;
        let rows = statement.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, RetainedRoute { idp_user: r.get(1)?, os_user: r.get(2)?, admin: r.get(3)? }))
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
    }

    /// Remember current routes, and forget those of users who were cut.
    pub fn update_routes(&mut self, current: &BTreeMap<String, RetainedRoute>, cut: &[String]) -> Result<()> {
        let tx = self.conn.transaction()?;
        for (user, route) in current {
            tx.execute(
                "INSERT INTO routes (user, idp_user, os_user, admin) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (user) DO UPDATE SET idp_user = excluded.idp_user, os_user = excluded.os_user, admin = excluded.admin",
                params![user, route.idp_user, route.os_user, route.admin],
            )?;
        }
        for user in cut {
            tx.execute("DELETE FROM routes WHERE user = ?1", params![user])?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn begin_run(&mut self, run: &RunInfo, now: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO runs (command, started_at, actor, roster_digest) VALUES (?1, ?2, ?3, ?4)",
            params![run.command, now, run.actor, run.roster_digest],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<RunRecord>> {
        let mut statement = self.conn.prepare(
            "SELECT run, command, started_at, finished_at, summary, actor, roster_digest FROM runs ORDER BY run DESC LIMIT ?1",
        )?;
        let rows = statement.query_map(params![i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(RunRecord {
                run: r.get(0)?,
                command: r.get(1)?,
                started_at: r.get(2)?,
                finished_at: r.get(3)?,
                summary: r.get(4)?,
                actor: r.get(5)?,
                roster_digest: r.get(6)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
    }

    pub fn finish_run(&mut self, run: i64, now: &str, summary: &str) -> Result<()> {
        self.conn
            .execute("UPDATE runs SET finished_at = ?2, summary = ?3 WHERE run = ?1", params![run, now, summary])?;
        Ok(())
    }

    /// Commit the intent of every change of a wave before any of them runs.
    pub fn record_intents(&mut self, run: i64, changes: &[&Change], now: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO journal (run, target, id, owner, action, phase, at) VALUES (?1, ?2, ?3, ?4, ?5, 'intent', ?6)",
            )?;
            for change in changes {
                insert.execute(params![
                    run,
                    change.target,
                    change.id.to_string(),
                    change.owner.as_label(),
                    change.action.as_str(),
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Record outcomes and bring the inventory in line, in one transaction.
    /// A change whose outcome is unknown is remembered like a killed run's
    /// intent: its object may exist, so it joins the inventory.
    pub fn record_outcomes(&mut self, run: i64, outcomes: &[(&Change, &Ending)], now: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut close = tx.prepare(CLOSE_INTENT)?;
            let mut remember = tx.prepare(
                "INSERT INTO inventory (target, id, owner, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (target, id) DO UPDATE SET owner = excluded.owner",
            )?;
            let mut forget = tx.prepare("DELETE FROM inventory WHERE target = ?1 AND id = ?2")?;
            let mut may_exist =
                tx.prepare("INSERT OR IGNORE INTO inventory (target, id, owner, since) VALUES (?1, ?2, ?3, ?4)")?;
            for (change, ending) in outcomes {
                let id = change.id.to_string();
                let (phase, error) = match ending {
                    Ending::Done => ("done", None),
                    Ending::Failed(error) => ("failed", Some(error)),
                    Ending::Unknown(error) => ("unknown", Some(error)),
                };
                close.execute(params![run, change.target, id, phase, error, now])?;
                let deleting = change.action == tenantry_core::Action::Delete;
                match ending {
                    Ending::Done if deleting => {
                        forget.execute(params![change.target, id])?;
                    }
                    Ending::Done => {
                        remember.execute(params![change.target, id, change.owner.as_label(), now])?;
                    }
                    Ending::Unknown(_) if !deleting => {
                        may_exist.execute(params![change.target, id, change.owner.as_label(), now])?;
                    }
                    Ending::Unknown(_) | Ending::Failed(_) => {}
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Add unchanged resources the inventory did not know, and drop entries whose object is gone.
    pub fn reconcile_inventory(
        &mut self,
        record: &[(String, ResourceId, Owner)],
        forget: &[(String, ResourceId)],
        now: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut remember = tx.prepare(
                "INSERT INTO inventory (target, id, owner, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (target, id) DO UPDATE SET owner = excluded.owner",
            )?;
            for (target, id, owner) in record {
                remember.execute(params![target, id.to_string(), owner.as_label(), now])?;
            }
            let mut drop = tx.prepare("DELETE FROM inventory WHERE target = ?1 AND id = ?2")?;
            for (target, id) in forget {
                drop.execute(params![target, id.to_string()])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Journal the destroy stage's intent for `ids` on `target` before it acts.
    pub fn record_destroy_intents(
        &mut self,
        run: i64,
        target: &str,
        owner: &Owner,
        ids: &[ResourceId],
        now: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO journal (run, target, id, owner, action, phase, at) VALUES (?1, ?2, ?3, ?4, 'destroy', 'intent', ?5)",
            )?;
            for id in ids {
                insert.execute(params![run, target, id.to_string(), owner.as_label(), now])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Close the destroy intents on `target`: `removed` are forgotten by the
    /// inventory; the others stay, failed with `error` (or left as they were).
    pub fn record_destroy_outcomes(
        &mut self,
        run: i64,
        target: &str,
        ids: &[ResourceId],
        removed: &[ResourceId],
        error: Option<&str>,
        now: &str,
    ) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut close = tx.prepare(CLOSE_INTENT)?;
            let mut forget = tx.prepare("DELETE FROM inventory WHERE target = ?1 AND id = ?2")?;
            for id in ids {
                let gone = removed.contains(id);
                let (phase, message) = match (gone, error) {
                    (true, _) => ("done", None),
                    (false, Some(error)) => ("failed", Some(error)),
                    (false, None) => ("failed", Some("the target did not remove it")),
                };
                close.execute(params![run, target, id.to_string(), phase, message, now])?;
                if gone {
                    forget.execute(params![target, id.to_string()])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Forget a destroyed user's port reservations and routes: only now may
    /// their ports go to someone else.
    pub fn release_user(&mut self, user: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM ports WHERE user = ?1", params![user])?;
        tx.execute("DELETE FROM routes WHERE user = ?1", params![user])?;
        tx.commit()?;
        Ok(())
    }

    /// The journal of one resource, newest first.
    pub fn history(&self, id: &ResourceId, limit: usize) -> Result<Vec<JournalEntry>> {
        let mut statement = self.conn.prepare(
            "SELECT run, target, action, phase, error, at FROM journal WHERE id = ?1 ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = statement.query_map(params![id.to_string(), i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
            Ok(JournalEntry {
                run: r.get(0)?,
                target: r.get(1)?,
                action: r.get(2)?,
                phase: r.get(3)?,
                error: r.get(4)?,
                at: r.get(5)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
    }

    /// The changes of the most recent run that have no outcome: killed
    /// before they finished (`interrupted`, once a later start recovered
    /// them) or, while that run is still going or was just killed, `intent`.
    pub fn unfinished(&self) -> Result<(Option<RunRecord>, Vec<ChangeRecord>)> {
        let last: Option<i64> = self.conn.query_row("SELECT MAX(run) FROM runs", [], |r| r.get(0))?;
        let Some(last) = last else { return Ok((None, Vec::new())) };
        let changes =
            self.changes("WHERE journal.run = ?1 AND phase IN ('intent', 'interrupted', 'unknown')", params![last])?;
        let run = self.runs(usize::MAX)?.into_iter().find(|r| r.run == last);
        Ok((run, changes))
    }

    /// Every journalled change, oldest first, of `user` (all owners when
    /// `None`) at or after `since` (RFC 3339 text, compared as text: the
    /// journal writes UTC seconds), with the run it belongs to.
    pub fn changes_since(&self, user: Option<&str>, since: Option<&str>) -> Result<Vec<ChangeRecord>> {
        self.changes("WHERE (?1 IS NULL OR owner = ?1) AND (?2 IS NULL OR journal.at >= ?2)", params![user, since])
    }

    fn changes(&self, filter: &str, args: impl rusqlite::Params) -> Result<Vec<ChangeRecord>> {
        let mut statement = self.conn.prepare(&format!(
            "SELECT journal.run, target, id, owner, action, phase, error, at FROM journal {filter} ORDER BY seq"
        ))?;
        let rows = statement.query_map(args, |r| {
            Ok(ChangeRecord {
                run: r.get(0)?,
                target: r.get(1)?,
                id: r.get(2)?,
                owner: r.get(3)?,
                action: r.get(4)?,
                phase: r.get(5)?,
                error: r.get(6)?,
                at: r.get(7)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
    }

    /// The runs with these numbers.
    pub fn runs_by_number(&self, runs: &[i64]) -> Result<Vec<RunRecord>> {
        let wanted: std::collections::BTreeSet<i64> = runs.iter().copied().collect();
        Ok(self.runs(usize::MAX)?.into_iter().filter(|r| wanted.contains(&r.run)).rev().collect())
    }

    /// When the inventory first recorded a resource, per target.
    pub fn inventory_since(&self, id: &ResourceId) -> Result<Vec<(String, String)>> {
        let mut statement = self.conn.prepare("SELECT target, since FROM inventory WHERE id = ?1 ORDER BY target")?;
        let rows = statement.query_map(params![id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>().map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Closing an intent must not scan the run's other intents: that made
    /// recording a large apply's outcomes quadratic (seconds of CPU at
    /// 11,000 changes).
    #[test]
    fn closing_an_intent_is_an_index_lookup_by_run_and_id() -> Result<()> {
        let state = State::in_memory()?;
        let mut explain = state.conn.prepare(&format!("EXPLAIN QUERY PLAN {CLOSE_INTENT}"))?;
        let details: Vec<String> = explain
            .query_map(
                params![1, "kubernetes", "kubernetes/Namespace/-/alice", "done", None::<String>, "now"],
                |row| row.get(3),
            )?
            .collect::<rusqlite::Result<_>>()?;
        assert!(
            details.iter().any(|d| d.contains("USING INDEX journal_by_run (run=? AND id=?)")),
            "closing an intent scans instead of looking it up: {details:?}"
        );
        Ok(())
    }
}
