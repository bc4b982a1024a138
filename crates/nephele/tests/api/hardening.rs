//! What a hostile tenant or an anonymous attacker tries: idempotency keys
//! across credentials, ambiguous uploads, userinfo for non-users, forged
//! request ids, readable files, names that read as others, quotas escaped
//! through sub-organizations, and password guesses raced or aimed at
//! locking a victim out.

use crate::identity::{client_token, create_client, password_tokens, token};
use crate::support::*;
use nephele_api_types as api;
use reqwest::header::HeaderValue;
use reqwest::Method;
use serde_json::json;
use sha2::{Digest, Sha256};

const FILES: &str = "/api/notary/v2/stored-files";

/// How many stored files the root organization has.
async fn stored_files(s: &TestServer) -> usize {
    let files = s.admin_client().stored_files(&[]).await;
    files.unwrap().data.len()
}

#[tokio::test]
async fn an_idempotency_key_belongs_to_the_principal_not_to_the_credential() {
    let s = TestServer::set_up().await;
    let body = json!({"name": "once", "image": "debian-12", "cpu": 1, "memoryMiB": 256});
    let create = |rb: reqwest::RequestBuilder| {
        let body = body.clone();
        async move {
            rb.header("idempotency-key", "vm-once")
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };
    let first = create(s.admin(Method::POST, "/api/v2/instances")).await;
    let task = accepted_task(first).await;

    // The same user by a bearer token, by a refreshed one, and by an API
    // key: each retry gets the first answer, the same task.
    let tokens = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid offline_access").await;
    let bearer = tokens["access_token"].as_str().unwrap();
    let refreshed = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        None,
    )
    .await;
    let refreshed = json_of(refreshed, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let retries_key = api::ApiKeyCreate {
        name: Some("retries".into()),
    };
    let key = s.admin_client().create_api_key(&retries_key).await;
    let key = key.unwrap().secret.unwrap();
    let retries = [
        s.request(Method::POST, "/api/v2/instances")
            .bearer_auth(bearer),
        s.request(Method::POST, "/api/v2/instances")
            .bearer_auth(&refreshed),
        s.request(Method::POST, "/api/v2/instances")
            .header("mc-api-key", &key),
    ];
    for rb in retries {
        let r = create(rb).await;
        assert_eq!(r.headers()["idempotent-replayed"], "true");
        assert_eq!(accepted_task(r).await, task);
    }

    // Another principal's same key is a key of its own.
    let root = s.root_org().await;
    s.create_user(&root, "other", &["admin"]).await;
    let r = create(s.as_user(Method::POST, "/api/v2/instances", "other")).await;
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_ne!(accepted_task(r).await, task);

    // A bad credential with a key is refused, and claims nothing.
    let r = create(
        s.request(Method::POST, "/api/v2/instances")
            .basic_auth(ADMIN_LOGIN, Some("wrong-password")),
    )
    .await;
    assert_error(r, 401, 1001).await;
    let list = s.admin_client().instances(&[]).await.unwrap();
    assert_eq!(list.data.len(), 2);
}

#[tokio::test]
async fn a_multipart_upload_checks_its_hash_in_any_order_and_takes_one_file() {
    let s = TestServer::set_up().await;
    let content = b"the minutes".to_vec();
    let right = hex::encode(Sha256::digest(&content));
    let wrong = hex::encode(Sha256::digest(b"something else"));
    let send = |form: reqwest::multipart::Form| s.admin(Method::POST, FILES).multipart(form).send();
    let file = || reqwest::multipart::Part::bytes(content.clone()).file_name("minutes.txt");

    // A hash after the file that disagrees with it: refused, nothing kept.
    let form = reqwest::multipart::Form::new()
        .part("file", file())
        .text("sha256", wrong.clone());
    let e = assert_error(send(form).await.unwrap(), 422, 3001).await;
    assert_eq!(e["errors"][0]["context"]["field"], "sha256", "{e}");
    // Before the file, as before.
    let form = reqwest::multipart::Form::new()
        .text("sha256", wrong)
        .part("file", file());
    assert_error(send(form).await.unwrap(), 422, 3001).await;
    // Two files: which one would be notarized? Neither.
    let form = reqwest::multipart::Form::new().part("file", file()).part(
        "file",
        reqwest::multipart::Part::bytes(b"other".to_vec()).file_name("b"),
    );
    let e = assert_error(send(form).await.unwrap(), 422, 3001).await;
    assert_eq!(e["errors"][0]["context"]["field"], "file", "{e}");
    assert_eq!(stored_files(&s).await, 0);
    let incoming: Vec<_> = std::fs::read_dir(s.data_dir().join("notary/incoming"))
        .unwrap()
        .collect();
    assert!(incoming.is_empty(), "left behind: {incoming:?}");

    // A right hash and a name after the file are both taken.
    let form = reqwest::multipart::Form::new()
        .part("file", file())
        .text("sha256", right.clone())
        .text("name", "renamed.txt");
    let r = send(form).await.unwrap();
    let f = json_of(r, 201).await["data"].clone();
    assert_eq!(f["sha256"], right);
    assert_eq!(f["name"], "renamed.txt");
    assert_eq!(stored_files(&s).await, 1);
}

#[tokio::test]
async fn userinfo_answers_only_a_users_token_with_openid() {
    let s = TestServer::set_up().await;
    let userinfo = |rb: reqwest::RequestBuilder| async move { rb.send().await.unwrap() };
    let challenge = |r: &reqwest::Response| {
        r.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };

    // A user's token with openid, by GET and by POST.
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid").await;
    let user_token = t["access_token"].as_str().unwrap().to_owned();
    for method in [Method::GET, Method::POST] {
        let r = userinfo(
            s.request(method, "/api/2/idp/userinfo")
                .bearer_auth(&user_token),
        )
        .await;
        assert_eq!(json_of(r, 200).await["preferred_username"], ADMIN_LOGIN);
    }

    // A client's own token is not a user dressed up.
    let (_, _, client) = client_token(&s).await;
    let r = userinfo(
        s.request(Method::GET, "/api/2/idp/userinfo")
            .bearer_auth(&client),
    )
    .await;
    assert!(challenge(&r).contains("error=\"invalid_token\""), "{r:?}");
    assert_error(r, 401, 1001).await;

    // A user's token without openid (narrowed on refresh).
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid offline_access").await;
    let narrowed = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "offline_access"),
        ],
        None,
    )
    .await;
    let narrowed = json_of(narrowed, 200).await;
    assert!(!narrowed["scope"].as_str().unwrap().contains("openid"));
    let r = userinfo(
        s.request(Method::GET, "/api/2/idp/userinfo")
            .bearer_auth(narrowed["access_token"].as_str().unwrap()),
    )
    .await;
    assert!(
        challenge(&r).contains("error=\"insufficient_scope\""),
        "{r:?}"
    );
    assert_error(r, 403, 1003).await;

    // A password is not a token; neither is nothing.
    let r = userinfo(s.admin(Method::GET, "/api/2/idp/userinfo")).await;
    assert!(challenge(&r).starts_with("Bearer"), "{r:?}");
    assert_error(r, 401, 1000).await;
    let r = userinfo(s.request(Method::GET, "/api/2/idp/userinfo")).await;
    assert_error(r, 401, 1000).await;
}

#[tokio::test]
async fn a_request_id_that_could_forge_a_log_line_is_replaced() {
    let s = TestServer::set_up().await;
    let echoed = |value: HeaderValue| {
        let s = &s;
        async move {
            let r = s
                .request(Method::GET, "/healthz")
                .header("x-request-id", value)
                .send()
                .await
                .unwrap();
            r.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(echoed(HeaderValue::from_static("abc-123")).await, "abc-123");
    for bad in [
        HeaderValue::from_static("a\tb request_id=forged"),
        HeaderValue::from_str(&"x".repeat(129)).unwrap(),
        HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap(),
    ] {
        let id = echoed(bad.clone()).await;
        assert_ne!(id.as_bytes(), bad.as_bytes());
        uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
    }
}

#[tokio::test]
async fn the_data_directory_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Left readable to all by an earlier install, or by hand.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("left-by-hand"), b"x").unwrap();
    std::fs::set_permissions(
        dir.path().join("left-by-hand"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let data = dir.path().to_owned();
    let s = TestServer::start_with(move |c| {
        c.data_dir = data.clone();
        if crate::support::postgres_admin_url().is_none() {
            c.database_url = nephele::config::sqlite_url(&data);
        }
    })
    .await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);
    let r = s
        .admin(Method::POST, &format!("{FILES}?name=a.txt"))
        .header("content-type", "application/octet-stream")
        .body("content")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    s.app().notarize_pending().await.unwrap();

    let mut seen = Vec::new();
    let mut pending = vec![dir.path().to_owned()];
    while let Some(folder) = pending.pop() {
        let mode = std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", folder.display());
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                let mode = meta.permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", entry.path().display());
                seen.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    // What the check looked at: the notary's content (named by its id),
    // the file left readable and, on SQLite, the database with its WAL
    // and shared memory.
    assert!(seen.iter().any(|n| n == "left-by-hand"), "{seen:?}");
    assert!(
        seen.iter().any(|n| uuid::Uuid::parse_str(n).is_ok()),
        "{seen:?}"
    );
    if crate::support::postgres_admin_url().is_none() {
        for name in ["nephele.db", "nephele.db-wal", "nephele.db-shm"] {
            assert!(seen.iter().any(|n| n == name), "{seen:?}");
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn names_that_would_read_as_another_are_refused() {
    let s = TestServer::set_up().await;
    let client = s.admin_client();
    let orgs = || async { client.organizations(None::<&str>).await.unwrap().data.len() };
    let before = orgs().await;
    // "gro.emca" reversed on screen by U+202E: it shows as "acme.org".
    for name in [
        "\u{202E}gro.emca",
        "admin\u{200B}",
        "a\u{2066}b\u{2069}",
        "\u{FEFF}x",
    ] {
        let r = s
            .admin_json(
                Method::POST,
                "/api/v2/organizations",
                &json!({"name": name}),
            )
            .await;
        let e = assert_error(r, 422, 3001).await;
        assert_eq!(e["errors"][0]["context"]["field"], "name", "{e}");
        let r = s
            .admin_json(
                Method::POST,
                "/api/v2/instances",
                &json!({"name": name, "image": "debian-12"}),
            )
            .await;
        assert_error(r, 422, 3001).await;
        let r = s
            .admin(Method::POST, &format!("{FILES}?name={}", urlencode(name)))
            .header("content-type", "application/octet-stream")
            .body("x")
            .send()
            .await
            .unwrap();
        assert_error(r, 422, 3001).await;
    }
    assert_eq!(orgs().await, before);
    assert_eq!(stored_files(&s).await, 0);
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Sends raw bytes on a new connection; what the server answers until it
/// closes the connection (bounded: the test fails past `within`).
async fn raw_exchange(s: &TestServer, request: &[u8], within: std::time::Duration) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = s.url.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    conn.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(within, conn.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection by itself")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

/// The root admin's HTTP Basic credentials, for raw requests.
fn admin_basic() -> String {
    base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{ADMIN_LOGIN}:{ADMIN_PASSWORD}"),
    )
}

fn short_timeouts(c: &mut nephele::config::ServerConfig) {
    c.limits.header_read_timeout = std::time::Duration::from_secs(1);
    c.limits.body_read_timeout = std::time::Duration::from_secs(1);
}

#[tokio::test]
async fn slow_clients_cannot_hold_a_connection() {
    let s = TestServer::start_with(short_timeouts).await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    assert_eq!(r.status(), 201);
    let within = std::time::Duration::from_secs(15);

    // Headers that never end: the connection is closed.
    raw_exchange(
        &s,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n",
        within,
    )
    .await;

    // A kept-alive connection that asks nothing more is closed too.
    let answer = raw_exchange(&s, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", within).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // A body that stops arriving: 408 in the envelope, with a request id.
    let basic = admin_basic();
    let request = format!(
        "POST /api/v2/organizations HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":"
    );
    let answer = raw_exchange(&s, request.as_bytes(), within).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("x-request-id: "),
        "{answer}"
    );
    assert!(answer.contains("\"code\":3000"), "{answer}");
}

#[tokio::test]
async fn oversized_requests_get_the_envelope_and_a_request_id() {
    let s = TestServer::set_up().await;
    let check = |r: reqwest::Response, status: u16| async move {
        assert!(r.headers().contains_key("x-request-id"));
        assert_error(r, status, 3000).await;
    };
    let long = format!("/api/v2/organizations?name={}", "x".repeat(9000));
    check(s.admin(Method::GET, &long).send().await.unwrap(), 414).await;
    // More than 100 fields: the HTTP parser's own (bare) 431.
    let mut rb = s.admin(Method::GET, "/api/v2/organizations");
    for i in 0..150 {
        rb = rb.header(format!("x-filler-{i}"), "y");
    }
    assert_eq!(rb.send().await.unwrap().status(), 431);
    let big = s
        .admin(Method::GET, "/api/v2/organizations")
        .header("x-big", "z".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    check(big, 431).await;

    // A 10 GB body is refused on its declared length, before it is sent.
    let within = std::time::Duration::from_secs(15);
    let basic = admin_basic();
    for (path, kind) in [
        ("/api/v2/organizations", "application/json"),
        (FILES, "application/octet-stream"),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\
             Content-Type: {kind}\r\nContent-Length: 10737418240\r\nConnection: close\r\n\r\n"
        );
        let answer = raw_exchange(&s, request.as_bytes(), within).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{path}: {answer}");
        assert!(answer.contains("\"code\":3000"), "{path}: {answer}");
    }
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_at_once() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = TestServer::start_with(|c| c.limits.max_connections_per_address = 3).await;
    let addr = s.url.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    // The fourth from the same address is closed without an answer.
    let mut fourth = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let _ = fourth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(15),
        fourth.read_to_end(&mut answer),
    )
    .await
    .expect("closed by the server");
    assert!(read.is_err() || answer.is_empty(), "{answer:?}");
    // One of the three closes: its place is free again.
    drop(held.pop());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        match reqwest::Client::new()
            .get(format!("{}/healthz", s.url))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => break,
            _ => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the place never came back"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

/// An access token signed with the server's own current access key:
/// what someone who stole the key could make.
fn forged_with_the_server_key(s: &TestServer, claims: &serde_json::Value) -> (String, String) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let keys = s.app().key_ring().keys().unwrap();
    let key = &keys.access.key;
    let kid = key.kid().to_owned();
    let header = json!({"alg": "ES256", "typ": "at+jwt", "kid": kid});
    let token = key
        .sign(
            &b64.encode(header.to_string()),
            claims.to_string().as_bytes(),
        )
        .unwrap();
    (token, kid)
}

#[tokio::test]
async fn a_verified_token_never_outlives_its_key_or_the_lifetime() {
    use base64::Engine;
    use sqlx::Connection;
    let s = TestServer::set_up().await;
    let t = password_tokens(&s, ADMIN_LOGIN, ADMIN_PASSWORD, "openid").await;
    let payload = t["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap();
    let mut claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let me = |token: &str| {
        s.request(Method::GET, "/api/v2/me")
            .bearer_auth(token)
            .send()
    };

    // Longer-lived than any token this server makes: refused.
    let now = s.app().clock().now().timestamp();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 3600 + 1);
    claims["jti"] = json!("forged-long");
    let (long, _) = forged_with_the_server_key(&s, &claims);
    assert_error(me(&long).await.unwrap(), 401, 1001).await;

    // Within the lifetime and used once, so its verification is cached.
    claims["exp"] = json!(now + 3600);
    claims["jti"] = json!("forged-cached");
    let (cached, kid) = forged_with_the_server_key(&s, &claims);
    json_of(me(&cached).await.unwrap(), 200).await;
    // The key is rotated away and leaves the key set: the cached
    // verification goes with it.
    let r = s
        .admin(Method::POST, "/api/2/idp/keys/rotate")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    sqlx::any::install_default_drivers();
    let mut db = sqlx::AnyConnection::connect(&s.database_url).await.unwrap();
    sqlx::query("UPDATE signing_keys SET expires_at = 1, retired_at = 1 WHERE id = $1")
        .bind(&kid)
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let keys = s.app().key_ring().refresh().await.unwrap();
    assert!(keys.access_verifier(&kid).is_none());
    assert_error(me(&cached).await.unwrap(), 401, 1001).await;
}

#[tokio::test]
async fn a_users_tokens_die_with_the_client_they_came_through() {
    use crate::identity::create_client;
    let s = TestServer::set_up().await;
    let me = |token: String| {
        let s = &s;
        async move {
            s.request(Method::GET, "/api/v2/me")
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
        }
    };
    let user_tokens = |id: String, secret: String| {
        let s = &s;
        async move {
            let r = token(
                s,
                &[
                    ("grant_type", "password"),
                    ("username", ADMIN_LOGIN),
                    ("password", ADMIN_PASSWORD),
                    ("scope", "openid offline_access"),
                ],
                Some((&id, &secret)),
            )
            .await;
            json_of(r, 200).await
        }
    };
    let refresh = |t: &serde_json::Value, id: String, secret: String| {
        let s = &s;
        let rt = t["refresh_token"].as_str().unwrap().to_owned();
        async move {
            token(
                s,
                &[("grant_type", "refresh_token"), ("refresh_token", &rt)],
                Some((&id, &secret)),
            )
            .await
        }
    };
    let access = |t: &serde_json::Value| t["access_token"].as_str().unwrap().to_owned();

    // Disabled, then enabled again: what was issued before stays dead.
    let (id, secret) = create_client(&s, &api_client_body("web")).await;
    let before = user_tokens(id.clone(), secret.clone()).await;
    json_of(me(access(&before)).await, 200).await;
    let client = s.admin_client();
    let set_status = |status: &'static str| {
        let (client, id) = (&client, id.clone());
        async move {
            let update = api::ApiClientUpdate {
                status: Some(status.into()),
                ..Default::default()
            };
            let c = client.update_api_client(&id, &update).await.unwrap();
            assert_eq!(c.status, status);
        }
    };
    set_status("disabled").await;
    assert_error(me(access(&before)).await, 401, 1002).await;
    set_status("enabled").await;
    assert_error(me(access(&before)).await, 401, 1002).await;
    let r = refresh(&before, id.clone(), secret.clone()).await;
    assert_eq!(r.status(), 400, "a refresh token from before the disabling");
    // What is issued after re-enabling works.
    let after = user_tokens(id.clone(), secret.clone()).await;
    json_of(me(access(&after)).await, 200).await;

    // A secret reset ends the tokens issued with the old secret.
    let reset = client.reset_api_client_secret(&id).await.unwrap();
    let new_secret = reset.client_secret.unwrap();
    assert_error(me(access(&after)).await, 401, 1002).await;
    let r = refresh(&after, id.clone(), new_secret.clone()).await;
    assert_eq!(r.status(), 400, "a refresh token from before the reset");
    let fresh = user_tokens(id.clone(), new_secret.clone()).await;
    json_of(me(access(&fresh)).await, 200).await;

    // Deleted: its tokens are refused.
    client.delete_api_client(&id).await.unwrap();
    assert_error(me(access(&fresh)).await, 401, 1002).await;
}

#[tokio::test]
async fn a_quota_holds_for_the_whole_subtree() {
    let s = TestServer::set_up().await;
    let reseller = s.create_org("Reseller", None).await;
    s.create_user(&reseller, "reseller-admin", &["admin"]).await;
    let client = s.admin_client();
    let reseller_admin = s.client_as("reseller-admin");
    let vcpus = |vcpus| api::QuotaWrite {
        vcpus: Some(vcpus),
        ..Default::default()
    };
    let limits = api::QuotaWrite {
        instances: Some(4),
        ..vcpus(4)
    };
    client.set_quota(&reseller, &limits).await.unwrap();

    // The reseller's admin makes two sub-organizations with no quota of
    // their own and fills both at once: together they get the reseller's 4.
    let below_reseller = |name: &str| api::OrganizationCreate {
        name: Some(name.into()),
        parent_id: Some(reseller.parse().unwrap()),
    };
    let mut shadows = Vec::new();
    for name in ["shadow-a", "shadow-b"] {
        let org = reseller_admin
            .create_organization(&below_reseller(name))
            .await
            .unwrap();
        shadows.push(org.id.to_string());
    }
    let creates = (0..10).map(|i| {
        let (org, reseller_admin) = (shadows[i % 2].clone(), &reseller_admin);
        async move {
            let vm = api::InstanceCreate {
                name: Some(format!("vm-{i}")),
                image: Some("debian-12".into()),
                cpu: Some(1),
                ..Default::default()
            };
            reseller_admin.create_instance(Some(org), &vm).await
        }
    });
    let results = futures::future::join_all(creates).await;
    let accepted = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(accepted, 4, "{results:?}");
    for refused in results.iter().filter(|r| r.is_err()) {
        let Err(nephele_client::Error::Api { status, errors }) = refused else {
            panic!("{refused:?}");
        };
        assert_eq!(*status, 400, "{errors:?}");
        assert_eq!(errors[0].code, 3004, "{errors:?}");
        assert_eq!(errors[0].context["limitedBy"], "ancestor", "{errors:?}");
    }
    let usage = client.quota(&reseller).await.unwrap().usage;
    assert_eq!((usage.instances, usage.vcpus), (4, 4));
    // Which sibling got how many is the race's; together they got 4.
    let mut own = Vec::new();
    for shadow in &shadows {
        let q = client.quota(shadow).await.unwrap();
        assert_eq!(q.instances, None, "{q:?}");
        own.push(q.usage.vcpus);
    }
    assert_eq!(own.iter().sum::<i64>(), 4, "{own:?}");

    // A sub-organization's own quota stays within what its parent leaves.
    let third = reseller_admin
        .create_organization(&below_reseller("shadow-c"))
        .await
        .unwrap()
        .id;
    let errors = assert_refused(reseller_admin.set_quota(third, &vcpus(1)).await, 422, 3001);
    assert_eq!(errors[0].context["field"], "vcpus");
    // The reseller is full: a sibling may keep what it uses, no more.
    reseller_admin
        .set_quota(&shadows[0], &vcpus(own[0]))
        .await
        .unwrap();
    let over = reseller_admin
        .set_quota(&shadows[0], &vcpus(own[0] + 1))
        .await;
    assert_refused(over, 422, 3001);

    // A resize in a sub-organization counts against the reseller's quota.
    let task = results
        .iter()
        .find_map(|r| r.as_ref().ok())
        .unwrap()
        .task_id;
    let first = s.ended_task(&task.to_string()).await.resource_id;
    s.ended(client.instance_action(&first, "stop").await).await;
    let resize = api::InstanceUpdate {
        cpu: Some(2),
        ..Default::default()
    };
    let errors = assert_refused(client.update_instance(&first, &resize).await, 400, 3004);
    assert_eq!(errors[0].context["quota"], "vcpus");

    // An organization with instances cannot be moved in to go over it.
    let outside = s.create_org("Outside", None).await;
    s.create_instance(&outside, "out-1").await;
    let move_in = api::OrganizationUpdate {
        parent_id: Some(reseller.parse().unwrap()),
        ..Default::default()
    };
    let moved = client.patch_organization(&outside, &move_in).await;
    assert_refused(moved, 400, 3004);
    let org = client.organization(&outside).await.unwrap();
    assert_ne!(org.parent_id.map(|p| p.to_string()), Some(reseller));
    s.stop().await;
}

#[tokio::test]
async fn a_burst_of_guesses_on_two_nodes_gets_no_more_checks_than_the_limit() {
    let s = TestServer::set_up().await;
    let peer = s.peer().await;
    let root = s.root_org().await;
    s.create_user(&root, "victim", &["viewer"]).await;
    let guesses = (0..29).map(|i| {
        let node = if i % 2 == 0 { &s } else { &peer };
        async move {
            let r = token(
                node,
                &[
                    ("grant_type", "password"),
                    ("username", "victim"),
                    ("password", &format!("guess-{i}")),
                ],
                None,
            )
            .await;
            r.status().as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 400).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (5, 24), "{statuses:?}");
    // The right password now is refused too, on either node.
    for node in [&s, &peer] {
        let r = token(
            node,
            &[
                ("grant_type", "password"),
                ("username", "victim"),
                ("password", USER_PASSWORD),
            ],
            None,
        )
        .await;
        assert_eq!(r.status().as_u16(), 429);
    }
    peer.stop().await;
    s.stop().await;
}

#[tokio::test]
async fn a_burst_of_sign_ins_with_the_right_password_is_checked_once() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    s.create_user(&root, "busy", &["viewer"]).await;
    let grants = (0..12).map(|i| {
        let s = &s;
        async move {
            if i % 2 == 0 {
                token(
                    s,
                    &[
                        ("grant_type", "password"),
                        ("username", "busy"),
                        ("password", USER_PASSWORD),
                    ],
                    None,
                )
                .await
                .status()
                .as_u16()
            } else {
                s.as_user(Method::GET, "/api/v2/me", "busy")
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
        }
    });
    let statuses = futures::future::join_all(grants).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    s.stop().await;
}

#[tokio::test]
async fn an_attacker_cannot_lock_a_user_out_from_elsewhere() {
    let s = TestServer::start_with(|c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    json_of(s.post("/occm/setup/init", &setup_body()).await, 201).await;
    let me = |from: &str, password: &str| {
        s.request(Method::GET, "/api/v2/me")
            .header("x-forwarded-for", from)
            .basic_auth(ADMIN_LOGIN, Some(password))
            .send()
    };
    // The root admin signs in from home once.
    json_of(me("198.51.100.20", ADMIN_PASSWORD).await.unwrap(), 200).await;

    // One address guessing on and on locks the admin for itself only.
    for i in 0..12 {
        let r = me("203.0.113.5", &format!("guess-{i}")).await.unwrap();
        let status = r.status().as_u16();
        assert!(status == 401 || status == 429, "{status}");
        assert_eq!(status == 429, i >= 5, "attempt {i}");
    }
    let r = me("203.0.113.5", ADMIN_PASSWORD).await.unwrap();
    assert_error(r, 429, 1004).await;
    json_of(me("198.51.100.20", ADMIN_PASSWORD).await.unwrap(), 200).await;
    json_of(me("198.51.100.21", ADMIN_PASSWORD).await.unwrap(), 200).await;

    // Many addresses together lock the account — for addresses it was
    // never signed in from. From home the admin still gets in, slowed.
    for host in 10..13 {
        for i in 0..5 {
            let r = me(&format!("203.0.113.{host}"), &format!("guess-{i}"))
                .await
                .unwrap();
            assert_error(r, 401, 1001).await;
        }
    }
    let r = me("192.0.2.99", ADMIN_PASSWORD).await.unwrap();
    assert_error(r, 429, 1004).await;
    let started = std::time::Instant::now();
    json_of(me("198.51.100.20", ADMIN_PASSWORD).await.unwrap(), 200).await;
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "not slowed"
    );
    s.stop().await;
}

/// A session of `login`: its access and refresh tokens.
async fn session(s: &TestServer, login: &str, password: &str) -> (String, String) {
    let t = password_tokens(s, login, password, "openid offline_access").await;
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// The status `GET /api/v2/me` answers an access token with.
async fn me_with(s: &TestServer, access: &str) -> u16 {
    s.request(Method::GET, "/api/v2/me")
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The status a refresh grant answers.
async fn refresh_with(s: &TestServer, refresh: &str) -> u16 {
    token(
        s,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        None,
    )
    .await
    .status()
    .as_u16()
}

/// Asserts that a session is over on both nodes: its access token is
/// refused (on the other node once its one-second memory of the user has
/// passed) and its refresh token is dead.
async fn assert_ended(s: &TestServer, peer: &TestServer, (access, refresh): &(String, String)) {
    assert_eq!(me_with(s, access).await, 401);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while me_with(peer, access).await != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "the peer still accepts the token"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(refresh_with(s, refresh).await, 400);
    assert_eq!(refresh_with(peer, refresh).await, 400);
}

#[tokio::test]
async fn a_users_sessions_end_when_they_should() {
    let s = TestServer::set_up().await;
    let peer = s.peer().await;
    let root = s.root_org().await;
    let alice = s.create_user(&root, "alice", &["viewer"]).await;
    let admin = s.admin_id().await;

    // Alice changes her own password: both her sessions end, a rotated
    // refresh token with them; the new password starts a new one.
    let first = session(&s, "alice", USER_PASSWORD).await;
    let (_, to_rotate) = session(&s, "alice", USER_PASSWORD).await;
    let rotated = token(
        &s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &to_rotate),
        ],
        None,
    )
    .await;
    let rotated = json_of(rotated, 200).await;
    let second = (
        rotated["access_token"].as_str().unwrap().to_owned(),
        rotated["refresh_token"].as_str().unwrap().to_owned(),
    );
    for (access, _) in [&first, &second] {
        assert_eq!(me_with(&peer, access).await, 200);
    }
    let own_change = api::PasswordChange {
        current_password: Some(nephele_common::Secret::new(USER_PASSWORD)),
        password: Some(nephele_common::Secret::new("a-new-password-1")),
    };
    s.client_as("alice")
        .change_password(&alice, &own_change)
        .await
        .unwrap();
    assert_ended(&s, &peer, &first).await;
    assert_ended(&s, &peer, &second).await;
    let third = session(&s, "alice", "a-new-password-1").await;
    assert_eq!(me_with(&peer, &third.0).await, 200);

    // An introspecting client sees the session live, then ended.
    let (client, secret) = create_client(&s, &api_client_body("resource-server")).await;
    let active = |token: String| {
        let (s, client, secret) = (&s, client.clone(), secret.clone());
        async move {
            let r = s
                .request(Method::POST, "/api/2/idp/introspect")
                .basic_auth(client, Some(secret))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            json_of(r, 200).await["active"].clone()
        }
    };
    assert_eq!(active(third.0.clone()).await, json!(true));
    assert_eq!(active(third.1.clone()).await, json!(true));

    // A viewer cannot end the admin's sessions; an admin ends Alice's.
    let as_alice = s.client_with_token(&third.0);
    assert_refused(as_alice.revoke_sessions(&admin).await, 403, 1003);
    let client = s.admin_client();
    client.revoke_sessions(&alice).await.unwrap();
    assert_ended(&s, &peer, &third).await;
    assert_eq!(active(third.0.clone()).await, json!(false));
    assert_eq!(active(third.1.clone()).await, json!(false));

    // An admin's reset of her password ends them too, and so does her
    // deletion.
    let fourth = session(&s, "alice", "a-new-password-1").await;
    let reset = api::PasswordChange {
        password: Some(nephele_common::Secret::new("reset-by-admin-1")),
        ..Default::default()
    };
    client.change_password(&alice, &reset).await.unwrap();
    assert_ended(&s, &peer, &fourth).await;
    let fifth = session(&s, "alice", "reset-by-admin-1").await;
    assert_eq!(me_with(&peer, &fifth.0).await, 200);
    client.delete_user(&alice).await.unwrap();
    assert_ended(&s, &peer, &fifth).await;
    peer.stop().await;
    s.stop().await;
}
