use crate::door::Door;
use crate::local::{LocalReads, LocalWriter};
use nephele_common::{Error, Result};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// How long a SQLite statement waits for a lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The same for a read in the calling thread (`local`), which holds up a
/// Tokio worker while it waits. WAL readers wait only in rare cases (a
/// connection recovering the log).
const LOCAL_BUSY_TIMEOUT: Duration = Duration::from_secs(1);
/// A write-ahead log this long (32 MiB of 4 KiB pages) is restarted by the
/// writer; a shorter one is left to passive checkpoints.
const WAL_RESTART_FRAMES: i64 = 8192;
/// How long the writer waits for readers to let it restart the log.
const WAL_RESTART_WAIT: Duration = Duration::from_millis(250);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections for readers (PostgreSQL: the whole pool).
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The database. Cheap to clone.
///
/// SQLite allows one writer at a time; rather than let concurrent write
/// transactions collide (`SQLITE_BUSY`), writes go through a pool of one
/// connection and reads through the rest, which WAL lets run alongside.
/// On PostgreSQL both are the same pool.
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) read: AnyPool,
    pub(crate) write: AnyPool,
    backend: Backend,
    access_generation: Arc<AtomicU64>,
    /// diesel's connections (see `door`): the store is moving there.
    pub(crate) door: Arc<Door>,
    /// SQLite's point reads in the calling thread (see `local`).
    pub(crate) local: Option<Arc<LocalReads>>,
    /// SQLite's group-commit transactions in the calling thread (see
    /// `write`); with `local`, or neither.
    pub(crate) local_writer: Option<Arc<LocalWriter>>,
}

/// Marks a change to who may do what; the generation moves on when it is
/// dropped, after the change is committed (or abandoned), on every path
/// out of the function that holds it.
pub(crate) struct AccessChange<'a>(&'a AtomicU64);

impl Drop for AccessChange<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// Connects, applies the migrations of the backend, and returns the store.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.contains(":memory:") || url.contains("mode=memory") {
            return Err(Error::invalid(
                "databaseUrl",
                "must name a database file: an in-memory database cannot be shared by the \
                 server's connections",
            ));
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(Error::invalid(
                "databaseUrl",
                "must start with sqlite:// or postgres://",
            ));
        };
        let connect = AnyConnectOptions::from_str(url)
            .map_err(|e| Error::invalid("databaseUrl", e.to_string()))?
            .log_statements(tracing::log::LevelFilter::Trace)
            .log_slow_statements(tracing::log::LevelFilter::Warn, Duration::from_secs(1));
        let pool = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .min_connections(0)
                .acquire_timeout(options.acquire_timeout)
                // No ping before every acquire: it is one more round trip
                // per query. A connection PostgreSQL dropped while it was
                // idle fails its next query (a 503) and is then replaced,
                // as deadpool's default does.
                .test_before_acquire(false)
                .after_connect(move |conn, _meta| {
                    Box::pin(async move {
                        if backend == Backend::Sqlite {
                            conn.execute(&*format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA busy_timeout = {}; PRAGMA foreign_keys = ON; \
                                 PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
                                BUSY_TIMEOUT.as_millis()
                            ))
                            .await?;
                        }
                        Ok(())
                    })
                })
        };
        let (read, write) = match backend {
            Backend::Sqlite => {
                let write = pool(1)
                    .connect_with(connect.clone())
                    .await
                    .map_err(unavailable)?;
                let read = pool(options.max_connections.max(2))
                    .connect_with(connect)
                    .await
                    .map_err(unavailable)?;
                (read, write)
            }
            Backend::Postgres => {
                let p = pool(options.max_connections.max(2))
                    .connect_with(connect)
                    .await
                    .map_err(unavailable)?;
                (p.clone(), p)
            }
        };
        let local = match backend {
            Backend::Sqlite => LocalReads::new(url, LOCAL_BUSY_TIMEOUT).map(Arc::new),
            Backend::Postgres => None,
        };
        let door = match backend {
            Backend::Sqlite => {
                let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(|e| Error::invalid("databaseUrl", e.to_string()))?
                    .get_filename()
                    .to_path_buf();
                Door::sqlite(&path)?
            }
            Backend::Postgres => {
                Door::postgres(url, options.max_connections.max(2), options.acquire_timeout)?
            }
        };
        let store = Store {
            door: Arc::new(door),
            read,
            write,
            backend,
            access_generation: Arc::new(AtomicU64::new(0)),
            local_writer: local
                .as_deref()
                .map(|reads| Arc::new(LocalWriter::new(reads, BUSY_TIMEOUT))),
            local,
        };
        store.migrate(&crate::migrate::STORE).await?;
        Ok(store)
    }

    /// Moves on after every change this process makes to users, their
    /// roles, roles, API keys, API clients or organizations. A cache of
    /// principals or ancestries notes the generation before it reads and
    /// trusts an entry only while the generation is unchanged.
    #[must_use]
    /// Each pool's connections: (pool, in use, idle).
    pub fn pool_connections(&self) -> Vec<(&'static str, u32, u32)> {
        let mut pools: Vec<_> = [("read", &self.read), ("write", &self.write)]
            .into_iter()
            .map(|(name, pool)| {
                let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX);
                (name, pool.size().saturating_sub(idle), idle)
            })
            .collect();
        pools.extend(self.door.connections());
        pools
    }

    pub fn access_generation(&self) -> u64 {
        self.access_generation.load(Ordering::Acquire)
    }

    pub(crate) fn access_change(&self) -> AccessChange<'_> {
        AccessChange(&self.access_generation)
    }

    /// Copies SQLite's write-ahead log into the database. The writer never
    /// checkpoints by itself: an automatic checkpoint would stall the one
    /// writer, and every request queued behind it, for an fsync. So a
    /// passive checkpoint from a reader connection copies what it can.
    /// Under a steady stream of writes, with readers always about, that
    /// never catches up and the log never starts afresh: it grew by 25 MB
    /// a second, and every page lookup slowed with it. So once the log is
    /// past [`WAL_RESTART_FRAMES`], the writer copies the rest and restarts
    /// it, waiting at most [`WAL_RESTART_WAIT`] for readers; if they do not
    /// let it, it tries again at the next call. Called every second in the
    /// background; nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<()> {
        if self.backend == Backend::Sqlite {
            use sqlx::Row;
            let frames: i64 = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .fetch_one(&self.read)
                .await
                .and_then(|row| row.try_get(1))
                .map_err(db_error)?;
            if frames < WAL_RESTART_FRAMES {
                return Ok(());
            }
            let mut writer = self.write.acquire().await.map_err(db_error)?;
            for pragma in [
                format!("PRAGMA busy_timeout = {}", WAL_RESTART_WAIT.as_millis()),
                "PRAGMA wal_checkpoint(RESTART)".to_owned(),
                format!("PRAGMA busy_timeout = {}", BUSY_TIMEOUT.as_millis()),
            ] {
                sqlx::query(&pragma)
                    .execute(&mut *writer)
                    .await
                    .map_err(db_error)?;
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Is the database reachable? (`/readyz`)
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.read)
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }
}

fn unavailable(e: sqlx::Error) -> Error {
    Error::unavailable(format!("database unreachable: {e}"))
}

/// Maps a database failure: lost connections are 503, the rest are 500s
/// whose cause goes to the log only.
pub(crate) fn db_error(e: sqlx::Error) -> Error {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => unavailable(e),
        other => Error::internal(format!("database error: {other}")),
    }
}

/// If `e` is a unique-constraint violation, the text that names the
/// constraint (PostgreSQL: its name; SQLite: `table.column` in the message).
pub(crate) fn unique_violation(e: &sqlx::Error) -> Option<String> {
    let db = e.as_database_error()?;
    if !db.is_unique_violation() {
        return None;
    }
    Some(
        db.constraint()
            .map(str::to_owned)
            .unwrap_or_else(|| db.message().to_owned()),
    )
}

pub(crate) fn parse_id<T: FromStr>(s: &str) -> Result<T> {
    s.parse::<T>()
        .map_err(|_| Error::internal(format!("corrupt id in database: {s:?}")))
}

/// Serializes transactions that check an invariant spanning rows before
/// they write (no cycle in the organization tree, the root keeps an admin):
/// on PostgreSQL two such transactions could each pass the check and
/// together break it. A transaction-scoped advisory lock orders them; on
/// SQLite writers are already serialized.
pub(crate) async fn lock_invariants(
    store: &Store,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
) -> Result<()> {
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock(7001)")
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Column getters that map failures like every other database error.
pub(crate) fn col<'r, T>(r: &'r sqlx::any::AnyRow, name: &str) -> Result<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    r.try_get(name).map_err(db_error)
}

pub(crate) fn col_id<T: FromStr>(r: &sqlx::any::AnyRow, name: &str) -> Result<T> {
    parse_id(&col::<String>(r, name)?)
}

pub(crate) fn col_opt_id<T: FromStr>(r: &sqlx::any::AnyRow, name: &str) -> Result<Option<T>> {
    col::<Option<String>>(r, name)?
        .as_deref()
        .map(parse_id)
        .transpose()
}

pub(crate) fn col_time(r: &sqlx::any::AnyRow, name: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    Ok(nephele_common::clock::from_micros(col(r, name)?))
}

/// The SQL type of a column of a batch read from JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) enum JsonType {
    Text,
    Integer,
}

impl Store {
    /// A batch of rows, bound as one JSON array of objects at `$1`, as a
    /// table named `alias` with `columns`: one statement (and one round
    /// trip to the database) for the whole batch, and one prepared
    /// statement whatever the batch's size. (The group-commit writers
    /// take theirs from [`crate::write::WriteTx::rows`].)
    // No statement through sqlx uses it since the notary came through the
    // door; it goes with the rest of the JSON batches.
    #[allow(dead_code)]
    pub(crate) fn json_rows(&self, alias: &str, columns: &[(&str, JsonType)]) -> String {
        json_rows(self.backend, alias, columns)
    }
}

/// See [`Store::json_rows`].
pub(crate) fn json_rows(backend: Backend, alias: &str, columns: &[(&str, JsonType)]) -> String {
    match backend {
        Backend::Sqlite => {
            let fields = columns
                .iter()
                .map(|(name, _)| format!("value ->> '{name}' AS {name}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!("(SELECT {fields} FROM json_each($1)) AS {alias}")
        }
        Backend::Postgres => {
            let fields = columns
                .iter()
                .map(|(name, ty)| match ty {
                    JsonType::Text => format!("{name} text"),
                    JsonType::Integer => format!("{name} bigint"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("jsonb_to_recordset($1::jsonb) AS {alias}({fields})")
        }
    }
}

impl Store {
    /// SQL for a row as one JSON text: an object of `columns` (`a, b, …`)
    /// under their names.
    pub(crate) fn json_object_sql(&self, columns: &str) -> String {
        let fields = json_object_fields(columns);
        match self.backend {
            Backend::Sqlite => format!("json_object({fields})"),
            Backend::Postgres => format!("json_build_object({fields})::text"),
        }
    }

    /// SQL for a row as one JSON text: an array of `columns`' values.
    pub(crate) fn json_array_sql(&self, columns: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_array({columns})"),
            Backend::Postgres => format!("json_build_array({columns})::text"),
        }
    }
}

/// A row as a JSON array (see [`Store::json_array_sql`]), as `T`.
pub(crate) fn from_json_row<T: serde::de::DeserializeOwned>(json: &str) -> Result<T> {
    serde_json::from_str(json).map_err(|e| Error::internal(format!("corrupt row {json:?}: {e}")))
}

/// The arguments of a JSON object of `columns` (`a, b, …`): `'a', a, …`.
pub(crate) fn json_object_fields(columns: &str) -> String {
    columns
        .split(", ")
        .map(|c| format!("'{c}', {c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The JSON array that [`Store::json_rows`] reads.
pub(crate) fn json_batch(rows: &[serde_json::Value]) -> String {
    // Only a map with keys that are not strings fails to serialize, and
    // a `Value`'s keys are strings.
    serde_json::to_string(rows).unwrap_or_default()
}

/// Copies a SQLite database file, consistently, while servers use it
/// (`VACUUM INTO`: one read transaction, so the copy is of one moment,
/// and writers go on). `to` must not exist.
pub fn backup_sqlite(database: &std::path::Path, to: &std::path::Path) -> Result<()> {
    let conn = rusqlite::Connection::open_with_flags(
        database,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::internal(format!("opening {}: {e}", database.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| Error::internal(e.to_string()))?;
    let target = to
        .to_str()
        .ok_or_else(|| Error::internal("the backup path is not UTF-8"))?;
    conn.execute("VACUUM INTO ?1", [target])
        .map_err(|e| Error::internal(format!("copying to {}: {e}", to.display())))?;
    Ok(())
}
