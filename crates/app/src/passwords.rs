//! Password hashing with Argon2id at OWASP's parameters (19 MiB, t=2, p=1).
//! Hashing is deliberately expensive, so it runs on the blocking pool and at
//! most one hash per core runs at a time: memory stays bounded under a
//! flood of logins.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use nephele_common::{Error, Result, Secret};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

fn argon2() -> Result<Argon2<'static>> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|e| Error::internal(format!("argon2 params: {e}")))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// A valid hash of a random password, verified against when a login is
/// unknown so that unknown logins and wrong passwords take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .ok()
            .and_then(|a| {
                a.hash_password(uuid::Uuid::new_v4().as_bytes(), &salt)
                    .ok()
                    .map(|h| h.to_string())
            })
            .unwrap_or_default()
    })
}

impl Passwords {
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Passwords {
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    pub async fn hash(&self, password: &Secret) -> Result<String> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()?
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| Error::internal(format!("argon2 hash: {e}")))
        })
        .await
        .map_err(Error::internal)?
    }

    /// Verifies `password` against `hash`; with no hash (unknown account)
    /// it verifies against a dummy so that the answer takes as long.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> Result<bool> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let password = password.clone();
        let known = hash.is_some();
        let hash = hash.map(str::to_owned);
        tokio::task::spawn_blocking(move || {
            let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
            let parsed = PasswordHash::new(&hash)
                .map_err(|e| Error::internal(format!("stored password hash: {e}")))?;
            let ok = argon2()?
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok();
            Ok(ok && known)
        })
        .await
        .map_err(Error::internal)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let p = Passwords::new();
        let h = p.hash(&Secret::new("correct horse")).await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(p
            .verify(&Secret::new("correct horse"), Some(&h))
            .await
            .unwrap());
        assert!(!p
            .verify(&Secret::new("wrong horse"), Some(&h))
            .await
            .unwrap());
        assert!(!p.verify(&Secret::new("correct horse"), None).await.unwrap());
    }
}
