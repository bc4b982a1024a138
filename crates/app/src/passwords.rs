//! Password hashing with Argon2id at OWASP's parameters (19 MiB, t=2, p=1).
//! Hashing is deliberately expensive, so it runs on the blocking pool and at
//! most one hash per core runs at a time.
//!
//! Each running hash works in one of a few preallocated 19 MiB buffers,
//! reused from hash to hash: memory stays at (cores × 19 MiB) under a flood
//! of logins, and no hash pays for mapping and zeroing fresh pages (the
//! allocator would otherwise keep a buffer per blocking thread it ever ran
//! on).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use nephele_common::{Error, Result, Secret};
use std::sync::{Arc, Mutex, OnceLock};
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// OWASP's first recommended Argon2id configuration.
const MEMORY_KIB: u32 = 19 * 1024;
const ITERATIONS: u32 = 2;
const PARALLELISM: u32 = 1;
const OUTPUT_LEN: usize = 32;

#[derive(Debug, Clone)]
pub struct Passwords {
    permits: Arc<Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl Default for Passwords {
    fn default() -> Self {
        Self::new()
    }
}

fn params() -> Result<Params> {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, Some(OUTPUT_LEN))
        .map_err(|e| Error::internal(format!("argon2 params: {e}")))
}

/// Argon2id of `password` with `salt` under `params`, into `memory`.
fn compute(params: Params, password: &[u8], salt: &[u8], memory: &mut [Block]) -> Result<Vec<u8>> {
    let mut out = vec![0u8; params.output_len().unwrap_or(OUTPUT_LEN)];
    let blocks = params.block_count();
    let memory = memory
        .get_mut(..blocks)
        .ok_or_else(|| Error::internal("argon2 buffer too small"))?;
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into_with_memory(password, salt, &mut out, memory)
        .map_err(|e| Error::internal(format!("argon2: {e}")))?;
    Ok(out)
}

/// A new random salt, and its raw bytes (what Argon2 hashes with; the PHC
/// string carries its base64).
fn new_salt() -> Result<(SaltString, Vec<u8>)> {
    let salt = SaltString::generate(&mut OsRng);
    let mut buf = [0u8; 64];
    let raw = salt
        .decode_b64(&mut buf)
        .map_err(|e| Error::internal(format!("salt: {e}")))?
        .to_vec();
    Ok((salt, raw))
}

/// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
fn phc(params: &Params, salt: &SaltString, hash: &[u8]) -> Result<String> {
    let output = argon2::password_hash::Output::new(hash)
        .map_err(|e| Error::internal(format!("argon2 output: {e}")))?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: params
            .try_into()
            .map_err(|e| Error::internal(format!("argon2 params: {e}")))?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string, in `memory`.
fn check(stored: &str, password: &[u8], memory: &mut Vec<Block>) -> Result<bool> {
    let parsed = PasswordHash::new(stored)
        .map_err(|e| Error::internal(format!("stored password hash: {e}")))?;
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        return Err(Error::internal("stored password hash is not Argon2id"));
    }
    let params = Params::try_from(&parsed)
        .map_err(|e| Error::internal(format!("stored password hash: {e}")))?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or_else(|| Error::internal("stored password hash has no salt"))?
        .decode_b64(&mut salt_buf)
        .map_err(|e| Error::internal(format!("stored password salt: {e}")))?;
    let expected = parsed
        .hash
        .ok_or_else(|| Error::internal("stored password hash has no hash"))?;
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), Block::default());
    }
    let got = compute(params, password, salt, memory)?;
    Ok(got.ct_eq(expected.as_bytes()).into())
}

/// A valid hash of a random password, verified against when a login is
/// unknown so that unknown logins and wrong passwords take the same time.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut memory = vec![Block::default(); MEMORY_KIB as usize];
        params()
            .and_then(|p| {
                let (salt, raw) = new_salt()?;
                let hash = compute(
                    p.clone(),
                    uuid::Uuid::new_v4().as_bytes(),
                    &raw,
                    &mut memory,
                )?;
                phc(&p, &salt, &hash)
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
            buffers: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// Runs `work` on the blocking pool with a permit and a buffer.
    async fn with_buffer<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let _permit = self.permits.acquire().await.map_err(Error::internal)?;
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            let mut memory = buffers
                .lock()
                .ok()
                .and_then(|mut b| b.pop())
                .unwrap_or_else(|| vec![Block::default(); MEMORY_KIB as usize]);
            let result = work(&mut memory);
            if let Ok(mut b) = buffers.lock() {
                b.push(memory);
            }
            result
        })
        .await
        .map_err(Error::internal)?
    }

    pub async fn hash(&self, password: &Secret) -> Result<String> {
        let password = password.clone();
        self.with_buffer(move |memory| {
            let (salt, raw) = new_salt()?;
            let params = params()?;
            let hash = compute(params.clone(), password.expose().as_bytes(), &raw, memory)?;
            phc(&params, &salt, &hash)
        })
        .await
    }

    /// Verifies `password` against `hash`; with no hash (unknown account)
    /// it verifies against a dummy so that the answer takes as long.
    pub async fn verify(&self, password: &Secret, hash: Option<&str>) -> Result<bool> {
        let password = password.clone();
        let known = hash.is_some();
        let hash = hash.map(str::to_owned);
        self.with_buffer(move |memory| {
            let hash = hash.unwrap_or_else(|| dummy_hash().to_owned());
            let ok = check(&hash, password.expose().as_bytes(), memory)?;
            Ok(ok && known)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher;

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

    #[tokio::test]
    async fn hashes_are_standard_phc_strings_both_ways() {
        // A hash made by the argon2 crate's own API verifies here, with
        // other parameters too...
        let salt = SaltString::generate(&mut OsRng);
        let other = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 3, 1, None).unwrap(),
        )
        .hash_password(b"pw-12345", &salt)
        .unwrap()
        .to_string();
        let p = Passwords::new();
        assert!(p
            .verify(&Secret::new("pw-12345"), Some(&other))
            .await
            .unwrap());
        assert!(!p
            .verify(&Secret::new("pw-1234"), Some(&other))
            .await
            .unwrap());
        // ...and ours verifies with the crate's verifier.
        use argon2::PasswordVerifier;
        let ours = p.hash(&Secret::new("pw-12345")).await.unwrap();
        assert!(Argon2::default()
            .verify_password(b"pw-12345", &PasswordHash::new(&ours).unwrap())
            .is_ok());
    }
}
