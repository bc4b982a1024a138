use crate::door::{job, run, run_raw, unless_taken};
use crate::tables::api_keys;
use crate::{ApiKey, NewApiKey, Store};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::{ApiKeyId, UserId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};

/// How stale `lastUsedAt` may get before a use writes it again: one write
/// per key per minute, not one per request.
const LAST_USED_GRANULARITY_MICROS: i64 = 60_000_000;

impl Store {
    /// A user's keys, by id.
    pub async fn list_api_keys(&self, user: UserId, page: &PageRequest) -> Result<Page<ApiKey>> {
        // Every id is after the empty text.
        let after = page.after.clone().unwrap_or_default();
        let mut c = self.door.reader().await?;
        let keys = run!(c.load(
            api_keys::table
                .select(ApiKey::as_select())
                .filter(api_keys::user_id.eq(user.to_string()))
                .filter(api_keys::id.gt(&after))
                .order(api_keys::id)
                .limit(i64::from(page.limit) + 1)
        ))?;
        Ok(Page::from_rows(keys, page.limit, |k| k.id.to_string()))
    }

    pub async fn create_api_key(&self, new: &NewApiKey) -> Result<ApiKey> {
        let key = ApiKey {
            id: new.id,
            user_id: new.user_id,
            name: new.name.to_string(),
            prefix: new.prefix.clone(),
            created_at: new.now,
            updated_at: new.now,
            last_used_at: None,
            version: 1,
        };
        let row = key.clone();
        let secret_hash = new.secret_hash.clone();
        self.write(job!(|c| {
            unless_taken(
                run_raw!(c.execute(diesel::insert_into(api_keys::table).values((
                    api_keys::id.eq(row.id.to_string()),
                    api_keys::user_id.eq(row.user_id.to_string()),
                    api_keys::name.eq(&row.name),
                    api_keys::prefix.eq(&row.prefix),
                    api_keys::secret_hash.eq(&secret_hash),
                    api_keys::created_at.eq(to_micros(row.created_at)),
                    api_keys::updated_at.eq(to_micros(row.updated_at)),
                    api_keys::version.eq(row.version),
                )))),
                "name",
                || Error::name_taken("api-keys", "name", &row.name),
            )
            .map(drop)
        }))
        .await?;
        Ok(key)
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
        let (prefix, secret_hash) = (prefix.to_owned(), secret_hash.to_owned());
        self.write(job!(|c| {
            run!(c.optional_get_result(
                diesel::update(
                    api_keys::table
                        .find(id.to_string())
                        .filter(api_keys::user_id.eq(user.to_string()))
                )
                .set((
                    api_keys::prefix.eq(&prefix),
                    api_keys::secret_hash.eq(&secret_hash),
                    api_keys::updated_at.eq(to_micros(now)),
                    api_keys::version.eq(api_keys::version + 1),
                ))
                .returning(ApiKey::as_returning())
            ))?
            .ok_or_else(|| Error::not_found("api-keys", id))
        }))
        .await
    }

    /// Deletes one of a user's keys; another user's key does not exist.
    pub async fn delete_api_key(&self, user: UserId, id: ApiKeyId) -> Result<()> {
        let _change = self.access_change();
        self.write(job!(|c| {
            let deleted = run!(c.execute(diesel::delete(
                api_keys::table
                    .find(id.to_string())
                    .filter(api_keys::user_id.eq(user.to_string()))
            )))?;
            if deleted == 0 {
                return Err(Error::not_found("api-keys", id));
            }
            Ok(())
        }))
        .await
    }

    /// The key whose secret hashes to `secret_hash`, if any.
    pub async fn api_key_by_hash(&self, secret_hash: &str) -> Result<Option<ApiKey>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            api_keys::table
                .select(ApiKey::as_select())
                .filter(api_keys::secret_hash.eq(secret_hash))
        ))
    }

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
        let id = key.id;
        self.write(job!(|c| {
            run!(c.execute(
                diesel::update(api_keys::table.find(id.to_string()))
                    .filter(
                        api_keys::last_used_at
                            .is_null()
                            .or(api_keys::last_used_at.lt(now - LAST_USED_GRANULARITY_MICROS))
                    )
                    .set(api_keys::last_used_at.eq(now))
            ))?;
            Ok(())
        }))
        .await?;
        Ok(true)
    }
}
