//! Invitations and password reset (SPEC §5): asking for a reset link,
//! and the pages of the one-time links sent by mail. Every decision is
//! the app's (`nephele_app::links`); this module reads the request, keeps
//! the browser's form cookie and renders the pages.

use crate::error::{HttpError, HttpResult};
use crate::extract::{read_body, Body};
use crate::pages::links::{self as pages, LinkPage};
use crate::reply::Reply;
use crate::request::{Principal, PrincipalSlot};
use crate::routes::authorize::{page, params, posted_here, Browser, Cookies};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nephele_api_types::PasswordResetRequest;
use nephele_app::links::{LinkState, LinkUse, Purpose, ACTIVATE_PATH, FORGOT_PATH, RESET_PATH};
use nephele_common::Secret;

/// What the holder of an unusable link is told: no more than that.
const INVALID: &str =
    "This link is not valid: it is unknown, has expired, or has been used already.";

fn words(purpose: Purpose) -> LinkPage<'static> {
    match purpose {
        Purpose::Activate => LinkPage {
            action: ACTIVATE_PATH,
            title: "Choose your password",
            intro: "Welcome! Choose the password of your new account",
            button: "Set password",
        },
        Purpose::Reset => LinkPage {
            action: RESET_PATH,
            title: "Choose a new password",
            intro: "A new password for",
            button: "Set new password",
        },
    }
}

/// The link's form, for `login`, bound to the browser.
fn form(
    state: &AppState,
    headers: &HeaderMap,
    purpose: Purpose,
    status: StatusCode,
    login: &str,
    token: &str,
    error: Option<&str>,
) -> Response {
    let browser = Browser::of(state, headers);
    let form_token = state.app.form_token(&browser.token);
    let rendered = pages::password_form(&words(purpose), login, token, &form_token, error);
    browser.keep(&Cookies::of(state), page(status, rendered))
}

/// The form that asks for a reset link, bound to the browser.
fn forgot_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    login: Option<&str>,
    error: Option<&str>,
) -> Response {
    let browser = Browser::of(state, headers);
    let form_token = state.app.form_token(&browser.token);
    let rendered = pages::forgot(FORGOT_PATH, &form_token, login, error);
    browser.keep(&Cookies::of(state), page(status, rendered))
}

/// The answer to a link that does not work.
fn unusable(state: LinkState) -> Response {
    match state {
        LinkState::Refused(why) => page(StatusCode::FORBIDDEN, pages::unusable(&format!("{why}."))),
        _ => page(StatusCode::BAD_REQUEST, pages::unusable(INVALID)),
    }
}

/// Shows a link's form. Nothing is spent: mail scanners fetch links.
async fn show(state: &AppState, purpose: Purpose, request: Request) -> Response {
    let headers = request.headers().clone();
    let query = request.uri().query().unwrap_or("").as_bytes().to_vec();
    let Ok(mut query) = params(&query) else {
        return unusable(LinkState::Invalid);
    };
    let token = query.remove("token").unwrap_or_default();
    match state.app.link_state(purpose, &token).await {
        Ok(LinkState::Live(user)) => form(
            state,
            &headers,
            purpose,
            StatusCode::OK,
            &user.login,
            &token,
            None,
        ),
        Ok(other) => unusable(other),
        Err(e) => HttpError(e).into_response(),
    }
}

/// Sets the password from a link's form.
async fn submit(state: &AppState, purpose: Purpose, request: Request) -> Response {
    let slot = request.extensions().get::<PrincipalSlot>().cloned();
    let headers = request.headers().clone();
    let body = match read_body(request.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return HttpError(e).into_response(),
    };
    let Ok(mut fields) = params(&body) else {
        return unusable(LinkState::Invalid);
    };
    let token = fields.remove("token").unwrap_or_default();
    if !posted_here(
        state,
        &headers,
        fields.get("form_token").map(String::as_str),
    ) {
        // Forbidden, as a missing or wrong form token (CSRF) is elsewhere;
        // a link that works gets its form again.
        return match state.app.link_state(purpose, &token).await {
            Ok(LinkState::Live(user)) => form(
                state,
                &headers,
                purpose,
                StatusCode::FORBIDDEN,
                &user.login,
                &token,
                Some("This form has expired. Please enter the password again."),
            ),
            Ok(other) => unusable(other),
            Err(e) => HttpError(e).into_response(),
        };
    }
    let password = Secret::new(fields.remove("password").unwrap_or_default());
    let confirmation = Secret::new(fields.remove("password_confirmation").unwrap_or_default());
    match state
        .app
        .use_link(purpose, &token, &password, &confirmation)
        .await
    {
        Ok(LinkUse::Done(user)) => {
            if let Some(slot) = slot {
                let _ = slot.0.set(Principal {
                    kind: "user",
                    id: Some(user.id.to_string()),
                    name: Some(user.login.clone()),
                    organization_id: Some(user.organization_id),
                    failed: false,
                });
            }
            page(StatusCode::OK, pages::done(&user.login))
        }
        Ok(LinkUse::Rejected { user, reason, .. }) => form(
            state,
            &headers,
            purpose,
            StatusCode::BAD_REQUEST,
            &user.login,
            &token,
            Some(&format!("{reason}.")),
        ),
        Ok(LinkUse::Unusable(other)) => unusable(other),
        Err(e) => HttpError(e).into_response(),
    }
}

/// The page of an invitation's link: a form for the invited user's
/// first password. Showing it spends nothing.
#[utoipa::path(get, path = "/api/2/idp/activate", tag = "identity",
    params(("token" = String, Query, description = "The token of the link in the invitation")),
    responses(
        (status = 200, description = "The form to choose a password", content_type = "text/html", body = String),
        (status = 400, description = "An unknown, used or expired link: an error page", content_type = "text/html", body = String),
        (status = 403, description = "The account is disabled or its organization suspended: an error page", content_type = "text/html", body = String)),
    security(()))]
pub async fn activate_page(State(state): State<AppState>, request: Request) -> Response {
    show(&state, Purpose::Activate, request).await
}

/// Sets an invited user's first password, which enables it; the link is
/// spent.
#[utoipa::path(post, path = "/api/2/idp/activate", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = nephele_api_types::PasswordLinkForm),
    responses(
        (status = 200, description = "Done: a page that says so", content_type = "text/html", body = String),
        (status = 400, description = "An unknown, used or expired link (an error page), or passwords that differ or are too short (the form again, with the reason)", content_type = "text/html", body = String),
        (status = 403, description = "A missing or wrong form token (the form again), or a disabled account or suspended organization (an error page)", content_type = "text/html", body = String)),
    security(()))]
pub async fn activate(State(state): State<AppState>, request: Request) -> Response {
    submit(&state, Purpose::Activate, request).await
}

/// The page of a password reset link: a form for a new password.
/// Showing it spends nothing.
#[utoipa::path(get, path = "/api/2/idp/reset", tag = "identity",
    params(("token" = String, Query, description = "The token of the link in the mail")),
    responses(
        (status = 200, description = "The form to choose a new password", content_type = "text/html", body = String),
        (status = 400, description = "An unknown, used or expired link: an error page", content_type = "text/html", body = String),
        (status = 403, description = "The account is disabled or its organization suspended: an error page", content_type = "text/html", body = String)),
    security(()))]
pub async fn reset_page(State(state): State<AppState>, request: Request) -> Response {
    show(&state, Purpose::Reset, request).await
}

/// Sets a new password; the link is spent and every session of the user
/// (refresh tokens, SSO sessions, access tokens) ends.
#[utoipa::path(post, path = "/api/2/idp/reset", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = nephele_api_types::PasswordLinkForm),
    responses(
        (status = 200, description = "Done: a page that says so", content_type = "text/html", body = String),
        (status = 400, description = "An unknown, used or expired link (an error page), or passwords that differ or are too short (the form again, with the reason)", content_type = "text/html", body = String),
        (status = 403, description = "A missing or wrong form token (the form again), or a disabled account or suspended organization (an error page)", content_type = "text/html", body = String)),
    security(()))]
pub async fn reset(State(state): State<AppState>, request: Request) -> Response {
    submit(&state, Purpose::Reset, request).await
}

/// The page that asks for a password reset link (the login page links
/// to it when the server sends mail).
#[utoipa::path(get, path = "/api/2/idp/forgot-password", tag = "identity",
    responses(
        (status = 200, description = "The form: a login or e-mail address", content_type = "text/html", body = String),
        (status = 404, description = "The server sends no mail (no --smtp-url)", content_type = "text/html", body = String)),
    security(()))]
pub async fn forgot_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.app.sends_mail() {
        return no_mail();
    }
    forgot_form(&state, &headers, StatusCode::OK, None, None)
}

/// Asks for a reset link from the page's form. The answer is the same
/// page whether or not the account exists, as `password-reset`'s is.
#[utoipa::path(post, path = "/api/2/idp/forgot-password", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = nephele_api_types::ForgotPasswordForm),
    responses(
        (status = 200, description = "Asked: a page that says to check the mail", content_type = "text/html", body = String),
        (status = 400, description = "No login given, or a parameter sent twice: the form again", content_type = "text/html", body = String),
        (status = 403, description = "A missing or wrong form token: the form again", content_type = "text/html", body = String),
        (status = 404, description = "The server sends no mail (no --smtp-url)", content_type = "text/html", body = String)),
    security(()))]
pub async fn forgot(State(state): State<AppState>, request: Request) -> Response {
    if !state.app.sends_mail() {
        return no_mail();
    }
    let headers = request.headers().clone();
    let body = match read_body(request.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return HttpError(e).into_response(),
    };
    let Ok(mut fields) = params(&body) else {
        let error = "The form was not understood.";
        return forgot_form(&state, &headers, StatusCode::BAD_REQUEST, None, Some(error));
    };
    let login = fields.remove("login").unwrap_or_default();
    let login = login.trim();
    if !posted_here(
        &state,
        &headers,
        fields.get("form_token").map(String::as_str),
    ) {
        let error = "This form has expired. Please try again.";
        return forgot_form(
            &state,
            &headers,
            StatusCode::FORBIDDEN,
            Some(login),
            Some(error),
        );
    }
    let request = PasswordResetRequest {
        login: Some(login.to_owned()),
    };
    match state.app.request_password_reset(request) {
        Ok(()) => page(StatusCode::OK, pages::forgot_sent()),
        Err(_) => {
            let error = "Enter your username or e-mail address.";
            forgot_form(
                &state,
                &headers,
                StatusCode::BAD_REQUEST,
                Some(login),
                Some(error),
            )
        }
    }
}

fn no_mail() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::unusable(
            "This server sends no mail: ask your administrator to reset your password.",
        ),
    )
}

/// Asks for a password reset link by mail, for a login or e-mail. The
/// answer is the same whether or not the account exists: an enabled
/// user gets a reset link (1 h), an invited one a new activation link
/// (72 h), anyone else nothing; at most one a minute.
#[utoipa::path(post, path = "/api/2/idp/password-reset", tag = "identity",
    request_body(content = PasswordResetRequest, content_type = "application/json"),
    responses((status = 202, description = "Accepted: if the account may sign in, a link is on its way")),
    security(()))]
pub async fn password_reset(
    State(state): State<AppState>,
    Body(request): Body<PasswordResetRequest>,
) -> HttpResult<Reply> {
    state.app.request_password_reset(request)?;
    Ok(Reply::accepted_empty())
}
