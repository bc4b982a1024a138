//! OAuth2 API clients and the roles they act with.

use crate::columns::{Flag, MaybeMicros, MaybeParsed, Micros, Parsed};
use crate::door::{job, run, Conn};
use crate::roles::permission_list;
use crate::tables::{api_clients, client_role_assignments, refresh_tokens, roles};
use crate::{ApiClient, ClientChanges, ClientSignIn, NewApiClient, RoleGrant, Store};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};
use diesel::sqlite::Sqlite;
use nephele_common::clock::to_micros;
use nephele_common::ids::{ClientId, OrganizationId, RoleId, UserId};
use nephele_common::{Error, Precondition, Result};
use std::collections::HashMap;

define_sql_function!(fn coalesce(x: Nullable<Text>, y: Text) -> Text);

/// A row of `api_clients`, without its secret's hash; its roles are
/// another table's.
#[derive(Queryable, Selectable)]
#[diesel(table_name = api_clients, check_for_backend(Sqlite, Pg))]
struct ClientRow {
    #[diesel(deserialize_as = Parsed<ClientId>)]
    id: ClientId,
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    organization_id: OrganizationId,
    name: String,
    auth_method: String,
    status: String,
    #[diesel(deserialize_as = MaybeParsed<UserId>)]
    created_by: Option<UserId>,
    #[diesel(deserialize_as = Micros)]
    created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    updated_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeMicros)]
    last_access_at: Option<DateTime<Utc>>,
    version: i64,
    token_generation: i64,
    redirect_uris: String,
    post_logout_redirect_uris: String,
    grant_types: String,
    #[diesel(deserialize_as = Flag)]
    first_party: bool,
}

/// A space-separated list, as stored.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// A client from its row and the names of its roles.
fn client(r: ClientRow, roles: Vec<String>) -> ApiClient {
    ApiClient {
        id: r.id,
        organization_id: r.organization_id,
        name: r.name,
        auth_method: r.auth_method,
        status: r.status,
        created_by: r.created_by,
        created_at: r.created_at,
        updated_at: r.updated_at,
        last_access_at: r.last_access_at,
        version: r.version,
        token_generation: r.token_generation,
        roles,
        sign_in: ClientSignIn {
            redirect_uris: words(&r.redirect_uris),
            post_logout_redirect_uris: words(&r.post_logout_redirect_uris),
            grant_types: words(&r.grant_types),
            first_party: r.first_party,
        },
    }
}

/// A role a client holds: `role_id, name, organization_id, permissions`.
#[derive(Queryable)]
struct GrantRow {
    #[diesel(deserialize_as = Parsed<RoleId>)]
    role_id: RoleId,
    role_name: String,
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    organization_id: OrganizationId,
    permissions: String,
}

/// The names of the roles each client holds, in one query.
async fn role_names(c: &mut Conn, clients: &[String]) -> Result<HashMap<String, Vec<String>>> {
    if clients.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String)> = run!(c.load(
        client_role_assignments::table
            .inner_join(roles::table.on(roles::id.eq(client_role_assignments::role_id)))
            .filter(client_role_assignments::client_id.eq_any(clients))
            .select((client_role_assignments::client_id, roles::name))
            .order(roles::name)
    ))?;
    Ok(crate::roles::names_by_holder(rows))
}

/// Fills in the role names of clients (one query for all of them).
async fn with_role_names(c: &mut Conn, rows: Vec<ClientRow>) -> Result<Vec<ApiClient>> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.to_string()).collect();
    let mut names = role_names(c, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let roles = names.remove(&r.id.to_string()).unwrap_or_default();
            client(r, roles)
        })
        .collect())
}

async fn fetch_client(c: &mut Conn, id: ClientId) -> Result<Option<ApiClient>> {
    let row = run!(c.optional_first(
        api_clients::table
            .find(id.to_string())
            .select(ClientRow::as_select())
    ))?;
    match row {
        Some(row) => Ok(with_role_names(c, vec![row]).await?.pop()),
        None => Ok(None),
    }
}

/// A client as a write left it, which must still be there.
async fn written_client(c: &mut Conn, id: ClientId) -> Result<ApiClient> {
    fetch_client(c, id)
        .await?
        .ok_or_else(|| Error::not_found("clients", id))
}

/// Checks `If-Match` against the client's version: 404 when it is gone,
/// 412 when the version differs.
async fn check_version(c: &mut Conn, id: ClientId, precondition: &Precondition) -> Result<()> {
    let version: i64 = run!(c.optional_first(
        api_clients::table
            .find(id.to_string())
            .select(api_clients::version)
    ))?
    .ok_or_else(|| Error::not_found("clients", id))?;
    precondition.check(version)
}

/// Ends every refresh token issued through a client, in the transaction
/// that disables it or resets its secret: none of them may renew anything.
async fn end_client_sessions(c: &mut Conn, id: ClientId) -> Result<()> {
    run!(c.execute(diesel::delete(
        refresh_tokens::table.filter(refresh_tokens::client_id.eq(id.to_string()))
    )))?;
    Ok(())
}

/// Inserts `new` and its roles, in the caller's transaction.
pub(crate) async fn add_client(c: &mut Conn, new: &NewApiClient) -> Result<()> {
    let now = to_micros(new.now);
    run!(c.execute(diesel::insert_into(api_clients::table).values((
        api_clients::id.eq(new.id.to_string()),
        api_clients::organization_id.eq(new.organization_id.to_string()),
        api_clients::name.eq(new.name.as_str()),
        api_clients::auth_method.eq(&new.auth_method),
        api_clients::status.eq("enabled"),
        api_clients::secret_hash.eq(&new.secret_hash),
        api_clients::created_by.eq(new.created_by.map(|u| u.to_string())),
        api_clients::created_at.eq(now),
        api_clients::updated_at.eq(now),
        api_clients::last_access_at.eq(None::<i64>),
        api_clients::version.eq(1),
        api_clients::redirect_uris.eq(new.sign_in.redirect_uris.join(" ")),
        api_clients::post_logout_redirect_uris.eq(new.sign_in.post_logout_redirect_uris.join(" ")),
        api_clients::grant_types.eq(new.sign_in.grant_types.join(" ")),
        api_clients::first_party.eq(i64::from(new.sign_in.first_party)),
    ))))?;
    set_roles(c, new.id, &new.roles).await
}

async fn set_roles(c: &mut Conn, client: ClientId, roles: &[RoleId]) -> Result<()> {
    run!(c
        .execute(diesel::delete(client_role_assignments::table.filter(
            client_role_assignments::client_id.eq(client.to_string())
        ))))?;
    if roles.is_empty() {
        return Ok(());
    }
    let rows: Vec<_> = roles
        .iter()
        .map(|role| {
            (
                client_role_assignments::client_id.eq(client.to_string()),
                client_role_assignments::role_id.eq(role.to_string()),
            )
        })
        .collect();
    run!(c.execute(diesel::insert_into(client_role_assignments::table).values(&rows)))?;
    Ok(())
}

impl Store {
    pub async fn client(&self, id: ClientId) -> Result<Option<ApiClient>> {
        let mut c = self.door.reader().await?;
        fetch_client(&mut c, id).await
    }

    /// A client with its secret's hash, for authenticating it.
    pub async fn client_with_secret(&self, id: ClientId) -> Result<Option<(ApiClient, String)>> {
        let mut c = self.door.reader().await?;
        let row: Option<(ClientRow, String)> = run!(c.optional_first(
            api_clients::table
                .find(id.to_string())
                .select((ClientRow::as_select(), api_clients::secret_hash))
        ))?;
        Ok(row.map(|(row, secret_hash)| (client(row, Vec::new()), secret_hash)))
    }

    /// The clients of an organization, oldest first.
    pub async fn list_clients(&self, organization: OrganizationId) -> Result<Vec<ApiClient>> {
        let mut c = self.door.reader().await?;
        let rows = run!(c.load(
            api_clients::table
                .select(ClientRow::as_select())
                .filter(api_clients::organization_id.eq(organization.to_string()))
                .order(api_clients::id)
        ))?;
        with_role_names(&mut c, rows).await
    }

    /// Inserts a client and its roles, in one transaction.
    pub async fn create_client(&self, new: &NewApiClient) -> Result<ApiClient> {
        let new = new.clone();
        self.write(job!(|c| {
            add_client(c, &new).await?;
            written_client(c, new.id).await
        }))
        .await
    }

    pub async fn update_client(
        &self,
        id: ClientId,
        changes: &ClientChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<ApiClient> {
        let _change = self.access_change();
        let (changes, precondition) = (changes.clone(), precondition.clone());
        self.write(job!(|c| {
            check_version(c, id, &precondition).await?;
            let disabling = changes.status.as_deref() == Some("disabled");
            run!(c.execute(
                diesel::update(api_clients::table.find(id.to_string())).set((
                    api_clients::name.eq(coalesce(
                        changes.name.as_ref().map(|n| n.as_str().to_owned()),
                        api_clients::name
                    )),
                    api_clients::status.eq(coalesce(&changes.status, api_clients::status)),
                    api_clients::updated_at.eq(to_micros(now)),
                    api_clients::version.eq(api_clients::version + 1),
                    api_clients::token_generation
                        .eq(api_clients::token_generation + i64::from(disabling)),
                ))
            ))?;
            if disabling {
                end_client_sessions(c, id).await?;
            }
            if let Some(sign_in) = &changes.sign_in {
                run!(c.execute(
                    diesel::update(api_clients::table.find(id.to_string())).set((
                        api_clients::redirect_uris.eq(sign_in.redirect_uris.join(" ")),
                        api_clients::post_logout_redirect_uris
                            .eq(sign_in.post_logout_redirect_uris.join(" ")),
                        api_clients::grant_types.eq(sign_in.grant_types.join(" ")),
                        api_clients::first_party.eq(i64::from(sign_in.first_party)),
                    ))
                ))?;
            }
            if let Some(roles) = &changes.roles {
                set_roles(c, id, roles).await?;
            }
            written_client(c, id).await
        }))
        .await
    }

    /// Replaces a client's secret: the old one stops working at once.
    pub async fn set_client_secret(
        &self,
        id: ClientId,
        secret_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<ApiClient> {
        let _change = self.access_change();
        let secret_hash = secret_hash.to_owned();
        self.write(job!(|c| {
            let updated = run!(c.execute(
                diesel::update(api_clients::table.find(id.to_string())).set((
                    api_clients::secret_hash.eq(&secret_hash),
                    api_clients::updated_at.eq(to_micros(now)),
                    api_clients::version.eq(api_clients::version + 1),
                    api_clients::token_generation.eq(api_clients::token_generation + 1),
                ))
            ))?;
            if updated == 0 {
                return Err(Error::not_found("clients", id));
            }
            end_client_sessions(c, id).await?;
            written_client(c, id).await
        }))
        .await
    }

    /// Deletes a client; its roles and refresh tokens go with it.
    pub async fn delete_client(&self, id: ClientId, precondition: &Precondition) -> Result<()> {
        let _change = self.access_change();
        let precondition = precondition.clone();
        self.write(job!(|c| {
            check_version(c, id, &precondition).await?;
            run!(c.execute(diesel::delete(
                client_role_assignments::table
                    .filter(client_role_assignments::client_id.eq(id.to_string()))
            )))?;
            end_client_sessions(c, id).await?;
            run!(c.execute(diesel::delete(api_clients::table.find(id.to_string()))))?;
            Ok(())
        }))
        .await
    }

    /// Writes the last time each client asked for a token, in one
    /// transaction for the whole batch.
    pub async fn touch_clients(&self, seen: &[(ClientId, DateTime<Utc>)]) -> Result<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let seen = seen.to_vec();
        self.write(job!(|c| {
            for (id, at) in seen {
                let at = to_micros(at);
                run!(c.execute(
                    diesel::update(api_clients::table.find(id.to_string()))
                        .filter(
                            api_clients::last_access_at
                                .is_null()
                                .or(api_clients::last_access_at.lt(at))
                        )
                        .set(api_clients::last_access_at.eq(at))
                ))?;
            }
            Ok(())
        }))
        .await
    }

    /// The roles a client holds, all granted in its own organization.
    pub async fn client_grants(&self, client: ClientId) -> Result<Vec<RoleGrant>> {
        let mut c = self.door.reader().await?;
        let rows: Vec<GrantRow> = run!(c.load(
            client_role_assignments::table
                .inner_join(roles::table.on(roles::id.eq(client_role_assignments::role_id)))
                .inner_join(
                    api_clients::table.on(api_clients::id.eq(client_role_assignments::client_id))
                )
                .filter(client_role_assignments::client_id.eq(client.to_string()))
                .select((
                    client_role_assignments::role_id,
                    roles::name,
                    api_clients::organization_id,
                    roles::permissions,
                ))
                .order(roles::name)
        ))?;
        Ok(rows
            .into_iter()
            .map(|g| RoleGrant {
                role_id: g.role_id,
                role_name: g.role_name,
                organization_id: g.organization_id,
                permissions: permission_list(&g.permissions),
            })
            .collect())
    }
}
