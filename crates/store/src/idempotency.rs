//! Idempotency keys: the first response to a POST is kept for 24 h and
//! replayed to a retry with the same key and body.

use crate::db::{db_error, unique_violation};
use crate::write::{Arg, WriteTx};
use crate::Store;
use chrono::{DateTime, Duration, Utc};
use nephele_common::clock::to_micros;
use nephele_common::{Error, Result};
use sqlx::Row;

/// How long a key is remembered.
pub const RETENTION: Duration = Duration::hours(24);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub location: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is new: run the request, then `complete` or `release` it.
    Started,
    /// The same request was answered before: this is its response.
    Replay(StoredResponse),
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
    /// The first request started this task (and may have died before it
    /// could record its response): its answer is the task's 202.
    Task(String),
}

/// The key a request holds, for the transaction that starts a task to
/// record the task under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub scope: String,
    pub key: String,
}

/// Records, inside the transaction that creates it, that the request
/// holding `key` started `task`.
pub(crate) async fn record_task(
    tx: &mut WriteTx,
    key: Option<&IdempotencyKey>,
    task: &str,
) -> Result<()> {
    if let Some(k) = key {
        tx.execute(
            "UPDATE idempotency_keys SET task_id = $1 WHERE scope = $2 AND key = $3",
            &[Arg::Text(task), Arg::Text(&k.scope), Arg::Text(&k.key)],
        )
        .await?;
    }
    Ok(())
}

impl Store {
    /// Claims `key` for a request whose fingerprint is `request_hash`, on
    /// behalf of `node`. A claim still in progress whose node's lease has
    /// run out (the process died mid-request) is taken over.
    pub async fn claim_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        node: &str,
        now: DateTime<Utc>,
    ) -> Result<Claim> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        // Forget an expired use of the key first.
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND created_at < $3",
        )
        .bind(scope)
        .bind(key)
        .bind(to_micros(now - RETENTION))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let existing = sqlx::query(
            "SELECT k.request_hash, k.status, k.content_type, k.location, k.body, k.task_id, \
             (SELECT count(*) FROM nodes n WHERE n.id = k.node_id AND n.lease_until >= $3) \
             AS live FROM idempotency_keys k WHERE k.scope = $1 AND k.key = $2",
        )
        .bind(scope)
        .bind(key)
        .bind(to_micros(now))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let claim = match existing {
            Some(row) => {
                let hash: String = row.try_get(0).map_err(db_error)?;
                let status: Option<i64> = row.try_get(1).map_err(db_error)?;
                if hash != request_hash {
                    Claim::Mismatch
                } else if let Some(status) = status {
                    Claim::Replay(StoredResponse {
                        status: u16::try_from(status).unwrap_or(500),
                        content_type: row.try_get(2).map_err(db_error)?,
                        location: row.try_get(3).map_err(db_error)?,
                        body: row
                            .try_get::<Option<Vec<u8>>, _>(4)
                            .map_err(db_error)?
                            .unwrap_or_default(),
                    })
                } else if let Some(task) = row.try_get::<Option<String>, _>(5).map_err(db_error)? {
                    Claim::Task(task)
                } else if row.try_get::<i64, _>(6).map_err(db_error)? == 0 {
                    sqlx::query(
                        "UPDATE idempotency_keys SET node_id = $1 WHERE scope = $2 AND key = $3",
                    )
                    .bind(node)
                    .bind(scope)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_error)?;
                    Claim::Started
                } else {
                    Claim::InProgress
                }
            }
            None => {
                let inserted = sqlx::query(
                    "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, node_id) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(scope)
                .bind(key)
                .bind(request_hash)
                .bind(to_micros(now))
                .bind(node)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => Claim::Started,
                    // Another node claimed it between our read and insert.
                    Err(e) if unique_violation(&e).is_some() => Claim::InProgress,
                    Err(e) => return Err(db_error(e)),
                }
            }
        };
        tx.commit().await.map_err(|e| match unique_violation(&e) {
            Some(_) => Error::internal("idempotency key raced"),
            None => db_error(e),
        })?;
        Ok(claim)
    }

    /// Records the response of a claimed key.
    pub async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, content_type = $2, location = $3, body = $4 \
             WHERE scope = $5 AND key = $6",
        )
        .bind(i64::from(response.status))
        .bind(response.content_type.clone())
        .bind(response.location.clone())
        .bind(response.body.clone())
        .bind(scope)
        .bind(key)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Gives a claimed key up (the request failed in a way worth retrying).
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<()> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Drops keys older than the retention period.
    pub async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let r = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(to_micros(now - RETENTION))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(r.rows_affected())
    }
}
