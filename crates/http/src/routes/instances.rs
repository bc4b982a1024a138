//! `/api/v2/instances`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, IfMatch, Paging, Query};
use crate::reply::Reply;
use crate::routes::OrgScope;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{
    schema, Data, ErrorBody, Instance, InstanceCreate, InstanceUpdate, List, TaskAccepted,
};
use nephele_app::instances::Operation;
use nephele_app::wire;
use nephele_common::ids::OrganizationId;
use nephele_common::Precondition;
use serde::Deserialize;
use utoipa::IntoParams;

const TYPE: &str = "instances";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InstanceParams {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// Only instances in this state.
    #[param(value_type = Option<schema::InstanceState>)]
    pub state: Option<String>,
    /// Only instances of this name.
    pub name: Option<String>,
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}

/// The instances of the organization acted in, by id.
#[utoipa::path(get, path = "/api/v2/instances", tag = "instances",
    params(InstanceParams),
    responses((status = 200, description = "A page of instances", body = List<Instance>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<InstanceParams>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state
        .app
        .list_instances(
            &ctx,
            params.org_id.map(OrganizationId),
            params.state.as_deref(),
            params.name,
            &page,
        )
        .await?;
    Ok(Reply::list("instance", page.map(|i| wire::instance(&i)))?)
}

/// Creates an instance in the organization acted in, within its quota:
/// 202 with the task that provisions and starts it.
#[utoipa::path(post, path = "/api/v2/instances", tag = "instances",
    params(OrgScope),
    request_body(content = InstanceCreate, content_type = "application/json"),
    responses((status = 202, description = "Accepted; the task makes it", body = TaskAccepted),
              (status = 400, description = "Quota exceeded (3004)", body = ErrorBody),
              (status = 422, description = "Invalid parameters (3001)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(scope): Query<OrgScope>,
    Body(request): Body<InstanceCreate>,
) -> HttpResult<Reply> {
    let task = state
        .app
        .create_instance(&ctx, scope.org_id.map(OrganizationId), request)
        .await?;
    Ok(Reply::accepted(task.id.0)?)
}

/// One instance.
#[utoipa::path(get, path = "/api/v2/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 200, description = "The instance", body = Data<Instance>)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let instance = state
        .app
        .get_instance(&ctx, parse_path_id(TYPE, &id)?)
        .await?;
    Ok(Reply::resource(
        wire::instance(&instance),
        instance.version,
    )?)
}

/// Merge-patches an instance (RFC 7396): `name` any time, `cpu` and
/// `memoryMiB` only while it is `Stopped`.
#[utoipa::path(patch, path = "/api/v2/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    request_body(content = InstanceUpdate, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = Data<Instance>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 400, description = "Quota exceeded (3004)", body = ErrorBody),
              (status = 409, description = "Not stopped (2012) or busy (2013)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<InstanceUpdate>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let instance = state
        .app
        .update_instance(&ctx, id, request, &precondition)
        .await?;
    Ok(Reply::resource(
        wire::instance(&instance),
        instance.version,
    )?)
}

async fn operate(
    state: AppState,
    ctx: nephele_app::access::OpCtx,
    id: String,
    operation: Operation,
    precondition: Precondition,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let task = state
        .app
        .operate_instance(&ctx, id, operation, &precondition)
        .await?;
    Ok(Reply::accepted(task.id.0)?)
}

/// Deletes an instance (`Stopped`, `Running` or `Error`): 202 with the
/// task that stops and removes it.
#[utoipa::path(delete, path = "/api/v2/instances/{id}", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 202, description = "Accepted", body = TaskAccepted),
              (status = 409, description = "Wrong state (2012) or busy (2013)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> HttpResult<Reply> {
    operate(state, ctx, id, Operation::Delete, precondition).await
}

/// Starts a `Stopped` instance: 202 with its task.
#[utoipa::path(post, path = "/api/v2/instances/{id}/start", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 202, description = "Accepted", body = TaskAccepted),
              (status = 409, description = "Wrong state (2012) or busy (2013)", body = ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    operate(state, ctx, id, Operation::Start, Precondition::None).await
}

/// Stops a `Running` instance: 202 with its task.
#[utoipa::path(post, path = "/api/v2/instances/{id}/stop", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 202, description = "Accepted", body = TaskAccepted),
              (status = 409, description = "Wrong state (2012) or busy (2013)", body = ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    operate(state, ctx, id, Operation::Stop, Precondition::None).await
}

/// Reboots a `Running` instance: 202 with its task.
#[utoipa::path(post, path = "/api/v2/instances/{id}/reboot", tag = "instances",
    params(("id" = String, Path, description = "Instance id")),
    responses((status = 202, description = "Accepted", body = TaskAccepted),
              (status = 409, description = "Wrong state (2012) or busy (2013)", body = ErrorBody)))]
pub async fn reboot(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    operate(state, ctx, id, Operation::Reboot, Precondition::None).await
}
