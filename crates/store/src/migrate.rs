//! Migrations: plain SQL files, one tree per backend, applied in order
//! through the door and recorded in a table of their own. The store's are
//! recorded in `_sqlx_migrations`, in the form sqlx gave it (a SHA-384 of
//! each file), so a database made by an older build upgrades in place.
//! Another owner of tables in the same database (the simulated
//! hypervisor) brings its own set, recorded in its own table.
//!
//! A set is applied in one transaction, under a lock (PostgreSQL: an
//! advisory lock; SQLite: the write lock), so nodes starting at once
//! apply it once, and a failing migration leaves nothing half-done. An
//! applied migration whose file has changed since stops the start.

use crate::door::{execute_batch, job, run, Conn};
use crate::Store;
use diesel::sql_types::{BigInt, Binary, Text};
use diesel::QueryableByName;
use nephele_common::{Error, Result};
use sha2::{Digest, Sha384};

/// One migration: the name of its file, `NNNN_description`, and its SQL.
pub type Migration = (&'static str, &'static str);

/// A set of migrations for both backends, and the table that records
/// which have been applied.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    pub table: &'static str,
    pub sqlite: &'static [Migration],
    pub postgres: &'static [Migration],
}

macro_rules! store_migrations {
    ($($name:literal),* $(,)?) => {
        Migrations {
            table: "_sqlx_migrations",
            sqlite: &[$(($name, include_str!(concat!("../migrations/sqlite/", $name, ".sql")))),*],
            postgres: &[$(($name, include_str!(concat!("../migrations/postgres/", $name, ".sql")))),*],
        }
    };
}

/// The version and description of `NNNN_description`, as sqlx recorded
/// them (the description's words apart).
fn parse_name(name: &str) -> Result<(i64, String)> {
    name.split_once('_')
        .and_then(|(version, description)| {
            Some((version.parse().ok()?, description.replace('_', " ")))
        })
        .ok_or_else(|| {
            Error::internal(format!(
                "a migration's name is not NNNN_description: {name}"
            ))
        })
}

/// The store's own tables.
pub(crate) const STORE: Migrations = store_migrations!(
    "0001_foundation",
    "0002_access",
    "0003_identity",
    "0004_instances",
    "0005_notary",
    "0006_client_tokens",
    "0007_login_throttle",
    "0008_user_sessions",
    "0009_client_refresh_tokens",
    "0010_public_verify",
    "0011_backends_agree",
    "0012_sim_leaves_the_store",
    "0013_account_states",
    "0014_mfa",
    "0015_sign_in",
    "0016_link_tokens",
    "0017_cli_client",
);

#[derive(QueryableByName)]
struct Applied {
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Binary)]
    checksum: Vec<u8>,
}

impl Store {
    /// Applies the migrations of `set` not yet applied.
    pub async fn migrate(&self, set: &'static Migrations) -> Result<()> {
        self.write(job!(|c| {
            let (list, record) = match c {
                Conn::Sqlite(_) => (set.sqlite, SQLITE_RECORD),
                Conn::Pg(_) => (set.postgres, POSTGRES_RECORD),
            };
            if let Conn::Pg(_) = c {
                execute_batch(c, "SELECT pg_advisory_xact_lock(7002)").await?;
            }
            execute_batch(c, &record.replace("{table}", set.table)).await?;
            let applied: Vec<Applied> = run!(c.load(diesel::sql_query(format!(
                "SELECT version, checksum FROM {} WHERE success ORDER BY version",
                set.table
            ))))?;
            for (name, sql) in list {
                let (version, description) = parse_name(name)?;
                let checksum = Sha384::digest(sql.as_bytes()).to_vec();
                match applied.iter().find(|a| a.version == version) {
                    Some(a) if a.checksum == checksum => continue,
                    Some(_) => {
                        return Err(Error::internal(format!(
                            "migration {name} was applied, and its file has changed since"
                        )))
                    }
                    None => {}
                }
                let started = std::time::Instant::now();
                execute_batch(c, sql).await.map_err(|e| {
                    Error::internal(format!(
                        "migration {name} failed: {}",
                        e.internal_message().unwrap_or_default()
                    ))
                })?;
                let took = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
                run!(c.execute(
                    diesel::sql_query(format!(
                        "INSERT INTO {} (version, description, success, checksum, \
                         execution_time) VALUES ($1, $2, TRUE, $3, $4)",
                        set.table
                    ))
                    .bind::<BigInt, _>(version)
                    .bind::<Text, _>(&description)
                    .bind::<Binary, _>(&checksum)
                    .bind::<BigInt, _>(took)
                ))?;
            }
            Ok(())
        }))
        .await
    }
}

/// The record table, as sqlx made it.
const SQLITE_RECORD: &str = "CREATE TABLE IF NOT EXISTS {table} ( \
    version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
    checksum BLOB NOT NULL, execution_time BIGINT NOT NULL)";

const POSTGRES_RECORD: &str = "CREATE TABLE IF NOT EXISTS {table} ( \
    version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, \
    checksum BYTEA NOT NULL, execution_time BIGINT NOT NULL)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_versions_and_descriptions() {
        assert_eq!(
            parse_name("0011_backends_agree").expect("a name"),
            (11, "backends agree".to_owned())
        );
        assert!(parse_name("backends").is_err());
        let names = |list: &[Migration]| list.iter().map(|(name, _)| *name).collect::<Vec<_>>();
        assert_eq!(names(STORE.sqlite), names(STORE.postgres));
    }

    fn sqlx_made(dir: &tempfile::TempDir) -> String {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let path = dir.path().join("t.db");
        let mut conn =
            diesel::SqliteConnection::establish(path.to_str().expect("utf-8")).expect("open");
        conn.batch_execute(include_str!("../fixtures/sqlx-0011.sql"))
            .expect("the fixture");
        format!("sqlite://{}?mode=rwc", path.display())
    }

    async fn recorded(store: &Store) -> Vec<(i64, String)> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            version: i64,
            #[diesel(sql_type = Text)]
            description: String,
        }
        let mut c = store.door.reader().await.expect("reader");
        let rows: Vec<Row> = run!(c.load(diesel::sql_query(
            "SELECT version, description FROM _sqlx_migrations ORDER BY version"
        )))
        .expect("records");
        rows.into_iter()
            .map(|r| (r.version, r.description))
            .collect()
    }

    /// A database sqlx's migrator made is taken over as it is: nothing is
    /// applied twice, and what comes after is recorded alike.
    #[tokio::test]
    async fn a_database_made_by_sqlx_upgrades_in_place() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = sqlx_made(&dir);
        let store = Store::connect(&url, &crate::StoreOptions::default())
            .await
            .expect("taken over");
        let records = recorded(&store).await;
        assert_eq!(records.len(), STORE.sqlite.len());
        assert_eq!(records[10], (11, "backends agree".to_owned()));
        assert_eq!(records[11], (12, "sim leaves the store".to_owned()));
    }

    /// An applied migration whose file changed stops the start.
    #[tokio::test]
    async fn a_changed_migration_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = sqlx_made(&dir);
        let store = Store::connect(&url, &crate::StoreOptions::default())
            .await
            .expect("taken over");
        static CHANGED: Migrations = Migrations {
            table: "_sqlx_migrations",
            sqlite: &[("0001_foundation", "SELECT 1")],
            postgres: &[],
        };
        let refused = store.migrate(&CHANGED).await.expect_err("refused");
        assert!(
            refused
                .internal_message()
                .is_some_and(|m| m.contains("has changed")),
            "{refused:?}"
        );
    }
}
