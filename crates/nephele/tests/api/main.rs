//! Nephele's integration tests: each test starts its own server on port 0
//! with its own database (a temp SQLite file, or a fresh PostgreSQL
//! database when NEPHELE_TEST_DATABASE_URL names a PostgreSQL server) and
//! talks to it over real HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod accounts;
mod binary;
mod browser;
mod cli;
mod conventions;
mod durability;
mod hardening;
mod identity;
mod instances;
mod interop;
mod isolation;
mod mail;
mod mfa;
mod notary;
mod ops;
mod organizations;
mod qemu;
mod sagas;
mod schema;
mod setup;
mod signin;
mod support;
