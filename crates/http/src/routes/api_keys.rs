//! `/api/v2/api-keys`: the caller's own API keys.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, Paging, Query};
use crate::reply::Reply;
use crate::routes::PlainList;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{ApiKey, ApiKeyCreate, Data, ErrorBody, List};
use nephele_app::wire;

const TYPE: &str = "api-keys";

/// The caller's keys (never their secrets).
#[utoipa::path(get, path = "/api/v2/api-keys", tag = "api-keys",
    params(PlainList),
    responses((status = 200, description = "A page of API keys", body = List<ApiKey>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(_params): Query<PlainList>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state.app.list_api_keys(&ctx, &page).await?;
    Ok(Reply::list(
        "apiKey",
        page.map(|k| wire::api_key(&k, None)),
    )?)
}

/// Creates a key. The answer holds its `secret`, shown this once.
#[utoipa::path(post, path = "/api/v2/api-keys", tag = "api-keys",
    request_body(content = ApiKeyCreate, content_type = "application/json"),
    responses((status = 201, description = "Created, with its secret", body = Data<ApiKey>),
              (status = 409, description = "You have a key of that name (2020)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Body(request): Body<ApiKeyCreate>,
) -> HttpResult<Reply> {
    let (key, secret) = state.app.create_api_key(&ctx, request).await?;
    let location = format!("/api/v2/api-keys/{}", key.id);
    Ok(Reply::created(wire::api_key(&key, Some(&secret)), location)?.with_version(key.version))
}

/// Deletes one of the caller's keys.
#[utoipa::path(delete, path = "/api/v2/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 204, description = "Deleted")))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    state
        .app
        .delete_api_key(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    Ok(Reply::no_content())
}

/// Replaces a key's secret; the old one stops working at once.
#[utoipa::path(post, path = "/api/v2/api-keys/{id}/regenerate", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, description = "The key with its new secret", body = Data<ApiKey>)))]
pub async fn regenerate(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let (key, secret) = state
        .app
        .regenerate_api_key(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    Ok(Reply::resource(
        wire::api_key(&key, Some(&secret)),
        key.version,
    )?)
}
