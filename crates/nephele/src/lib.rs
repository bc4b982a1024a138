//! The `nephele` binary as a library: configuration, wiring and `serve`,
//! so that tests can start real servers in-process, and the command-line
//! client.

pub mod backup;
pub mod bench;
pub mod cli;
pub mod config;
pub mod connections;
pub mod mailer;
mod private_file;
pub mod server;
mod sim_state;
