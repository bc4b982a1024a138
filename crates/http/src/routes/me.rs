//! `/api/v2/me`, and the caller's own second factor under
//! `/api/v2/me/mfa/totp`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::Body;
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use nephele_api_types::{
    Data, ErrorBody, Me, RecoveryCodes, TotpConfirm, TotpEnrolment, TotpRemoval,
};
use nephele_app::wire;

/// The caller: principal, organization and effective permissions.
#[utoipa::path(get, path = "/api/v2/me", tag = "me",
    responses((status = 200, description = "The caller", body = Data<Me>)))]
pub async fn get(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let me = state.app.me(&ctx).await?;
    Ok(Reply::ok(wire::me(&me, ctx.actor.method.as_str()))?)
}

/// Starts enrolling a TOTP second factor: a new secret, pending until a
/// code confirms it (calling again replaces a pending one). Users only.
#[utoipa::path(post, path = "/api/v2/me/mfa/totp", tag = "me",
    responses((status = 201, description = "The secret, shown this once", body = Data<TotpEnrolment>),
              (status = 403, description = "An API client (1003)", body = ErrorBody),
              (status = 409, description = "MFA is already enabled (2012)", body = ErrorBody)))]
pub async fn enrol_totp(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let enrolment = state.app.enrol_totp(&ctx).await?;
    Ok(Reply::created(
        wire::totp_enrolment(&enrolment),
        "/api/v2/me/mfa/totp".to_owned(),
    )?)
}

/// Confirms the pending enrolment with a current code: MFA is then
/// enabled, and the answer holds 10 one-time recovery codes, shown this
/// once.
#[utoipa::path(post, path = "/api/v2/me/mfa/totp/confirm", tag = "me",
    request_body(content = TotpConfirm, content_type = "application/json"),
    responses((status = 200, description = "Enabled; the recovery codes", body = Data<RecoveryCodes>),
              (status = 409, description = "No enrolment is pending (2012)", body = ErrorBody),
              (status = 422, description = "Not a current code (3001, field code)", body = ErrorBody)))]
pub async fn confirm_totp(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Body(request): Body<TotpConfirm>,
) -> HttpResult<Reply> {
    let codes = state.app.confirm_totp(&ctx, request.code).await?;
    Ok(Reply::ok(wire::recovery_codes(&codes))?)
}

/// Removes the caller's TOTP and recovery codes, with the password and a
/// current code or an unused recovery code.
#[utoipa::path(delete, path = "/api/v2/me/mfa/totp", tag = "me",
    request_body(content = TotpRemoval, content_type = "application/json"),
    responses((status = 204, description = "Removed"),
              (status = 404, description = "No TOTP to remove (2000)", body = ErrorBody),
              (status = 422, description = "Wrong password or code (3001, field password or code)", body = ErrorBody),
              (status = 429, description = "Too many wrong codes (1004); see Retry-After", body = ErrorBody)))]
pub async fn remove_totp(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Body(request): Body<TotpRemoval>,
) -> HttpResult<Reply> {
    state
        .app
        .remove_totp(&ctx, request.password, request.code)
        .await?;
    Ok(Reply::no_content())
}
