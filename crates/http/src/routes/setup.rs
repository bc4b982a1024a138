//! First-run setup (SPEC §2).

use crate::error::{HttpError, HttpResult};
use crate::extract::Body;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use nephele_api_types::{Data, ErrorBody, SetupInit, SetupResult, SetupStatus};
use nephele_app::wire;

/// Has the platform been set up?
#[utoipa::path(get, path = "/occm/setup/status", tag = "setup",
    responses((status = 200, description = "Setup state", body = Data<SetupStatus>)))]
pub async fn status(State(state): State<AppState>) -> HttpResult<Reply> {
    let initialized = state.app.is_initialized().await?;
    Ok(Reply::ok(SetupStatus { initialized })?)
}

/// Sets the platform up: the root organization and its first admin.
#[utoipa::path(post, path = "/occm/setup/init", tag = "setup",
    request_body(content = SetupInit, content_type = "application/json"),
    responses(
        (status = 201, description = "Set up", body = Data<SetupResult>),
        (status = 401, description = "Wrong setup token (1001)", body = ErrorBody),
        (status = 409, description = "Already set up (1101)", body = ErrorBody)))]
pub async fn init(
    State(state): State<AppState>,
    body: Result<Body<SetupInit>, HttpError>,
) -> HttpResult<Reply> {
    // Once set up, every init is a 409, whatever its body.
    state.app.ensure_not_initialized().await?;
    let Body(request) = body?;
    let (org, user) = state.app.initialize(request).await?;
    let location = format!("/api/v2/organizations/{}", org.id);
    let result = SetupResult {
        organization: wire::organization(&org),
        user: wire::user(&user),
    };
    Ok(Reply::created(result, location)?)
}
