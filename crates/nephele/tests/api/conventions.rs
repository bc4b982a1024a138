//! The conventions of SPEC §3, which hold for every route.

use crate::support::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn xml_by_accept_header_and_by_suffix() {
    let s = TestServer::start().await;
    let expected = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><response><data><initialized>false</initialized></data></response>";
    let by_accept = s
        .request(Method::GET, "/occm/setup/status")
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(by_accept.status(), 200);
    assert_eq!(
        by_accept.headers()["content-type"],
        "application/xml; charset=utf-8"
    );
    assert_eq!(by_accept.text().await.unwrap(), expected);
    let by_suffix = s.get("/occm/setup/status.xml").await;
    assert_eq!(by_suffix.text().await.unwrap(), expected);
    // .json wins over Accept.
    let forced = s
        .request(Method::GET, "/occm/setup/status.json")
        .header("accept", "application/xml")
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(forced, 200).await,
        json!({"data": {"initialized": false}})
    );
    s.stop().await;
}

#[tokio::test]
async fn a_browser_gets_json_on_api_paths() {
    let s = TestServer::set_up().await;
    let r = s
        .admin(Method::GET, "/api/v2/me")
        .header(
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(
        json_of(r, 200).await["data"]["principal"]["login"],
        ADMIN_LOGIN
    );
    s.stop().await;
}

#[tokio::test]
async fn errors_are_rendered_in_xml_too() {
    let s = TestServer::set_up().await;
    let r = s.get("/no/such/path.xml").await;
    assert_eq!(r.status(), 404);
    insta::assert_snapshot!("not_found_xml", r.text().await.unwrap());
    let r = s.get("/no/such/path").await;
    insta::assert_json_snapshot!("not_found_json", json_of(r, 404).await);
    s.stop().await;
}

#[tokio::test]
async fn an_accept_header_allowing_neither_is_406() {
    let s = TestServer::start().await;
    let r = s
        .request(Method::GET, "/occm/setup/status")
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_error(r, 406, 3003).await;
    s.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_with_allow() {
    let s = TestServer::set_up().await;
    assert_error(s.get("/api/v2/nothing-here").await, 404, 2000).await;
    let r = s
        .request(Method::DELETE, "/occm/setup/status")
        .send()
        .await
        .unwrap();
    assert!(r.headers()["allow"].to_str().unwrap().contains("GET"));
    let body = assert_error(r, 405, 2001).await;
    assert!(body["errors"][0]["context"]["allowedMethods"].is_array());
    s.stop().await;
}

#[tokio::test]
async fn bodies_of_other_types_are_415() {
    let s = TestServer::start().await;
    let r = s
        .request(Method::POST, "/occm/setup/init")
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, 3002).await;
    s.stop().await;
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let s = TestServer::start_with(|c| c.max_body_bytes = 1024).await;
    let big = json!({"setupToken": "x".repeat(4096)});
    let body = assert_error(s.post("/occm/setup/init", &big).await, 413, 3000).await;
    assert_eq!(body["errors"][0]["context"]["limit"], 1024);
    s.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_400_and_unknown_fields_422() {
    let s = TestServer::start().await;
    let send = |body: &'static [u8], ct: &'static str| {
        s.request(Method::POST, "/occm/setup/init")
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_error(
        send(b"{\"setupToken\":", "application/json").await.unwrap(),
        400,
        3000,
    )
    .await;
    assert_error(
        send(b"\xff\xfe{}", "application/json").await.unwrap(),
        400,
        3000,
    )
    .await;
    // serde would read a struct from an array; a body is an object.
    for not_an_object in [&b"[]"[..], b" [\"t\"]", b"null", b"42"] {
        let r = s
            .request(Method::POST, "/occm/setup/init")
            .header("content-type", "application/json")
            .body(not_an_object)
            .send()
            .await
            .unwrap();
        assert_error(r, 400, 3000).await;
    }
    assert_error(
        send(b"<setup><unclosed></setup>", "application/xml")
            .await
            .unwrap(),
        400,
        3000,
    )
    .await;
    assert_error(
        send(
            b"<!DOCTYPE x [<!ENTITY e \"boom\">]><setup/>",
            "application/xml",
        )
        .await
        .unwrap(),
        400,
        3000,
    )
    .await;
    let wrong_type = assert_error(
        send(b"{\"organization\":{\"name\":42}}", "application/json")
            .await
            .unwrap(),
        400,
        3000,
    )
    .await;
    assert_eq!(
        wrong_type["errors"][0]["context"]["field"],
        "organization.name"
    );
    let unknown = assert_error(
        send(
            b"{\"organization\":{\"nmae\":\"Acme\"}}",
            "application/json",
        )
        .await
        .unwrap(),
        422,
        3001,
    )
    .await;
    assert_eq!(
        unknown["errors"][0]["context"]["field"],
        "organization.nmae"
    );
    // Nothing was set up by any of it.
    let status = json_of(s.get("/occm/setup/status").await, 200).await;
    assert_eq!(status["data"]["initialized"], false);
    s.stop().await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let s = TestServer::start().await;
    let r = s
        .request(Method::GET, "/healthz")
        .header("x-request-id", "my-request-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "my-request-1");
    let r = s.get("/occm/setup/status").await;
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(
        uuid::Uuid::parse_str(&generated).unwrap().to_string(),
        generated
    );
    let r = s.get("/nowhere").await;
    assert!(
        r.headers().contains_key("x-request-id"),
        "errors carry it too"
    );
    s.stop().await;
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response() {
    let s = TestServer::start().await;
    let send = |body: Value| {
        s.request(Method::POST, "/occm/setup/init")
            .header("idempotency-key", "setup-once")
            .json(&body)
            .send()
    };
    let first = send(setup_body()).await.unwrap();
    assert_eq!(first.status(), 201);
    let first_location = first.headers()["location"].clone();
    let first_body = first.text().await.unwrap();
    let again = send(setup_body()).await.unwrap();
    assert_eq!(
        again.status(),
        201,
        "a retry gets the first answer, not a 409"
    );
    assert_eq!(again.headers()["location"], first_location);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.text().await.unwrap(), first_body);
    let mut other = setup_body();
    other["organization"]["name"] = json!("Other");
    assert_error(send(other).await.unwrap(), 422, 3006).await;
    // Without the key, the platform's own answer.
    assert_error(s.post("/occm/setup/init", &setup_body()).await, 409, 1101).await;
    s.stop().await;
}

#[tokio::test]
async fn cors_answers_only_the_origins_configured() {
    const CONSOLE: &str = "https://console.example.com";
    let preflight = |s: &TestServer, origin: &str| {
        s.request(Method::OPTIONS, "/api/v2/instances")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type, idempotency-key",
            )
            .send()
    };
    // Nothing allowed by default.
    let s = TestServer::set_up().await;
    let r = preflight(&s, CONSOLE).await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    s.stop().await;

    let s = TestServer::start_with(|c| c.cors_origins = vec![CONSOLE.to_owned()]).await;
    s.post("/occm/setup/init", &setup_body()).await;
    let r = preflight(&s, CONSOLE).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], CONSOLE);
    assert!(h["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    let allowed = h["access-control-allow-headers"].to_str().unwrap();
    assert!(
        allowed.contains("authorization") && allowed.contains("idempotency-key"),
        "{allowed}"
    );
    assert!(h.contains_key("x-request-id"));
    // The answer itself names the origin and exposes what scripts read.
    let r = s
        .admin(Method::GET, "/api/v2/me")
        .header("origin", CONSOLE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], CONSOLE);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed.contains("x-request-id") && exposed.contains("etag"),
        "{exposed}"
    );
    // Another origin gets nothing.
    let r = preflight(&s, "https://evil.example.net").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    s.stop().await;
}
