//! First-run setup: the platform's one-time initialization.

use crate::door::{breaks_unique, db_error, job, lock_invariants, run};
use crate::tables::{datacenters, organizations, platform_settings, role_assignments, users};
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
        let n: i64 = run!(
            c,
            get_result,
            platform_settings::table
                .filter(platform_settings::key.eq(INITIALIZED))
                .count()
        )
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
        let organization = Organization {
            id: org.id,
            parent_id: org.parent_id,
            name: org.name.to_string(),
            created_at: org.now,
            updated_at: org.now,
            version: 1,
        };
        let user = User {
            id: admin.id,
            organization_id: admin.organization_id,
            login: admin.login.to_string(),
            email: admin.email.to_string(),
            password_hash: admin.password_hash.clone(),
            datacenter_id: admin.datacenter_id,
            session_generation: 0,
            created_at: admin.now,
            updated_at: admin.now,
            version: 1,
        };
        let (o, u) = (organization.clone(), user.clone());
        self.write(job!(|c| {
            let now = to_micros(o.created_at);
            let marked = run!(
                c,
                execute,
                diesel::insert_into(platform_settings::table).values((
                    platform_settings::key.eq(INITIALIZED),
                    platform_settings::value.eq(o.id.to_string()),
                    platform_settings::updated_at.eq(now),
                ))
            );
            match marked {
                Err(e) if breaks_unique(&e, "platform_settings") => return Err(already_set_up()),
                done => done.map_err(db_error)?,
            };
            let inserted = run!(
                c,
                execute,
                diesel::insert_into(organizations::table).values((
                    organizations::id.eq(o.id.to_string()),
                    organizations::parent_id.eq(o.parent_id.map(|p| p.to_string())),
                    organizations::name.eq(&o.name),
                    organizations::created_at.eq(now),
                    organizations::updated_at.eq(now),
                    organizations::version.eq(o.version),
                ))
            );
            match inserted {
                Err(e) if breaks_unique(&e, "organizations") => {
                    return Err(Error::name_taken("organizations", "name", &o.name))
                }
                done => done.map_err(db_error)?,
            };
            // This server's data center was seeded by a migration; it dates
            // from setup.
            run!(
                c,
                execute,
                diesel::update(datacenters::table.find(crate::Datacenter::LOCAL.to_string())).set(
                    (
                        datacenters::created_at.eq(now),
                        datacenters::updated_at.eq(now),
                    )
                )
            )
            .map_err(db_error)?;
            // The admin's home is checked under the lock a data center's
            // delete looks for users under (see `users`).
            lock_invariants(c).await?;
            let home: i64 = run!(
                c,
                get_result,
                datacenters::table.find(u.datacenter_id.to_string()).count()
            )
            .map_err(db_error)?;
            if home == 0 {
                return Err(Error::invalid("datacenterId", "no such data center"));
            }
            let inserted = run!(
                c,
                execute,
                diesel::insert_into(users::table).values((
                    users::id.eq(u.id.to_string()),
                    users::organization_id.eq(u.organization_id.to_string()),
                    users::login.eq(&u.login),
                    users::email.eq(&u.email),
                    users::password_hash.eq(&u.password_hash),
                    users::datacenter_id.eq(u.datacenter_id.to_string()),
                    users::created_at.eq(to_micros(u.created_at)),
                    users::updated_at.eq(to_micros(u.updated_at)),
                    users::version.eq(u.version),
                ))
            );
            // Login and e-mail are unique platform-wide.
            match inserted {
                Err(e) if breaks_unique(&e, "email") => {
                    return Err(Error::name_taken("users", "email", &u.email))
                }
                Err(e) if breaks_unique(&e, "users") => {
                    return Err(Error::name_taken("users", "login", &u.login))
                }
                done => done.map_err(db_error)?,
            };
            run!(
                c,
                execute,
                diesel::insert_into(role_assignments::table).values((
                    role_assignments::user_id.eq(u.id.to_string()),
                    role_assignments::role_id.eq(builtin_roles::ADMIN.to_string()),
                    role_assignments::organization_id.eq(u.organization_id.to_string()),
                ))
            )
            .map_err(db_error)?;
            Ok(())
        }))
        .await?;
        Ok((organization, user))
    }
}
