//! Sign-in in a real browser: headless Chromium, driven over WebDriver
//! (chromedriver), signs in with a password and a TOTP code and lands on
//! the client's redirect with a code.
//!
//! These tests need Debian's `chromium` and `chromium-driver`. Where they
//! are missing the tests say so and pass, so the rest of the suite runs on
//! a machine with only Rust; CI sets `NEPHELE_REQUIRE_BROWSER=1`, which
//! turns a missing browser into a failure.

use crate::mfa::{code, enrolled};
use crate::signin::pkce;
use crate::support::*;
use fantoccini::{Client, ClientBuilder, Locator};
use nephele_api_types as api;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn browser_present() -> bool {
    let present =
        std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var_os("NEPHELE_REQUIRE_BROWSER").is_none(),
            "NEPHELE_REQUIRE_BROWSER is set and {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        eprintln!("chromium or chromedriver is missing: browser test skipped");
    }
    present
}

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "chromedriver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Driver {
            child,
            port,
            _profile: tempfile::tempdir().unwrap(),
        }
    }

    /// A new headless Chromium session, with the flags this machine
    /// needs (no background traffic to a network it cannot reach).
    async fn session(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1100,900",
                    format!("--user-data-dir={}", self._profile.path().display()),
                ],
            }),
        );
        // Two rustls backends are in the test's tree: pick one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        ClientBuilder::rustls()
            .expect("a TLS connector")
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session")
    }
}

/// The client's redirect target: a tiny page on a loopback port that
/// answers anything with 200, so the browser really lands there.
async fn landing_page() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let body = "<!DOCTYPE html><title>Callback</title><p>Signed in.</p>";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

/// Waits until the browser's URL satisfies `done`.
async fn wait_for_url(browser: &Client, done: impl Fn(&str) -> bool) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let url = browser.current_url().await.unwrap();
        if done(url.as_str()) {
            return url;
        }
        assert!(Instant::now() < deadline, "still at {url}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Keeps a screenshot of the page for whoever reads the test's output.
async fn screenshot(browser: &Client, name: &str) {
    let png = browser.screenshot().await.unwrap();
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

#[tokio::test]
async fn chromium_signs_in_with_a_password_and_a_totp_code() {
    if !browser_present() {
        return;
    }
    let s = TestServer::set_up().await;
    let org = s.create_org("Customer", None).await;
    s.create_user(&org, "bob", &["viewer"]).await;
    let (secret, _) = enrolled(&s, "bob").await;
    let port = landing_page().await;
    let redirect = format!("http://127.0.0.1:{port}/callback");
    let client = s
        .create_api_client(&api::ApiClientCreate {
            token_endpoint_auth_method: Some("client_secret_post".into()),
            data: Some(api::ApiClientData {
                client_name: Some("Portal".into()),
                redirect_uris: Some(vec![redirect.clone()]),
                first_party: Some(true),
                ..Default::default()
            }),
            ..api_client_body("Portal")
        })
        .await;
    let (verifier, challenge) = pkce();
    let mut authorize = url::Url::parse(&format!("{}/api/2/idp/authorize", s.url)).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id.to_string())
        .append_pair("redirect_uri", &redirect)
        .append_pair("scope", "openid email")
        .append_pair("state", "browser-state")
        .append_pair("nonce", "browser-nonce")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");

    let driver = Driver::start().await;
    let browser = driver.session().await;
    browser.goto(authorize.as_str()).await.unwrap();
    assert_eq!(browser.title().await.unwrap(), "Sign in · Nephele");
    screenshot(&browser, "sign-in").await;
    // The labels name their inputs: what a person (and a password manager) sees.
    let username = browser
        .find(Locator::Css("input[autocomplete=username]"))
        .await
        .unwrap();
    username.send_keys("bob").await.unwrap();
    let password = browser
        .find(Locator::Css("input[autocomplete=current-password]"))
        .await
        .unwrap();
    password.send_keys(USER_PASSWORD).await.unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    let otp = browser
        .wait()
        .for_element(Locator::Css("input[autocomplete=one-time-code]"))
        .await
        .unwrap();
    screenshot(&browser, "second-factor").await;
    otp.send_keys(&code(&secret, 1)).await.unwrap();
    browser
        .find(Locator::Css("button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();

    // The form's answer redirects to the client: the CSP's form-action lets it.
    let landed = wait_for_url(&browser, |u| u.starts_with(&redirect)).await;
    let back: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert_eq!(back["state"], "browser-state");
    assert_eq!(back["iss"], s.url);
    let source = browser.source().await.unwrap();
    assert!(source.contains("Signed in."), "{source}");
    browser.close().await.unwrap();

    let r = s
        .request(reqwest::Method::POST, "/api/2/idp/token")
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", back["code"].as_str()),
            ("redirect_uri", redirect.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", &client.client_id.to_string()),
            ("client_secret", client.client_secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    let tokens = json_of(r, 200).await;
    let access = tokens["access_token"].as_str().unwrap();
    let me = s.client_with_token(access).me().await.unwrap();
    assert_eq!(me.principal.login, "bob");
}
