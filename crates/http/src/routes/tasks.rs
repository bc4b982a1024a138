//! `/api/v2/tasks`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Paging, Query};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{schema, Data, ErrorBody, List, Task};
use nephele_app::wire;
use nephele_common::ids::OrganizationId;
use nephele_common::Error;
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

const TYPE: &str = "tasks";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskParams {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// Only tasks of this status.
    #[param(value_type = Option<schema::TaskStatus>)]
    pub status: Option<String>,
    /// Only tasks on this resource.
    pub resource_id: Option<String>,
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// Wait up to this many seconds (0–60) for the task to finish.
    #[param(minimum = 0, maximum = 60)] // nephele_app::tasks::MAX_WAIT
    pub wait: Option<u64>,
}

/// The tasks of the organization acted in, newest first.
#[utoipa::path(get, path = "/api/v2/tasks", tag = "tasks",
    params(TaskParams),
    responses((status = 200, description = "A page of tasks", body = List<Task>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<TaskParams>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state
        .app
        .list_tasks(
            &ctx,
            params.org_id.map(OrganizationId),
            params.status.as_deref(),
            params.resource_id,
            &page,
        )
        .await?;
    Ok(Reply::list("task", page.map(|t| wire::task(&t, None)))?)
}

/// One task with its step log; `?wait=S` holds the answer until the task
/// has finished or S seconds have passed.
#[utoipa::path(get, path = "/api/v2/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id"), WaitParams),
    responses((status = 200, description = "The task", body = Data<Task>),
              (status = 422, description = "wait out of range (3001)", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Query(params): Query<WaitParams>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let max = nephele_app::tasks::MAX_WAIT.as_secs();
    let wait = match params.wait {
        Some(w) if w > max => {
            return Err(
                Error::invalid("wait", format!("must be between 0 and {max} seconds")).into(),
            )
        }
        w => w.map(Duration::from_secs),
    };
    let (task, steps) = state.app.get_task(&ctx, id, wait).await?;
    Ok(Reply::ok(wire::task(&task, Some(&steps)))?)
}

/// Cancels a task that has not started yet: it ends `FAILED` and its
/// resource returns to where it was.
#[utoipa::path(delete, path = "/api/v2/tasks/{id}", tag = "tasks",
    params(("id" = String, Path, description = "Task id")),
    responses((status = 200, description = "Cancelled", body = Data<Task>),
              (status = 409, description = "Started or finished already (2012)", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let task = state.app.cancel_task(&ctx, id).await?;
    Ok(Reply::ok(wire::task(&task, None))?)
}
