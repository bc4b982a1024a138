use crate::db::{
    check_version, db_error, lock_invariants, parse_id, refuse_while_held, unique_violation,
};
use crate::{NewOrganization, Organization, Store};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::OrganizationId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Precondition, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

const COLUMNS: &str = "id, parent_id, name, created_at, updated_at, version";

pub(crate) fn org_from_row(r: &AnyRow) -> Result<Organization> {
    let parent: Option<String> = r.try_get("parent_id").map_err(db_error)?;
    Ok(Organization {
        id: parse_id(&r.try_get::<String, _>("id").map_err(db_error)?)?,
        parent_id: parent.as_deref().map(parse_id).transpose()?,
        name: r.try_get("name").map_err(db_error)?,
        created_at: from_micros(r.try_get("created_at").map_err(db_error)?),
        updated_at: from_micros(r.try_get("updated_at").map_err(db_error)?),
        version: r.try_get("version").map_err(db_error)?,
    })
}

fn name_taken(e: sqlx::Error, name: &str) -> Error {
    match unique_violation(&e) {
        Some(_) => Error::name_taken("organizations", "name", name),
        None => db_error(e),
    }
}

pub(crate) async fn insert_organization(
    tx: &mut Transaction<'static, Any>,
    new: &NewOrganization,
) -> Result<Organization> {
    let now = to_micros(new.now);
    sqlx::query(
        "INSERT INTO organizations (id, parent_id, name, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $4, 1)",
    )
    .bind(new.id.to_string())
    .bind(new.parent_id.map(|p| p.to_string()))
    .bind(new.name.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(|e| name_taken(e, new.name.as_str()))?;
    Ok(Organization {
        id: new.id,
        parent_id: new.parent_id,
        name: new.name.to_string(),
        created_at: new.now,
        updated_at: new.now,
        version: 1,
    })
}

impl Store {
    pub async fn organization(&self, id: OrganizationId) -> Result<Option<Organization>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM organizations WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(org_from_row).transpose()
    }

    /// The organization and all its ancestors, nearest first.
    pub async fn organization_ancestry(&self, id: OrganizationId) -> Result<Vec<OrganizationId>> {
        let rows = sqlx::query(
            "WITH RECURSIVE up(id, parent_id, depth) AS ( \
               SELECT id, parent_id, 0 FROM organizations WHERE id = $1 \
               UNION ALL \
               SELECT o.id, o.parent_id, up.depth + 1 FROM organizations o JOIN up ON o.id = up.parent_id \
             ) SELECT id FROM up ORDER BY depth",
        )
        .bind(id.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| parse_id(&r.try_get::<String, _>("id").map_err(db_error)?))
            .collect()
    }

    /// Organizations in the subtree rooted at `root` (itself included), by id,
    /// optionally only the direct children of `parent`.
    pub async fn list_organizations(
        &self,
        root: OrganizationId,
        parent: Option<OrganizationId>,
        page: &PageRequest,
    ) -> Result<Page<Organization>> {
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE sub(id) AS ( \
               SELECT id FROM organizations WHERE id = $1 \
               UNION ALL \
               SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id \
             ) SELECT {COLUMNS} FROM organizations \
             WHERE id IN (SELECT id FROM sub) \
               AND ($2 IS NULL OR parent_id = $2) \
               AND ($3 IS NULL OR id > $3) \
             ORDER BY id LIMIT $4"
        ))
        .bind(root.to_string())
        .bind(parent.map(|p| p.to_string()))
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let items = rows.iter().map(org_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |o| o.id.to_string()))
    }

    pub async fn create_organization(&self, new: &NewOrganization) -> Result<Organization> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        self.check_sibling_name(&mut tx, new.parent_id, new.name.as_str(), None)
            .await?;
        let org = insert_organization(&mut tx, new).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(org)
    }

    /// Renames and/or moves an organization, in one transaction. The
    /// `If-Match` precondition must hold for the stored version. A move
    /// below the organization itself or one of its descendants would make
    /// a cycle and is refused (422), as is moving the root.
    pub async fn update_organization(
        &self,
        id: OrganizationId,
        name: Option<&str>,
        parent: Option<OrganizationId>,
        precondition: &Precondition,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Organization> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        if parent.is_some() {
            lock_invariants(self, &mut tx).await?;
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM organizations WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let Some(current) = row.as_ref().map(org_from_row).transpose()? else {
            return Err(Error::not_found("organizations", id));
        };
        precondition.check(current.version)?;
        let new_name = name.unwrap_or(&current.name).to_owned();
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
                let below: i64 = sqlx::query_scalar(
                    "WITH RECURSIVE sub(id) AS ( \
                       SELECT id FROM organizations WHERE id = $1 \
                       UNION ALL \
                       SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id \
                     ) SELECT count(*) FROM sub WHERE id = $2",
                )
                .bind(id.to_string())
                .bind(p.to_string())
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
                if below > 0 {
                    return Err(Error::wrong_state(
                        "organizations",
                        id,
                        "An organization cannot be moved below itself or its own descendants",
                    )
                    .with("field", "parentId"));
                }
                self.check_move(&mut tx, id, p).await?;
                Some(p)
            }
            _ => current.parent_id,
        };
        if new_name == current.name && new_parent == current.parent_id {
            return Ok(current);
        }
        self.check_sibling_name(&mut tx, new_parent, &new_name, Some(id))
            .await?;
        sqlx::query(
            "UPDATE organizations SET name = $1, parent_id = $2, updated_at = $3, \
             version = version + 1 WHERE id = $4",
        )
        .bind(&new_name)
        .bind(new_parent.map(|p| p.to_string()))
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| name_taken(e, &new_name))?;
        tx.commit().await.map_err(db_error)?;
        Ok(Organization {
            name: new_name,
            parent_id: new_parent,
            updated_at: now,
            version: current.version + 1,
            ..current
        })
    }

    /// Deletes an organization that holds nothing: no sub-organizations, no users.
    pub async fn delete_organization(
        &self,
        id: OrganizationId,
        precondition: &Precondition,
    ) -> Result<()> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        check_version(&mut tx, "organizations", "organizations", &id, precondition).await?;
        refuse_while_held(
            &mut tx,
            "organizations",
            &id,
            "SELECT count(*) FROM organizations WHERE parent_id = $1",
            "subOrganizations",
            "Cannot delete an organization that still holds sub-organizations",
        )
        .await?;
        refuse_while_held(
            &mut tx,
            "organizations",
            &id,
            "SELECT count(*) FROM users WHERE organization_id = $1",
            "users",
            "Cannot delete an organization that still holds users",
        )
        .await?;
        refuse_while_held(
            &mut tx,
            "organizations",
            &id,
            "SELECT count(*) FROM api_clients WHERE organization_id = $1",
            "clients",
            "Cannot delete an organization that still holds API clients",
        )
        .await?;
        refuse_while_held(
            &mut tx,
            "organizations",
            &id,
            "SELECT count(*) FROM instances WHERE organization_id = $1",
            "instances",
            "Cannot delete an organization that still holds instances",
        )
        .await?;
        sqlx::query("DELETE FROM quotas WHERE organization_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM role_assignments WHERE organization_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM roles WHERE organization_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM organizations WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Sibling organizations have distinct names (compared case-insensitively).
    async fn check_sibling_name(
        &self,
        tx: &mut Transaction<'static, Any>,
        parent: Option<OrganizationId>,
        name: &str,
        except: Option<OrganizationId>,
    ) -> Result<()> {
        let taken: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM organizations \
             WHERE ((parent_id IS NULL AND $1 IS NULL) OR parent_id = $1) \
               AND lower(name) = lower($2) AND ($3 IS NULL OR id <> $3)",
        )
        .bind(parent.map(|p| p.to_string()))
        .bind(name)
        .bind(except.map(|e| e.to_string()))
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
        if taken > 0 {
            return Err(Error::name_taken("organizations", "name", name));
        }
        Ok(())
    }
}
