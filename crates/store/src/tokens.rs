//! The token service's state: signing keys, refresh tokens and revoked
//! access tokens.

use crate::door::{job, lock_invariants, run, Conn};
use crate::tables::{refresh_tokens, revoked_tokens, signing_keys};
use crate::{RefreshOutcome, RefreshSpend, RefreshToken, RevokedToken, Store, StoredSigningKey};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use nephele_common::clock::to_micros;
use nephele_common::ids::{ClientId, RefreshTokenId, SigningKeyId};
use nephele_common::Result;

/// Spends a refresh token: `$1` now, `$2` its hash, `$3` the client
/// presenting it. A token of an older session generation is dead: it was
/// rotated while the user's sessions ended, after they deleted the rest.
/// (The generation is a correlated subquery, which diesel's DSL does not
/// say.)
const SPEND: &str = "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 \
     AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
     AND (client_id = $3 OR (client_id IS NULL AND $3 IS NULL)) \
     AND (user_id IS NULL OR session_generation = (SELECT u.session_generation \
     FROM users u WHERE u.id = refresh_tokens.user_id)) \
     RETURNING id, family_id, user_id, organization_id, client_id, scope, session_generation";

/// What [`SPEND`] returns of the spent token: what its successor inherits.
#[derive(QueryableByName)]
#[diesel(table_name = refresh_tokens, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
struct Spent {
    id: String,
    family_id: String,
    user_id: Option<String>,
    organization_id: String,
    client_id: Option<String>,
    scope: String,
    session_generation: i64,
}

/// [`SPEND`] and its successor's insert in one statement, for PostgreSQL:
/// `$4` the successor's id, `$5` its hash, `$6` its expiry.
fn spend_and_insert() -> String {
    format!(
        "WITH spent AS ({SPEND}) INSERT INTO refresh_tokens (id, family_id, parent_id, \
         token_hash, user_id, organization_id, client_id, scope, session_generation, created_at, \
         expires_at, used_at, revoked_at) SELECT $4, family_id, id, $5, user_id, \
         organization_id, client_id, scope, session_generation, $1, $6, NULL, NULL FROM spent \
         RETURNING id, family_id, user_id, organization_id, client_id, scope, \
         session_generation, created_at, expires_at, used_at, revoked_at"
    )
}

impl Store {
    /// Every key that may still verify a live token, oldest first.
    pub async fn live_signing_keys(&self, now: DateTime<Utc>) -> Result<Vec<StoredSigningKey>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            signing_keys::table
                .select(StoredSigningKey::as_select())
                .filter(
                    signing_keys::expires_at
                        .is_null()
                        .or(signing_keys::expires_at.gt(to_micros(now)))
                )
                .order((signing_keys::created_at, signing_keys::id))
        ))
    }

    /// Makes `new` the current key of its purpose, retiring `current`
    /// (which stays published until `current_expires_at`). Another node may
    /// have rotated first: then nothing changes and the answer is `false`.
    pub async fn rotate_signing_key(
        &self,
        current: Option<SigningKeyId>,
        new: &StoredSigningKey,
        current_expires_at: DateTime<Utc>,
    ) -> Result<bool> {
        let new = new.clone();
        self.write(job!(|c| {
            lock_invariants(c).await?;
            let active: Vec<String> = run!(c.load(
                signing_keys::table
                    .select(signing_keys::id)
                    .filter(signing_keys::purpose.eq(&new.purpose))
                    .filter(signing_keys::retired_at.is_null())
            ))?;
            let expected: Vec<String> = current.iter().map(|id| id.to_string()).collect();
            if active != expected {
                return Ok(false);
            }
            let created_at = to_micros(new.created_at);
            if let Some(current) = current {
                run!(c.execute(
                    diesel::update(signing_keys::table.find(current.to_string())).set((
                        signing_keys::retired_at.eq(created_at),
                        signing_keys::expires_at.eq(to_micros(current_expires_at)),
                    ))
                ))?;
            }
            run!(c.execute(diesel::insert_into(signing_keys::table).values((
                signing_keys::id.eq(new.id.to_string()),
                signing_keys::purpose.eq(&new.purpose),
                signing_keys::algorithm.eq(&new.algorithm),
                signing_keys::sealed_key.eq(&new.sealed_key),
                signing_keys::public_jwk.eq(&new.public_jwk),
                signing_keys::created_at.eq(created_at),
            ))))?;
            run!(c.execute(diesel::delete(
                signing_keys::table
                    .filter(signing_keys::expires_at.is_not_null())
                    .filter(signing_keys::expires_at.le(created_at))
            )))?;
            Ok(true)
        }))
        .await
    }

    /// Stores the first refresh token of a new family.
    pub async fn create_refresh_token(&self, token: &RefreshToken, hash: &str) -> Result<()> {
        let token = token.clone();
        let hash = hash.to_owned();
        self.write(job!(|c| {
            run!(
                c.execute(diesel::insert_into(refresh_tokens::table).values((
                    refresh_tokens::id.eq(token.id.to_string()),
                    refresh_tokens::family_id.eq(token.family_id.to_string()),
                    refresh_tokens::token_hash.eq(&hash),
                    refresh_tokens::user_id.eq(token.user_id.map(|u| u.to_string())),
                    refresh_tokens::organization_id.eq(token.organization_id.to_string()),
                    refresh_tokens::client_id.eq(token.client_id.map(|c| c.to_string())),
                    refresh_tokens::scope.eq(&token.scope),
                    refresh_tokens::session_generation.eq(token.session_generation),
                    refresh_tokens::created_at.eq(to_micros(token.created_at)),
                    refresh_tokens::expires_at.eq(to_micros(token.expires_at)),
                )))
            )?;
            Ok(())
        }))
        .await
    }

    /// Spends refresh tokens and stores their successors, in one
    /// transaction for the whole batch (group commit). For each, the
    /// successor, or `None` when the token was not live for that client
    /// (then [`Store::refresh_failure`] tells why). Of two uses of one
    /// token, in one batch or concurrently, only one gets a successor.
    ///
    /// Each spends its token with `UPDATE … RETURNING` and inserts the
    /// successor from what that returned, in the batch's transaction: on
    /// PostgreSQL in one statement (a data-modifying CTE, whose row lock
    /// makes a concurrent second use find the token spent), on SQLite,
    /// which has no such CTE, in two (its one writer serializes them).
    pub async fn spend_refresh_tokens(
        &self,
        batch: &[RefreshSpend],
    ) -> Result<Vec<Option<RefreshToken>>> {
        let batch = batch.to_vec();
        self.write(job!(|c| {
            let postgres = matches!(c, Conn::Pg(_));
            let both = spend_and_insert();
            let mut successors = Vec::with_capacity(batch.len());
            for spend in batch {
                let now = to_micros(spend.now);
                let client = spend.client.map(|c| c.to_string());
                if postgres {
                    let next = run!(c.optional_get_result(
                        diesel::sql_query(&both)
                            .bind::<BigInt, _>(now)
                            .bind::<Text, _>(&spend.hash)
                            .bind::<Nullable<Text>, _>(&client)
                            .bind::<Text, _>(spend.next_id.to_string())
                            .bind::<Text, _>(&spend.next_hash)
                            .bind::<BigInt, _>(to_micros(spend.next_expires))
                    ))?;
                    successors.push(next);
                    continue;
                }
                let spent: Option<Spent> = run!(c.optional_get_result(
                    diesel::sql_query(SPEND)
                        .bind::<BigInt, _>(now)
                        .bind::<Text, _>(&spend.hash)
                        .bind::<Nullable<Text>, _>(&client)
                ))?;
                let Some(parent) = spent else {
                    successors.push(None);
                    continue;
                };
                let next = run!(c.get_result(
                    diesel::insert_into(refresh_tokens::table)
                        .values((
                            refresh_tokens::id.eq(spend.next_id.to_string()),
                            refresh_tokens::family_id.eq(&parent.family_id),
                            refresh_tokens::parent_id.eq(&parent.id),
                            refresh_tokens::token_hash.eq(&spend.next_hash),
                            refresh_tokens::user_id.eq(&parent.user_id),
                            refresh_tokens::organization_id.eq(&parent.organization_id),
                            refresh_tokens::client_id.eq(&parent.client_id),
                            refresh_tokens::scope.eq(&parent.scope),
                            refresh_tokens::session_generation.eq(parent.session_generation),
                            refresh_tokens::created_at.eq(now),
                            refresh_tokens::expires_at.eq(to_micros(spend.next_expires)),
                        ))
                        .returning(RefreshToken::as_returning())
                ))?;
                successors.push(Some(next));
            }
            Ok(successors)
        }))
        .await
    }

    /// Why a refresh token did not spend: unknown or dead (`Invalid`),
    /// another client's (`WrongClient`, left alone), or spent before
    /// (`Replayed`: its whole family is revoked now, RFC 9700 §4.14).
    pub async fn refresh_failure(
        &self,
        hash: &str,
        client: Option<ClientId>,
        now: DateTime<Utc>,
    ) -> Result<RefreshOutcome> {
        let Some(token) = self.refresh_token_by_hash(hash).await? else {
            return Ok(RefreshOutcome::Invalid);
        };
        if token.revoked_at.is_some() || token.expires_at <= now {
            return Ok(RefreshOutcome::Invalid);
        }
        if token.client_id != client {
            return Ok(RefreshOutcome::WrongClient(token));
        }
        self.revoke_refresh_family(token.family_id, now).await?;
        Ok(RefreshOutcome::Replayed(token))
    }

    pub async fn refresh_token_by_hash(&self, hash: &str) -> Result<Option<RefreshToken>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            refresh_tokens::table
                .select(RefreshToken::as_select())
                .filter(refresh_tokens::token_hash.eq(hash))
        ))
    }

    /// Revokes every refresh token of a family.
    pub async fn revoke_refresh_family(
        &self,
        family: RefreshTokenId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(
                diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::family_id.eq(family.to_string()))
                        .filter(refresh_tokens::revoked_at.is_null())
                )
                .set(refresh_tokens::revoked_at.eq(to_micros(now)))
            ))?;
            Ok(())
        }))
        .await
    }

    /// Records an access token's revocation (once; repeating it is a no-op).
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let jti = jti.to_owned();
        self.write(job!(|c| {
            run!(c.execute(
                diesel::insert_into(revoked_tokens::table)
                    .values((
                        revoked_tokens::jti.eq(&jti),
                        revoked_tokens::expires_at.eq(to_micros(expires_at)),
                        revoked_tokens::revoked_at.eq(to_micros(now)),
                    ))
                    .on_conflict(revoked_tokens::jti)
                    .do_nothing()
            ))?;
            Ok(())
        }))
        .await
    }

    /// Access tokens revoked at or after `since` that have not expired.
    pub async fn revoked_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<RevokedToken>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            revoked_tokens::table
                .select(RevokedToken::as_select())
                .filter(revoked_tokens::revoked_at.ge(to_micros(since)))
                .filter(revoked_tokens::expires_at.gt(to_micros(now)))
        ))
    }

    /// Forgets what can no longer matter: revocations of expired access
    /// tokens and expired refresh tokens.
    pub async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<()> {
        let now = to_micros(now);
        self.write(job!(|c| {
            run!(c.execute(diesel::delete(
                revoked_tokens::table.filter(revoked_tokens::expires_at.le(now))
            )))?;
            run!(c.execute(diesel::delete(
                refresh_tokens::table.filter(refresh_tokens::expires_at.le(now))
            )))?;
            Ok(())
        }))
        .await
    }

    /// Revokes every refresh token a client holds (its secret was reset or
    /// it was disabled).
    pub async fn revoke_client_refresh_tokens(
        &self,
        client: ClientId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(
                diesel::update(
                    refresh_tokens::table
                        .filter(refresh_tokens::client_id.eq(client.to_string()))
                        .filter(refresh_tokens::revoked_at.is_null())
                )
                .set(refresh_tokens::revoked_at.eq(to_micros(now)))
            ))?;
            Ok(())
        }))
        .await
    }
}
