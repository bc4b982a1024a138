//! The test harness.

use nephele::config::ServerConfig;
use nephele::server::{start, Running};
use nephele_api_types as api;
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::{json, Value};
use sqlx::Connection;

pub const SETUP_TOKEN: &str = "test-setup-token-0123456789";
pub const ADMIN_LOGIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct-horse-1";
/// The CLI's own client, which setup registers in the root organization.
pub const CLI_CLIENT: &str = "00000000-0000-7000-8000-000000000c11";

/// The PostgreSQL server URL the suite runs against, if any.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("NEPHELE_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh PostgreSQL database, dropped when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(admin_url: &str) -> PgDatabase {
        let name = format!("nephele_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is unreachable: {e}"));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        conn.close().await.ok();
        let mut url = url::Url::parse(admin_url).expect("database URL");
        url.set_path(&name);
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async: use a runtime of our own on a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// Every test server's secret key, so a second node can share a database.
pub const SECRET_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

pub struct TestServer {
    pub url: String,
    pub http: Client,
    pub database_url: String,
    running: Option<Running>,
    dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

fn test_config(
    dir: &std::path::Path,
    database_url: &str,
    configure: impl FnOnce(&mut ServerConfig),
) -> ServerConfig {
    let mut config = ServerConfig::for_data_dir(dir.to_owned(), Some(database_url.to_owned()));
    config.setup_token = Some(SETUP_TOKEN.to_owned());
    config.secret_key = Some(SECRET_KEY.to_owned());
    config.sim_latency = std::time::Duration::ZERO;
    config.shutdown_grace = std::time::Duration::from_secs(5);
    configure(&mut config);
    config
}

/// A test database: its URL, and the guard that removes it.
pub async fn test_database(dir: &std::path::Path) -> (String, Option<PgDatabase>) {
    match postgres_admin_url() {
        Some(admin) => {
            let db = PgDatabase::create(&admin).await;
            (db.url.clone(), Some(db))
        }
        None => (nephele::config::sqlite_url(dir), None),
    }
}

impl TestServer {
    /// A new server, not set up.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg) = test_database(dir.path()).await;
        let config = test_config(dir.path(), &database_url, configure);
        let running = start(config).await.expect("server starts");
        TestServer {
            url: running.url.clone(),
            http: Client::new(),
            database_url,
            running: Some(running),
            dir,
            _pg: pg,
        }
    }

    /// Stops this server and starts another on its data dir and database.
    pub async fn restart(mut self, configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
        let config = test_config(self.dir.path(), &self.database_url, configure);
        let running = start(config).await.expect("server starts again");
        self.url = running.url.clone();
        self.running = Some(running);
        self
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Another node on this server's database (its data dir its own), of
    /// the same service: the same public URL, so the same token issuer.
    pub async fn peer(&self) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config =
            ServerConfig::for_data_dir(dir.path().to_owned(), Some(self.database_url.clone()));
        config.secret_key = Some(SECRET_KEY.to_owned());
        config.public_url = Some(self.url.clone());
        let running = start(config).await.expect("peer starts");
        TestServer {
            url: running.url.clone(),
            http: Client::new(),
            database_url: self.database_url.clone(),
            running: Some(running),
            dir,
            _pg: None,
        }
    }

    /// The server's application, for what only the server itself can do
    /// (signing tokens with its own keys, in the token-forgery tests).
    pub fn app(&self) -> &nephele_app::App {
        &self.running.as_ref().expect("running").app
    }

    /// A new server, set up with the root organization `Acme` and its admin.
    pub async fn set_up() -> TestServer {
        Self::set_up_with(|_| {}).await
    }

    /// [`TestServer::set_up`], configured by `configure` first.
    pub async fn set_up_with(configure: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let s = Self::start_with(configure).await;
        let r = s.post("/occm/setup/init", &setup_body()).await;
        assert_eq!(r.status(), 201, "setup: {}", r.text().await.unwrap());
        s
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, format!("{}{}", self.url, path))
    }

    /// An authenticated request as the root admin (HTTP Basic).
    pub fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path)
            .basic_auth(ADMIN_LOGIN, Some(ADMIN_PASSWORD))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.request(Method::GET, path).send().await.expect("GET")
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.request(Method::POST, path)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await.expect("clean shutdown");
        }
    }
}

pub fn setup_body() -> Value {
    json!({
        "setupToken": SETUP_TOKEN,
        "organization": {"name": "Acme"},
        "admin": {"login": ADMIN_LOGIN, "email": "admin@acme.test", "password": ADMIN_PASSWORD}
    })
}

/// Reads a JSON body, asserting the status first.
pub async fn json_of(r: Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let text = r.text().await.expect("body");
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts an `errors` envelope with one error of `code` first.
pub async fn assert_error(r: Response, status: u16, code: u64) -> Value {
    let body = json_of(r, status).await;
    assert_eq!(body["errors"][0]["code"], code, "body: {body}");
    assert!(body["errors"][0]["message"].is_string());
    body
}

/// Replaces ids and times by placeholders so bodies can be snapshotted.
pub fn normalize(text: &str) -> String {
    let uuid =
        regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap();
    let time = regex::Regex::new(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z").unwrap();
    let next_page = regex::Regex::new(r#"("nextPage":"|<nextPage>)[A-Za-z0-9_-]+"#).unwrap();
    let text = next_page.replace_all(text, "${1}[token]");
    let text = uuid.replace_all(&text, "[uuid]");
    time.replace_all(&text, "[time]").into_owned()
}

/// The password of every user the tests create besides the root admin.
pub const USER_PASSWORD: &str = "password-123";

impl TestServer {
    /// A request as a user made by [`TestServer::create_user`].
    pub fn as_user(&self, method: Method, path: &str, login: &str) -> RequestBuilder {
        self.request(method, path)
            .basic_auth(login, Some(USER_PASSWORD))
    }

    /// The root admin sends `body` as JSON.
    pub async fn admin_json(&self, method: Method, path: &str, body: &Value) -> Response {
        self.admin(method, path).json(body).send().await.unwrap()
    }

    /// The typed client, as the root admin.
    pub fn admin_client(&self) -> nephele_client::Client {
        self.client(nephele_client::Credentials::Basic {
            login: ADMIN_LOGIN.to_owned(),
            password: nephele_common::Secret::new(ADMIN_PASSWORD),
        })
    }

    /// A sub-organization (of the root when `parent` is `None`); its id.
    pub async fn create_org(&self, name: &str, parent: Option<&str>) -> String {
        let org = api::OrganizationCreate {
            name: Some(name.to_owned()),
            parent_id: parent.map(|p| p.parse().expect("an organization id")),
        };
        let made = self.admin_client().create_organization(&org).await;
        made.expect("organization made").id.to_string()
    }

    /// A user of `org` with `roles` and [`USER_PASSWORD`]; its id.
    pub async fn create_user(&self, org: &str, login: &str, roles: &[&str]) -> String {
        let user = user_body(login, roles);
        let made = self.admin_client().create_user(Some(org), &user).await;
        made.expect("user made").id.to_string()
    }

    /// The root organization's id.
    pub async fn root_org(&self) -> String {
        let me = self.admin_client().me().await.expect("me");
        me.organization.id.to_string()
    }
}

/// The task id of a 202, after checking its shape and `Location`.
pub async fn accepted_task(r: Response) -> String {
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = json_of(r, 202).await;
    assert_eq!(body["taskStatus"], "PENDING", "{body}");
    let task = body["taskId"].as_str().expect("taskId").to_owned();
    assert_eq!(location, Some(format!("/api/v2/tasks/{task}")));
    task
}

impl TestServer {
    /// Asks the root admin's server to make an instance in `org`; the
    /// task id.
    pub async fn start_instance_creation(&self, org: &str, name: &str, image: &str) -> String {
        let r = self
            .admin_json(
                Method::POST,
                &format!("/api/v2/instances?org_id={org}"),
                &json!({"name": name, "image": image, "cpu": 1, "memoryMiB": 256}),
            )
            .await;
        accepted_task(r).await
    }

    /// Waits (up to 60 s) for a task to finish; the task.
    pub async fn ended_task(&self, task: &str) -> api::Task {
        let client = self.admin_client();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let t = client.task(task, Some(10)).await.expect("the task");
            if t.task_status != "PENDING" {
                return t;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "task never ended: {t:?}"
            );
        }
    }

    /// Makes an instance in `org` and waits until it runs; its id.
    pub async fn create_instance(&self, org: &str, name: &str) -> String {
        let instance = api::InstanceCreate {
            name: Some(name.to_owned()),
            image: Some("debian-12".to_owned()),
            cpu: Some(1),
            memory_mib: Some(256),
            ..Default::default()
        };
        let accepted = self
            .admin_client()
            .create_instance(Some(org), &instance)
            .await;
        let t = self.ended(accepted).await;
        assert_eq!(t.task_status, "SUCCESS", "{t:?}");
        t.resource_id
    }
}

// ---- The typed client, per resource. ----

/// A typed call's refusal, checked like [`assert_error`]: its status, and
/// the code of its first error (which has a message).
pub fn assert_refused<T: std::fmt::Debug>(
    result: Result<T, nephele_client::Error>,
    status: u16,
    code: u16,
) -> Vec<nephele_common::ErrorDetail> {
    match result {
        Err(nephele_client::Error::Api {
            status: got,
            errors,
        }) => {
            assert_eq!(got, status, "{errors:?}");
            assert_eq!(errors.first().map(|e| e.code), Some(code), "{errors:?}");
            assert!(!errors[0].message.is_empty(), "{errors:?}");
            errors
        }
        other => panic!("expected a refusal {status} ({code}), got {other:?}"),
    }
}

/// The `field` of each error's context, in order.
pub fn fields_of(errors: &[nephele_common::ErrorDetail]) -> Vec<String> {
    errors
        .iter()
        .map(|e| e.context["field"].as_str().expect("a field").to_owned())
        .collect()
}

/// A new user's body: `login@example.test`, [`USER_PASSWORD`], `roles`.
pub fn user_body(login: &str, roles: &[&str]) -> api::UserCreate {
    api::UserCreate {
        login: Some(login.to_owned()),
        email: Some(format!("{login}@example.test")),
        password: Some(nephele_common::Secret::new(USER_PASSWORD)),
        roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
        datacenter_id: None,
    }
}

/// A merge patch of a user's roles.
pub fn roles_patch(roles: &[&str]) -> api::UserUpdate {
    api::UserUpdate {
        roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
        ..Default::default()
    }
}

/// A custom role's body.
pub fn role_body(name: &str, permissions: &[&str]) -> api::RoleWrite {
    api::RoleWrite {
        name: Some(name.to_owned()),
        permissions: Some(permissions.iter().map(|p| (*p).to_owned()).collect()),
    }
}

/// An API client's body: `client_secret_basic`, the default roles.
pub fn api_client_body(name: &str) -> api::ApiClientCreate {
    api::ApiClientCreate {
        kind: Some("api_client".to_owned()),
        token_endpoint_auth_method: Some("client_secret_basic".to_owned()),
        data: Some(api::ApiClientData {
            client_name: Some(name.to_owned()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl TestServer {
    /// The typed client with `credentials`.
    pub fn client(&self, credentials: nephele_client::Credentials) -> nephele_client::Client {
        nephele_client::Client::new(&self.url, false, None)
            .expect("client")
            .with_credentials(credentials)
    }

    /// The typed client as a user made by [`TestServer::create_user`]
    /// (HTTP Basic with [`USER_PASSWORD`]).
    pub fn client_as(&self, login: &str) -> nephele_client::Client {
        self.client(nephele_client::Credentials::Basic {
            login: login.to_owned(),
            password: nephele_common::Secret::new(USER_PASSWORD),
        })
    }

    /// The typed client with an API key's secret.
    pub fn client_with_key(&self, secret: &str) -> nephele_client::Client {
        self.client(nephele_client::Credentials::ApiKey(secret.to_owned()))
    }

    /// The typed client with a bearer token.
    pub fn client_with_token(&self, token: &str) -> nephele_client::Client {
        self.client(nephele_client::Credentials::Bearer(token.to_owned()))
    }

    /// The root admin's user id.
    pub async fn admin_id(&self) -> String {
        let me = self.admin_client().me().await.expect("me");
        me.principal.id.to_string()
    }

    /// A custom role of `org` (the root's when `None`); its id.
    pub async fn create_role(&self, org: Option<&str>, name: &str, permissions: &[&str]) -> String {
        let made = self
            .admin_client()
            .create_role(org, &role_body(name, permissions))
            .await;
        made.expect("role made").id.to_string()
    }

    /// An API client made by the root admin, with its secret.
    pub async fn create_api_client(&self, client: &api::ApiClientCreate) -> api::ApiClient {
        let made = self.admin_client().create_api_client(client).await;
        made.expect("API client made")
    }

    /// A data center; its id.
    pub async fn create_datacenter(&self, name: &str, server_url: &str) -> String {
        let dc = api::DatacenterCreate {
            name: Some(name.to_owned()),
            server_url: Some(server_url.to_owned()),
        };
        let made = self.admin_client().create_datacenter(&dc).await;
        made.expect("data center made").id.to_string()
    }

    /// The first page of the audit log as the root admin, filtered.
    pub async fn audit_events(&self, query: nephele_client::Query<'_>) -> Vec<api::AuditEvent> {
        let events = self.admin_client().audit_events(query).await;
        events.expect("audit events").data
    }
}

impl TestServer {
    /// Waits for the task of an operation the typed client started; the
    /// task, once it ended.
    pub async fn ended(
        &self,
        accepted: Result<api::TaskAccepted, nephele_client::Error>,
    ) -> api::Task {
        let accepted = accepted.expect("the operation accepted");
        assert_eq!(accepted.task_status, "PENDING", "{accepted:?}");
        self.ended_task(&accepted.task_id.to_string()).await
    }
}

/// The names of a task's steps.
pub fn step_names(t: &api::Task) -> Vec<&str> {
    let steps = t.steps.as_deref().expect("a step log");
    steps.iter().map(|s| s.name.as_str()).collect()
}
