//! What the migrations built, read back from the database's own catalogue
//! in one backend-neutral form, so a test can hold the two migration trees
//! to one schema: tables, columns, types, nullability, primary keys,
//! indexes, unique and foreign-key constraints, and triggers (of which
//! there must be none: behaviour lives in code or in both migrations).

use crate::door::{run, Conn};
use crate::Store;
use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;
use nephele_common::Result;

/// The schema, every list sorted.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Schema {
    pub columns: Vec<Column>,
    pub indexes: Vec<Index>,
    pub foreign_keys: Vec<ForeignKey>,
    pub triggers: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Column {
    pub table: String,
    pub name: String,
    /// `text`, `integer`, `bytes`, …: the two backends' names made one.
    pub ty: String,
    pub not_null: bool,
    /// Position in the primary key, from 1; 0 when not part of it.
    pub primary_key: i64,
}

/// A secondary index, or the index behind a unique constraint. Indexes
/// made by `CREATE INDEX` are compared by name; those a constraint made
/// are named by each backend its own way, so only their columns count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Index {
    pub table: String,
    /// `None` for a constraint's index.
    pub name: Option<String>,
    pub columns: Vec<String>,
    pub unique: bool,
    /// Has a `WHERE` clause.
    pub partial: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignKey {
    pub table: String,
    pub column: String,
    pub references: String,
    pub referenced_column: String,
    /// `CASCADE`, `SET NULL`, `NO ACTION`, …
    pub on_delete: String,
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

/// The rows of the catalogue queries, by the types of their columns.
#[derive(QueryableByName)]
struct Column5 {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    m: i64,
}

#[derive(QueryableByName)]
struct Index6 {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    unique: i64,
    #[diesel(sql_type = BigInt)]
    partial: i64,
    #[diesel(sql_type = Text)]
    origin: String,
    #[diesel(sql_type = Text)]
    columns: String,
}

#[derive(QueryableByName)]
struct Texts5 {
    #[diesel(sql_type = Text)]
    a: String,
    #[diesel(sql_type = Text)]
    b: String,
    #[diesel(sql_type = Text)]
    c: String,
    #[diesel(sql_type = Text)]
    d: String,
    #[diesel(sql_type = Text)]
    e: String,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// `sql`'s columns under the names of a row struct's fields.
fn named(sql: &str, columns: &str) -> String {
    format!("WITH q({columns}) AS ({sql}) SELECT * FROM q")
}

impl Store {
    /// The schema the migrations built.
    pub async fn schema(&self) -> Result<Schema> {
        let mut c = self.door.reader().await?;
        let sqlite = matches!(*c, Conn::Sqlite(_));
        let pick = |s: &'static str, p: &'static str| if sqlite { s } else { p };

        let mut columns = Vec::new();
        let rows: Vec<Column5> = run!(c.load(diesel::sql_query(named(
            pick(SQLITE_COLUMNS, POSTGRES_COLUMNS),
            "a, b, c, n, m"
        ))))?;
        for r in rows {
            columns.push(Column {
                table: r.a,
                name: r.b,
                ty: normalize_type(&r.c),
                // SQLite lets a primary-key column hold NULL unless it
                // says NOT NULL; PostgreSQL never does.
                not_null: r.n != 0 || r.m > 0,
                primary_key: r.m,
            });
        }
        let mut indexes = Vec::new();
        let rows: Vec<Index6> = run!(c.load(diesel::sql_query(named(
            pick(SQLITE_INDEXES, POSTGRES_INDEXES),
            "\"table\", name, \"unique\", partial, origin, columns"
        ))))?;
        for r in rows {
            let by_constraint = r.origin == "u";
            indexes.push(Index {
                table: r.table,
                name: (!by_constraint).then_some(r.name),
                unique: r.unique != 0,
                partial: r.partial != 0,
                columns: r.columns.split(',').map(str::to_owned).collect(),
            });
        }
        let rows: Vec<Texts5> = run!(c.load(diesel::sql_query(named(
            pick(SQLITE_FOREIGN_KEYS, POSTGRES_FOREIGN_KEYS),
            "a, b, c, d, e"
        ))))?;
        let mut foreign_keys: Vec<ForeignKey> = rows
            .into_iter()
            .map(|r| ForeignKey {
                table: r.a,
                column: r.b,
                references: r.c,
                referenced_column: r.d,
                on_delete: r.e,
            })
            .collect();
        let rows: Vec<Name> = run!(c.load(diesel::sql_query(named(
            pick(SQLITE_TRIGGERS, POSTGRES_TRIGGERS),
            "name"
        ))))?;
        let mut triggers: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        columns.sort();
        indexes.sort();
        foreign_keys.sort();
        triggers.sort();
        Ok(Schema {
            columns,
            indexes,
            foreign_keys,
            triggers,
        })
    }
}
