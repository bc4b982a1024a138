//! Write transactions of the group-commit writers, on either kind of
//! connection.
//!
//! On a SQLite file the writers' transactions run on a rusqlite connection
//! in the calling thread, as the hot point reads do (see `local`): through
//! sqlx every statement, its rows, the `BEGIN` and the `COMMIT` are each a
//! handover to the connection's own thread and back, and the one write
//! connection was held through all of them. The rest of the writes still
//! go through sqlx's write pool, whose one connection serves as the lock
//! that keeps the two kinds of writers apart: it is held while a
//! transaction here runs, and kept for the next one here when it waits
//! (see [`MAX_TURNS`]). A transaction here runs in the Tokio worker that
//! asks, holding it up for as long as SQLite works: a batch of a few
//! dozen rows, a millisecond or two. On PostgreSQL (and an in-memory
//! SQLite, which no second connection can share) a [`WriteTx`] is a sqlx
//! transaction.

use crate::db::{db_error, unique_violation, Store};
use crate::local::{local_error, LocalWriter, Turn};
use nephele_common::Result;
use sqlx::{Any, Transaction};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;

/// A value bound to a statement's `$N`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

/// One write transaction; dropped without [`WriteTx::commit`], it is
/// rolled back.
pub(crate) struct WriteTx(Inner);

enum Inner {
    Sqlx(Transaction<'static, Any>),
    Local(LocalTx),
}

struct LocalTx {
    turn: OwnedMutexGuard<Turn>,
    home: Arc<LocalWriter>,
}

/// How long writers here may keep sqlx's write connection, writing one
/// after another without handing it back: the longest a write through
/// sqlx waits for them.
const MAX_TURNS: Duration = Duration::from_millis(5);

impl Drop for LocalTx {
    fn drop(&mut self) {
        self.turn.roll_back_open();
        // Handing sqlx's connection back to its pool costs a round trip to
        // its thread (sqlx pings it), and taking it again another: kept
        // for the next writer here if one waits, for a short while.
        let next_waits = self.home.waiting.load(Ordering::Acquire) > 0;
        if !next_waits
            || self
                .turn
                .sqlx
                .as_ref()
                .is_none_or(|(_, since)| since.elapsed() >= MAX_TURNS)
        {
            self.turn.sqlx = None;
        }
    }
}

impl LocalTx {
    /// Prepares `sql` (cached) and binds `args` by their names, `$1`…
    fn statement<'c>(
        conn: &'c rusqlite::Connection,
        sql: &str,
        args: &[Arg<'_>],
    ) -> Result<rusqlite::CachedStatement<'c>> {
        let mut statement = conn.prepare_cached(sql).map_err(local_error)?;
        for (i, arg) in args.iter().enumerate() {
            let name = format!("${}", i + 1);
            let Some(index) = statement.parameter_index(&name).map_err(local_error)? else {
                continue; // a parameter the statement does not use
            };
            match *arg {
                Arg::Text(v) => statement.raw_bind_parameter(index, v),
                Arg::Int(v) => statement.raw_bind_parameter(index, v),
                Arg::Null => statement.raw_bind_parameter(index, rusqlite::types::Null),
            }
            .map_err(local_error)?;
        }
        Ok(statement)
    }

    fn conn(&mut self) -> Result<&rusqlite::Connection> {
        self.turn.conn(&self.home)
    }
}

/// Counts a writer waiting for its turn, until it has it or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Store {
    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite: the write
    /// lock is taken at once, not at the first write).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let Some(home) = &self.local_writer else {
            return Ok(WriteTx(Inner::Sqlx(
                self.write.begin().await.map_err(db_error)?,
            )));
        };
        home.waiting.fetch_add(1, Ordering::AcqRel);
        let waiting = Waiting(&home.waiting);
        let mut turn = home.turn.clone().lock_owned().await;
        drop(waiting);
        if turn.sqlx.is_none() {
            let held = self.write.acquire().await.map_err(db_error)?;
            turn.sqlx = Some((held, Instant::now()));
        }
        let mut tx = LocalTx {
            turn,
            home: home.clone(),
        };
        tx.conn()?
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(local_error)?;
        Ok(WriteTx(Inner::Local(tx)))
    }
}

impl WriteTx {
    /// Runs a statement; the number of rows it changed.
    pub(crate) async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        self.run(sql, args).await.map_err(Failure::into_error)
    }

    /// Runs a statement, as [`WriteTx::execute`], unless it would break a
    /// unique constraint whose name (PostgreSQL) or column (SQLite)
    /// contains `constraint`: then `None`, and the transaction is to be
    /// abandoned (PostgreSQL refuses anything more in it).
    pub(crate) async fn execute_unless_taken(
        &mut self,
        sql: &str,
        args: &[Arg<'_>],
        constraint: &str,
    ) -> Result<Option<u64>> {
        match self.run(sql, args).await {
            Ok(changed) => Ok(Some(changed)),
            Err(failure) if failure.is_unique_violation(constraint) => Ok(None),
            Err(failure) => Err(failure.into_error()),
        }
    }

    async fn run(&mut self, sql: &str, args: &[Arg<'_>]) -> std::result::Result<u64, Failure> {
        match &mut self.0 {
            Inner::Sqlx(tx) => Ok(bind(sqlx::query(sql), args)
                .execute(&mut **tx)
                .await
                .map_err(Failure::Sqlx)?
                .rows_affected()),
            Inner::Local(tx) => {
                let conn = tx.conn().map_err(Failure::Other)?;
                let mut statement = LocalTx::statement(conn, sql, args).map_err(Failure::Other)?;
                let changed = statement.raw_execute().map_err(Failure::Local)?;
                Ok(u64::try_from(changed).unwrap_or(0))
            }
        }
    }

    /// Runs a statement whose rows have one text column (ids, or rows as
    /// JSON); the values, in the order of the rows.
    pub(crate) async fn texts(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<String>> {
        match &mut self.0 {
            Inner::Sqlx(tx) => {
                use sqlx::Row;
                bind(sqlx::query(sql), args)
                    .fetch_all(&mut **tx)
                    .await
                    .map_err(db_error)?
                    .iter()
                    .map(|row| row.try_get::<String, _>(0).map_err(db_error))
                    .collect()
            }
            Inner::Local(tx) => {
                let mut statement = LocalTx::statement(tx.conn()?, sql, args)?;
                let mut rows = statement.raw_query();
                let mut values = Vec::new();
                while let Some(row) = rows.next().map_err(local_error)? {
                    values.push(row.get::<_, String>(0).map_err(local_error)?);
                }
                Ok(values)
            }
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self.0 {
            Inner::Sqlx(tx) => tx.commit().await.map_err(db_error),
            // Should COMMIT fail, dropping `tx` rolls back.
            Inner::Local(mut tx) => tx.conn()?.execute_batch("COMMIT").map_err(local_error),
        }
    }
}

/// Why a statement failed, kept as the driver said until the caller
/// knows whether that failure is one it expects.
enum Failure {
    Sqlx(sqlx::Error),
    Local(rusqlite::Error),
    Other(nephele_common::Error),
}

impl Failure {
    fn is_unique_violation(&self, constraint: &str) -> bool {
        match self {
            Failure::Sqlx(e) => unique_violation(e).is_some_and(|c| c.contains(constraint)),
            Failure::Local(rusqlite::Error::SqliteFailure(e, Some(message))) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    && message.contains(constraint)
            }
            Failure::Local(_) | Failure::Other(_) => false,
        }
    }

    fn into_error(self) -> nephele_common::Error {
        match self {
            Failure::Sqlx(e) => db_error(e),
            Failure::Local(e) => local_error(e),
            Failure::Other(e) => e,
        }
    }
}

fn bind<'q>(
    mut query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    args: &[Arg<'q>],
) -> sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>> {
    for arg in args {
        query = match *arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::Null => query.bind(None::<String>),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use std::time::Duration;

    async fn file_store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("store");
        assert!(store.local_writer.is_some(), "a file is written locally");
        store
    }

    async fn node_ids(store: &Store) -> Vec<String> {
        sqlx::query_scalar("SELECT id FROM nodes ORDER BY id")
            .fetch_all(&store.read)
            .await
            .expect("nodes")
    }

    const INSERT: &str = "INSERT INTO nodes (id, started_at, lease_until) VALUES ($1, $2, $2)";

    #[tokio::test]
    async fn a_write_is_seen_once_committed_and_undone_when_dropped() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(&dir).await;
        let mut tx = store.begin_write().await.expect("begin");
        let ids = tx
            .texts(
                &format!("{INSERT} RETURNING id"),
                &[Arg::Text("a"), Arg::Int(1)],
            )
            .await
            .expect("insert");
        assert_eq!(ids, ["a"]);
        assert!(node_ids(&store).await.is_empty(), "not before the commit");
        tx.commit().await.expect("commit");
        assert_eq!(node_ids(&store).await, ["a"]);

        let mut tx = store.begin_write().await.expect("begin");
        tx.execute(INSERT, &[Arg::Text("b"), Arg::Int(2)])
            .await
            .expect("insert");
        drop(tx);
        assert_eq!(node_ids(&store).await, ["a"], "dropped: rolled back");

        // A failed statement fails the transaction, which the next one
        // does not inherit.
        let mut tx = store.begin_write().await.expect("begin");
        assert!(tx
            .execute(INSERT, &[Arg::Text("a"), Arg::Int(3)])
            .await
            .is_err());
        drop(tx);
        let mut tx = store.begin_write().await.expect("begin");
        tx.execute(INSERT, &[Arg::Text("c"), Arg::Int(4)])
            .await
            .expect("insert");
        tx.commit().await.expect("commit");
        assert_eq!(node_ids(&store).await, ["a", "c"]);
    }

    /// A write here waits its turn behind sqlx's writer rather than block
    /// the thread in SQLite's busy handler, and the other way round.
    #[tokio::test]
    async fn writes_here_and_through_sqlx_take_turns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(&dir).await;
        let mut other = store.write.begin().await.expect("sqlx begin");
        sqlx::query(INSERT)
            .bind("sqlx")
            .bind(1_i64)
            .execute(&mut *other)
            .await
            .expect("sqlx insert");
        let waiting = tokio::time::timeout(Duration::from_millis(100), store.begin_write()).await;
        assert!(waiting.is_err(), "waits while sqlx's writer is busy");
        other.commit().await.expect("sqlx commit");

        let mut tx = store.begin_write().await.expect("begin");
        tx.execute(INSERT, &[Arg::Text("here"), Arg::Int(2)])
            .await
            .expect("insert");
        let waiting = tokio::time::timeout(Duration::from_millis(100), store.write.begin()).await;
        assert!(waiting.is_err(), "sqlx's writer waits too");
        tx.commit().await.expect("commit");
        // With no other writer here waiting, sqlx's connection is free.
        let mut other = tokio::time::timeout(Duration::from_secs(5), store.write.begin())
            .await
            .expect("sqlx's writer gets its turn")
            .expect("sqlx begin");
        sqlx::query(INSERT)
            .bind("sqlx again")
            .bind(3_i64)
            .execute(&mut *other)
            .await
            .expect("sqlx insert");
        other.commit().await.expect("sqlx commit");
        assert_eq!(node_ids(&store).await, ["here", "sqlx", "sqlx again"]);
    }

    /// A second unfinished task on one resource is told apart from other
    /// failures, here and through sqlx.
    #[tokio::test]
    async fn a_taken_unique_value_is_told_apart_from_other_failures() {
        const TASK: &str = "INSERT INTO tasks (id, organization_id, operation, resource_type, \
                            resource_id, active_resource, status, progress, step, unwinding, \
                            input, created_at) VALUES ($1, 'o', 'create', 'instances', 'r', 'r', \
                            'PENDING', 0, 0, 0, '{}', 1)";
        let dir = tempfile::tempdir().expect("temp dir");
        let memory = Store::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .expect("store");
        for store in [file_store(&dir).await, memory] {
            let mut tx = store.begin_write().await.expect("begin");
            let first = tx
                .execute_unless_taken(TASK, &[Arg::Text("t1")], "active_resource")
                .await
                .expect("first");
            assert_eq!(first, Some(1));
            let second = tx
                .execute_unless_taken(TASK, &[Arg::Text("t2")], "active_resource")
                .await
                .expect("a taken resource is not an error");
            assert_eq!(second, None);
            assert!(
                tx.execute_unless_taken(TASK, &[Arg::Text("t3")], "name")
                    .await
                    .is_err(),
                "another constraint's violation is an error"
            );
        }
    }

    #[tokio::test]
    async fn in_memory_databases_write_through_sqlx() {
        let store = Store::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .expect("store");
        assert!(store.local_writer.is_none());
        let mut tx = store.begin_write().await.expect("begin");
        tx.execute(INSERT, &[Arg::Text("m"), Arg::Int(1)])
            .await
            .expect("insert");
        let ids = tx.texts("SELECT id FROM nodes", &[]).await.expect("select");
        assert_eq!(ids, ["m"]);
        tx.commit().await.expect("commit");
    }
}
