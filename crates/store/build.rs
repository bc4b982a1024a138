//! Makes `tables.rs`, the diesel `table!` declarations the store's queries
//! are checked against, from what the SQLite migrations build: adding a
//! column is a migration in each tree and a field in its row struct, and
//! the compiler tells the rest. The PostgreSQL tree is held to the same
//! schema by the suite's `sqlite_and_postgres_schemas_stay_in_step`.

use diesel::connection::SimpleConnection;
use diesel::sql_types::{BigInt, Text};
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    table: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    ty: String,
    #[diesel(sql_type = BigInt)]
    not_null: i64,
    /// Position in the primary key, from 1; 0 when not part of it.
    #[diesel(sql_type = BigInt)]
    pk: i64,
}

/// Every table's columns, by name; `_`-prefixed tables (the migrations'
/// record) are not the store's to query.
const COLUMNS: &str = "SELECT m.name AS \"table\", p.name AS name, lower(p.type) AS ty, \
    p.\"notnull\" AS not_null, p.pk AS pk \
    FROM sqlite_master m JOIN pragma_table_info(m.name) p \
    WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT LIKE '\\_%' ESCAPE '\\' \
    ORDER BY 1, 2";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo::rerun-if-changed=migrations/sqlite");
    let mut files = Vec::new();
    for entry in std::fs::read_dir("migrations/sqlite")? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") {
            files.push(path);
        }
    }
    files.sort();
    let mut db = SqliteConnection::establish(":memory:")?;
    for file in &files {
        let sql = std::fs::read_to_string(file)?;
        db.batch_execute(&sql)
            .map_err(|e| format!("{}: {e}", file.display()))?;
    }
    let columns: Vec<Column> = diesel::sql_query(COLUMNS).load(&mut db)?;
    let mut tables: BTreeMap<&str, Vec<&Column>> = BTreeMap::new();
    for column in &columns {
        tables.entry(&column.table).or_default().push(column);
    }
    let mut out = String::new();
    for (table, columns) in &tables {
        let mut key: Vec<&&Column> = columns.iter().filter(|c| c.pk > 0).collect();
        key.sort_by_key(|c| c.pk);
        let key: Vec<&str> = key.iter().map(|c| c.name.as_str()).collect();
        let _ = writeln!(
            out,
            "diesel::table! {{\n    {table} ({}) {{",
            key.join(", ")
        );
        for c in columns {
            let ty = match c.ty.as_str() {
                "integer" | "bigint" => "BigInt",
                "blob" => "Binary",
                _ => "Text",
            };
            // SQLite lets a primary-key column hold NULL unless it says
            // NOT NULL; PostgreSQL never does.
            if c.not_null != 0 || c.pk > 0 {
                let _ = writeln!(out, "        {} -> {ty},", c.name);
            } else {
                let _ = writeln!(out, "        {} -> Nullable<{ty}>,", c.name);
            }
        }
        out.push_str("    }\n}\n\n");
    }
    let names: Vec<&str> = tables.keys().copied().collect();
    let _ = writeln!(
        out,
        "diesel::allow_tables_to_appear_in_same_query!(\n    {},\n);",
        names.join(",\n    ")
    );
    let out_dir = std::env::var_os("OUT_DIR").ok_or("cargo sets OUT_DIR")?;
    std::fs::write(PathBuf::from(out_dir).join("tables.rs"), out)?;
    Ok(())
}
