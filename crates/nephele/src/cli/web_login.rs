//! `nephele login --web`: the authorization code flow with PKCE through a
//! loopback redirect (RFC 8252), as `gh auth login` does. The CLI is the
//! platform's own public client ([`ApiClient::CLI`]); it listens on a port
//! of 127.0.0.1 for the browser to come back with the code, so the
//! password (and the second factor) is typed only into the server's page.

use nephele_app::signin::{pkce_challenge, random_token};
use nephele_client::{Client, Credentials, Request};
use nephele_store::ApiClient;
use serde_json::Value;
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::profile::{Login, Profile};
use super::session::LOGIN_SCOPE;
use super::{Exit, Failure};

/// How long the CLI waits for the browser.
const PATIENCE: Duration = Duration::from_secs(600);

fn failed(e: impl std::fmt::Display) -> Failure {
    Failure::new(Exit::Error, format!("browser sign-in: {e}"))
}

/// Signs in at `client`'s server through the browser; `open` starts the
/// system's browser on the URL (which is printed either way). Answers the
/// profile and the user's login.
pub async fn web_login(client: &Client, open: bool) -> Result<(Profile, String), Failure> {
    let discovery = client
        .send(&Request::get("/.well-known/openid-configuration"))
        .await?
        .body;
    let field = |name: &str| {
        discovery[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| failed(format!("the server's discovery document has no {name}")))
    };
    let (issuer, endpoint) = (field("issuer")?, field("authorization_endpoint")?);

    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(|e| failed(format!("cannot listen on 127.0.0.1: {e}")))?;
    let port = listener.local_addr().map_err(failed)?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/callback");
    let verifier = random_token();
    let challenge = pkce_challenge(&verifier);
    let state = random_token();
    let mut url = url::Url::parse(&endpoint).map_err(failed)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &ApiClient::CLI.to_string())
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", LOGIN_SCOPE)
        .append_pair("state", &state)
        .append_pair("nonce", &random_token())
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");

    eprintln!("Open this URL in a browser to sign in:\n\n  {url}\n");
    if open && webbrowser::open(url.as_str()).is_ok() {
        eprintln!("(opened in your browser)");
    }
    eprintln!("Waiting for the browser…");
    let back = tokio::time::timeout(PATIENCE, callback(&listener))
        .await
        .map_err(|_| failed("no answer from the browser within 10 minutes"))??;

    let param = |name: &str| back.get(name).map(String::as_str);
    let ours = param("state").is_some_and(|s| bool::from(s.as_bytes().ct_eq(state.as_bytes())));
    if !ours {
        return Err(failed("the browser came back from another sign-in (state)"));
    }
    if param("iss") != Some(issuer.as_str()) {
        return Err(failed(
            "the answer is not from the server signed in to (iss)",
        ));
    }
    if let Some(error) = param("error") {
        let why = param("error_description").unwrap_or(error);
        return Err(Failure::new(Exit::Auth, format!("sign-in refused: {why}")));
    }
    let code = param("code").ok_or_else(|| failed("the browser brought back no code"))?;
    let client_id = ApiClient::CLI.to_string();
    let token = client
        .token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &redirect_uri),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .await?;
    let me = client
        .clone()
        .with_credentials(Credentials::Bearer(token.access_token.clone()))
        .send(&Request::get("/api/v2/me"))
        .await?
        .body;
    let login = me
        .pointer("/data/principal/login")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let profile = Profile {
        url: client.base_url(),
        login: Login::Password {
            login: login.clone(),
            access_token: token.access_token,
            expires_on: token.expires_on,
            refresh_token: token.refresh_token,
            client_id: Some(client_id),
        },
        cacert: None,
    };
    Ok((profile, login))
}

/// The query of the browser's `GET /callback`. Anything else the browser
/// asks for (a favicon) is a 404 and the wait goes on.
async fn callback(listener: &TcpListener) -> Result<HashMap<String, String>, Failure> {
    loop {
        let (mut stream, _) = listener.accept().await.map_err(failed)?;
        let Some(target) = request_target(&mut stream).await else {
            continue;
        };
        let Some(query) = target.strip_prefix("/callback?") else {
            let _ = respond(&mut stream, "404 Not Found", "Not found.").await;
            continue;
        };
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let page = if params.contains_key("code") {
            "You are signed in to Nephele. You can close this tab and go back to the terminal."
        } else {
            "The sign-in did not finish. The terminal says why."
        };
        let _ = respond(&mut stream, "200 OK", page).await;
        return Ok(params);
    }
}

/// The target of an HTTP/1.1 `GET` (its first line), read within 8 KiB.
async fn request_target(stream: &mut TcpStream) -> Option<String> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 || buffer.len() + n > 8192 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buffer);
    let mut words = head.lines().next()?.split(' ');
    match (words.next(), words.next()) {
        (Some("GET"), Some(target)) => Some(target.to_owned()),
        _ => None,
    }
}

async fn respond(stream: &mut TcpStream, status: &str, text: &str) -> std::io::Result<()> {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Nephele</title></head>\
         <body><p>{text}</p></body></html>"
    );
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nContent-Security-Policy: default-src 'none'\r\n\
         Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
