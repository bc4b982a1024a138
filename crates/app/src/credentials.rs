//! Secrets Nephele issues (API keys) and the short-lived memory of
//! passwords it has verified.

use hmac::{Hmac, Mac};
use nephele_common::ids::UserId;
use nephele_common::{Error, Result, Secret};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Every API key starts with this, so leaked keys can be found by scanners.
pub const API_KEY_PREFIX: &str = "nph_key_";
/// Random characters after the prefix: 32 of 62 symbols ≈ 190 bits.
const API_KEY_RANDOM_CHARS: usize = 32;
/// How much of a key is kept in clear to recognise it by (prefix + 4).
const API_KEY_SHOWN_CHARS: usize = API_KEY_PREFIX.len() + 4;

/// A new API key: the secret (shown once), what is kept to recognise it,
/// and the hash that is stored.
pub struct NewSecret {
    pub secret: Secret,
    pub prefix: String,
    pub hash: String,
}

pub fn new_api_key() -> NewSecret {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(API_KEY_RANDOM_CHARS)
        .map(char::from)
        .collect();
    let secret = format!("{API_KEY_PREFIX}{random}");
    NewSecret {
        prefix: secret[..API_KEY_SHOWN_CHARS].to_owned(),
        hash: hash_api_key(&secret),
        secret: Secret::new(secret),
    }
}

/// API keys carry ≥128 bits of randomness, so one SHA-256 is as good as a
/// slow hash for them and keeps key authentication cheap.
pub fn hash_api_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

pub fn looks_like_api_key(secret: &str) -> bool {
    secret.starts_with(API_KEY_PREFIX)
}

/// Successful password verifications, remembered for a short time so that
/// repeated HTTP Basic requests do not each pay for Argon2id.
///
/// Entries are keyed by an HMAC of the login and password under a key that
/// lives only in this process's memory: nothing in the cache lets anyone
/// recover or test a password offline. An entry holds the stored hash it
/// was verified against, so a password change invalidates it at once.
pub struct VerifiedPasswords {
    /// Keyed with 32 random bytes at start-up; cloned for each use.
    mac: Hmac<Sha256>,
    cache: quick_cache::sync::Cache<[u8; 32], Verified>,
    ttl: Duration,
}

#[derive(Clone)]
pub struct Verified {
    pub user_id: UserId,
    pub password_hash: String,
    expires: Instant,
}

/// The right to check one login and password for [`VerifiedPasswords`];
/// dropped unused, the next waiting request gets it.
pub struct VerifyingGuard<'a> {
    guard: quick_cache::sync::PlaceholderGuard<
        'a,
        [u8; 32],
        Verified,
        quick_cache::UnitWeighter,
        quick_cache::DefaultHashBuilder,
        quick_cache::sync::DefaultLifecycle<[u8; 32], Verified>,
    >,
    ttl: Duration,
}

impl VerifyingGuard<'_> {
    /// Remembers that the password is `user_id`'s, checked against
    /// `password_hash`.
    pub fn verified(self, user_id: UserId, password_hash: &str) {
        let _ = self.guard.insert(Verified {
            user_id,
            password_hash: password_hash.to_owned(),
            expires: Instant::now() + self.ttl,
        });
    }
}

impl std::fmt::Debug for VerifiedPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedPasswords")
            .field("entries", &self.cache.len())
            .field("ttl", &self.ttl)
            .finish()
    }
}

impl VerifiedPasswords {
    pub fn new(capacity: usize, ttl: Duration) -> Result<Self> {
        let key: [u8; 32] = rand::thread_rng().gen();
        Ok(VerifiedPasswords {
            mac: <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(Error::internal)?,
            cache: quick_cache::sync::Cache::new(capacity),
            ttl,
        })
    }

    fn cache_key(&self, login: &str, password: &Secret) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(login.to_lowercase().as_bytes());
        mac.update(&[0]);
        mac.update(password.expose().as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The remembered verification, or — while another request checks the
    /// same login and password — that one's, once it is done; else a
    /// guard to check it and remember the result. Parallel requests with
    /// one new password thus hash it once and count as one attempt.
    pub async fn get_or_guard(
        &self,
        login: &str,
        password: &Secret,
    ) -> std::result::Result<Verified, VerifyingGuard<'_>> {
        let key = self.cache_key(login, password);
        loop {
            match self.cache.get_value_or_guard_async(&key).await {
                Ok(hit) if hit.expires <= Instant::now() => {
                    self.cache.remove(&key);
                }
                Ok(hit) => return Ok(hit),
                Err(guard) => {
                    return Err(VerifyingGuard {
                        guard,
                        ttl: self.ttl,
                    })
                }
            }
        }
    }

    pub fn forget(&self, login: &str, password: &Secret) {
        self.cache.remove(&self.cache_key(login, password));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_are_prefixed_random_and_hashed() {
        let a = new_api_key();
        let b = new_api_key();
        assert!(a.secret.expose().starts_with("nph_key_"));
        assert_eq!(a.secret.expose().len(), 8 + 32);
        assert_ne!(a.secret.expose(), b.secret.expose());
        assert!(a.secret.expose().starts_with(&a.prefix));
        assert_eq!(a.hash, hash_api_key(a.secret.expose()));
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(a.secret.expose()));
        assert!(looks_like_api_key(a.secret.expose()));
    }

    #[tokio::test]
    async fn verified_passwords_are_checked_once_expire_and_are_keyed_by_both_parts() {
        let cache = VerifiedPasswords::new(16, Duration::from_millis(50)).unwrap();
        let user = UserId::new();
        let pw = Secret::new("correct horse");
        let Err(first) = cache.get_or_guard("Admin", &pw).await else {
            panic!("nothing verified yet");
        };
        // A second request for the same password waits for the first.
        let (second, ()) = tokio::join!(cache.get_or_guard("admin", &pw), async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            first.verified(user, "$hash");
        });
        assert_eq!(second.ok().map(|v| v.user_id), Some(user));
        assert!(cache
            .get_or_guard("admin", &Secret::new("wrong horse"))
            .await
            .is_err());
        assert!(cache.get_or_guard("other", &pw).await.is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get_or_guard("admin", &pw).await.is_err());
    }
}
