//! Invitations and password reset by mail (SPEC §5): the server sends
//! through a real SMTP conversation to a mail sink the test runs on
//! 127.0.0.1, and the test reads what arrived, follows its link in a
//! cookie-keeping "browser", and sets a password. Reset requests never
//! say whether the account exists; links are single-use, expire, and do
//! nothing for a disabled user or a suspended organization.
//!
//! The sink is a few lines of tokio speaking the SMTP a submission client
//! needs (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT): the SMTP server
//! crates bring their own threads and TLS stacks for what this needs.

use crate::identity::{password_grant, token};
use crate::signin::Browser;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// One message as the sink received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, dot-unstuffed, quoted-printable undone.
    pub text: String,
}

impl Received {
    /// The first link in the message to `path`.
    pub fn link(&self, path: &str) -> String {
        let re = regex::Regex::new(&format!(
            r"https?://[^\s]+{}\?token=[A-Za-z0-9_-]+",
            regex::escape(path)
        ))
        .unwrap();
        re.find(&self.text)
            .unwrap_or_else(|| panic!("no {path} link in: {}", self.text))
            .as_str()
            .to_owned()
    }
}

/// A mail server on 127.0.0.1 that keeps what it is sent.
pub struct MailSink {
    pub addr: std::net::SocketAddr,
    received: mpsc::UnboundedReceiver<Received>,
}

/// Undoes quoted-printable, if the message is so encoded: soft line
/// breaks and `=XX`.
fn unquote(text: &str) -> String {
    let quoted = text
        .to_ascii_lowercase()
        .contains("content-transfer-encoding: quoted-printable");
    if !quoted {
        return text.to_owned();
    }
    let joined = text.replace("=\r\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn converse(stream: tokio::net::TcpStream, sent: mpsc::UnboundedSender<Received>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let _ = write.write_all(b"220 sink.test ESMTP\r\n").await;
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split([' ', ':'])
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" => b"250 sink.test\r\n",
            "MAIL" => {
                from = command[10..].trim().to_owned();
                to.clear();
                b"250 OK\r\n"
            }
            "RCPT" => {
                to.push(command[8..].trim().trim_matches(['<', '>']).to_owned());
                b"250 OK\r\n"
            }
            "DATA" => {
                let _ = write.write_all(b"354 end with .\r\n").await;
                let mut data = String::new();
                loop {
                    let mut line = String::new();
                    if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let _ = sent.send(Received {
                    from: from.clone(),
                    to: to.clone(),
                    text: unquote(&data),
                });
                b"250 queued\r\n"
            }
            "RSET" | "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"502 not here\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

impl MailSink {
    pub async fn start() -> MailSink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(converse(stream, tx.clone()));
            }
        });
        MailSink { addr, received: rx }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// The next message (waiting up to 10 s).
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(Duration::from_secs(10), self.received.recv())
            .await
            .expect("a mail within 10 s")
            .expect("the sink runs")
    }

    /// Asserts that no message comes within `wait`.
    pub async fn nothing_within(&mut self, wait: Duration) {
        if let Ok(Some(m)) = tokio::time::timeout(wait, self.received.recv()).await {
            panic!("an unexpected mail: {m:?}");
        }
    }
}

/// A server set up to send mail to a new sink.
async fn mailing() -> (MailSink, TestServer) {
    mailing_from(Some("Nephele <nephele@cloud.test>")).await
}

/// …from `from` (`None`: the server's default).
async fn mailing_from(from: Option<&str>) -> (MailSink, TestServer) {
    let sink = MailSink::start().await;
    let url = sink.url();
    let from = from.map(str::to_owned);
    let s = TestServer::set_up_with(move |c| {
        c.smtp_url = Some(url);
        c.smtp_from = from;
    })
    .await;
    (sink, s)
}

/// The root admin invites `login` (no password) into `org`: the answer.
async fn invite(s: &TestServer, org: &str, login: &str) -> Value {
    let body =
        json!({"login": login, "email": format!("{login}@example.test"), "roles": ["viewer"]});
    let r = s
        .admin_json(Method::POST, &format!("/api/v2/users?org_id={org}"), &body)
        .await;
    json_of(r, 201).await["data"].clone()
}

async fn ask_reset(s: &TestServer, login: &str) -> reqwest::Response {
    s.post("/api/2/idp/password-reset", &json!({ "login": login }))
        .await
}

/// The password grant: its status and body.
async fn grant(s: &TestServer, login: &str, password: &str, scope: &str) -> (u16, Value) {
    let r = password_grant(s, login, password, scope).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Opens `link` in `browser` and sets `password` with its form.
async fn set_password(browser: &mut Browser, link: &str, password: &str) {
    let page = browser.get(link).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let done = browser
        .post(&action(link), &filled(&page, password, password))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
}

/// A connection to the server's database.
async fn database(s: &TestServer) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(&s.database_url)
        .await
        .unwrap()
}

/// Runs `sql` in the server's database (to move a link's times, as the
/// clock would): the rows it touched.
async fn in_database(s: &TestServer, sql: &str) -> u64 {
    sqlx::query(sql)
        .execute(&mut database(s).await)
        .await
        .unwrap()
        .rows_affected()
}

/// The form of a link's page, with `password` and `confirmation` filled in.
fn filled(
    page: &crate::signin::Answer,
    password: &str,
    confirmation: &str,
) -> Vec<(String, String)> {
    let mut form = page.hidden_fields();
    let names: Vec<&str> = form.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["token", "form_token"], "{}", page.body);
    form.push(("password".into(), password.into()));
    form.push(("password_confirmation".into(), confirmation.into()));
    form
}

/// The path a link's form posts to: the link without its query.
fn action(link: &str) -> String {
    link.split('?').next().unwrap().to_owned()
}

const NEW_PASSWORD: &str = "a-brand-new-password";

#[tokio::test]
async fn an_invited_user_sets_its_password_through_the_mailed_link() {
    let (mut sink, s) = mailing().await;
    let org = s.create_org("Tenant", None).await;
    let created = invite(&s, &org, "carol").await;
    assert_eq!(created["status"], "invited");
    assert!(created.get("activationUrl").is_none(), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let mail = sink.next().await;
    assert_eq!(mail.to, ["carol@example.test"]);
    assert!(mail.from.contains("nephele@cloud.test"), "{}", mail.from);
    assert!(
        mail.text.contains("Subject: Your Nephele account"),
        "{}",
        mail.text
    );
    let link = mail.link("/api/2/idp/activate");
    assert!(link.starts_with(&s.url), "{link}");

    // Invited: no password works yet.
    let (status, _) = grant(&s, "carol", USER_PASSWORD, "openid").await;
    assert_eq!(status, 400);

    // The page can be shown any number of times (mail scanners fetch it).
    let mut browser = Browser::default();
    for _ in 0..2 {
        let page = browser.get(&link).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains(r#"autocomplete="new-password""#));
        assert!(page.body.contains(r#"autocomplete="username""#));
        assert!(page.body.contains("carol"));
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert_eq!(page.headers["cache-control"], "no-store");
    }
    let page = browser.get(&link).await;

    // A form from another browser (no cookie) is refused, and nothing spent.
    let r = Browser::default()
        .post(&action(&link), &filled(&page, NEW_PASSWORD, NEW_PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("expired"), "{}", r.body);
    // Two different passwords, or a short one: the form again, link kept.
    let r = browser
        .post(
            &action(&link),
            &filled(&page, NEW_PASSWORD, "something-else"),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("not the same"), "{}", r.body);
    let r = browser
        .post(&action(&link), &filled(&page, "short", "short"))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("at least 8"), "{}", r.body);

    let done = browser
        .post(&action(&link), &filled(&page, NEW_PASSWORD, NEW_PASSWORD))
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("Your password is set"), "{}", done.body);

    let user = json_of(
        s.admin(Method::GET, &format!("/api/v2/users/{id}"))
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(user["data"]["status"], "enabled");
    assert!(user["data"].get("activationUrl").is_none());
    let (status, body) = grant(&s, "carol", NEW_PASSWORD, "openid").await;
    assert_eq!(status, 200, "{body}");

    // Used: the link is dead, shown or posted.
    let again = browser.get(&link).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.body.contains("not valid"), "{}", again.body);
    let again = browser
        .post(
            &action(&link),
            &filled(&page, "another-password", "another-password"),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    let (status, _) = grant(&s, "carol", "another-password", "openid").await;
    assert_eq!(status, 400);

    // Audited, as the user it acted on.
    let events = s.audit_events(&[("action", "users.activate")]).await;
    let ok: Vec<_> = events.iter().filter(|e| e.outcome == "success").collect();
    assert_eq!(ok.len(), 1, "{events:?}");
    assert_eq!(ok[0].target_id.as_deref(), Some(id.as_str()));
    assert_eq!(ok[0].actor_name.as_deref(), Some("carol"));
    // A made-up token is as invalid as a used one.
    let bogus = format!("{}?token={}", action(&link), "A".repeat(43));
    assert_eq!(browser.get(&bogus).await.status, StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test]
async fn a_reset_link_goes_only_to_a_real_account_and_ends_its_sessions() {
    let (mut sink, s) = mailing().await;
    let org = s.create_org("Tenant", None).await;
    s.create_user(&org, "dave", &["viewer"]).await;
    let (status, tokens) = grant(&s, "dave", USER_PASSWORD, "openid offline_access").await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // Unknown and known accounts get the same answer; only one mail goes.
    let unknown = ask_reset(&s, "nobody@example.test").await;
    let known = ask_reset(&s, "Dave@Example.test").await;
    for r in [unknown, known] {
        assert_eq!(r.status(), 202);
        assert_eq!(r.text().await.unwrap(), "");
    }
    let mail = sink.next().await;
    assert_eq!(mail.to, ["dave@example.test"]);
    assert!(
        mail.text.contains("Subject: Reset your Nephele password"),
        "{}",
        mail.text
    );
    sink.nothing_within(Duration::from_millis(500)).await;
    // Asked again at once (here through the typed client, with no
    // credentials): still 202, but no second mail this minute.
    let anonymous = nephele_client::Client::new(&s.url, false, None).unwrap();
    anonymous.request_password_reset("dave").await.unwrap();
    sink.nothing_within(Duration::from_millis(500)).await;

    let link = mail.link("/api/2/idp/reset");
    let mut browser = Browser::default();
    // Its form, kept to be posted again once spent.
    let page = browser.get(&link).await;
    set_password(&mut browser, &link, NEW_PASSWORD).await;

    let (status, _) = grant(&s, "dave", USER_PASSWORD, "openid").await;
    assert_eq!(status, 400, "the old password still works");
    let (status, body) = grant(&s, "dave", NEW_PASSWORD, "openid").await;
    assert_eq!(status, 200, "{body}");
    let r = token(
        &s,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        None,
    )
    .await;
    assert_eq!(r.status(), 400, "a refresh token outlived the reset");
    let old_access = tokens["access_token"].as_str().unwrap();
    let r = s
        .request(Method::GET, "/api/v2/me")
        .bearer_auth(old_access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "an access token outlived the reset");

    // Single use.
    let again = browser
        .post(
            &action(&link),
            &filled(&page, "third-password-1", "third-password-1"),
        )
        .await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert_eq!(browser.get(&link).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.audit_events(&[("action", "users.reset-password")])
            .await
            .iter()
            .filter(|e| e.outcome == "success")
            .count(),
        1
    );

    // Bad bodies are the contract's errors.
    let r = s.post("/api/2/idp/password-reset", &json!({})).await;
    assert_error(r, 422, 3001).await;
    let r = s
        .post("/api/2/idp/password-reset", &json!({"login": 7}))
        .await;
    assert_error(r, 400, 3000).await;
    s.stop().await;
}

#[tokio::test]
async fn an_expired_link_shows_an_error_page() {
    let (mut sink, s) = mailing().await;
    let org = s.create_org("Tenant", None).await;
    s.create_user(&org, "erin", &["viewer"]).await;
    assert_eq!(ask_reset(&s, "erin").await.status(), 202);
    let link = sink.next().await.link("/api/2/idp/reset");
    let mut browser = Browser::default();
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);

    // An hour on: the link's time is up (set in the database, as the
    // clock would have it).
    assert_eq!(
        in_database(&s, "UPDATE link_tokens SET expires_at = 1").await,
        1
    );
    let stale = browser.get(&link).await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    assert!(stale.body.contains("expired"), "{}", stale.body);
    let r = browser
        .post(&action(&link), &filled(&page, NEW_PASSWORD, NEW_PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let (status, _) = grant(&s, "erin", USER_PASSWORD, "openid").await;
    assert_eq!(status, 200, "the password changed");
    // Only the hash of a token is stored.
    let token = link.split("token=").nth(1).unwrap();
    let hashes: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM link_tokens")
        .fetch_all(&mut database(&s).await)
        .await
        .unwrap();
    assert!(
        hashes.iter().all(|h| h != token && h.len() == 64),
        "{hashes:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn without_a_mail_server_the_answer_carries_the_link_once() {
    let s = TestServer::set_up().await;
    let org = s.create_org("Tenant", None).await;
    let created = invite(&s, &org, "oscar").await;
    assert_eq!(created["status"], "invited");
    let link = created["activationUrl"]
        .as_str()
        .expect("activationUrl")
        .to_owned();
    assert!(
        link.starts_with(&format!("{}/api/2/idp/activate?token=", s.url)),
        "{link}"
    );
    let id = created["id"].as_str().unwrap();
    let shown = s
        .admin(Method::GET, &format!("/api/v2/users/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!shown.contains("activationUrl"), "{shown}");
    let listed = s
        .admin(Method::GET, &format!("/api/v2/users?org_id={org}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!listed.contains("activationUrl"), "{listed}");
    // A reset asked for still answers 202 (and sends nothing).
    assert_eq!(ask_reset(&s, "oscar").await.status(), 202);

    set_password(&mut Browser::default(), &link, NEW_PASSWORD).await;
    let (status, body) = grant(&s, "oscar", NEW_PASSWORD, "openid").await;
    assert_eq!(status, 200, "{body}");

    // A user made with a password is enabled and carries no link.
    let made = s
        .admin_json(
            Method::POST,
            &format!("/api/v2/users?org_id={org}"),
            &json!({"login": "pat", "email": "pat@example.test", "password": USER_PASSWORD}),
        )
        .await;
    let made = json_of(made, 201).await;
    assert_eq!(made["data"]["status"], "enabled");
    assert!(made["data"].get("activationUrl").is_none());
    s.stop().await;
}

#[tokio::test]
async fn disabled_users_and_suspended_organizations_get_nothing_from_a_link() {
    let (mut sink, s) = mailing().await;
    let org = s.create_org("Tenant", None).await;
    let frank = s.create_user(&org, "frank", &["viewer"]).await;
    let george = s.create_user(&org, "george", &["viewer"]).await;
    let disable = |id: String| {
        let s = &s;
        async move {
            let r = s
                .admin_json(
                    Method::PATCH,
                    &format!("/api/v2/users/{id}"),
                    &json!({"status": "disabled"}),
                )
                .await;
            json_of(r, 200).await;
        }
    };
    disable(george.clone()).await;

    // A disabled user is sent nothing.
    assert_eq!(ask_reset(&s, "george").await.status(), 202);
    assert_eq!(ask_reset(&s, "frank").await.status(), 202);
    let mail = sink.next().await;
    assert_eq!(mail.to, ["frank@example.test"]);
    sink.nothing_within(Duration::from_millis(500)).await;

    // Disabled after the link was sent: the link is dead, and does not
    // enable the user.
    let link = mail.link("/api/2/idp/reset");
    let mut browser = Browser::default();
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::OK);
    disable(frank.clone()).await;
    assert_eq!(browser.get(&link).await.status, StatusCode::BAD_REQUEST);
    let r = browser
        .post(&action(&link), &filled(&page, NEW_PASSWORD, NEW_PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let user = s.admin_client().user(&frank).await.unwrap();
    assert_eq!(user.status, "disabled");

    // A suspended organization's users: refused, in words.
    let other = s.create_org("Other", None).await;
    s.create_user(&other, "hanna", &["viewer"]).await;
    assert_eq!(ask_reset(&s, "hanna").await.status(), 202);
    let link = sink.next().await.link("/api/2/idp/reset");
    let form = browser.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    let r = s
        .admin_json(
            Method::PATCH,
            &format!("/api/v2/organizations/{other}"),
            &json!({"status": "suspended"}),
        )
        .await;
    json_of(r, 200).await;
    let page = browser.get(&link).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("suspended"), "{}", page.body);
    let r = browser
        .post(&action(&link), &filled(&form, NEW_PASSWORD, NEW_PASSWORD))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let (status, _) = grant(&s, "hanna", NEW_PASSWORD, "openid").await;
    assert_eq!(status, 400);
    s.stop().await;
}

#[tokio::test]
async fn asking_for_a_reset_re_sends_a_lost_invitation() {
    // The default From: nephele@ and the public URL's host, which is an
    // address here, so localhost.
    let (mut sink, s) = mailing_from(None).await;
    let org = s.create_org("Tenant", None).await;
    invite(&s, &org, "ines").await;
    let mail = sink.next().await;
    assert_eq!(mail.from, "<nephele@localhost>");
    let first = mail.link("/api/2/idp/activate");
    // Within the minute, no second mail.
    assert_eq!(ask_reset(&s, "ines").await.status(), 202);
    sink.nothing_within(Duration::from_millis(500)).await;

    // A minute on (set in the database), a new invitation replaces it.
    in_database(&s, "UPDATE link_tokens SET created_at = 1").await;
    assert_eq!(ask_reset(&s, "ines@example.test").await.status(), 202);
    let mail = sink.next().await;
    assert!(
        mail.text.contains("Subject: Your Nephele account"),
        "{}",
        mail.text
    );
    let second = mail.link("/api/2/idp/activate");
    assert_ne!(first, second);
    let mut browser = Browser::default();
    assert_eq!(browser.get(&first).await.status, StatusCode::BAD_REQUEST);
    set_password(&mut browser, &second, NEW_PASSWORD).await;
    let (status, body) = grant(&s, "ines", NEW_PASSWORD, "openid").await;
    assert_eq!(status, 200, "{body}");
    s.stop().await;
}

#[tokio::test]
async fn the_login_page_links_to_a_form_that_asks_for_a_reset_link() {
    use crate::signin::{authorize_url, pkce, sign_in_client};
    let (mut sink, s) = mailing().await;
    let org = s.create_org("Tenant", None).await;
    s.create_user(&org, "gina", &["viewer"]).await;
    let (client, _) = sign_in_client(&s, "Portal", "client_secret_post", true).await;
    let mut browser = Browser::default();
    let login = browser
        .get(&authorize_url(&s, &client, &pkce().1, &[]))
        .await;
    assert!(
        login
            .body
            .contains(r#"<a href="/api/2/idp/forgot-password">Forgot your password?</a>"#),
        "{}",
        login.body
    );
    let forgot = format!("{}/api/2/idp/forgot-password", s.url);
    let page = browser.get(&forgot).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains(r#"autocomplete="username""#));
    let form_token = page.hidden_fields();
    assert_eq!(form_token[0].0, "form_token");

    // Another browser's form, or none: the form again.
    let mut stranger = Browser::default();
    let mut forged = form_token.clone();
    forged.push(("login".into(), "gina".into()));
    assert_eq!(
        stranger.post(&forgot, &forged).await.status,
        StatusCode::FORBIDDEN
    );
    sink.nothing_within(Duration::from_millis(300)).await;

    // The same page for an account and for none; one mail, to the account.
    for login in ["nobody", "gina"] {
        let mut form = form_token.clone();
        form.push(("login".into(), login.into()));
        let sent = browser.post(&forgot, &form).await;
        assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
        assert!(sent.body.contains("Check your mail"), "{}", sent.body);
    }
    let mail = sink.next().await;
    assert_eq!(mail.to, ["gina@example.test"]);
    assert!(mail.link("/api/2/idp/reset").contains("token="));
    let mut empty = form_token.clone();
    empty.push(("login".into(), " ".into()));
    assert_eq!(
        browser.post(&forgot, &empty).await.status,
        StatusCode::BAD_REQUEST
    );
    s.stop().await;

    // A server that sends no mail offers no such page.
    let quiet = TestServer::set_up().await;
    let (client, _) = sign_in_client(&quiet, "Portal", "client_secret_post", true).await;
    let login = Browser::default()
        .get(&authorize_url(&quiet, &client, &pkce().1, &[]))
        .await;
    assert!(!login.body.contains("forgot-password"), "{}", login.body);
    let none = Browser::default()
        .get(&format!("{}/api/2/idp/forgot-password", quiet.url))
        .await;
    assert_eq!(none.status, StatusCode::NOT_FOUND);
    quiet.stop().await;
}
