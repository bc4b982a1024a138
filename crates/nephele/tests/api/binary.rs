//! The `nephele` binary itself: flags, the setup token file, `--demo`,
//! TLS, and a clean exit on SIGTERM.

use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub(crate) struct Process {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Process {
    pub(crate) fn spawn(args: &[&str], env: &[(&str, &str)]) -> Process {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_nephele"));
        cmd.args(args)
            .env_remove("NEPHELE_DATABASE_URL")
            .env("NEPHELE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn nephele");
        let (tx, rx) = mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Process {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a line containing `needle`; returns it.
    pub(crate) fn wait_for(&mut self, needle: &str) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {needle:?}; saw:\n{}", self.seen.join("\n")),
            }
        }
    }

    pub(crate) fn url(&mut self) -> String {
        let line = self.wait_for("listening on ");
        let start = line.find("listening on ").unwrap() + "listening on ".len();
        line[start..].split_whitespace().next().unwrap().to_owned()
    }

    pub(crate) fn terminate(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let mut seen = std::mem::take(&mut self.seen);
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    seen.push(l);
                }
                return (status, seen);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Process {
    /// `kill -9`: no shutdown, no flush, nothing handed back.
    pub(crate) fn kill9(mut self) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-KILL", &pid]).status().unwrap();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A test that failed half-way must not leave a server behind.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets a server up with the given setup token; asserts it worked.
pub(crate) async fn set_up_with(url: &str, token: &str) {
    let mut body = setup_body();
    body["setupToken"] = serde_json::json!(token);
    let r = reqwest::Client::new()
        .post(format!("{url}/occm/setup/init"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "setup: {}", r.text().await.unwrap());
}

fn db_args(url: &str) -> Vec<String> {
    vec!["--database-url".into(), url.into()]
}

#[tokio::test]
async fn serve_writes_a_private_setup_token_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _pg) = test_database(dir.path()).await;
    let data = dir.path().to_str().unwrap();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--data-dir", data];
    let extra = db_args(&db);
    args.extend(extra.iter().map(String::as_str));
    let mut p = Process::spawn(&args, &[]);
    let url = p.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"));

    let token_path = dir.path().join("setup-token");
    let token = std::fs::read_to_string(&token_path)
        .unwrap()
        .trim()
        .to_owned();
    assert!(token.len() >= 32);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let client = reqwest::Client::new();
    set_up_with(&url, &token).await;
    assert!(!token_path.exists(), "the token is deleted once used");
    let r = client
        .get(format!("{url}/api/v2/organizations"))
        .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
        .header("x-agent-id", "ci-agent/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let (status, lines) = p.terminate();
    assert!(status.success(), "exit status {status:?}");
    let log = lines.join("\n");
    assert!(log.contains("setup-token"), "the path is logged");
    assert!(!log.contains(&token), "the token never is");
    assert!(!log.contains(ADMIN_PASSWORD));
    let access = lines
        .iter()
        .find(|l| l.contains("nephele::access") && l.contains("/api/v2/organizations"))
        .unwrap_or_else(|| panic!("no access line in:\n{log}"));
    assert!(access.contains("principal=\"user:"), "{access}");
    assert!(access.contains("ci-agent/1.0"), "{access}");
    assert!(access.contains("status=200"), "{access}");
}

#[tokio::test]
async fn demo_sets_up_and_prints_the_password_once() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _pg) = test_database(dir.path()).await;
    let data = dir.path().to_str().unwrap();
    let extra = db_args(&db);
    let mut args = vec![
        "serve",
        "--demo",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
    ];
    args.extend(extra.iter().map(String::as_str));
    let mut p = Process::spawn(&args, &[]);
    let line = p.wait_for("password '");
    let password = line
        .split("password '")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'');
    assert!(password.len() >= 16);
    let url = p.url();
    let status: serde_json::Value = reqwest::get(format!("{url}/occm/setup/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["data"]["initialized"], true);
    let (status, lines) = p.terminate();
    assert!(status.success());
    let mentions = lines.iter().filter(|l| l.contains(password)).count();
    assert_eq!(mentions, 1, "printed exactly once");

    // A second start with --demo leaves the platform as it is, silently.
    let mut p = Process::spawn(&args, &[]);
    p.url();
    let (status, lines) = p.terminate();
    assert!(status.success());
    assert!(!lines.iter().any(|l| l.contains("password '")));
}

#[tokio::test]
async fn environment_variables_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _pg) = test_database(dir.path()).await;
    let mut p = Process::spawn(
        &["serve"],
        &[
            ("NEPHELE_LISTEN", "127.0.0.1:0"),
            ("NEPHELE_DATA_DIR", dir.path().to_str().unwrap()),
            ("NEPHELE_DATABASE_URL", &db),
            ("NEPHELE_SETUP_TOKEN", "token-from-env-123"),
        ],
    );
    let url = p.url();
    set_up_with(&url, "token-from-env-123").await;
    assert!(
        !dir.path().join("setup-token").exists(),
        "a given token is not written"
    );
    let (status, _) = p.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn a_database_whose_secret_key_is_missing_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _pg) = test_database(dir.path()).await;
    let data = dir.path().join("data");
    let args = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--database-url",
        &db,
        "--setup-token",
        "token-token-123",
    ];
    let mut first = Process::spawn(&args, &[]);
    first.url();
    let (status, _) = first.terminate();
    assert!(status.success());
    let key = data.join("secret-key");
    assert!(key.exists(), "the first start makes the key");
    // A restore that forgot the key file: the server says so and makes
    // no new key.
    std::fs::remove_file(&key).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_nephele"))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the secret key is missing") && stderr.contains("Restore"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!key.exists(), "no new key is written");
}

#[tokio::test]
async fn a_backup_taken_while_serving_restores_with_its_secret_key() {
    let dir = tempfile::tempdir().unwrap();
    let (db, pg) = test_database(dir.path()).await;
    let nephele = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nephele"))
            .args(args)
            .output()
            .unwrap()
    };
    let copy = dir.path().join("backup.db");
    if pg.is_some() {
        // PostgreSQL has its own tools; the command says so.
        let out = nephele(&["backup", copy.to_str().unwrap(), "--database-url", &db]);
        assert_eq!(out.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&out.stderr).contains("pg_dump"));
        return;
    }
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let mut server = Process::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--setup-token",
            "token-token-123",
        ],
        &[],
    );
    let url = server.url();
    set_up_with(&url, "token-token-123").await;
    let out = nephele(&["backup", copy.to_str().unwrap(), "--data-dir", data]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("secret-key"));
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Not over an existing file.
    let again = nephele(&["backup", copy.to_str().unwrap(), "--data-dir", data]);
    assert_eq!(again.status.code(), Some(5));
    let (status, _) = server.terminate();
    assert!(status.success());

    // Restored: the copy and the secret key in a new data dir.
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&copy, restored.join("nephele.db")).unwrap();
    std::fs::copy(
        dir.path().join("data/secret-key"),
        restored.join("secret-key"),
    )
    .unwrap();
    let mut server = Process::spawn(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            restored.to_str().unwrap(),
        ],
        &[],
    );
    let url = server.url();
    let r = reqwest::Client::new()
        .get(format!("{url}/api/v2/me"))
        .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the restored server knows its admin");
    let (status, _) = server.terminate();
    assert!(status.success());
}

#[tokio::test]
async fn bad_configuration_fails_with_one_clear_line() {
    let out = Command::new(env!("CARGO_BIN_EXE_nephele"))
        .args([
            "serve",
            "--database-url",
            "mysql://nope",
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn tls_serves_https() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let s = TestServer::start_with(|c| c.tls = Some((cert_path, key_path))).await;
    assert!(s.url.starts_with("https://"));
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let r = client
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    s.stop().await;
}
