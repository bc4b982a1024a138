use crate::columns::{MaybeParsed, Micros, Parsed};
use crate::door::{job, lower, refuse_while_held, run, run_raw, unless_taken, Conn};
use crate::tables::{client_role_assignments, role_assignments, roles};
use crate::{NewRole, Role, Store};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sqlite::Sqlite;
use nephele_common::clock::to_micros;
use nephele_common::ids::{OrganizationId, RoleId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Precondition, Result};
use std::collections::HashMap;

/// A row of `roles`; its permissions are one space-separated text.
#[derive(Queryable, Selectable)]
#[diesel(table_name = roles, check_for_backend(Sqlite, Pg))]
struct RoleRow {
    #[diesel(deserialize_as = Parsed<RoleId>)]
    id: RoleId,
    #[diesel(deserialize_as = MaybeParsed<OrganizationId>)]
    organization_id: Option<OrganizationId>,
    name: String,
    permissions: String,
    #[diesel(deserialize_as = Micros)]
    created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<RoleRow> for Role {
    fn from(r: RoleRow) -> Role {
        Role {
            id: r.id,
            organization_id: r.organization_id,
            name: r.name,
            permissions: permission_list(&r.permissions),
            created_at: r.created_at,
            updated_at: r.updated_at,
            version: r.version,
        }
    }
}

/// Permission names as `roles.permissions` stores them: one text,
/// separated by spaces.
pub(crate) fn permission_list(stored: &str) -> Vec<String> {
    stored.split_whitespace().map(str::to_owned).collect()
}

fn name_taken(name: &str) -> Error {
    Error::name_taken("roles", "name", name)
}

/// Within an organization a role name is unique, compared case-insensitively,
/// and the built-in names are reserved.
async fn check_name(
    c: &mut Conn,
    organization: OrganizationId,
    name: &str,
    except: Option<RoleId>,
) -> Result<()> {
    // No id is the empty text: no exception.
    let except = except.map(|e| e.to_string()).unwrap_or_default();
    let taken: i64 = run!(c.get_result(
        roles::table
            .filter(
                roles::organization_id
                    .is_null()
                    .or(roles::organization_id.eq(organization.to_string()))
            )
            .filter(lower(roles::name).eq(lower(name)))
            .filter(roles::id.ne(&except))
            .count()
    ))?;
    if taken > 0 {
        return Err(name_taken(name));
    }
    Ok(())
}

async fn fetch_role(c: &mut Conn, id: RoleId) -> Result<Option<Role>> {
    run!(c.optional_first(
        roles::table
            .find(id.to_string())
            .select(RoleRow::as_select())
    ))
    .map(|row| row.map(Role::from))
}

/// Role names as `(holder, name)` rows of an assignment table joined to
/// `roles`, each holder's in the rows' order.
pub(crate) fn names_by_holder(rows: Vec<(String, String)>) -> HashMap<String, Vec<String>> {
    let mut names: HashMap<String, Vec<String>> = HashMap::new();
    for (holder, name) in rows {
        names.entry(holder).or_default().push(name);
    }
    names
}

impl Store {
    pub async fn role(&self, id: RoleId) -> Result<Option<Role>> {
        let mut c = self.door.reader().await?;
        fetch_role(&mut c, id).await
    }

    /// The built-in roles and the organization's own, by id (built-in first).
    pub async fn list_roles(
        &self,
        organization: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Role>> {
        // Every id is after the empty text.
        let after = page.after.clone().unwrap_or_default();
        let mut c = self.door.reader().await?;
        let rows = run!(c.load(
            roles::table
                .select(RoleRow::as_select())
                .filter(
                    roles::organization_id
                        .is_null()
                        .or(roles::organization_id.eq(organization.to_string()))
                )
                .filter(roles::id.gt(&after))
                .order(roles::id)
                .limit(i64::from(page.limit) + 1)
        ))?;
        let roles = rows.into_iter().map(Role::from).collect();
        Ok(Page::from_rows(roles, page.limit, |r| r.id.to_string()))
    }

    /// Every role that can be assigned in an organization: the built-in
    /// ones and its own.
    pub async fn assignable_roles(&self, organization: OrganizationId) -> Result<Vec<Role>> {
        let mut c = self.door.reader().await?;
        let rows = run!(c.load(
            roles::table
                .select(RoleRow::as_select())
                .filter(
                    roles::organization_id
                        .is_null()
                        .or(roles::organization_id.eq(organization.to_string()))
                )
                .order(roles::id)
        ))?;
        Ok(rows.into_iter().map(Role::from).collect())
    }

    pub async fn create_role(&self, new: &NewRole) -> Result<Role> {
        let role = Role {
            id: new.id,
            organization_id: Some(new.organization_id),
            name: new.name.to_string(),
            permissions: new.permissions.clone(),
            created_at: new.now,
            updated_at: new.now,
            version: 1,
        };
        let row = role.clone();
        let organization = new.organization_id;
        self.write(job!(|c| {
            check_name(c, organization, &row.name, None).await?;
            unless_taken(
                run_raw!(c.execute(diesel::insert_into(roles::table).values((
                    roles::id.eq(row.id.to_string()),
                    roles::organization_id.eq(organization.to_string()),
                    roles::name.eq(&row.name),
                    roles::permissions.eq(row.permissions.join(" ")),
                    roles::created_at.eq(to_micros(row.created_at)),
                    roles::updated_at.eq(to_micros(row.updated_at)),
                    roles::version.eq(row.version),
                )))),
                "name",
                || name_taken(&row.name),
            )
            .map(drop)
        }))
        .await?;
        Ok(role)
    }

    /// Replaces a custom role's name and permissions.
    pub async fn update_role(
        &self,
        id: RoleId,
        name: &str,
        permissions: &[String],
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<Role> {
        let _change = self.access_change();
        let (name, permissions, precondition) =
            (name.to_owned(), permissions.to_vec(), precondition.clone());
        self.write(job!(|c| {
            let current = fetch_role(c, id)
                .await?
                .ok_or_else(|| Error::not_found("roles", id))?;
            precondition.check(current.version)?;
            let Some(organization) = current.organization_id else {
                return Err(Error::internal("built-in roles are immutable"));
            };
            check_name(c, organization, &name, Some(id)).await?;
            unless_taken(
                run_raw!(
                    c.execute(diesel::update(roles::table.find(id.to_string())).set((
                        roles::name.eq(&name),
                        roles::permissions.eq(permissions.join(" ")),
                        roles::updated_at.eq(to_micros(now)),
                        roles::version.eq(roles::version + 1),
                    )))
                ),
                "name",
                || name_taken(&name),
            )?;
            Ok(Role {
                name,
                permissions,
                updated_at: now,
                version: current.version + 1,
                ..current
            })
        }))
        .await
    }

    /// Deletes a custom role that nobody holds (409 otherwise).
    pub async fn delete_role(&self, id: RoleId, precondition: &Precondition) -> Result<()> {
        let _change = self.access_change();
        let precondition = precondition.clone();
        self.write(job!(|c| {
            let current = fetch_role(c, id)
                .await?
                .ok_or_else(|| Error::not_found("roles", id))?;
            precondition.check(current.version)?;
            let users: i64 = run!(c.get_result(
                role_assignments::table
                    .filter(role_assignments::role_id.eq(id.to_string()))
                    .count()
            ))?;
            refuse_while_held(
                "roles",
                id,
                users,
                "users",
                "Cannot delete a role that users still hold",
            )?;
            let clients: i64 = run!(c.get_result(
                client_role_assignments::table
                    .filter(client_role_assignments::role_id.eq(id.to_string()))
                    .count()
            ))?;
            refuse_while_held(
                "roles",
                id,
                clients,
                "clients",
                "Cannot delete a role that API clients still hold",
            )?;
            run!(c.execute(diesel::delete(roles::table.find(id.to_string()))))?;
            Ok(())
        }))
        .await
    }
}
