//! First-run setup: the platform's one-time initialization.

use crate::clients::add_client;
use crate::door::{job, run, run_raw, unless_taken};
use crate::organizations::add_organization;
use crate::tables::{datacenters, platform_settings};
use crate::users::add_user;
use crate::{builtin_roles, NewApiClient, NewOrganization, NewUser, Organization, Store, User};
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

    /// Creates the root organization, its first admin and the CLI's
    /// client ([`crate::ApiClient::CLI`]), once. The marker
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
            add_client(c, &NewApiClient::cli(organization.id, org.now)?).await?;
            Ok((organization, user))
        }))
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::door::execute_batch;
    use crate::{ApiClient, Datacenter};
    use nephele_common::ids::{OrganizationId, UserId};
    use nephele_common::names::{Email, Login, Name};
    use nephele_common::status::UserStatus;

    /// Setup registers the CLI's client; migration 0017 registers it for
    /// a platform set up before there was one, once.
    #[tokio::test]
    async fn the_cli_client_comes_with_setup_and_with_the_upgrade() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, &crate::StoreOptions::default())
            .await
            .expect("store");
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).expect("a time");
        let org = NewOrganization {
            id: OrganizationId::new(),
            parent_id: None,
            name: Name::parse("Root").expect("a name"),
            now,
        };
        let admin = NewUser {
            id: UserId::new(),
            organization_id: org.id,
            login: Login::parse("admin").expect("a login"),
            email: Email::parse("admin@example.test").expect("an e-mail"),
            password_hash: String::new(),
            status: UserStatus::Enabled,
            datacenter_id: Datacenter::LOCAL,
            now,
        };
        store.initialize(&org, &admin).await.expect("set up");
        let cli = store
            .client(ApiClient::CLI)
            .await
            .expect("read")
            .expect("registered");
        assert_eq!(cli.organization_id, org.id);
        assert!(cli.is_public() && cli.sign_in.first_party);
        assert_eq!(cli.sign_in.redirect_uris, [ApiClient::CLI_REDIRECT_URI]);

        let upgrade = include_str!("../migrations/sqlite/0017_cli_client.sql");
        let gone = format!("DELETE FROM api_clients WHERE id = '{}'", ApiClient::CLI);
        store
            .write(job!(|c| {
                execute_batch(c, &gone).await?;
                execute_batch(c, upgrade).await?;
                execute_batch(c, upgrade).await
            }))
            .await
            .expect("the upgrade, twice");
        let again = store
            .client(ApiClient::CLI)
            .await
            .expect("read")
            .expect("registered");
        assert_eq!(
            (again.organization_id, again.sign_in.grant_types),
            (org.id, cli.sign_in.grant_types)
        );
    }
}
