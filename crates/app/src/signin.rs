//! Signing people in (SPEC §5, OpenID Connect Core with OAuth 2.1's
//! rules): the authorization request, the identity provider's SSO
//! session, consent, single-use codes bound to PKCE, and logout.
//!
//! The pages themselves are the HTTP layer's; everything they decide is
//! decided here.

use crate::tokens::{
    hash_token, parse_scope, SignInFacts, Subject, TokenError, TokenRequest, GRANT_TYPES,
};
use crate::App;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use nephele_api_types::{ApiClientData, TokenResponse};
use nephele_auth::PrincipalId;
use nephele_common::error::Validator;
use nephele_common::ids::{ClientId, SsoSessionId, UserId};
use nephele_common::names::{REDIRECT_URI, REDIRECT_URI_MAX};
use nephele_common::{Error, Result, Secret};
use nephele_store::signin::NewCode;
pub use nephele_store::User;
use nephele_store::{ApiClient, AuthorizationCode, ClientSignIn, CodeSpend, SsoSession};
use rand::RngCore;
use regex::Regex;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::LazyLock;
use subtle::ConstantTimeEq;

/// A code must be exchanged within this time.
const CODE_TTL: Duration = Duration::seconds(60);
/// A session unused this long ends.
pub const SESSION_IDLE: Duration = Duration::hours(12);
/// A session ends this long after it began, used or not.
pub const SESSION_LIFETIME: Duration = Duration::days(7);
/// The second step of a sign-in must follow the first within this time.
const MFA_TICKET_TTL: Duration = Duration::minutes(5);
/// A session's `last_seen_at` is written at most this often.
const SESSION_TOUCH: Duration = Duration::seconds(60);
const MAX_REDIRECT_URIS: usize = 16;

/// The parameters of `GET|POST /api/2/idp/authorize`, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
}

/// `prompt` (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A valid authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client: ApiClient,
    pub redirect_uri: String,
    pub scopes: Vec<&'static str>,
    pub state: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

impl AuthorizationRequest {
    /// The request's parameters, for the hidden fields of a page that
    /// posts it back.
    pub fn params(&self) -> Vec<(&'static str, String)> {
        let mut p = vec![
            ("response_type", "code".to_owned()),
            ("client_id", self.client.id.to_string()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("scope", self.scopes.join(" ")),
            ("state", self.state.clone()),
            ("code_challenge", self.code_challenge.clone()),
            ("code_challenge_method", "S256".to_owned()),
        ];
        if let Some(nonce) = &self.nonce {
            p.push(("nonce", nonce.clone()));
        }
        if let Some(max_age) = self.max_age {
            p.push(("max_age", max_age.to_string()));
        }
        p
    }

    /// The client's redirect with `params`, `state` and `iss` (RFC 9207).
    pub fn redirect(&self, issuer: &str, params: &[(&str, &str)]) -> String {
        let mut url = self.redirect_uri.clone();
        url.push(if url.contains('?') { '&' } else { '?' });
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in params {
            query.append_pair(k, v);
        }
        query.append_pair("state", &self.state);
        query.append_pair("iss", issuer);
        url.push_str(&query.finish());
        url
    }

    /// The redirect that answers the request with an error.
    pub fn error_redirect(&self, issuer: &str, error: &str, description: &str) -> String {
        self.redirect(
            issuer,
            &[("error", error), ("error_description", description)],
        )
    }
}

/// Why an authorization request cannot go on.
#[derive(Debug)]
pub enum AuthorizeError {
    /// The client or its redirect URI is not known: never redirected
    /// (RFC 6749 §4.1.2.1), shown as a page.
    Page(String),
    /// Answered at the client's redirect URI.
    Redirect(String),
    Internal(Error),
}

impl From<Error> for AuthorizeError {
    fn from(e: Error) -> Self {
        AuthorizeError::Internal(e)
    }
}

/// A live SSO session and its user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: SsoSession,
    pub user: User,
}

/// Is `uri` a loopback `http` URI (RFC 8252 §7.3)?
fn loopback(uri: &url::Url) -> bool {
    uri.scheme() == "http"
        && match uri.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        }
}

/// Why a redirect URI cannot be registered, if it cannot.
fn check_redirect_uri(uri: &str) -> std::result::Result<(), String> {
    static FORM: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(REDIRECT_URI).ok());
    if uri.len() > REDIRECT_URI_MAX {
        return Err(format!("is longer than {REDIRECT_URI_MAX} characters"));
    }
    let well_formed = FORM.as_ref().is_some_and(|re| re.is_match(uri));
    if !well_formed || url::Url::parse(uri).is_err() {
        return Err(
            "must be an https URI, or http on 127.0.0.1, [::1] or localhost, \
             with no fragment, credentials or wildcard"
                .into(),
        );
    }
    Ok(())
}

/// Does `presented` match a registered URI? Exactly, but for the port of
/// a loopback URI, which a native app picks when it starts (RFC 8252
/// §7.3).
pub fn redirect_matches(registered: &[String], presented: &str) -> bool {
    if registered.iter().any(|r| r == presented) {
        return true;
    }
    let Ok(p) = url::Url::parse(presented) else {
        return false;
    };
    loopback(&p)
        && registered.iter().any(|r| {
            url::Url::parse(r).is_ok_and(|mut r| {
                loopback(&r) && r.set_port(p.port()).is_ok() && r.as_str() == p.as_str()
            })
        })
}

/// A client's sign-in settings from its `data`: validated into `v`.
/// `current` (an update) keeps what `data` leaves out.
pub(crate) fn registration(
    v: &mut Validator,
    data: &ApiClientData,
    auth_method: &str,
    in_root: bool,
    current: Option<&ClientSignIn>,
) -> ClientSignIn {
    let public = auth_method == "none";
    let mut uris = |field: &str, given: &Option<Vec<String>>, kept: Option<&Vec<String>>| {
        let Some(list) = given else {
            return kept.cloned().unwrap_or_default();
        };
        if list.len() > MAX_REDIRECT_URIS {
            v.push(field, format!("at most {MAX_REDIRECT_URIS}"));
        }
        for (i, uri) in list.iter().enumerate() {
            if let Err(reason) = check_redirect_uri(uri) {
                v.push(&format!("data.{field}[{i}]"), reason);
            }
        }
        let mut list = list.clone();
        list.dedup();
        list
    };
    let redirect_uris = uris(
        "redirect_uris",
        &data.redirect_uris,
        current.map(|c| &c.redirect_uris),
    );
    let post_logout_redirect_uris = uris(
        "post_logout_redirect_uris",
        &data.post_logout_redirect_uris,
        current.map(|c| &c.post_logout_redirect_uris),
    );
    let grant_types = match (&data.grant_types, current) {
        (Some(given), _) => {
            let mut kept = Vec::new();
            for (i, g) in given.iter().enumerate() {
                if !GRANT_TYPES.contains(&g.as_str()) {
                    v.push(
                        &format!("data.grant_types[{i}]"),
                        format!("must be one of {}", GRANT_TYPES.join(", ")),
                    );
                } else if public && (g == "client_credentials" || g == "password") {
                    v.push(
                        &format!("data.grant_types[{i}]"),
                        "a public client has no secret for this grant",
                    );
                } else if !kept.contains(g) {
                    kept.push(g.clone());
                }
            }
            kept
        }
        (None, Some(current)) => current.grant_types.clone(),
        (None, None) if public => vec!["authorization_code".into(), "refresh_token".into()],
        (None, None) => {
            let mut defaults = vec![];
            if !redirect_uris.is_empty() {
                defaults.push("authorization_code".to_owned());
            }
            defaults.extend(["client_credentials", "password", "refresh_token"].map(String::from));
            defaults
        }
    };
    if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        v.push(
            "data.redirect_uris",
            "the authorization_code grant needs at least one",
        );
    }
    let first_party = data
        .first_party
        .unwrap_or(current.is_some_and(|c| c.first_party));
    if first_party && !in_root {
        v.push(
            "data.first_party",
            "only the root organization's clients are first-party",
        );
    }
    ClientSignIn {
        redirect_uris,
        post_logout_redirect_uris,
        grant_types,
        first_party,
    }
}

/// A random, URL-safe secret of 256 bits.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 challenge of a PKCE verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `param` within `max` characters, or the redirect's error.
fn bounded(param: &Option<String>, name: &str, max: usize) -> std::result::Result<(), String> {
    match param {
        Some(p) if p.len() > max => Err(format!("{name} is longer than {max} characters")),
        _ => Ok(()),
    }
}

impl App {
    fn issuer_url(&self) -> &str {
        &self.config().public_url
    }

    /// Checks an authorization request. A bad client or redirect URI is a
    /// page; anything else goes back to the client as an error.
    pub async fn authorization_request(
        &self,
        p: AuthorizeParams,
    ) -> std::result::Result<AuthorizationRequest, AuthorizeError> {
        let page = |m: &str| Err(AuthorizeError::Page(m.to_owned()));
        let Some(client_id) = p
            .client_id
            .as_deref()
            .and_then(|c| c.parse::<ClientId>().ok())
        else {
            return page("The application that sent you here is not known (client_id).");
        };
        let Some(entry) = self.client_entry(client_id).await? else {
            return page("The application that sent you here is not known (client_id).");
        };
        let client = entry.0.clone();
        if !client.is_enabled() {
            return page("The application that sent you here is disabled.");
        }
        let Some(redirect_uri) = p.redirect_uri.clone() else {
            return page("The application did not say where to return to (redirect_uri).");
        };
        if !redirect_matches(&client.sign_in.redirect_uris, &redirect_uri) {
            return page("The application asked to return to an address it has not registered (redirect_uri).");
        }
        let mut request = AuthorizationRequest {
            client,
            redirect_uri,
            scopes: Vec::new(),
            state: p.state.clone().unwrap_or_default(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.clone().unwrap_or_default(),
            prompt: Prompt::default(),
            max_age: None,
            login_hint: p.login_hint.clone(),
        };
        let refuse = |request: &AuthorizationRequest, error: &str, description: &str| {
            Err(AuthorizeError::Redirect(request.error_redirect(
                self.issuer_url(),
                error,
                description,
            )))
        };
        let checked = (|| {
            if p.state.as_deref().is_none_or(str::is_empty) {
                return Err(("invalid_request", "state is required".to_owned()));
            }
            bounded(&p.state, "state", 1024).map_err(|d| ("invalid_request", d))?;
            bounded(&p.nonce, "nonce", 255).map_err(|d| ("invalid_request", d))?;
            bounded(&p.login_hint, "login_hint", 320).map_err(|d| ("invalid_request", d))?;
            if p.response_type.as_deref() != Some("code") {
                return Err((
                    "unsupported_response_type",
                    "response_type must be code".to_owned(),
                ));
            }
            if !request.client.allows_grant("authorization_code") {
                return Err((
                    "unauthorized_client",
                    "This client may not use the authorization code flow".to_owned(),
                ));
            }
            let challenge = p.code_challenge.as_deref().unwrap_or("");
            if challenge.is_empty() {
                return Err((
                    "invalid_request",
                    "code_challenge is required (PKCE)".to_owned(),
                ));
            }
            if p.code_challenge_method.as_deref() != Some("S256") {
                return Err((
                    "invalid_request",
                    "code_challenge_method must be S256".to_owned(),
                ));
            }
            let well_formed = challenge.len() == 43
                && challenge
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !well_formed {
                return Err((
                    "invalid_request",
                    "code_challenge is not an S256 challenge".to_owned(),
                ));
            }
            let scopes = parse_scope(p.scope.as_deref()).map_err(|e| match e {
                TokenError::OAuth { description, .. } => ("invalid_scope", description),
                TokenError::Internal(_) => ("invalid_scope", "Invalid scope".to_owned()),
            })?;
            let mut prompt = Prompt::default();
            for word in p
                .prompt
                .as_deref()
                .unwrap_or("")
                .split(' ')
                .filter(|w| !w.is_empty())
            {
                match word {
                    "none" => prompt.none = true,
                    "login" => prompt.login = true,
                    "consent" => prompt.consent = true,
                    // Nephele has one account per browser session.
                    "select_account" => {}
                    other => {
                        return Err((
                            "invalid_request",
                            format!(
                                "Unknown prompt '{}'",
                                other.chars().take(32).collect::<String>()
                            ),
                        ))
                    }
                }
            }
            if prompt.none && (prompt.login || prompt.consent) {
                return Err((
                    "invalid_request",
                    "prompt=none cannot be combined with other prompts".to_owned(),
                ));
            }
            let max_age = match p.max_age.as_deref() {
                None | Some("") => None,
                Some(m) => Some(m.parse::<u32>().map_err(|_| {
                    (
                        "invalid_request",
                        "max_age must be a number of seconds".to_owned(),
                    )
                })?),
            };
            Ok((scopes, prompt, max_age))
        })();
        match checked {
            Ok((scopes, prompt, max_age)) => {
                request.scopes = scopes;
                request.prompt = prompt;
                request.max_age = max_age.map(i64::from);
                Ok(request)
            }
            Err((error, description)) => refuse(&request, error, &description),
        }
    }

    /// The session a browser's cookie names, if it is live and its user
    /// may still act. A use moves its idle time on.
    pub async fn current_session(&self, cookie: Option<&str>) -> Result<Option<SignedIn>> {
        let Some(cookie) = cookie.filter(|c| c.len() <= 64) else {
            return Ok(None);
        };
        let Some(session) = self
            .store()
            .sso_session_by_hash(&hash_token(cookie))
            .await?
        else {
            return Ok(None);
        };
        let now = self.clock().now();
        if session.expires_at <= now || session.last_seen_at + SESSION_IDLE <= now {
            return Ok(None);
        }
        let Some(user) = self.store().user(session.user_id).await? else {
            return Ok(None);
        };
        if self.ensure_may_act(&user).await.is_err() {
            return Ok(None);
        }
        if session.last_seen_at + SESSION_TOUCH <= now {
            self.store().touch_sso_session(session.id, now).await?;
        }
        Ok(Some(SignedIn { session, user }))
    }

    /// Must the person sign in (again) for this request?
    pub fn needs_login(
        &self,
        request: &AuthorizationRequest,
        signed_in: Option<&SignedIn>,
    ) -> bool {
        let Some(s) = signed_in else {
            return true;
        };
        let too_old = request
            .max_age
            .is_some_and(|max| s.session.auth_time + Duration::seconds(max) < self.clock().now());
        request.prompt.login || too_old
    }

    /// Checks a password on the login page: the lockout counts it, like
    /// any other; a user who may not act is refused in words.
    pub async fn sign_in_password(
        &self,
        login: &str,
        password: &Secret,
        address: Option<IpAddr>,
    ) -> Result<User> {
        let user = self.verify_password(login, password, address).await?;
        self.ensure_may_act(&user).await?;
        Ok(user)
    }

    /// Begins an SSO session for a user who just signed in: the session
    /// and the cookie that names it (never stored).
    pub async fn start_session(
        &self,
        user: &User,
        amr: &[&str],
        user_agent: &str,
        address: Option<IpAddr>,
    ) -> Result<(SignedIn, Secret)> {
        let now = self.clock().now();
        let cookie = random_token();
        let session = SsoSession {
            id: SsoSessionId::new(),
            user_id: user.id,
            session_generation: user.session_generation,
            amr: amr.join(" "),
            auth_time: now,
            user_agent: user_agent.chars().take(256).collect(),
            address: address.map(|a| a.to_string()).unwrap_or_default(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + SESSION_LIFETIME,
        };
        self.store()
            .create_sso_session(&session, &hash_token(&cookie))
            .await?;
        let signed_in = SignedIn {
            session,
            user: user.clone(),
        };
        Ok((signed_in, Secret::new(cookie)))
    }

    /// Must the user be asked to allow this client? First-party clients
    /// never ask; a third-party one asks until the user has allowed every
    /// scope it asks for, and again on `prompt=consent`.
    pub async fn needs_consent(
        &self,
        request: &AuthorizationRequest,
        user: UserId,
    ) -> Result<bool> {
        if request.client.sign_in.first_party {
            return Ok(false);
        }
        if request.prompt.consent {
            return Ok(true);
        }
        let given = self.store().consent(user, request.client.id).await?;
        let given: Vec<&str> = given.as_deref().unwrap_or("").split(' ').collect();
        Ok(!request.scopes.iter().all(|s| given.contains(s)))
    }

    /// Remembers that the user allowed the client what it asked for.
    pub async fn give_consent(&self, request: &AuthorizationRequest, user: UserId) -> Result<()> {
        let now = self.clock().now();
        self.store()
            .grant_consent(user, request.client.id, &request.scopes.join(" "), now)
            .await
    }

    /// Issues a code for a signed-in user: the redirect that carries it.
    pub async fn issue_code(
        &self,
        request: &AuthorizationRequest,
        signed_in: &SignedIn,
    ) -> Result<String> {
        let code = random_token();
        let now = self.clock().now();
        self.store()
            .create_authorization_code(&NewCode {
                hash: hash_token(&code),
                code: AuthorizationCode {
                    client_id: request.client.id,
                    user_id: signed_in.user.id,
                    session_id: signed_in.session.id,
                    redirect_uri: request.redirect_uri.clone(),
                    scope: request.scopes.join(" "),
                    nonce: request.nonce.clone(),
                    code_challenge: request.code_challenge.clone(),
                    amr: signed_in.session.amr.clone(),
                    auth_time: signed_in.session.auth_time,
                    created_at: now,
                    expires_at: now + CODE_TTL,
                    access_jti: None,
                    access_expires_at: None,
                    refresh_family_id: None,
                },
            })
            .await?;
        Ok(request.redirect(self.issuer_url(), &[("code", &code)]))
    }

    /// The token that proves a login form came from this browser: a keyed
    /// hash of the browser's own random cookie.
    pub fn form_token(&self, browser: &str) -> String {
        self.secret_hasher().hash(&format!("login form\0{browser}"))
    }

    pub fn form_token_matches(&self, browser: Option<&str>, presented: Option<&str>) -> bool {
        match (browser, presented) {
            (Some(b), Some(p)) if !b.is_empty() => {
                self.form_token(b).as_bytes().ct_eq(p.as_bytes()).into()
            }
            _ => false,
        }
    }

    /// Proof, for the login page's second step, that this browser gave
    /// `user`'s right password a moment ago: the user, an expiry and a
    /// keyed hash of both and of the browser's cookie.
    pub fn mfa_ticket(&self, browser: &str, user: UserId) -> String {
        let expires = (self.clock().now() + MFA_TICKET_TTL).timestamp();
        let mac = self.ticket_mac(browser, user, expires);
        format!("{user}.{expires}.{mac}")
    }

    fn ticket_mac(&self, browser: &str, user: UserId, expires: i64) -> String {
        self.secret_hasher()
            .hash(&format!("mfa ticket\0{browser}\0{user}\0{expires}"))
    }

    /// The user a ticket of this browser names, while it is fresh.
    pub fn mfa_ticket_user(&self, browser: Option<&str>, ticket: &str) -> Option<UserId> {
        let browser = browser.filter(|b| !b.is_empty())?;
        let mut parts = ticket.splitn(3, '.');
        let user: UserId = parts.next()?.parse().ok()?;
        let expires: i64 = parts.next()?.parse().ok()?;
        let mac = parts.next()?;
        let expected = self.ticket_mac(browser, user, expires);
        let genuine: bool = expected.as_bytes().ct_eq(mac.as_bytes()).into();
        (genuine && expires > self.clock().now().timestamp()).then_some(user)
    }

    /// The second step of a sign-in: the ticket's user, and its code
    /// (a current TOTP code or an unused recovery code). Wrong codes count
    /// toward the code lockout.
    pub async fn sign_in_second_factor(&self, user: UserId, code: &str) -> Result<User> {
        let user = self
            .store()
            .user(user)
            .await?
            .ok_or_else(crate::access::invalid_credentials)?;
        self.ensure_may_act(&user).await?;
        self.verify_second_factor(user.id, code).await?;
        Ok(user)
    }

    /// A fresh value for the browser's form cookie.
    pub fn new_browser_token(&self) -> String {
        random_token()
    }

    /// Ends the browser's session (logout): it is deleted, whoever asks
    /// with its cookie.
    pub async fn end_session(&self, cookie: Option<&str>) -> Result<Option<SignedIn>> {
        let signed_in = self.current_session(cookie).await?;
        if let Some(s) = &signed_in {
            self.store()
                .end_sso_sessions(s.user.id, Some(s.session.id))
                .await?;
        }
        Ok(signed_in)
    }

    /// Where logout may send the browser: a URI registered for the client
    /// named by the id token hint (or `client_id`).
    pub async fn logout_redirect(
        &self,
        id_token_hint: Option<&str>,
        client_id: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(uri) = post_logout_redirect_uri else {
            return Ok(None);
        };
        let hinted = id_token_hint.and_then(|t| self.id_token_audience(t));
        let Some(client) = hinted.or_else(|| client_id.and_then(|c| c.parse().ok())) else {
            return Ok(None);
        };
        let Some(entry) = self.client_entry(client).await? else {
            return Ok(None);
        };
        if !entry
            .0
            .sign_in
            .post_logout_redirect_uris
            .iter()
            .any(|u| u == uri)
        {
            return Ok(None);
        }
        let mut url = uri.to_owned();
        if let Some(state) = state {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("state", state)
                    .finish(),
            );
        }
        Ok(Some(url))
    }

    /// The client an id token of ours was issued to, if the current id
    /// key verifies it (it may have expired: a hint for logout only picks
    /// which client's registered URIs apply).
    fn id_token_audience(&self, token: &str) -> Option<ClientId> {
        let keys = self.key_ring().keys().ok()?;
        let parsed = nephele_auth::jws::parse(token).ok()?;
        let payload = parsed.verify(&keys.id.key.verifying_key().ok()?).ok()?;
        let claims: serde_json::Value = serde_json::from_slice(&payload).ok()?;
        if claims["iss"] != self.issuer_url() {
            return None;
        }
        claims["aud"].as_str()?.parse().ok()
    }

    /// The user's live SSO sessions.
    pub async fn my_sessions(&self, ctx: &crate::access::OpCtx) -> Result<Vec<SsoSession>> {
        let user = self.acting_user(ctx)?;
        self.store().sso_sessions(user, self.clock().now()).await
    }

    /// Ends one of the user's SSO sessions (404 if it is not theirs), or
    /// all of them.
    pub async fn end_my_sessions(
        &self,
        ctx: &crate::access::OpCtx,
        id: Option<SsoSessionId>,
    ) -> Result<()> {
        let user = self.acting_user(ctx)?;
        let ended = self.store().end_sso_sessions(user, id).await?;
        match id {
            Some(id) if ended == 0 => Err(Error::not_found("sessions", id)),
            _ => Ok(()),
        }
    }

    /// The clients the user allowed (third-party consents).
    pub async fn my_consents(
        &self,
        ctx: &crate::access::OpCtx,
    ) -> Result<Vec<nephele_store::signin::Consent>> {
        let user = self.acting_user(ctx)?;
        self.store().consents(user).await
    }

    /// Takes a consent back: the client asks again next time. Its tokens
    /// are not touched (revoke them, or end the sessions, for that).
    pub async fn revoke_my_consent(
        &self,
        ctx: &crate::access::OpCtx,
        client: ClientId,
    ) -> Result<()> {
        let user = self.acting_user(ctx)?;
        if !self.store().revoke_consent(user, client).await? {
            return Err(Error::not_found("consents", client));
        }
        Ok(())
    }

    /// The authorization-code grant (RFC 6749 §4.1.3 with PKCE): a code
    /// is spent once; presented again, what it issued is revoked.
    pub(crate) async fn code_grant(
        &self,
        client: Option<ApiClient>,
        request: TokenRequest,
    ) -> std::result::Result<TokenResponse, TokenError> {
        let client = client.ok_or_else(TokenError::invalid_client)?;
        let (Some(code), Some(redirect_uri), Some(verifier)) =
            (request.code, request.redirect_uri, request.code_verifier)
        else {
            return Err(TokenError::invalid_request(
                "code, redirect_uri and code_verifier are required",
            ));
        };
        let invalid = || TokenError::invalid_grant("Invalid authorization code");
        if code.expose().len() > 64 {
            return Err(invalid());
        }
        let hash = hash_token(code.expose());
        let now = self.clock().now();
        let code = match self.store().spend_authorization_code(&hash, now).await? {
            CodeSpend::Fresh(code) => code,
            CodeSpend::Replayed(code) => {
                self.revoke_code_issue(&code, now).await?;
                tracing::warn!(client = %code.client_id, "authorization code replayed; its tokens are revoked");
                return Err(TokenError::invalid_grant(
                    "The authorization code was already used; the tokens it issued are revoked",
                ));
            }
            CodeSpend::Unknown => return Err(invalid()),
        };
        if code.client_id != client.id || code.redirect_uri != redirect_uri {
            return Err(invalid());
        }
        let v = verifier.expose();
        let verifier_ok = (43..=128).contains(&v.len())
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
            && bool::from(
                pkce_challenge(v)
                    .as_bytes()
                    .ct_eq(code.code_challenge.as_bytes()),
            );
        if !verifier_ok {
            return Err(TokenError::invalid_grant(
                "The code_verifier does not match",
            ));
        }
        let user = self.store().user(code.user_id).await?.ok_or_else(invalid)?;
        self.ensure_may_act(&user)
            .await
            .map_err(|e| TokenError::invalid_grant(e.message()))?;
        let scopes = parse_scope(Some(&code.scope))?;
        let refresh = if scopes.contains(&"offline_access") {
            Some(
                self.issue_refresh_family(
                    Some(&user),
                    user.organization_id,
                    Some(client.id),
                    &scopes,
                )
                .await?,
            )
        } else {
            None
        };
        self.note_client_access(client.id);
        let facts = SignInFacts {
            auth_time: Some(code.auth_time),
            amr: code.amr.split(' ').map(str::to_owned).collect(),
            nonce: code.nonce.clone(),
            session: Some(code.session_id),
        };
        let (tokens, jti, expires_on) = self.issue_tokens(
            &Subject {
                principal: PrincipalId::User(user.id),
                sessions: Some(user.session_generation),
                tenant: user.organization_id,
                client: Some((client.id, client.token_generation)),
            },
            &scopes,
            Some((&user, &facts)),
            refresh.as_ref().map(|(token, _)| token.clone()),
        )?;
        let expires_at = DateTime::<Utc>::from_timestamp(expires_on, 0).unwrap_or(now);
        self.store()
            .note_code_issued(&hash, &jti, expires_at, refresh.map(|(_, family)| family))
            .await?;
        Ok(tokens)
    }

    /// Revokes what a code was exchanged for (its replay's answer).
    async fn revoke_code_issue(&self, code: &AuthorizationCode, now: DateTime<Utc>) -> Result<()> {
        if let (Some(jti), Some(expires_at)) = (&code.access_jti, code.access_expires_at) {
            self.store()
                .revoke_access_token(jti, expires_at, now)
                .await?;
            self.revocations().insert(jti.clone(), expires_at);
        }
        if let Some(family) = code.refresh_family_id {
            self.store().revoke_refresh_family(family, now).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_are_https_or_loopback_without_wildcards_or_fragments() {
        assert!(check_redirect_uri("https://app.example/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:8400/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("http://localhost/cb").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://*.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#x").is_err());
        assert!(check_redirect_uri("/cb").is_err());
        assert!(check_redirect_uri("https://u:p@app.example/cb").is_err());
    }

    #[test]
    fn redirects_match_exactly_but_for_a_loopback_port() {
        let registered = vec![
            "https://app.example/cb".to_owned(),
            "http://127.0.0.1/callback".to_owned(),
        ];
        assert!(redirect_matches(&registered, "https://app.example/cb"));
        assert!(!redirect_matches(&registered, "https://app.example/cb/"));
        assert!(!redirect_matches(&registered, "https://app.example/cb?x=1"));
        assert!(!redirect_matches(&registered, "https://app.example:444/cb"));
        assert!(redirect_matches(
            &registered,
            "http://127.0.0.1:53123/callback"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://127.0.0.1:53123/other"
        ));
        assert!(!redirect_matches(
            &registered,
            "http://127.0.0.2:53123/callback"
        ));
    }

    #[test]
    fn the_pkce_challenge_is_rfc_7636s() {
        // RFC 7636 Appendix B.
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
