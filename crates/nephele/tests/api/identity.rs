//! The token service and API clients (SPEC §5): grants, client
//! authentication, refresh rotation, revocation, introspection, lockout,
//! discovery.

use crate::support::*;
use nephele_api_types as api;
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// Creates an API client as the root admin; `(client_id, client_secret)`.
pub async fn create_client(s: &TestServer, body: &api::ApiClientCreate) -> (String, String) {
    let c = s.create_api_client(body).await;
    (
        c.client_id.to_string(),
        c.client_secret.expect("its secret"),
    )
}

/// An API client's body, acting in `tenant`.
fn in_tenant(name: &str, tenant: &str) -> api::ApiClientCreate {
    api::ApiClientCreate {
        tenant_id: Some(tenant.parse().unwrap()),
        ..api_client_body(name)
    }
}

/// `POST /api/2/idp/token` with a form and, optionally, HTTP Basic.
pub async fn token(s: &TestServer, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> Response {
    let mut rb = s.request(Method::POST, "/api/2/idp/token").form(form);
    if let Some((id, secret)) = basic {
        rb = rb.basic_auth(id, Some(secret));
    }
    rb.send().await.unwrap()
}

/// A client-credentials access token for a new admin client of the root.
pub async fn client_token(s: &TestServer) -> (String, String, String) {
    let (id, secret) = create_client(s, &api_client_body("tokens")).await;
    let r = token(
        s,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    let t = json_of(r, 200).await;
    (id, secret, t["access_token"].as_str().unwrap().to_owned())
}

/// The password grant's answer.
pub async fn password_grant(s: &TestServer, login: &str, password: &str, scope: &str) -> Response {
    token(
        s,
        &[
            ("grant_type", "password"),
            ("username", login),
            ("password", password),
            ("scope", scope),
        ],
        None,
    )
    .await
}

pub async fn password_tokens(s: &TestServer, login: &str, password: &str, scope: &str) -> Value {
    json_of(password_grant(s, login, password, scope).await, 200).await
}

pub async fn oauth_error(r: Response, status: u16, error: &str) -> Value {
    let got = r.status().as_u16();
    let cache = r
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap();
    assert_eq!(got, status, "body: {body}");
    assert_eq!(body["error"], error, "body: {body}");
    assert!(body["error_description"].is_string());
    assert_eq!(cache.as_deref(), Some("no-store"));
    body
}

async fn me_with(s: &TestServer, bearer: &str) -> Response {
    s.request(Method::GET, "/api/v2/me")
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn client_credentials_with_basic_and_post_authentication() {
    let s = TestServer::set_up().await;
    let (id, secret) = create_client(&s, &api_client_body("basic")).await;
    assert!(secret.starts_with("nph_sec_"));

    let r = token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let t = json_of(r, 200).await;
    assert_eq!(t["token_type"], "bearer");
    assert_eq!(t["expires_in"], 3600);
    assert!(t["expires_on"].as_i64().unwrap() > 1_700_000_000);
    assert!(t.get("id_token").is_none() && t.get("refresh_token").is_none());
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(access.split('.').count(), 3);

    // The client acts in its tenant with its roles.
    let me = json_of(me_with(&s, access).await, 200).await;
    assert_eq!(me["data"]["principal"]["type"], "client");
    assert_eq!(me["data"]["principal"]["id"], id.as_str());
    assert_eq!(me["data"]["authenticatedBy"], "bearer");
    let r = s
        .request(Method::GET, "/api/v2/users")
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    json_of(r, 200).await;

    // client_secret_post, for a client registered with it.
    let post = api::ApiClientCreate {
        token_endpoint_auth_method: Some("client_secret_post".into()),
        ..api_client_body("post")
    };
    let (post_id, post_secret) = create_client(&s, &post).await;
    let r = token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &post_id),
            ("client_secret", &post_secret),
        ],
        None,
    )
    .await;
    json_of(r, 200).await;
    // A client uses the method it registered.
    let r = token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&post_id, &post_secret)),
    )
    .await;
    oauth_error(r, 401, "invalid_client").await;

    // Issuance is counted; a machine's tokens are not audit events, but a
    // failed attempt is.
    let metrics = s.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"nephele_tokens_issued_total{grant_type="client_credentials"} 2"#),
        "{metrics}"
    );
    assert!(s.audit_events(&[("action", "idp.token")]).await.is_empty());
    let failed = s.audit_events(&[("action", "authentication")]).await;
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].actor_name.as_deref(), Some(post_id.as_str()));
    password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "").await;
    let signed_in = s.audit_events(&[("action", "idp.token")]).await;
    assert_eq!(signed_in.len(), 1, "{signed_in:?}");
    assert_eq!(signed_in[0].outcome, "success");

    // last_access_at is written within a couple of seconds.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let c = s.admin_client().api_client(&id).await.unwrap();
    assert!(c.last_access_at.is_some());
}

#[tokio::test]
async fn bad_client_credentials_are_invalid_client_with_a_challenge() {
    let s = TestServer::set_up().await;
    let (id, secret) = create_client(&s, &api_client_body("c")).await;
    let wrong = format!("{secret}x");
    for (cid, csecret) in [
        (id.as_str(), wrong.as_str()),
        ("00000000-0000-7000-8000-000000000999", secret.as_str()),
        ("not-a-uuid", secret.as_str()),
    ] {
        let r = token(
            &s,
            &[("grant_type", "client_credentials")],
            Some((cid, csecret)),
        )
        .await;
        assert_eq!(r.headers()["www-authenticate"], "Basic realm=\"nephele\"");
        oauth_error(r, 401, "invalid_client").await;
    }
    // No client at all, or a secret of no client (an empty client_id is
    // an absent one, RFC 6749 §3.2).
    let r = token(&s, &[("grant_type", "client_credentials")], None).await;
    oauth_error(r, 401, "invalid_client").await;
    let r = token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", ""),
            ("client_secret", &secret),
        ],
        None,
    )
    .await;
    oauth_error(r, 401, "invalid_client").await;
    // Malformed Basic headers.
    for header in ["Basic !!!", "Basic", "Basic Zm9v", "Digest abc"] {
        let r = s
            .request(Method::POST, "/api/2/idp/token")
            .header("authorization", header)
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        oauth_error(r, 401, "invalid_client").await;
    }
    // A disabled client cannot get tokens, and its tokens stop working.
    let r = token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    let access = json_of(r, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    json_of(me_with(&s, &access).await, 200).await;
    let disable = api::ApiClientUpdate {
        status: Some("disabled".into()),
        ..Default::default()
    };
    let c = s.admin_client().update_api_client(&id, &disable).await;
    assert_eq!(c.unwrap().status, "disabled");
    let r = token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    oauth_error(r, 401, "invalid_client").await;
    assert_error(me_with(&s, &access).await, 401, 1002).await;
}

#[tokio::test]
async fn malformed_token_requests_get_rfc6749_errors() {
    let s = TestServer::set_up().await;
    let (id, secret) = create_client(&s, &api_client_body("c")).await;
    let basic = Some((id.as_str(), secret.as_str()));
    oauth_error(token(&s, &[], basic).await, 400, "invalid_request").await;
    oauth_error(
        token(
            &s,
            &[("grant_type", "urn:ietf:params:oauth:grant-type:device_code")],
            basic,
        )
        .await,
        400,
        "unsupported_grant_type",
    )
    .await;
    // A grant the client did not register for.
    oauth_error(
        token(&s, &[("grant_type", "authorization_code")], basic).await,
        400,
        "unauthorized_client",
    )
    .await;
    oauth_error(
        token(
            &s,
            &[("grant_type", "client_credentials"), ("scope", "root")],
            basic,
        )
        .await,
        400,
        "invalid_scope",
    )
    .await;
    oauth_error(
        token(
            &s,
            &[("grant_type", "password"), ("username", "admin")],
            None,
        )
        .await,
        400,
        "invalid_request",
    )
    .await;
    oauth_error(
        token(&s, &[("grant_type", "refresh_token")], None).await,
        400,
        "invalid_request",
    )
    .await;
    // A repeated parameter.
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&grant_type=password")
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
    // The wrong content type.
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .basic_auth(&id, Some(&secret))
        .json(&json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
    // A huge body.
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&pad={}",
            "x".repeat(200_000)
        ))
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
    // The Basic client's own id repeated in the form is fine (some
    // libraries send it); another id, or a secret too, is not.
    let r = token(
        &s,
        &[("grant_type", "client_credentials"), ("client_id", &id)],
        basic,
    )
    .await;
    json_of(r, 200).await;
    let r = token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "someone-else"),
        ],
        basic,
    )
    .await;
    oauth_error(r, 400, "invalid_request").await;
    // Two client authentication methods at once.
    let r = token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ],
        basic,
    )
    .await;
    oauth_error(r, 400, "invalid_request").await;
    // Absurd refresh tokens and bearer tokens.
    let long = "a".repeat(10_000);
    oauth_error(
        token(
            &s,
            &[("grant_type", "refresh_token"), ("refresh_token", &long)],
            None,
        )
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(me_with(&s, &"a".repeat(5000)).await, 401, 1001).await;
}

#[tokio::test]
async fn password_grant_issues_id_and_refresh_tokens_that_rotate() {
    let s = TestServer::set_up().await;
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "offline_access").await;
    assert_eq!(t["scope"], "openid offline_access");
    assert!(t["id_token"].as_str().unwrap().split('.').count() == 3);
    let first = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(first.starts_with("nph_rt_"));
    let me = json_of(me_with(&s, t["access_token"].as_str().unwrap()).await, 200).await;
    assert_eq!(me["data"]["principal"]["login"], ADMIN_LOGIN);

    // Without offline_access: no refresh token, but still an id token.
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "").await;
    assert!(t.get("refresh_token").is_none());
    assert!(t["id_token"].is_string());

    // Refresh: a new pair; the old refresh token is spent.
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
        None,
    )
    .await;
    let t2 = json_of(r, 200).await;
    let second = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    json_of(me_with(&s, t2["access_token"].as_str().unwrap()).await, 200).await;
    // A narrower scope is fine; a wider one is not.
    let r = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &second),
            ("scope", "openid email"),
        ],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_scope").await;

    // Replaying the spent token revokes the whole family, the live one too.
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &first)],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &second)],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;

    // Wrong passwords and unknown users look the same.
    for (user, pw) in [
        (ADMIN_LOGIN, "wrong-password"),
        ("nobody", "wrong-password"),
    ] {
        let r = token(
            &s,
            &[
                ("grant_type", "password"),
                ("username", user),
                ("password", pw),
            ],
            None,
        )
        .await;
        let body = oauth_error(r, 400, "invalid_grant").await;
        assert_eq!(body["error_description"], "Invalid username or password");
    }
}

#[tokio::test]
async fn a_client_with_offline_access_gets_a_refresh_token_of_its_own() {
    let s = TestServer::set_up().await;
    let (id, secret) = create_client(&s, &api_client_body("daemon")).await;
    let grant = |form: Vec<(&'static str, String)>, auth: Option<(String, String)>| {
        let s = &s;
        async move {
            let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let auth = auth.as_ref().map(|(a, b)| (a.as_str(), b.as_str()));
            token(s, &form, auth).await
        }
    };
    let me = Some((id.clone(), secret.clone()));
    let t = json_of(
        grant(
            vec![
                ("grant_type", "client_credentials".into()),
                ("scope", "openid offline_access".into()),
            ],
            me.clone(),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(t["scope"], "offline_access", "{t}");
    assert!(t["id_token"].is_null(), "a client has no id token: {t}");
    let first = t["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_owned();
    // Without offline_access, none.
    let plain = json_of(
        grant(
            vec![("grant_type", "client_credentials".into())],
            me.clone(),
        )
        .await,
        200,
    )
    .await;
    assert!(plain["refresh_token"].is_null(), "{plain}");

    // It rotates like a user's, for its own client only, and speaks for
    // the client.
    let refresh = |rt: String, auth: Option<(String, String)>| {
        grant(
            vec![
                ("grant_type", "refresh_token".into()),
                ("refresh_token", rt),
            ],
            auth,
        )
    };
    oauth_error(refresh(first.clone(), None).await, 401, "invalid_client").await;
    let next = json_of(refresh(first.clone(), me.clone()).await, 200).await;
    let second = next["refresh_token"].as_str().unwrap().to_owned();
    let r = s
        .request(Method::GET, "/api/v2/me")
        .bearer_auth(next["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(r, 200).await["data"]["principal"]["id"],
        id.as_str()
    );
    let i = s
        .request(Method::POST, "/api/2/idp/introspect")
        .basic_auth(&id, Some(&secret))
        .form(&[("token", &second)])
        .send()
        .await
        .unwrap();
    let i = json_of(i, 200).await;
    assert_eq!(
        (i["active"].clone(), i["sub"].clone()),
        (json!(true), json!(id))
    );
    // A replay of the first revokes the family.
    oauth_error(refresh(first, me.clone()).await, 400, "invalid_grant").await;
    oauth_error(refresh(second, me.clone()).await, 400, "invalid_grant").await;

    // A secret reset ends the client's refresh tokens.
    let t = json_of(
        grant(
            vec![
                ("grant_type", "client_credentials".into()),
                ("scope", "offline_access".into()),
            ],
            me.clone(),
        )
        .await,
        200,
    )
    .await;
    let third = t["refresh_token"].as_str().unwrap().to_owned();
    let reset = s.admin_client().reset_api_client_secret(&id).await;
    let secret = reset.unwrap().client_secret.unwrap();
    oauth_error(
        refresh(third, Some((id, secret))).await,
        400,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn refresh_tokens_are_bound_to_their_client() {
    let s = TestServer::set_up().await;
    let (id, secret) = create_client(&s, &api_client_body("app")).await;
    let (other, other_secret) = create_client(&s, &api_client_body("other")).await;
    let r = token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", ADMIN_LOGIN),
            ("password", ADMIN_PASSWORD),
            ("scope", "openid offline_access"),
        ],
        Some((&id, &secret)),
    )
    .await;
    let rt = json_of(r, 200).await["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Another client, or no client, cannot use it (and does not spend it).
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        Some((&other, &other_secret)),
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        None,
    )
    .await;
    oauth_error(r, 401, "invalid_client").await;
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
        Some((&id, &secret)),
    )
    .await;
    json_of(r, 200).await;
}

#[tokio::test]
async fn revocation_and_introspection() {
    let s = TestServer::set_up().await;
    let (id, secret, access) = client_token(&s).await;
    let (other, other_secret) = create_client(&s, &api_client_body("other")).await;
    let introspect = |token: String, cid: String, csecret: String| {
        let s = &s;
        async move {
            s.request(Method::POST, "/api/2/idp/introspect")
                .basic_auth(cid, Some(csecret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
        }
    };
    let i = json_of(
        introspect(access.clone(), id.clone(), secret.clone()).await,
        200,
    )
    .await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], id.as_str());
    assert_eq!(i["token_type"], "access_token");
    // Introspection needs client authentication.
    let r = s
        .request(Method::POST, "/api/2/idp/introspect")
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    oauth_error(r, 401, "invalid_client").await;
    // Unknown tokens are exactly {"active":false}.
    let r = introspect("garbage".into(), id.clone(), secret.clone()).await;
    assert_eq!(r.text().await.unwrap(), r#"{"active":false}"#);

    // Another client's revocation of this token is a silent no-op.
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .basic_auth(&other, Some(&other_secret))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    json_of(me_with(&s, &access).await, 200).await;
    // Unknown tokens: 200 too.
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .basic_auth(&id, Some(&secret))
        .form(&[("token", "nothing-like-a-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Its own client revokes it: refused at once.
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .basic_auth(&id, Some(&secret))
        .form(&[("token", &access)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_error(me_with(&s, &access).await, 401, 1002).await;
    let r = introspect(access.clone(), id.clone(), secret.clone()).await;
    assert_eq!(r.text().await.unwrap(), r#"{"active":false}"#);

    // A user revokes their own refresh token with their access token.
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap();
    let i = json_of(
        introspect(rt.to_owned(), id.clone(), secret.clone()).await,
        200,
    )
    .await;
    assert_eq!(i["active"], true);
    assert_eq!(i["token_type"], "refresh_token");
    assert_eq!(i["username"], ADMIN_LOGIN);
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .bearer_auth(t["access_token"].as_str().unwrap())
        .form(&[("token", rt), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;
    // Revocation without a token parameter.
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .basic_auth(&id, Some(&secret))
        .form(&[("token_type_hint", "access_token")])
        .send()
        .await
        .unwrap();
    oauth_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn introspection_does_not_reach_into_other_tenants() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let a = s.create_org("A", Some(&root)).await;
    let b = s.create_org("B", Some(&root)).await;
    let (a_id, a_secret) = create_client(&s, &in_tenant("a-client", &a)).await;
    let (b_id, b_secret) = create_client(&s, &in_tenant("b-client", &b)).await;
    let r = token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&b_id, &b_secret)),
    )
    .await;
    let b_token = json_of(r, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .request(Method::POST, "/api/2/idp/introspect")
        .basic_auth(&a_id, Some(&a_secret))
        .form(&[("token", &b_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), r#"{"active":false}"#);
    // The root's client sees below.
    let (root_id, root_secret) = create_client(&s, &api_client_body("root-client")).await;
    let r = s
        .request(Method::POST, "/api/2/idp/introspect")
        .basic_auth(&root_id, Some(&root_secret))
        .form(&[("token", &b_token)])
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["active"], true);
}

#[tokio::test]
async fn api_clients_are_managed_per_tenant_and_never_grant_more_than_held() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let a = s.create_org("A", Some(&root)).await;
    let b = s.create_org("B", Some(&root)).await;
    s.create_user(&a, "alice", &["admin"]).await;
    s.create_user(&a, "clerk", &["viewer"]).await;
    s.create_role(
        Some(&a),
        "client-manager",
        &["clients:read", "clients:write"],
    )
    .await;
    s.create_user(&a, "manager", &["client-manager"]).await;

    // alice (admin of A) creates a client in A; it defaults to admin there.
    let r = s
        .as_user(Method::POST, "/api/2/clients", "alice")
        .json(&api_client_body("a-app"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let c = r.json::<Value>().await.unwrap();
    let id = c["client_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/2/clients/{id}"));
    assert_eq!(c["tenant_id"], a.as_str());
    assert_eq!(c["roles"], json!(["admin"]));
    assert_eq!(c["status"], "enabled");
    assert!(c["created_by"].is_string());
    assert!(c["last_access_at"].is_null());

    // Not in a tenant alice cannot manage: B is beside A (404), the root above.
    let alice = s.client_as("alice");
    for tenant in [&b, &root] {
        let made = alice.create_api_client(&in_tenant("x", tenant)).await;
        assert_refused(made, 404, 2000);
    }
    // A viewer cannot create clients; the manager cannot make an admin one,
    // but may make one with roles it holds... which carry nothing beyond them.
    let made = s
        .client_as("clerk")
        .create_api_client(&api_client_body("x"))
        .await;
    assert_refused(made, 403, 1003);
    let manager = s.client_as("manager");
    let made = manager.create_api_client(&api_client_body("x")).await;
    assert_refused(made, 403, 1003);
    let limited = api::ApiClientCreate {
        roles: Some(vec!["client-manager".into()]),
        ..api_client_body("limited")
    };
    manager.create_api_client(&limited).await.unwrap();
    // ...nor reset the admin client's secret (that hands over its power).
    assert_refused(manager.reset_api_client_secret(&id).await, 403, 1003);

    // Lists are per tenant; another tenant's client is 404.
    let r = s
        .as_user(Method::GET, "/api/2/clients", "alice")
        .send()
        .await
        .unwrap();
    let list = json_of(r, 200).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert!(list["items"][0].get("client_secret").is_none());
    assert_refused(alice.api_clients(Some(&b)).await, 404, 2000);
    let (b_client, _) = create_client(&s, &in_tenant("b-app", &b)).await;
    for (method, path) in [
        (Method::GET, format!("/api/2/clients/{b_client}")),
        (Method::PUT, format!("/api/2/clients/{b_client}")),
        (Method::DELETE, format!("/api/2/clients/{b_client}")),
        (Method::POST, format!("/api/2/clients/{b_client}/secret")),
    ] {
        let r = s
            .as_user(method, &path, "alice")
            .json(&json!({"status": "disabled"}))
            .send()
            .await
            .unwrap();
        assert_error(r, 404, 2000).await;
    }

    // Validation lists every bad field.
    let r = s
        .admin_json(
            Method::POST,
            "/api/2/clients",
            &json!({"type": "robot", "token_endpoint_auth_method": "private_key_jwt",
                    "data": {}, "roles": ["nope"]}),
        )
        .await;
    let e = assert_error(r, 422, 3001).await;
    let fields: Vec<&str> = e["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["context"]["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "type",
            "token_endpoint_auth_method",
            "data.client_name",
            "roles[0]"
        ]
    );

    // Reset the secret: the old one dies; rename; delete.
    let (cid, old) = create_client(&s, &api_client_body("rotate-me")).await;
    let client = s.admin_client();
    let reset = client.reset_api_client_secret(&cid).await.unwrap();
    let new = reset.client_secret.unwrap();
    assert_ne!(new, old);
    oauth_error(
        token(
            &s,
            &[("grant_type", "client_credentials")],
            Some((&cid, &old)),
        )
        .await,
        401,
        "invalid_client",
    )
    .await;
    json_of(
        token(
            &s,
            &[("grant_type", "client_credentials")],
            Some((&cid, &new)),
        )
        .await,
        200,
    )
    .await;
    let rename = api::ApiClientUpdate {
        data: Some(api::ApiClientData {
            client_name: Some("renamed".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let renamed = client.update_api_client(&cid, &rename).await.unwrap();
    assert_eq!(renamed.data.client_name.as_deref(), Some("renamed"));
    client.delete_api_client(&cid).await.unwrap();
    assert_refused(client.api_client(&cid).await, 404, 2000);
    // An organization with clients is not deleted from under them.
    assert_refused(client.delete_organization(&b).await, 409, 2012);
}

#[tokio::test]
async fn repeated_failed_passwords_lock_the_account_without_an_oracle() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    s.create_user(&root, "victim", &["viewer"]).await;
    for _ in 0..5 {
        let r = token(
            &s,
            &[
                ("grant_type", "password"),
                ("username", "victim"),
                ("password", "guess-guess"),
            ],
            None,
        )
        .await;
        oauth_error(r, 400, "invalid_grant").await;
    }
    // Now even the right password is refused, with Retry-After.
    let r = token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", "victim"),
            ("password", USER_PASSWORD),
        ],
        None,
    )
    .await;
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry));
    oauth_error(r, 429, "invalid_grant").await;
    // HTTP Basic is locked too (429, 1004).
    let r = s
        .as_user(Method::GET, "/api/v2/me", "victim")
        .send()
        .await
        .unwrap();
    assert!(r.headers().contains_key("retry-after"));
    assert_error(r, 429, 1004).await;
    // An unknown login is locked the same way: nothing tells them apart.
    for _ in 0..5 {
        let r = s
            .request(Method::GET, "/api/v2/me")
            .basic_auth("ghost", Some("guess-guess"))
            .send()
            .await
            .unwrap();
        assert_error(r, 401, 1001).await;
    }
    let r = s
        .request(Method::GET, "/api/v2/me")
        .basic_auth("ghost", Some("guess-guess"))
        .send()
        .await
        .unwrap();
    assert_error(r, 429, 1004).await;
    // Other accounts are untouched.
    s.admin_client().me().await.unwrap();
    // A password far over the limit is refused without hashing it.
    let r = token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", "admin"),
            ("password", &"p".repeat(5000)),
        ],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn discovery_keys_userinfo_and_accounts() {
    let s = TestServer::set_up().await;
    let c = json_of(s.get("/.well-known/openid-configuration").await, 200).await;
    assert_eq!(c["issuer"], s.url.as_str());
    assert_eq!(c["token_endpoint"], format!("{}/api/2/idp/token", s.url));
    assert_eq!(c["jwks_uri"], format!("{}/api/2/idp/keys", s.url));
    for field in [
        "revocation_endpoint",
        "introspection_endpoint",
        "userinfo_endpoint",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
        "scopes_supported",
        "id_token_signing_alg_values_supported",
        "response_types_supported",
        "subject_types_supported",
    ] {
        assert!(!c[field].is_null(), "{field}");
    }
    // Only what is served: the authorization code flow with PKCE (S256).
    assert_eq!(c["response_types_supported"], json!(["code"]));
    assert_eq!(c["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(c["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        c["authorization_endpoint"],
        format!("{}/api/2/idp/authorize", s.url)
    );
    assert_eq!(
        c["end_session_endpoint"],
        format!("{}/api/2/idp/logout", s.url)
    );
    assert_eq!(
        c["grant_types_supported"],
        json!([
            "authorization_code",
            "client_credentials",
            "password",
            "refresh_token"
        ])
    );
    let claims = c["claims_supported"].as_array().unwrap();
    for claim in ["auth_time", "name", "preferred_username", "tenant_id"] {
        assert!(claims.contains(&json!(claim)), "{claim}");
    }
    let jwks = json_of(s.get("/api/2/idp/keys").await, 200).await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap())
        .collect();
    assert_eq!(algs, ["ES256", "RS256"]);

    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid email").await;
    let r = s
        .request(Method::GET, "/api/2/idp/userinfo")
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let info = json_of(r, 200).await;
    assert_eq!(info["preferred_username"], ADMIN_LOGIN);
    assert_eq!(info["email"], "admin@acme.test");
    assert!(info["sub"].is_string() && info["tenant_id"].is_string());
    assert_error(s.get("/api/2/idp/userinfo").await, 401, 1000).await;

    // Accounts: the same shape for known and unknown logins.
    let known = json_of(s.get("/api/1/accounts?login=admin").await, 200).await;
    let unknown = json_of(s.get("/api/1/accounts?login=nobody").await, 200).await;
    assert_eq!(
        known,
        json!({"login": "admin", "id": 0, "server_url": s.url})
    );
    assert_eq!(
        unknown,
        json!({"login": "nobody", "id": 0, "server_url": s.url})
    );
    // A user homed in another data center is sent there.
    let dc = s.create_datacenter("eu", "https://eu.example.test").await;
    let root = s.root_org().await;
    let far = api::UserCreate {
        roles: None,
        datacenter_id: Some(dc.parse().unwrap()),
        ..user_body("far", &[])
    };
    s.admin_client()
        .create_user(Some(&root), &far)
        .await
        .unwrap();
    let far = json_of(s.get("/api/1/accounts?login=far").await, 200).await;
    assert_eq!(far["server_url"], "https://eu.example.test");
    assert_error(s.get("/api/1/accounts").await, 422, 3001).await;
}

#[tokio::test]
async fn identity_endpoints_wait_for_setup() {
    let s = TestServer::start().await;
    assert_error(s.get("/.well-known/openid-configuration").await, 420, 1100).await;
    let r = token(&s, &[("grant_type", "client_credentials")], None).await;
    assert_error(r, 420, 1100).await;
}

#[tokio::test]
async fn rotation_keeps_old_tokens_verifiable_and_peers_agree() {
    let s = TestServer::set_up().await;
    let (id, secret, before) = client_token(&s).await;
    let peer = s.peer().await;
    // A token from one node verifies on the other.
    json_of(me_with(&peer, &before).await, 200).await;

    // Only the root's admins rotate on demand.
    let root = s.root_org().await;
    let sub = s.create_org("Sub", Some(&root)).await;
    s.create_user(&sub, "subadmin", &["admin"]).await;
    let r = s
        .as_user(Method::POST, "/api/2/idp/keys/rotate", "subadmin")
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    let r = s
        .admin(Method::POST, "/api/2/idp/keys/rotate")
        .send()
        .await
        .unwrap();
    let rotated = json_of(r, 200).await;
    let jwks = json_of(s.get("/api/2/idp/keys").await, 200).await;
    assert_eq!(jwks, rotated);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4);
    json_of(me_with(&s, &before).await, 200).await;
    let r = token(
        &s,
        &[("grant_type", "client_credentials")],
        Some((&id, &secret)),
    )
    .await;
    let after = json_of(r, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(
        before.split('.').next().unwrap(),
        after.split('.').next().unwrap(),
        "a new kid"
    );
    // The peer has not reloaded yet; the unknown kid makes it look.
    json_of(me_with(&peer, &after).await, 200).await;

    // A revocation on one node is refused by the other within a second.
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .basic_auth(&id, Some(&secret))
        .form(&[("token", &after)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_error(me_with(&peer, &after).await, 401, 1002).await;
    peer.stop().await;
}

#[tokio::test]
async fn idempotent_replays_keep_secrets_sealed_and_tokens_are_never_replayed() {
    use sqlx::Connection;
    let s = TestServer::set_up().await;
    let create = || {
        s.admin(Method::POST, "/api/2/clients")
            .header("idempotency-key", "create-client-1")
            .json(&api_client_body("once"))
            .send()
    };
    let first = json_of(create().await.unwrap(), 201).await;
    let r = create().await.unwrap();
    assert_eq!(r.headers()["idempotent-replayed"], "true");
    let again = json_of(r, 201).await;
    assert_eq!(first["client_secret"], again["client_secret"]);
    // The stored response does not hold the secret in clear.
    let secret = first["client_secret"].as_str().unwrap();
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    let bodies: Vec<Vec<u8>> = sqlx::query_scalar("SELECT body FROM idempotency_keys")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert!(!bodies.is_empty());
    for body in bodies {
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains(secret) && !text.contains("nph_sec_"),
            "{text}"
        );
    }
    // Token requests are not idempotent-replayed: each gets its own token.
    let id = first["client_id"].as_str().unwrap();
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let r = s
            .request(Method::POST, "/api/2/idp/token")
            .basic_auth(id, Some(secret))
            .header("idempotency-key", "token-1")
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert!(r.headers().get("idempotent-replayed").is_none());
        tokens.push(json_of(r, 200).await["access_token"].clone());
    }
    assert_ne!(tokens[0], tokens[1]);
}

#[tokio::test]
async fn concurrent_uses_of_one_refresh_token_let_one_win_and_revoke_the_family() {
    let s = TestServer::set_up().await;
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "offline_access").await;
    let rt = t["refresh_token"].as_str().unwrap().to_owned();
    let attempts = (0..6).map(|_| {
        let rt = rt.clone();
        let s = &s;
        async move {
            let r = token(
                s,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                None,
            )
            .await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap())
        }
    });
    let results = futures::future::join_all(attempts).await;
    let winners: Vec<&Value> = results
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for (status, body) in &results {
        if *status != 200 {
            assert_eq!(
                (*status, body["error"].as_str()),
                (400, Some("invalid_grant"))
            );
        }
    }
    // The replays revoked the family, the winner's new token with it.
    let next = winners[0]["refresh_token"].as_str().unwrap();
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
        None,
    )
    .await;
    oauth_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_lockout_counts_the_forwarded_address() {
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    json_of(s.post("/occm/setup/init", &setup_body()).await, 201).await;
    let from = |ip: &'static str, login: String, password: &'static str| {
        let s = &s;
        async move {
            s.request(Method::GET, "/api/v2/me")
                .header("x-forwarded-for", ip)
                .basic_auth(login, Some(password))
                .send()
                .await
                .unwrap()
        }
    };
    // One address sprays fifty accounts: that address is locked...
    for i in 0..50 {
        let r = from("198.51.100.7", format!("sprayed{i}"), "guess-guess").await;
        assert_error(r, 401, 1001).await;
    }
    let r = from("198.51.100.7", ADMIN_LOGIN.into(), ADMIN_PASSWORD).await;
    assert_error(r, 429, 1004).await;
    // ...and nobody else behind the same proxy is.
    let r = from("203.0.113.9", ADMIN_LOGIN.into(), ADMIN_PASSWORD).await;
    json_of(r, 200).await;
    // The audit log records the forwarded address.
    let events = s.audit_events(&[("action", "authentication")]).await;
    assert_eq!(events[0].client_address.as_deref(), Some("198.51.100.7"));
}
