//! Signing people in through a browser (SPEC §5): the authorization
//! endpoint, its pages, SSO sessions, the code exchange with PKCE, and
//! logout — proved with the `openidconnect` crate as a relying party and a
//! cookie-keeping HTTP "browser" that fills in the forms.

use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use nephele_api_types as api;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::Digest;
use std::collections::HashMap;

/// Never contacted: the browser stops at the redirect and reads it.
const REDIRECT: &str = "https://app.example/callback";
const LOGOUT_REDIRECT: &str = "https://app.example/signed-out";

/// A browser: keeps cookies, follows nothing, reads forms.
pub struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// A page or a redirect, as the browser got it.
pub struct Answer {
    pub status: StatusCode,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The query parameters of the redirect.
    pub fn redirect_params(&self) -> HashMap<String, String> {
        let location = self.location.as_deref().expect("a redirect");
        let url = reqwest::Url::parse(location).unwrap();
        url.query_pairs().into_owned().collect()
    }

    /// The hidden inputs of the page's (first) form.
    pub fn hidden_fields(&self) -> Vec<(String, String)> {
        let re =
            regex::Regex::new(r#"<input type="hidden" name="([^"]*)" value="([^"]*)">"#).unwrap();
        re.captures_iter(&self.body)
            .map(|c| (unescape(&c[1]), unescape(&c[2])))
            .collect()
    }
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

impl Default for Browser {
    fn default() -> Self {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }
}

impl Browser {
    async fn send(&mut self, request: reqwest::RequestBuilder) -> Answer {
        let cookie: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie.join("; "))
        };
        let r = request.send().await.unwrap();
        for set in r.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            assert!(attributes.contains("HttpOnly"), "{set}");
            assert!(attributes.contains("SameSite=Lax"), "{set}");
            if attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Answer {
            status: r.status(),
            location: r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned()),
            headers: r.headers().clone(),
            body: r.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        let request = self.http.get(url);
        self.send(request).await
    }

    pub async fn post(&mut self, url: &str, form: &[(String, String)]) -> Answer {
        let request = self.http.post(url).form(form);
        self.send(request).await
    }

    /// Fills the login form of `page` and posts it.
    pub async fn sign_in(
        &mut self,
        s: &TestServer,
        page: &Answer,
        login: &str,
        password: &str,
    ) -> Answer {
        assert!(page.body.contains(r#"name="password""#), "{}", page.body);
        let mut form = page.hidden_fields();
        form.push(("username".into(), login.into()));
        form.push(("password".into(), password.into()));
        self.post(&format!("{}/api/2/idp/authorize", s.url), &form)
            .await
    }

    fn has_session(&self) -> bool {
        self.cookies.contains_key("nephele_session")
    }
}

/// A PKCE pair: `(verifier, S256 challenge)`.
pub fn pkce() -> (String, String) {
    let verifier = B64.encode(rand_bytes());
    let challenge = B64.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_bytes() -> [u8; 32] {
    let mut b = [0u8; 32];
    for (i, byte) in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .enumerate()
    {
        b[i] = *byte;
    }
    b
}

/// A client that signs people in: `(client_id, secret)`.
pub async fn sign_in_client(
    s: &TestServer,
    name: &str,
    auth_method: &str,
    first_party: bool,
) -> (String, Option<String>) {
    let made = s
        .create_api_client(&api::ApiClientCreate {
            token_endpoint_auth_method: Some(auth_method.into()),
            data: Some(api::ApiClientData {
                client_name: Some(name.into()),
                redirect_uris: Some(vec![REDIRECT.into()]),
                post_logout_redirect_uris: Some(vec![LOGOUT_REDIRECT.into()]),
                first_party: Some(first_party),
                ..Default::default()
            }),
            ..api_client_body(name)
        })
        .await;
    (made.client_id.to_string(), made.client_secret)
}

#[tokio::test]
async fn redirect_uris_are_https_or_loopback_and_exact() {
    let s = TestServer::set_up().await;
    let register = |uris: Vec<&str>| {
        let body = json!({"data": {"client_name": "App", "redirect_uris": uris}});
        let s = &s;
        async move { s.admin_json(Method::POST, "/api/2/clients", &body).await }
    };
    for good in [
        "https://app.example/callback",
        "https://app.example:8443/cb?tenant=a",
        "http://127.0.0.1/callback",
        "http://[::1]:8080/cb",
        "http://localhost/cb",
    ] {
        let made = json_of(register(vec![good]).await, 201).await;
        assert_eq!(made["data"]["redirect_uris"], json!([good]));
    }
    for bad in [
        "http://app.example/callback",
        "https://app.example/cb#part",
        "https://*.app.example/cb",
        "https://user:pw@app.example/cb",
        "http://127.0.0.2/cb",
        "/callback",
        "app.example/callback",
    ] {
        let refused = assert_error(register(vec![REDIRECT, bad]).await, 422, 3001).await;
        assert_eq!(
            refused["errors"][0]["context"]["field"], "data.redirect_uris[1]",
            "{bad}: {refused}"
        );
    }
    // The code flow needs somewhere to send the code.
    let body = json!({"data": {"client_name": "App", "grant_types": ["authorization_code"]}});
    let refused = assert_error(
        s.admin_json(Method::POST, "/api/2/clients", &body).await,
        422,
        3001,
    )
    .await;
    assert_eq!(
        refused["errors"][0]["context"]["field"],
        "data.redirect_uris"
    );
}

/// An authorization URL of `client` with `extra` parameters.
pub fn authorize_url(
    s: &TestServer,
    client: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut url = reqwest::Url::parse(&format!("{}/api/2/idp/authorize", s.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid email offline_access")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        url.query_pairs_mut().append_pair(k, v);
    }
    url.to_string()
}

/// The code exchange, as a form; the JSON answer and its status.
async fn exchange(
    s: &TestServer,
    client: (&str, Option<&str>),
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", client.0),
    ];
    if let Some(secret) = client.1 {
        form.push(("client_secret", secret));
    }
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A JWT's claims, unverified (the RP test verifies).
fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap()
}

#[tokio::test]
async fn the_openidconnect_crate_signs_a_user_in_with_code_and_pkce() {
    use openidconnect::core::{
        CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
    };
    use openidconnect::{
        AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
        OAuth2TokenResponse, PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
    };
    let s = TestServer::set_up().await;
    let org = s.create_org("Customer", None).await;
    let bob = s.create_user(&org, "bob", &["operator"]).await;
    let (client_id, secret) = sign_in_client(&s, "Portal", "client_secret_basic", true).await;

    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        CoreProviderMetadata::discover_async(IssuerUrl::new(s.url.clone()).unwrap(), &http)
            .await
            .expect("discovery");
    let secret = secret.expect("a confidential client's secret");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client_id.clone()),
        Some(ClientSecret::new(secret.clone())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();

    let mut browser = Browser::default();
    let login = browser.get(url.as_str()).await;
    assert_eq!(login.status, 200, "{}", login.body);
    let csp = login.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        csp.contains("form-action 'self' https://app.example"),
        "{csp}"
    );
    assert_eq!(login.headers["cache-control"], "no-store");
    assert!(login
        .body
        .contains(r#"name="username" type="text" autocomplete="username""#));
    assert!(login
        .body
        .contains(r#"name="password" type="password" autocomplete="current-password""#));
    assert!(login.body.contains("Portal"));
    assert_eq!(login.body.matches("<form method=\"post\"").count(), 1);

    // A wrong password shows the page again, with the reason.
    let wrong = browser.sign_in(&s, &login, "bob", "not-the-password").await;
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("Wrong username or password"),
        "{}",
        wrong.body
    );
    assert!(!browser.has_session());

    let done = browser.sign_in(&s, &wrong, "bob", USER_PASSWORD).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(browser.has_session());
    let back = done.redirect_params();
    assert!(done.location.as_deref().unwrap().starts_with(REDIRECT));
    assert_eq!(back["state"], *csrf.secret());
    assert_eq!(back["iss"], s.url);
    let code = back["code"].clone();

    let token = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("the code exchange");
    let id_token = token.id_token().expect("an id token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("an id token the RP accepts");
    assert_eq!(claims.subject().as_str(), bob);
    assert_eq!(claims.audiences()[0].as_str(), client_id);
    assert!(claims.auth_time().is_some());
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.as_str())
        .collect();
    assert_eq!(amr, ["pwd"]);
    let at_hash = B64.encode(&sha2::Sha256::digest(token.access_token().secret().as_bytes())[..16]);
    assert_eq!(claims.access_token_hash().unwrap().as_str(), at_hash);
    let raw = claims_of(&id_token.to_string());
    assert!(raw["sid"].is_string(), "{raw}");
    assert!(token.refresh_token().is_some());

    let info: CoreUserInfoClaims = client
        .user_info(token.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), bob);
    assert_eq!(info.email().unwrap().as_str(), "bob@example.test");
    let access = token.access_token().secret().clone();
    assert_eq!(
        s.client_with_token(&access)
            .me()
            .await
            .unwrap()
            .principal
            .login,
        "bob"
    );

    // A replayed code is refused and revokes what it issued.
    let (status, body) = exchange(&s, (&client_id, None), &code, "x".repeat(43).as_str()).await;
    assert_eq!(status, 401, "{body}");
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "y".repeat(43).as_str()),
        ])
        .send()
        .await
        .unwrap();
    let replay: Value = json_of(r, 400).await;
    assert_eq!(replay["error"], "invalid_grant");
    assert_refused(s.client_with_token(&access).me().await, 401, 1002);
    let refreshed = s
        .request(Method::POST, "/api/2/idp/token")
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            (
                "refresh_token",
                token.refresh_token().unwrap().secret().as_str(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 400);

    // The SSO session answers the next request at once, with a new code.
    let (_, challenge) = pkce();
    let again = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    assert_eq!(again.status, 302, "{}", again.body);
    assert_eq!(again.redirect_params()["state"], "st-1");
    assert_ne!(again.redirect_params()["code"], code);
    // prompt=login asks again; max_age=0 too.
    for extra in [("prompt", "login"), ("max_age", "0")] {
        let page = browser
            .get(&authorize_url(&s, &client_id, &challenge, &[extra]))
            .await;
        assert_eq!(page.status, 200, "{extra:?}");
        assert!(page.body.contains("autocomplete=\"current-password\""));
    }

    // The user sees the session and ends it; the browser must sign in again.
    let bob_client = s.client_as("bob");
    let sessions = bob_client.sign_in_sessions().await.unwrap();
    assert_eq!(sessions.data.len(), 1);
    assert_eq!(sessions.data[0].amr, ["pwd"]);
    assert_eq!(raw["sid"], sessions.data[0].id.to_string());
    let id = Some(sessions.data[0].id);
    bob_client.end_sign_in_sessions(id).await.unwrap();
    assert_refused(bob_client.end_sign_in_sessions(id).await, 404, 2000);
    let page = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    assert_eq!(page.status, 200);
    let none = browser
        .get(&authorize_url(
            &s,
            &client_id,
            &challenge,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(none.redirect_params()["error"], "login_required");
}

#[tokio::test]
async fn bad_authorization_requests_are_pages_or_rfc_6749_redirects() {
    let s = TestServer::set_up().await;
    let (client_id, secret) = sign_in_client(&s, "Portal", "client_secret_post", true).await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::default();

    // An unknown client or an unregistered redirect URI: a page, never a
    // redirect.
    let unknown = authorize_url(&s, &uuid::Uuid::new_v4().to_string(), &challenge, &[]);
    let other = authorize_url(&s, &client_id, &challenge, &[])
        .replace("app.example%2Fcallback", "evil.example%2Fcallback");
    let loose =
        authorize_url(&s, &client_id, &challenge, &[]).replace("%2Fcallback", "%2Fcallback%2Fmore");
    for url in [unknown, other, loose] {
        let page = browser.get(&url).await;
        assert_eq!(page.status, 400, "{url}");
        assert!(page.location.is_none());
        assert!(page.body.contains("Cannot sign in"));
    }

    // Everything else goes back to the client, in RFC 6749's words.
    let cases: Vec<(String, &str)> = vec![
        (authorize_url(&s, &client_id, "", &[]), "invalid_request"),
        (
            authorize_url(&s, &client_id, &challenge, &[]).replace("S256", "plain"),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client_id, &challenge, &[]).replace("state=st-1&", ""),
            "invalid_request",
        ),
        (
            authorize_url(&s, &client_id, &challenge, &[])
                .replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url(&s, &client_id, &challenge, &[]).replace("offline_access", "admin"),
            "invalid_scope",
        ),
        (
            authorize_url(&s, &client_id, &challenge, &[("prompt", "none login")]),
            "invalid_request",
        ),
    ];
    for (url, error) in cases {
        let answer = browser.get(&url).await;
        assert_eq!(answer.status, 302, "{url}: {}", answer.body);
        let back = answer.redirect_params();
        assert_eq!(back["error"], error, "{url}");
        assert_eq!(back["iss"], s.url);
    }

    // A form without the browser's form token (CSRF) is refused.
    let login = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let mut forged: Vec<(String, String)> = login
        .hidden_fields()
        .into_iter()
        .filter(|(k, _)| k != "form_token")
        .collect();
    forged.push(("form_token".into(), "forged".into()));
    forged.push(("username".into(), ADMIN_LOGIN.into()));
    forged.push(("password".into(), ADMIN_PASSWORD.into()));
    let refused = browser
        .post(&format!("{}/api/2/idp/authorize", s.url), &forged)
        .await;
    assert_eq!(refused.status, 403);
    assert!(refused.body.contains("expired"));
    let mut stranger = Browser::default();
    let refused = stranger
        .sign_in(&s, &login, ADMIN_LOGIN, ADMIN_PASSWORD)
        .await;
    assert_eq!(refused.status, 403, "another browser's form");

    // The code: bound to the verifier, the client and the redirect URI.
    let done = browser
        .sign_in(&s, &login, ADMIN_LOGIN, ADMIN_PASSWORD)
        .await;
    let code = done.redirect_params()["code"].clone();
    let secret = secret.as_deref();
    let (status, body) = exchange(&s, (&client_id, secret), &code, &pkce().0).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Spent by the failed attempt: single use, whatever the outcome.
    let (status, _) = exchange(&s, (&client_id, secret), &code, &verifier).await;
    assert_eq!(status, 400);
    let page = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let code = page.redirect_params()["code"].clone();
    let (other_client, other_secret) =
        sign_in_client(&s, "Other", "client_secret_post", true).await;
    let (status, body) = exchange(
        &s,
        (&other_client, other_secret.as_deref()),
        &code,
        &verifier,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let page = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let code = page.redirect_params()["code"].clone();
    let (status, body) = exchange(&s, (&client_id, secret), &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims_of(body["id_token"].as_str().unwrap())["nonce"],
        "n-1"
    );
}

#[tokio::test]
async fn a_public_client_uses_pkce_and_a_third_party_asks_for_consent_once() {
    let s = TestServer::set_up().await;
    let org = s.create_org("Customer", None).await;
    s.create_user(&org, "bob", &["viewer"]).await;
    let (public, secret) = sign_in_client(&s, "Phone app", "none", false).await;
    assert!(secret.is_none(), "a public client has no secret");
    let client = s.admin_client().api_client(&public).await.unwrap();
    assert_eq!(
        client.data.grant_types.as_deref(),
        Some(&["authorization_code".to_owned(), "refresh_token".to_owned()][..])
    );

    let (verifier, challenge) = pkce();
    let mut browser = Browser::default();
    let login = browser
        .get(&authorize_url(&s, &public, &challenge, &[]))
        .await;
    let consent = browser.sign_in(&s, &login, "bob", USER_PASSWORD).await;
    assert_eq!(consent.status, 200, "{}", consent.body);
    assert!(
        consent.body.contains("Allow Phone app?"),
        "{}",
        consent.body
    );
    let mut form = consent.hidden_fields();
    form.push(("decision".into(), "deny".into()));
    let denied = browser
        .post(&format!("{}/api/2/idp/authorize", s.url), &form)
        .await;
    assert_eq!(denied.redirect_params()["error"], "access_denied");

    // prompt=none cannot ask: consent_required.
    let none = browser
        .get(&authorize_url(
            &s,
            &public,
            &challenge,
            &[("prompt", "none")],
        ))
        .await;
    assert_eq!(none.redirect_params()["error"], "consent_required");

    let consent = browser
        .get(&authorize_url(&s, &public, &challenge, &[]))
        .await;
    let mut form = consent.hidden_fields();
    form.push(("decision".into(), "allow".into()));
    let allowed = browser
        .post(&format!("{}/api/2/idp/authorize", s.url), &form)
        .await;
    let code = allowed.redirect_params()["code"].clone();
    let (status, body) = exchange(&s, (&public, None), &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    // Remembered: the next time there is no page.
    let again = browser
        .get(&authorize_url(&s, &public, &challenge, &[]))
        .await;
    assert_eq!(again.status, 302);
    assert!(again.redirect_params().contains_key("code"));
    // Until bob takes it back.
    let bob = s.client_as("bob");
    let consents = bob.consents().await.unwrap().data;
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0].client_name, "Phone app");
    assert_eq!(consents[0].scopes, ["openid", "email", "offline_access"]);
    bob.revoke_consent(&public).await.unwrap();
    assert_refused(bob.revoke_consent(&public).await, 404, 2000);
    let asks = browser
        .get(&authorize_url(&s, &public, &challenge, &[]))
        .await;
    assert_eq!(asks.status, 200);
    assert!(asks.body.contains("Allow Phone app?"));
    // A public client has no secret to use for other grants.
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", public.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 400).await["error"], "unauthorized_client");
}

#[tokio::test]
async fn sessions_end_with_their_user_and_with_logout() {
    let s = TestServer::set_up().await;
    let org = s.create_org("Customer", None).await;
    let bob = s.create_user(&org, "bob", &["viewer"]).await;
    let (client_id, secret) = sign_in_client(&s, "Portal", "client_secret_post", true).await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::default();
    let login = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let done = browser.sign_in(&s, &login, "bob", USER_PASSWORD).await;
    let code = done.redirect_params()["code"].clone();
    let (_, tokens) = exchange(&s, (&client_id, secret.as_deref()), &code, &verifier).await;

    // Disabled: the session no longer signs bob in, and the page says why.
    let admin = s.admin_client();
    let disable = api::UserUpdate {
        status: Some("disabled".into()),
        ..Default::default()
    };
    admin.patch_user(&bob, &disable).await.unwrap();
    let page = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    assert_eq!(page.status, 200);
    let refused = browser.sign_in(&s, &page, "bob", USER_PASSWORD).await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("This account is disabled"),
        "{}",
        refused.body
    );
    let enable = api::UserUpdate {
        status: Some("enabled".into()),
        ..Default::default()
    };
    admin.patch_user(&bob, &enable).await.unwrap();

    // Logout with the id token as the hint goes back to the client.
    let page = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let done = browser.sign_in(&s, &page, "bob", USER_PASSWORD).await;
    assert_eq!(done.status, 302);
    let mut url = reqwest::Url::parse(&format!("{}/api/2/idp/logout", s.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", LOGOUT_REDIRECT)
        .append_pair("state", "bye");
    let out = browser.get(url.as_str()).await;
    assert_eq!(out.status, 302, "{}", out.body);
    assert_eq!(
        out.location.as_deref(),
        Some(format!("{LOGOUT_REDIRECT}?state=bye").as_str())
    );
    assert!(!browser.has_session());
    let page = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    assert_eq!(page.status, 200, "signed out: the login page");

    // Without a hint, logout asks first; the confirmation ends it.
    let done = browser.sign_in(&s, &page, "bob", USER_PASSWORD).await;
    assert_eq!(done.status, 302);
    let ask = browser.get(&format!("{}/api/2/idp/logout", s.url)).await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Sign out?"));
    assert!(browser.has_session());
    let form = ask.hidden_fields();
    let out = browser
        .post(&format!("{}/api/2/idp/logout", s.url), &form)
        .await;
    assert_eq!(out.status, 200);
    assert!(out.body.contains("You are signed out"));
    assert!(!browser.has_session());
    // An unregistered post-logout URI is not followed.
    let mut url = reqwest::Url::parse(&format!("{}/api/2/idp/logout", s.url)).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", tokens["id_token"].as_str().unwrap())
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    let out = browser.get(url.as_str()).await;
    assert_eq!(out.status, 200);
    assert!(out.location.is_none());
    // A parameter logout does not take is refused, not ignored.
    let typo = browser
        .get(&format!(
            "{}/api/2/idp/logout?post_logout_redirect=https%3A%2F%2Fapp.example%2F",
            s.url
        ))
        .await;
    assert_eq!(typo.status, 400);
    assert!(typo.body.contains("post_logout_redirect"), "{}", typo.body);
}

#[tokio::test]
async fn a_user_with_mfa_signs_in_in_two_steps() {
    use crate::mfa::{code, enrolled, wrong};
    let s = TestServer::set_up().await;
    let org = s.create_org("Customer", None).await;
    s.create_user(&org, "bob", &["viewer"]).await;
    let (secret, recovery) = enrolled(&s, "bob").await;
    let (client_id, client_secret) = sign_in_client(&s, "Portal", "client_secret_post", true).await;
    let (verifier, challenge) = pkce();
    let mut browser = Browser::default();
    let login = browser
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let step = browser.sign_in(&s, &login, "bob", USER_PASSWORD).await;
    assert_eq!(step.status, 200, "{}", step.body);
    assert!(
        step.body
            .contains(r#"name="otp" type="text" inputmode="numeric" autocomplete="one-time-code""#),
        "{}",
        step.body
    );
    assert!(!browser.has_session(), "the password alone signs nobody in");
    let otp_form = |page: &Answer, otp: &str| {
        let mut form = page.hidden_fields();
        form.push(("otp".into(), otp.into()));
        form
    };
    let authorize = format!("{}/api/2/idp/authorize", s.url);

    // Another browser cannot use this browser's ticket.
    let mut stranger = Browser::default();
    let stolen = stranger
        .post(&authorize, &otp_form(&step, &code(&secret, 1)))
        .await;
    assert_eq!(stolen.status, 403);

    let current = code(&secret, 1);
    let again = browser
        .post(&authorize, &otp_form(&step, &wrong(&current)))
        .await;
    assert_eq!(again.status, 401);
    assert!(again.body.contains("The code is wrong"), "{}", again.body);
    let done = browser.post(&authorize, &otp_form(&again, &current)).await;
    assert_eq!(done.status, 302, "{}", done.body);
    assert!(browser.has_session());
    let back = done.redirect_params();
    let (status, tokens) = exchange(
        &s,
        (&client_id, client_secret.as_deref()),
        &back["code"],
        &verifier,
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims_of(tokens["id_token"].as_str().unwrap())["amr"],
        serde_json::json!(["pwd", "otp"])
    );

    // The same code again, in a new sign-in: no replay. A recovery code works.
    let mut other = Browser::default();
    let login = other
        .get(&authorize_url(&s, &client_id, &challenge, &[]))
        .await;
    let step = other.sign_in(&s, &login, "bob", USER_PASSWORD).await;
    let replay = other.post(&authorize, &otp_form(&step, &current)).await;
    assert_eq!(replay.status, 401);
    let done = other
        .post(&authorize, &otp_form(&replay, &recovery[0]))
        .await;
    assert_eq!(done.status, 302, "{}", done.body);
}
