//! Account states (SPEC §4, §6): disabled users and suspended
//! organizations are refused on every scheme, tokens issued before
//! included, and are restored by enabling or reactivating them.

use crate::identity::{create_client, oauth_error, password_tokens, token};
use crate::support::*;
use nephele_api_types as api;

fn user_status(status: &str) -> api::UserUpdate {
    api::UserUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    }
}

fn org_status(status: &str) -> api::OrganizationUpdate {
    api::OrganizationUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    }
}

fn key_body(name: &str) -> api::ApiKeyCreate {
    api::ApiKeyCreate {
        name: Some(name.to_owned()),
    }
}

/// A password grant with `offline_access`: `(access token, refresh token)`.
async fn signed_in(s: &TestServer, login: &str) -> (String, String) {
    let t = password_tokens(s, login, USER_PASSWORD, "openid offline_access").await;
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(s: &TestServer, refresh_token: &str) -> reqwest::Response {
    token(
        s,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        None,
    )
    .await
}

#[tokio::test]
async fn a_disabled_user_is_refused_on_every_scheme_until_enabled() {
    let s = TestServer::set_up().await;
    let org = s.create_org("Customer", None).await;
    let bob = s.create_user(&org, "bob", &["operator"]).await;
    let key = s
        .client_as("bob")
        .create_api_key(&key_body("laptop"))
        .await
        .unwrap()
        .secret
        .unwrap();
    let (access, refresh_token) = signed_in(&s, "bob").await;
    assert_eq!(
        s.client_with_token(&access)
            .me()
            .await
            .unwrap()
            .principal
            .login,
        "bob"
    );

    let admin = s.admin_client();
    let disabled = admin
        .patch_user(&bob, &user_status("disabled"))
        .await
        .unwrap();
    assert_eq!(disabled.status, "disabled");

    assert_refused(s.client_as("bob").me().await, 401, 1002);
    assert_refused(s.client_with_key(&key).me().await, 401, 1002);
    assert_refused(s.client_with_token(&access).me().await, 401, 1002);
    let grant = token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", "bob"),
            ("password", USER_PASSWORD),
        ],
        None,
    )
    .await;
    let refused = oauth_error(grant, 400, "invalid_grant").await;
    assert_eq!(refused["error_description"], "This account is disabled");
    oauth_error(refresh(&s, &refresh_token).await, 400, "invalid_grant").await;

    // `invited` is a state only an invitation puts a user in.
    assert_refused(
        admin.patch_user(&bob, &user_status("invited")).await,
        409,
        2012,
    );
    let errors = assert_refused(
        admin.patch_user(&bob, &user_status("gone")).await,
        422,
        3001,
    );
    assert_eq!(fields_of(&errors), ["status"]);

    let enabled = admin
        .patch_user(&bob, &user_status("enabled"))
        .await
        .unwrap();
    assert_eq!(enabled.status, "enabled");
    assert_eq!(
        s.client_as("bob").me().await.unwrap().principal.login,
        "bob"
    );
    assert_eq!(
        s.client_with_key(&key).me().await.unwrap().principal.login,
        "bob"
    );
    // Disabling ended bob's sessions: what was issued before stays dead.
    assert_refused(s.client_with_token(&access).me().await, 401, 1002);
    oauth_error(refresh(&s, &refresh_token).await, 400, "invalid_grant").await;
    signed_in(&s, "bob").await;

    let changes: Vec<_> = s
        .audit_events(&[("action", "users.update")])
        .await
        .into_iter()
        .filter(|e| e.outcome == "success")
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes
        .iter()
        .all(|e| e.target_id.as_deref() == Some(bob.as_str())));
}

#[tokio::test]
async fn the_root_keeps_an_enabled_admin_and_nobody_disables_themselves() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let admin_id = s.admin_id().await;
    let second = s.create_user(&root, "second", &["admin"]).await;
    let admin = s.admin_client();
    let errors = assert_refused(
        admin.patch_user(&admin_id, &user_status("disabled")).await,
        409,
        2012,
    );
    assert!(errors[0].message.contains("yourself"), "{errors:?}");

    let other = s.client_as("second");
    other
        .patch_user(&admin_id, &user_status("disabled"))
        .await
        .unwrap();
    // `second` is now the root's one enabled admin: it keeps the role.
    let errors = assert_refused(
        other.patch_user(&second, &roles_patch(&["viewer"])).await,
        409,
        2012,
    );
    assert!(
        errors[0].message.contains("at least one admin"),
        "{errors:?}"
    );
    other
        .patch_user(&admin_id, &user_status("enabled"))
        .await
        .unwrap();
    other
        .patch_user(&second, &roles_patch(&["viewer"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_suspended_organization_and_everything_below_it_are_refused_until_reactivated() {
    let s = TestServer::set_up().await;
    let root = s.root_org().await;
    let customer = s.create_org("Customer", None).await;
    let team = s.create_org("Team", Some(&customer)).await;
    s.create_user(&customer, "carol", &["admin"]).await;
    s.create_user(&team, "tom", &["operator"]).await;
    let (tom_access, tom_refresh) = signed_in(&s, "tom").await;
    let (client_id, client_secret) = create_client(
        &s,
        &api::ApiClientCreate {
            tenant_id: Some(team.parse().unwrap()),
            ..api_client_body("team-robot")
        },
    )
    .await;
    let client_grant = || {
        token(
            &s,
            &[("grant_type", "client_credentials")],
            Some((&client_id, &client_secret)),
        )
    };
    let robot = json_of(client_grant().await, 200).await;
    let robot_access = robot["access_token"].as_str().unwrap().to_owned();
    let instance = s.create_instance(&team, "web-1").await;
    let admin = s.admin_client();
    s.ended(admin.instance_action(&instance, "stop").await)
        .await;

    // Nobody suspends their own organization: it is set from above.
    let errors = assert_refused(
        s.client_as("carol")
            .patch_organization(&customer, &org_status("suspended"))
            .await,
        403,
        1003,
    );
    assert_eq!(errors[0].context["permission"], "organizations:write");
    let errors = assert_refused(
        admin
            .patch_organization(&root, &org_status("suspended"))
            .await,
        409,
        2012,
    );
    assert_eq!(errors[0].context["field"], "status");
    let errors = assert_refused(
        admin
            .patch_organization(&customer, &org_status("paused"))
            .await,
        422,
        3001,
    );
    assert_eq!(fields_of(&errors), ["status"]);

    let suspended = admin
        .patch_organization(&customer, &org_status("suspended"))
        .await
        .unwrap();
    assert_eq!(suspended.status, "suspended");
    assert_eq!(admin.organization(&team).await.unwrap().status, "active");

    for refused in [
        s.client_as("carol").me().await,
        s.client_as("tom").me().await,
        s.client_with_token(&tom_access).me().await,
        s.client_with_token(&robot_access).me().await,
    ] {
        assert_refused(refused, 401, 1002);
    }
    let refused = oauth_error(client_grant().await, 400, "invalid_grant").await;
    assert_eq!(
        refused["error_description"],
        "This organization is suspended"
    );
    oauth_error(refresh(&s, &tom_refresh).await, 400, "invalid_grant").await;

    // An administrator above still sees it, but starts and makes nothing.
    assert_eq!(admin.instance(&instance).await.unwrap().state, "Stopped");
    let errors = assert_refused(admin.instance_action(&instance, "start").await, 409, 2012);
    assert_eq!(errors[0].context["currentState"], "suspended");
    assert_eq!(errors[0].context["id"], customer.as_str());
    assert_refused(
        admin
            .create_instance(
                Some(&team),
                &api::InstanceCreate {
                    name: Some("web-2".into()),
                    image: Some("debian-12".into()),
                    cpu: Some(1),
                    memory_mib: Some(256),
                    ..Default::default()
                },
            )
            .await,
        409,
        2012,
    );

    admin
        .patch_organization(&customer, &org_status("active"))
        .await
        .unwrap();
    assert_eq!(
        s.client_as("tom").me().await.unwrap().principal.login,
        "tom"
    );
    assert_eq!(
        s.client_as("carol").me().await.unwrap().principal.login,
        "carol"
    );
    // Tokens from before the suspension work again: it ended no session.
    assert_eq!(
        s.client_with_token(&tom_access)
            .me()
            .await
            .unwrap()
            .principal
            .login,
        "tom"
    );
    json_of(client_grant().await, 200).await;
    s.ended(admin.instance_action(&instance, "start").await)
        .await;

    let changes: Vec<_> = s
        .audit_events(&[("action", "organizations.update")])
        .await
        .into_iter()
        .filter(|e| e.outcome == "success")
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(changes
        .iter()
        .all(|e| e.target_id.as_deref() == Some(customer.as_str())));
}
