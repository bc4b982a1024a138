//! Point reads of SQLite in the task that asks for them.
//!
//! sqlx runs each SQLite connection on a thread of its own, so every query
//! is a handover to that thread and back, plus one more when the connection
//! goes back to its pool (sqlx pings it). On the 2-core virtual machines
//! Nephele is measured on, waking a sleeping thread costs far more than the
//! query: during `nephele bench get-instance`, the Tokio workers spent more
//! time runnable-but-waiting than running (`/proc/PID/task/*/schedstat`),
//! and the kernel's thread switching was the largest part of the profile.
//!
//! A read of one row by primary key is a few microseconds of SQLite work
//! from the page cache, less than parsing the request's JSON, so the
//! hottest ones run right here, on the calling thread, over a small set of
//! connections of their own. WAL mode lets readers run alongside the writer
//! without waiting for it. The group-commit writers have a connection
//! here too (`LocalWriter`, used by `write`); everything else still goes
//! through sqlx.

use nephele_common::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Any;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connections for reads in the calling thread. A read never awaits, so
/// no more connections are ever open than threads read at once.
#[derive(Debug)]
pub(crate) struct LocalReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    busy_timeout: Duration,
}

impl LocalReads {
    /// For the SQLite database file `url` names, once it exists; `None`
    /// for an in-memory database, which other connections cannot share.
    pub(crate) fn new(url: &str, busy_timeout: Duration) -> Option<LocalReads> {
        let options = SqliteConnectOptions::from_str(url).ok()?;
        let path = options.get_filename();
        if url.contains("mode=memory") || !path.is_file() {
            return None;
        }
        Some(LocalReads {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            busy_timeout,
        })
    }

    /// Runs `sql`, a query of one text column with `arg` as its only
    /// parameter (`$1`), and returns the first row's value.
    pub(crate) fn text(&self, sql: &str, arg: &str) -> Result<Option<String>> {
        self.row(sql, arg, |row| row.get::<_, String>(0))
    }

    /// Runs `sql`, a query with `arg` as its only parameter (`$1`), and
    /// returns what `read` makes of the first row.
    pub(crate) fn row<T>(
        &self,
        sql: &str,
        arg: &str,
        read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Option<T>> {
        let conn = match self.take() {
            Some(conn) => conn,
            None => self.open()?,
        };
        let value = conn
            .prepare_cached(sql)
            .and_then(|mut statement| statement.query_row([arg], read).optional())
            .map_err(local_error)?;
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(conn);
        Ok(value)
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn open(&self) -> Result<Connection> {
        // Read-write without create, then query-only: a WAL reader needs
        // to write the shared-memory index, which a read-only open forbids.
        let conn = open(&self.path, self.busy_timeout)?;
        conn.pragma_update(None, "query_only", true)
            .map_err(local_error)?;
        Ok(conn)
    }
}

/// The connection of the group-commit writers' transactions (see
/// `write`), and whose turn it is to write.
#[derive(Debug)]
pub(crate) struct LocalWriter {
    path: PathBuf,
    busy_timeout: Duration,
    pub(crate) turn: Arc<tokio::sync::Mutex<Turn>>,
    /// Writers waiting for the turn.
    pub(crate) waiting: AtomicUsize,
}

/// Held by the one writer whose turn it is.
#[derive(Debug, Default)]
pub(crate) struct Turn {
    conn: Option<Connection>,
    /// sqlx's write connection, held so that nothing writes through it
    /// meanwhile, and since when.
    pub(crate) sqlx: Option<(PoolConnection<Any>, Instant)>,
}

impl Turn {
    /// The connection, opened on first use with the settings of sqlx's
    /// connections (`db`).
    pub(crate) fn conn(&mut self, writer: &LocalWriter) -> Result<&Connection> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => {
                let conn = open(&writer.path, writer.busy_timeout)?;
                // The writer never checkpoints by itself, and the
                // statements of the batches are many more than rusqlite's
                // default cache: each batch's in a few sizes (`write::Rows`).
                conn.execute_batch(
                    "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 67108864;",
                )
                .map_err(local_error)?;
                conn.set_prepared_statement_cache_capacity(256);
                conn
            }
        };
        Ok(self.conn.insert(conn))
    }

    /// Rolls back a transaction left open (an error, or a caller that
    /// gave up); if that fails, forgets the connection, whose state is then
    /// unknown, and the next writer opens another.
    pub(crate) fn roll_back_open(&mut self) {
        let Some(conn) = &self.conn else { return };
        if conn.is_autocommit() {
            return;
        }
        if let Err(e) = conn.execute_batch("ROLLBACK") {
            tracing::error!(error = %e, "rollback of a write failed");
            self.conn = None;
        }
    }
}

impl LocalWriter {
    /// For the file of `reads`.
    pub(crate) fn new(reads: &LocalReads, busy_timeout: Duration) -> LocalWriter {
        LocalWriter {
            path: reads.path.clone(),
            busy_timeout,
            turn: Arc::default(),
            waiting: AtomicUsize::new(0),
        }
    }
}

fn open(path: &Path, busy_timeout: Duration) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| Error::unavailable(format!("database unreachable: {e}")))?;
    conn.busy_timeout(busy_timeout).map_err(local_error)?;
    Ok(conn)
}

pub(crate) fn local_error(e: rusqlite::Error) -> Error {
    Error::internal(format!("database error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_databases_are_left_to_sqlx() {
        assert!(LocalReads::new("sqlite::memory:", Duration::from_secs(1)).is_none());
        assert!(LocalReads::new("sqlite://:memory:", Duration::from_secs(1)).is_none());
    }

    #[test]
    fn reads_rows_of_the_file_and_never_writes_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("t.db");
        let writer = Connection::open(&file).expect("open");
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT); \
                 INSERT INTO t VALUES ('a', 'one');",
            )
            .expect("schema");
        let url = format!("sqlite://{}?mode=rwc", file.display());
        let reads = LocalReads::new(&url, Duration::from_secs(1)).expect("a file");
        let sql = "SELECT v FROM t WHERE id = $1";
        assert_eq!(reads.text(sql, "a").expect("read"), Some("one".into()));
        assert_eq!(reads.text(sql, "b").expect("read"), None);
        // A commit by another connection is seen by the next read.
        writer
            .execute("UPDATE t SET v = 'two' WHERE id = 'a'", [])
            .expect("update");
        assert_eq!(reads.text(sql, "a").expect("read"), Some("two".into()));
        assert!(reads
            .text("DELETE FROM t WHERE id = $1 RETURNING v", "a")
            .is_err());
        assert_eq!(reads.text(sql, "a").expect("read"), Some("two".into()));
    }
}
