//! `/api/v2/users`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{parse_path_id, Body, IfMatch, Paging, Query};
use crate::reply::Reply;
use crate::routes::{OrgScope, ScopedList};
use crate::state::AppState;
use axum::extract::{Path, State};
use nephele_api_types::{Data, ErrorBody, List, PasswordChange, User, UserCreate, UserUpdate};
use nephele_app::wire;
use nephele_common::ids::OrganizationId;

const TYPE: &str = "users";

/// The users of the organization acted in.
#[utoipa::path(get, path = "/api/v2/users", tag = "users",
    params(ScopedList),
    responses((status = 200, description = "A page of users", body = List<User>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<ScopedList>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let page = state
        .app
        .list_users(&ctx, params.org_id.map(OrganizationId), &page)
        .await?;
    Ok(Reply::list("user", page.map(|u| wire::user(&u)))?)
}

/// Creates a user in the organization acted in. Granting a role needs
/// every permission it carries. Without a `password` the user is
/// `invited`: a one-time link (72 h) to set one goes to its e-mail
/// address, or, when the server sends no mail, comes back once as
/// `activationUrl`.
#[utoipa::path(post, path = "/api/v2/users", tag = "users",
    params(OrgScope),
    request_body(content = UserCreate, content_type = "application/json"),
    responses((status = 201, description = "Created", body = Data<User>),
              (status = 409, description = "Login or e-mail taken (2020)", body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(scope): Query<OrgScope>,
    Body(request): Body<UserCreate>,
) -> HttpResult<Reply> {
    let created = state
        .app
        .create_user(&ctx, scope.org_id.map(OrganizationId), request)
        .await?;
    let user = &created.user;
    let location = format!("/api/v2/users/{}", user.user.id);
    let mut body = wire::user(user);
    body.activation_url = created.activation_url.map(|u| u.expose().to_owned());
    Ok(Reply::created(body, location)?.with_version(user.user.version))
}

/// One user.
#[utoipa::path(get, path = "/api/v2/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 200, description = "The user", body = Data<User>)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let user = state.app.get_user(&ctx, parse_path_id(TYPE, &id)?).await?;
    Ok(Reply::resource(wire::user(&user), user.user.version)?)
}

/// Replaces the mutable fields: `login`, `email`, `roles` (required) and
/// `datacenterId`.
#[utoipa::path(put, path = "/api/v2/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body(content = UserUpdate, content_type = "application/json"),
    responses((status = 200, description = "Updated", body = Data<User>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 409, description = "Login or e-mail taken (2020); the root's last admin, yourself disabled, `invited` set (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn put(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<UserUpdate>,
) -> HttpResult<Reply> {
    update(state, ctx, id, request, true, precondition).await
}

/// Merge-patches the mutable fields (RFC 7396).
#[utoipa::path(patch, path = "/api/v2/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body(content = UserUpdate, content_type = "application/merge-patch+json"),
    responses((status = 200, description = "Updated", body = Data<User>),
              (status = 204, description = "Updated (Prefer: return=minimal)"),
              (status = 409, description = "Login or e-mail taken (2020); the root's last admin, yourself disabled, `invited` set (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
    Body(request): Body<UserUpdate>,
) -> HttpResult<Reply> {
    update(state, ctx, id, request, false, precondition).await
}

async fn update(
    state: AppState,
    ctx: nephele_app::access::OpCtx,
    id: String,
    request: UserUpdate,
    replace: bool,
    precondition: nephele_common::Precondition,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    let user = state
        .app
        .update_user(&ctx, id, request, replace, &precondition)
        .await?;
    Ok(Reply::resource(wire::user(&user), user.user.version)?)
}

/// Deletes a user (not yourself, not the root organization's last admin).
#[utoipa::path(delete, path = "/api/v2/users/{id}", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deleted"),
              (status = 409, description = "Yourself, or the root's last admin (2012)", body = ErrorBody),
              (status = 412, description = "If-Match failed (2021)", body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    IfMatch(precondition): IfMatch,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    state.app.delete_user(&ctx, id, &precondition).await?;
    Ok(Reply::no_content())
}

/// Ends every session of a user: its refresh tokens are deleted and its
/// access tokens refused from now on, on every node within a second.
/// Needs the right to manage the user.
#[utoipa::path(post, path = "/api/v2/users/{id}/sessions/revoke", tag = "users",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Ended"),
              (status = 404, description = "No such user here (2000)", body = ErrorBody)))]
pub async fn revoke_sessions(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    state.app.revoke_sessions(&ctx, id).await?;
    Ok(Reply::no_content())
}

/// Sets a new password and ends every session of the user. Your own
/// needs `currentPassword`.
#[utoipa::path(post, path = "/api/v2/users/{id}/password", tag = "users",
    params(("id" = String, Path, description = "User id")),
    request_body(content = PasswordChange, content_type = "application/json"),
    responses((status = 204, description = "Changed")))]
pub async fn password(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Path(id): Path<String>,
    Body(request): Body<PasswordChange>,
) -> HttpResult<Reply> {
    let id = parse_path_id(TYPE, &id)?;
    state.app.change_password(&ctx, id, request).await?;
    Ok(Reply::no_content())
}
