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
//! dozen rows, a millisecond or two. On PostgreSQL a [`WriteTx`] is a sqlx transaction.

use crate::db::{db_error, json_batch, json_rows, unique_violation, Backend, JsonType, Store};
use crate::local::{local_error, LocalWriter, Turn};
use nephele_common::batch;
use nephele_common::Result;
use sqlx::{Any, Transaction};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedMutexGuard;

/// A value bound to a statement's `$N`.
#[derive(Clone, Copy)]
pub(crate) enum Arg<'a> {
    Text(&'a str),
    Int(i64),
    /// A NULL text.
    Null,
    /// A NULL integer (PostgreSQL types every parameter).
    NullInt,
    /// A batch from [`WriteTx::rows`], at `$1`.
    Rows(&'a Rows<'a>),
}

/// A batch of rows that a statement reads as a table: its SQL (which
/// `Display` gives, to go in the statement's `FROM`) and its values, bound
/// as [`Arg::Rows`].
///
/// Through sqlx the batch is one JSON array (see [`Store::json_rows`]).
/// On the local SQLite connection each value is a parameter of its own, in
/// a `VALUES` list: SQLite's JSON functions turned every row back into text
/// and parsed it again for each column, several times the cost of binding
/// (`json_each` and `->>` were a tenth of the server's CPU during creates).
/// The list has room for a power of two of rows, the rest bound as NULL
/// and skipped, so that a handful of prepared statements serve every size.
pub(crate) struct Rows<'v> {
    sql: String,
    columns: Vec<&'static str>,
    source: Source<'v>,
}

/// What a batch's statements bind: made once per batch, however many
/// tables ([`Rows::table`]) a transaction reads it as.
#[derive(Clone)]
enum Source<'v> {
    Json { backend: Backend, text: Arc<str> },
    Values(&'v [serde_json::Value]),
}

/// The rows a local batch's statement has room for.
fn slots(rows: usize) -> usize {
    rows.max(1).next_power_of_two()
}

/// The first parameter index of a local batch's values. The statement's
/// own `$N` (never more than a few) take the indices below, or, written
/// after the list, those after it.
const FIRST_ROW_PARAMETER: usize = 33;

impl std::fmt::Display for Rows<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.sql)
    }
}

impl<'v> Rows<'v> {
    fn new(source: Source<'v>, alias: &str, columns: &[(&'static str, JsonType)]) -> Rows<'v> {
        let sql = match &source {
            Source::Json { backend, .. } => json_rows(*backend, alias, columns),
            Source::Values(rows) => values_sql(alias, columns, rows.len()),
        };
        Rows {
            sql,
            columns: columns.iter().map(|(name, _)| *name).collect(),
            source,
        }
    }

    /// The same rows as a table of other columns, for another statement:
    /// the batch is not made again.
    pub(crate) fn table(&self, alias: &str, columns: &[(&'static str, JsonType)]) -> Rows<'v> {
        Rows::new(self.source.clone(), alias, columns)
    }

    /// Binds the rows' values, and NULL for the empty slots' first column.
    fn bind_local(&self, statement: &mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<()> {
        use rusqlite::types::Null;
        use serde_json::Value;
        let Source::Values(rows) = self.source else {
            return Ok(());
        };
        let width = self.columns.len();
        for (r, row) in rows.iter().enumerate() {
            for (c, name) in self.columns.iter().enumerate() {
                let index = FIRST_ROW_PARAMETER + r * width + c;
                match row.get(name) {
                    None | Some(Value::Null) => statement.raw_bind_parameter(index, Null),
                    Some(Value::String(v)) => statement.raw_bind_parameter(index, v.as_str()),
                    Some(Value::Bool(v)) => statement.raw_bind_parameter(index, i64::from(*v)),
                    Some(Value::Number(n)) => match n.as_i64() {
                        Some(v) => statement.raw_bind_parameter(index, v),
                        None => statement.raw_bind_parameter(index, n.as_f64()),
                    },
                    // As `->>` gives a nested object or array: its JSON.
                    Some(v) => statement.raw_bind_parameter(index, v.to_string()),
                }?;
            }
        }
        for r in rows.len()..slots(rows.len()) {
            statement.raw_bind_parameter(FIRST_ROW_PARAMETER + r * width, Null)?;
        }
        Ok(())
    }
}

/// A local batch of `rows` as a table: `(SELECT column1 AS a, … FROM
/// (VALUES (?33, …), …) WHERE column1 IS NOT NULL) AS alias`.
fn values_sql(alias: &str, columns: &[(&'static str, JsonType)], rows: usize) -> String {
    use std::fmt::Write;
    let width = columns.len();
    let mut sql = String::from("(SELECT ");
    for (i, (name, _)) in columns.iter().enumerate() {
        let comma = if i == 0 { "" } else { ", " };
        let _ = write!(sql, "{comma}column{} AS {name}", i + 1);
    }
    sql.push_str(" FROM (VALUES ");
    for slot in 0..slots(rows) {
        sql.push_str(if slot == 0 { "(" } else { ", (" });
        for column in 0..width {
            let comma = if column == 0 { "" } else { ", " };
            let _ = write!(
                sql,
                "{comma}?{}",
                FIRST_ROW_PARAMETER + slot * width + column
            );
        }
        sql.push(')');
    }
    // The first column of a row is never NULL (an id); the empty slots' is.
    let _ = write!(sql, ") WHERE column1 IS NOT NULL) AS {alias}");
    sql
}

/// One write transaction; dropped without [`WriteTx::commit`], it is
/// rolled back.
pub(crate) struct WriteTx(Inner);

enum Inner {
    Sqlx(Transaction<'static, Any>, Backend),
    Local(LocalTx),
}

struct LocalTx {
    /// `None` only once dropped.
    turn: Option<OwnedMutexGuard<Turn>>,
    home: Arc<LocalWriter>,
}

/// How long writers here may keep sqlx's write connection, writing one
/// after another without handing it back: the longest a write through
/// sqlx waits for them.
const MAX_TURNS: Duration = Duration::from_millis(5);

impl Drop for LocalTx {
    fn drop(&mut self) {
        let Some(mut turn) = self.turn.take() else {
            return;
        };
        turn.roll_back_open();
        // Handing sqlx's connection back to its pool costs a round trip to
        // its thread (sqlx pings it), and taking it again another: kept
        // for the next writer here if one waits, for a short while.
        let next_waits = self.home.waiting.load(Ordering::Acquire) > 0;
        if !next_waits
            || turn
                .sqlx
                .as_ref()
                .is_none_or(|(_, since)| since.elapsed() >= MAX_TURNS)
        {
            turn.sqlx = None;
        }
        // In a group commit, the next writer's turn comes once the
        // batch's submitters have their answers (see `batch`).
        drop(batch::hold_until_answered(turn));
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
            use rusqlite::types::ValueRef;
            let value = match *arg {
                Arg::Text(v) => ValueRef::Text(v.as_bytes()),
                Arg::Int(v) => ValueRef::Integer(v),
                Arg::Null | Arg::NullInt => ValueRef::Null,
                Arg::Rows(rows) => {
                    rows.bind_local(&mut statement).map_err(local_error)?;
                    continue;
                }
            };
            let name = format!("${}", i + 1);
            let Some(index) = statement.parameter_index(&name).map_err(local_error)? else {
                continue; // a parameter the statement does not use
            };
            statement
                .raw_bind_parameter(index, rusqlite::types::ToSqlOutput::Borrowed(value))
                .map_err(local_error)?;
        }
        Ok(statement)
    }

    fn conn(&mut self) -> Result<&rusqlite::Connection> {
        match &mut self.turn {
            Some(turn) => turn.conn(&self.home),
            None => Err(nephele_common::Error::internal(
                "write after the end of its turn",
            )),
        }
    }
}

/// Counts a writer waiting for its turn, until it has it or gives up.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Keeps the writers of `write` and of sqlx's write pool out while the
/// door's writer (see `door`) runs a batch; they go when the port to the
/// door is done.
pub(crate) struct Exclusive(Option<OwnedMutexGuard<Turn>>);

impl Drop for Exclusive {
    fn drop(&mut self) {
        if let Some(turn) = &mut self.0 {
            turn.sqlx = None;
        }
    }
}

impl Store {
    /// A connection for reads, for [`crate::run!`].
    pub async fn reader(&self) -> Result<crate::door::Reader<'_>> {
        self.door.reader().await
    }

    /// Runs `job` through the door as one write transaction.
    pub async fn write<T: Send + 'static>(&self, job: crate::door::WriteJob<T>) -> Result<T> {
        self.door.write(job, self.exclusive()).await
    }

    async fn exclusive(&self) -> Result<Exclusive> {
        match &self.local_writer {
            Some(home) => Ok(Exclusive(Some(self.take_turn(home, None).await?))),
            None => Ok(Exclusive(None)),
        }
    }

    /// The local writers' turn, with sqlx's write connection held.
    async fn take_turn(
        &self,
        home: &LocalWriter,
        held: Option<OwnedMutexGuard<Turn>>,
    ) -> Result<OwnedMutexGuard<Turn>> {
        let mut turn = match held {
            // A group commit's second transaction: its turn goes on.
            Some(turn) if Arc::ptr_eq(OwnedMutexGuard::mutex(&turn), &home.turn) => turn,
            other => {
                drop(other);
                home.waiting.fetch_add(1, Ordering::AcqRel);
                let _waiting = Waiting(&home.waiting);
                home.turn.clone().lock_owned().await
            }
        };
        if turn.sqlx.is_none() {
            let held = self.write.acquire().await.map_err(db_error)?;
            turn.sqlx = Some((held, Instant::now()));
        }
        Ok(turn)
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite: the write
    /// lock is taken at once, not at the first write).
    pub(crate) async fn begin_write(&self) -> Result<WriteTx> {
        let Some(home) = &self.local_writer else {
            return Ok(WriteTx(Inner::Sqlx(
                self.write.begin().await.map_err(db_error)?,
                self.backend(),
            )));
        };
        let held = batch::take_held::<OwnedMutexGuard<Turn>>();
        let turn = self.take_turn(home, held).await?;
        let mut tx = LocalTx {
            turn: Some(turn),
            home: home.clone(),
        };
        tx.conn()?
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(local_error)?;
        Ok(WriteTx(Inner::Local(tx)))
    }
}

impl WriteTx {
    /// `rows` (JSON objects) as a table named `alias` with `columns`, for
    /// this transaction's statements (see [`Rows`]).
    pub(crate) fn rows<'v>(
        &self,
        alias: &str,
        columns: &[(&'static str, JsonType)],
        rows: &'v [serde_json::Value],
    ) -> Rows<'v> {
        let source = match &self.0 {
            Inner::Sqlx(_, backend) => Source::Json {
                backend: *backend,
                text: Arc::from(json_batch(rows)),
            },
            Inner::Local(_) => Source::Values(rows),
        };
        Rows::new(source, alias, columns)
    }

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
            Inner::Sqlx(tx, _) => Ok(bind(sqlx::query(sql), args)
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
            Inner::Sqlx(tx, _) => {
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
            Inner::Sqlx(tx, _) => tx.commit().await.map_err(db_error),
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
            Arg::NullInt => query.bind(None::<i64>),
            Arg::Rows(rows) => match &rows.source {
                Source::Json { text, .. } => query.bind(&**text),
                Source::Values(_) => query.bind(None::<String>),
            },
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
        {
            let store = file_store(&dir).await;
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

    /// A batch reads alike as JSON through sqlx and as bound values here:
    /// text, integers, booleans and nulls, a size that leaves slots empty,
    /// the statement's own `$N` beside it, and a smaller batch after a
    /// larger one on the same prepared statement (its rows do not linger).
    #[tokio::test]
    async fn a_batch_of_rows_reads_alike_on_both_kinds_of_connection() {
        use serde_json::json;
        const COLUMNS: [(&str, JsonType); 5] = [
            ("id", JsonType::Text),
            ("cpu", JsonType::Integer),
            ("image", JsonType::Text),
            ("boots", JsonType::Integer),
            ("last_task", JsonType::Text),
        ];
        let machine = |id: &str, cpu: i64, last: Option<&str>| json!({"id": id, "cpu": cpu, "image": format!("img-{id}"), "boots": cpu > 1, "last_task": last});
        let dir = tempfile::tempdir().expect("temp dir");
        let other = tempfile::tempdir().expect("temp dir");
        let mut through_sqlx = file_store(&other).await;
        through_sqlx.local_writer = None;
        let mut seen = Vec::new();
        for store in [file_store(&dir).await, through_sqlx] {
            let insert = |j: &Rows<'_>| {
                format!(
                    "INSERT INTO sim_machines (id, power, cpu, memory_mib, image, boots, \
                     last_task, updated_at) SELECT j.id, $2, j.cpu, 0, j.image, j.boots, \
                     j.last_task, 7 FROM {j}"
                )
            };
            let mut tx = store.begin_write().await.expect("begin");
            tx.execute(
                "CREATE TABLE sim_machines (id TEXT PRIMARY KEY NOT NULL, power TEXT NOT NULL, \
                 cpu BIGINT NOT NULL, memory_mib BIGINT NOT NULL, image TEXT NOT NULL, \
                 boots BIGINT NOT NULL, last_task TEXT, updated_at BIGINT NOT NULL)",
                &[],
            )
            .await
            .expect("a table");
            let three = [
                machine("a", 1, None),
                machine("b", 2, Some("t")),
                machine("c", 3, None),
            ];
            let j = tx.rows("j", &COLUMNS, &three);
            let n = tx
                .execute(&insert(&j), &[Arg::Rows(&j), Arg::Text("stopped")])
                .await
                .expect("three rows in four slots");
            assert_eq!(n, 3);
            let four = [
                machine("d", 1, None),
                machine("e", 1, None),
                machine("f", 1, None),
                machine("g", 1, None),
            ];
            let j = tx.rows("j", &COLUMNS, &four);
            tx.execute(&insert(&j), &[Arg::Rows(&j), Arg::Text("stopped")])
                .await
                .expect("four rows");
            let again = [
                machine("h", 1, None),
                machine("i", 1, None),
                machine("k", 1, None),
            ];
            let j = tx.rows("j", &COLUMNS, &again);
            let n = tx
                .execute(&insert(&j), &[Arg::Rows(&j), Arg::Text("running")])
                .await
                .expect("three rows again");
            assert_eq!(n, 3, "the fourth slot of the last batch is empty again");
            // The same batch read as a table of other columns.
            let ids = j.table("k", &[("id", JsonType::Text)]);
            let read = tx
                .texts(
                    &format!("SELECT k.id FROM {ids} ORDER BY k.id"),
                    &[Arg::Rows(&ids)],
                )
                .await
                .expect("the batch as another table");
            assert_eq!(read, ["h", "i", "k"]);
            let one = [machine("a", 9, None)];
            let j = tx.rows("j", &COLUMNS, &one);
            let changed = tx
                .texts(
                    &format!(
                        "UPDATE sim_machines SET cpu = j.cpu FROM {j} \
                         WHERE sim_machines.id = j.id RETURNING sim_machines.id"
                    ),
                    &[Arg::Rows(&j)],
                )
                .await
                .expect("update from a batch");
            assert_eq!(changed, ["a"]);
            let rows = tx
                .texts(
                    "SELECT json_array(id, power, cpu, image, boots, last_task, \
                     typeof(cpu), typeof(boots)) FROM sim_machines ORDER BY id",
                    &[],
                )
                .await
                .expect("read back");
            tx.commit().await.expect("commit");
            seen.push(rows);
        }
        assert_eq!(seen[0], seen[1], "local and sqlx agree");
        assert_eq!(seen[0].len(), 10);
        assert_eq!(
            seen[0][..2],
            [
                r#"["a","stopped",9,"img-a",0,null,"integer","integer"]"#,
                r#"["b","stopped",2,"img-b",1,"t","integer","integer"]"#
            ]
        );
        assert_eq!(
            seen[0][9],
            r#"["k","running",1,"img-k",0,null,"integer","integer"]"#
        );
    }
}
