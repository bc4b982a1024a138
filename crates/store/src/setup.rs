//! First-run setup: the platform's one-time initialization.

use crate::door::{job, run, run_raw, unless_taken};
use crate::organizations::add_organization;
use crate::tables::{datacenters, platform_settings};
use crate::users::add_user;
use crate::{builtin_roles, NewOrganization, NewUser, Organization, Store, User};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::{Error, ErrorCode, Result};

const INITIALIZED: &str = "initialized";

fn already_set_up() -> Error {
    Error::new(ErrorCode::AlreadySetUp, "Nephele has already been set up")
}

impl Store {
    pub async fn is_initialized(&self) -> Result<bool> {
        let mut c = self.door.reader().await?;
        let n: i64 = run!(c.get_result(
            platform_settings::table
                .filter(platform_settings::key.eq(INITIALIZED))
                .count()
        ))?;
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
        let (org, admin) = (org.clone(), admin.clone());
        self.write(job!(|c| {
            let now = to_micros(org.now);
            unless_taken(
                run_raw!(
                    c.execute(diesel::insert_into(platform_settings::table).values((
                        platform_settings::key.eq(INITIALIZED),
                        platform_settings::value.eq(org.id.to_string()),
                        platform_settings::updated_at.eq(now),
                    )))
                ),
                "platform_settings",
                already_set_up,
            )?;
            let organization = add_organization(c, &org).await?;
            // This server's data center was seeded by a migration; it dates
            // from setup.
            run!(c.execute(
                diesel::update(datacenters::table.find(crate::Datacenter::LOCAL.to_string())).set(
                    (
                        datacenters::created_at.eq(now),
                        datacenters::updated_at.eq(now),
                    )
                )
            ))?;
            let user = add_user(c, &admin, &[builtin_roles::ADMIN]).await?;
            Ok((organization, user))
        }))
        .await
    }
}
