//! `/api/v2/organizations`, and through it the resource conventions:
//! pagination, ETag/If-Match, Prefer, XML lists.

use crate::support::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn requests_without_valid_credentials_are_401() {
    let s = TestServer::set_up().await;
    let r = s.get("/api/v2/organizations").await;
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("Bearer"));
    assert_error(r, 401, 1000).await;
    for header in ["Basic !!!", "Basic YWRtaW4=", "Bearer x", "Digest abc"] {
        let r = s
            .request(Method::GET, "/api/v2/organizations")
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_error(r, 401, 1001).await;
    }
    let r = s
        .request(Method::GET, "/api/v2/organizations")
        .basic_auth(ADMIN_LOGIN, Some("wrong-password"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, 1001).await;
    s.stop().await;
}

#[tokio::test]
async fn lists_page_through_the_subtree() {
    let s = TestServer::set_up().await;
    for i in 0..4 {
        s.create_org(&format!("Child {i}"), None).await;
    }
    let mut seen = Vec::new();
    let mut path = "/api/v2/organizations?limit=2".to_owned();
    loop {
        let r = s.admin(Method::GET, &path).send().await.unwrap();
        let body = json_of(r, 200).await;
        let items = body["data"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|o| o["name"].as_str().unwrap().to_owned()));
        match body["nextPage"].as_str() {
            Some(token) => path = format!("/api/v2/organizations?limit=2&pageToken={token}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Acme", "Child 0", "Child 1", "Child 2", "Child 3"]);
    let r = s
        .admin(
            Method::GET,
            "/api/v2/organizations?limit=5000&pageToken=garbage",
        )
        .send()
        .await
        .unwrap();
    let body = json_of(r, 422).await;
    assert_eq!(body["errors"].as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn lists_render_as_xml_with_singular_items() {
    let s = TestServer::set_up().await;
    s.create_org("Child", None).await;
    let r = s
        .admin(Method::GET, "/api/v2/organizations.xml?limit=1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    insta::assert_snapshot!("organization_list_xml", normalize(&r.text().await.unwrap()));
    let r = s
        .admin(Method::GET, "/api/v2/organizations?limit=1")
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    insta::assert_snapshot!("organization_list_json", normalize(&text));
    s.stop().await;
}

#[tokio::test]
async fn etags_and_if_match_guard_updates() {
    let s = TestServer::set_up().await;
    let org = s.create_org("Child", None).await;
    let path = format!("/api/v2/organizations/{org}");
    let r = s.admin(Method::GET, &path).send().await.unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "\"1\"");

    let stale = s
        .admin(Method::PUT, &path)
        .header("if-match", "\"7\"")
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_error(stale, 412, 2021).await;
    let broken = s
        .admin(Method::PATCH, &path)
        .header("if-match", "not-an-etag")
        .json(&json!({"name": "Renamed"}))
        .send()
        .await
        .unwrap();
    assert_error(broken, 400, 3000).await;
    // Nothing changed.
    let client = s.admin_client();
    assert_eq!(client.organization(&org).await.unwrap().name, "Child");

    let ok = s
        .admin(Method::PATCH, &path)
        .header("if-match", &etag)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"name":"Renamed"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.headers()["etag"], "\"2\"");
    let body = json_of(ok, 200).await;
    assert_eq!(body["data"]["name"], "Renamed");
    assert_eq!(body["data"]["version"], 2);
    // The old ETag no longer matches a delete.
    let del = s
        .admin(Method::DELETE, &path)
        .header("if-match", &etag)
        .send()
        .await
        .unwrap();
    assert_error(del, 412, 2021).await;
    client.delete_organization(&org).await.unwrap();
    assert_refused(client.organization(&org).await, 404, 2000);
    s.stop().await;
}

#[tokio::test]
async fn prefer_return_minimal_gives_204() {
    let s = TestServer::set_up().await;
    let org = s.create_org("Child", None).await;
    let path = format!("/api/v2/organizations/{org}");
    let r = s
        .admin(Method::PUT, &path)
        .header("prefer", "return=minimal")
        .json(&json!({"name": "Quiet"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["preference-applied"], "return=minimal");
    assert_eq!(r.headers()["etag"], "\"2\"");
    assert!(r.text().await.unwrap().is_empty());
    s.stop().await;
}

#[tokio::test]
async fn names_are_validated_and_unique_among_siblings() {
    let s = TestServer::set_up().await;
    // A 201 says where the new organization is.
    let r = s
        .admin(Method::POST, "/api/v2/organizations")
        .json(&json!({"name": "Child"}))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/api/v2/organizations/"));
    json_of(r, 201).await;
    let r = s
        .admin(Method::POST, "/api/v2/organizations")
        .json(&json!({"name": "child"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2020).await;
    let r = s
        .admin(Method::POST, "/api/v2/organizations")
        .json(&json!({"name": "bad\u{0007}name"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, 422, 3001).await;
    assert_eq!(body["errors"][0]["context"]["field"], "name");
    let r = s
        .admin(Method::PUT, "/api/v2/organizations/not-a-uuid")
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;
    s.stop().await;
}

#[tokio::test]
async fn an_organization_with_children_cannot_be_deleted() {
    let s = TestServer::set_up().await;
    let parent = s.create_org("Parent", None).await;
    s.create_org("Kid", Some(&parent)).await;
    let deleted = s.admin_client().delete_organization(&parent).await;
    assert_refused(deleted, 409, 2012);
    s.stop().await;
}

#[tokio::test]
async fn idempotent_creation_returns_the_same_organization() {
    let s = TestServer::set_up().await;
    let send = || {
        s.admin(Method::POST, "/api/v2/organizations")
            .header("idempotency-key", "k1")
            .json(&json!({"name": "Once"}))
            .send()
    };
    let a = json_of(send().await.unwrap(), 201).await;
    let b = json_of(send().await.unwrap(), 201).await;
    assert_eq!(a, b);
    let list = s.admin_client().organizations(None::<&str>).await.unwrap();
    assert_eq!(list.data.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn acting_in_an_unknown_organization_is_404() {
    let s = TestServer::set_up().await;
    let missing = uuid::Uuid::now_v7();
    let listed = s.admin_client().organizations(Some(missing)).await;
    assert_refused(listed, 404, 2000);
    let r = s
        .admin(
            Method::POST,
            &format!("/api/v2/organizations?org_id={missing}"),
        )
        .json(&json!({"name": "Orphan"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;
    s.stop().await;
}
