//! `/api/v2/me`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::parse_path_id;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{Data, List, Me, SignInSession};
use nephele_app::wire;
use nephele_common::page::Page;

/// The caller: principal, organization and effective permissions.
#[utoipa::path(get, path = "/api/v2/me", tag = "me",
    responses((status = 200, description = "The caller", body = Data<Me>)))]
pub async fn get(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let me = state.app.me(&ctx).await?;
    Ok(Reply::ok(wire::me(&me, ctx.actor.method.as_str()))?)
}

/// The caller's signed-in browsers (SSO sessions of the identity
/// provider), newest first. Users only.
#[utoipa::path(get, path = "/api/v2/me/sessions", tag = "me",
    responses((status = 200, description = "The sessions", body = List<SignInSession>)))]
pub async fn sessions(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let sessions = state.app.my_sessions(&ctx).await?;
    let page = Page {
        items: sessions.iter().map(wire::sign_in_session).collect(),
        next: None,
    };
    Ok(Reply::list("session", page)?)
}

/// Signs every browser of the caller out.
#[utoipa::path(delete, path = "/api/v2/me/sessions", tag = "me",
    responses((status = 204, description = "Every session ended")))]
pub async fn end_sessions(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    state.app.end_my_sessions(&ctx, None).await?;
    Ok(Reply::no_content())
}

/// Signs one browser of the caller out.
#[utoipa::path(delete, path = "/api/v2/me/sessions/{id}", tag = "me",
    params(("id" = String, Path, description = "Session id")),
    responses((status = 204, description = "Ended"),
              (status = 404, description = "No such session of yours", body = nephele_api_types::ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let id = parse_path_id("sessions", &id)?;
    state.app.end_my_sessions(&ctx, Some(id)).await?;
    Ok(Reply::no_content())
}
