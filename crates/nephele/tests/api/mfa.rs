//! MFA with TOTP (SPEC §4, §5): enrolment and confirmation, the password
//! grant's `otp` and `mfa_required`, no replay, recovery codes, HTTP Basic
//! refused to an enrolled user, the code lockout, removal, and
//! organizations that require MFA of everyone below them. Codes are
//! computed here from the secret the server answers, as an authenticator
//! app would.

use crate::identity::{create_client, token};
use crate::support::*;
use nephele_api_types as api;
use reqwest::{Method, Response};
use serde_json::{json, Value};

/// The code of the time step `offset` steps from now.
pub fn code(secret: &str, offset: i64) -> String {
    let bytes = totp_rs::Secret::Encoded(secret.to_owned())
        .to_bytes()
        .expect("a base32 secret");
    let totp = totp_rs::TOTP::new(
        totp_rs::Algorithm::SHA1,
        6,
        1,
        30,
        bytes,
        None,
        "test".to_owned(),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    totp.generate((now + offset * 30) as u64)
}

/// A code that is surely not the right one.
pub fn wrong(right: &str) -> String {
    let n: u32 = right.parse().unwrap();
    format!("{:06}", (n + 500_000) % 1_000_000)
}

/// `login` enrols and confirms with the current code; the secret and the
/// recovery codes.
pub async fn enrolled(s: &TestServer, login: &str) -> (String, Vec<String>) {
    let user = s.client_as(login);
    let enrolment = user.enrol_totp().await.expect("enrolment");
    let codes = user
        .confirm_totp(&code(&enrolment.secret, 0))
        .await
        .expect("confirmation");
    (enrolment.secret, codes.recovery_codes)
}

/// The password grant with `otp`.
async fn grant(s: &TestServer, login: &str, otp: Option<&str>) -> Response {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", login),
        ("password", USER_PASSWORD),
    ];
    if let Some(otp) = otp {
        form.push(("otp", otp));
    }
    token(s, &form, None).await
}

/// An OAuth2 refusal: its status, `error` and `error_description`.
async fn refusal(r: Response) -> (u16, String, String) {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

/// The claims of a JWT, unverified (the suite checks signatures
/// elsewhere).
fn claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A user `alice` of a new organization, with the viewer role.
async fn alice(s: &TestServer) -> String {
    let org = s.create_org("Tenant", None).await;
    s.create_user(&org, "alice", &["viewer"]).await;
    org
}

#[tokio::test]
async fn enrolment_then_the_password_grant_asks_for_a_code_once() {
    let s = TestServer::set_up().await;
    alice(&s).await;
    let basic = s.client_as("alice");
    let enrolment = basic.enrol_totp().await.unwrap();
    assert!(
        enrolment
            .otpauth_uri
            .starts_with("otpauth://totp/Nephele:alice?"),
        "{}",
        enrolment.otpauth_uri
    );
    assert!(enrolment.otpauth_uri.contains(&enrolment.secret));
    assert!(enrolment.qr_svg.starts_with("<svg"));
    // Pending: not enabled yet, and a password alone still works.
    assert!(!basic.me().await.unwrap().mfa_enabled);
    let r = grant(&s, "alice", None).await;
    assert_eq!(r.status(), 200);
    // Enrolling again replaces the pending secret.
    let enrolment = basic.enrol_totp().await.unwrap();
    let secret = enrolment.secret;

    let now = code(&secret, 0);
    let errors = assert_refused(basic.confirm_totp(&wrong(&now)).await, 422, 3001);
    assert_eq!(fields_of(&errors), ["code"]);
    let codes = basic.confirm_totp(&now).await.unwrap().recovery_codes;
    assert_eq!(codes.len(), 10);
    let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 10);

    // HTTP Basic with the password is refused now.
    assert_refused(basic.me().await, 401, 1001);

    // The password grant wants a code.
    let (status, error, description) = refusal(grant(&s, "alice", None).await).await;
    assert_eq!(
        (status, error.as_str(), description.as_str()),
        (400, "invalid_grant", "mfa_required")
    );
    // The code that confirmed the enrolment was used: refused.
    let (status, error, description) = refusal(grant(&s, "alice", Some(&now)).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("invalid_otp"), "{description}");
    // The next step's code works, once.
    let next = code(&secret, 1);
    let t = json_of(grant(&s, "alice", Some(&next)).await, 200).await;
    let id = claims(t["id_token"].as_str().unwrap());
    assert_eq!(id["amr"], json!(["pwd", "otp"]));
    let (status, _, description) = refusal(grant(&s, "alice", Some(&next)).await).await;
    assert_eq!(status, 400);
    assert!(description.contains("invalid_otp"), "{description}");

    // The token speaks for alice, with MFA on.
    let bearer = s.client_with_token(t["access_token"].as_str().unwrap());
    let me = bearer.me().await.unwrap();
    assert!(me.mfa_enabled);
    assert!(!me.mfa_required);
    assert_eq!(me.authenticated_by, "bearer");
    // Enrolling again takes removing the active one first.
    assert_refused(bearer.enrol_totp().await, 409, 2012);

    // A recovery code works once, in any case and with the dash or not.
    let recovery = codes[3].to_uppercase().replace('-', "");
    let t = json_of(grant(&s, "alice", Some(&recovery)).await, 200).await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["amr"],
        json!(["pwd", "otp"])
    );
    let (status, _, _) = refusal(grant(&s, "alice", Some(&codes[3])).await).await;
    assert_eq!(status, 400);

    // API keys still work, as MC-Api-Key and over Basic with the e-mail.
    let key = bearer
        .create_api_key(&api::ApiKeyCreate {
            name: Some("ci".into()),
        })
        .await
        .unwrap()
        .secret
        .unwrap();
    assert!(s.client_with_key(&key).me().await.unwrap().mfa_enabled);
    let r = s
        .request(Method::GET, "/api/v2/me")
        .basic_auth("alice@example.test", Some(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(r, 200).await["data"]["mfaEnabled"], true);

    // A user without MFA gets `pwd` alone.
    let t = json_of(
        token(
            &s,
            &[
                ("grant_type", "password"),
                ("username", ADMIN_LOGIN),
                ("password", ADMIN_PASSWORD),
            ],
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );

    // Audited.
    let actions: Vec<String> = s
        .audit_events(&[("actor", "alice")])
        .await
        .into_iter()
        .map(|e| e.action)
        .collect();
    for action in ["mfa.enrol", "mfa.confirm"] {
        assert!(actions.iter().any(|a| a == action), "{action}: {actions:?}");
    }
}

#[tokio::test]
async fn wrong_codes_lock_the_second_factor() {
    let s = TestServer::set_up().await;
    alice(&s).await;
    let (secret, _) = enrolled(&s, "alice").await;
    let right = code(&secret, 1);
    for _ in 0..5 {
        let (status, error, description) =
            refusal(grant(&s, "alice", Some(&wrong(&right))).await).await;
        assert_eq!((status, error.as_str()), (400, "invalid_grant"));
        assert!(description.contains("invalid_otp"), "{description}");
    }
    // Locked: even the right code is refused, for a while.
    let r = grant(&s, "alice", Some(&right)).await;
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
    let (status, error, _) = refusal(r).await;
    assert_eq!((status, error.as_str()), (429, "invalid_grant"));
    assert!(retry.is_some_and(|s| (1..=30).contains(&s)), "{retry:?}");
    // Garbage counts too, and is no oracle either: still locked.
    let (status, _, _) = refusal(grant(&s, "alice", Some("not-a-code")).await).await;
    assert_eq!(status, 429);
    // A wrong password is refused before any code is looked at.
    let r = token(
        &s,
        &[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong-password"),
            ("otp", &right),
        ],
        None,
    )
    .await;
    let (status, error, description) = refusal(r).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(!description.contains("otp"), "{description}");
}

#[tokio::test]
async fn removal_takes_the_password_and_a_code() {
    let s = TestServer::set_up().await;
    alice(&s).await;
    // Nothing to remove yet; of a pending enrolment only the password is
    // checked.
    let basic = s.client_as("alice");
    let removal = |password: &str, code: &str| api::TotpRemoval {
        password: Some(nephele_common::Secret::new(password)),
        code: Some(code.to_owned()),
    };
    assert_refused(
        basic.remove_totp(&removal(USER_PASSWORD, "123456")).await,
        404,
        2000,
    );
    basic.enrol_totp().await.unwrap();
    basic
        .remove_totp(&removal(USER_PASSWORD, "123456"))
        .await
        .unwrap();
    assert_refused(basic.confirm_totp("123456").await, 409, 2012);

    let (secret, recovery) = enrolled(&s, "alice").await;
    let t = json_of(grant(&s, "alice", Some(&recovery[0])).await, 200).await;
    let bearer = s.client_with_token(t["access_token"].as_str().unwrap());
    let next = code(&secret, 1);
    let errors = assert_refused(
        bearer.remove_totp(&removal("wrong-password", &next)).await,
        422,
        3001,
    );
    assert_eq!(fields_of(&errors), ["password"]);
    let errors = assert_refused(
        bearer
            .remove_totp(&removal(USER_PASSWORD, &wrong(&next)))
            .await,
        422,
        3001,
    );
    assert_eq!(fields_of(&errors), ["code"]);
    // Both missing: both named.
    let errors = assert_refused(
        bearer.remove_totp(&api::TotpRemoval::default()).await,
        422,
        3001,
    );
    assert_eq!(fields_of(&errors), ["password", "code"]);
    bearer
        .remove_totp(&removal(USER_PASSWORD, &next))
        .await
        .unwrap();

    // Off: the password alone works again, on every scheme.
    assert!(!basic.me().await.unwrap().mfa_enabled);
    let t = json_of(grant(&s, "alice", None).await, 200).await;
    assert_eq!(
        claims(t["id_token"].as_str().unwrap())["amr"],
        json!(["pwd"])
    );
    let mut statuses: Vec<u16> = s
        .audit_events(&[("action", "mfa.remove")])
        .await
        .iter()
        .map(|e| e.status)
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, [204, 204, 404, 422, 422, 422]);
}

#[tokio::test]
async fn an_organization_requiring_mfa_holds_everyone_below_it_to_enrolment() {
    let s = TestServer::set_up().await;
    let root = s.admin_client();
    let tenant = s.create_org("Tenant", None).await;
    let child = s.create_org("Child", Some(&tenant)).await;
    s.create_user(&tenant, "owner", &["admin"]).await;
    s.create_user(&child, "carol", &["admin"]).await;
    let elsewhere = s.create_org("Elsewhere", None).await;
    s.create_user(&elsewhere, "dave", &["viewer"]).await;

    let patch = |on: bool| api::OrganizationUpdate {
        mfa_required: Some(on),
        ..Default::default()
    };
    let org = root
        .patch_organization(&tenant, &patch(true))
        .await
        .unwrap();
    assert!(org.mfa_required);
    assert!(root.organization(&tenant).await.unwrap().mfa_required);
    assert!(!root.organization(&child).await.unwrap().mfa_required);

    // Carol, below the tenant, may read herself and enrol, nothing else.
    let carol = s.client_as("carol");
    let me = carol.me().await.unwrap();
    assert!(me.mfa_required && !me.mfa_enabled);
    let errors = assert_refused(carol.users(None::<&str>).await, 403, 1003);
    assert!(errors[0].message.contains("MFA"), "{errors:?}");
    assert_eq!(errors[0].context["reason"], "mfa_enrolment_required");
    assert_refused(
        carol
            .create_api_key(&api::ApiKeyCreate {
                name: Some("sneaky".into()),
            })
            .await,
        403,
        1003,
    );
    // The same holds for a token she gets with her password.
    let t = json_of(grant(&s, "carol", None).await, 200).await;
    let carol_token = s.client_with_token(t["access_token"].as_str().unwrap());
    assert_refused(carol_token.users(None::<&str>).await, 403, 1003);
    // The owner of the tenant is held too; users elsewhere are not, and
    // neither is the root's admin.
    assert_refused(s.client_as("owner").users(None::<&str>).await, 403, 1003);
    s.client_as("dave").users(None::<&str>).await.unwrap();
    root.users(None::<&str>).await.unwrap();

    // Enrolled, carol signs in with a code and works again.
    let (secret, _) = enrolled(&s, "carol").await;
    let t = json_of(grant(&s, "carol", Some(&code(&secret, 1))).await, 200).await;
    let carol = s.client_with_token(t["access_token"].as_str().unwrap());
    let me = carol.me().await.unwrap();
    assert!(me.mfa_required && me.mfa_enabled);
    carol.users(None::<&str>).await.unwrap();

    // An administrator below cannot lift what was required above it:
    // carol may require MFA of her own organization, not lift it again.
    assert!(
        carol
            .patch_organization(&child, &patch(true))
            .await
            .unwrap()
            .mfa_required
    );
    let errors = assert_refused(
        carol.patch_organization(&child, &patch(false)).await,
        403,
        1003,
    );
    assert_eq!(errors[0].context["field"], "mfaRequired");
    // The tenant's is not hers to see.
    assert_refused(
        carol.patch_organization(&tenant, &patch(false)).await,
        404,
        2000,
    );
    // From above, it is lifted.
    assert!(
        !root
            .patch_organization(&child, &patch(false))
            .await
            .unwrap()
            .mfa_required
    );
    assert!(
        !root
            .patch_organization(&tenant, &patch(false))
            .await
            .unwrap()
            .mfa_required
    );
    s.client_as("owner").users(None::<&str>).await.unwrap();
}

#[tokio::test]
async fn api_clients_have_no_second_factor() {
    let s = TestServer::set_up().await;
    let (id, secret) = create_client(&s, &api_client_body("machine")).await;
    let t = json_of(
        token(
            &s,
            &[("grant_type", "client_credentials")],
            Some((&id, &secret)),
        )
        .await,
        200,
    )
    .await;
    let client = s.client_with_token(t["access_token"].as_str().unwrap());
    assert!(!client.me().await.unwrap().mfa_enabled);
    assert_refused(client.enrol_totp().await, 403, 1003);
    assert_refused(client.confirm_totp("123456").await, 403, 1003);
    assert_refused(
        client
            .remove_totp(&api::TotpRemoval {
                password: Some(nephele_common::Secret::new("x")),
                code: Some("123456".into()),
            })
            .await,
        403,
        1003,
    );
    // An organization that requires MFA holds its users, not its
    // clients: they have no second factor to give.
    let root = s.root_org().await;
    s.admin_client()
        .patch_organization(
            &root,
            &api::OrganizationUpdate {
                mfa_required: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    client.users(None::<&str>).await.unwrap();
}
