//! Both backends' migrations describe the same schema: tables, columns,
//! types, nullability, primary keys, indexes, unique and foreign-key
//! constraints, read back from each database's own catalogue in one
//! backend-neutral form; and neither has a trigger (behaviour lives in
//! code or in both migrations).

use crate::support::*;
use nephele_store::{Store, StoreOptions};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    table: String,
    name: String,
    /// `text`, `integer`, `bytes`, …: the two backends' names made one.
    ty: String,
    not_null: bool,
    /// Position in the primary key, from 1; 0 when not part of it.
    primary_key: i64,
}

/// A secondary index, or the index behind a unique constraint. Indexes
/// made by `CREATE INDEX` are compared by name; those a constraint made
/// are named by each backend its own way, so only their columns count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Index {
    table: String,
    /// `None` for a constraint's index.
    name: Option<String>,
    columns: Vec<String>,
    unique: bool,
    /// Has a `WHERE` clause.
    partial: bool,
}

/// `(table, column, referenced table, referenced column, on delete)`.
type ForeignKey = (String, String, String, String, String);

/// What the migrations built, every list sorted.
#[derive(Debug, Default)]
struct Schema {
    columns: Vec<Column>,
    indexes: Vec<Index>,
    foreign_keys: Vec<ForeignKey>,
    triggers: Vec<String>,
}

const SQLITE_COLUMNS: &str = "SELECT m.name, p.name, lower(p.type), p.\"notnull\", p.pk \
    FROM sqlite_master m JOIN pragma_table_info(m.name) p \
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_%' ESCAPE '\\'";

const POSTGRES_COLUMNS: &str = "SELECT c.table_name::text, c.column_name::text, \
    lower(c.data_type::text), CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END::bigint, \
    COALESCE((SELECT k.ordinal_position FROM information_schema.table_constraints t \
      JOIN information_schema.key_column_usage k ON k.constraint_name = t.constraint_name \
       AND k.table_schema = t.table_schema AND k.table_name = t.table_name \
      WHERE t.constraint_type = 'PRIMARY KEY' AND t.table_schema = c.table_schema \
       AND t.table_name = c.table_name AND k.column_name = c.column_name), 0)::bigint \
    FROM information_schema.columns c \
    WHERE c.table_schema = current_schema() AND c.table_name NOT LIKE '\\_%' ESCAPE '\\'";

/// Every index but the primary key's, with its columns in order.
/// `origin` is `c` for `CREATE INDEX`, `u` for a unique constraint.
const SQLITE_INDEXES: &str = "SELECT m.name, l.name, l.\"unique\", l.partial, l.origin, \
    (SELECT group_concat(name, ',') FROM (SELECT i.name FROM pragma_index_info(l.name) i ORDER BY i.seqno)) \
    FROM sqlite_master m JOIN pragma_index_list(m.name) l \
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_%' ESCAPE '\\' \
    AND l.origin <> 'pk'";

const POSTGRES_INDEXES: &str = "SELECT t.relname::text, i.relname::text, \
    CASE WHEN ix.indisunique THEN 1 ELSE 0 END::bigint, \
    CASE WHEN ix.indpred IS NOT NULL THEN 1 ELSE 0 END::bigint, \
    CASE WHEN EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid) \
      THEN 'u' ELSE 'c' END, \
    array_to_string(ARRAY(SELECT a.attname FROM unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n), ',') \
    FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
    JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
    WHERE n.nspname = current_schema() AND NOT ix.indisprimary AND t.relname NOT LIKE '\\_%' ESCAPE '\\'";

const SQLITE_FOREIGN_KEYS: &str = "SELECT m.name, f.\"from\", f.\"table\", \
    COALESCE(f.\"to\", ''), upper(f.on_delete) \
    FROM sqlite_master m JOIN pragma_foreign_key_list(m.name) f \
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'";

const POSTGRES_FOREIGN_KEYS: &str = "SELECT cl.relname::text, a.attname::text, rt.relname::text, \
    ra.attname::text, CASE c.confdeltype WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' \
      WHEN 'd' THEN 'SET DEFAULT' WHEN 'r' THEN 'RESTRICT' ELSE 'NO ACTION' END \
    FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid \
    JOIN pg_class rt ON rt.oid = c.confrelid JOIN pg_namespace n ON n.oid = cl.relnamespace \
    CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(col, rcol) \
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.col \
    JOIN pg_attribute ra ON ra.attrelid = c.confrelid AND ra.attnum = k.rcol \
    WHERE c.contype = 'f' AND n.nspname = current_schema()";

const SQLITE_TRIGGERS: &str = "SELECT name FROM sqlite_master WHERE type = 'trigger'";

const POSTGRES_TRIGGERS: &str = "SELECT t.tgname::text FROM pg_trigger t \
    JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE NOT t.tgisinternal AND n.nspname = current_schema()";

/// One type name for what the two backends call the same thing.
fn normalize_type(ty: &str) -> String {
    match ty {
        "blob" | "bytea" => "bytes",
        "character varying" | "text" => "text",
        "integer" | "bigint" => "integer",
        other => other,
    }
    .to_owned()
}

/// The schema of the database at `url`, from its catalogue.
async fn schema(url: &str) -> Schema {
    sqlx::any::install_default_drivers();
    let db = sqlx::AnyPool::connect(url).await.expect("the database");
    let sqlite = url.starts_with("sqlite:");
    let pick = |s: &'static str, p: &'static str| if sqlite { s } else { p };
    let rows: Vec<(String, String, String, i64, i64)> =
        sqlx::query_as(pick(SQLITE_COLUMNS, POSTGRES_COLUMNS))
            .fetch_all(&db)
            .await
            .expect("columns");
    let mut columns: Vec<Column> = rows
        .into_iter()
        .map(|(table, name, ty, not_null, primary_key)| Column {
            table,
            name,
            ty: normalize_type(&ty),
            // SQLite lets a primary-key column hold NULL unless it says
            // NOT NULL; PostgreSQL never does.
            not_null: not_null != 0 || primary_key > 0,
            primary_key,
        })
        .collect();
    let rows: Vec<(String, String, i64, i64, String, String)> =
        sqlx::query_as(pick(SQLITE_INDEXES, POSTGRES_INDEXES))
            .fetch_all(&db)
            .await
            .expect("indexes");
    let mut indexes: Vec<Index> = rows
        .into_iter()
        .map(|(table, name, unique, partial, origin, columns)| Index {
            table,
            name: (origin != "u").then_some(name),
            unique: unique != 0,
            partial: partial != 0,
            columns: columns.split(',').map(str::to_owned).collect(),
        })
        .collect();
    let mut foreign_keys: Vec<ForeignKey> =
        sqlx::query_as(pick(SQLITE_FOREIGN_KEYS, POSTGRES_FOREIGN_KEYS))
            .fetch_all(&db)
            .await
            .expect("foreign keys");
    let mut triggers: Vec<String> = sqlx::query_scalar(pick(SQLITE_TRIGGERS, POSTGRES_TRIGGERS))
        .fetch_all(&db)
        .await
        .expect("triggers");
    db.close().await;
    columns.sort();
    indexes.sort();
    foreign_keys.sort();
    triggers.sort();
    Schema {
        columns,
        indexes,
        foreign_keys,
        triggers,
    }
}

#[tokio::test]
async fn sqlite_and_postgres_schemas_stay_in_step() {
    let Some(admin) = postgres_admin_url() else {
        // Runs in the PostgreSQL suite (NEPHELE_TEST_DATABASE_URL), which CI always runs.
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sqlite_url = nephele::config::sqlite_url(dir.path());
    let sqlite = Store::connect(&sqlite_url, &StoreOptions::default())
        .await
        .unwrap();
    let pg = PgDatabase::create(&admin).await;
    let postgres = Store::connect(&pg.url, &StoreOptions::default())
        .await
        .unwrap();
    sqlite.close().await;
    postgres.close().await;
    let a = schema(&sqlite_url).await;
    let b = schema(&pg.url).await;
    assert!(a.columns.len() > 50 && a.indexes.len() > 20 && a.foreign_keys.len() > 5);
    // Part by part, so a failure names what differs.
    assert_eq!(a.columns, b.columns);
    assert_eq!(a.indexes, b.indexes);
    assert_eq!(a.foreign_keys, b.foreign_keys);
    assert_eq!(a.triggers, Vec::<String>::new());
    assert_eq!(b.triggers, Vec::<String>::new());
}

#[tokio::test]
async fn migrations_are_idempotent_on_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _pg) = test_database(dir.path()).await;
    let first = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    first.close().await;
    let again = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    assert!(!again.is_initialized().await.unwrap());
    again.close().await;
}
