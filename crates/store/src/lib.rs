//! Nephele's persistence. One [`Store`] serves both backends: it speaks
//! portable SQL (`$N` parameters, TEXT ids, BIGINT microsecond times) through
//! sqlx's `Any` driver, so the backend is chosen once, from the database URL,
//! at start-up. Where the dialects must differ, the [`Backend`] says so in
//! one place.

pub mod api_keys;
pub mod audit;
pub mod clients;
mod columns;
pub mod datacenters;
mod db;
pub mod door;
pub mod idempotency;
pub mod instances;
mod local;
pub mod migrate;
pub mod models;
pub mod notary;
pub mod organizations;
pub mod roles;
pub mod schema;
pub mod setup;
mod tables;
pub mod tasks;
pub mod throttle;
pub mod tokens;
pub mod users;
mod write;

pub use db::{backup_sqlite, Backend, Store, StoreOptions};
pub use models::*;
