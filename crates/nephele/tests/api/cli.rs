//! The command-line client, driven as a user drives it: the real binary
//! against a real server, credentials in a private config directory.

use crate::binary::Process;
use crate::support::*;
use serde_json::Value;
use std::process::Stdio;
use tokio::io::AsyncWriteExt;

/// One CLI user: their own config directory (and so their own profiles).
struct Cli {
    config: tempfile::TempDir,
}

#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn ok(self) -> Out {
        assert_eq!(self.code, 0, "failed: {self:?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// A failure is one line on stderr, never a panic or a backtrace.
    #[track_caller]
    fn failed(self, code: i32) -> String {
        assert_eq!(self.code, code, "{self:?}");
        assert_eq!(
            self.stderr.trim_end().lines().count(),
            1,
            "one line: {self:?}"
        );
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        self.stderr.trim_end().to_owned()
    }
}

impl Cli {
    fn new() -> Cli {
        Cli {
            config: tempfile::tempdir().unwrap(),
        }
    }

    fn credentials(&self) -> std::path::PathBuf {
        self.config.path().join("credentials.toml")
    }

    async fn run(&self, args: &[&str]) -> Out {
        self.run_with_stdin(args, "").await
    }

    async fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Out {
        self.run_with(args, stdin, &[]).await
    }

    async fn run_with(&self, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Out {
        let mut child = self.command(args, env).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        // A command that exits before reading stdin closes the pipe.
        let _ = input.write_all(stdin.as_bytes()).await;
        drop(input);
        let output = tokio::time::timeout(
            std::time::Duration::from_secs(120),
            child.wait_with_output(),
        )
        .await
        .unwrap_or_else(|_| panic!("nephele {args:?} did not finish"))
        .unwrap();
        Out {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The command `nephele ARGS` of this user, its output piped.
    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_nephele"));
        command
            .args(args)
            .envs(env.iter().copied())
            .env("NEPHELE_CONFIG_DIR", self.config.path())
            .env_remove("NEPHELE_PROFILE")
            .env_remove("NEPHELE_PASSWORD")
            .env_remove("NEPHELE_ORG")
            .env_remove("NEPHELE_URL")
            .env_remove("NEPHELE_API_KEY")
            .env_remove("NEPHELE_CLIENT_SECRET")
            .env_remove("NEPHELE_SETUP_TOKEN")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// `nephele login --web --no-browser` at `url`, started: the process,
    /// the authorization URL it printed, and the rest of its stderr.
    async fn web_login(
        &self,
        url: &str,
    ) -> (
        tokio::process::Child,
        String,
        tokio::task::JoinHandle<String>,
    ) {
        use tokio::io::AsyncBufReadExt;
        let mut child = self
            .command(&["login", "--url", url, "--web", "--no-browser"], &[])
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let prefix = format!("{url}/api/2/idp/authorize?");
        let authorize = tokio::time::timeout(std::time::Duration::from_secs(30), async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("an authorization URL");
                if line.trim().starts_with(&prefix) {
                    return line.trim().to_owned();
                }
            }
        })
        .await
        .unwrap();
        let rest = tokio::spawn(async move {
            let mut rest = String::new();
            while let Ok(Some(line)) = lines.next_line().await {
                rest.push_str(&line);
                rest.push('\n');
            }
            rest
        });
        (child, authorize, rest)
    }

    /// Signs in as the suite's admin.
    async fn login_admin(&self, url: &str) {
        self.run_with_stdin(
            &[
                "login",
                "--url",
                url,
                "--username",
                ADMIN_LOGIN,
                "--password-stdin",
            ],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .await
        .ok();
    }
}

/// A server whose certificate comes from a private CA, made here.
struct PrivateTls {
    _dir: tempfile::TempDir,
    ca: String,
    server: TestServer,
}

async fn private_tls_server() -> PrivateTls {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let path = |name: &str| dir.path().join(name);
    std::fs::write(path("ca.pem"), ca.pem()).unwrap();
    std::fs::write(path("cert.pem"), cert.pem()).unwrap();
    std::fs::write(path("key.pem"), key.serialize_pem()).unwrap();
    let (cert, key) = (path("cert.pem"), path("key.pem"));
    let server = TestServer::start_with(|c| c.tls = Some((cert, key))).await;
    PrivateTls {
        ca: path("ca.pem").to_str().unwrap().to_owned(),
        _dir: dir,
        server,
    }
}

/// `nephele setup` of the suite's admin at `url`, with `extra` arguments.
async fn setup_at(cli: &Cli, url: &str, extra: &[&str]) -> Out {
    let mut args = vec![
        "setup",
        "--url",
        url,
        "--token",
        SETUP_TOKEN,
        "--organization",
        "Acme",
        "--login",
        ADMIN_LOGIN,
        "--email",
        "admin@acme.test",
        "--password-stdin",
        "-q",
    ];
    args.extend_from_slice(extra);
    cli.run_with_stdin(&args, &format!("{ADMIN_PASSWORD}\n"))
        .await
}

/// `nephele login` of the suite's admin at `url`.
async fn login_at(cli: &Cli, url: &str, extra: &[&str], env: &[(&str, &str)]) -> Out {
    let mut args = vec!["login", "--url", url, "-u", ADMIN_LOGIN, "--password-stdin"];
    args.extend_from_slice(extra);
    cli.run_with(&args, &format!("{ADMIN_PASSWORD}\n"), env)
        .await
}

#[tokio::test]
async fn the_cli_trusts_what_the_operator_trusts() {
    let tls = private_tls_server().await;
    let url = tls.server.url.clone();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let ca = tls.ca.as_str();
    let cli = Cli::new();
    // An unknown CA is its own error, not "no Nephele server".
    let line = setup_at(&cli, &url, &[]).await.failed(9);
    assert!(
        line.contains("not trusted") && line.contains("--cacert"),
        "{line}"
    );
    // Trusted with --cacert, which the profile remembers.
    setup_at(&cli, &url, &["--cacert", ca]).await.ok();
    let me = cli.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(me["login"], ADMIN_LOGIN, "{me}");

    // SSL_CERT_FILE is trusted as the system's roots are; discovery sends
    // the login to the URL the server names for itself.
    let other = Cli::new();
    let localhost = url.replace("127.0.0.1", "localhost");
    login_at(&other, &localhost, &[], &[]).await.failed(9);
    let out = login_at(&other, &localhost, &[], &[("SSL_CERT_FILE", ca)])
        .await
        .ok();
    assert!(
        out.stderr.contains(&format!("Logged in to {url} ")),
        "{out:?}"
    );
    // --no-discovery keeps the URL given.
    let out = login_at(&other, &localhost, &["--no-discovery", "--cacert", ca], &[])
        .await
        .ok();
    assert!(
        out.stderr.contains(&format!("Logged in to {localhost} ")),
        "{out:?}"
    );
    other.run(&["whoami"]).await.ok();
}

/// The README's walk-through, command for command: from `serve --demo` to
/// a running instance and back.
#[tokio::test]
async fn the_readme_walk_through_from_a_demo_server() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _pg) = test_database(dir.path()).await;
    let data = dir.path().to_str().unwrap();
    let mut server = Process::spawn(
        &[
            "serve",
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data,
            "--sim-latency",
            "100ms",
            "--database-url",
            &db,
        ],
        &[],
    );
    let url = server.url();
    let line = server.wait_for("password '");
    let password = line
        .split("password '")
        .nth(1)
        .unwrap()
        .trim_end_matches('\'');

    let cli = Cli::new();
    let login = cli
        .run_with_stdin(
            &[
                "login",
                "--url",
                &url,
                "--username",
                "admin",
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
        .await
        .ok();
    assert!(login.stderr.contains("Logged in"), "{login:?}");
    assert!(!login.stderr.contains(password) && !login.stdout.contains(password));

    let me = cli.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(me["login"], "admin");
    assert_eq!(me["organization"], "demo");
    // The table as the README shows it.
    let images = cli.run(&["image", "list", "-o", "table"]).await.ok().stdout;
    let rows: Vec<Vec<&str>> = images
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["NAME", "FORMAT", "SIZE", "BYTES"],
            vec!["alpine-3.20", "simulated", "-"],
            vec!["debian-12", "simulated", "-"],
            vec!["fedora-41", "simulated", "-"],
            vec!["rocky-9", "simulated", "-"],
            vec!["ubuntu-24.04", "simulated", "-"],
        ],
        "{images}"
    );

    let created = cli
        .run(&[
            "instance",
            "create",
            "web-1",
            "--image",
            "ubuntu-24.04",
            "--cpu",
            "2",
            "--memory-mib",
            "2048",
            "--wait",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(created["state"], "Running");
    let id = created["id"].as_str().unwrap().to_owned();

    let listed = cli.run(&["instance", "list"]).await.ok();
    assert!(listed.stdout.contains("web-1"), "{listed:?}");

    let stopped = cli
        .run(&["instance", "stop", &id, "--wait", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(stopped["state"], "Stopped");
    let resized = cli
        .run(&["instance", "resize", &id, "--cpu", "4", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(resized["cpu"], 4);
    let started = cli
        .run(&["instance", "start", &id, "--wait", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(started["state"], "Running");
    let rebooted = cli
        .run(&["instance", "reboot", &id, "--wait", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(rebooted["state"], "Running");

    let tasks = cli.run(&["task", "list", "-o", "json"]).await.ok().json();
    let operations: Vec<&str> = tasks
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["operation"].as_str().unwrap())
        .collect();
    assert_eq!(operations, ["reboot", "start", "stop", "create"]);

    let deleted = cli
        .run(&["instance", "delete", &id, "--wait", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(deleted["taskStatus"], "SUCCESS");
    assert_eq!(cli.run(&["instance", "list", "-q"]).await.ok().stdout, "");

    cli.run(&["logout"]).await.ok();
    let line = cli.run(&["whoami"]).await.failed(3);
    assert!(line.contains("not logged in"), "{line}");
    let (status, _) = server.terminate();
    assert!(status.success());
}

/// First-run setup from the CLI, then every synchronous resource.
#[tokio::test]
async fn setup_and_the_synchronous_resources() {
    let server = TestServer::start().await;
    let url = server.url.clone();
    let cli = Cli::new();
    let setup = cli
        .run_with_stdin(
            &[
                "setup",
                "--url",
                &url,
                "--token",
                SETUP_TOKEN,
                "--organization",
                "Acme",
                "--login",
                "admin",
                "--email",
                "admin@acme.test",
                "--password-stdin",
                "-o",
                "json",
            ],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .await
        .ok()
        .json();
    assert_eq!(setup["organization"], "Acme");
    assert_eq!(setup["profile"], "default");
    // The admin is signed in by setup.
    assert_eq!(
        cli.run(&["whoami", "-o", "json"]).await.ok().json()["login"],
        "admin"
    );
    // A second setup is a conflict.
    let again = cli
        .run_with_stdin(
            &[
                "setup",
                "--url",
                &url,
                "--token",
                SETUP_TOKEN,
                "--organization",
                "X",
                "--login",
                "x",
                "--email",
                "x@x.test",
                "--password-stdin",
                "--no-login",
            ],
            "password-123456\n",
        )
        .await;
    again.failed(5);

    // Organizations and quotas.
    let org = cli
        .run(&["org", "create", "customer-a", "-q"])
        .await
        .ok()
        .stdout;
    let org = org.trim();
    let orgs = cli.run(&["org", "list", "-o", "json"]).await.ok().json();
    assert_eq!(orgs.as_array().unwrap().len(), 2);
    let quota = cli
        .run(&[
            "org",
            "set-quota",
            org,
            "--instances",
            "3",
            "--vcpus",
            "6",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(quota["instances"], 3);
    assert_eq!(
        cli.run(&["org", "quota", org, "-o", "json"])
            .await
            .ok()
            .json()["vcpus"],
        6
    );
    let renamed = cli
        .run(&["org", "update", org, "--name", "customer-b", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(renamed["name"], "customer-b");

    // Users, acting in the sub-organization with --org.
    let user = cli
        .run_with_stdin(
            &[
                "user",
                "create",
                "bob",
                "--email",
                "bob@acme.test",
                "--role",
                "operator",
                "--org",
                org,
                "--password-stdin",
                "-o",
                "json",
            ],
            "bob-password-123\n",
        )
        .await
        .ok()
        .json();
    assert_eq!(user["organizationId"], org);
    let users = cli
        .run(&["user", "list", "--org", org, "-q"])
        .await
        .ok()
        .stdout;
    assert_eq!(users.trim(), user["id"].as_str().unwrap());
    let bob = Cli::new();
    bob.run_with_stdin(
        &["login", "--url", &url, "-u", "bob", "--password-stdin"],
        "bob-password-123\n",
    )
    .await
    .ok();
    // bob may operate instances but not manage organizations: 403 is exit 3.
    bob.run(&["org", "create", "bobs"]).await.failed(3);
    bob.run(&["user", "list", "-q"]).await.ok();
    // Ending bob's sessions signs his CLI out: its tokens are refused.
    let bob_id = user["id"].as_str().unwrap();
    cli.run(&["user", "revoke-sessions", bob_id, "--org", org])
        .await
        .ok();
    bob.run(&["user", "list", "-q"]).await.failed(3);
    let bob_login = ["login", "--url", &url, "-u", "bob", "--password-stdin"];
    let bob_signs_in = || bob.run_with_stdin(&bob_login, "bob-password-123\n");
    // A disabled user is signed out and cannot sign in until enabled.
    bob_signs_in().await.ok();
    let disabled = cli
        .run(&["user", "disable", bob_id, "--org", org, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(disabled["status"], "disabled");
    bob.run(&["user", "list", "-q"]).await.failed(3);
    bob_signs_in().await.failed(3);
    cli.run(&["user", "enable", bob_id, "--org", org, "-q"])
        .await
        .ok();
    bob_signs_in().await.ok();
    // So is everyone of a suspended organization, until it is reactivated.
    let suspended = cli
        .run(&["org", "suspend", org, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(suspended["status"], "suspended");
    bob.run(&["user", "list", "-q"]).await.failed(3);
    cli.run(&["org", "reactivate", org, "-q"]).await.ok();
    bob.run(&["user", "list", "-q"]).await.ok();

    // Roles.
    let role = cli
        .run(&[
            "role",
            "create",
            "auditor",
            "--permission",
            "audit:read",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    let role_id = role["id"].as_str().unwrap();
    let updated = cli
        .run(&[
            "role", "update", role_id, "--name", "auditors", "-o", "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(updated["permissions"], serde_json::json!(["audit:read"]));
    cli.run(&["role", "delete", role_id]).await.ok();

    // API keys, and signing in with one.
    let key = cli
        .run(&["api-key", "create", "ci", "-o", "json"])
        .await
        .ok()
        .json();
    let secret = key["secret"].as_str().unwrap();
    assert!(secret.starts_with("nph_key_"));
    cli.run(&[
        "login",
        "--url",
        &url,
        "--api-key",
        secret,
        "--profile",
        "key",
    ])
    .await
    .ok();
    let me = cli
        .run(&["whoami", "--profile", "key", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(me["authenticatedBy"], "api_key");
    assert_eq!(
        cli.run(&["api-key", "list", "-q"]).await.ok().stdout.trim(),
        key["id"]
    );

    // API clients, and signing in as one.
    let client = cli
        .run(&[
            "client", "create", "deployer", "--role", "viewer", "-o", "json",
        ])
        .await
        .ok()
        .json();
    let client_id = client["client_id"].as_str().unwrap();
    let client_secret = client["client_secret"].as_str().unwrap();
    cli.run(&[
        "login",
        "--url",
        &url,
        "--client-id",
        client_id,
        "--client-secret",
        client_secret,
        "--profile",
        "machine",
    ])
    .await
    .ok();
    // A client registered for client_secret_post signs in too.
    let poster = cli
        .run(&[
            "client",
            "create",
            "poster",
            "--auth-method",
            "post",
            "-o",
            "json",
        ])
        .await
        .ok()
        .json();
    cli.run(&[
        "login",
        "--url",
        &url,
        "--client-id",
        poster["client_id"].as_str().unwrap(),
        "--client-secret",
        poster["client_secret"].as_str().unwrap(),
        "--profile",
        "poster",
    ])
    .await
    .ok();
    cli.run(&["whoami", "--profile", "poster"]).await.ok();
    cli.run(&["client", "delete", poster["client_id"].as_str().unwrap()])
        .await
        .ok();
    let listed = cli
        .run(&["instance", "list", "--profile", "machine", "-o", "json"])
        .await
        .ok();
    assert_eq!(listed.json(), serde_json::json!([]));
    let disabled = cli
        .run(&[
            "client", "update", client_id, "--status", "disabled", "-o", "json",
        ])
        .await
        .ok()
        .json();
    assert_eq!(disabled["status"], "disabled");
    assert_eq!(
        cli.run(&["client", "list", "-q"]).await.ok().stdout.trim(),
        format!("{CLI_CLIENT}\n{client_id}")
    );

    // The audit log recorded all of it; data centers are listed.
    let events = cli
        .run(&["audit", "list", "--action", "api-keys.create", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(events.as_array().unwrap().len(), 1, "{events}");
    let dcs = cli
        .run(&["datacenter", "list", "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(dcs[0]["local"], true);

    // Deletes.
    cli.run(&["client", "delete", client_id]).await.ok();
    cli.run(&["api-key", "delete", key["id"].as_str().unwrap()])
        .await
        .ok();
    cli.run(&["user", "delete", user["id"].as_str().unwrap(), "--org", org])
        .await
        .ok();
    cli.run(&["org", "delete", org]).await.ok();
    cli.run(&["org", "get", org]).await.failed(4);
    server.stop().await;
}

#[tokio::test]
async fn every_output_format_and_quiet() {
    let server = TestServer::set_up().await;
    let cli = Cli::new();
    cli.login_admin(&server.url).await;
    let id = cli
        .run(&[
            "instance",
            "create",
            "fmt-1",
            "--image",
            "alpine-3.20",
            "--wait",
            "-q",
        ])
        .await
        .ok()
        .stdout
        .trim()
        .to_owned();
    assert!(
        uuid::Uuid::parse_str(&id).is_ok(),
        "--quiet prints the id: {id}"
    );
    // A reader that has gone (`nephele instance list | head -1`) ends the
    // command quietly: no panic, status 0.
    // (tokio's process: the test server shares this runtime.)
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_nephele"))
        .args(["instance", "list", "-o", "table"])
        .env("NEPHELE_CONFIG_DIR", cli.config.path())
        .env_remove("NEPHELE_PROFILE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let json = cli
        .run(&["instance", "get", &id, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(json["name"], "fmt-1");
    let yaml = cli
        .run(&["instance", "get", &id, "-o", "yaml"])
        .await
        .ok()
        .stdout;
    let from_yaml: Value = yaml_serde::from_str(&yaml).unwrap();
    assert_eq!(from_yaml, json);
    let xml = cli
        .run(&["instance", "get", &id, "-o", "xml"])
        .await
        .ok()
        .stdout;
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains(&format!("<response><data><id>{id}</id><name>fmt-1</name>")),
        "{xml}"
    );
    let xml_list = cli
        .run(&["instance", "list", "-o", "xml"])
        .await
        .ok()
        .stdout;
    assert!(xml_list.contains("<data><instance><id>"), "{xml_list}");
    let table = cli
        .run(&["instance", "list", "-o", "table"])
        .await
        .ok()
        .stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("ID") && lines[0].contains("STATE"),
        "{table}"
    );
    assert!(
        lines[1].contains(&id) && lines[1].contains("Running"),
        "{table}"
    );
    // Piped output without -o is JSON.
    let piped = cli.run(&["instance", "list"]).await.ok().json();
    assert_eq!(piped[0]["id"], id.as_str());

    // Without --wait, an operation prints its task; `task wait` follows it.
    let accepted = cli
        .run(&["instance", "stop", &id, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(accepted["taskStatus"], "PENDING");
    let task_id = accepted["taskId"].as_str().unwrap();
    let ended = cli
        .run(&["task", "wait", task_id, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(ended["state"], "Stopped");
    let task = cli
        .run(&["task", "get", task_id, "-o", "json"])
        .await
        .ok()
        .json();
    assert_eq!(task["taskStatus"], "SUCCESS");
    assert_eq!(
        cli.run(&[
            "task",
            "list",
            "--status",
            "SUCCESS",
            "--resource",
            &id,
            "-q"
        ])
        .await
        .ok()
        .stdout
        .lines()
        .count(),
        2
    );
    // A finished task cannot be cancelled.
    cli.run(&["task", "cancel", task_id]).await.failed(5);
    server.stop().await;
}

#[tokio::test]
async fn a_failing_task_exits_8_with_the_servers_error() {
    let server = TestServer::set_up().await;
    let cli = Cli::new();
    cli.login_admin(&server.url).await;
    let line = cli
        .run(&[
            "instance",
            "create",
            "doomed",
            "--image",
            "fail-on-start",
            "--wait",
        ])
        .await
        .failed(8);
    assert!(line.starts_with("error: task "), "{line}");
    assert!(
        line.contains("FAILED") && line.contains("code 5003"),
        "{line}"
    );
    // Nothing was left behind.
    assert_eq!(cli.run(&["instance", "list", "-q"]).await.ok().stdout, "");
    // A wrong state is a conflict with the context the server gave.
    let id = cli
        .run(&[
            "instance",
            "create",
            "ok",
            "--image",
            "alpine-3.20",
            "--wait",
            "-q",
        ])
        .await
        .ok()
        .stdout;
    let line = cli.run(&["instance", "start", id.trim()]).await.failed(5);
    assert!(
        line.contains("code 2012") && line.contains("currentState: Running"),
        "{line}"
    );
    // Invalid input is exit 1, every bad field named.
    let line = cli
        .run(&["instance", "create", "x", "--image", "nope", "--cpu", "0"])
        .await
        .failed(1);
    assert!(line.contains("image") && line.contains("cpu"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_refreshed_transparently_and_debug_hides_secrets() {
    let server = TestServer::set_up().await;
    let cli = Cli::new();
    let login = cli
        .run_with_stdin(
            &[
                "--debug",
                "login",
                "--url",
                &server.url,
                "-u",
                ADMIN_LOGIN,
                "--password-stdin",
            ],
            &format!("{ADMIN_PASSWORD}\n"),
        )
        .await
        .ok();
    assert!(login.stderr.contains("> POST"), "{login:?}");
    assert!(
        login.stderr.contains("\"password\":\"[redacted]\""),
        "{login:?}"
    );
    assert!(!login.stderr.contains(ADMIN_PASSWORD), "{login:?}");
    let stored = std::fs::read_to_string(cli.credentials()).unwrap();
    let access = stored
        .lines()
        .find(|l| l.starts_with("access_token"))
        .unwrap()
        .to_owned();
    let token = access.split('"').nth(1).unwrap();
    assert!(!login.stderr.contains(token), "the token is never shown");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(cli.credentials())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // An access token past its time is renewed with the refresh token.
    let expired = stored
        .lines()
        .map(|l| {
            if l.starts_with("expires_on") {
                "expires_on = 0"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(cli.credentials(), &expired).unwrap();
    let debug = cli.run(&["--debug", "whoami", "-o", "json"]).await.ok();
    assert!(
        debug.stderr.contains("authorization: Bearer [redacted]"),
        "{debug:?}"
    );
    assert!(debug.stderr.contains("refresh_token"), "renewed: {debug:?}");
    let renewed = std::fs::read_to_string(cli.credentials()).unwrap();
    assert!(!renewed.contains(token) && !renewed.contains("expires_on = 0"));

    // A revoked session asks for a new login: exit 3.
    let refresh = renewed
        .lines()
        .find(|l| l.starts_with("refresh_token"))
        .unwrap();
    let revoked = renewed
        .replace(refresh, "refresh_token = \"nph_rt_revoked\"")
        .lines()
        .map(|l| {
            if l.starts_with("expires_on") {
                "expires_on = 0"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(cli.credentials(), revoked).unwrap();
    let line = cli.run(&["whoami"]).await.failed(3);
    assert!(line.contains("nephele login"), "{line}");
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_one_line_and_a_distinct_exit_code() {
    let server = TestServer::set_up().await;
    let cli = Cli::new();
    // Not logged in.
    assert!(cli
        .run(&["instance", "list"])
        .await
        .failed(3)
        .contains("not logged in"));
    // No server.
    let line = cli
        .run_with_stdin(
            &[
                "login",
                "--url",
                "http://127.0.0.1:1",
                "-u",
                "admin",
                "--password-stdin",
            ],
            "x\n",
        )
        .await
        .failed(7);
    assert!(
        line.contains("cannot reach") && line.contains("refused"),
        "{line}"
    );
    // Not a URL at all.
    cli.run(&["login", "--url", "nope", "--api-key", "k"])
        .await
        .failed(7);
    // Something that is not Nephele.
    let foreign = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let foreign_url = format!("http://{}", foreign.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut socket, _)) = foreign.accept().await {
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: 6\r\nconnection: close\r\n\r\n<html>")
                .await;
        }
    });
    let line = cli
        .run_with_stdin(
            &[
                "login",
                "--url",
                &foreign_url,
                "-u",
                "admin",
                "--password-stdin",
            ],
            "x\n",
        )
        .await
        .failed(7);
    assert!(line.contains("not as a Nephele server would"), "{line}");
    // A wrong password.
    cli.run_with_stdin(
        &[
            "login",
            "--url",
            &server.url,
            "-u",
            ADMIN_LOGIN,
            "--password-stdin",
        ],
        "wrong-password\n",
    )
    .await
    .failed(3);
    // Unknown flags and missing arguments are usage errors.
    cli.run(&["instance", "list", "--bogus"]).await.failed(2);
    cli.run(&["instance", "create"]).await.failed(2);
    cli.run(&["instance", "get", "not-a-uuid"]).await.failed(2);

    cli.login_admin(&server.url).await;
    // An id that does not exist.
    let line = cli
        .run(&["instance", "get", "00000000-0000-4000-8000-000000000000"])
        .await
        .failed(4);
    assert!(line.contains("code 2000"), "{line}");
    // A credentials file others can read is refused, with a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cli.credentials(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        let line = cli.run(&["whoami"]).await.failed(3);
        assert!(
            line.starts_with("warning:") && line.contains("chmod 600"),
            "{line}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn completions_and_help() {
    let cli = Cli::new();
    for shell in ["bash", "zsh", "fish"] {
        let script = cli.run(&["completion", shell]).await.ok().stdout;
        assert!(script.contains("instance"), "{shell}");
    }
    // A reader that has gone (`| head -1`) ends it quietly.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_nephele"))
        .args(["completion", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = cli.run(&["instance", "create", "--help"]).await.ok().stdout;
    assert!(
        help.contains("Examples:") && help.contains("--wait"),
        "{help}"
    );
    // The client's options belong to the client commands only.
    assert!(help.contains("--profile"), "{help}");
    for command in ["serve", "backup", "completion"] {
        let help = cli.run(&[command, "--help"]).await.ok().stdout;
        for option in ["--profile", "--output", "--org", "--quiet", "--debug"] {
            assert!(
                !help.contains(option),
                "{command} --help shows {option}: {help}"
            );
        }
    }
    let line = cli.run(&["serve", "--profile", "x"]).await.failed(2);
    assert!(
        line.contains("--profile") && line.contains("client"),
        "{line}"
    );
    // A missing argument is named on the one line.
    let line = cli.run(&["backup"]).await.failed(2);
    assert!(line.contains("<FILE>"), "{line}");
}

/// `nephele bench` works: every scenario briefly against a real server.
/// The figures are benchmarks (docs/performance.md), never asserted here.
#[tokio::test]
async fn bench_smoke_runs_every_scenario() {
    let server = TestServer::set_up().await;
    let cli = Cli::new();
    cli.login_admin(&server.url).await;
    let runs: &[&[&str]] = &[
        &["token-client-credentials"],
        &["token-password"],
        &["token-refresh"],
        &["get-instance"],
        &["get-instance", "--auth", "api-key", "--xml"],
        &["get-instance", "--auth", "basic", "--rate", "50"],
        &["list-instances"],
        &["create-instance"],
        &["mixed"],
        &["login-code"],
    ];
    for run in runs {
        let mut args = vec!["bench"];
        args.extend_from_slice(run);
        args.extend_from_slice(&[
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--connections",
            "2",
            "--seed-data",
            "3",
            "-o",
            "json",
        ]);
        let report = cli.run(&args).await.ok().json();
        assert!(
            report["succeeded"].as_u64().unwrap() > 0,
            "{run:?}: {report}"
        );
        assert_eq!(report["errors"], 0, "{run:?}: {report}");
        assert!(report["latencyMs"]["p99"].as_f64().unwrap() > 0.0);
    }
    // The run's user, client and key are removed; the seeded instances stay.
    let users = cli.run(&["user", "list", "-o", "json"]).await.ok().json();
    assert_eq!(users.as_array().unwrap().len(), 1, "{users}");
    assert_eq!(
        cli.run(&["client", "list", "-q"]).await.ok().stdout,
        format!("{CLI_CLIENT}\n"),
        "only the CLI's own"
    );

    // Bad input: a usage error, and a server that is gone.
    cli.run(&["bench", "get-instance", "--connections", "0"])
        .await
        .failed(2);
    server.stop().await;
    let started = std::time::Instant::now();
    let line = cli
        .run(&["bench", "get-instance", "--duration", "2s"])
        .await
        .failed(7);
    assert!(line.contains("cannot reach"), "{line}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn mfa_from_enrolment_to_a_login_with_a_code() {
    let s = TestServer::set_up().await;
    let cli = Cli::new();
    cli.login_admin(&s.url).await;
    let enrolment = cli.run(&["mfa", "enrol", "-o", "json"]).await.ok().json();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(enrolment["otpauthUri"]
        .as_str()
        .unwrap()
        .starts_with("otpauth://totp/Nephele:admin?"));
    // The table shows the secret and the URI, not the SVG.
    let shown = cli.run(&["mfa", "enrol", "-o", "table"]).await.ok();
    assert!(
        shown.stdout.contains("otpauth URI: otpauth://"),
        "{shown:?}"
    );
    assert!(!shown.stdout.contains("<svg"), "{shown:?}");
    let secret_now = shown
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Secret:"))
        .unwrap()
        .trim()
        .to_owned();
    assert_ne!(secret_now, secret, "enrolling again replaces the secret");

    let code = crate::mfa::code(&secret_now, 0);
    let confirmed = cli.run(&["mfa", "confirm", &code, "-q"]).await.ok();
    let recovery: Vec<&str> = confirmed.stdout.lines().collect();
    assert_eq!(recovery.len(), 10, "{confirmed:?}");

    // Without a code (and no terminal to ask on) the login is refused.
    let refused = login_at(&cli, &s.url, &[], &[]).await.failed(3);
    assert!(refused.contains("mfa_required"), "{refused}");
    let next = crate::mfa::code(&secret_now, 1);
    login_at(&cli, &s.url, &["--otp", &next], &[]).await.ok();
    let who = cli.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(who["login"], ADMIN_LOGIN);

    cli.run_with_stdin(
        &["mfa", "disable", "--code", recovery[0], "--password-stdin"],
        &format!("{ADMIN_PASSWORD}\n"),
    )
    .await
    .ok();
    login_at(&cli, &s.url, &[], &[]).await.ok();
}

#[tokio::test]
async fn login_web_signs_in_through_the_browser_and_refreshes_as_the_cli_client() {
    use crate::signin::Browser;
    let s = TestServer::set_up().await;
    let cli = Cli::new();
    let (child, authorize, rest) = cli.web_login(&s.url).await;
    let url = reqwest::Url::parse(&authorize).unwrap();
    let asked: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(asked["client_id"], CLI_CLIENT);
    assert_eq!(asked["code_challenge_method"], "S256");
    let redirect = &asked["redirect_uri"];
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.ends_with("/callback"),
        "{redirect}"
    );

    // The person signs in in the browser, which goes back to the CLI.
    let mut browser = Browser::default();
    let page = browser.get(&authorize).await;
    assert_eq!(page.status, 200, "the login page: {}", page.body);
    assert!(
        page.body.contains("Nephele CLI"),
        "the page names the client"
    );
    let done = browser
        .sign_in(&s, &page, ADMIN_LOGIN, ADMIN_PASSWORD)
        .await;
    assert_eq!(done.status, 302, "first-party: no consent: {}", done.body);
    let back = done.location.clone().unwrap();
    assert!(back.starts_with(redirect.as_str()), "{back}");
    let landed = reqwest::get(&back).await.unwrap();
    assert_eq!(landed.status(), 200);
    assert!(landed.text().await.unwrap().contains("signed in"));
    let exit = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = rest.await.unwrap();
    assert!(exit.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("as {ADMIN_LOGIN}")), "{stderr}");

    let me = cli.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(me["login"], ADMIN_LOGIN);
    // The access token past its time is renewed: the CLI names itself,
    // as the public client the refresh token is bound to.
    let stored = std::fs::read_to_string(cli.credentials()).unwrap();
    assert!(stored.contains(&format!("client_id = \"{CLI_CLIENT}\"")));
    let expired: Vec<&str> = stored
        .lines()
        .map(|l| {
            if l.starts_with("expires_on") {
                "expires_on = 0"
            } else {
                l
            }
        })
        .collect();
    std::fs::write(cli.credentials(), expired.join("\n")).unwrap();
    let me = cli.run(&["whoami", "-o", "json"]).await.ok().json();
    assert_eq!(me["login"], ADMIN_LOGIN);
    let renewed = std::fs::read_to_string(cli.credentials()).unwrap();
    assert!(!renewed.contains("expires_on = 0"), "{renewed}");

    // Whatever else reaches the CLI's port is not a sign-in: another
    // flow's state, or an error from the server.
    for (query, exit_code, says) in [
        ("code=abc&state=forged", 1, "state"),
        (
            "error=access_denied&error_description=The+user+said+no",
            3,
            "said no",
        ),
    ] {
        let (child, authorize, rest) = cli.web_login(&s.url).await;
        let asked: std::collections::HashMap<_, _> = reqwest::Url::parse(&authorize)
            .unwrap()
            .query_pairs()
            .into_owned()
            .collect();
        let query = if query.starts_with("error") {
            let iss: String = url::form_urlencoded::byte_serialize(s.url.as_bytes()).collect();
            let state: String =
                url::form_urlencoded::byte_serialize(asked["state"].as_bytes()).collect();
            format!("{query}&state={state}&iss={iss}")
        } else {
            query.to_owned()
        };
        let favicon = reqwest::get(asked["redirect_uri"].replace("/callback", "/favicon.ico"))
            .await
            .unwrap();
        assert_eq!(favicon.status(), 404, "anything else: the wait goes on");
        let landed = reqwest::get(format!("{}?{query}", asked["redirect_uri"]))
            .await
            .unwrap();
        assert_eq!(landed.status(), 200);
        let exit =
            tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
                .await
                .unwrap()
                .unwrap();
        let stderr = rest.await.unwrap();
        assert_eq!(exit.status.code(), Some(exit_code), "{stderr}");
        assert!(stderr.contains(says), "{stderr}");
    }
    // The profile signed in first is still there, until the CLI's
    // client is disabled: that ends what it was given.
    cli.run(&["whoami"]).await.ok();
    let r = s
        .admin_json(
            reqwest::Method::PUT,
            &format!("/api/2/clients/{CLI_CLIENT}"),
            &serde_json::json!({"status": "disabled"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let line = cli.run(&["whoami"]).await.failed(3);
    assert!(line.contains("nephele login"), "{line}");
    s.stop().await;
}

#[tokio::test]
async fn user_create_invite_makes_an_invited_user_and_shows_its_link() {
    let s = TestServer::set_up().await;
    let cli = Cli::new();
    cli.login_admin(&s.url).await;
    let out = cli
        .run(&[
            "user",
            "create",
            "ivy",
            "--email",
            "ivy@acme.test",
            "--role",
            "viewer",
            "--invite",
            "-o",
            "json",
        ])
        .await
        .ok();
    let user = out.json();
    assert_eq!(user["status"], "invited");
    let link = user["activationUrl"].as_str().expect("activationUrl");
    assert!(link.contains("/api/2/idp/activate?token="), "{link}");
    assert!(out.stderr.contains("activationUrl"), "{out:?}");
    cli.run(&[
        "user",
        "create",
        "x",
        "--email",
        "x@acme.test",
        "--invite",
        "--password-stdin",
    ])
    .await
    .failed(2);
    s.stop().await;
}
