//! Users, roles, API keys, `/me`, the audit log and data centers: what
//! each does, who may do it, and what bad input gets.

use crate::support::*;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};

async fn data(r: reqwest::Response, status: u16) -> Value {
    json_of(r, status).await["data"].clone()
}

#[tokio::test]
async fn users_are_created_read_updated_and_deleted() {
    let s = TestServer::set_up().await;
    let child = s.create_org("Child", None).await;
    let r = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/users?org_id={child}"),
            &json!({"login": "Bob", "email": "Bob@Example.test", "password": USER_PASSWORD, "roles": ["viewer"]}),
        )
        .await;
    assert!(r.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/api/v2/users/"));
    let bob = data(r, 201).await;
    assert_eq!(bob["login"], "bob");
    assert_eq!(bob["email"], "bob@example.test");
    assert_eq!(bob["organizationId"], child.as_str());
    assert_eq!(bob["roles"], json!(["viewer"]));
    let text = bob.to_string();
    assert!(!text.contains("password") && !text.contains("argon2"));
    let id = bob["id"].as_str().unwrap();

    let list = data(
        s.admin(Method::GET, &format!("/api/v2/users?org_id={child}"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // The root's own list holds only the root's users.
    let root_list = data(
        s.admin(Method::GET, "/api/v2/users").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(root_list[0]["login"], "admin");
    assert_eq!(root_list.as_array().unwrap().len(), 1);

    let r = s
        .admin(Method::GET, &format!("/api/v2/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"], "\"1\"");
    let patched = data(
        s.admin_json(
            Method::PATCH,
            &format!("/api/v2/users/{id}"),
            &json!({"email": "robert@example.test", "roles": ["operator", "viewer"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(patched["email"], "robert@example.test");
    assert_eq!(patched["login"], "bob");
    assert_eq!(patched["roles"], json!(["operator", "viewer"]));
    assert_eq!(patched["version"], 2);

    // PUT needs every mutable field; read-only fields are unknown fields.
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/users/{id}"),
            &json!({"email": "x@example.test"}),
        )
        .await;
    let body = assert_error(r, 422, 3001).await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["context"]["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["login", "roles"]);
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/users/{id}"),
            &json!({"organizationId": child}),
        )
        .await;
    assert_error(r, 422, 3001).await;

    let r = s
        .admin(Method::DELETE, &format!("/api/v2/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .admin(Method::GET, &format!("/api/v2/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;
    s.stop().await;
}

#[tokio::test]
async fn bad_user_input_is_refused_and_changes_nothing() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    s.create_user(&root, "carol", &["viewer"]).await;
    let post = |body: Value| {
        let s = &s;
        async move { s.admin_json(Method::POST, "/api/v2/users", &body).await }
    };
    // Login and e-mail are unique platform-wide, whatever the case.
    let r = post(json!({"login": "CAROL", "email": "new@example.test", "password": USER_PASSWORD}))
        .await;
    let body = assert_error(r, 409, 2020).await;
    assert_eq!(body["errors"][0]["context"]["field"], "login");
    let r =
        post(json!({"login": "dave", "email": "Carol@example.test", "password": USER_PASSWORD}))
            .await;
    let body = assert_error(r, 409, 2020).await;
    assert_eq!(body["errors"][0]["context"]["field"], "email");
    // Every bad field at once.
    let r = post(json!({"login": "a\u{7}b", "email": "nope", "password": "short", "roles": ["viewer", "wizard"]})).await;
    let body = assert_error(r, 422, 3001).await;
    let fields: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["context"]["field"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fields, ["login", "email", "password", "roles[1]"]);
    let r = post(
        json!({"login": "x".repeat(65), "email": "e@example.test", "password": USER_PASSWORD}),
    )
    .await;
    assert_error(r, 422, 3001).await;
    let users = data(
        s.admin(Method::GET, "/api/v2/users").send().await.unwrap(),
        200,
    )
    .await;
    assert_eq!(users.as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let r = s
        .admin_json(
            Method::POST,
            "/api/v2/roles",
            &json!({"name": "user-manager", "permissions": ["users:read", "users:write", "roles:read", "roles:write"]}),
        )
        .await;
    assert_eq!(data(r, 201).await["builtin"], false);
    s.create_user(&root, "manager", &["user-manager"]).await;

    // Creating a user with a role beyond the manager's own: 403.
    let body = json!({"login": "eve", "email": "eve@example.test", "password": USER_PASSWORD, "roles": ["admin"]});
    let r = s
        .as_user(Method::POST, "/api/v2/users", "manager")
        .json(&body)
        .send()
        .await
        .unwrap();
    let err = assert_error(r, 403, 1003).await;
    assert!(err["errors"][0]["context"]["permission"].is_string());
    // Within its own permissions: fine.
    let body = json!({"login": "eve", "email": "eve@example.test", "password": USER_PASSWORD, "roles": ["user-manager"]});
    let r = s
        .as_user(Method::POST, "/api/v2/users", "manager")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // A custom role beyond its own permissions: 403.
    let r = s
        .as_user(Method::POST, "/api/v2/roles", "manager")
        .json(&json!({"name": "sneaky", "permissions": ["audit:read"]}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    // Nor can it take over the admin: reset its password, demote or delete it.
    let admins = data(
        s.admin(Method::GET, "/api/v2/users").send().await.unwrap(),
        200,
    )
    .await;
    let admin = admins
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .as_user(
            Method::POST,
            &format!("/api/v2/users/{admin}/password"),
            "manager",
        )
        .json(&json!({"password": "taken-over-1"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    let r = s
        .as_user(Method::PATCH, &format!("/api/v2/users/{admin}"), "manager")
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    let r = s
        .as_user(Method::DELETE, &format!("/api/v2/users/{admin}"), "manager")
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    // The admin still signs in with its password.
    let r = s.admin(Method::GET, "/api/v2/me").send().await.unwrap();
    assert_eq!(data(r, 200).await["principal"]["roles"], json!(["admin"]));
    s.stop().await;
}

#[tokio::test]
async fn a_role_applies_in_its_organization_and_below_never_above_or_beside() {
    let s = TestServer::set_up().await;
    let child = s.create_org("Child", None).await;
    let sibling = s.create_org("Sibling", None).await;
    let grandchild = s.create_org("Grandchild", Some(&child)).await;
    let root = s.root_org().await;
    s.create_user(&child, "child-admin", &["admin"]).await;
    let get = |path: String| {
        let s = &s;
        async move {
            s.as_user(Method::GET, &path, "child-admin")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(format!("/api/v2/organizations/{child}")).await, 200);
    assert_eq!(
        get(format!("/api/v2/organizations/{grandchild}")).await,
        200
    );
    assert_eq!(get(format!("/api/v2/organizations/{root}")).await, 404);
    assert_eq!(get(format!("/api/v2/organizations/{sibling}")).await, 404);
    assert_eq!(get(format!("/api/v2/users?org_id={grandchild}")).await, 200);
    assert_eq!(get(format!("/api/v2/users?org_id={root}")).await, 404);
    assert_eq!(get(format!("/api/v2/users?org_id={sibling}")).await, 404);
    // Its own list of organizations is its subtree.
    let r = s
        .as_user(Method::GET, "/api/v2/organizations", "child-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await.as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn organizations_move_but_never_below_themselves() {
    let s = TestServer::set_up().await;
    let a = s.create_org("A", None).await;
    let b = s.create_org("B", Some(&a)).await;
    let c = s.create_org("C", None).await;
    let root = s.root_org().await;
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{a}"),
            &json!({"parentId": b}),
        )
        .await;
    let body = assert_error(r, 409, 2012).await;
    assert_eq!(body["errors"][0]["context"]["field"], "parentId");
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{a}"),
            &json!({"parentId": a}),
        )
        .await;
    assert_error(r, 409, 2012).await;
    // Nor is the root moved anywhere.
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{root}"),
            &json!({"parentId": c}),
        )
        .await;
    assert_error(r, 409, 2012).await;
    // A legal move.
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{b}"),
            &json!({"parentId": c}),
        )
        .await;
    assert_eq!(data(r, 200).await["parentId"], c.as_str());
    let r = s
        .admin(Method::GET, &format!("/api/v2/organizations/{a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await["parentId"], root.as_str());
    s.stop().await;
}

#[tokio::test]
async fn you_cannot_delete_yourself_nor_leave_the_root_without_an_admin() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let second = s.create_user(&root, "second", &["admin"]).await;
    let me = data(
        s.admin(Method::GET, "/api/v2/me").send().await.unwrap(),
        200,
    )
    .await["principal"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/users/{me}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2012).await;
    // Two admins: one may step down; then the other is the last.
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/users/{me}"),
            &json!({"roles": ["viewer"]}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r = s
        .as_user(Method::PATCH, &format!("/api/v2/users/{second}"), "second")
        .json(&json!({"roles": ["operator"]}))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2012).await;
    let r = s
        .as_user(Method::GET, &format!("/api/v2/users/{second}"), "second")
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await["roles"], json!(["admin"]));
    s.stop().await;
}

#[tokio::test]
async fn custom_roles_and_built_in_ones() {
    let s = TestServer::set_up().await;
    let roles = data(
        s.admin(Method::GET, "/api/v2/roles").send().await.unwrap(),
        200,
    )
    .await;
    let names: Vec<_> = roles
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["admin", "operator", "viewer"]);
    let admin_role = roles[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(roles[2]["builtin"], true);
    assert!(roles[2]["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.as_str().unwrap().ends_with(":read")));

    let r = s
        .admin_json(
            Method::POST,
            "/api/v2/roles",
            &json!({"name": "ops", "permissions": ["tasks:read", "instances:read", "tasks:read"]}),
        )
        .await;
    let ops = data(r, 201).await;
    assert_eq!(ops["permissions"], json!(["instances:read", "tasks:read"]));
    let id = ops["id"].as_str().unwrap().to_owned();
    for (body, status, code) in [
        (json!({"name": "Viewer", "permissions": []}), 409, 2020),
        (json!({"name": "OPS", "permissions": []}), 409, 2020),
        (json!({"name": "bad\nname", "permissions": []}), 422, 3001),
        (
            json!({"name": "x".repeat(101), "permissions": []}),
            422,
            3001,
        ),
        (
            json!({"name": "p", "permissions": ["instances:fly"]}),
            422,
            3001,
        ),
        (json!({"name": "p"}), 422, 3001),
    ] {
        let r = s.admin_json(Method::POST, "/api/v2/roles", &body).await;
        assert_error(r, status, code).await;
    }
    // Built-in roles never change.
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/roles/{admin_role}"),
            &json!({"name": "admin", "permissions": []}),
        )
        .await;
    assert_error(r, 403, 1003).await;
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/roles/{admin_role}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    // A held role cannot be deleted; then it can.
    let root = s.root_org().await;
    let holder = s.create_user(&root, "holder", &["ops"]).await;
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/roles/{id}"),
            &json!({"name": "operations", "permissions": ["instances:read"]}),
        )
        .await;
    assert_eq!(data(r, 200).await["version"], 2);
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/roles/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2012).await;
    let r = s
        .admin(Method::GET, &format!("/api/v2/users/{holder}"))
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await["roles"], json!(["operations"]));
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/users/{holder}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/roles/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    s.stop().await;
}

#[tokio::test]
async fn api_keys_authenticate_and_are_shown_once() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    s.create_user(&root, "other", &["viewer"]).await;
    let key = data(
        s.admin_json(Method::POST, "/api/v2/api-keys", &json!({"name": "ci"}))
            .await,
        201,
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("nph_key_"));
    assert!(secret.starts_with(key["prefix"].as_str().unwrap()));
    assert!(key["lastUsedAt"].is_null());
    let id = key["id"].as_str().unwrap().to_owned();
    let r = s
        .admin_json(Method::POST, "/api/v2/api-keys", &json!({"name": "ci"}))
        .await;
    assert_error(r, 409, 2020).await;

    let with_key = |secret: String| {
        let s = &s;
        async move {
            s.request(Method::GET, "/api/v2/me")
                .header("mc-api-key", secret)
                .send()
                .await
                .unwrap()
        }
    };
    let me = data(with_key(secret.clone()).await, 200).await;
    assert_eq!(me["authenticatedBy"], "api_key");
    assert_eq!(me["principal"]["login"], "admin");
    // As HTTP Basic with the owner's e-mail; another user's e-mail fails.
    let r = s
        .request(Method::GET, "/api/v2/me")
        .basic_auth("admin@acme.test", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await["authenticatedBy"], "api_key");
    let r = s
        .request(Method::GET, "/api/v2/me")
        .basic_auth("other@example.test", Some(&secret))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, 1001).await;

    // Listed without the secret, with its last use.
    let list = data(
        s.admin(Method::GET, "/api/v2/api-keys")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("secret").is_none());
    assert!(list[0]["lastUsedAt"].is_string());
    assert!(!list.to_string().contains(&secret));
    // Another user sees none of them and cannot touch them.
    let r = s
        .as_user(Method::GET, "/api/v2/api-keys", "other")
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await, json!([]));
    let r = s
        .as_user(Method::DELETE, &format!("/api/v2/api-keys/{id}"), "other")
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;

    // Regenerate: the old secret dies, the new one works.
    let again = data(
        s.admin(Method::POST, &format!("/api/v2/api-keys/{id}/regenerate"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let new_secret = again["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    assert_error(with_key(secret).await, 401, 1001).await;
    assert_eq!(with_key(new_secret.clone()).await.status(), 200);
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/api-keys/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_error(with_key(new_secret).await, 401, 1001).await;
    s.stop().await;
}

#[tokio::test]
async fn a_changed_password_replaces_the_old_one_at_once() {
    let s = TestServer::set_up().await;
    let me = data(
        s.admin(Method::GET, "/api/v2/me").send().await.unwrap(),
        200,
    )
    .await;
    let id = me["principal"]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v2/users/{id}/password");
    let r = s
        .admin_json(Method::POST, &path, &json!({"password": "new-password-1"}))
        .await;
    assert_error(r, 422, 3001).await;
    let r = s
        .admin_json(
            Method::POST,
            &path,
            &json!({"currentPassword": "not-it-at-all", "password": "new-password-1"}),
        )
        .await;
    let body = assert_error(r, 422, 3001).await;
    assert_eq!(body["errors"][0]["context"]["field"], "currentPassword");
    let r = s
        .admin_json(
            Method::POST,
            &path,
            &json!({"currentPassword": ADMIN_PASSWORD, "password": "new-password-1"}),
        )
        .await;
    assert_eq!(r.status(), 204);
    // The old password was verified (and remembered) before: it must fail now.
    let r = s.admin(Method::GET, "/api/v2/me").send().await.unwrap();
    assert_error(r, 401, 1001).await;
    let r = s
        .request(Method::GET, "/api/v2/me")
        .basic_auth(ADMIN_LOGIN, Some("new-password-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn malformed_credentials_are_401_never_500() {
    let s = TestServer::set_up().await;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let oversize = format!("Basic {}", b64(&format!("admin:{}", "x".repeat(5000))));
    for header in [
        "Basic".to_owned(),
        "Basic !!!".to_owned(),
        format!("Basic {}", b64("no-colon")),
        format!("Basic {}", b64(":password")),
        "Bearer".to_owned(),
        "Bearer not.a.jwt".to_owned(),
        oversize,
    ] {
        let r = s
            .request(Method::GET, "/api/v2/me")
            .header("authorization", &header)
            .send()
            .await
            .unwrap();
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.contains("Bearer") && challenge.contains("Basic"));
        assert_error(r, 401, 1001).await;
    }
    for key in ["nph_key_nonsense", "", "x"] {
        let r = s
            .request(Method::GET, "/api/v2/me")
            .header("mc-api-key", key)
            .send()
            .await
            .unwrap();
        assert_error(r, 401, 1001).await;
    }
    s.stop().await;
}

#[tokio::test]
async fn the_audit_log_records_changes_and_failed_sign_ins_per_subtree() {
    let s = TestServer::set_up().await;
    let child = s.create_org("Child", None).await;
    let r = s
        .admin(Method::POST, &format!("/api/v2/users?org_id={child}"))
        .header("x-agent-id", "terraform/1.9")
        .header("x-request-id", "req-audit-1")
        .json(&json!({"login": "auditor", "email": "auditor@example.test", "password": USER_PASSWORD, "roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    let auditor = data(r, 201).await["id"].as_str().unwrap().to_owned();
    let r = s
        .request(Method::GET, "/api/v2/organizations")
        .basic_auth("auditor", Some("wrong-password"))
        .send()
        .await
        .unwrap();
    assert_error(r, 401, 1001).await;
    let r = s
        .as_user(Method::POST, "/api/v2/organizations", "auditor")
        .json(&json!({"name": "Nope"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;

    let events = data(
        s.admin(Method::GET, "/api/v2/audit-events")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let events = events.as_array().unwrap();
    let created = events
        .iter()
        .find(|e| e["action"] == "users.create")
        .unwrap();
    assert_eq!(created["targetId"], auditor.as_str());
    assert_eq!(created["organizationId"], child.as_str());
    assert_eq!(created["agentId"], "terraform/1.9");
    assert_eq!(created["requestId"], "req-audit-1");
    assert_eq!(created["actorName"], "admin");
    assert_eq!(created["outcome"], "success");
    assert_eq!(created["clientAddress"], "127.0.0.1");
    let failed = events
        .iter()
        .find(|e| e["action"] == "authentication")
        .unwrap();
    assert_eq!(failed["actorName"], "auditor");
    assert_eq!(failed["outcome"], "denied");
    assert!(!events
        .iter()
        .any(|e| e.to_string().contains("wrong-password")));
    let denied = events
        .iter()
        .find(|e| e["action"] == "organizations.create" && e["status"] == 403)
        .unwrap();
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["actorId"], auditor.as_str());

    // Filters.
    let r = s
        .admin(Method::GET, "/api/v2/audit-events?action=users.create")
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await.as_array().unwrap().len(), 1);
    let r = s
        .admin(Method::GET, "/api/v2/audit-events?actor=auditor")
        .send()
        .await
        .unwrap();
    assert!(!data(r, 200).await.as_array().unwrap().is_empty());
    let r = s
        .admin(
            Method::GET,
            "/api/v2/audit-events?since=2999-01-01T00:00:00Z",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await, json!([]));
    let r = s
        .admin(Method::GET, "/api/v2/audit-events?since=yesterday")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, 3000).await;

    // The child's viewer sees the child's events only: not the root's.
    let r = s
        .as_user(Method::GET, "/api/v2/audit-events", "auditor")
        .send()
        .await
        .unwrap();
    let seen = data(r, 200).await;
    let seen = seen.as_array().unwrap();
    assert!(seen.iter().any(|e| e["action"] == "users.create"));
    assert!(seen.iter().all(|e| e["organizationId"] == child.as_str()));
    // Without audit:read: 403.
    let r = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/roles?org_id={child}"),
            &json!({"name": "blind", "permissions": ["users:read"]}),
        )
        .await;
    assert_eq!(r.status(), 201);
    s.create_user(&child, "blind", &["blind"]).await;
    let r = s
        .as_user(Method::GET, "/api/v2/audit-events", "blind")
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    s.stop().await;
}

#[tokio::test]
async fn data_centers_are_managed_by_root_admins() {
    let s = TestServer::set_up().await;
    let dcs = data(
        s.admin(Method::GET, "/api/v2/datacenters")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(dcs[0]["local"], true);
    assert_eq!(dcs[0]["serverUrl"], s.url.as_str());
    let local = dcs[0]["id"].as_str().unwrap().to_owned();

    let child = s.create_org("Child", None).await;
    s.create_user(&child, "child-admin", &["admin"]).await;
    let body = json!({"name": "eu-2", "serverUrl": "https://eu-2.example/"});
    let r = s
        .as_user(Method::POST, "/api/v2/datacenters", "child-admin")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;
    let dc = data(
        s.admin_json(Method::POST, "/api/v2/datacenters", &body)
            .await,
        201,
    )
    .await;
    assert_eq!(dc["serverUrl"], "https://eu-2.example");
    assert_eq!(dc["local"], false);
    let id = dc["id"].as_str().unwrap().to_owned();
    let r = s
        .admin_json(Method::POST, "/api/v2/datacenters", &body)
        .await;
    assert_error(r, 409, 2020).await;
    let r = s
        .admin_json(
            Method::POST,
            "/api/v2/datacenters",
            &json!({"name": "x", "serverUrl": "ftp://x"}),
        )
        .await;
    assert_error(r, 422, 3001).await;
    // Users live somewhere: an unknown data center is refused.
    let r = s
        .admin_json(
            Method::POST,
            "/api/v2/users",
            &json!({"login": "far", "email": "far@example.test", "password": USER_PASSWORD, "datacenterId": "01900000-0000-7000-8000-000000000000"}),
        )
        .await;
    assert_error(r, 422, 3001).await;
    let r = s
        .admin_json(
            Method::POST,
            "/api/v2/users",
            &json!({"login": "far", "email": "far@example.test", "password": USER_PASSWORD, "datacenterId": id}),
        )
        .await;
    let far = data(r, 201).await;
    assert_eq!(far["datacenterId"], id.as_str());
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/datacenters/{id}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2012).await;
    let r = s
        .admin(Method::DELETE, &format!("/api/v2/datacenters/{local}"))
        .send()
        .await
        .unwrap();
    assert_error(r, 409, 2012).await;
    // A child organization's admin still reads the list.
    let r = s
        .as_user(Method::GET, "/api/v2/datacenters", "child-admin")
        .send()
        .await
        .unwrap();
    assert_eq!(data(r, 200).await.as_array().unwrap().len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let a = s.create_user(&root, "admin-a", &["admin"]).await;
    let b = s.create_user(&root, "admin-b", &["admin"]).await;
    // The setup admin steps down, leaving a and b.
    let me = data(
        s.admin(Method::GET, "/api/v2/me").send().await.unwrap(),
        200,
    )
    .await["principal"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .as_user(Method::PATCH, &format!("/api/v2/users/{me}"), "admin-a")
        .json(&json!({"roles": ["viewer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let demote = |who: &'static str, whom: String| {
        s.as_user(Method::PATCH, &format!("/api/v2/users/{whom}"), who)
            .json(&json!({"roles": ["viewer"]}))
            .send()
    };
    let (ra, rb) = tokio::join!(demote("admin-a", b.clone()), demote("admin-b", a.clone()));
    let mut statuses = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
    statuses.sort_unstable();
    // The loser was either already demoted when it authenticated (403) or
    // lost the race inside the store (409); never do both succeed.
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(matches!(statuses[1], 403 | 409), "{statuses:?}");
    let users = data(
        s.request(Method::GET, "/api/v2/users")
            .basic_auth("admin-a", Some(USER_PASSWORD))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let admins = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["roles"] == json!(["admin"]))
        .count();
    assert_eq!(admins, 1);
    s.stop().await;
}

/// Principals and ancestries are remembered for a second between
/// requests; a change made on this node applies to the very next request.
#[tokio::test]
async fn remembered_principals_follow_changes_at_once() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let org = s.create_org("cached", None).await;
    let user = s.create_user(&org, "carol", &["operator"]).await;
    let form = [
        ("grant_type", "password"),
        ("username", "carol"),
        ("password", USER_PASSWORD),
    ];
    let r = s
        .request(Method::POST, "/api/2/idp/token")
        .form(&form)
        .send()
        .await
        .unwrap();
    let token = json_of(r, 200).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = |method: Method, path: &str| s.request(method, path).bearer_auth(&token);
    let create = json!({"name": "c-1", "image": "alpine-3.20"});

    // Remembered: an operator may create instances.
    let r = bearer(Method::GET, "/api/v2/instances")
        .send()
        .await
        .unwrap();
    json_of(r, 200).await;
    let r = bearer(Method::POST, "/api/v2/instances")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    // Roles changed to viewer: the next write is refused.
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/users/{user}?org_id={org}"),
            &json!({"roles": ["viewer"]}),
        )
        .await;
    json_of(r, 200).await;
    let r = bearer(Method::POST, "/api/v2/instances")
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;

    // A custom role's permissions shrink: the next read is refused.
    let r = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/roles?org_id={org}"),
            &json!({"name": "readers", "permissions": ["instances:read"]}),
        )
        .await;
    let role = json_of(r, 201).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/users/{user}?org_id={org}"),
            &json!({"roles": ["readers"]}),
        )
        .await;
    json_of(r, 200).await;
    let r = bearer(Method::GET, "/api/v2/instances")
        .send()
        .await
        .unwrap();
    json_of(r, 200).await;
    let r = s
        .admin_json(
            Method::PUT,
            &format!("/api/v2/roles/{role}?org_id={org}"),
            &json!({"name": "readers", "permissions": ["tasks:read"]}),
        )
        .await;
    json_of(r, 200).await;
    let r = bearer(Method::GET, "/api/v2/instances")
        .send()
        .await
        .unwrap();
    assert_error(r, 403, 1003).await;

    // An API key used once, then deleted: refused at once.
    let r = s
        .admin_json(Method::POST, "/api/v2/api-keys", &json!({"name": "k"}))
        .await;
    let key = json_of(r, 201).await["data"].clone();
    let secret = key["secret"].as_str().unwrap();
    let with_key = || {
        s.request(Method::GET, "/api/v2/me")
            .header("MC-Api-Key", secret)
    };
    json_of(with_key().send().await.unwrap(), 200).await;
    let r = s
        .admin(
            Method::DELETE,
            &format!("/api/v2/api-keys/{}", key["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_error(with_key().send().await.unwrap(), 401, 1001).await;

    // The user deleted: the token is refused at once.
    let r = s
        .admin(
            Method::DELETE,
            &format!("/api/v2/users/{user}?org_id={org}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = bearer(Method::GET, "/api/v2/me").send().await.unwrap();
    assert_eq!(r.status(), 401);

    // An organization moved under a sibling: its ancestry follows at once.
    let a = s.create_org("a", None).await;
    let b = s.create_org("b", None).await;
    let admin_a = s.create_user(&a, "admin-a", &["admin"]).await;
    let _ = admin_a;
    let child = s.create_org("child", Some(&a)).await;
    let r = s
        .as_user(
            Method::GET,
            &format!("/api/v2/organizations/{child}"),
            "admin-a",
        )
        .send()
        .await
        .unwrap();
    json_of(r, 200).await;
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{child}"),
            &json!({"parentId": b}),
        )
        .await;
    json_of(r, 200).await;
    let r = s
        .as_user(
            Method::GET,
            &format!("/api/v2/organizations/{child}"),
            "admin-a",
        )
        .send()
        .await
        .unwrap();
    assert_error(r, 404, 2000).await;
    let _ = root;
    s.stop().await;
}
