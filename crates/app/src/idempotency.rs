//! Idempotent POSTs (SPEC §3): the first response under an
//! `Idempotency-Key` is kept, sealed, for 24 h and replayed to a retry of
//! the same request; the same key with another request is refused. Keys
//! belong to the principal, not to the credential shown.

use nephele_auth::Actor;
use nephele_common::{Error, ErrorCode, Result};
use nephele_store::idempotency::Claim;
pub use nephele_store::idempotency::{IdempotencyKey, StoredResponse};

use crate::App;

/// How a request under a key goes on.
#[derive(Debug)]
pub enum Begun {
    /// The key is new: run the request, then [`App::finish_idempotent`].
    Fresh(IdempotencyKey),
    /// The same request was answered before: send this again.
    Replay(StoredResponse),
    /// The first request queued this task and may have died before it
    /// recorded its response: the answer is the task's 202.
    Task(uuid::Uuid),
}

/// The key `key` of the caller `actor` (`None`: an anonymous POST, which
/// share one space).
pub fn key_of(actor: Option<&Actor>, key: &str) -> IdempotencyKey {
    let scope = match actor {
        Some(actor) => format!("{}:{}", actor.principal.kind(), actor.principal),
        None => "anonymous".to_owned(),
    };
    IdempotencyKey {
        scope,
        key: key.to_owned(),
    }
}

fn context(key: &IdempotencyKey) -> String {
    format!("record:{}/{}", key.scope, key.key)
}

impl App {
    /// Claims `key` for the request whose fingerprint is `request_hash`.
    pub async fn begin_idempotent(&self, key: IdempotencyKey, request_hash: &str) -> Result<Begun> {
        let node = self.engine()?.node().to_string();
        let now = self.clock().now();
        let claim = self
            .store()
            .claim_idempotency_key(&key.scope, &key.key, request_hash, &node, now)
            .await?;
        match claim {
            Claim::Started => Ok(Begun::Fresh(key)),
            Claim::Replay(mut stored) => {
                let sealed = std::str::from_utf8(&stored.body)
                    .map_err(|_| Error::internal("sealed record is not text"))?;
                stored.body = self.inner.record_sealer.open(sealed, &context(&key))?;
                Ok(Begun::Replay(stored))
            }
            Claim::Task(task) => task
                .parse()
                .map(Begun::Task)
                .map_err(|_| Error::internal(format!("corrupt task id {task:?}"))),
            Claim::Mismatch => Err(Error::new(
                ErrorCode::IdempotencyKeyReused,
                "This Idempotency-Key was used with a different request",
            )),
            Claim::InProgress => Err(Error::new(
                ErrorCode::OperationInProgress,
                "A request with this Idempotency-Key is still in progress",
            )),
        }
    }

    /// Forgets the keys older than their retention (24 h) at `now`; how
    /// many went.
    pub async fn purge_idempotency_keys(&self, now: chrono::DateTime<chrono::Utc>) -> Result<u64> {
        self.store().purge_idempotency_keys(now).await
    }

    /// After a server error: keeps nothing and frees the key for a retry.
    pub async fn abandon_idempotent(&self, key: &IdempotencyKey) -> Result<()> {
        self.store()
            .release_idempotency_key(&key.scope, &key.key)
            .await
    }

    /// Keeps the response to replay, sealed: a replayed creation can carry
    /// a secret (an API key's, a client's), which must not lie in the
    /// database in clear.
    pub async fn finish_idempotent(
        &self,
        key: &IdempotencyKey,
        response: StoredResponse,
    ) -> Result<()> {
        let sealed = self
            .inner
            .record_sealer
            .seal(&response.body, &context(key))?;
        let stored = StoredResponse {
            body: sealed.into_bytes(),
            ..response
        };
        self.store()
            .complete_idempotency_key(&key.scope, &key.key, &stored)
            .await
    }
}
