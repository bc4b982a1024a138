//! `/api/v2/roles`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, IfMatch, Paging, Query};
use crate::reply::Reply;
use crate::routes::{OrgScope, ScopedList};
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{Data, ErrorBody, List, Role, RoleWrite};
use nephele_app::wire;
use nephele_common::ids::OrganizationId;

const TYPE: &str = "roles";

/// The built-in roles and the organization's own.
#[utoipa::path(get, path = "/api/v2/roles", tag = "roles",
    params(ScopedList),
    responses((status = 200, description = "A page of roles", body = List<Role>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<ScopedList>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state
        .app
        .list_roles(&ctx, params.org_id.map(OrganizationId), &page)
        .await?;
    Ok(Reply::list("role", page.map(|r| wire::role(&r)))?)
}

/// Creates a custom role in the organization acted in, with permissions
/// its author holds.
#[utoipa::path(post, path = "/api/v2/roles", tag = "roles",
    params(OrgScope),
    request_body(content = RoleWrite, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Data<Role>),
              (status = 409, description = "Name taken (2020)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(scope): Query<OrgScope>,
    Body(request): Body<RoleWrite>,
) -> HttpResult<Reply> {
    let role = state
        .app
        .create_role(&ctx, scope.org_id.map(OrganizationId), request)
        .await?;
    let location = format!("/api/v2/roles/{}", role.id);
    Ok(Reply::created(wire::role(&role), location)?.with_version(role.version))
}

/// One role.
#[utoipa::path(get, path = "/api/v2/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "Role id")),
    responses((status = 200, description = "The role", body = Data<Role>)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let role = state.app.get_role(&ctx, parse_path_id(TYPE, &id)?).await?;
    Ok(Reply::resource(wire::role(&role), role.version)?)
}

/// Replaces a custom role's name and permissions (built-in roles: 403).
#[utoipa::path(put, path = "/api/v2/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "Role id")),
    request_body(content = RoleWrite, content_type = "application/json"),
    responses((status = 200, description = "Updated", body = Data<Role>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 409, description = "Name taken (2020)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<RoleWrite>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let role = state
        .app
        .update_role(&ctx, id, request, &precondition)
        .await?;
    Ok(Reply::resource(wire::role(&role), role.version)?)
}

/// Deletes a custom role nobody holds (409 otherwise; built-in roles: 403).
#[utoipa::path(delete, path = "/api/v2/roles/{id}", tag = "roles",
    params(("id" = String, Path, description = "Role id")),
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "Users still hold it (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    state.app.delete_role(&ctx, id, &precondition).await?;
    Ok(Reply::no_content())
}
