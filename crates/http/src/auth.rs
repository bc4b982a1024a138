//! The authentication extractor: credentials in the request → the
//! operation context. The three schemes of SPEC §4 are parsed here and
//! verified by the app ([`nephele_app::App::authenticate`]).

use crate::error::HttpError;
use crate::request::{Principal, PrincipalSlot, RequestContext};
use crate::state::AppState;
use axum::extract::{FromRef, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{header, Method};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use nephele_app::access::{
    enrolment_required, invalid_credentials, AuditScope, Credentials, OpCtx,
};
use nephele_app::idempotency::IdempotencyKey;
use nephele_auth::{Actor, Mfa};
use nephele_common::{Error, ErrorCode, Secret};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub OpCtx);

const MAX_CREDENTIAL_HEADER: usize = 4096;
/// How much of a failed login name the audit log keeps.
const MAX_LOGGED_NAME: usize = 320;

/// Splits `Basic base64(login:password)`.
pub fn parse_basic(value: &str) -> Result<(String, Secret), Error> {
    let (scheme, encoded) = value.split_once(' ').ok_or_else(invalid_credentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(invalid_credentials());
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid_credentials())?;
    let text = String::from_utf8(decoded).map_err(|_| invalid_credentials())?;
    let (login, password) = text.split_once(':').ok_or_else(invalid_credentials)?;
    if login.is_empty() {
        return Err(invalid_credentials());
    }
    Ok((login.to_owned(), Secret::new(password)))
}

/// The credentials a request carries: `Authorization` (Basic or Bearer)
/// or `MC-Api-Key`. `None` when it carries none.
pub fn credentials(parts: &Parts) -> Result<Option<Credentials>, Error> {
    let authorization = parts.headers.get(header::AUTHORIZATION);
    let api_key = parts.headers.get("mc-api-key");
    let value = |v: &header::HeaderValue| -> Result<String, Error> {
        if v.len() > MAX_CREDENTIAL_HEADER {
            return Err(invalid_credentials());
        }
        v.to_str()
            .map(|s| s.trim().to_owned())
            .map_err(|_| invalid_credentials())
    };
    match (authorization, api_key) {
        (None, None) => Ok(None),
        (Some(v), _) => {
            let v = value(v)?;
            match v.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Ok(Some(Credentials::Bearer(Secret::new(token.trim()))))
                }
                _ => {
                    let (username, secret) = parse_basic(&v)?;
                    Ok(Some(Credentials::Basic { username, secret }))
                }
            }
        }
        (None, Some(v)) => Ok(Some(Credentials::ApiKey(Secret::new(value(v)?)))),
    }
}

fn attempted(credentials: Option<&Credentials>, parts: &Parts) -> Principal {
    let (kind, name) = match credentials {
        Some(Credentials::Basic { username, .. }) => (
            "basic",
            Some(username.chars().take(MAX_LOGGED_NAME).collect()),
        ),
        Some(Credentials::ApiKey(_)) => ("api_key", None),
        Some(Credentials::Bearer(_)) => ("bearer", None),
        None if parts.headers.contains_key("mc-api-key") => ("api_key", None),
        None => ("basic", None),
    };
    Principal {
        kind,
        name,
        failed: true,
        ..Principal::default()
    }
}

/// The caller an earlier layer already authenticated (the idempotency
/// middleware, which keys a retry by its principal): the extractor takes
/// it instead of verifying the credentials a second time.
#[derive(Debug, Clone)]
pub struct Authenticated(pub Actor);

/// Verifies the credentials a request carries, recording who they named
/// (or failed to) for the access and audit logs.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Actor, Error> {
    let slot = parts.extensions.get::<PrincipalSlot>().cloned();
    let record = |p: Principal| {
        if let Some(slot) = &slot {
            let _ = slot.0.set(p);
        }
    };
    let credentials = match credentials(parts) {
        Ok(Some(c)) => c,
        Ok(None) => {
            return Err(Error::new(
                ErrorCode::AuthenticationRequired,
                "Authentication required",
            ))
        }
        Err(e) => {
            record(attempted(None, parts));
            return Err(e);
        }
    };
    let address = parts
        .extensions
        .get::<RequestContext>()
        .and_then(|c| c.client_ip);
    let actor = match state.app.authenticate(&credentials, address).await {
        Ok(actor) => actor,
        Err(e) => {
            if matches!(
                e.code(),
                ErrorCode::InvalidCredentials | ErrorCode::TokenExpired | ErrorCode::LockedOut
            ) {
                record(attempted(Some(&credentials), parts));
            }
            return Err(e);
        }
    };
    record(Principal {
        kind: actor.principal.kind(),
        id: Some(actor.principal.to_string()),
        name: Some(actor.name.clone()),
        organization_id: Some(actor.organization_id),
        failed: false,
    });
    Ok(actor)
}

impl<S> FromRequestParts<S> for Auth
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AppState::from_ref(state);
        let actor = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(actor)) => actor.clone(),
            None => authenticate(parts, &state).await?,
        };
        if actor.mfa == Mfa::MustEnrol && !open_before_enrolment(parts) {
            return Err(enrolment_required().into());
        }
        let ctx = parts.extensions.get::<RequestContext>();
        Ok(Auth(OpCtx {
            actor,
            request_id: ctx.map(|c| c.request_id.clone()).unwrap_or_default(),
            agent_id: ctx.and_then(|c| c.agent_id.clone()),
            audit: parts
                .extensions
                .get::<AuditScope>()
                .cloned()
                .unwrap_or_default(),
            idempotency: parts.extensions.get::<IdempotencyKey>().cloned(),
        }))
    }
}

/// What a user who must enrol in MFA may still call: its own `GET
/// /api/v2/me` and the enrolment routes (SPEC §5). The caller's actor
/// says whether it must (remembered with the rest of the actor), so the
/// check costs no query.
const OPEN_BEFORE_ENROLMENT: [(&str, Option<Method>); 3] = [
    ("/api/v2/me", Some(Method::GET)),
    ("/api/v2/me/mfa/totp", None),
    ("/api/v2/me/mfa/totp/confirm", None),
];

fn open_before_enrolment(parts: &Parts) -> bool {
    let Some(route) = parts.extensions.get::<MatchedPath>() else {
        return false;
    };
    OPEN_BEFORE_ENROLMENT.iter().any(|(path, method)| {
        *path == route.as_str() && method.as_ref().is_none_or(|m| *m == parts.method)
    })
}

/// The caller's context when the request carries credentials (which must
/// then be valid: 401 otherwise), `None` when it carries none: for what
/// anyone may read, and a caller may read more of.
pub struct MaybeAuth(pub Option<OpCtx>);

impl<S> FromRequestParts<S> for MaybeAuth
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = HttpError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if parts.extensions.get::<Authenticated>().is_none()
            && matches!(credentials(parts), Ok(None))
        {
            return Ok(MaybeAuth(None));
        }
        let Auth(ctx) = Auth::from_request_parts(parts, state).await?;
        Ok(MaybeAuth(Some(ctx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_headers() {
        let (l, p) = parse_basic(&format!("Basic {}", STANDARD.encode("admin:pw:x"))).unwrap();
        assert_eq!(l, "admin");
        assert_eq!(p.expose(), "pw:x");
        assert!(parse_basic("Basic !!!").is_err());
        assert!(parse_basic(&format!("Basic {}", STANDARD.encode("nocolon"))).is_err());
        assert!(parse_basic("Bearer abc").is_err());
    }
}
