//! Interoperability and token security: a standard OAuth2 client gets
//! tokens; an independent JOSE library (jsonwebtoken, on RustCrypto)
//! verifies them offline against the JWKS; and RFC 8725-style forgeries and
//! mutations of valid tokens are each refused with 401.

use crate::identity::{client_token, create_client, password_tokens};
use crate::support::*;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use nephele::config::TokenAlgorithm;
use nephele_auth::jws::{Algorithm, SigningKey};
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn the_oauth2_crate_gets_client_credentials_tokens() {
    use oauth2::basic::BasicClient;
    use oauth2::{AuthType, ClientId, ClientSecret, TokenResponse, TokenUrl};
    let s = TestServer::set_up().await;
    let http = oauth2::reqwest::ClientBuilder::new()
        .redirect(oauth2::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, auth_type) in [
        ("client_secret_basic", AuthType::BasicAuth),
        ("client_secret_post", AuthType::RequestBody),
    ] {
        let body = nephele_api_types::ApiClientCreate {
            token_endpoint_auth_method: Some(method.into()),
            ..api_client_body(method)
        };
        let (id, secret) = create_client(&s, &body).await;
        let client = BasicClient::new(ClientId::new(id))
            .set_client_secret(ClientSecret::new(secret))
            .set_auth_type(auth_type)
            .set_token_uri(TokenUrl::new(format!("{}/api/2/idp/token", s.url)).unwrap());
        let token = client
            .exchange_client_credentials()
            .request_async(&http)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e:?}"));
        assert_eq!(token.token_type(), &oauth2::basic::BasicTokenType::Bearer);
        assert_eq!(
            token.expires_in(),
            Some(std::time::Duration::from_secs(3600))
        );
        let r = s
            .request(Method::GET, "/api/v2/me")
            .bearer_auth(token.access_token().secret())
            .send()
            .await
            .unwrap();
        json_of(r, 200).await;
    }
}

/// Verifies `token` with jsonwebtoken against the server's JWKS.
async fn verify_offline(
    s: &TestServer,
    token: &str,
    alg: jsonwebtoken::Algorithm,
    audience: &str,
) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = s.get("/api/2/idp/keys").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, alg);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the token's kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_issuer(&[&s.url]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("offline verification: {e}"))
        .claims
}

#[tokio::test]
async fn tokens_verify_offline_with_an_independent_jose_library() {
    let s = TestServer::set_up().await;
    let (client_id, _, access) = client_token(&s).await;
    let claims = verify_offline(&s, &access, jsonwebtoken::Algorithm::ES256, &s.url).await;
    assert_eq!(claims["sub"], client_id.as_str());
    assert_eq!(claims["client_id"], client_id.as_str());
    for claim in ["jti", "tenant_id", "scope", "iat", "exp"] {
        assert!(!claims[claim].is_null(), "{claim}");
    }
    assert_eq!(
        jsonwebtoken::decode_header(&access).unwrap().typ.as_deref(),
        Some("at+jwt")
    );

    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid").await;
    let id = verify_offline(
        &s,
        t["id_token"].as_str().unwrap(),
        jsonwebtoken::Algorithm::RS256,
        "nephele",
    )
    .await;
    assert_eq!(id["preferred_username"], ADMIN_LOGIN);
    verify_offline(
        &s,
        t["access_token"].as_str().unwrap(),
        jsonwebtoken::Algorithm::ES256,
        &s.url,
    )
    .await;

    // EdDSA, when chosen.
    let e = TestServer::start_with(|c| c.token_algorithm = TokenAlgorithm::Eddsa).await;
    json_of(e.post("/occm/setup/init", &setup_body()).await, 201).await;
    let (_, _, access) = client_token(&e).await;
    verify_offline(&e, &access, jsonwebtoken::Algorithm::EdDSA, &e.url).await;
}

fn b64json(v: &Value) -> String {
    B64.encode(v.to_string())
}

fn payload_of(token: &str) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_and_mutated_tokens_are_each_refused() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let other = s.create_org("Other", Some(&root)).await;
    let (_, _, valid) = client_token(&s).await;
    let keys = s.app().key_ring().keys().unwrap();
    let real = &keys.access.key;
    let kid = real.kid().to_owned();
    let id_kid = keys.id.key.kid().to_owned();
    let claims = payload_of(&valid);
    let now = s.app().clock().now().timestamp();
    let header = |extra: Value| {
        let mut h = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                h.as_object_mut().unwrap().remove(k);
            } else {
                h[k] = v.clone();
            }
        }
        h
    };
    // Signed by the server's own access key: only the claims are wrong.
    let signed = |h: Value, c: &Value| real.sign(&b64json(&h), c.to_string().as_bytes()).unwrap();
    let with = |changes: Value| {
        let mut c = claims.clone();
        for (k, v) in changes.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        signed(header(json!({})), &c)
    };

    // The forging machinery itself works: a faithful re-signing is accepted.
    let control = signed(header(json!({})), &claims);
    let r = s
        .request(Method::GET, "/api/v2/me")
        .bearer_auth(&control)
        .send()
        .await
        .unwrap();
    json_of(r, 200).await;

    let (attacker, _) = SigningKey::generate(Algorithm::ES256, kid.clone()).unwrap();
    let (attacker_own, _) = SigningKey::generate(Algorithm::ES256, "evil".into()).unwrap();
    let attacker_jwk = serde_json::to_value(attacker_own.jwk()).unwrap();
    let jwks: Value = s.get("/api/2/idp/keys").await.json().await.unwrap();
    let public = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap()
        .clone();
    let mut point = vec![4u8];
    point.extend(B64.decode(public["x"].as_str().unwrap()).unwrap());
    point.extend(B64.decode(public["y"].as_str().unwrap()).unwrap());
    let hmac = |alg: jsonwebtoken::Algorithm, secret: &[u8]| {
        let mut h = jsonwebtoken::Header::new(alg);
        h.kid = Some(kid.clone());
        h.typ = Some("at+jwt".into());
        jsonwebtoken::encode(&h, &claims, &jsonwebtoken::EncodingKey::from_secret(secret)).unwrap()
    };
    let parts: Vec<&str> = valid.split('.').collect();
    let (h0, p0, sig0) = (parts[0], parts[1], parts[2]);
    let unsigned = |alg: &str| format!("{}.{p0}.", b64json(&header(json!({"alg": alg}))));
    let tampered = |change: Value| {
        let mut c = claims.clone();
        for (k, v) in change.as_object().unwrap() {
            c[k] = v.clone();
        }
        format!("{h0}.{}.{sig0}", b64json(&c))
    };
    let mut flipped = B64.decode(sig0).unwrap();
    flipped[10] ^= 1;

    // An id token, a refresh token, a revoked token, a deleted user's token.
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid offline_access").await;
    let (c2_id, c2_secret, revoked) = client_token(&s).await;
    let r = s
        .request(Method::POST, "/api/2/idp/revoke")
        .basic_auth(&c2_id, Some(&c2_secret))
        .form(&[("token", &revoked)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let gone = s.create_user(&root, "gone", &["viewer"]).await;
    let gone_token = password_tokens(&s, "gone", USER_PASSWORD, "").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    s.admin_client().delete_user(&gone).await.unwrap();
    let admin_id = payload_of(t["access_token"].as_str().unwrap())["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    let (disabled_id, _) = create_client(&s, &api_client_body("soon-disabled")).await;

    let cases: Vec<(&str, String)> = vec![
        ("alg none", unsigned("none")),
        ("alg None", unsigned("None")),
        ("alg NONE", unsigned("NONE")),
        ("alg none, no signature part", unsigned("none").trim_end_matches('.').to_owned()),
        ("alg none with the real signature", format!("{}{sig0}", unsigned("none"))),
        ("HS256 keyed with the public point", hmac(jsonwebtoken::Algorithm::HS256, &point)),
        ("HS256 keyed with the JWK text", hmac(jsonwebtoken::Algorithm::HS256, public.to_string().as_bytes())),
        ("HS256 keyed with x", hmac(jsonwebtoken::Algorithm::HS256, public["x"].as_str().unwrap().as_bytes())),
        ("HS384 keyed with the public point", hmac(jsonwebtoken::Algorithm::HS384, &point)),
        ("HS512 keyed with the public point", hmac(jsonwebtoken::Algorithm::HS512, &point)),
        ("RS256 header on an ES256 signature", signed(header(json!({"alg": "RS256"})), &claims)),
        ("ES384 header", signed(header(json!({"alg": "ES384"})), &claims)),
        ("EdDSA header", signed(header(json!({"alg": "EdDSA"})), &claims)),
        ("lower-case alg", signed(header(json!({"alg": "es256"})), &claims)),
        ("unknown kid", signed(header(json!({"kid": "00000000-0000-7000-8000-00000000dead"})), &claims)),
        ("no kid", signed(header(json!({"kid": null})), &claims)),
        ("kid as a number", signed(header(json!({"kid": 7})), &claims)),
        ("the id-token key signing an access token", keys.id.key.sign(&b64json(&json!({"alg": "RS256", "typ": "at+jwt", "kid": id_kid})), claims.to_string().as_bytes()).unwrap()),
        ("an attacker's key under our kid", attacker.sign(&b64json(&header(json!({}))), claims.to_string().as_bytes()).unwrap()),
        ("an attacker's key with an embedded jwk", attacker_own.sign(&b64json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "jwk": attacker_jwk})), claims.to_string().as_bytes()).unwrap()),
        ("jku to an attacker's JWKS", attacker_own.sign(&b64json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "jku": "https://evil.test/jwks"})), claims.to_string().as_bytes()).unwrap()),
        ("x5u to an attacker's certificate", attacker_own.sign(&b64json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "x5u": "https://evil.test/cert"})), claims.to_string().as_bytes()).unwrap()),
        ("x5c with an attacker's chain", attacker_own.sign(&b64json(&json!({"alg": "ES256", "typ": "at+jwt", "kid": "evil", "x5c": ["MIIB"]})), claims.to_string().as_bytes()).unwrap()),
        ("jku even under our own key", signed(header(json!({"jku": "https://evil.test/jwks"})), &claims)),
        ("a crit header", signed(header(json!({"crit": ["exp"]})), &claims)),
        ("typ JWT (not an access token)", signed(header(json!({"typ": "JWT"})), &claims)),
        ("no typ", signed(header(json!({"typ": null})), &claims)),
        ("typ id+jwt", signed(header(json!({"typ": "id+jwt"})), &claims)),
        ("tampered sub", tampered(json!({"sub": admin_id}))),
        ("tampered tenant", tampered(json!({"tenant_id": other}))),
        ("tampered scope", tampered(json!({"scope": "openid offline_access"}))),
        ("tampered exp", tampered(json!({"exp": now + 999_999}))),
        ("tampered header", format!("{}.{p0}.{sig0}", b64json(&header(json!({"typ": "at+JWT", "x": 1}))))),
        ("truncated signature", format!("{h0}.{p0}.{}", &sig0[..sig0.len() - 4])),
        ("empty signature", format!("{h0}.{p0}.")),
        ("flipped signature bit", format!("{h0}.{p0}.{}", B64.encode(&flipped))),
        ("another token's signature", format!("{h0}.{p0}.{}", t["access_token"].as_str().unwrap().split('.').nth(2).unwrap())),
        ("expired a moment ago", with(json!({"exp": now - 5}))),
        ("expired an hour ago", with(json!({"exp": now - 3600}))),
        ("no exp", with(json!({"exp": null}))),
        ("exp as a string", with(json!({"exp": (now + 600).to_string()}))),
        ("nbf in the future", with(json!({"nbf": now + 600}))),
        ("iat in the future", with(json!({"iat": now + 600}))),
        ("wrong iss", with(json!({"iss": "https://evil.test"}))),
        ("iss with a trailing slash", with(json!({"iss": format!("{}/", s.url)}))),
        ("no iss", with(json!({"iss": null}))),
        ("wrong aud", with(json!({"aud": "https://evil.test"}))),
        ("no aud", with(json!({"aud": null}))),
        ("aud array without ours", with(json!({"aud": ["a", "b"]}))),
        ("unknown subject", with(json!({"sub": "00000000-0000-7000-8000-0000000000aa", "client_id": null}))),
        ("sub not an id", with(json!({"sub": "root", "client_id": null}))),
        ("a user's id posing as a client", with(json!({"sub": admin_id, "client_id": admin_id}))),
        ("a user in a tenant not theirs", with(json!({"sub": admin_id, "client_id": null, "tenant_id": other}))),
        ("a client in a tenant not its", with(json!({"tenant_id": other}))),
        ("a disabled client", with(json!({"sub": disabled_id, "client_id": disabled_id}))),
        ("no jti", with(json!({"jti": null}))),
        ("empty jti", with(json!({"jti": ""}))),
        ("tenant not an id", with(json!({"tenant_id": "acme"}))),
        ("an id token as an access token", t["id_token"].as_str().unwrap().to_owned()),
        ("a refresh token as an access token", t["refresh_token"].as_str().unwrap().to_owned()),
        ("a revoked token", revoked),
        ("a deleted user's token", gone_token),
        ("four segments", format!("{valid}.{sig0}")),
        ("two segments", format!("{h0}.{p0}")),
        ("not base64", format!("{h0}.{p0}!!.{sig0}")),
        ("payload not JSON", signed_raw(real, &header(json!({})), b"not json")),
        ("header not JSON", format!("{}.{p0}.{sig0}", B64.encode("not json"))),
        ("absurdly long", format!("{h0}.{}.{sig0}", "A".repeat(9000))),
        ("whitespace inside", format!("{h0} .{p0}.{sig0}")),
    ];
    // Disable the client only now, so its case is about the state, not the key.
    let disable = nephele_api_types::ApiClientUpdate {
        status: Some("disabled".into()),
        ..Default::default()
    };
    let disabled = s
        .admin_client()
        .update_api_client(&disabled_id, &disable)
        .await;
    assert_eq!(disabled.unwrap().status, "disabled");
    assert!(cases.len() >= 50, "{} cases", cases.len());
    for (name, token) in &cases {
        let r = s
            .request(Method::GET, "/api/v2/me")
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        assert_eq!(status, 401, "{name} was not refused: {body}");
        let code = serde_json::from_str::<Value>(&body).unwrap()["errors"][0]["code"]
            .as_u64()
            .unwrap();
        assert!(code == 1001 || code == 1002, "{name}: {body}");
    }
    // And the valid token still works after all that.
    let r = s
        .request(Method::GET, "/api/v2/me")
        .bearer_auth(&valid)
        .send()
        .await
        .unwrap();
    json_of(r, 200).await;
}

fn signed_raw(key: &SigningKey, header: &Value, payload: &[u8]) -> String {
    key.sign(&b64json(header), payload).unwrap()
}
