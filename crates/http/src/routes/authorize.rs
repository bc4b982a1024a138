//! Signing people in through a browser (SPEC §5): the authorization
//! endpoint with its login and consent pages, and RP-initiated logout.
//! Every decision is the app's (`nephele_app::signin`); this module
//! reads the request, keeps the cookies and renders the pages.

use crate::error::HttpError;
use crate::extract::read_body;
use crate::pages::signin as pages;
use crate::request::{Principal, PrincipalSlot};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nephele_app::signin::{AuthorizationRequest, AuthorizeError, AuthorizeParams, SignedIn};
use nephele_common::{ErrorCode, Secret};
use std::collections::HashMap;

/// The cookie of the identity provider's session, and of the browser
/// that forms are bound to. `__Host-` (Secure, no Domain, Path=/) when the
/// server is reached over HTTPS.
pub(crate) struct Cookies {
    secure: bool,
}

impl Cookies {
    pub(crate) fn of(state: &AppState) -> Cookies {
        Cookies {
            secure: state.app.config().public_url.starts_with("https://"),
        }
    }

    fn session_name(&self) -> &'static str {
        if self.secure {
            "__Host-nephele_session"
        } else {
            "nephele_session"
        }
    }

    fn browser_name(&self) -> &'static str {
        if self.secure {
            "__Host-nephele_browser"
        } else {
            "nephele_browser"
        }
    }

    fn set(&self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        let secure = if self.secure { "; Secure" } else { "" };
        let cookie =
            format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
        HeaderValue::from_str(&cookie).unwrap_or(HeaderValue::from_static(""))
    }
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The browser that a page's forms are bound to: the random cookie it
/// sent, or a new one, set with the page.
pub(crate) struct Browser {
    pub(crate) token: String,
    new: bool,
}

impl Browser {
    pub(crate) fn of(state: &AppState, headers: &HeaderMap) -> Browser {
        match cookie(headers, Cookies::of(state).browser_name())
            .filter(|c| !c.is_empty() && c.len() <= 64)
        {
            Some(c) => Browser {
                token: c.to_owned(),
                new: false,
            },
            None => Browser {
                token: state.app.new_browser_token(),
                new: true,
            },
        }
    }

    /// `response`, setting the browser's cookie if it is new: as long as
    /// a session, so that a form left open a while still posts.
    pub(crate) fn keep(&self, cookies: &Cookies, mut response: Response) -> Response {
        if self.new {
            let max_age = nephele_app::signin::SESSION_LIFETIME.num_seconds();
            let set = cookies.set(cookies.browser_name(), &self.token, max_age);
            response.headers_mut().append(header::SET_COOKIE, set);
        }
        response
    }
}

/// Was a form posted from the browser whose cookie the request carries
/// (the CSRF check)?
pub(crate) fn posted_here(state: &AppState, headers: &HeaderMap, form_token: Option<&str>) -> bool {
    let browser = cookie(headers, Cookies::of(state).browser_name());
    state.app.form_token_matches(browser, form_token)
}

/// Pages and redirects of this flow are never cached nor leak a referrer.
fn private(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn found(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    private(response)
}

pub(crate) fn page(status: StatusCode, page: crate::pages::Page) -> Response {
    let mut response = page.into_response();
    *response.status_mut() = status;
    private(response)
}

fn error_page(message: &str) -> Response {
    page(StatusCode::BAD_REQUEST, pages::error(message))
}

/// Parameters from a query or a form body, each at most once.
pub(crate) fn params(raw: &[u8]) -> Result<HashMap<String, String>, AuthorizeError> {
    let mut map = HashMap::new();
    for (k, v) in form_urlencoded::parse(raw) {
        if map.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(AuthorizeError::Page(format!(
                "The parameter '{}' was sent twice.",
                k.chars().take(64).collect::<String>()
            )));
        }
    }
    Ok(map)
}

/// The answer to a request that cannot go on.
fn refusal(e: AuthorizeError) -> Response {
    match e {
        AuthorizeError::Page(message) => error_page(&message),
        AuthorizeError::Redirect(url) => found(&url),
        AuthorizeError::Internal(e) => HttpError(e).into_response(),
    }
}

fn authorize_params(p: &mut HashMap<String, String>) -> AuthorizeParams {
    let mut take = |name: &str| p.remove(name).filter(|v| !v.is_empty());
    AuthorizeParams {
        response_type: take("response_type"),
        client_id: take("client_id"),
        redirect_uri: take("redirect_uri"),
        scope: take("scope"),
        state: take("state"),
        nonce: take("nonce"),
        code_challenge: take("code_challenge"),
        code_challenge_method: take("code_challenge_method"),
        prompt: take("prompt"),
        max_age: take("max_age"),
        login_hint: take("login_hint"),
    }
}

/// The request's parameters, checked.
async fn checked(
    state: &AppState,
    raw: &[u8],
) -> Result<(AuthorizationRequest, HashMap<String, String>), AuthorizeError> {
    let mut form = params(raw)?;
    let request = state
        .app
        .authorization_request(authorize_params(&mut form))
        .await?;
    Ok((request, form))
}

/// Notes a sign-in attempt for the audit log, once.
fn note_attempt(slot: Option<PrincipalSlot>, name: &str, failed: bool) {
    if let Some(slot) = slot {
        let _ = slot.0.set(Principal {
            kind: "user",
            name: Some(name.chars().take(320).collect()),
            failed,
            ..Principal::default()
        });
    }
}

/// The origin (`scheme://host[:port]`) of a URI, for `form-action`.
fn origin(uri: &str) -> String {
    url::Url::parse(uri)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_else(|_| "'none'".to_owned())
}

/// Everything a page of this flow needs to post the request back: the
/// browser's form token (and its cookie, when it has none yet).
struct Flow {
    request: AuthorizationRequest,
    params: Vec<(&'static str, String)>,
    redirect_origin: String,
    browser: Browser,
    cookies: Cookies,
}

impl Flow {
    fn new(state: &AppState, headers: &HeaderMap, request: AuthorizationRequest) -> Flow {
        Flow {
            params: request.params(),
            redirect_origin: origin(&request.redirect_uri),
            browser: Browser::of(state, headers),
            request,
            cookies: Cookies::of(state),
        }
    }

    /// What every page of the flow posts back, with this form token.
    fn form<'a>(&'a self, form_token: &'a str) -> pages::Form<'a> {
        pages::Form {
            client_name: &self.request.client.name,
            params: &self.params,
            form_token,
            redirect_origin: &self.redirect_origin,
        }
    }

    /// A page of the flow, setting the browser cookie if it is new.
    fn render(&self, status: StatusCode, page: crate::pages::Page) -> Response {
        self.browser.keep(&self.cookies, self::page(status, page))
    }

    fn login_page(
        &self,
        state: &AppState,
        status: StatusCode,
        error: Option<&str>,
        hint: Option<&str>,
    ) -> Response {
        let token = state.app.form_token(&self.browser.token);
        let form = self.form(&token);
        let hint = hint.or(self.request.login_hint.as_deref());
        let forgot = state
            .app
            .sends_mail()
            .then_some(nephele_app::links::FORGOT_PATH);
        self.render(status, pages::login(&form, hint, error, forgot))
    }

    fn second_factor_page(
        &self,
        state: &AppState,
        status: StatusCode,
        ticket: &str,
        error: Option<&str>,
    ) -> Response {
        let token = state.app.form_token(&self.browser.token);
        let form = self.form(&token);
        self.render(status, pages::second_factor(&form, ticket, error))
    }

    /// A step of the sign-in refused: `again` shows its page with the
    /// reason and the status; a lockout adds `Retry-After`.
    fn refused(
        &self,
        _state: &AppState,
        e: nephele_common::Error,
        again: impl FnOnce(&Flow, StatusCode, &str) -> Response,
    ) -> Response {
        let (status, message) = match e.code() {
            ErrorCode::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                match e.message() {
                    m if m.contains("code") => format!("{m}."),
                    _ => "Wrong username or password.".to_owned(),
                },
            ),
            ErrorCode::LockedOut => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed attempts. Try again later.".to_owned(),
            ),
            ErrorCode::TokenExpired => (StatusCode::FORBIDDEN, format!("{}.", e.message())),
            _ => return HttpError(e).into_response(),
        };
        let mut response = again(self, status, &message);
        if let Some(seconds) = e.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// Signed in: a new SSO session (and its cookie), then on.
    async fn start(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        address: Option<std::net::IpAddr>,
        user: &nephele_app::signin::User,
        amr: &[&str],
    ) -> Response {
        let user_agent = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (signed_in, cookie) = match state
            .app
            .start_session(user, amr, user_agent, address)
            .await
        {
            Ok(s) => s,
            Err(e) => return HttpError(e).into_response(),
        };
        let max_age = nephele_app::signin::SESSION_LIFETIME.num_seconds();
        let set = self
            .cookies
            .set(self.cookies.session_name(), cookie.expose(), max_age);
        self.finish(state, &signed_in, Some(set)).await
    }

    /// With a session: the consent page if the client needs one, else the
    /// code. `set_session` is the new session's cookie, if one began.
    async fn finish(
        &self,
        state: &AppState,
        signed_in: &SignedIn,
        set_session: Option<HeaderValue>,
    ) -> Response {
        let issuer = &state.app.config().public_url;
        let mut response = match state
            .app
            .needs_consent(&self.request, signed_in.user.id)
            .await
        {
            Err(e) => return HttpError(e).into_response(),
            Ok(true) if self.request.prompt.none => found(&self.request.error_redirect(
                issuer,
                "consent_required",
                "The user has not allowed this application",
            )),
            Ok(true) => {
                let token = state.app.form_token(&self.browser.token);
                let form = self.form(&token);
                self.render(
                    StatusCode::OK,
                    pages::consent(&form, &signed_in.user.login, &self.request.scopes),
                )
            }
            Ok(false) => match state.app.issue_code(&self.request, signed_in).await {
                Ok(url) => found(&url),
                Err(e) => return HttpError(e).into_response(),
            },
        };
        if let Some(set) = set_session {
            response.headers_mut().append(header::SET_COOKIE, set);
        }
        response
    }
}

/// The authorization request (OIDC Core §3.1.2.1). Only documented:
/// the endpoint reads the query itself, to refuse a parameter sent twice.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct AuthorizeQuery {
    /// `code`
    #[param(pattern = "^code$")]
    response_type: String,
    #[param(format = Uuid)]
    client_id: String,
    /// Exactly one of the client's `redirect_uris`
    #[param(min_length = 1, max_length = 2000)]
    redirect_uri: String,
    /// Space-separated: `openid`, `profile`, `email`, `offline_access`
    scope: Option<String>,
    #[param(min_length = 1, max_length = 1024)]
    state: String,
    #[param(max_length = 255)]
    nonce: Option<String>,
    /// PKCE (RFC 7636), required: the S256 challenge
    #[param(pattern = "^[A-Za-z0-9_-]{43}$")]
    code_challenge: String,
    /// `S256`
    #[param(pattern = "^S256$")]
    code_challenge_method: String,
    /// Space-separated: `none`, `login`, `consent`, `select_account`
    #[param(pattern = "^ *(?:(?:none|login|consent|select_account) *)*$")]
    prompt: Option<String>,
    max_age: Option<u32>,
    #[param(max_length = 320)]
    login_hint: Option<String>,
}

/// The authorization endpoint (OIDC Core §3.1.2): with a live session it
/// answers the code at once (or the consent page); without one, the
/// login page. A bad client or redirect URI is an error page, never a
/// redirect.
#[utoipa::path(get, path = "/api/2/idp/authorize", tag = "identity",
    params(AuthorizeQuery),
    responses(
        (status = 200, description = "The login or consent page", content_type = "text/html", body = String),
        (status = 302, description = "To the client's redirect URI with `code`, `state` and `iss`, or `error`"),
        (status = 400, description = "An unknown client or redirect URI, or a parameter sent twice: an error page", content_type = "text/html", body = String)),
    security(()))]
pub async fn authorize(State(state): State<AppState>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("").as_bytes().to_vec();
    let checked = match checked(&state, &query).await {
        Ok((r, _)) => r,
        Err(e) => return refusal(e),
    };
    let flow = Flow::new(&state, request.headers(), checked);
    let session = cookie(request.headers(), flow.cookies.session_name());
    let signed_in = match state.app.current_session(session).await {
        Ok(s) => s,
        Err(e) => return HttpError(e).into_response(),
    };
    match signed_in {
        Some(s) if !state.app.needs_login(&flow.request, Some(&s)) => {
            flow.finish(&state, &s, None).await
        }
        _ if flow.request.prompt.none => found(&flow.request.error_redirect(
            &state.app.config().public_url,
            "login_required",
            "The user is not signed in",
        )),
        _ => flow.login_page(&state, StatusCode::OK, None, None),
    }
}

/// The login and consent forms (`action` = `login` or `consent`), posted
/// with the authorization request and the browser's form token.
#[utoipa::path(post, path = "/api/2/idp/authorize", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = nephele_api_types::SignInForm),
    responses(
        (status = 302, description = "To the client's redirect URI"),
        (status = 200, description = "The consent page", content_type = "text/html", body = String),
        (status = 400, description = "An unknown client or redirect URI, a parameter sent twice, or an unknown action: an error page", content_type = "text/html", body = String),
        (status = 403, description = "A missing or wrong form token, or an expired second step: the login page again", content_type = "text/html", body = String),
        (status = 401, description = "Wrong credentials: the login page again", content_type = "text/html", body = String),
        (status = 429, description = "Locked out: the login page, with Retry-After", content_type = "text/html", body = String)),
    security(()))]
pub async fn submit(State(state): State<AppState>, request: Request) -> Response {
    let address = crate::middleware::client_address(&request);
    let slot = request.extensions().get::<PrincipalSlot>().cloned();
    let headers = request.headers().clone();
    let body = match read_body(request.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return HttpError(e).into_response(),
    };
    let (checked, mut form) = match checked(&state, &body).await {
        Ok(checked) => checked,
        Err(e) => return refusal(e),
    };
    let flow = Flow::new(&state, &headers, checked);
    if !posted_here(&state, &headers, form.get("form_token").map(String::as_str)) {
        // Forbidden, as a missing or wrong CSRF token is elsewhere: the
        // request may be well formed, but it is not this browser's form.
        return flow.login_page(
            &state,
            StatusCode::FORBIDDEN,
            Some("This form has expired. Please sign in again."),
            None,
        );
    }
    match form.get("action").map(String::as_str) {
        Some("login") => {
            let username = form.remove("username").unwrap_or_default();
            let password = Secret::new(form.remove("password").unwrap_or_default());
            let result = state
                .app
                .sign_in_password(&username, &password, address)
                .await;
            let user = match result {
                Ok(user) => user,
                Err(e) => {
                    note_attempt(slot, &username, true);
                    return flow.refused(&state, e, |flow, status, message| {
                        flow.login_page(&state, status, Some(message), Some(&username))
                    });
                }
            };
            match state.app.mfa_enrolled(user.id).await {
                Ok(true) => {
                    // The password was right; the sign-in is not done yet.
                    let ticket = state.app.mfa_ticket(&flow.browser.token, user.id);
                    return flow.second_factor_page(&state, StatusCode::OK, &ticket, None);
                }
                Ok(false) => {}
                Err(e) => return HttpError(e).into_response(),
            }
            note_attempt(slot, &username, false);
            flow.start(&state, &headers, address, &user, &["pwd"]).await
        }
        Some("otp") => {
            let ticket = form.remove("ticket").unwrap_or_default();
            let browser = cookie(&headers, flow.cookies.browser_name());
            let Some(user) = state.app.mfa_ticket_user(browser, &ticket) else {
                return flow.login_page(
                    &state,
                    StatusCode::FORBIDDEN,
                    Some("This sign-in has expired. Please sign in again."),
                    None,
                );
            };
            let code = form.remove("otp").unwrap_or_default();
            let user = match state.app.sign_in_second_factor(user, &code).await {
                Ok(user) => user,
                Err(e) => {
                    note_attempt(slot, &user.to_string(), true);
                    return flow.refused(&state, e, |flow, status, message| {
                        flow.second_factor_page(&state, status, &ticket, Some(message))
                    });
                }
            };
            note_attempt(slot, &user.login, false);
            flow.start(&state, &headers, address, &user, &["pwd", "otp"])
                .await
        }
        Some("consent") => {
            let session = cookie(&headers, flow.cookies.session_name());
            let signed_in = match state.app.current_session(session).await {
                Ok(Some(s)) => s,
                Ok(None) => return flow.login_page(&state, StatusCode::OK, None, None),
                Err(e) => return HttpError(e).into_response(),
            };
            if form.get("decision").map(String::as_str) != Some("allow") {
                return found(&flow.request.error_redirect(
                    &state.app.config().public_url,
                    "access_denied",
                    "The user did not allow this application",
                ));
            }
            if let Err(e) = state
                .app
                .give_consent(&flow.request, signed_in.user.id)
                .await
            {
                return HttpError(e).into_response();
            }
            flow.finish(&state, &signed_in, None).await
        }
        _ => error_page("The form was not understood (action)."),
    }
}

/// RP-Initiated Logout 1.0: ends the browser's session. With an
/// `id_token_hint` of ours (or the confirmation form's token) it ends at
/// once and goes to a `post_logout_redirect_uri` registered for the
/// client; otherwise it asks first.
#[utoipa::path(get, path = "/api/2/idp/logout", tag = "identity",
    params(
        ("id_token_hint" = Option<String>, Query, description = "An id token the server issued (expired ones too): which client's `post_logout_redirect_uris` apply, and no confirmation asked"),
        ("logout_hint" = Option<String>, Query, description = "Read and ignored"),
        ("client_id" = Option<String>, Query, description = "Which client's `post_logout_redirect_uris` apply, without a hint"),
        ("post_logout_redirect_uri" = Option<String>, Query, description = "One of the client's registered `post_logout_redirect_uris`"),
        ("state" = Option<String>, Query, description = "Given back with the redirect"),
        ("ui_locales" = Option<String>, Query, description = "Read and ignored")),
    responses(
        (status = 302, description = "To the registered post-logout redirect URI, with `state`"),
        (status = 200, description = "Signed out, or a page asking to confirm", content_type = "text/html", body = String),
        (status = 400, description = "A parameter sent twice, or one logout does not take: an error page", content_type = "text/html", body = String)),
    security(()))]
pub async fn logout(State(state): State<AppState>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("").as_bytes().to_vec();
    end_session(&state, request.headers(), &query, false).await
}

/// The logout confirmation, or RP-initiated logout by POST.
#[utoipa::path(post, path = "/api/2/idp/logout", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = nephele_api_types::LogoutForm, description = "Every parameter is optional: an empty form asks to confirm"),
    responses(
        (status = 302, description = "To the registered post-logout redirect URI, with `state`"),
        (status = 200, description = "Signed out, or a page asking to confirm", content_type = "text/html", body = String),
        (status = 400, description = "A parameter sent twice, or one logout does not take: an error page", content_type = "text/html", body = String)),
    security(()))]
pub async fn logout_post(State(state): State<AppState>, request: Request) -> Response {
    let headers = request.headers().clone();
    let body = match read_body(request.into_body(), 64 * 1024).await {
        Ok(b) => b,
        Err(e) => return HttpError(e).into_response(),
    };
    end_session(&state, &headers, &body, true).await
}

/// What logout takes: RP-Initiated Logout 1.0 §2's parameters (of which
/// `logout_hint` and `ui_locales` are read and ignored) and the
/// confirmation page's `form_token`. Anything else is refused, so that a
/// mistyped parameter is not silently a logout without it.
const LOGOUT_PARAMS: [&str; 7] = [
    "id_token_hint",
    "logout_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
    "form_token",
];

async fn end_session(state: &AppState, headers: &HeaderMap, raw: &[u8], posted: bool) -> Response {
    let form = match params(raw) {
        Ok(p) => p,
        Err(e) => return refusal(e),
    };
    if let Some(unknown) = form.keys().find(|k| !LOGOUT_PARAMS.contains(&k.as_str())) {
        return error_page(&format!(
            "Signing out takes no parameter '{}'.",
            unknown.chars().take(64).collect::<String>()
        ));
    }
    let get = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let cookies = Cookies::of(state);
    let redirect = match state
        .app
        .logout_redirect(
            get("id_token_hint"),
            get("client_id"),
            get("post_logout_redirect_uri"),
            get("state"),
        )
        .await
    {
        Ok(r) => r,
        Err(e) => return HttpError(e).into_response(),
    };
    let confirmed = posted && posted_here(state, headers, get("form_token"));
    let hinted = get("id_token_hint").is_some() && redirect.is_some();
    if !confirmed && !hinted {
        // Nobody proved the request is the user's: ask, with a form bound
        // to this browser.
        let browser = Browser::of(state, headers);
        let token = state.app.form_token(&browser.token);
        return browser.keep(&cookies, page(StatusCode::OK, pages::logout(Some(&token))));
    }
    if let Err(e) = state
        .app
        .end_session(cookie(headers, cookies.session_name()))
        .await
    {
        return HttpError(e).into_response();
    }
    let mut response = match redirect {
        Some(url) => found(&url),
        None => page(StatusCode::OK, pages::logout(None)),
    };
    let clear = cookies.set(cookies.session_name(), "", 0);
    response.headers_mut().append(header::SET_COOKIE, clear);
    response
}
