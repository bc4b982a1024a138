use crate::db::{col, col_id, col_time, db_error, unique_violation};
use crate::{ApiKey, NewApiKey, Store};
use chrono::{DateTime, Utc};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{ApiKeyId, UserId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, user_id, name, prefix, created_at, updated_at, last_used_at, version";

fn key_from_row(r: &AnyRow) -> Result<ApiKey> {
    Ok(ApiKey {
        id: col_id(r, "id")?,
        user_id: col_id(r, "user_id")?,
        name: col(r, "name")?,
        prefix: col(r, "prefix")?,
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        last_used_at: col::<Option<i64>>(r, "last_used_at")?.map(from_micros),
        version: col(r, "version")?,
    })
}

/// How stale `lastUsedAt` may get before a use writes it again: one write
/// per key per minute, not one per request.
const LAST_USED_GRANULARITY_MICROS: i64 = 60_000_000;

impl Store {
    /// A user's keys, by id.
    pub async fn list_api_keys(&self, user: UserId, page: &PageRequest) -> Result<Page<ApiKey>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 AND ($2 IS NULL OR id > $2) \
             ORDER BY id LIMIT $3"
        ))
        .bind(user.to_string())
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let keys = rows.iter().map(key_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(keys, page.limit, |k| k.id.to_string()))
    }

    pub async fn create_api_key(&self, new: &NewApiKey) -> Result<ApiKey> {
        sqlx::query(
            "INSERT INTO api_keys (id, user_id, name, prefix, secret_hash, created_at, updated_at, \
             last_used_at, version) VALUES ($1, $2, $3, $4, $5, $6, $6, NULL, 1)",
        )
        .bind(new.id.to_string())
        .bind(new.user_id.to_string())
        .bind(new.name.as_str())
        .bind(&new.prefix)
        .bind(&new.secret_hash)
        .bind(to_micros(new.now))
        .execute(&self.write)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(c) if c.contains("name") => Error::name_taken("api-keys", "name", new.name.as_str()),
            _ => db_error(e),
        })?;
        Ok(ApiKey {
            id: new.id,
            user_id: new.user_id,
            name: new.name.to_string(),
            prefix: new.prefix.clone(),
            created_at: new.now,
            updated_at: new.now,
            last_used_at: None,
            version: 1,
        })
    }

    /// Replaces a key's secret: the old one stops working at once.
    pub async fn regenerate_api_key(
        &self,
        user: UserId,
        id: ApiKeyId,
        prefix: &str,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiKey> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let done = sqlx::query(
            "UPDATE api_keys SET prefix = $1, secret_hash = $2, updated_at = $3, \
             version = version + 1 WHERE id = $4 AND user_id = $5",
        )
        .bind(prefix)
        .bind(secret_hash)
        .bind(to_micros(now))
        .bind(id.to_string())
        .bind(user.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("api-keys", id));
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
            .bind(id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
        let key = key_from_row(&row)?;
        tx.commit().await.map_err(db_error)?;
        Ok(key)
    }

    /// Deletes one of a user's keys; another user's key does not exist.
    pub async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<()> {
        let _change = self.access_change();
        let done = sqlx::query("DELETE FROM api_keys WHERE id = $1 AND user_id = $2")
            .bind(id.to_string())
            .bind(user.to_string())
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("api-keys", id));
        }
        Ok(())
    }

    /// The key whose secret hashes to `secret_hash`, if any.
    pub async fn api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_keys WHERE secret_hash = $1"
        ))
        .bind(secret_hash)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Records a use of the key, at most once per minute.
    /// Records a use of `key`, at most once per granularity; true when it
    /// wrote.
    pub async fn touch_api_key(&self, key: &ApiKey, now: DateTime<Utc>) -> Result<bool> {
        let now = to_micros(now);
        let fresh = key
            .last_used_at
            .is_some_and(|t| now - to_micros(t) < LAST_USED_GRANULARITY_MICROS);
        if fresh {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $1 WHERE id = $2 \
             AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(now)
        .bind(key.id.to_string())
        .bind(now - LAST_USED_GRANULARITY_MICROS)
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(true)
    }
}
