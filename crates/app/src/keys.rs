//! The keys that sign tokens: kept in the database, sealed under the
//! configured secret key, shared by every node, rotated on a schedule and
//! on demand.
//!
//! Each purpose (access tokens, id tokens) has one current key. Rotation
//! retires it: it signs no more, but stays in the JWKS (and keeps
//! verifying) until the last token it signed has expired. Every node
//! reloads the set periodically, and at once (at most once a second) when
//! a token names a key it does not know, so a key another node just made
//! verifies everywhere.

use aws_lc_rs::aead::{Aad, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use nephele_auth::jws::{Algorithm, Jwk, SigningKey, VerifyingKey};
use nephele_common::clock::{span, SharedClock};
use nephele_common::ids::SigningKeyId;
use nephele_common::{Error, Result};
use nephele_store::{Store, StoredSigningKey};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Seals private keys with AES-256-GCM under the configured secret key.
/// The key's id is the associated data: a sealed key moved to another row
/// does not open.
pub struct Sealer(RandomizedNonceKey);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Result<Sealer> {
        RandomizedNonceKey::new(&AES_256_GCM, key)
            .map(Sealer)
            .map_err(|_| Error::internal("secret key rejected"))
    }

    /// base64(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, plain: &[u8], aad: &str) -> Result<String> {
        let mut data = plain.to_vec();
        let nonce = self
            .0
            .seal_in_place_append_tag(Aad::from(aad.as_bytes()), &mut data)
            .map_err(|_| Error::internal("sealing failed"))?;
        let mut out = nonce.as_ref().to_vec();
        out.extend(data);
        Ok(B64.encode(out))
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<Vec<u8>> {
        let bytes = B64
            .decode(sealed)
            .map_err(|_| Error::internal("sealed key is not base64"))?;
        if bytes.len() < NONCE_LEN {
            return Err(Error::internal("sealed key too short"));
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = aws_lc_rs::aead::Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| Error::internal("bad nonce"))?;
        let mut data = data.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut data)
            .map_err(|_| {
                Error::internal(
                    "a signing key does not open with the configured secret key \
                     (is NEPHELE_SECRET_KEY the one the other nodes use?)",
                )
            })?;
        Ok(plain.to_vec())
    }
}

/// What each kind of key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Purpose {
    Access,
    Id,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Access => "access",
            Purpose::Id => "id",
        }
    }
}

/// The current key of a purpose, with its header encoded once.
#[derive(Debug)]
pub struct ActiveKey {
    pub key: SigningKey,
    pub header: String,
    pub created_at: DateTime<Utc>,
}

/// A snapshot of the keys: what signs, what verifies, what is published.
#[derive(Debug)]
pub struct KeySet {
    pub access: ActiveKey,
    pub id: ActiveKey,
    /// Keys that verify access tokens, by `kid`.
    access_verifiers: HashMap<String, VerifyingKey>,
    /// Every live public key, for the JWKS.
    pub jwks: Vec<Jwk>,
}

impl KeySet {
    pub fn access_verifier(&self, kid: &str) -> Option<&VerifyingKey> {
        self.access_verifiers.get(kid)
    }
}

/// Settings of the key ring.
#[derive(Debug, Clone)]
pub struct KeyConfig {
    pub access_algorithm: Algorithm,
    pub id_algorithm: Algorithm,
    /// How long a key signs before it is replaced.
    pub rotation: Duration,
    /// The longest life of a token a key signs: a retired key stays
    /// published this long.
    pub token_lifetime: Duration,
}

#[derive(Debug)]
pub struct KeyRing {
    store: Store,
    clock: SharedClock,
    sealer: Sealer,
    config: KeyConfig,
    current: RwLock<Option<Arc<KeySet>>>,
    last_reload: Mutex<Option<Instant>>,
}

impl KeyRing {
    pub fn new(store: Store, clock: SharedClock, sealer: Sealer, config: KeyConfig) -> KeyRing {
        KeyRing {
            store,
            clock,
            sealer,
            config,
            current: RwLock::new(None),
            last_reload: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &KeyConfig {
        &self.config
    }

    /// The current snapshot; loaded by [`KeyRing::refresh`] at start-up.
    pub fn keys(&self) -> Result<Arc<KeySet>> {
        self.current
            .read()
            .map_err(|_| Error::internal("key ring lock poisoned"))?
            .clone()
            .ok_or_else(|| Error::unavailable("signing keys are not loaded yet"))
    }

    /// Loads the keys from the database, first making any that are missing,
    /// of the wrong algorithm, or due for rotation.
    pub async fn refresh(&self) -> Result<Arc<KeySet>> {
        let now = self.clock.now();
        let mut stored = self.store.live_signing_keys(now).await?;
        let mut rotated = false;
        for (purpose, alg) in [
            (Purpose::Access, self.config.access_algorithm),
            (Purpose::Id, self.config.id_algorithm),
        ] {
            let current = current_of(&stored, purpose);
            let due = match current {
                None => true,
                Some(k) => {
                    k.algorithm != alg.as_str() || k.created_at + span(self.config.rotation) <= now
                }
            };
            if due {
                self.rotate(purpose, current.map(|k| k.id)).await?;
                rotated = true;
            }
        }
        if rotated {
            stored = self.store.live_signing_keys(now).await?;
        }
        let set = Arc::new(self.build(&stored)?);
        *self
            .current
            .write()
            .map_err(|_| Error::internal("key ring lock poisoned"))? = Some(set.clone());
        Ok(set)
    }

    /// Reloads when a token names an unknown key — at most once a second,
    /// so made-up `kid`s cannot turn into a flood of queries.
    pub async fn refresh_for_unknown_kid(&self) -> Result<Arc<KeySet>> {
        let due = {
            let mut last = self
                .last_reload
                .lock()
                .map_err(|_| Error::internal("key ring lock poisoned"))?;
            let due = last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1));
            if due {
                *last = Some(Instant::now());
            }
            due
        };
        if due {
            self.refresh().await
        } else {
            self.keys()
        }
    }

    /// Replaces the current key of `purpose` now (another node may have
    /// done it a moment before: then its key stands).
    pub async fn rotate(&self, purpose: Purpose, current: Option<SigningKeyId>) -> Result<()> {
        let alg = match purpose {
            Purpose::Access => self.config.access_algorithm,
            Purpose::Id => self.config.id_algorithm,
        };
        let id = SigningKeyId::new();
        let kid = id.to_string();
        let (key, pkcs8) = tokio::task::spawn_blocking(move || SigningKey::generate(alg, kid))
            .await
            .map_err(|e| Error::internal(format!("key generation: {e}")))?
            .map_err(|e| Error::internal(format!("key generation: {e}")))?;
        let now = self.clock.now();
        let jwk =
            serde_json::to_string(&key.jwk()).map_err(|e| Error::internal(format!("jwk: {e}")))?;
        let stored = StoredSigningKey {
            id,
            purpose: purpose.as_str().to_owned(),
            algorithm: alg.as_str().to_owned(),
            sealed_key: self.sealer.seal(&pkcs8, &id.to_string())?,
            public_jwk: jwk,
            created_at: now,
            retired_at: None,
            expires_at: None,
        };
        let expires = now + span(self.config.token_lifetime);
        if self
            .store
            .rotate_signing_key(current, &stored, expires)
            .await?
        {
            tracing::info!(purpose = purpose.as_str(), kid = %id, alg = %alg, "new signing key");
        }
        Ok(())
    }

    /// Rotates both keys now, then reloads.
    pub async fn rotate_all(&self) -> Result<Arc<KeySet>> {
        let now = self.clock.now();
        let stored = self.store.live_signing_keys(now).await?;
        for purpose in [Purpose::Access, Purpose::Id] {
            self.rotate(purpose, current_of(&stored, purpose).map(|k| k.id))
                .await?;
        }
        self.refresh().await
    }

    fn build(&self, stored: &[StoredSigningKey]) -> Result<KeySet> {
        let mut access = None;
        let mut id = None;
        let mut access_verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for k in stored {
            let jwk: Jwk = serde_json::from_str(&k.public_jwk)
                .map_err(|e| Error::internal(format!("stored jwk: {e}")))?;
            let verifier = VerifyingKey::from_jwk(&jwk)
                .map_err(|e| Error::internal(format!("stored jwk: {e}")))?;
            let purpose = if k.purpose == Purpose::Access.as_str() {
                Purpose::Access
            } else {
                Purpose::Id
            };
            if purpose == Purpose::Access {
                access_verifiers.insert(jwk.kid.clone(), verifier);
            }
            jwks.push(jwk);
            if k.retired_at.is_none() {
                let alg: Algorithm = k
                    .algorithm
                    .parse()
                    .map_err(|_| Error::internal("stored key algorithm"))?;
                let der = self.sealer.open(&k.sealed_key, &k.id.to_string())?;
                let key = SigningKey::from_pkcs8(alg, k.id.to_string(), &der)
                    .map_err(|e| Error::internal(format!("stored key: {e}")))?;
                let header = key.header(match purpose {
                    Purpose::Access => "at+jwt",
                    Purpose::Id => "JWT",
                });
                let active = ActiveKey {
                    key,
                    header,
                    created_at: k.created_at,
                };
                match purpose {
                    Purpose::Access => access = Some(active),
                    Purpose::Id => id = Some(active),
                }
            }
        }
        match (access, id) {
            (Some(access), Some(id)) => Ok(KeySet {
                access,
                id,
                access_verifiers,
                jwks,
            }),
            _ => Err(Error::internal("no current signing key")),
        }
    }
}

/// The current (unretired) key of a purpose; the newest if several.
fn current_of(stored: &[StoredSigningKey], purpose: Purpose) -> Option<&StoredSigningKey> {
    stored
        .iter()
        .filter(|k| k.purpose == purpose.as_str() && k.retired_at.is_none())
        .max_by_key(|k| k.created_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nephele_common::clock::Clock;
    use nephele_store::StoreOptions;

    /// A clock the test moves by hand.
    #[derive(Debug)]
    struct ManualClock(Mutex<DateTime<Utc>>);

    impl Clock for ManualClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().unwrap()
        }
    }

    impl ManualClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += chrono::Duration::from_std(by).unwrap();
        }
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    #[tokio::test]
    async fn keys_rotate_on_schedule_and_retired_ones_stay_published_until_their_tokens_expire() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("k.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        let start = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let clock = Arc::new(ManualClock(Mutex::new(start)));
        let config = KeyConfig {
            access_algorithm: Algorithm::ES256,
            id_algorithm: Algorithm::RS256,
            rotation: 30 * DAY,
            token_lifetime: Duration::from_secs(3600),
        };
        let ring = |sealer| KeyRing::new(store.clone(), clock.clone(), sealer, config.clone());
        let first = ring(Sealer::new(&[1; 32]).unwrap());
        let a = first.refresh().await.unwrap();
        assert_eq!(a.jwks.len(), 2);
        let kid = a.access.key.kid().to_owned();

        // Another node with the same secret key loads the same keys...
        let second = ring(Sealer::new(&[1; 32]).unwrap());
        assert_eq!(second.refresh().await.unwrap().access.key.kid(), kid);
        // ...and one with another secret key cannot open them.
        assert!(ring(Sealer::new(&[2; 32]).unwrap())
            .refresh()
            .await
            .is_err());

        // Not due yet: nothing changes.
        clock.advance(29 * DAY);
        assert_eq!(first.refresh().await.unwrap().access.key.kid(), kid);
        // Due: a new current key; the old one still verifies and is published.
        clock.advance(DAY);
        let b = first.refresh().await.unwrap();
        assert_ne!(b.access.key.kid(), kid);
        assert!(b.access_verifier(&kid).is_some());
        assert_eq!(b.jwks.len(), 4);
        // The other node rotated nothing of its own: it loads the same set.
        assert_eq!(
            second.refresh().await.unwrap().access.key.kid(),
            b.access.key.kid()
        );
        // Past the last token's expiry, the retired key is gone at the next
        // rotation.
        clock.advance(2 * Duration::from_secs(3600));
        let c = first.rotate_all().await.unwrap();
        assert!(c.access_verifier(&kid).is_none());
        assert!(c.access_verifier(b.access.key.kid()).is_some());
        assert_eq!(c.jwks.len(), 4);
    }

    #[test]
    fn sealed_keys_open_only_with_their_key_and_row() {
        let sealer = Sealer::new(&[7; 32]).unwrap();
        let sealed = sealer.seal(b"private", "kid-1").unwrap();
        assert_eq!(sealer.open(&sealed, "kid-1").unwrap(), b"private");
        assert!(sealer.open(&sealed, "kid-2").is_err());
        assert!(Sealer::new(&[8; 32])
            .unwrap()
            .open(&sealed, "kid-1")
            .is_err());
        // Two seals of the same key differ (random nonces).
        assert_ne!(sealed, sealer.seal(b"private", "kid-1").unwrap());
    }
}
