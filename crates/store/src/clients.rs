//! OAuth2 API clients and the roles they act with.

use crate::db::{check_version, col, col_id, col_opt_id, col_time, db_error, role_names};
use crate::{ApiClient, ClientChanges, NewApiClient, RoleGrant, Store};
use chrono::{DateTime, Utc};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{ClientId, OrganizationId, RoleId};
use nephele_common::{Error, Precondition, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

const COLUMNS: &str = "id, organization_id, name, auth_method, status, created_by, created_at, \
                       updated_at, last_access_at, version, token_generation";

fn client_from_row(r: &AnyRow) -> Result<ApiClient> {
    Ok(ApiClient {
        id: col_id(r, "id")?,
        organization_id: col_id(r, "organization_id")?,
        name: col(r, "name")?,
        auth_method: col(r, "auth_method")?,
        status: col(r, "status")?,
        created_by: col_opt_id(r, "created_by")?,
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        last_access_at: col::<Option<i64>>(r, "last_access_at")?.map(from_micros),
        version: col(r, "version")?,
        token_generation: col(r, "token_generation")?,
        roles: Vec::new(),
    })
}

/// Ends every refresh token issued through a client, in the transaction
/// that disables it or resets its secret: none of them may renew anything.
async fn end_client_sessions(tx: &mut Transaction<'static, Any>, id: ClientId) -> Result<()> {
    sqlx::query("DELETE FROM refresh_tokens WHERE client_id = $1")
        .bind(id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    Ok(())
}

async fn set_roles(
    tx: &mut Transaction<'static, Any>,
    client: ClientId,
    roles: &[RoleId],
) -> Result<()> {
    sqlx::query("DELETE FROM client_role_assignments WHERE client_id = $1")
        .bind(client.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    for role in roles {
        sqlx::query("INSERT INTO client_role_assignments (client_id, role_id) VALUES ($1, $2)")
            .bind(client.to_string())
            .bind(role.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

impl Store {
    /// Fills in the role names of clients (one query for all of them).
    async fn clients_with_role_names(&self, mut clients: Vec<ApiClient>) -> Result<Vec<ApiClient>> {
        let ids: Vec<String> = clients.iter().map(|c| c.id.to_string()).collect();
        let mut names = role_names(self, "client_role_assignments", "client_id", &ids).await?;
        for c in &mut clients {
            c.roles = names.remove(&c.id.to_string()).unwrap_or_default();
        }
        Ok(clients)
    }

    pub async fn client(&self, id: ClientId) -> Result<Option<ApiClient>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM api_clients WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        let Some(client) = row.as_ref().map(client_from_row).transpose()? else {
            return Ok(None);
        };
        Ok(self.clients_with_role_names(vec![client]).await?.pop())
    }

    /// A client with its secret's hash, for authenticating it.
    pub async fn client_with_secret(&self, id: ClientId) -> Result<Option<(ApiClient, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, secret_hash FROM api_clients WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref()
            .map(|r| Ok((client_from_row(r)?, col(r, "secret_hash")?)))
            .transpose()
    }

    /// The clients of an organization, oldest first.
    pub async fn list_clients(&self, organization: OrganizationId) -> Result<Vec<ApiClient>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM api_clients WHERE organization_id = $1 ORDER BY id"
        ))
        .bind(organization.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let clients = rows
            .iter()
            .map(client_from_row)
            .collect::<Result<Vec<_>>>()?;
        self.clients_with_role_names(clients).await
    }

    /// Inserts a client and its roles, in one transaction.
    pub async fn create_client(&self, new: &NewApiClient) -> Result<ApiClient> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        sqlx::query(
            "INSERT INTO api_clients (id, organization_id, name, auth_method, status, secret_hash, \
             created_by, created_at, updated_at, last_access_at, version) \
             VALUES ($1, $2, $3, $4, 'enabled', $5, $6, $7, $7, NULL, 1)",
        )
        .bind(new.id.to_string())
        .bind(new.organization_id.to_string())
        .bind(new.name.as_str())
        .bind(&new.auth_method)
        .bind(&new.secret_hash)
        .bind(new.created_by.map(|u| u.to_string()))
        .bind(to_micros(new.now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        set_roles(&mut tx, new.id, &new.roles).await?;
        tx.commit().await.map_err(db_error)?;
        self.client(new.id)
            .await?
            .ok_or_else(|| Error::not_found("clients", new.id))
    }

    pub async fn update_client(
        &self,
        id: ClientId,
        changes: &ClientChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<ApiClient> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        check_version(&mut tx, "api_clients", "clients", &id, precondition).await?;
        let disabling = changes.status.as_deref() == Some("disabled");
        sqlx::query(
            "UPDATE api_clients SET name = COALESCE($2, name), status = COALESCE($3, status), \
             updated_at = $4, version = version + 1, \
             token_generation = token_generation + CASE WHEN $5 THEN 1 ELSE 0 END \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(changes.name.as_ref().map(|n| n.as_str().to_owned()))
        .bind(changes.status.clone())
        .bind(to_micros(now))
        .bind(disabling)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if disabling {
            end_client_sessions(&mut tx, id).await?;
        }
        if let Some(roles) = &changes.roles {
            set_roles(&mut tx, id, roles).await?;
        }
        tx.commit().await.map_err(db_error)?;
        self.client(id)
            .await?
            .ok_or_else(|| Error::not_found("clients", id))
    }

    /// Replaces a client's secret: the old one stops working at once.
    pub async fn set_client_secret(
        &self,
        id: ClientId,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiClient> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let done = sqlx::query(
            "UPDATE api_clients SET secret_hash = $2, updated_at = $3, version = version + 1, \
             token_generation = token_generation + 1 WHERE id = $1",
        )
        .bind(id.to_string())
        .bind(secret_hash)
        .bind(to_micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        if done.rows_affected() == 0 {
            return Err(Error::not_found("clients", id));
        }
        end_client_sessions(&mut tx, id).await?;
        tx.commit().await.map_err(db_error)?;
        self.client(id)
            .await?
            .ok_or_else(|| Error::not_found("clients", id))
    }

    /// Deletes a client; its roles and refresh tokens go with it.
    pub async fn delete_client(&self, id: ClientId, precondition: &Precondition) -> Result<()> {
        let _change = self.access_change();
        let mut tx = self.write.begin().await.map_err(db_error)?;
        check_version(&mut tx, "api_clients", "clients", &id, precondition).await?;
        for sql in [
            "DELETE FROM client_role_assignments WHERE client_id = $1",
            "DELETE FROM refresh_tokens WHERE client_id = $1",
            "DELETE FROM api_clients WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)?;
        Ok(())
    }

    /// Writes the last time each client asked for a token, in one
    /// transaction for the whole batch.
    pub async fn touch_clients(&self, seen: &[(ClientId, DateTime<Utc>)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await.map_err(db_error)?;
        for (id, at) in seen {
            sqlx::query(
                "UPDATE api_clients SET last_access_at = $2 WHERE id = $1 \
                 AND (last_access_at IS NULL OR last_access_at < $2)",
            )
            .bind(id.to_string())
            .bind(to_micros(*at))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
    }

    /// The roles a client holds, all granted in its own organization.
    pub async fn client_grants(&self, client: ClientId) -> Result<Vec<RoleGrant>> {
        let rows = sqlx::query(
            "SELECT a.role_id, r.name, c.organization_id, r.permissions \
             FROM client_role_assignments a JOIN roles r ON r.id = a.role_id \
             JOIN api_clients c ON c.id = a.client_id WHERE a.client_id = $1 ORDER BY r.name",
        )
        .bind(client.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter().map(crate::users::grant_from_row).collect()
    }
}
