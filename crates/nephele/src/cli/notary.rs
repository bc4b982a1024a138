//! `nephele notary`: checking a certificate with no server.

use super::{Exit, Failure};
use clap::Subcommand;
use nephele_notary::certificate::{verify, Certificate, NotaryKey};
use serde::de::DeserializeOwned;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum NotaryCommand {
    /// Check a file against its certificate, offline: the hash, the
    /// inclusion proof and the tree head's signature
    #[command(
        after_help = "Examples:\n  curl -u admin … $URL/api/notary/v2/keys > notary-keys.json\n  curl -u admin … $URL/api/notary/v2/stored-files/$ID/certificate > report.cert.json\n  nephele notary verify report.pdf --certificate report.cert.json --keys notary-keys.json"
    )]
    Verify {
        /// The file to check
        file: PathBuf,
        /// Its certificate (the JSON of GET …/stored-files/ID/certificate)
        #[arg(long)]
        certificate: PathBuf,
        /// The notary's public keys you trust (the JSON of GET /api/notary/v2/keys)
        #[arg(long)]
        keys: PathBuf,
    },
}

fn read_json<T: DeserializeOwned>(
    path: &Path,
    what: &str,
    unwrap: fn(Value) -> Value,
) -> Result<T, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(Exit::Usage, format!("{what} {}: {e}", path.display())))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| {
        Failure::new(
            Exit::Usage,
            format!("{what} {}: not JSON: {e}", path.display()),
        )
    })?;
    serde_json::from_value(unwrap(value))
        .map_err(|e| Failure::new(Exit::Usage, format!("{what} {}: {e}", path.display())))
}

/// The API's envelope (`{"data": …}`) or the bare object.
fn unwrap_data(value: Value) -> Value {
    match value {
        Value::Object(mut o) if o.contains_key("data") => o.remove("data").unwrap_or(Value::Null),
        other => other,
    }
}

/// The API's key list, a bare array, or one key.
fn unwrap_keys(value: Value) -> Value {
    match unwrap_data(value) {
        key @ Value::Object(_) => Value::Array(vec![key]),
        other => other,
    }
}

fn sha256_of(path: &Path) -> Result<[u8; 32], Failure> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| Failure::new(Exit::Usage, format!("{}: {e}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let n = file
            .read(&mut buffer)
            .map_err(|e| Failure::new(Exit::Usage, format!("{}: {e}", path.display())))?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buffer[..n]);
    }
}

pub fn notary(command: NotaryCommand) -> Result<(), Failure> {
    match command {
        NotaryCommand::Verify {
            file,
            certificate,
            keys,
        } => {
            let cert: Certificate = read_json(&certificate, "certificate", unwrap_data)?;
            let keys: Vec<NotaryKey> = read_json(&keys, "keys", unwrap_keys)?;
            let digest = sha256_of(&file)?;
            verify(&cert, &digest, &keys).map_err(|e| {
                Failure::new(
                    Exit::Error,
                    format!(
                        "{} is NOT proven by {}: {e}",
                        file.display(),
                        certificate.display()
                    ),
                )
            })?;
            let head = &cert.signed_tree_head;
            super::output::write_line(&format!(
                "OK: {} (SHA-256 {}) is leaf {} of the notary's log, in the tree of {} signed by key {} at {}",
                file.display(),
                cert.sha256,
                cert.leaf_index,
                head.tree_size,
                head.key_id,
                head.timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            ));
            Ok(())
        }
    }
}
