//! First-run setup: the platform's one-time initialization.

use crate::db::{db_error, unique_violation};
use crate::organizations::insert_organization;
use crate::users::insert_user;
use crate::{builtin_roles, NewOrganization, NewUser, Organization, Store, User};
use nephele_common::clock::to_micros;
use nephele_common::{Error, ErrorCode, Result};

const INITIALIZED: &str = "initialized";

fn already_set_up() -> Error {
    Error::new(ErrorCode::AlreadySetUp, "Nephele has already been set up")
}

impl Store {
    pub async fn is_initialized(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM platform_settings WHERE key = $1")
            .bind(INITIALIZED)
            .fetch_one(&self.read)
            .await
            .map_err(db_error)?;
        Ok(n > 0)
    }

    /// Creates the root organization and its first admin, once. The marker
    /// row is written first in the same transaction, so of concurrent
    /// attempts (on one node or many) exactly one commits; the others fail
    /// on its primary key and get 409.
    pub async fn initialize(
        &self,
        org: &NewOrganization,
        admin: &NewUser,
    ) -> Result<(Organization, User)> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        sqlx::query("INSERT INTO platform_settings (key, value, updated_at) VALUES ($1, $2, $3)")
            .bind(INITIALIZED)
            .bind(org.id.to_string())
            .bind(to_micros(org.now))
            .execute(&mut *tx)
            .await
            .map_err(|e| match unique_violation(&e) {
                Some(_) => already_set_up(),
                None => db_error(e),
            })?;
        let organization = insert_organization(&mut tx, org).await?;
        // This server's data center was seeded by a migration; it dates
        // from setup.
        sqlx::query("UPDATE datacenters SET created_at = $1, updated_at = $1 WHERE id = $2")
            .bind(to_micros(org.now))
            .bind(crate::Datacenter::LOCAL.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        let user = insert_user(&mut tx, self, admin, &[builtin_roles::ADMIN]).await?;
        tx.commit().await.map_err(|e| match unique_violation(&e) {
            Some(_) => already_set_up(),
            None => db_error(e),
        })?;
        Ok((organization, user))
    }
}
