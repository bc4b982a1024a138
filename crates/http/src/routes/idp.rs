//! The OAuth2/OIDC endpoints (SPEC §5): token, revocation, introspection,
//! userinfo, the JWKS and discovery. Their errors are RFC 6749's
//! `{"error": …, "error_description": …}`, not the `errors` envelope.

use crate::auth::{parse_basic, Auth};
use crate::error::{HttpError, HttpResult};
use crate::extract::{body_kind, read_body, BodyKind};
use crate::middleware::NotAudited;
use crate::reply::Reply;
use crate::request::{Principal, PrincipalSlot};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nephele_api_types::{
    ErrorBody, Introspection, JsonWebKey, JsonWebKeySet, OAuthError, OpenIdConfiguration,
    TokenForm, TokenHintForm, TokenResponse, UserInfo,
};
use nephele_app::access::Credentials;
use nephele_app::keys::KeySet;
use nephele_app::tokens::{
    ClientAuthMethod, ClientCredentials, RevocationCaller, TokenError, TokenRequest, GRANT_TYPES,
    SCOPES,
};
use nephele_app::App;
use nephele_common::Secret;
use std::collections::HashMap;

/// Form parameters: each at most once (RFC 6749 §3.2).
struct Form(HashMap<String, String>);

impl Form {
    fn take(&mut self, name: &str) -> Option<String> {
        self.0.remove(name).filter(|v| !v.is_empty())
    }
}

/// An OAuth2 endpoint's failure.
pub struct OAuthFailure(TokenError);

impl From<TokenError> for OAuthFailure {
    fn from(e: TokenError) -> Self {
        OAuthFailure(e)
    }
}

impl From<nephele_common::Error> for OAuthFailure {
    fn from(e: nephele_common::Error) -> Self {
        OAuthFailure(TokenError::Internal(e))
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        match self.0 {
            TokenError::Internal(e) => HttpError(e).into_response(),
            TokenError::OAuth {
                error,
                description,
                retry_after,
            } => {
                let status = match (error, retry_after) {
                    (_, Some(_)) => StatusCode::TOO_MANY_REQUESTS,
                    ("invalid_client", _) => StatusCode::UNAUTHORIZED,
                    _ => StatusCode::BAD_REQUEST,
                };
                let body = OAuthError {
                    error: error.to_owned(),
                    error_description: Some(description),
                };
                let mut response = (status, axum::Json(body)).into_response();
                let headers = response.headers_mut();
                no_store(headers);
                if status == StatusCode::UNAUTHORIZED {
                    headers.insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"nephele\""),
                    );
                }
                if let Some(seconds) = retry_after {
                    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
                }
                response
            }
        }
    }
}

type OAuthResult<T> = Result<T, OAuthFailure>;

fn no_store(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Reads a form body, refusing other media types, oversize bodies and
/// repeated parameters with `invalid_request`.
async fn read_form(state: &AppState, request: Request) -> OAuthResult<Form> {
    if body_kind(request.headers()) != Some(BodyKind::Form) {
        return Err(TokenError::invalid_request(
            "The body must be application/x-www-form-urlencoded",
        )
        .into());
    }
    let bytes = read_body(
        request.into_body(),
        state.options.max_body_bytes.min(64 * 1024),
    )
    .await
    .map_err(|e| TokenError::invalid_request(e.message().to_owned()))?;
    let mut form = HashMap::new();
    for (key, value) in form_urlencoded::parse(&bytes) {
        if form.insert(key.to_string(), value.into_owned()).is_some() {
            return Err(TokenError::invalid_request(format!(
                "Parameter '{}' is repeated",
                key.chars().take(64).collect::<String>()
            ))
            .into());
        }
    }
    Ok(Form(form))
}

/// The client's credentials: `client_secret_basic` (the `Authorization`
/// header) or `client_secret_post` (the form), never both.
fn client_credentials(
    authorization: Option<&HeaderValue>,
    form: &mut Form,
) -> OAuthResult<Option<ClientCredentials>> {
    let basic = match authorization {
        Some(value) => {
            let value = value
                .to_str()
                .ok()
                .filter(|v| v.len() <= 4096)
                .ok_or_else(TokenError::invalid_client)?;
            if value
                .split_once(' ')
                .is_some_and(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            {
                None
            } else {
                let (id, secret) = parse_basic(value).map_err(|_| TokenError::invalid_client())?;
                // RFC 6749 §2.3.1: both are form-encoded before base64.
                let decode = |s: &str| -> String {
                    form_urlencoded::parse(format!("x={s}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                        .unwrap_or_default()
                };
                Some(ClientCredentials {
                    client_id: decode(&id),
                    secret: Secret::new(decode(secret.expose())),
                    method: ClientAuthMethod::Basic,
                })
            }
        }
        None => None,
    };
    let post_id = form.take("client_id");
    let post_secret = form.take("client_secret");
    match (basic, post_id, post_secret) {
        // Some libraries repeat the Basic client's id in the form.
        (Some(basic), Some(id), None) if id == basic.client_id => Ok(Some(basic)),
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            Err(TokenError::invalid_request("Use one client authentication method, not two").into())
        }
        (Some(basic), None, None) => Ok(Some(basic)),
        (None, Some(client_id), Some(secret)) => Ok(Some(ClientCredentials {
            client_id,
            secret: Secret::new(secret),
            method: ClientAuthMethod::Post,
        })),
        // A public client names itself and proves nothing else here.
        (None, Some(client_id), None) => Ok(Some(ClientCredentials {
            client_id,
            secret: Secret::new(String::new()),
            method: ClientAuthMethod::None,
        })),
        // A secret of no client authenticates no one (RFC 6749 §5.2).
        (None, None, Some(_)) => Err(TokenError::invalid_client().into()),
        (None, None, None) => Ok(None),
    }
}

/// Issues tokens: the `password`, `client_credentials` and
/// `refresh_token` grants; clients authenticate with
/// `client_secret_basic` or `client_secret_post`.
#[utoipa::path(post, path = "/api/2/idp/token", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = TokenForm),
    responses(
        (status = 200, description = "Tokens", body = TokenResponse),
        (status = 400, description = "invalid_request, invalid_grant, unsupported_grant_type, invalid_scope", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError),
        (status = 429, description = "Locked out after failed passwords; see Retry-After", body = OAuthError)),
    security(()))]
pub async fn token(State(state): State<AppState>, request: Request) -> OAuthResult<Response> {
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let addr = crate::middleware::client_address(&request);
    let slot = request.extensions().get::<PrincipalSlot>().cloned();
    let mut form = read_form(&state, request).await?;
    let client = client_credentials(authorization.as_ref(), &mut form)?;
    let grant_type = form.take("grant_type");
    let token_request = TokenRequest {
        grant_type: grant_type.clone(),
        username: form.take("username"),
        password: form.take("password").map(Secret::new),
        otp: form.take("otp").map(Secret::new),
        scope: form.take("scope"),
        refresh_token: form.take("refresh_token").map(Secret::new),
        code: form.take("code").map(Secret::new),
        redirect_uri: form.take("redirect_uri"),
        code_verifier: form.take("code_verifier").map(Secret::new),
        client,
    };
    let attempted = token_request
        .username
        .clone()
        .or_else(|| token_request.client.as_ref().map(|c| c.client_id.clone()));
    let result = state.app.token(token_request, addr).await;
    if let (Some(slot), Some(name)) = (slot, attempted) {
        let _ = slot.0.set(Principal {
            kind: if grant_type.as_deref() == Some("password") {
                "user"
            } else {
                "client"
            },
            name: Some(name.chars().take(320).collect()),
            failed: result.is_err(),
            ..Principal::default()
        });
    }
    let tokens = result?;
    state
        .metrics
        .token_issued(grant_type.as_deref().unwrap_or_default());
    let mut response = axum::Json(tokens).into_response();
    no_store(response.headers_mut());
    // A user's sign-in (the password grant) is audited; a machine's token
    // traffic and refreshes are counted in metrics instead.
    if grant_type.as_deref() != Some("password") {
        response.extensions_mut().insert(NotAudited);
    }
    Ok(response)
}

/// Who may revoke: the client the token was issued to, or (with a bearer
/// access token) the token's own subject.
async fn revocation_caller(
    app: &App,
    authorization: Option<&HeaderValue>,
    form: &mut Form,
) -> OAuthResult<RevocationCaller> {
    if let Some(client) = client_credentials(authorization, form)? {
        return Ok(RevocationCaller::Client(
            app.authenticate_client(&client).await?.id,
        ));
    }
    let bearer = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .ok_or_else(TokenError::invalid_client)?;
    let claims = app
        .verify_access_token(&bearer)
        .await
        .map_err(|_| TokenError::invalid_client())?;
    claims
        .principal()
        .map(RevocationCaller::Subject)
        .ok_or_else(|| TokenError::invalid_client().into())
}

/// Revokes an access or refresh token (RFC 7009). Always 200 for a token
/// the caller may not revoke or that does not exist.
#[utoipa::path(post, path = "/api/2/idp/revoke", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = TokenHintForm),
    responses(
        (status = 200, description = "Revoked (or nothing to revoke)"),
        (status = 400, description = "invalid_request", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError)),
    security(()))]
pub async fn revoke(State(state): State<AppState>, request: Request) -> OAuthResult<Response> {
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let mut form = read_form(&state, request).await?;
    let caller = revocation_caller(&state.app, authorization.as_ref(), &mut form).await?;
    let token = form
        .take("token")
        .ok_or_else(|| TokenError::invalid_request("token is required"))?;
    let hint = form.take("token_type_hint");
    state
        .app
        .revoke_token(&caller, &token, hint.as_deref())
        .await?;
    let mut response = StatusCode::OK.into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// Tells an authenticated client whether a token is active (RFC 7662).
#[utoipa::path(post, path = "/api/2/idp/introspect", tag = "identity",
    request_body(content_type = "application/x-www-form-urlencoded", content = TokenHintForm),
    responses(
        (status = 200, description = "The token's state; inactive is exactly {\"active\":false}", body = Introspection),
        (status = 400, description = "invalid_request", body = OAuthError),
        (status = 401, description = "invalid_client", body = OAuthError)),
    security(()))]
pub async fn introspect(State(state): State<AppState>, request: Request) -> OAuthResult<Response> {
    let authorization = request.headers().get(header::AUTHORIZATION).cloned();
    let mut form = read_form(&state, request).await?;
    let client = client_credentials(authorization.as_ref(), &mut form)?
        .ok_or_else(TokenError::invalid_client)?;
    let client = state.app.authenticate_client(&client).await?;
    let token = form
        .take("token")
        .ok_or_else(|| TokenError::invalid_request("token is required"))?;
    let answer = state.app.introspect(&client, &token).await?;
    let mut response = axum::Json(answer).into_response();
    no_store(response.headers_mut());
    response.extensions_mut().insert(NotAudited);
    Ok(response)
}

/// The claims of a user's access token with `openid` (OIDC Core §5.3).
#[utoipa::path(get, path = "/api/2/idp/userinfo", tag = "identity",
    responses(
        (status = 200, description = "Claims about the token's subject", body = UserInfo),
        (status = 401, description = "No bearer token (1000), or one that is not a user's live access token (1001, 1002); `WWW-Authenticate: Bearer error=\"invalid_token\"`", body = ErrorBody),
        (status = 403, description = "The token lacks the openid scope (1003); `WWW-Authenticate: Bearer error=\"insufficient_scope\"`", body = ErrorBody)))]
pub async fn userinfo(State(state): State<AppState>, parts: Parts) -> Response {
    userinfo_reply(&state, &parts).await
}

/// The same claims, asked for by POST (OIDC Core §5.3.1).
#[utoipa::path(post, path = "/api/2/idp/userinfo", tag = "identity",
    responses(
        (status = 200, description = "Claims about the token's subject", body = UserInfo),
        (status = 401, description = "No bearer token (1000), or one that is not a user's live access token (1001, 1002)", body = ErrorBody),
        (status = 403, description = "The token lacks the openid scope (1003)", body = ErrorBody)))]
pub async fn userinfo_post(State(state): State<AppState>, parts: Parts) -> Response {
    userinfo_reply(&state, &parts).await
}

/// Userinfo's answer; its refusals name the RFC 6750 error in
/// `WWW-Authenticate`, beside the `errors` envelope.
async fn userinfo_reply(state: &AppState, parts: &Parts) -> Response {
    use nephele_common::{Error, ErrorCode};
    // A malformed header is bad credentials (1001), as on every route.
    let result = match crate::auth::credentials(parts) {
        Ok(Some(Credentials::Bearer(token))) => state.app.userinfo(token.expose()).await,
        Ok(_) => Err(Error::new(
            ErrorCode::AuthenticationRequired,
            "userinfo takes a bearer access token",
        )),
        Err(e) => Err(e),
    };
    let e = match result.and_then(|info| Reply::bare(StatusCode::OK, &info)) {
        Ok(reply) => return reply.into_response(),
        Err(e) => e,
    };
    let challenge = match e.status() {
        401 if e.code() == ErrorCode::AuthenticationRequired => {
            Some("Bearer realm=\"nephele\"".to_owned())
        }
        401 => Some(format!(
            "Bearer realm=\"nephele\", error=\"invalid_token\", error_description=\"{}\"",
            e.message().replace(['"', '\\'], "'")
        )),
        403 => Some(
            "Bearer realm=\"nephele\", error=\"insufficient_scope\", scope=\"openid\"".to_owned(),
        ),
        _ => None,
    };
    let mut response = HttpError(e).into_response();
    if let Some(value) = challenge.and_then(|c| HeaderValue::try_from(c).ok()) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The public keys that verify tokens (RFC 7517): the current ones and
/// those retired while tokens they signed live.
#[utoipa::path(get, path = "/api/2/idp/keys", tag = "identity",
    responses((status = 200, description = "The JWKS", body = JsonWebKeySet)),
    security(()))]
pub async fn keys(State(state): State<AppState>) -> HttpResult<Response> {
    let keys = state.app.key_ring().keys()?;
    let mut response = axum::Json(jwks(&keys)).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    Ok(response)
}

fn jwks(keys: &KeySet) -> JsonWebKeySet {
    JsonWebKeySet {
        keys: keys
            .jwks
            .iter()
            .map(|k| JsonWebKey {
                kty: k.kty.clone(),
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                use_: k.use_.clone(),
                crv: k.crv.clone(),
                x: k.x.clone(),
                y: k.y.clone(),
                n: k.n.clone(),
                e: k.e.clone(),
            })
            .collect(),
    }
}

/// Replaces both signing keys now (root admins only). The retired keys
/// stay in the JWKS until the last token they signed has expired.
#[utoipa::path(post, path = "/api/2/idp/keys/rotate", tag = "identity",
    responses(
        (status = 200, description = "The JWKS after rotation", body = JsonWebKeySet),
        (status = 403, description = "Not an admin of the root organization (1003)", body = ErrorBody)))]
pub async fn rotate_keys(State(state): State<AppState>, Auth(ctx): Auth) -> HttpResult<Reply> {
    let keys = state.app.rotate_signing_keys(&ctx).await?;
    Ok(Reply::bare(StatusCode::OK, &jwks(&keys))?)
}

/// OpenID Connect discovery.
#[utoipa::path(get, path = "/.well-known/openid-configuration", tag = "identity",
    responses((status = 200, description = "The provider's metadata", body = OpenIdConfiguration)),
    security(()))]
pub async fn openid_configuration(State(state): State<AppState>) -> HttpResult<Reply> {
    let issuer = state.app.config().public_url.clone();
    let url = |path: &str| format!("{}{path}", issuer.trim_end_matches('/'));
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let keys = state.app.key_ring().config();
    let secret_methods = strings(&["client_secret_basic", "client_secret_post"]);
    Ok(Reply::bare(
        StatusCode::OK,
        &OpenIdConfiguration {
            token_endpoint: url("/api/2/idp/token"),
            jwks_uri: url("/api/2/idp/keys"),
            revocation_endpoint: url("/api/2/idp/revoke"),
            introspection_endpoint: url("/api/2/idp/introspect"),
            userinfo_endpoint: url("/api/2/idp/userinfo"),
            authorization_endpoint: url("/api/2/idp/authorize"),
            end_session_endpoint: url("/api/2/idp/logout"),
            grant_types_supported: strings(&GRANT_TYPES),
            token_endpoint_auth_methods_supported: strings(&[
                "client_secret_basic",
                "client_secret_post",
                "none",
            ]),
            revocation_endpoint_auth_methods_supported: secret_methods.clone(),
            introspection_endpoint_auth_methods_supported: secret_methods,
            code_challenge_methods_supported: strings(&["S256"]),
            authorization_response_iss_parameter_supported: true,
            prompt_values_supported: strings(&["none", "login", "consent"]),
            scopes_supported: strings(&SCOPES),
            id_token_signing_alg_values_supported: vec![keys.id_algorithm.to_string()],
            response_types_supported: strings(&["code"]),
            response_modes_supported: strings(&["query"]),
            subject_types_supported: strings(&["public"]),
            claims_supported: strings(&[
                "iss",
                "sub",
                "aud",
                "exp",
                "iat",
                "auth_time",
                "nonce",
                "at_hash",
                "amr",
                "sid",
                "tenant_id",
                "preferred_username",
                "name",
                "email",
            ]),
            issuer,
        },
    )?)
}
