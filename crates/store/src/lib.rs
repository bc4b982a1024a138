//! Nephele's persistence. One [`Store`] serves both backends through one
//! door each ([`door`]: diesel on SQLite, diesel-async on PostgreSQL),
//! with one typed schema (`tables`, made from the migrations) and each
//! query written once for both. Ids are TEXT, times BIGINT microseconds.
//! The backend is chosen once, from the database URL, at start-up.

pub mod api_keys;
pub mod audit;
pub mod clients;
mod columns;
pub mod datacenters;
mod db;
pub mod door;
pub mod idempotency;
pub mod instances;
pub mod links;
pub mod mfa;
pub mod migrate;
pub mod models;
pub mod notary;
pub mod organizations;
pub mod roles;
pub mod rows;
pub mod setup;
pub mod signin;
/// The tables the migrations build, as diesel sees them: made from the
/// SQLite migrations by `build.rs` (in `OUT_DIR/tables.rs`).
mod tables {
    include!(concat!(env!("OUT_DIR"), "/tables.rs"));
}
pub mod tasks;
pub mod throttle;
pub mod tokens;
pub mod users;

pub use db::{backup_sqlite, sqlite_file, Store, StoreOptions};
pub use models::*;
