//! `/api/2/clients`: OAuth2 API clients (SPEC §5; snake_case, no envelope;
//! errors in the `errors` envelope).

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, IfMatch, Query};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nephele_api_types::{ApiClient, ApiClientCreate, ApiClientList, ApiClientUpdate, ErrorBody};
use nephele_app::wire;
use nephele_common::ids::{ClientId, OrganizationId};
use serde::Deserialize;
use utoipa::IntoParams;

const TYPE: &str = "clients";

/// `?tenant_id=`: the organization whose clients to list (yours or below).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TenantScope {
    /// Default: the caller's organization.
    pub tenant_id: Option<uuid::Uuid>,
}

fn client_id(raw: &str) -> Result<ClientId, nephele_common::Error> {
    parse_path_id(TYPE, raw)
}

/// The clients of a tenant (never their secrets).
#[utoipa::path(get, path = "/api/2/clients", tag = "clients",
    params(TenantScope),
    responses((status = 200, description = "The tenant's clients", body = ApiClientList)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(scope): Query<TenantScope>,
) -> HttpResult<Reply> {
    let clients = state
        .app
        .list_clients(&ctx, scope.tenant_id.map(OrganizationId))
        .await?;
    let items = clients.iter().map(|c| wire::api_client(c, None)).collect();
    Ok(Reply::bare(StatusCode::OK, &ApiClientList { items })?)
}

/// Creates a client in a tenant the caller manages. The answer holds its
/// `client_secret`, shown this once.
#[utoipa::path(post, path = "/api/2/clients", tag = "clients",
    request_body(content = ApiClientCreate, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, with its secret", body = ApiClient),
        (status = 403, description = "The caller lacks clients:write or a permission of the roles (1003)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Body(request): Body<ApiClientCreate>,
) -> HttpResult<Reply> {
    let (client, secret) = state.app.create_client(&ctx, request).await?;
    Ok(Reply::bare(
        StatusCode::CREATED,
        &wire::api_client(&client, Some(&secret)),
    )?
    .with_location(format!("/api/2/clients/{}", client.id))
    .with_version(client.version))
}

/// One client.
#[utoipa::path(get, path = "/api/2/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "Client id")),
    responses((status = 200, description = "The client", body = ApiClient)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let client = state.app.get_client(&ctx, client_id(&id)?).await?;
    Ok(Reply::bare(StatusCode::OK, &wire::api_client(&client, None))?.with_version(client.version))
}

/// Renames, enables or disables a client, or changes its roles (the fields
/// given). A disabled client's tokens stop working at once.
#[utoipa::path(put, path = "/api/2/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "Client id")),
    request_body(content = ApiClientUpdate, content_type = "application/json"),
    responses((status = 200, description = "The client", body = ApiClient)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<ApiClientUpdate>,
) -> HttpResult<Reply> {
    let client = state
        .app
        .update_client(&ctx, client_id(&id)?, request, &precondition)
        .await?;
    Ok(Reply::bare(StatusCode::OK, &wire::api_client(&client, None))?.with_version(client.version))
}

/// Deletes a client; its tokens stop working at once.
#[utoipa::path(delete, path = "/api/2/clients/{client_id}", tag = "clients",
    params(("client_id" = String, Path, description = "Client id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> HttpResult<Reply> {
    state
        .app
        .delete_client(&ctx, client_id(&id)?, &precondition)
        .await?;
    Ok(Reply::no_content())
}

/// A new secret; the old one stops working at once.
#[utoipa::path(post, path = "/api/2/clients/{client_id}/secret", tag = "clients",
    params(("client_id" = String, Path, description = "Client id")),
    responses((status = 200, description = "The client with its new secret", body = ApiClient)))]
pub async fn secret(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let (client, secret) = state.app.reset_client_secret(&ctx, client_id(&id)?).await?;
    Ok(
        Reply::bare(StatusCode::OK, &wire::api_client(&client, Some(&secret)))?
            .with_version(client.version),
    )
}
