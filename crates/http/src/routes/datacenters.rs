//! `/api/v2/datacenters`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, Paging, Query};
use crate::reply::Reply;
use crate::routes::PlainList;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{Data, Datacenter, DatacenterCreate, ErrorBody, List};
use nephele_app::wire;

/// Every data center; this server's own has `local: true`.
#[utoipa::path(get, path = "/api/v2/datacenters", tag = "datacenters",
    params(PlainList),
    responses((status = 200, description = "A page of data centers", body = List<Datacenter>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(_params): Query<PlainList>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state.app.list_datacenters(&ctx, &page).await?;
    let app = &state.app;
    Ok(Reply::list(
        "datacenter",
        page.map(|d| wire::datacenter(app, &d)),
    )?)
}

/// Adds a data center (admins of the root organization only).
#[utoipa::path(post, path = "/api/v2/datacenters", tag = "datacenters",
    request_body(content = DatacenterCreate, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Data<Datacenter>),
              (status = 409, description = "Name taken (2020)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Body(request): Body<DatacenterCreate>,
) -> HttpResult<Reply> {
    let dc = state.app.create_datacenter(&ctx, request).await?;
    let location = format!("/api/v2/datacenters/{}", dc.id);
    Ok(Reply::created(wire::datacenter(&state.app, &dc), location)?.with_version(dc.version))
}

/// Removes a data center that is no user's home (admins of the root
/// organization only; this server's own cannot be removed).
#[utoipa::path(delete, path = "/api/v2/datacenters/{id}", tag = "datacenters",
    params(("id" = String, Path, description = "Data center id")),
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "Still the home of users, or this server's own (2012)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    state
        .app
        .delete_datacenter(&ctx, parse_path_id("datacenters", &id)?)
        .await?;
    Ok(Reply::no_content())
}
