use crate::door::{db_error, execute_batch, Door};
use nephele_common::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL: the pool's connections. (SQLite opens a reader per
    /// thread that reads at once, and one writer.)
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
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) door: Arc<Door>,
    access_generation: Arc<AtomicU64>,
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

/// The file of a `sqlite://PATH?…` (or `sqlite:PATH`) URL; `None` for
/// another URL or an in-memory database.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:") && !url.contains("mode=memory"))
        .then(|| PathBuf::from(path))
}

impl Store {
    /// Connects, applies the migrations of the backend, and returns the store.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store> {
        let door = if url.starts_with("sqlite:") {
            let path = sqlite_file(url).ok_or_else(|| {
                Error::invalid(
                    "databaseUrl",
                    "must name a database file: an in-memory database cannot be shared by the \
                     server's connections",
                )
            })?;
            Door::sqlite(&path)?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Door::postgres(url, options.max_connections.max(2), options.acquire_timeout)?
        } else {
            return Err(Error::invalid(
                "databaseUrl",
                "must start with sqlite:// or postgres://",
            ));
        };
        let store = Store {
            door: Arc::new(door),
            access_generation: Arc::new(AtomicU64::new(0)),
        };
        store.migrate(&crate::migrate::STORE).await?;
        Ok(store)
    }

    /// Each pool's connections: (pool, in use, idle).
    pub fn pool_connections(&self) -> Vec<(&'static str, u32, u32)> {
        self.door.connections()
    }

    /// Moves on after every change this process makes to users, their
    /// roles, roles, API keys, API clients or organizations. A cache of
    /// principals or ancestries notes the generation before it reads and
    /// trusts an entry only while the generation is unchanged.
    #[must_use]
    pub fn access_generation(&self) -> u64 {
        self.access_generation.load(Ordering::Acquire)
    }

    pub(crate) fn access_change(&self) -> AccessChange<'_> {
        AccessChange(&self.access_generation)
    }

    /// Copies SQLite's write-ahead log into the database (see
    /// [`Door::checkpoint`]). Called every second in the background;
    /// nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<()> {
        let door = self.door.clone();
        tokio::task::spawn_blocking(move || door.checkpoint())
            .await
            .map_err(|e| Error::internal(format!("checkpoint: {e}")))?
    }

    /// Is the database reachable? (`/readyz`)
    pub async fn ping(&self) -> Result<()> {
        let mut c = self.door.reader().await?;
        execute_batch(&mut c, "SELECT 1").await
    }

    /// A connection for reads, for [`crate::run!`].
    pub async fn reader(&self) -> Result<crate::door::Reader<'_>> {
        self.door.reader().await
    }

    /// Runs `job` through the door as one write transaction.
    pub async fn write<T: Send + 'static>(&self, job: crate::door::WriteJob<T>) -> Result<T> {
        self.door.write(job).await
    }

    pub async fn close(&self) {
        self.door.close();
    }
}

/// Copies a SQLite database file, consistently, while servers use it
/// (`VACUUM INTO`: one read transaction, so the copy is of one moment,
/// and writers go on). `to` must not exist.
pub fn backup_sqlite(database: &Path, to: &Path) -> Result<()> {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let source = database
        .to_str()
        .ok_or_else(|| Error::internal("the database path is not UTF-8"))?;
    let mut conn = diesel::SqliteConnection::establish(&format!("file:{source}?mode=ro"))
        .map_err(|e| Error::internal(format!("opening {}: {e}", database.display())))?;
    conn.batch_execute("PRAGMA busy_timeout = 10000")
        .map_err(db_error)?;
    let target = to
        .to_str()
        .ok_or_else(|| Error::internal("the backup path is not UTF-8"))?;
    diesel::RunQueryDsl::execute(
        diesel::sql_query("VACUUM INTO ?").bind::<diesel::sql_types::Text, _>(target),
        &mut conn,
    )
    .map_err(|e| Error::internal(format!("copying to {}: {e}", to.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_name_their_file() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/nephele/nephele.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/nephele/nephele.db"))
        );
        assert_eq!(
            sqlite_file("sqlite:data/n.db"),
            Some(PathBuf::from("data/n.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://x.db?mode=memory"), None);
        assert_eq!(sqlite_file("postgres://h/db"), None);
    }

    #[tokio::test]
    async fn in_memory_databases_are_refused() {
        let refused = Store::connect("sqlite::memory:", &StoreOptions::default())
            .await
            .expect_err("refused");
        assert_eq!(refused.details()[0].context["field"], "databaseUrl");
    }
}
