//! `nephele backup FILE`: a consistent copy of a SQLite database while the
//! server runs. PostgreSQL is backed up with its own tools (`pg_dump`).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::cli::{Exit, Failure};
use crate::config::sqlite_url;

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the copy (must not exist yet)
    pub file: PathBuf,
    /// The server's data directory
    #[arg(long, env = "NEPHELE_DATA_DIR", default_value = "./nephele-data")]
    pub data_dir: PathBuf,
    /// The server's database [default: sqlite in the data dir]
    #[arg(long, env = "NEPHELE_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

pub fn run(args: &BackupArgs) -> Result<(), Failure> {
    let url = args
        .database_url
        .clone()
        .unwrap_or_else(|| sqlite_url(&args.data_dir));
    if url.starts_with("postgres") {
        return Err(Failure::new(
            Exit::Usage,
            "a PostgreSQL database is backed up with pg_dump (see the README's \"Backup and restore\"); \
             keep the secret key with the dump",
        ));
    }
    let Some(database) = nephele_store::sqlite_file(&url) else {
        return Err(Failure::new(
            Exit::Usage,
            format!("not a SQLite database file: {url}"),
        ));
    };
    if !database.exists() {
        return Err(Failure::new(
            Exit::NotFound,
            format!("no database at {}", database.display()),
        ));
    }
    if args.file.exists() {
        return Err(Failure::new(
            Exit::Conflict,
            format!("{} exists already", args.file.display()),
        ));
    }
    nephele_store::backup_sqlite(&database, &args.file)
        .map_err(|e| Failure::new(Exit::Error, e.to_string()))?;
    private(&args.file)?;
    eprintln!(
        "Backed up {} to {}. Keep the secret key ({}, or the --secret-key you run with) \
         with it: without the key the signing keys and client secrets in the copy are useless.",
        database.display(),
        args.file.display(),
        args.data_dir.join("secret-key").display()
    );
    Ok(())
}

/// The copy holds password hashes and sealed keys: its owner's only.
fn private(path: &Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Failure::new(Exit::Error, format!("{}: {e}", path.display())))
}
