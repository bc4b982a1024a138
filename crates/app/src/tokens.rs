//! The token service (SPEC §5): the OAuth2 token endpoint's grants,
//! access-token verification, revocation and introspection.
//!
//! Access tokens are JWTs (RFC 9068, `typ: at+jwt`) signed with the current
//! access key (ES256 by default); id tokens are signed with the id key
//! (RS256 by default), and only for a user: RSA signing is slow and never
//! sits on the client-credentials path. Refresh tokens are opaque, stored
//! hashed, and rotate on every use.

use crate::keys::KeySet;
use crate::App;
use chrono::{DateTime, Utc};
use nephele_api_types::{Introspection, TokenResponse, UserInfo};
use nephele_auth::jws::{self, JwsError};
use nephele_auth::PrincipalId;
use nephele_common::batch::Batcher;
use nephele_common::clock::span;
use nephele_common::ids::{ClientId, OrganizationId, RefreshTokenId};
use nephele_common::names::PASSWORD_MAX;
use nephele_common::{Error, ErrorCode, Result, Secret};
use nephele_store::{ApiClient, RefreshOutcome, RefreshSpend, RefreshToken, Store, User};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Every refresh token starts with this, so leaked ones can be recognised.
pub const REFRESH_TOKEN_PREFIX: &str = "nph_rt_";
/// The audience of an id token issued without a client (the CLI and other
/// public callers of the password grant).
pub const PUBLIC_AUDIENCE: &str = "nephele";
/// The scopes the token service knows.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The grants a client may register for (SPEC §5).
pub const GRANT_TYPES: [&str; 4] = [
    "authorization_code",
    "client_credentials",
    "password",
    "refresh_token",
];
/// How far in the future `nbf` may be, for clocks a little apart.
const NBF_LEEWAY_SECONDS: i64 = 5;

/// Settings of the token service.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
}

/// Whom an access token is issued to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject {
    pub(crate) principal: PrincipalId,
    /// A user's session generation.
    pub(crate) sessions: Option<i64>,
    pub(crate) tenant: OrganizationId,
    /// The client it came through, with the client's token generation.
    pub(crate) client: Option<(ClientId, i64)>,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    pub tenant_id: String,
    #[serde(default)]
    pub scope: String,
    /// The client the token was issued to; equal to `sub` for a client's
    /// own token (client credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The client's token generation when the token was issued: the
    /// token dies once the client's moves on (disabled, secret reset).
    #[serde(rename = "nph_cgen", default, skip_serializing_if = "Option::is_none")]
    pub client_generation: Option<i64>,
    /// A user's session generation when the token was issued: the token
    /// dies once the user's moves on (password changed, sessions revoked).
    #[serde(rename = "nph_sgen", default, skip_serializing_if = "Option::is_none")]
    pub session_generation: Option<i64>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, aud: &str) -> bool {
        match self {
            Audience::One(a) => a == aud,
            Audience::Many(all) => all.iter().any(|a| a == aud),
        }
    }
}

impl AccessClaims {
    /// Who the token speaks for.
    pub fn principal(&self) -> Option<PrincipalId> {
        if self.client_id.as_deref() == Some(self.sub.as_str()) {
            self.sub.parse().ok().map(PrincipalId::Client)
        } else {
            self.sub.parse().ok().map(PrincipalId::User)
        }
    }

    pub fn client(&self) -> Option<ClientId> {
        self.client_id.as_deref().and_then(|c| c.parse().ok())
    }

    fn expires_at(&self) -> DateTime<Utc> {
        DateTime::from_timestamp(self.exp, 0).unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
}

#[derive(Serialize)]
struct IdClaims<'a> {
    iss: &'a str,
    sub: String,
    aud: String,
    exp: i64,
    iat: i64,
    auth_time: i64,
    tenant_id: String,
    preferred_username: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    at_hash: String,
    /// How the user proved who it is (RFC 8176): `pwd`, and `otp` when a
    /// second factor was given too. Absent from a refresh's id token.
    #[serde(skip_serializing_if = "Option::is_none")]
    amr: Option<Vec<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// How the user of an id token signed in: what the id token says beyond
/// who they are.
#[derive(Debug, Clone, Default)]
pub struct SignInFacts {
    /// When the user last authenticated; `None`: now.
    pub auth_time: Option<DateTime<Utc>>,
    /// RFC 8176 methods; empty (a refresh): no `amr` claim.
    pub amr: Vec<String>,
    pub nonce: Option<String>,
    /// The SSO session (`sid`).
    pub session: Option<nephele_common::ids::SsoSessionId>,
}

/// An OAuth2 error (RFC 6749 §5.2), or a failure of the server itself.
#[derive(Debug)]
pub enum TokenError {
    OAuth {
        /// The RFC's error code: `invalid_request`, `invalid_client`, …
        error: &'static str,
        description: String,
        /// Set when the account or address is locked out (429).
        retry_after: Option<u64>,
    },
    Internal(Error),
}

impl From<Error> for TokenError {
    fn from(e: Error) -> Self {
        TokenError::Internal(e)
    }
}

impl TokenError {
    pub fn oauth(error: &'static str, description: impl Into<String>) -> TokenError {
        TokenError::OAuth {
            error,
            description: description.into(),
            retry_after: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> TokenError {
        TokenError::oauth("invalid_request", description)
    }

    pub fn invalid_client() -> TokenError {
        TokenError::oauth("invalid_client", "Client authentication failed")
    }

    pub(crate) fn invalid_grant(description: impl Into<String>) -> TokenError {
        TokenError::oauth("invalid_grant", description)
    }

    fn locked(retry_after: u64) -> TokenError {
        TokenError::OAuth {
            error: "invalid_grant",
            description: "Too many failed attempts; try again later".into(),
            retry_after: Some(retry_after),
        }
    }
}

type TokenResult<T> = std::result::Result<T, TokenError>;

/// How a client authenticated at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    Basic,
    Post,
    /// A public client names itself with `client_id` alone.
    None,
}

impl ClientAuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientAuthMethod::Basic => "client_secret_basic",
            ClientAuthMethod::Post => "client_secret_post",
            ClientAuthMethod::None => "none",
        }
    }
}

/// A client's id and secret as a request presents them.
#[derive(Debug)]
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Secret,
    pub method: ClientAuthMethod,
}

/// A token request's parameters (the form of `POST /api/2/idp/token`).
#[derive(Debug, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The password grant's second factor: a TOTP code or a recovery code.
    pub otp: Option<Secret>,
    pub scope: Option<String>,
    pub refresh_token: Option<Secret>,
    /// For `authorization_code`.
    pub code: Option<Secret>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<Secret>,
    pub client: Option<ClientCredentials>,
}

/// A caller of revocation: the client a token was issued to, or the
/// subject of a bearer access token.
#[derive(Debug)]
pub enum RevocationCaller {
    Client(ClientId),
    Subject(PrincipalId),
}

/// Parses a requested scope: known scopes only, each once.
pub(crate) fn parse_scope(scope: Option<&str>) -> TokenResult<Vec<&'static str>> {
    let mut granted = Vec::new();
    for s in scope.unwrap_or("").split(' ').filter(|s| !s.is_empty()) {
        match SCOPES.iter().find(|k| **k == s) {
            Some(known) if !granted.contains(known) => granted.push(*known),
            Some(_) => {}
            None => {
                return Err(TokenError::oauth(
                    "invalid_scope",
                    format!(
                        "Unknown scope '{}'; known scopes: {}",
                        s.chars().take(64).collect::<String>(),
                        SCOPES.join(" ")
                    ),
                ))
            }
        }
    }
    Ok(granted)
}

/// The error for a refresh token that did not spend.
fn refresh_refused(why: RefreshOutcome, client_authenticated: bool) -> TokenError {
    match why {
        RefreshOutcome::Replayed(token) => {
            tracing::warn!(family = %token.family_id, "refresh token replayed; family revoked");
            TokenError::invalid_grant(
                "The refresh token was already used; every token of its family is revoked",
            )
        }
        // A token issued to a client is only for that client; one issued
        // without a client must be used without one.
        RefreshOutcome::WrongClient(token)
            if token.client_id.is_some() && !client_authenticated =>
        {
            TokenError::invalid_client()
        }
        RefreshOutcome::WrongClient(_) | RefreshOutcome::Invalid => {
            TokenError::invalid_grant("Invalid refresh token")
        }
    }
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn new_refresh_token() -> String {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(43)
        .map(char::from)
        .collect();
    format!("{REFRESH_TOKEN_PREFIX}{random}")
}

fn expired() -> Error {
    Error::new(
        ErrorCode::TokenExpired,
        "The access token has expired or was revoked",
    )
}

fn invalid_token() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "Invalid access token")
}

/// A verified access token, remembered with the key that verified it.
#[derive(Debug)]
pub struct VerifiedToken {
    claims: Arc<AccessClaims>,
    kid: Box<str>,
}

/// Access tokens revoked before their expiry, as this node knows them:
/// its own revocations at once, other nodes' within one poll.
#[derive(Debug, Default)]
pub struct Revocations {
    jtis: RwLock<HashMap<String, DateTime<Utc>>>,
    cursor: RwLock<Option<DateTime<Utc>>>,
}

/// Refreshes committed together (group commit), at most this many at once.
const REFRESH_BATCH: usize = 256;

/// The writer of refresh rotations.
pub type RefreshWriter = Batcher<RefreshSpend, Option<RefreshToken>>;

pub fn refresh_writer(store: Store) -> RefreshWriter {
    Batcher::start(
        "refresh token",
        REFRESH_BATCH,
        move |batch: Vec<RefreshSpend>| {
            let store = store.clone();
            async move { store.spend_refresh_tokens(&batch).await }
        },
    )
}

/// How far back each poll looks again, for revocations committed late.
const REVOCATION_OVERLAP: chrono::Duration = chrono::Duration::seconds(5);

impl Revocations {
    pub fn contains(&self, jti: &str) -> bool {
        self.jtis
            .read()
            .map(|j| j.contains_key(jti))
            .unwrap_or(true)
    }

    pub(crate) fn insert(&self, jti: String, expires_at: DateTime<Utc>) {
        if let Ok(mut j) = self.jtis.write() {
            j.insert(jti, expires_at);
        }
    }
}

impl App {
    fn issuer(&self) -> &str {
        &self.config().public_url
    }

    fn access_ttl(&self) -> Duration {
        self.config().tokens.access_token_ttl
    }

    /// `POST /api/2/idp/token`.
    pub async fn token(
        &self,
        request: TokenRequest,
        address: Option<IpAddr>,
    ) -> TokenResult<TokenResponse> {
        let grant_type = request
            .grant_type
            .as_deref()
            .ok_or_else(|| TokenError::invalid_request("grant_type is required"))?;
        let client = match &request.client {
            Some(credentials) => Some(self.authenticate_client(credentials).await?),
            None => None,
        };
        if let Some(c) = &client {
            if !c.allows_grant(grant_type) && GRANT_TYPES.contains(&grant_type) {
                return Err(TokenError::oauth(
                    "unauthorized_client",
                    format!("This client may not use the {grant_type} grant"),
                ));
            }
        }
        match grant_type {
            "authorization_code" => self.code_grant(client, request).await,
            "client_credentials" => {
                let client = client.ok_or_else(TokenError::invalid_client)?;
                self.client_credentials_grant(client, request.scope.as_deref())
                    .await
            }
            "password" => self.password_grant(client, request, address).await,
            "refresh_token" => self.refresh_grant(client, request).await,
            other => Err(TokenError::oauth(
                "unsupported_grant_type",
                format!(
                    "Unsupported grant_type '{}'",
                    other.chars().take(64).collect::<String>()
                ),
            )),
        }
    }

    async fn client_credentials_grant(
        &self,
        client: ApiClient,
        scope: Option<&str>,
    ) -> TokenResult<TokenResponse> {
        // A client has no end user: no id token. Asking for `openid` is
        // not an error; it is just not granted. `offline_access` gets a
        // refresh token of the client's own (SPEC §5).
        let scopes: Vec<&str> = parse_scope(scope)?
            .into_iter()
            .filter(|s| *s != "openid")
            .collect();
        self.ensure_not_suspended(client.organization_id)
            .await
            .map_err(refused_grant)?;
        self.note_client_access(client.id);
        let refresh = if scopes.contains(&"offline_access") {
            Some(
                self.issue_refresh_token(None, client.organization_id, Some(client.id), &scopes)
                    .await?,
            )
        } else {
            None
        };
        self.tokens_for(
            &Subject {
                principal: PrincipalId::Client(client.id),
                sessions: None,
                tenant: client.organization_id,
                client: Some((client.id, client.token_generation)),
            },
            &scopes,
            None,
            refresh,
        )
    }

    /// Stores the first refresh token of a new family: a user's (through
    /// `client`, or none), or with no user the client's own.
    pub(crate) async fn issue_refresh_token(
        &self,
        user: Option<&User>,
        organization: OrganizationId,
        client: Option<ClientId>,
        scopes: &[&str],
    ) -> Result<String> {
        Ok(self
            .issue_refresh_family(user, organization, client, scopes)
            .await?
            .0)
    }

    /// [`App::issue_refresh_token`], with the family the token begins.
    pub(crate) async fn issue_refresh_family(
        &self,
        user: Option<&User>,
        organization: OrganizationId,
        client: Option<ClientId>,
        scopes: &[&str],
    ) -> Result<(String, RefreshTokenId)> {
        let token = new_refresh_token();
        let now = self.clock().now();
        let id = RefreshTokenId::new();
        self.store()
            .create_refresh_token(
                &RefreshToken {
                    id,
                    family_id: id,
                    user_id: user.map(|u| u.id),
                    organization_id: organization,
                    client_id: client,
                    scope: scopes.join(" "),
                    session_generation: user.map_or(0, |u| u.session_generation),
                    created_at: now,
                    expires_at: now + span(self.config().tokens.refresh_token_ttl),
                    used_at: None,
                    revoked_at: None,
                },
                &hash_token(&token),
            )
            .await?;
        Ok((token, id))
    }

    async fn password_grant(
        &self,
        client: Option<ApiClient>,
        request: TokenRequest,
        address: Option<IpAddr>,
    ) -> TokenResult<TokenResponse> {
        let (Some(username), Some(password)) = (request.username, request.password) else {
            return Err(TokenError::invalid_request(
                "username and password are required",
            ));
        };
        let mut scopes = parse_scope(request.scope.as_deref())?;
        if !scopes.contains(&"openid") {
            scopes.insert(0, "openid");
        }
        let user = self
            .verify_password(&username, &password, address)
            .await
            .map_err(|e| match e.code() {
                ErrorCode::LockedOut => TokenError::locked(e.retry_after().unwrap_or(1)),
                ErrorCode::InvalidCredentials => {
                    TokenError::invalid_grant("Invalid username or password")
                }
                _ => TokenError::Internal(e),
            })?;
        self.ensure_may_act(&user).await.map_err(refused_grant)?;
        let amr = self
            .password_grant_second_factor(user.id, request.otp.as_ref())
            .await?;
        if let Some(c) = &client {
            self.note_client_access(c.id);
        }
        let refresh = if scopes.contains(&"offline_access") {
            Some(
                self.issue_refresh_token(
                    Some(&user),
                    user.organization_id,
                    client.as_ref().map(|c| c.id),
                    &scopes,
                )
                .await?,
            )
        } else {
            None
        };
        self.tokens_for(
            &Subject {
                principal: PrincipalId::User(user.id),
                sessions: Some(user.session_generation),
                tenant: user.organization_id,
                client: client.as_ref().map(|c| (c.id, c.token_generation)),
            },
            &scopes,
            Some((&user, amr)),
            refresh,
        )
    }

    /// The password grant's second factor (SPEC §5): a user with MFA
    /// enrolled must send `otp`, a current code or an unused recovery
    /// code; `invalid_grant` with `mfa_required` without one, and a clear
    /// description for a wrong one (counted toward the code lockout: 429
    /// once locked). The id token's `amr`.
    async fn password_grant_second_factor(
        &self,
        user: nephele_common::ids::UserId,
        otp: Option<&Secret>,
    ) -> TokenResult<&'static [&'static str]> {
        if !self.mfa_enrolled(user).await? {
            return Ok(&["pwd"]);
        }
        let Some(otp) = otp.filter(|o| !o.expose().is_empty()) else {
            return Err(TokenError::invalid_grant("mfa_required"));
        };
        match self.verify_second_factor(user, otp.expose()).await {
            Ok(_) => Ok(&["pwd", "otp"]),
            Err(e) => Err(match e.code() {
                ErrorCode::LockedOut => TokenError::locked(e.retry_after().unwrap_or(1)),
                ErrorCode::InvalidCredentials => TokenError::invalid_grant(
                    "invalid_otp: the one-time code is wrong or has already been used",
                ),
                _ => TokenError::Internal(e),
            }),
        }
    }

    /// An access token, and an id token when `id_user` is given and
    /// `openid` granted (with the user's `amr` when it signed in now).
    fn tokens_for(
        &self,
        subject: &Subject,
        scopes: &[&str],
        id_user: Option<(&User, &[&str])>,
        refresh_token: Option<String>,
    ) -> TokenResult<TokenResponse> {
        let facts = SignInFacts {
            amr: id_user.map_or_else(Vec::new, |(_, amr)| {
                amr.iter().map(|m| (*m).to_owned()).collect()
            }),
            ..SignInFacts::default()
        };
        let id_user = id_user.map(|(u, _)| (u, &facts));
        Ok(self
            .issue_tokens(subject, scopes, id_user, refresh_token)?
            .0)
    }

    /// [`App::tokens_for`] with what the id token tells of the sign-in;
    /// also the access token's `jti` and expiry.
    pub(crate) fn issue_tokens(
        &self,
        subject: &Subject,
        scopes: &[&str],
        id_user: Option<(&User, &SignInFacts)>,
        refresh_token: Option<String>,
    ) -> TokenResult<(TokenResponse, String, i64)> {
        let scope = scopes.join(" ");
        let keys = self.key_ring().keys()?;
        let (access_token, jti, expires_on) = self.sign_access_token(&keys, subject, &scope)?;
        let id_token = match id_user {
            Some((u, facts)) if scopes.contains(&"openid") => Some(self.sign_id_token(
                &keys,
                u,
                subject.client.map(|(c, _)| c),
                scopes,
                facts,
                &access_token,
            )?),
            _ => None,
        };
        let response = TokenResponse {
            access_token,
            token_type: "bearer".into(),
            expires_in: self.access_ttl().as_secs(),
            expires_on,
            scope,
            id_token,
            refresh_token,
        };
        Ok((response, jti, expires_on))
    }

    async fn refresh_grant(
        &self,
        client: Option<ApiClient>,
        request: TokenRequest,
    ) -> TokenResult<TokenResponse> {
        let presented = request
            .refresh_token
            .ok_or_else(|| TokenError::invalid_request("refresh_token is required"))?;
        let invalid = || TokenError::invalid_grant("Invalid refresh token");
        if presented.expose().len() > 256 {
            return Err(invalid());
        }
        let hash = hash_token(presented.expose());
        // A refresh answers with a new id token only when the request asks
        // for `openid` again (OIDC Core §12.2 lets it leave the id token
        // out): an RSA signature would otherwise cap refreshes at about a
        // thousand per second and core.
        let id_token = request
            .scope
            .as_deref()
            .is_some_and(|s| s.split(' ').any(|s| s == "openid"));
        // A narrower scope may be asked for, never a wider one: checked
        // before the token is spent.
        let asked = match request.scope.as_deref() {
            None => None,
            Some(asked) => {
                let asked = parse_scope(Some(asked))?;
                let Some(current) = self.store().refresh_token_by_hash(&hash).await? else {
                    return Err(invalid());
                };
                let granted: Vec<&str> = current.scope.split(' ').collect();
                if let Some(extra) = asked.iter().find(|s| !granted.contains(s)) {
                    return Err(TokenError::oauth(
                        "invalid_scope",
                        format!("Scope '{extra}' was not granted to this refresh token"),
                    ));
                }
                Some(asked)
            }
        };
        let next = new_refresh_token();
        let now = self.clock().now();
        let client_id = client.as_ref().map(|c| c.id);
        let spent = self
            .refresh_writer()
            .submit(RefreshSpend {
                hash: hash.clone(),
                client: client_id,
                now,
                next_id: RefreshTokenId::new(),
                next_hash: hash_token(&next),
                next_expires: now + span(self.config().tokens.refresh_token_ttl),
            })
            .await?;
        let Some(successor) = spent else {
            let why = self.store().refresh_failure(&hash, client_id, now).await?;
            return Err(refresh_refused(why, client.is_some()));
        };
        let scopes = match asked {
            Some(asked) => asked,
            None => parse_scope(Some(&successor.scope))?,
        };
        // The client the refresh token is bound to authenticated this
        // request; should it not have, generation 0 fails safe.
        let bound = successor.client_id.map(|id| {
            let generation = client
                .as_ref()
                .filter(|c| c.id == id)
                .map_or(0, |c| c.token_generation);
            (id, generation)
        });
        // Spent all the same: a suspended organization's sessions do not
        // outlive the suspension.
        self.ensure_not_suspended(successor.organization_id)
            .await
            .map_err(refused_grant)?;
        let principal = refresh_subject(&successor).ok_or_else(invalid)?;
        let sessions = successor.user_id.map(|_| successor.session_generation);
        // The user's row is read only for a new id token; a client's own
        // token has none.
        let id_user = match successor.user_id {
            Some(user) if id_token => Some(self.store().user(user).await?.ok_or_else(invalid)?),
            _ => None,
        };
        if let Some(c) = &client {
            self.note_client_access(c.id);
        }
        self.tokens_for(
            &Subject {
                principal,
                sessions,
                tenant: successor.organization_id,
                client: bound,
            },
            &scopes,
            id_user.as_ref().map(|u| (u, &[][..])),
            Some(next),
        )
    }

    fn sign_access_token(
        &self,
        keys: &KeySet,
        subject: &Subject,
        scope: &str,
    ) -> Result<(String, String, i64)> {
        let Subject {
            principal,
            sessions,
            tenant,
            client,
        } = *subject;
        let iat = self.clock().now().timestamp();
        let exp = iat + self.access_ttl().as_secs() as i64;
        let jti = uuid::Uuid::new_v4().to_string();
        let claims = AccessClaims {
            iss: self.issuer().to_owned(),
            sub: principal.to_string(),
            aud: Audience::One(self.issuer().to_owned()),
            exp,
            iat,
            nbf: Some(iat),
            jti: jti.clone(),
            tenant_id: tenant.to_string(),
            scope: scope.to_owned(),
            client_id: client.map(|(c, _)| c.to_string()),
            client_generation: client.map(|(_, generation)| generation),
            session_generation: sessions,
        };
        let payload =
            serde_json::to_vec(&claims).map_err(|e| Error::internal(format!("claims: {e}")))?;
        let token = keys
            .access
            .key
            .sign(&keys.access.header, &payload)
            .map_err(|e| Error::internal(format!("signing: {e}")))?;
        Ok((token, jti, exp))
    }

    fn sign_id_token(
        &self,
        keys: &KeySet,
        user: &User,
        client: Option<ClientId>,
        scopes: &[&str],
        facts: &SignInFacts,
        access_token: &str,
    ) -> Result<String> {
        let now = self.clock().now().timestamp();
        let amr = (!facts.amr.is_empty()).then(|| facts.amr.iter().map(String::as_str).collect());
        let claims = IdClaims {
            iss: self.issuer(),
            sub: user.id.to_string(),
            aud: client.map_or_else(|| PUBLIC_AUDIENCE.to_owned(), |c| c.to_string()),
            exp: now + self.access_ttl().as_secs() as i64,
            iat: now,
            auth_time: facts.auth_time.map_or(now, |t| t.timestamp()),
            tenant_id: user.organization_id.to_string(),
            preferred_username: &user.login,
            email: scopes.contains(&"email").then_some(user.email.as_str()),
            nonce: facts.nonce.as_deref(),
            at_hash: token_hash_claim(keys.id.key.algorithm(), access_token),
            amr,
            sid: facts.session.map(|s| s.to_string()),
        };
        let payload =
            serde_json::to_vec(&claims).map_err(|e| Error::internal(format!("claims: {e}")))?;
        keys.id
            .key
            .sign(&keys.id.header, &payload)
            .map_err(|e| Error::internal(format!("signing: {e}")))
    }

    /// Verifies an access token: one of our access keys by `kid`, that
    /// key's algorithm, `typ: at+jwt`, our issuer and audience, not expired,
    /// not before its time, not revoked. Verified tokens are remembered (by
    /// their hash) until they expire, so a repeated token costs a lookup.
    pub async fn verify_access_token(&self, token: &str) -> Result<Arc<AccessClaims>> {
        if token.len() > jws::MAX_TOKEN_LEN {
            return Err(invalid_token());
        }
        let now = self.clock().now().timestamp();
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(hit) = self.verified_tokens().get(&digest) {
            // A verification holds only while the key that made it is in
            // the key set: a retired key's last tokens go with it, and a
            // token forged with a leaked key dies at rotation.
            if self.key_ring().keys()?.access_verifier(&hit.kid).is_some() {
                return self.still_valid(hit.claims.clone(), now);
            }
            self.verified_tokens().remove(&digest);
        }
        let parsed = jws::parse(token).map_err(|_| invalid_token())?;
        let typ = parsed.header.typ.as_deref().unwrap_or("");
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(invalid_token());
        }
        let kid = parsed.header.kid.as_deref().ok_or_else(invalid_token)?;
        let mut keys = self.key_ring().keys()?;
        if keys.access_verifier(kid).is_none() {
            keys = self.key_ring().refresh_for_unknown_kid().await?;
        }
        let verifier = keys.access_verifier(kid).ok_or_else(invalid_token)?;
        let payload = parsed.verify(verifier).map_err(|e| match e {
            JwsError::Key(k) => Error::internal(format!("verifying key: {k}")),
            _ => invalid_token(),
        })?;
        let claims: AccessClaims = serde_json::from_slice(&payload).map_err(|_| invalid_token())?;
        if claims.iss != self.issuer()
            || !claims.aud.contains(self.issuer())
            || claims.jti.is_empty()
            || claims.principal().is_none()
            || claims.tenant_id.parse::<OrganizationId>().is_err()
            || claims.nbf.is_some_and(|nbf| nbf > now + NBF_LEEWAY_SECONDS)
            || claims.iat > now + NBF_LEEWAY_SECONDS
            // No token of ours lives longer than the configured lifetime;
            // one that claims to was not made by this service.
            || claims.exp.saturating_sub(claims.iat) > self.access_ttl().as_secs() as i64
        {
            return Err(invalid_token());
        }
        let claims = Arc::new(claims);
        let claims = self.still_valid(claims, now)?;
        self.verified_tokens().insert(
            digest,
            Arc::new(VerifiedToken {
                claims: claims.clone(),
                kid: kid.into(),
            }),
        );
        Ok(claims)
    }

    fn still_valid(&self, claims: Arc<AccessClaims>, now: i64) -> Result<Arc<AccessClaims>> {
        if claims.exp <= now || self.revocations().contains(&claims.jti) {
            return Err(expired());
        }
        Ok(claims)
    }

    /// The verified token's principal, as it is now: a deleted user, a
    /// user whose sessions ended since, or a disabled client has no more
    /// access, whatever its tokens say.
    pub(crate) async fn actor_for_token(
        &self,
        claims: &AccessClaims,
    ) -> Result<nephele_auth::Actor> {
        let tenant: OrganizationId = claims.tenant_id.parse().map_err(|_| invalid_token())?;
        let principal = claims.principal().ok_or_else(invalid_token)?;
        let method = nephele_auth::AuthMethod::Bearer;
        let (actor, sessions) = self
            .remembered_actor(principal, method, async {
                match principal {
                    PrincipalId::User(id) => {
                        let user = self.store().user(id).await?.ok_or_else(expired)?;
                        let sessions = user.session_generation;
                        Ok((self.actor_for(user, method).await?, sessions))
                    }
                    PrincipalId::Client(id) => {
                        let client = self.store().client(id).await?.ok_or_else(expired)?;
                        if !client.is_enabled() {
                            return Err(expired());
                        }
                        Ok((self.actor_for_client(client, method).await?, 0))
                    }
                }
            })
            .await?;
        // A user's token dies when the user's sessions end.
        if matches!(principal, PrincipalId::User(_))
            && claims.session_generation.unwrap_or(0) != sessions
        {
            return Err(expired());
        }
        if actor.organization_id != tenant {
            return Err(match principal {
                PrincipalId::User(_) => invalid_token(),
                PrincipalId::Client(_) => expired(),
            });
        }
        // A token that came through a client dies with it: deleted,
        // disabled, or issued before it was last disabled or had its
        // secret reset (another generation).
        if let Some(client) = claims.client() {
            let alive = self.client_entry(client).await?.is_some_and(|entry| {
                entry.0.is_enabled()
                    && claims.client_generation.unwrap_or(0) == entry.0.token_generation
            });
            if !alive {
                return Err(expired());
            }
        }
        Ok(actor)
    }

    /// Polls the database for access tokens other nodes revoked.
    pub(crate) async fn poll_revocations(&self) -> Result<()> {
        let now = self.clock().now();
        let since = self
            .revocations()
            .cursor
            .read()
            .ok()
            .and_then(|c| *c)
            .map_or(DateTime::<Utc>::MIN_UTC, |c| c - REVOCATION_OVERLAP);
        let revoked = self.store().revoked_since(since, now).await?;
        if let Ok(mut jtis) = self.revocations().jtis.write() {
            jtis.retain(|_, exp| *exp > now);
            for r in revoked {
                jtis.insert(r.jti, r.expires_at);
            }
        }
        if let Ok(mut c) = self.revocations().cursor.write() {
            *c = Some(now);
        }
        Ok(())
    }

    /// `POST /api/2/idp/revoke` (RFC 7009). Tokens the caller may not
    /// revoke, and tokens that do not exist, are left alone, silently.
    pub async fn revoke_token(
        &self,
        caller: &RevocationCaller,
        token: &str,
        hint: Option<&str>,
    ) -> Result<()> {
        let now = self.clock().now();
        let may = |principal: Option<PrincipalId>, client: Option<ClientId>| match caller {
            RevocationCaller::Client(c) => client == Some(*c),
            RevocationCaller::Subject(p) => principal == Some(*p),
        };
        if hint != Some("refresh_token") || !token.starts_with(REFRESH_TOKEN_PREFIX) {
            if let Ok(claims) = self.verify_access_token(token).await {
                if may(claims.principal(), claims.client()) {
                    self.store()
                        .revoke_access_token(&claims.jti, claims.expires_at(), now)
                        .await?;
                    self.revocations()
                        .insert(claims.jti.clone(), claims.expires_at());
                }
                return Ok(());
            }
        }
        if token.len() <= 256 {
            if let Some(refresh) = self
                .store()
                .refresh_token_by_hash(&hash_token(token))
                .await?
            {
                if may(refresh_subject(&refresh), refresh.client_id) {
                    self.store()
                        .revoke_refresh_family(refresh.family_id, now)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// `POST /api/2/idp/introspect` (RFC 7662) for an authenticated client.
    /// A token of a tenant outside the client's is as good as unknown.
    pub async fn introspect(&self, client: &ApiClient, token: &str) -> Result<Introspection> {
        let inactive = Introspection::default();
        if let Ok(claims) = self.verify_access_token(token).await {
            let Ok(tenant) = claims.tenant_id.parse::<OrganizationId>() else {
                return Ok(inactive);
            };
            if !self.within(client.organization_id, tenant).await? {
                return Ok(inactive);
            }
            // A token the API would refuse is not active: its user is
            // gone or its sessions ended, its client disabled.
            let actor = match self.actor_for_token(&claims).await {
                Ok(actor) => actor,
                Err(e)
                    if matches!(
                        e.code(),
                        ErrorCode::TokenExpired | ErrorCode::InvalidCredentials
                    ) =>
                {
                    return Ok(inactive)
                }
                Err(e) => return Err(e),
            };
            // A user's actor is named by the login.
            let username = matches!(actor.principal, PrincipalId::User(_)).then_some(actor.name);
            return Ok(Introspection {
                active: true,
                scope: Some(claims.scope.clone()),
                client_id: claims.client_id.clone(),
                username,
                token_type: Some("access_token".into()),
                exp: Some(claims.exp),
                iat: Some(claims.iat),
                sub: Some(claims.sub.clone()),
                aud: Some(self.issuer().to_owned()),
                iss: Some(claims.iss.clone()),
                jti: Some(claims.jti.clone()),
                tenant_id: Some(claims.tenant_id.clone()),
            });
        }
        if token.len() > 256 {
            return Ok(inactive);
        }
        let now = self.clock().now();
        let Some(refresh) = self
            .store()
            .refresh_token_by_hash(&hash_token(token))
            .await?
        else {
            return Ok(inactive);
        };
        let live =
            refresh.used_at.is_none() && refresh.revoked_at.is_none() && refresh.expires_at > now;
        // The subject as it is now: a user, or a client's own token.
        let (sub, username) = match (refresh.user_id, refresh.client_id) {
            (Some(id), _) => match self.store().user(id).await? {
                Some(user) if user.session_generation == refresh.session_generation => {
                    (id.to_string(), Some(user.login))
                }
                _ => return Ok(inactive),
            },
            (None, Some(id)) => match self.client_entry(id).await? {
                Some(entry) if entry.0.is_enabled() => (id.to_string(), None),
                _ => return Ok(inactive),
            },
            (None, None) => return Ok(inactive),
        };
        if !live
            || !self
                .within(client.organization_id, refresh.organization_id)
                .await?
        {
            return Ok(inactive);
        }
        Ok(Introspection {
            active: true,
            scope: Some(refresh.scope),
            client_id: refresh.client_id.map(|c| c.to_string()),
            username,
            token_type: Some("refresh_token".into()),
            exp: Some(refresh.expires_at.timestamp()),
            iat: Some(refresh.created_at.timestamp()),
            sub: Some(sub),
            aud: None,
            iss: Some(self.issuer().to_owned()),
            jti: None,
            tenant_id: Some(refresh.organization_id.to_string()),
        })
    }

    /// Is `org` the organization `top` or below it?
    async fn within(&self, top: OrganizationId, org: OrganizationId) -> Result<bool> {
        Ok(self
            .store()
            .organization_ancestry(org)
            .await?
            .contains(&top))
    }

    /// Rotates both signing keys now (root admins only); the retired keys
    /// stay published until their last tokens expire.
    pub async fn rotate_signing_keys(&self, ctx: &crate::access::OpCtx) -> Result<Arc<KeySet>> {
        self.ensure_root_admin(ctx, "rotate signing keys").await?;
        self.key_ring().rotate_all().await
    }

    /// `GET|POST /api/2/idp/userinfo` (OIDC Core §5.3): only a user's
    /// access token with the `openid` scope. Any other token is 401
    /// (`invalid_token` in RFC 6750 terms); a user's token without
    /// `openid` is 403 (`insufficient_scope`).
    pub async fn userinfo(&self, token: &str) -> Result<UserInfo> {
        let claims = self.verify_access_token(token).await?;
        let actor = self.actor_for_token(&claims).await?;
        let PrincipalId::User(id) = actor.principal else {
            return Err(Error::new(
                ErrorCode::InvalidCredentials,
                "userinfo answers a user's access token, not a client's",
            ));
        };
        if !claims.scope.split(' ').any(|s| s == "openid") {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "The access token lacks the openid scope",
            ));
        }
        let user = self.store().user(id).await?.ok_or_else(expired)?;
        Ok(UserInfo {
            sub: id.to_string(),
            preferred_username: Some(user.login.clone()),
            name: Some(user.login),
            email: Some(user.email),
            tenant_id: actor.organization_id.to_string(),
        })
    }

    /// Checks a login and password for the password grant and HTTP Basic,
    /// under the lockout: 429 (1004) while the account or address is
    /// locked, whatever the password; 401 (1001) for a wrong one.
    ///
    /// A right password is remembered for a short while (see
    /// [`crate::credentials::VerifiedPasswords`]), and used only while
    /// this node knows of no lock on the attempt: a locked account's right
    /// password must be refused like a wrong one, and the full path asks
    /// the database.
    pub(crate) async fn verify_password(
        &self,
        login: &str,
        password: &Secret,
        address: Option<IpAddr>,
    ) -> Result<User> {
        let keys = crate::lockout::Keys::new(login, address);
        let mut guard = None;
        if !self.login_locks().any(&keys, self.clock().now()) {
            match self
                .verified_passwords()
                .get_or_guard(login, password)
                .await
            {
                Ok(hit) => {
                    if let Some(user) = self.store().user(hit.user_id).await? {
                        if user.answers_to(login) && user.password_hash == hit.password_hash {
                            return Ok(user);
                        }
                    }
                    self.verified_passwords().forget(login, password);
                }
                Err(g) => guard = Some(g),
            }
        }
        self.reserve_login_attempt(&keys).await?;
        // Refused before hashing: an absurd password must not cost Argon2id.
        if password.expose().len() > PASSWORD_MAX || login.len() > 320 {
            return Err(crate::access::invalid_credentials());
        }
        let user = self.store().user_by_login_or_email(login).await?;
        let ok = self
            .passwords()
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        match user {
            Some(user) if ok => {
                self.login_succeeded(&keys).await?;
                if let Some(g) = guard {
                    g.verified(user.id, &user.password_hash);
                }
                Ok(user)
            }
            _ => Err(crate::access::invalid_credentials()),
        }
    }
}

/// `at_hash` (OIDC Core §3.1.3.6): the left half of the access token's
/// hash, by the hash of the id token's algorithm, base64url.
fn token_hash_claim(algorithm: jws::Algorithm, token: &str) -> String {
    use base64::Engine as _;
    let digest: Vec<u8> = match algorithm {
        // Ed25519 signs with SHA-512 (OIDC's rule for EdDSA).
        jws::Algorithm::EdDSA => sha2::Sha512::digest(token.as_bytes()).to_vec(),
        jws::Algorithm::ES256 | jws::Algorithm::RS256 => Sha256::digest(token.as_bytes()).to_vec(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// A grant to a subject that may no longer act (disabled, suspended),
/// in the words of the refusal.
fn refused_grant(e: Error) -> TokenError {
    match e.code() {
        ErrorCode::TokenExpired => TokenError::invalid_grant(e.message()),
        _ => TokenError::Internal(e),
    }
}

/// Whom a refresh token speaks for: its user, or without one its client.
fn refresh_subject(token: &RefreshToken) -> Option<PrincipalId> {
    match token.user_id {
        Some(user) => Some(PrincipalId::User(user)),
        None => token.client_id.map(PrincipalId::Client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_known_and_deduplicated() {
        assert_eq!(
            parse_scope(Some("openid  offline_access openid")).unwrap(),
            ["openid", "offline_access"]
        );
        assert!(parse_scope(None).unwrap().is_empty());
        assert!(matches!(
            parse_scope(Some("openid admin")),
            Err(TokenError::OAuth {
                error: "invalid_scope",
                ..
            })
        ));
    }

    #[test]
    fn a_client_token_speaks_for_the_client() {
        use nephele_common::ids::UserId;
        let client = ClientId::new();
        let user = UserId::new();
        let mut claims = AccessClaims {
            iss: "i".into(),
            sub: client.to_string(),
            aud: Audience::One("i".into()),
            exp: 0,
            iat: 0,
            nbf: None,
            jti: "j".into(),
            tenant_id: OrganizationId::new().to_string(),
            scope: String::new(),
            client_id: Some(client.to_string()),
            client_generation: None,
            session_generation: None,
        };
        assert_eq!(claims.principal(), Some(PrincipalId::Client(client)));
        claims.sub = user.to_string();
        assert_eq!(claims.principal(), Some(PrincipalId::User(user)));
        claims.client_id = None;
        assert_eq!(claims.principal(), Some(PrincipalId::User(user)));
        assert!(Audience::Many(vec!["x".into(), "i".into()]).contains("i"));
    }
}
