//! `/api/v2/organizations`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, IfMatch, Paging, Query};
use crate::reply::Reply;
use crate::routes::OrgScope;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{
    Data, ErrorBody, List, Organization, OrganizationCreate, OrganizationUpdate, Quota, QuotaWrite,
};
use nephele_app::access::OpCtx;
use nephele_app::wire;
use nephele_common::ids::OrganizationId;
use nephele_common::Precondition;
use serde::Deserialize;
use utoipa::IntoParams;

const TYPE: &str = "organizations";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListParams {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// Only the direct children of this organization.
    pub parent_id: Option<uuid::Uuid>,
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}

/// The organization acted in and every organization below it.
#[utoipa::path(get, path = "/api/v2/organizations", tag = "organizations",
    params(ListParams),
    responses((status = 200, description = "A page of organizations", body = List<Organization>),
              (status = 401, description = "Authentication required", body = ErrorBody),
              (status = 403, description = "Not permitted", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<ListParams>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state
        .app
        .list_organizations(
            &ctx,
            params.org_id.map(OrganizationId),
            params.parent_id.map(OrganizationId),
            &page,
        )
        .await?;
    Ok(Reply::list(
        "organization",
        page.map(|o| wire::organization(&o)),
    )?)
}

/// Creates a sub-organization (below `parentId`, default the organization acted in).
#[utoipa::path(post, path = "/api/v2/organizations", tag = "organizations",
    params(OrgScope),
    request_body(content = OrganizationCreate, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Data<Organization>),
              (status = 401, description = "Authentication required", body = ErrorBody),
              (status = 403, description = "Not permitted", body = ErrorBody),
              (status = 409, description = "Name taken (2020)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(scope): Query<OrgScope>,
    Body(request): Body<OrganizationCreate>,
) -> HttpResult<Reply> {
    let org = state
        .app
        .create_organization(&ctx, scope.org_id.map(OrganizationId), request)
        .await?;
    let location = format!("/api/v2/organizations/{}", org.id);
    Ok(Reply::created(wire::organization(&org), location)?.with_version(org.version))
}

/// One organization.
#[utoipa::path(get, path = "/api/v2/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The organization", body = Data<Organization>),
              (status = 401, description = "Authentication required", body = ErrorBody),
              (status = 403, description = "Not permitted", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let org = state.app.get_organization(&ctx, id).await?;
    Ok(Reply::resource(wire::organization(&org), org.version)?)
}

/// Replaces the mutable fields (`name`; `parentId` moves the organization).
#[utoipa::path(put, path = "/api/v2/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    request_body(content = OrganizationUpdate, content_type = "application/json"),
    responses((status = 200, description = "Updated", body = Data<Organization>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 401, description = "Authentication required", body = ErrorBody),
              (status = 403, description = "Not permitted", body = ErrorBody),
              (status = 409, description = "Name taken (2020); a move of the root or below itself (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<OrganizationUpdate>,
) -> HttpResult<Reply> {
    update(&state, &ctx, &id, request, true, &precondition).await
}

/// Merge-patches the mutable fields (RFC 7396).
#[utoipa::path(patch, path = "/api/v2/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    request_body(content = OrganizationUpdate, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = Data<Organization>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 401, description = "Authentication required", body = ErrorBody),
              (status = 403, description = "Not permitted", body = ErrorBody),
              (status = 409, description = "Name taken (2020); a move of the root or below itself (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<OrganizationUpdate>,
) -> HttpResult<Reply> {
    update(&state, &ctx, &id, request, false, &precondition).await
}

/// PUT (`replace`) and PATCH differ only in whether `name` is required.
async fn update(
    state: &AppState,
    ctx: &OpCtx,
    id: &str,
    request: OrganizationUpdate,
    replace: bool,
    precondition: &Precondition,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, id)?;
    let org = state
        .app
        .update_organization(ctx, id, request, replace, precondition)
        .await?;
    Ok(Reply::resource(wire::organization(&org), org.version)?)
}

/// Deletes an organization that holds nothing (409 otherwise).
#[utoipa::path(delete, path = "/api/v2/organizations/{id}", tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    responses((status = 204, description = "Deleted"),
              (status = 401, description = "Authentication required", body = ErrorBody),
              (status = 403, description = "Not permitted", body = ErrorBody),
              (status = 409, description = "It still holds sub-organizations or users (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    state
        .app
        .delete_organization(&ctx, id, &precondition)
        .await?;
    Ok(Reply::no_content())
}

/// An organization's quota: its limits (`null`: none) and what its own
/// instances use.
#[utoipa::path(get, path = "/api/v2/organizations/{id}/quota", tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    responses((status = 200, description = "The quota", body = Data<Quota>)))]
pub async fn get_quota(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let quota = state.app.get_quota(&ctx, parse_path_id(TYPE, &id)?).await?;
    Ok(Reply::resource(wire::quota(&quota), quota.version)?)
}

/// Sets an organization's limits: only an admin of its parent can, and
/// never above the parent's own.
#[utoipa::path(put, path = "/api/v2/organizations/{id}/quota", tag = "organizations",
    params(("id" = String, Path, description = "Organization id")),
    request_body(content = QuotaWrite, content_type = "application/json"),
    responses((status = 200, description = "Updated", body = Data<Quota>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 403, description = "Not an admin of the parent (1003)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody),
              (status = 422, description = "Above the parent's limit (3001)", body = ErrorBody)))]
pub async fn put_quota(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<QuotaWrite>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let quota = state
        .app
        .set_quota(&ctx, id, request, &precondition)
        .await?;
    Ok(Reply::resource(wire::quota(&quota), quota.version)?)
}
