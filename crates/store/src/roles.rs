use crate::db::{col, col_id, col_opt_id, col_time, db_error, refuse_while_held, unique_violation};
use crate::{NewRole, Role, Store};
use chrono::{DateTime, Utc};
use nephele_common::clock::to_micros;
use nephele_common::ids::{OrganizationId, RoleId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Precondition, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

const COLUMNS: &str = "id, organization_id, name, permissions, created_at, updated_at, version";

fn role_from_row(r: &AnyRow) -> Result<Role> {
    Ok(Role {
        id: col_id(r, "id")?,
        organization_id: col_opt_id(r, "organization_id")?,
        name: col(r, "name")?,
        permissions: col::<String>(r, "permissions")?
            .split_whitespace()
            .map(str::to_owned)
            .collect(),
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        version: col(r, "version")?,
    })
}

fn name_taken(name: &str) -> Error {
    Error::name_taken("roles", "name", name)
}

/// Within an organization a role name is unique, compared case-insensitively,
/// and the built-in names are reserved.
async fn check_name(
    tx: &mut Transaction<'static, Any>,
    organization: OrganizationId,
    name: &str,
    except: Option<RoleId>,
) -> Result<()> {
    let taken: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM roles WHERE (organization_id IS NULL OR organization_id = $1) \
         AND lower(name) = lower($2) AND ($3 IS NULL OR id <> $3)",
    )
    .bind(organization.to_string())
    .bind(name)
    .bind(except.map(|e| e.to_string()))
    .fetch_one(&mut **tx)
    .await
    .map_err(db_error)?;
    if taken > 0 {
        return Err(name_taken(name));
    }
    Ok(())
}

async fn fetch_role<'e>(
    executor: impl sqlx::Executor<'e, Database = Any>,
    id: RoleId,
) -> Result<Option<Role>> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM roles WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(executor)
        .await
        .map_err(db_error)?;
    row.as_ref().map(role_from_row).transpose()
}

async fn role_in_tx(tx: &mut Transaction<'static, Any>, id: RoleId) -> Result<Role> {
    fetch_role(&mut **tx, id)
        .await?
        .ok_or_else(|| Error::not_found("roles", id))
}

impl Store {
    pub async fn role(&self, id: RoleId) -> Result<Option<Role>> {
        fetch_role(&self.read, id).await
    }

    /// The built-in roles and the organization's own, by id (built-in first).
    pub async fn list_roles(
        &self,
        organization: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<Role>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM roles WHERE (organization_id IS NULL OR organization_id = $1) \
             AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(organization.to_string())
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let roles = rows.iter().map(role_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(roles, page.limit, |r| r.id.to_string()))
    }

    /// Every role that can be assigned in an organization: the built-in
    /// ones and its own.
    pub async fn assignable_roles(&self, organization: OrganizationId) -> Result<Vec<Role>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM roles WHERE organization_id IS NULL OR organization_id = $1 \
             ORDER BY id"
        ))
        .bind(organization.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter().map(role_from_row).collect()
    }

    pub async fn create_role(&self, new: &NewRole) -> Result<Role> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        check_name(&mut tx, new.organization_id, new.name.as_str(), None).await?;
        let permissions = new.permissions.join(" ");
        sqlx::query(
            "INSERT INTO roles (id, organization_id, name, permissions, created_at, updated_at, \
             version) VALUES ($1, $2, $3, $4, $5, $5, 1)",
        )
        .bind(new.id.to_string())
        .bind(new.organization_id.to_string())
        .bind(new.name.as_str())
        .bind(&permissions)
        .bind(to_micros(new.now))
        .execute(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => name_taken(new.name.as_str()),
            None => db_error(e),
        })?;
        tx.commit().await.map_err(db_error)?;
        Ok(Role {
            id: new.id,
            organization_id: Some(new.organization_id),
            name: new.name.to_string(),
            permissions: new.permissions.clone(),
            created_at: new.now,
            updated_at: new.now,
            version: 1,
        })
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
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let current = role_in_tx(&mut tx, id).await?;
        precondition.check(current.version)?;
        let Some(organization) = current.organization_id else {
            return Err(Error::internal("built-in roles are immutable"));
        };
        check_name(&mut tx, organization, name, Some(id)).await?;
        sqlx::query(
            "UPDATE roles SET name = $1, permissions = $2, updated_at = $3, version = version + 1 \
             WHERE id = $4",
        )
        .bind(name)
        .bind(permissions.join(" "))
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&mut *tx)
        .await
        .map_err(|e| match unique_violation(&e) {
            Some(_) => name_taken(name),
            None => db_error(e),
        })?;
        tx.commit().await.map_err(db_error)?;
        Ok(Role {
            name: name.to_owned(),
            permissions: permissions.to_vec(),
            updated_at: now,
            version: current.version + 1,
            ..current
        })
    }

    /// Deletes a custom role that nobody holds (409 otherwise).
    pub async fn delete_role(&self, id: RoleId, precondition: &Precondition) -> Result<()> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let current = role_in_tx(&mut tx, id).await?;
        precondition.check(current.version)?;
        refuse_while_held(
            &mut tx,
            "roles",
            &id,
            "SELECT count(*) FROM role_assignments WHERE role_id = $1",
            "users",
            "Cannot delete a role that users still hold",
        )
        .await?;
        refuse_while_held(
            &mut tx,
            "roles",
            &id,
            "SELECT count(*) FROM client_role_assignments WHERE role_id = $1",
            "clients",
            "Cannot delete a role that API clients still hold",
        )
        .await?;
        sqlx::query("DELETE FROM roles WHERE id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }
}
