//! `/api/v2/me`: the caller, its signed-in browsers
//! (`/api/v2/me/sessions`) and its own second factor
//! (`/api/v2/me/mfa/totp`).

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{
    Consent, Data, ErrorBody, List, Me, RecoveryCodes, SignInSession, TotpConfirm, TotpEnrolment,
    TotpRemoval,
};
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
              (status = 404, description = "No such session of yours", body = ErrorBody)))]
pub async fn end_session(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let id = parse_path_id("sessions", &id)?;
    state.app.end_my_sessions(&ctx, Some(id)).await?;
    Ok(Reply::no_content())
}

/// The third-party applications the caller allowed.
#[utoipa::path(get, path = "/api/v2/me/consents", tag = "me",
    responses((status = 200, description = "The consents", body = List<Consent>)))]
pub async fn consents(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let consents = state.app.my_consents(&ctx).await?;
    let page = Page {
        items: consents.iter().map(wire::consent).collect(),
        next: None,
    };
    Ok(Reply::list("consent", page)?)
}

/// Takes back what the caller allowed a client: it asks again next time.
#[utoipa::path(delete, path = "/api/v2/me/consents/{client_id}", tag = "me",
    params(("client_id" = String, Path, description = "The client's id")),
    responses((status = 204, description = "Revoked"),
              (status = 404, description = "No consent for that client", body = ErrorBody)))]
pub async fn revoke_consent(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(client_id): Path<String>,
) -> HttpResult<Reply> {
    let client = parse_path_id("consents", &client_id)?;
    state.app.revoke_my_consent(&ctx, client).await?;
    Ok(Reply::no_content())
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
