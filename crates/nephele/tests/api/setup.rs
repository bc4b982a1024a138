//! First-run setup (SPEC §2).

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn a_new_server_is_gated_until_set_up() {
    let s = TestServer::start().await;
    let status = json_of(s.get("/occm/setup/status").await, 200).await;
    assert_eq!(status, json!({"data": {"initialized": false}}));
    for path in ["/api/v2/organizations", "/nowhere"] {
        let body = assert_error(s.get(path).await, 420, 1100).await;
        assert_eq!(
            body["errors"][0]["message"],
            "Nephele has not been set up. You must set up Nephele using the API call /occm/setup/init"
        );
    }
    // Operations, and the API's documentation: one reads how to set up
    // before setting up.
    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/docs",
        "/api/openapi.json",
    ] {
        assert_eq!(s.get(path).await.status(), 200, "{path}");
    }
    let spec = json_of(s.get("/api/openapi.json").await, 200).await;
    assert!(spec["paths"]["/occm/setup/init"].is_object());
    s.stop().await;
}

#[tokio::test]
async fn setup_creates_the_root_organization_and_its_admin_once() {
    let s = TestServer::start().await;
    let r = s.post("/occm/setup/init", &setup_body()).await;
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let body = json_of(r, 201).await;
    let org = &body["data"]["organization"];
    let user = &body["data"]["user"];
    assert_eq!(org["name"], "Acme");
    assert!(org["parentId"].is_null());
    assert_eq!(
        location,
        format!("/api/v2/organizations/{}", org["id"].as_str().unwrap())
    );
    assert_eq!(user["login"], "admin");
    assert_eq!(user["organizationId"], org["id"]);
    assert_eq!(user["roles"], json!(["admin"]));
    let text = body.to_string();
    assert!(
        !text.contains(ADMIN_PASSWORD) && !text.contains("argon2"),
        "no secret in {text}"
    );

    let status = json_of(s.get("/occm/setup/status").await, 200).await;
    assert_eq!(status["data"]["initialized"], true);
    // A second init is a conflict, whatever its body.
    assert_error(s.post("/occm/setup/init", &setup_body()).await, 409, 1101).await;
    assert_error(s.post("/occm/setup/init", &json!({})).await, 409, 1101).await;
    // The gate is open.
    assert_error(s.get("/nowhere").await, 404, 2000).await;
    s.stop().await;
}

#[tokio::test]
async fn a_wrong_setup_token_is_refused_and_changes_nothing() {
    let s = TestServer::start().await;
    let mut body = setup_body();
    body["setupToken"] = json!("not-the-token");
    let r = s.post("/occm/setup/init", &body).await;
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("Basic"));
    assert_error(r, 401, 1001).await;
    let status = json_of(s.get("/occm/setup/status").await, 200).await;
    assert_eq!(status["data"]["initialized"], false);
    s.stop().await;
}

#[tokio::test]
async fn setup_lists_every_bad_field() {
    let s = TestServer::start().await;
    let r = s
        .post(
            "/occm/setup/init",
            &json!({"organization": {"name": " padded"}, "admin": {"email": "nope", "password": "short"}}),
        )
        .await;
    let body = json_of(r, 422).await;
    let mut fields: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["code"], 3001);
            e["context"]["field"].as_str().unwrap().to_owned()
        })
        .collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "admin.email",
            "admin.login",
            "admin.password",
            "organization.name",
            "setupToken"
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn concurrent_inits_have_exactly_one_winner() {
    let s = TestServer::start().await;
    let attempts = (0..8).map(|i| {
        let mut body = setup_body();
        body["admin"]["login"] = json!(format!("admin{i}"));
        body["admin"]["email"] = json!(format!("admin{i}@acme.test"));
        s.request(Method::POST, "/occm/setup/init")
            .json(&body)
            .send()
    });
    let results = futures::future::join_all(attempts).await;
    let statuses: Vec<u16> = results
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 201 || *s == 409),
        "{statuses:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn setup_accepts_an_xml_body() {
    let s = TestServer::start().await;
    let xml = format!(
        "<?xml version=\"1.0\"?><setup><setupToken>{SETUP_TOKEN}</setupToken>\
         <organization><name>Acme &amp; Co</name></organization>\
         <admin><login>admin</login><email>admin@acme.test</email><password>{ADMIN_PASSWORD}</password></admin></setup>"
    );
    let r = s
        .request(Method::POST, "/occm/setup/init")
        .header("content-type", "application/xml")
        .header("accept", "application/xml")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let text = r.text().await.unwrap();
    insta::assert_snapshot!("setup_result_xml", normalize(&text));
    s.stop().await;
}
