//! `/api/v2/me`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use nephele_api_types::{Data, Me};
use nephele_app::wire;

/// The caller: principal, organization and effective permissions.
#[utoipa::path(get, path = "/api/v2/me", tag = "me",
    responses((status = 200, description = "The caller", body = Data<Me>)))]
pub async fn get(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let me = state.app.me(&ctx).await?;
    Ok(Reply::ok(wire::me(&me, ctx.actor.method.as_str()))?)
}
