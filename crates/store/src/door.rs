//! The one door to the database: diesel, with one typed schema
//! (`tables`) for both backends.
//!
//! - SQLite: reads run in the calling thread, on reader connections of
//!   their own (WAL lets them run beside the writer): a point read is a
//!   few microseconds of SQLite work, far less than handing it to another
//!   thread and back. Writes are queued for the one writer connection:
//!   whoever takes the writer runs every queued transaction in one
//!   `BEGIN IMMEDIATE … COMMIT`, each in a savepoint of its own so one
//!   failing does not undo the others, and then answers them all. Group
//!   commit is the writer's, not each caller's.
//! - PostgreSQL: a pool of diesel-async connections; each write is a
//!   transaction of its own, beside the others (PostgreSQL groups the
//!   commits' log flushes itself).
//!
//! A store function is written once: it builds a diesel query and runs it
//! with [`run!`], which type-checks the same query for each backend and
//! runs it with that backend's `RunQueryDsl`.

#[doc(hidden)]
pub use {diesel, diesel_async};

use diesel::connection::{AnsiTransactionManager, SimpleConnection, TransactionManager};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::{Connection, SqliteConnection};
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::RecyclingMethod;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, TransactionManager as _};
use futures::future::BoxFuture;
use nephele_common::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// A connection of either backend, for [`run!`]. (Seldom moved: boxing
/// the larger variant would cost an allocation per read.)
#[allow(clippy::large_enum_variant)]
pub enum Conn {
    Sqlite(SqliteConnection),
    Pg(Object<AsyncPgConnection>),
}

/// Runs a diesel query on a [`Conn`]: `run!(conn.method(query))`, where
/// `method` is one of `RunQueryDsl`'s (`execute`, `load`, `get_result`,
/// `first`, …); `optional_first` and `optional_get_result` answer `None`
/// for no row. The query is written once and compiled for each backend;
/// a failure is mapped by [`db_error`]. On SQLite it never suspends.
#[macro_export]
macro_rules! run {
    ($conn:ident . optional_first ( $query:expr )) => {
        $crate::door::diesel::OptionalExtension::optional($crate::run_raw!($conn.first($query)))
            .map_err($crate::door::db_error)
    };
    ($conn:ident . optional_get_result ( $query:expr )) => {
        $crate::door::diesel::OptionalExtension::optional(
            $crate::run_raw!($conn.get_result($query)),
        )
        .map_err($crate::door::db_error)
    };
    ($conn:ident . $method:ident ( $query:expr )) => {
        $crate::run_raw!($conn.$method($query)).map_err($crate::door::db_error)
    };
}
pub use crate::run;

/// [`run!`] with diesel's own `QueryResult`, for a caller that tells one
/// failure from another ([`breaks_unique`]).
#[macro_export]
macro_rules! run_raw {
    ($conn:ident . $method:ident ( $query:expr )) => {
        match &mut *$conn {
            $crate::door::Conn::Sqlite(c) => $crate::door::diesel::RunQueryDsl::$method($query, c),
            $crate::door::Conn::Pg(c) => {
                $crate::door::diesel_async::RunQueryDsl::$method($query, &mut **c).await
            }
        }
    };
}
pub use crate::run_raw;

/// A [`WriteJob`] from a block of statements on `c`:
/// `store.write(job!(|c| { …; Ok(v) })).await`. What the block uses is
/// moved into it.
#[macro_export]
macro_rules! job {
    (|$c:ident| $body:block) => {
        Box::new(move |$c: &mut $crate::door::Conn| {
            $crate::door::boxed(async move $body)
        })
    };
}
pub use crate::job;

/// Boxes a job's future (for [`job!`], so its users need no `futures`).
pub fn boxed<'c, T>(
    job: impl std::future::Future<Output = Result<T>> + Send + 'c,
) -> BoxFuture<'c, Result<T>> {
    Box::pin(job)
}

/// A write transaction, run by [`Door::write`] inside a transaction (or a
/// savepoint of a group commit's transaction): it runs its statements on
/// the connection it is given and must not wait for anything else.
pub type WriteJob<T> = Box<dyn for<'c> FnOnce(&'c mut Conn) -> BoxFuture<'c, Result<T>> + Send>;

/// A job queued for the SQLite writer, with the caller waiting for its
/// answer.
struct Queued<T> {
    job: WriteJob<T>,
    answer: tokio::sync::oneshot::Sender<Result<T>>,
}

/// A queued job of any answer's type, as the writer runs it.
trait Pending: Send {
    /// Runs the job; whether it succeeded, and how to answer its caller
    /// once the batch has committed (or failed to: the commit's error).
    fn run<'c>(self: Box<Self>, conn: &'c mut Conn) -> BoxFuture<'c, (bool, Answer)>;
    /// Answers the caller without running the job.
    fn refuse(self: Box<Self>, e: &Error);
}

type Answer = Box<dyn FnOnce(Option<&Error>) + Send>;

impl<T: Send + 'static> Pending for Queued<T> {
    fn run<'c>(self: Box<Self>, conn: &'c mut Conn) -> BoxFuture<'c, (bool, Answer)> {
        let Queued { job, answer } = *self;
        Box::pin(async move {
            let done = job(conn).await;
            let ok = done.is_ok();
            let answer: Answer = Box::new(move |commit: Option<&Error>| {
                let _ = answer.send(match (done, commit) {
                    (Ok(_), Some(e)) => Err(e.clone()),
                    (done, _) => done,
                });
            });
            (ok, answer)
        })
    }

    fn refuse(self: Box<Self>, e: &Error) {
        let _ = self.answer.send(Err(e.clone()));
    }
}

/// How long a SQLite reader waits for a lock. It holds up a Tokio worker
/// while it waits; WAL readers wait only in rare cases (a connection
/// recovering the log).
const READ_BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// How long the SQLite writer waits for a lock (another process's write,
/// or a checkpoint).
const WRITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// A write-ahead log this long (32 MiB of 4 KiB pages) is restarted by
/// [`Door::checkpoint`]; a shorter one is left to passive checkpoints.
const WAL_RESTART_FRAMES: i64 = 8192;
/// How long a checkpoint waits for the writer and readers to let it
/// restart the log.
const WAL_RESTART_WAIT: Duration = Duration::from_millis(250);

/// One per store.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Door {
    Sqlite(SqliteDoor),
    Postgres(Pool<AsyncPgConnection>),
}

pub(crate) struct SqliteDoor {
    path: PathBuf,
    readers: Mutex<Vec<SqliteConnection>>,
    queue: Mutex<Vec<Box<dyn Pending>>>,
    writer: tokio::sync::Mutex<Conn>,
    /// The connection of `Door::checkpoint`, opened on first use.
    checkpointer: Mutex<Option<SqliteConnection>>,
}

impl std::fmt::Debug for Door {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Door::Sqlite(door) => write!(f, "Door::Sqlite({})", door.path.display()),
            Door::Postgres(_) => f.write_str("Door::Postgres"),
        }
    }
}

/// A reader connection, back to its door when dropped.
pub struct Reader<'d> {
    conn: Option<Conn>,
    home: Option<&'d SqliteDoor>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        // Only `drop` takes it.
        self.conn.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for Reader<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        self.conn.as_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let (Some(home), Some(Conn::Sqlite(conn))) = (self.home, self.conn.take()) {
            home.readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
        }
    }
}

impl Door {
    /// The SQLite database file at `path`, which the migrations have made.
    pub(crate) fn sqlite(path: &Path) -> Result<Door> {
        let mut writer = open_sqlite(path, WRITE_BUSY_TIMEOUT)?;
        // The writer never checkpoints by itself (see `Door::checkpoint`).
        writer
            .batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; \
                 PRAGMA journal_size_limit = 67108864;",
            )
            .map_err(db_error)?;
        Ok(Door::Sqlite(SqliteDoor {
            path: path.to_path_buf(),
            readers: Mutex::new(Vec::new()),
            queue: Mutex::new(Vec::new()),
            writer: tokio::sync::Mutex::new(Conn::Sqlite(writer)),
            checkpointer: Mutex::new(None),
        }))
    }

    pub(crate) fn postgres(url: &str, max: u32, wait: Duration) -> Result<Door> {
        let mut config = ManagerConfig::default();
        // No ping before every use: one more round trip per query. A
        // connection PostgreSQL dropped while idle fails its next query
        // (a 503) and is then replaced.
        config.recycling_method = RecyclingMethod::Fast;
        let manager = AsyncDieselConnectionManager::new_with_config(url, config);
        let pool = Pool::builder(manager)
            .max_size(usize::try_from(max).unwrap_or(16))
            .wait_timeout(Some(wait))
            .create_timeout(Some(wait))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map_err(|e| Error::internal(format!("database pool: {e}")))?;
        Ok(Door::Postgres(pool))
    }

    /// A connection for reads.
    pub(crate) async fn reader(&self) -> Result<Reader<'_>> {
        match self {
            Door::Sqlite(door) => {
                let idle = door.readers.lock().unwrap_or_else(|e| e.into_inner()).pop();
                let conn = match idle {
                    Some(conn) => conn,
                    None => {
                        // Read-write, then query-only: a WAL reader writes
                        // the shared-memory index.
                        let mut conn = open_sqlite(&door.path, READ_BUSY_TIMEOUT)?;
                        conn.batch_execute("PRAGMA query_only = true")
                            .map_err(db_error)?;
                        conn
                    }
                };
                Ok(Reader {
                    conn: Some(Conn::Sqlite(conn)),
                    home: Some(door),
                })
            }
            Door::Postgres(pool) => Ok(Reader {
                conn: Some(Conn::Pg(pool.get().await.map_err(pool_error)?)),
                home: None,
            }),
        }
    }

    /// Runs `job` as one transaction: committed when it returns `Ok`,
    /// undone when it returns `Err`.
    pub(crate) async fn write<T: Send + 'static>(&self, job: WriteJob<T>) -> Result<T> {
        match self {
            Door::Postgres(pool) => {
                let mut conn = Conn::Pg(pool.get().await.map_err(pool_error)?);
                begin(&mut conn, false).await.map_err(db_error)?;
                let done = job(&mut conn).await;
                end(&mut conn, done.is_ok()).await.map_err(db_error)?;
                done
            }
            Door::Sqlite(door) => door.write(job).await,
        }
    }

    /// How many connections are in use and idle, by pool.
    pub(crate) fn connections(&self) -> Vec<(&'static str, u32, u32)> {
        match self {
            Door::Sqlite(door) => {
                let idle = door.readers.lock().map(|r| r.len()).unwrap_or(0);
                let writing = u32::from(door.writer.try_lock().is_err());
                vec![
                    ("read", 0, u32::try_from(idle).unwrap_or(u32::MAX)),
                    ("write", writing, 1 - writing),
                ]
            }
            Door::Postgres(pool) => {
                let status = pool.status();
                let idle = u32::try_from(status.available).unwrap_or(0);
                let size = u32::try_from(status.size).unwrap_or(0);
                vec![("pool", size.saturating_sub(idle), idle)]
            }
        }
    }

    /// Copies SQLite's write-ahead log into the database, blocking: run
    /// it off the async workers. The writer never checkpoints by itself:
    /// an automatic checkpoint would stall it, and every write queued
    /// behind it, for an fsync. So a passive checkpoint from a connection
    /// of its own copies what it can. Under a steady stream of writes,
    /// with readers always about, that never catches up and the log never
    /// starts afresh: it grew by 25 MB a second, and every page lookup
    /// slowed with it. So once the log is past [`WAL_RESTART_FRAMES`],
    /// the writer, between two batches, copies the rest and restarts it,
    /// waiting at most [`WAL_RESTART_WAIT`] for readers; if they do not
    /// let it, it tries again at the next call. Nothing to do on
    /// PostgreSQL.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        #[derive(diesel::QueryableByName)]
        struct Checkpoint {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            log: i64,
        }
        let Door::Sqlite(door) = self else {
            return Ok(());
        };
        let mut held = door.checkpointer.lock().unwrap_or_else(|e| e.into_inner());
        let conn = match held.take() {
            Some(conn) => conn,
            None => open_sqlite(&door.path, WAL_RESTART_WAIT)?,
        };
        let conn = held.insert(conn);
        let passive: Checkpoint = diesel::RunQueryDsl::get_result(
            diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)"),
            conn,
        )
        .map_err(db_error)?;
        drop(held);
        if passive.log < WAL_RESTART_FRAMES {
            return Ok(());
        }
        // On the writer, between batches: a restart from elsewhere would
        // wait for a writer that is never idle for long.
        let mut writer = door.writer.blocking_lock();
        let Conn::Sqlite(writer) = &mut *writer else {
            return Ok(());
        };
        let restarted = writer
            .batch_execute(&format!(
                "PRAGMA busy_timeout = {}; PRAGMA wal_checkpoint(RESTART);",
                WAL_RESTART_WAIT.as_millis()
            ))
            .map_err(db_error);
        writer
            .batch_execute(&format!(
                "PRAGMA busy_timeout = {}",
                WRITE_BUSY_TIMEOUT.as_millis()
            ))
            .map_err(db_error)?;
        restarted
    }

    /// Closes the pool (PostgreSQL); SQLite's connections close as the
    /// door is dropped.
    pub(crate) fn close(&self) {
        if let Door::Postgres(pool) = self {
            pool.close();
        }
    }
}

impl SqliteDoor {
    /// Queues `job`; runs the queue if no one else is.
    async fn write<T: Send + 'static>(&self, job: WriteJob<T>) -> Result<T> {
        let (sender, mut answer) = tokio::sync::oneshot::channel::<Result<T>>();
        self.queue
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Box::new(Queued {
                job,
                answer: sender,
            }));
        let mut writer = self.writer.lock().await;
        // A writer that had the connection before us may have run our job
        // with its own: it answered before it let go.
        if let Ok(done) = answer.try_recv() {
            return done;
        }
        let jobs = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|e| e.into_inner()));
        run_batch(&mut writer, jobs).await;
        drop(writer);
        answer
            .await
            .unwrap_or_else(|_| Err(Error::internal("a write was dropped unanswered")))
    }
}

/// Runs queued jobs in one transaction, each in its savepoint, commits,
/// and answers each. On SQLite nothing in here suspends, so a caller
/// that goes away cannot leave the batch half-run.
async fn run_batch(conn: &mut Conn, jobs: Vec<Box<dyn Pending>>) {
    if let Conn::Sqlite(c) = conn {
        // A batch that panicked left its transaction open.
        if AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()
            .ok()
            .flatten()
            .is_some()
        {
            let _ = AnsiTransactionManager::rollback_transaction(c);
        }
    }
    if let Err(e) = begin(conn, true).await {
        let e = db_error(e);
        jobs.into_iter().for_each(|job| job.refuse(&e));
        return;
    }
    let mut answers = Vec::with_capacity(jobs.len());
    for job in jobs {
        if let Err(e) = begin(conn, false).await {
            job.refuse(&db_error(e));
            continue;
        }
        let (ok, answer) = job.run(conn).await;
        let ended = end(conn, ok).await.err().map(db_error);
        answers.push((answer, ended));
    }
    let commit = end(conn, true).await.err().map(db_error);
    if commit.is_some() {
        let _ = end(conn, false).await;
    }
    for (answer, failed) in answers {
        answer(failed.as_ref().or(commit.as_ref()));
    }
}

/// Begins a transaction, or a savepoint inside one; `immediate` takes
/// SQLite's write lock at once.
async fn begin(conn: &mut Conn, immediate: bool) -> diesel::QueryResult<()> {
    match conn {
        Conn::Sqlite(c) if immediate => {
            AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")
        }
        Conn::Sqlite(c) => AnsiTransactionManager::begin_transaction(c),
        Conn::Pg(c) => {
            <AsyncPgConnection as AsyncConnection>::TransactionManager::begin_transaction(&mut **c)
                .await
        }
    }
}

/// Commits (`ok`) or rolls back the innermost transaction or savepoint.
async fn end(conn: &mut Conn, ok: bool) -> diesel::QueryResult<()> {
    type Pg = <AsyncPgConnection as AsyncConnection>::TransactionManager;
    match (conn, ok) {
        (Conn::Sqlite(c), true) => AnsiTransactionManager::commit_transaction(c),
        (Conn::Sqlite(c), false) => AnsiTransactionManager::rollback_transaction(c),
        (Conn::Pg(c), true) => Pg::commit_transaction(&mut **c).await,
        (Conn::Pg(c), false) => Pg::rollback_transaction(&mut **c).await,
    }
}

fn open_sqlite(path: &Path, busy: Duration) -> Result<SqliteConnection> {
    let url = path
        .to_str()
        .ok_or_else(|| Error::internal("the database path is not UTF-8"))?;
    let mut conn = SqliteConnection::establish(url)
        .map_err(|e| Error::unavailable(format!("database unreachable: {e}")))?;
    conn.batch_execute(&format!(
        "PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        busy.as_millis()
    ))
    .map_err(db_error)?;
    Ok(conn)
}

fn pool_error(e: diesel_async::pooled_connection::deadpool::PoolError) -> Error {
    Error::unavailable(format!("database unreachable: {e}"))
}

/// Maps a database failure: a lost connection is a 503, the rest are 500s
/// whose cause goes to the log only.
pub fn db_error(e: DieselError) -> Error {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
        | DieselError::BrokenTransactionManager => {
            Error::unavailable(format!("database unreachable: {e}"))
        }
        other => Error::internal(format!("database error: {other}")),
    }
}

/// If `e` breaks a unique constraint whose name (PostgreSQL) or column
/// list (SQLite's message: `table.column`) contains `constraint`.
pub fn breaks_unique(e: &DieselError, constraint: &str) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => info
            .constraint_name()
            .unwrap_or_else(|| info.message())
            .contains(constraint),
        _ => false,
    }
}

/// `done`, with a broken unique constraint named by `constraint` (see
/// [`breaks_unique`]) answered by `taken`, and any other failure mapped.
pub fn unless_taken<T>(
    done: diesel::QueryResult<T>,
    constraint: &str,
    taken: impl FnOnce() -> Error,
) -> Result<T> {
    match done {
        Err(e) if breaks_unique(&e, constraint) => Err(taken()),
        done => done.map_err(db_error),
    }
}

/// Serializes transactions that check an invariant spanning rows before
/// they write (no cycle in the organization tree, the root keeps an
/// admin, a user's home exists): on PostgreSQL two such transactions
/// could each pass the check and together break it. A transaction-scoped
/// advisory lock orders them; on SQLite writers are already serialized.
pub(crate) async fn lock_invariants(conn: &mut Conn) -> Result<()> {
    if let Conn::Pg(_) = conn {
        execute_batch(conn, "SELECT pg_advisory_xact_lock(7001)").await?;
    }
    Ok(())
}

diesel::define_sql_function! {
    /// SQL's `lower`, for names compared case-insensitively.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Refuses (409, 2012) to delete an object while `held` rows still hold
/// on to it; the count goes into the error's context under `key`.
pub(crate) fn refuse_while_held(
    object_type: &str,
    id: impl std::fmt::Display,
    held: i64,
    key: &str,
    message: &str,
) -> Result<()> {
    if held > 0 {
        return Err(Error::wrong_state(object_type, id, message).with(key, held));
    }
    Ok(())
}

/// Runs SQL text of one or more statements, without parameters (a
/// migration, a lock).
pub async fn execute_batch(conn: &mut Conn, sql: &str) -> Result<()> {
    match conn {
        Conn::Sqlite(c) => c.batch_execute(sql),
        Conn::Pg(c) => diesel_async::SimpleAsyncConnection::batch_execute(&mut **c, sql).await,
    }
    .map_err(db_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tables::nodes;
    use crate::{Store, StoreOptions};
    use diesel::prelude::*;
    use futures::FutureExt;

    async fn store(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        Store::connect(&url, &StoreOptions::default())
            .await
            .expect("store")
    }

    fn insert(id: String, fail: bool) -> WriteJob<String> {
        Box::new(move |c| {
            async move {
                run!(c.execute(diesel::insert_into(nodes::table).values((
                    nodes::id.eq(&id),
                    nodes::started_at.eq(1),
                    nodes::lease_until.eq(1),
                ))))?;
                if fail {
                    return Err(Error::invalid("id", "refused after its insert"));
                }
                Ok(id)
            }
            .boxed()
        })
    }

    async fn ids(store: &Store, prefix: &str) -> Vec<String> {
        let mut c = store.door.reader().await.expect("reader");
        run!(c.load(
            nodes::table
                .select(nodes::id)
                .filter(nodes::id.like(format!("{prefix}%")))
                .order(nodes::id)
        ))
        .expect("ids")
    }

    /// Writes at once share the writer's transactions, and one that fails
    /// (its own error, or a statement's) undoes only itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_commit_alone_and_fail_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = store(&dir).await;
        let prefix = uuid::Uuid::now_v7().to_string();
        let seed = format!("{prefix}-seed");
        store
            .write(insert(seed.clone(), false))
            .await
            .expect("seed");
        let writes = (0..200).map(|i| {
            let store = store.clone();
            let id = format!("{prefix}-{i:03}");
            // An id taken before: a failed statement.
            let taken = seed.clone();
            tokio::spawn(async move {
                match i % 10 {
                    9 => store.write(insert(taken, false)).await,
                    7 => store.write(insert(id, true)).await,
                    _ => store.write(insert(id, false)).await,
                }
            })
        });
        let answers = futures::future::join_all(writes).await;
        let mut expected = vec![seed];
        for (i, answer) in answers.into_iter().enumerate() {
            let answer = answer.expect("joined");
            match i % 10 {
                7 | 9 => assert!(answer.is_err(), "write {i} fails: {answer:?}"),
                _ => {
                    assert_eq!(answer.expect("committed"), format!("{prefix}-{i:03}"));
                    expected.push(format!("{prefix}-{i:03}"));
                }
            }
        }
        expected.sort();
        assert_eq!(ids(&store, &prefix).await, expected);
    }
}
