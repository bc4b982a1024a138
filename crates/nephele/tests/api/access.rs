//! Users, roles, API keys, `/me`, the audit log and data centers: what
//! each does, who may do it, and what bad input gets.

use crate::support::*;
use base64::Engine;
use nephele_api_types as api;
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

    let client = s.admin_client();
    let list = client.users(Some(&child)).await.unwrap().data;
    assert_eq!(list.len(), 1);
    // The root's own list holds only the root's users.
    let root_list = client.users(None::<&str>).await.unwrap().data;
    assert_eq!(root_list[0].login, "admin");
    assert_eq!(root_list.len(), 1);

    let r = s
        .admin(Method::GET, &format!("/api/v2/users/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"], "\"1\"");
    let patch = api::UserUpdate {
        email: Some("robert@example.test".into()),
        ..roles_patch(&["operator", "viewer"])
    };
    let patched = client.patch_user(id, &patch).await.unwrap();
    assert_eq!(patched.email, "robert@example.test");
    assert_eq!(patched.login, "bob");
    assert_eq!(patched.roles, ["operator", "viewer"]);
    assert_eq!(patched.version, 2);

    // PUT needs every mutable field; read-only fields are unknown fields.
    let only_email = api::UserUpdate {
        email: Some("x@example.test".into()),
        ..Default::default()
    };
    let errors = assert_refused(client.update_user(id, &only_email).await, 422, 3001);
    assert_eq!(fields_of(&errors), ["login", "roles"]);
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/users/{id}"),
            &json!({"organizationId": child}),
        )
        .await;
    assert_error(r, 422, 3001).await;

    client.delete_user(id).await.unwrap();
    assert_refused(client.user(id).await, 404, 2000);
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
    let users = s.admin_client().users(None::<&str>).await.unwrap();
    assert_eq!(users.data.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn nobody_grants_what_they_do_not_hold() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let client = s.admin_client();
    let role = client
        .create_role(
            None::<&str>,
            &role_body(
                "user-manager",
                &["users:read", "users:write", "roles:read", "roles:write"],
            ),
        )
        .await
        .unwrap();
    assert!(!role.builtin);
    s.create_user(&root, "manager", &["user-manager"]).await;
    let manager = s.client_as("manager");

    // Creating a user with a role beyond the manager's own: 403.
    let made = manager
        .create_user(None::<&str>, &user_body("eve", &["admin"]))
        .await;
    let errors = assert_refused(made, 403, 1003);
    assert!(errors[0].context["permission"].is_string());
    // Within its own permissions: fine.
    manager
        .create_user(None::<&str>, &user_body("eve", &["user-manager"]))
        .await
        .unwrap();
    // A custom role beyond its own permissions: 403.
    let sneaky = manager
        .create_role(None::<&str>, &role_body("sneaky", &["audit:read"]))
        .await;
    assert_refused(sneaky, 403, 1003);
    // Nor can it take over the admin: reset its password, demote or delete it.
    let admins = client.users(None::<&str>).await.unwrap().data;
    let admin = admins.iter().find(|u| u.login == "admin").unwrap().id;
    let reset = api::PasswordChange {
        password: Some(nephele_common::Secret::new("taken-over-1")),
        ..Default::default()
    };
    assert_refused(manager.change_password(admin, &reset).await, 403, 1003);
    let demoted = manager.patch_user(admin, &roles_patch(&["viewer"])).await;
    assert_refused(demoted, 403, 1003);
    assert_refused(manager.delete_user(admin).await, 403, 1003);
    // The admin still signs in with its password.
    let me = client.me().await.unwrap();
    assert_eq!(me.principal.roles, ["admin"]);
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
    let child_admin = s.client_as("child-admin");
    child_admin.organization(&child).await.unwrap();
    child_admin.organization(&grandchild).await.unwrap();
    assert_refused(child_admin.organization(&root).await, 404, 2000);
    assert_refused(child_admin.organization(&sibling).await, 404, 2000);
    child_admin.users(Some(&grandchild)).await.unwrap();
    assert_refused(child_admin.users(Some(&root)).await, 404, 2000);
    assert_refused(child_admin.users(Some(&sibling)).await, 404, 2000);
    // Its own list of organizations is its subtree.
    let own = child_admin.organizations(None::<&str>).await.unwrap();
    assert_eq!(own.data.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn organizations_move_but_never_below_themselves() {
    let s = TestServer::set_up().await;
    let a = s.create_org("A", None).await;
    let b = s.create_org("B", Some(&a)).await;
    let c = s.create_org("C", None).await;
    let root = s.root_org().await;
    let client = s.admin_client();
    let under = |parent: &str| api::OrganizationUpdate {
        parent_id: Some(parent.parse().unwrap()),
        ..Default::default()
    };
    let errors = assert_refused(client.patch_organization(&a, &under(&b)).await, 409, 2012);
    assert_eq!(errors[0].context["field"], "parentId");
    assert_refused(client.patch_organization(&a, &under(&a)).await, 409, 2012);
    // Nor is the root moved anywhere.
    assert_refused(
        client.patch_organization(&root, &under(&c)).await,
        409,
        2012,
    );
    // A legal move.
    let moved = client.patch_organization(&b, &under(&c)).await.unwrap();
    assert_eq!(moved.parent_id.unwrap().to_string(), c);
    let unmoved = client.organization(&a).await.unwrap();
    assert_eq!(unmoved.parent_id.unwrap().to_string(), root);
    s.stop().await;
}

#[tokio::test]
async fn you_cannot_delete_yourself_nor_leave_the_root_without_an_admin() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let second = s.create_user(&root, "second", &["admin"]).await;
    let me = s.admin_id().await;
    let client = s.admin_client();
    assert_refused(client.delete_user(&me).await, 409, 2012);
    // Two admins: one may step down; then the other is the last.
    client
        .patch_user(&me, &roles_patch(&["viewer"]))
        .await
        .unwrap();
    let as_second = s.client_as("second");
    let stepped_down = as_second
        .patch_user(&second, &roles_patch(&["operator"]))
        .await;
    assert_refused(stepped_down, 409, 2012);
    let still = as_second.user(&second).await.unwrap();
    assert_eq!(still.roles, ["admin"]);
    s.stop().await;
}

#[tokio::test]
async fn custom_roles_and_built_in_ones() {
    let s = TestServer::set_up().await;
    let client = s.admin_client();
    let roles = client.roles(None::<&str>).await.unwrap().data;
    let names: Vec<_> = roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["admin", "operator", "viewer"]);
    let admin_role = roles[0].id;
    assert!(roles[2].builtin);
    assert!(roles[2].permissions.iter().all(|p| p.ends_with(":read")));

    let ops = client
        .create_role(
            None::<&str>,
            &role_body("ops", &["tasks:read", "instances:read", "tasks:read"]),
        )
        .await
        .unwrap();
    assert_eq!(ops.permissions, ["instances:read", "tasks:read"]);
    let id = ops.id;
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
    let changed = client
        .update_role(admin_role, &role_body("admin", &[]))
        .await;
    assert_refused(changed, 403, 1003);
    assert_refused(client.delete_role(admin_role).await, 403, 1003);
    // A held role cannot be deleted; then it can.
    let root = s.root_org().await;
    let holder = s.create_user(&root, "holder", &["ops"]).await;
    let renamed = client
        .update_role(id, &role_body("operations", &["instances:read"]))
        .await;
    assert_eq!(renamed.unwrap().version, 2);
    assert_refused(client.delete_role(id).await, 409, 2012);
    let user = client.user(&holder).await.unwrap();
    assert_eq!(user.roles, ["operations"]);
    client.delete_user(&holder).await.unwrap();
    client.delete_role(id).await.unwrap();
    s.stop().await;
}

#[tokio::test]
async fn api_keys_authenticate_and_are_shown_once() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    s.create_user(&root, "other", &["viewer"]).await;
    let client = s.admin_client();
    let ci = api::ApiKeyCreate {
        name: Some("ci".into()),
    };
    let key = client.create_api_key(&ci).await.unwrap();
    let secret = key.secret.clone().unwrap();
    assert!(secret.starts_with("nph_key_"));
    assert!(secret.starts_with(&key.prefix));
    assert!(key.last_used_at.is_none());
    let id = key.id;
    assert_refused(client.create_api_key(&ci).await, 409, 2020);

    let me = s.client_with_key(&secret).me().await.unwrap();
    assert_eq!(me.authenticated_by, "api_key");
    assert_eq!(me.principal.login, "admin");
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

    // Listed without the secret (not even as a null), with its last use.
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
    let other = s.client_as("other");
    assert!(other.api_keys().await.unwrap().data.is_empty());
    assert_refused(other.delete_api_key(id).await, 404, 2000);

    // Regenerate: the old secret dies, the new one works.
    let again = client.regenerate_api_key(id).await.unwrap();
    let new_secret = again.secret.unwrap();
    assert_ne!(new_secret, secret);
    assert_refused(s.client_with_key(&secret).me().await, 401, 1001);
    s.client_with_key(&new_secret).me().await.unwrap();
    client.delete_api_key(id).await.unwrap();
    assert_refused(s.client_with_key(&new_secret).me().await, 401, 1001);
    s.stop().await;
}

#[tokio::test]
async fn a_changed_password_replaces_the_old_one_at_once() {
    let s = TestServer::set_up().await;
    let id = s.admin_id().await;
    let client = s.admin_client();
    let change = |current: Option<&str>| api::PasswordChange {
        current_password: current.map(nephele_common::Secret::new),
        password: Some(nephele_common::Secret::new("new-password-1")),
    };
    assert_refused(client.change_password(&id, &change(None)).await, 422, 3001);
    let wrong = client
        .change_password(&id, &change(Some("not-it-at-all")))
        .await;
    let errors = assert_refused(wrong, 422, 3001);
    assert_eq!(errors[0].context["field"], "currentPassword");
    client
        .change_password(&id, &change(Some(ADMIN_PASSWORD)))
        .await
        .unwrap();
    // The old password was verified (and remembered) before: it must fail now.
    assert_refused(client.me().await, 401, 1001);
    let renewed = s.client(nephele_client::Credentials::Basic {
        login: ADMIN_LOGIN.into(),
        password: nephele_common::Secret::new("new-password-1"),
    });
    renewed.me().await.unwrap();
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
    let wrong = s.client(nephele_client::Credentials::Basic {
        login: "auditor".into(),
        password: nephele_common::Secret::new("wrong-password"),
    });
    assert_refused(wrong.organizations(None::<&str>).await, 401, 1001);
    let nope = api::OrganizationCreate {
        name: Some("Nope".into()),
        parent_id: None,
    };
    let made = s.client_as("auditor").create_organization(&nope).await;
    assert_refused(made, 403, 1003);

    let events = s.audit_events(&[]).await;
    let created = events.iter().find(|e| e.action == "users.create").unwrap();
    assert_eq!(created.target_id.as_deref(), Some(auditor.as_str()));
    assert_eq!(created.organization_id.unwrap().to_string(), child);
    assert_eq!(created.agent_id.as_deref(), Some("terraform/1.9"));
    assert_eq!(created.request_id.as_deref(), Some("req-audit-1"));
    assert_eq!(created.actor_name.as_deref(), Some("admin"));
    assert_eq!(created.outcome, "success");
    assert_eq!(created.client_address.as_deref(), Some("127.0.0.1"));
    let failed = events
        .iter()
        .find(|e| e.action == "authentication")
        .unwrap();
    assert_eq!(failed.actor_name.as_deref(), Some("auditor"));
    assert_eq!(failed.outcome, "denied");
    // Nowhere in the log, in any field, is the password tried.
    let r = s
        .admin(Method::GET, "/api/v2/audit-events")
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("wrong-password"));
    let denied = events
        .iter()
        .find(|e| e.action == "organizations.create" && e.status == 403)
        .unwrap();
    assert_eq!(denied.outcome, "denied");
    assert_eq!(denied.actor_id.as_deref(), Some(auditor.as_str()));

    // Filters.
    let by_action = s.audit_events(&[("action", "users.create")]).await;
    assert_eq!(by_action.len(), 1);
    assert!(!s.audit_events(&[("actor", "auditor")]).await.is_empty());
    let future = s.audit_events(&[("since", "2999-01-01T00:00:00Z")]).await;
    assert!(future.is_empty());
    let r = s
        .admin(Method::GET, "/api/v2/audit-events?since=yesterday")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, 3000).await;

    // The child's viewer sees the child's events only: not the root's.
    let seen = s.client_as("auditor").audit_events(&[]).await.unwrap().data;
    assert!(seen.iter().any(|e| e.action == "users.create"));
    assert!(seen
        .iter()
        .all(|e| e.organization_id.map(|o| o.to_string()) == Some(child.clone())));
    // Without audit:read: 403.
    s.create_role(Some(&child), "blind", &["users:read"]).await;
    s.create_user(&child, "blind", &["blind"]).await;
    let blind = s.client_as("blind").audit_events(&[]).await;
    assert_refused(blind, 403, 1003);
    s.stop().await;
}

#[tokio::test]
async fn data_centers_are_managed_by_root_admins() {
    let s = TestServer::set_up().await;
    let client = s.admin_client();
    let dcs = client.datacenters().await.unwrap().data;
    assert!(dcs[0].local);
    assert_eq!(dcs[0].server_url, s.url);
    let local = dcs[0].id;

    let child = s.create_org("Child", None).await;
    s.create_user(&child, "child-admin", &["admin"]).await;
    let body = api::DatacenterCreate {
        name: Some("eu-2".into()),
        server_url: Some("https://eu-2.example/".into()),
    };
    let made = s.client_as("child-admin").create_datacenter(&body).await;
    assert_refused(made, 403, 1003);
    let dc = client.create_datacenter(&body).await.unwrap();
    assert_eq!(dc.server_url, "https://eu-2.example");
    assert!(!dc.local);
    let id = dc.id;
    assert_refused(client.create_datacenter(&body).await, 409, 2020);
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
    let far = api::UserCreate {
        roles: None,
        datacenter_id: Some(id),
        ..user_body("far", &[])
    };
    let far = client.create_user(None::<&str>, &far).await.unwrap();
    assert_eq!(far.datacenter_id, id);
    assert_refused(client.delete_datacenter(id).await, 409, 2012);
    assert_refused(client.delete_datacenter(local).await, 409, 2012);
    // A child organization's admin still reads the list.
    let seen = s.client_as("child-admin").datacenters().await.unwrap();
    assert_eq!(seen.data.len(), 2);
    s.stop().await;
}

#[tokio::test]
async fn two_admins_demoting_each_other_at_once_leave_one_admin() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let a = s.create_user(&root, "admin-a", &["admin"]).await;
    let b = s.create_user(&root, "admin-b", &["admin"]).await;
    // The setup admin steps down, leaving a and b.
    let me = s.admin_id().await;
    let (as_a, as_b) = (s.client_as("admin-a"), s.client_as("admin-b"));
    as_a.patch_user(&me, &roles_patch(&["viewer"]))
        .await
        .unwrap();
    let viewer = roles_patch(&["viewer"]);
    let (ra, rb) = tokio::join!(as_a.patch_user(&b, &viewer), as_b.patch_user(&a, &viewer));
    let status = |r: Result<api::User, nephele_client::Error>| match r {
        Ok(_) => 200,
        Err(e) => e.status().unwrap(),
    };
    let mut statuses = [status(ra), status(rb)];
    statuses.sort_unstable();
    // The loser was either already demoted when it authenticated (403) or
    // lost the race inside the store (409); never do both succeed.
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(matches!(statuses[1], 403 | 409), "{statuses:?}");
    let users = as_a.users(None::<&str>).await.unwrap().data;
    let admins = users.iter().filter(|u| u.roles == ["admin"]).count();
    assert_eq!(admins, 1);
    s.stop().await;
}

/// Principals and ancestries are remembered for a second between
/// requests; a change made on this node applies to the very next request.
#[tokio::test]
async fn remembered_principals_follow_changes_at_once() {
    let s = TestServer::set_up().await;
    let org = s.create_org("cached", None).await;
    let user = s.create_user(&org, "carol", &["operator"]).await;
    let form = [
        ("grant_type", "password"),
        ("username", "carol"),
        ("password", USER_PASSWORD),
    ];
    let tokens = s.client(Default::default()).token(&form).await.unwrap();
    let bearer = s.client_with_token(&tokens.access_token);
    let create = api::InstanceCreate {
        name: Some("c-1".into()),
        image: Some("alpine-3.20".into()),
        ..Default::default()
    };
    let client = s.admin_client();

    // Remembered: an operator may create instances.
    bearer.instances(&[]).await.unwrap();
    bearer.create_instance(None::<&str>, &create).await.unwrap();

    // Roles changed to viewer: the next write is refused.
    client
        .patch_user(&user, &roles_patch(&["viewer"]))
        .await
        .unwrap();
    let refused = bearer.create_instance(None::<&str>, &create).await;
    assert_refused(refused, 403, 1003);

    // A custom role's permissions shrink: the next read is refused.
    let role = s
        .create_role(Some(&org), "readers", &["instances:read"])
        .await;
    client
        .patch_user(&user, &roles_patch(&["readers"]))
        .await
        .unwrap();
    bearer.instances(&[]).await.unwrap();
    client
        .update_role(&role, &role_body("readers", &["tasks:read"]))
        .await
        .unwrap();
    assert_refused(bearer.instances(&[]).await, 403, 1003);

    // An API key used once, then deleted: refused at once.
    let key = client
        .create_api_key(&api::ApiKeyCreate {
            name: Some("k".into()),
        })
        .await
        .unwrap();
    let with_key = s.client_with_key(key.secret.as_deref().unwrap());
    with_key.me().await.unwrap();
    client.delete_api_key(key.id).await.unwrap();
    assert_refused(with_key.me().await, 401, 1001);

    // The user deleted: the token is refused at once.
    client.delete_user(&user).await.unwrap();
    let refused = bearer.me().await.unwrap_err();
    assert_eq!(refused.status(), Some(401));

    // An organization moved under a sibling: its ancestry follows at once.
    let a = s.create_org("a", None).await;
    let b = s.create_org("b", None).await;
    s.create_user(&a, "admin-a", &["admin"]).await;
    let child = s.create_org("child", Some(&a)).await;
    let admin_a = s.client_as("admin-a");
    admin_a.organization(&child).await.unwrap();
    let under_b = api::OrganizationUpdate {
        parent_id: Some(b.parse().unwrap()),
        ..Default::default()
    };
    client.patch_organization(&child, &under_b).await.unwrap();
    assert_refused(admin_a.organization(&child).await, 404, 2000);
    s.stop().await;
}
