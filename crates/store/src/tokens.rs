//! The token service's state: signing keys, refresh tokens and revoked
//! access tokens.

use crate::db::{col, col_id, col_opt_id, col_time, db_error, lock_invariants};
use crate::Backend;
use crate::{RefreshOutcome, RefreshSpend, RefreshToken, RevokedToken, Store, StoredSigningKey};
use chrono::{DateTime, Utc};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{ClientId, RefreshTokenId, SigningKeyId};
use nephele_common::Result;
use sqlx::any::AnyRow;
use sqlx::Row;

const KEY_COLUMNS: &str =
    "id, purpose, algorithm, sealed_key, public_jwk, created_at, retired_at, expires_at";

fn key_from_row(r: &AnyRow) -> Result<StoredSigningKey> {
    Ok(StoredSigningKey {
        id: col_id(r, "id")?,
        purpose: col(r, "purpose")?,
        algorithm: col(r, "algorithm")?,
        sealed_key: col(r, "sealed_key")?,
        public_jwk: col(r, "public_jwk")?,
        created_at: col_time(r, "created_at")?,
        retired_at: col::<Option<i64>>(r, "retired_at")?.map(from_micros),
        expires_at: col::<Option<i64>>(r, "expires_at")?.map(from_micros),
    })
}

/// The columns a refresh token is inserted with.
const REFRESH_INSERT: &str = "INSERT INTO refresh_tokens (id, family_id, parent_id, token_hash, \
                              user_id, organization_id, client_id, scope, session_generation, \
                              created_at, expires_at, used_at, revoked_at)";

const REFRESH_COLUMNS: &str = "id, family_id, user_id, organization_id, client_id, scope, \
                               session_generation, created_at, expires_at, used_at, revoked_at";

fn refresh_from_row(r: &AnyRow) -> Result<RefreshToken> {
    Ok(RefreshToken {
        id: col_id(r, "id")?,
        family_id: col_id(r, "family_id")?,
        user_id: col_opt_id(r, "user_id")?,
        organization_id: col_id(r, "organization_id")?,
        client_id: col_opt_id(r, "client_id")?,
        scope: col(r, "scope")?,
        session_generation: col(r, "session_generation")?,
        created_at: col_time(r, "created_at")?,
        expires_at: col_time(r, "expires_at")?,
        used_at: col::<Option<i64>>(r, "used_at")?.map(from_micros),
        revoked_at: col::<Option<i64>>(r, "revoked_at")?.map(from_micros),
    })
}

impl Store {
    /// Every key that may still verify a live token, oldest first.
    pub async fn live_signing_keys(&self, now: DateTime<Utc>) -> Result<Vec<StoredSigningKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {KEY_COLUMNS} FROM signing_keys WHERE expires_at IS NULL OR expires_at > $1 \
             ORDER BY created_at, id"
        ))
        .bind(to_micros(now))
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter().map(key_from_row).collect()
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
        let mut tx = self.write.begin().await.map_err(db_error)?;
        lock_invariants(self, &mut tx).await?;
        let active: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM signing_keys WHERE purpose = $1 AND retired_at IS NULL",
        )
        .bind(&new.purpose)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let expected: Vec<String> = current.iter().map(|id| id.to_string()).collect();
        if active != expected {
            return Ok(false);
        }
        if let Some(current) = current {
            sqlx::query("UPDATE signing_keys SET retired_at = $2, expires_at = $3 WHERE id = $1")
                .bind(current.to_string())
                .bind(to_micros(new.created_at))
                .bind(to_micros(current_expires_at))
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        sqlx::query(
            "INSERT INTO signing_keys (id, purpose, algorithm, sealed_key, public_jwk, created_at, \
             retired_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        )
        .bind(new.id.to_string())
        .bind(&new.purpose)
        .bind(&new.algorithm)
        .bind(&new.sealed_key)
        .bind(&new.public_jwk)
        .bind(to_micros(new.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        sqlx::query("DELETE FROM signing_keys WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(to_micros(new.created_at))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(true)
    }

    /// Stores the first refresh token of a new family.
    pub async fn create_refresh_token(&self, token: &RefreshToken, hash: &str) -> Result<()> {
        sqlx::query(&format!(
            "{REFRESH_INSERT} VALUES ($1, $2, NULL, $3, $4, $5, $6, $7, $8, $9, $10, NULL, NULL)"
        ))
        .bind(token.id.to_string())
        .bind(token.family_id.to_string())
        .bind(hash)
        .bind(token.user_id.map(|u| u.to_string()))
        .bind(token.organization_id.to_string())
        .bind(token.client_id.map(|c| c.to_string()))
        .bind(&token.scope)
        .bind(token.session_generation)
        .bind(to_micros(token.created_at))
        .bind(to_micros(token.expires_at))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
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
        // A token of an older session generation is dead: it was rotated
        // while the user's sessions ended, after they deleted the rest.
        let spend_sql = "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 \
                     AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $1 \
                     AND (client_id = $3 OR (client_id IS NULL AND $3 IS NULL)) \
                     AND (user_id IS NULL OR session_generation = (SELECT u.session_generation \
                     FROM users u WHERE u.id = refresh_tokens.user_id)) \
                     RETURNING id, family_id, user_id, organization_id, client_id, scope, \
                     session_generation";
        let postgres = self.backend() == Backend::Postgres;
        let insert = if postgres {
            format!(
                "WITH spent AS ({spend_sql}) {REFRESH_INSERT} SELECT $4, family_id, id, $5, \
                 user_id, organization_id, client_id, scope, session_generation, $1, $6, NULL, \
                 NULL FROM spent RETURNING {REFRESH_COLUMNS}"
            )
        } else {
            format!(
                "{REFRESH_INSERT} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, \
                 NULL) RETURNING {REFRESH_COLUMNS}"
            )
        };
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let mut successors = Vec::with_capacity(batch.len());
        for spend in batch {
            if postgres {
                let row = sqlx::query(&insert)
                    .bind(to_micros(spend.now))
                    .bind(&spend.hash)
                    .bind(spend.client.map(|c| c.to_string()))
                    .bind(spend.next_id.to_string())
                    .bind(&spend.next_hash)
                    .bind(to_micros(spend.next_expires))
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_error)?;
                successors.push(row.as_ref().map(refresh_from_row).transpose()?);
                continue;
            }
            let spent = sqlx::query(spend_sql)
                .bind(to_micros(spend.now))
                .bind(&spend.hash)
                .bind(spend.client.map(|c| c.to_string()))
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
            let Some(parent) = spent else {
                successors.push(None);
                continue;
            };
            let text = |i: usize| parent.try_get::<Option<String>, _>(i).map_err(db_error);
            let row = sqlx::query(&insert)
                .bind(spend.next_id.to_string())
                .bind(text(1)?)
                .bind(text(0)?)
                .bind(&spend.next_hash)
                .bind(text(2)?)
                .bind(text(3)?)
                .bind(text(4)?)
                .bind(text(5)?)
                .bind(parent.try_get::<i64, _>(6).map_err(db_error)?)
                .bind(to_micros(spend.now))
                .bind(to_micros(spend.next_expires))
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
            successors.push(Some(refresh_from_row(&row)?));
        }
        tx.commit().await.map_err(db_error)?;
        Ok(successors)
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
        let row = sqlx::query(&format!(
            "SELECT {REFRESH_COLUMNS} FROM refresh_tokens WHERE token_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(refresh_from_row).transpose()
    }

    /// Revokes every refresh token of a family.
    pub async fn revoke_refresh_family(
        &self,
        family: RefreshTokenId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family.to_string())
        .bind(to_micros(now))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Records an access token's revocation (once; repeating it is a no-op).
    pub async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO revoked_tokens (jti, expires_at, revoked_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(to_micros(expires_at))
        .bind(to_micros(now))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Access tokens revoked at or after `since` that have not expired.
    pub async fn revoked_since(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Vec<RevokedToken>> {
        let rows = sqlx::query(
            "SELECT jti, expires_at, revoked_at FROM revoked_tokens \
             WHERE revoked_at >= $1 AND expires_at > $2",
        )
        .bind(to_micros(since))
        .bind(to_micros(now))
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(RevokedToken {
                    jti: col(r, "jti")?,
                    expires_at: col_time(r, "expires_at")?,
                    revoked_at: col_time(r, "revoked_at")?,
                })
            })
            .collect()
    }

    /// Forgets what can no longer matter: revocations of expired access
    /// tokens and expired refresh tokens.
    pub async fn purge_expired_tokens(&self, now: DateTime<Utc>) -> Result<()> {
        for sql in [
            "DELETE FROM revoked_tokens WHERE expires_at <= $1",
            "DELETE FROM refresh_tokens WHERE expires_at <= $1",
        ] {
            sqlx::query(sql)
                .bind(to_micros(now))
                .execute(&self.write)
                .await
                .map_err(db_error)?;
        }
        Ok(())
    }

    /// Revokes every refresh token a client holds (its secret was reset or
    /// it was disabled).
    pub async fn revoke_client_refresh_tokens(
        &self,
        client: ClientId,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
        )
        .bind(client.to_string())
        .bind(to_micros(now))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }
}
