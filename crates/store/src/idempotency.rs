//! Idempotency keys: the first response to a POST is kept for 24 h and
//! replayed to a retry with the same key and body.

use crate::door::{job, run, Conn};
use crate::tables::{idempotency_keys, nodes};
use crate::Store;
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::TaskId;
use nephele_common::Result;

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

/// Records, inside the transaction that queued it, that the request
/// holding `key` started `task`.
pub(crate) async fn record_task(
    c: &mut Conn,
    key: Option<&IdempotencyKey>,
    task: TaskId,
) -> Result<()> {
    if let Some(k) = key {
        run!(c.execute(
            diesel::update(idempotency_keys::table.find((&k.scope, &k.key)))
                .set(idempotency_keys::task_id.eq(task.to_string()))
        ))?;
    }
    Ok(())
}

/// A key's use as [`Store::claim_idempotency_key`] reads it.
#[derive(Queryable)]
struct Existing {
    request_hash: String,
    status: Option<i64>,
    content_type: Option<String>,
    location: Option<String>,
    body: Option<Vec<u8>>,
    task_id: Option<String>,
    /// The claim's node, if its lease is live.
    live_node: Option<String>,
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
        let (scope, key) = (scope.to_owned(), key.to_owned());
        let (request_hash, node) = (request_hash.to_owned(), node.to_owned());
        let expired = to_micros(now - RETENTION);
        let now = to_micros(now);
        self.write(job!(|c| {
            // Forget an expired use of the key first.
            run!(c.execute(diesel::delete(
                idempotency_keys::table
                    .find((&scope, &key))
                    .filter(idempotency_keys::created_at.lt(expired))
            )))?;
            // With the node that holds the claim, if its lease is live.
            let existing: Option<Existing> = run!(c.optional_first(
                idempotency_keys::table
                    .left_join(
                        nodes::table.on(nodes::id
                            .nullable()
                            .eq(idempotency_keys::node_id)
                            .and(nodes::lease_until.ge(now)))
                    )
                    .filter(idempotency_keys::scope.eq(&scope))
                    .filter(idempotency_keys::key.eq(&key))
                    .select((
                        idempotency_keys::request_hash,
                        idempotency_keys::status,
                        idempotency_keys::content_type,
                        idempotency_keys::location,
                        idempotency_keys::body,
                        idempotency_keys::task_id,
                        nodes::id.nullable(),
                    ))
            ))?;
            let Some(existing) = existing else {
                // Another node may claim it between our read and insert:
                // then it is theirs, in progress. (Not a failed insert: on
                // PostgreSQL that would end the transaction.)
                let inserted = run!(c.execute(
                    diesel::insert_into(idempotency_keys::table)
                        .values((
                            idempotency_keys::scope.eq(&scope),
                            idempotency_keys::key.eq(&key),
                            idempotency_keys::request_hash.eq(&request_hash),
                            idempotency_keys::created_at.eq(now),
                            idempotency_keys::node_id.eq(&node),
                        ))
                        .on_conflict((idempotency_keys::scope, idempotency_keys::key))
                        .do_nothing()
                ))?;
                return Ok(if inserted == 1 {
                    Claim::Started
                } else {
                    Claim::InProgress
                });
            };
            if existing.request_hash != request_hash {
                return Ok(Claim::Mismatch);
            }
            if let Some(status) = existing.status {
                return Ok(Claim::Replay(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    content_type: existing.content_type,
                    location: existing.location,
                    body: existing.body.unwrap_or_default(),
                }));
            }
            if let Some(task) = existing.task_id {
                return Ok(Claim::Task(task));
            }
            if existing.live_node.is_some() {
                return Ok(Claim::InProgress);
            }
            run!(c.execute(
                diesel::update(idempotency_keys::table.find((&scope, &key)))
                    .set(idempotency_keys::node_id.eq(&node))
            ))?;
            Ok(Claim::Started)
        }))
        .await
    }

    /// Records the response of a claimed key.
    pub async fn complete_idempotency_key(
        &self,
        scope: &str,
        key: &str,
        response: &StoredResponse,
    ) -> Result<()> {
        let (scope, key, response) = (scope.to_owned(), key.to_owned(), response.clone());
        self.write(job!(|c| {
            run!(c.execute(
                diesel::update(idempotency_keys::table.find((&scope, &key))).set((
                    idempotency_keys::status.eq(i64::from(response.status)),
                    idempotency_keys::content_type.eq(&response.content_type),
                    idempotency_keys::location.eq(&response.location),
                    idempotency_keys::body.eq(&response.body),
                ))
            ))?;
            Ok(())
        }))
        .await
    }

    /// Gives a claimed key up (the request failed in a way worth retrying).
    pub async fn release_idempotency_key(&self, scope: &str, key: &str) -> Result<()> {
        let (scope, key) = (scope.to_owned(), key.to_owned());
        self.write(job!(|c| {
            run!(c.execute(diesel::delete(
                idempotency_keys::table
                    .find((&scope, &key))
                    .filter(idempotency_keys::status.is_null())
            )))?;
            Ok(())
        }))
        .await
    }

    /// Drops keys older than the retention period.
    pub async fn purge_idempotency_keys(&self, now: DateTime<Utc>) -> Result<u64> {
        let expired = to_micros(now - RETENTION);
        self.write(job!(|c| {
            let purged = run!(c.execute(diesel::delete(
                idempotency_keys::table.filter(idempotency_keys::created_at.lt(expired))
            )))?;
            Ok(u64::try_from(purged).unwrap_or(0))
        }))
        .await
    }
}
