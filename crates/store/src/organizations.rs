use crate::door::{job, lower, refuse_while_held, run, run_raw, unless_taken, Conn};
use crate::tables::{
    api_clients, instances, organizations, quotas, role_assignments, roles, users,
};
use crate::{Lineage, NewOrganization, Organization, OrganizationChanges, Store};
use diesel::dsl::sql;
use diesel::expression::{AsExpression, SqlLiteral, UncheckedBind};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use nephele_common::clock::to_micros;
use nephele_common::ids::OrganizationId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::status::OrganizationStatus;
use nephele_common::{Error, Precondition, Result};

/// `column IN` the ids of the subtree rooted at `root` (itself included).
pub(crate) type InSubtree =
    SqlLiteral<Bool, UncheckedBind<SqlLiteral<Bool>, <String as AsExpression<Text>>::Expression>>;

/// A filter on `column` (an organization id, qualified by its table): it
/// is in the subtree rooted at `root`. A fragment for either backend, to
/// write inside a `run!`.
pub(crate) fn in_subtree(column: &str, root: String) -> InSubtree {
    sql::<Bool>(&format!(
        "{column} IN (WITH RECURSIVE sub(id) AS ( \
           SELECT id FROM organizations WHERE id = "
    ))
    .bind::<Text, _>(root)
    .sql(
        " UNION ALL \
           SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id \
         ) SELECT id FROM sub)",
    )
}

/// Inserts an organization, in a door transaction.
pub(crate) async fn add_organization(c: &mut Conn, new: &NewOrganization) -> Result<Organization> {
    let now = to_micros(new.now);
    unless_taken(
        run_raw!(c.execute(diesel::insert_into(organizations::table).values((
            organizations::id.eq(new.id.to_string()),
            organizations::parent_id.eq(new.parent_id.map(|p| p.to_string())),
            organizations::name.eq(new.name.as_str()),
            organizations::created_at.eq(now),
            organizations::updated_at.eq(now),
            organizations::version.eq(1),
        )))),
        "organizations",
        || Error::name_taken("organizations", "name", new.name.as_str()),
    )?;
    Ok(Organization {
        id: new.id,
        parent_id: new.parent_id,
        name: new.name.to_string(),
        status: OrganizationStatus::Active,
        created_at: new.now,
        updated_at: new.now,
        version: 1,
        mfa_required: false,
    })
}

/// Sibling organizations have distinct names (compared case-insensitively).
async fn check_sibling_name(
    c: &mut Conn,
    parent: Option<OrganizationId>,
    name: &str,
    except: Option<OrganizationId>,
) -> Result<()> {
    // No id is the empty text.
    let except = except.map(|e| e.to_string()).unwrap_or_default();
    let taken: i64 = match parent {
        Some(parent) => run!(c.get_result(
            organizations::table
                .filter(organizations::parent_id.eq(parent.to_string()))
                .filter(lower(organizations::name).eq(lower(name)))
                .filter(organizations::id.ne(&except))
                .count()
        )),
        None => run!(c.get_result(
            organizations::table
                .filter(organizations::parent_id.is_null())
                .filter(lower(organizations::name).eq(lower(name)))
                .filter(organizations::id.ne(&except))
                .count()
        )),
    }?;
    if taken > 0 {
        return Err(Error::name_taken("organizations", "name", name));
    }
    Ok(())
}

impl Store {
    pub async fn organization(&self, id: OrganizationId) -> Result<Option<Organization>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            organizations::table
                .find(id.to_string())
                .select(Organization::as_select())
        ))
    }

    /// The organization and all its ancestors, nearest first.
    pub async fn organization_ancestry(&self, id: OrganizationId) -> Result<Vec<OrganizationId>> {
        Ok(self.organization_lineage(id).await?.chain)
    }

    /// [`Store::organization_ancestry`] with the nearest organization on
    /// it that is suspended.
    pub async fn organization_lineage(&self, id: OrganizationId) -> Result<Lineage> {
        #[derive(QueryableByName)]
        struct Up {
            #[diesel(sql_type = Text, deserialize_as = crate::columns::Parsed<OrganizationId>)]
            id: OrganizationId,
            #[diesel(sql_type = Text, deserialize_as = crate::columns::Parsed<OrganizationStatus>)]
            status: OrganizationStatus,
            #[diesel(sql_type = BigInt)]
            mfa_required: i64,
        }
        let mut c = self.door.reader().await?;
        let rows: Vec<Up> = run!(c.load(
            diesel::sql_query(
                "WITH RECURSIVE up(id, parent_id, status, mfa_required, depth) AS ( \
                   SELECT id, parent_id, status, mfa_required, 0 FROM organizations WHERE id = $1 \
                   UNION ALL \
                   SELECT o.id, o.parent_id, o.status, o.mfa_required, up.depth + 1 \
                     FROM organizations o JOIN up ON o.id = up.parent_id \
                 ) SELECT id, status, mfa_required FROM up ORDER BY depth",
            )
            .bind::<Text, _>(id.to_string())
        ))?;
        Ok(Lineage {
            suspended: rows
                .iter()
                .find(|r| r.status == OrganizationStatus::Suspended)
                .map(|r| r.id),
            mfa_required: rows.iter().find(|r| r.mfa_required != 0).map(|r| r.id),
            chain: rows.into_iter().map(|r| r.id).collect(),
        })
    }

    /// Organizations in the subtree rooted at `root` (itself included), by id,
    /// optionally only the direct children of `parent`.
    pub async fn list_organizations(
        &self,
        root: OrganizationId,
        parent: Option<OrganizationId>,
        page: &PageRequest,
    ) -> Result<Page<Organization>> {
        // Every id is after the empty text.
        let after = page.after.clone().unwrap_or_default();
        let limit = i64::from(page.limit) + 1;
        let mut c = self.door.reader().await?;
        let items = match parent {
            None => run!(c.load(
                organizations::table
                    .select(Organization::as_select())
                    .filter(in_subtree("organizations.id", root.to_string()))
                    .filter(organizations::id.gt(&after))
                    .order(organizations::id)
                    .limit(limit)
            )),
            Some(parent) => run!(c.load(
                organizations::table
                    .select(Organization::as_select())
                    .filter(in_subtree("organizations.id", root.to_string()))
                    .filter(organizations::parent_id.eq(parent.to_string()))
                    .filter(organizations::id.gt(&after))
                    .order(organizations::id)
                    .limit(limit)
            )),
        }?;
        Ok(Page::from_rows(items, page.limit, |o| o.id.to_string()))
    }

    pub async fn create_organization(&self, new: &NewOrganization) -> Result<Organization> {
        let _change = self.access_change();
        let new = new.clone();
        self.write(job!(|c| {
            check_sibling_name(c, new.parent_id, new.name.as_str(), None).await?;
            add_organization(c, &new).await
        }))
        .await
    }

    /// Renames and/or moves an organization, and sets its status and
    /// whether it requires MFA, in one transaction. The `If-Match`
    /// precondition must hold for the stored version. A move below the
    /// organization itself or one of its descendants would make a cycle
    /// and is refused (422), as is moving the root.
    pub async fn update_organization(
        &self,
        id: OrganizationId,
        changes: &OrganizationChanges,
        precondition: &Precondition,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Organization> {
        let _change = self.access_change();
        let (changes, precondition) = (changes.clone(), precondition.clone());
        self.write(job!(|c| {
            let (name, parent) = (
                changes.name.as_ref().map(|n| n.to_string()),
                changes.parent_id,
            );
            if parent.is_some() {
                crate::door::lock_invariants(c).await?;
            }
            let current = run!(c.optional_first(
                organizations::table
                    .find(id.to_string())
                    .select(Organization::as_select())
            ))?
            .ok_or_else(|| Error::not_found("organizations", id))?;
            precondition.check(current.version)?;
            let new_name = name.unwrap_or_else(|| current.name.clone());
            let new_parent = match parent {
                Some(p) if Some(p) != current.parent_id => {
                    // Both refusals are the tree's state, not the request's
                    // form: 409, as a schema cannot tell them.
                    if current.parent_id.is_none() {
                        return Err(Error::wrong_state(
                            "organizations",
                            id,
                            "The root organization cannot be moved",
                        )
                        .with("field", "parentId"));
                    }
                    let below: i64 = run!(c.get_result(
                        organizations::table
                            .filter(in_subtree("organizations.id", id.to_string()))
                            .filter(organizations::id.eq(p.to_string()))
                            .count()
                    ))?;
                    if below > 0 {
                        return Err(Error::wrong_state(
                            "organizations",
                            id,
                            "An organization cannot be moved below itself or its own descendants",
                        )
                        .with("field", "parentId"));
                    }
                    crate::instances::check_move(c, id, p).await?;
                    Some(p)
                }
                _ => current.parent_id,
            };
            let new_status = changes.status.unwrap_or(current.status);
            if new_status != current.status && current.parent_id.is_none() {
                return Err(Error::wrong_state(
                    "organizations",
                    id,
                    "The root organization cannot be suspended",
                )
                .with("field", "status"));
            }
            let new_mfa_required = changes.mfa_required.unwrap_or(current.mfa_required);
            if new_name == current.name
                && new_parent == current.parent_id
                && new_status == current.status
                && new_mfa_required == current.mfa_required
            {
                return Ok(current);
            }
            check_sibling_name(c, new_parent, &new_name, Some(id)).await?;
            unless_taken(
                run_raw!(c.execute(
                    diesel::update(organizations::table.find(id.to_string())).set((
                        organizations::name.eq(&new_name),
                        organizations::parent_id.eq(new_parent.map(|p| p.to_string())),
                        organizations::status.eq(new_status.as_str()),
                        organizations::mfa_required.eq(i64::from(new_mfa_required)),
                        organizations::updated_at.eq(to_micros(now)),
                        organizations::version.eq(organizations::version + 1),
                    ))
                )),
                "organizations",
                || Error::name_taken("organizations", "name", &new_name),
            )?;
            Ok(Organization {
                name: new_name,
                parent_id: new_parent,
                status: new_status,
                mfa_required: new_mfa_required,
                updated_at: now,
                version: current.version + 1,
                ..current
            })
        }))
        .await
    }

    /// Deletes an organization that holds nothing: no sub-organizations, no users.
    pub async fn delete_organization(
        &self,
        id: OrganizationId,
        precondition: &Precondition,
    ) -> Result<()> {
        let _change = self.access_change();
        let precondition = precondition.clone();
        self.write(job!(|c| {
            let key = id.to_string();
            let version: i64 = run!(c.optional_first(
                organizations::table
                    .find(&key)
                    .select(organizations::version)
            ))?
            .ok_or_else(|| Error::not_found("organizations", id))?;
            precondition.check(version)?;
            let held: i64 = run!(c.get_result(
                organizations::table
                    .filter(organizations::parent_id.eq(&key))
                    .count()
            ))?;
            refuse_while_held(
                "organizations",
                id,
                held,
                "subOrganizations",
                "Cannot delete an organization that still holds sub-organizations",
            )?;
            let held: i64 =
                run!(c.get_result(users::table.filter(users::organization_id.eq(&key)).count()))?;
            refuse_while_held(
                "organizations",
                id,
                held,
                "users",
                "Cannot delete an organization that still holds users",
            )?;
            let held: i64 = run!(c.get_result(
                api_clients::table
                    .filter(api_clients::organization_id.eq(&key))
                    .count()
            ))?;
            refuse_while_held(
                "organizations",
                id,
                held,
                "clients",
                "Cannot delete an organization that still holds API clients",
            )?;
            let held: i64 = run!(c.get_result(
                instances::table
                    .filter(instances::organization_id.eq(&key))
                    .count()
            ))?;
            refuse_while_held(
                "organizations",
                id,
                held,
                "instances",
                "Cannot delete an organization that still holds instances",
            )?;
            run!(c.execute(diesel::delete(
                quotas::table.filter(quotas::organization_id.eq(&key))
            )))?;
            run!(c.execute(diesel::delete(
                role_assignments::table.filter(role_assignments::organization_id.eq(&key))
            )))?;
            run!(c.execute(diesel::delete(
                roles::table.filter(roles::organization_id.eq(&key))
            )))?;
            run!(c.execute(diesel::delete(organizations::table.find(&key))))?;
            Ok(())
        }))
        .await
    }
}
