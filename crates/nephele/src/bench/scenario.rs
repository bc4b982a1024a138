//! What each scenario sends, and the data it needs on the server.

use clap::ValueEnum;
use nephele_client::{Method, Request};
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Auth, BenchArgs};
use crate::cli::session::Session;
use crate::cli::{Exit, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// `POST /api/2/idp/token`, client credentials (Basic)
    TokenClientCredentials,
    /// `POST /api/2/idp/token`, the password grant
    TokenPassword,
    /// `POST /api/2/idp/token`, refresh-token rotation, one chain per connection
    TokenRefresh,
    /// `GET /api/v2/instances/{id}` of a random seeded instance
    GetInstance,
    /// `GET /api/v2/instances?limit=100`
    ListInstances,
    /// `POST /api/v2/instances` → 202, then the task long-polled to SUCCESS
    CreateInstance,
    /// 60 % get-instance, 25 % list-instances, 10 % client-credentials tokens, 5 % create-instance
    Mixed,
    /// A browserless sign-in: `GET /api/2/idp/authorize` (the login page),
    /// the login form posted (→ 302 with a code), the code exchanged
    LoginCode,
}

impl Scenario {
    pub fn name(self) -> String {
        self.to_possible_value()
            .map(|v| v.get_name().to_owned())
            .unwrap_or_default()
    }

    fn reads_instances(self) -> bool {
        matches!(
            self,
            Scenario::GetInstance | Scenario::ListInstances | Scenario::Mixed
        )
    }
}

/// Where the login-code scenario's client gets its codes (never contacted).
const LOGIN_REDIRECT: &str = "https://bench.invalid/callback";
/// The login-code scenario's PKCE verifier and its S256 challenge
/// (RFC 7636 Appendix B): codes are single use, the pair need not change.
const PKCE_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const PKCE_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The result of one scenario step: an HTTP status, or what went wrong
/// without one.
pub type Outcome = Result<u16, &'static str>;

/// What the scenarios use, made by [`Fixture::seed`] and removed after.
pub struct Fixture {
    pub url: String,
    pub scenario: Scenario,
    pub auth: Auth,
    pub xml: bool,
    login: String,
    password: String,
    client_id: String,
    client_secret: String,
    api_key: String,
    api_key_id: String,
    user_id: String,
    bearer: String,
    instances: Vec<String>,
}

fn random_secret(len: usize) -> String {
    use rand::distributions::DistString;
    rand::distributions::Alphanumeric.sample_string(&mut rand::thread_rng(), len)
}

fn field(value: &Value, pointer: &str) -> Result<String, Failure> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Failure::new(Exit::Server, format!("the seed answer lacks {pointer}")))
}

impl Fixture {
    /// A user, an API client and an API key for this run, and at least
    /// `--seed-data` instances when the scenario reads them.
    pub async fn seed(session: &mut Session, args: &BenchArgs) -> Result<Fixture, Failure> {
        let tag = random_secret(8).to_lowercase();
        let login = format!("bench-{tag}");
        let password = random_secret(24);
        let user = session
            .data(Request::post(
                "/api/v2/users",
                json!({"login": login, "email": format!("{login}@bench.invalid"),
                       "password": password, "roles": ["operator"]}),
            ))
            .await?;
        let mut data = json!({"client_name": format!("nephele-bench-{tag}")});
        if args.scenario == Scenario::LoginCode {
            // A first-party web app: no consent page in the measured flow.
            data["redirect_uris"] = json!([LOGIN_REDIRECT]);
            data["first_party"] = json!(true);
        }
        let client = session
            .send(Request::post(
                "/api/2/clients",
                json!({"type": "api_client", "token_endpoint_auth_method": "client_secret_basic",
                       "data": data, "roles": ["operator"]}),
            ))
            .await?
            .body;
        let key = session
            .data(Request::post(
                "/api/v2/api-keys",
                json!({"name": format!("nephele-bench-{tag}")}),
            ))
            .await?;
        let client_id = field(&client, "/client_id")?;
        let client_secret = field(&client, "/client_secret")?;
        let url = session.client().base_url();
        let bearer = session
            .client()
            .client_token(&client_id, &client_secret, false)
            .await?
            .access_token;
        let mut fixture = Fixture {
            url,
            scenario: args.scenario,
            auth: args.auth,
            xml: args.xml,
            login,
            password,
            client_id,
            client_secret,
            api_key: field(&key, "/secret")?,
            api_key_id: field(&key, "/id")?,
            user_id: field(&user, "/id")?,
            bearer,
            instances: Vec::new(),
        };
        if args.scenario.reads_instances() {
            fixture.instances = seed_instances(session, args.seed_data.max(1)).await?;
        }
        Ok(fixture)
    }

    /// Removes the user, client and key the run made; instances stay, for
    /// the next run to read.
    pub async fn clean_up(&self, session: &mut Session) {
        for path in [
            format!("/api/v2/users/{}", self.user_id),
            format!("/api/2/clients/{}", self.client_id),
            format!("/api/v2/api-keys/{}", self.api_key_id),
        ] {
            if let Err(e) = session.send(Request::new(Method::DELETE, &path)).await {
                eprintln!("warning: could not remove {path}: {}", e.message);
            }
        }
    }
}

/// The ids of `n` instances of the organization, creating those missing.
async fn seed_instances(session: &mut Session, n: usize) -> Result<Vec<String>, Failure> {
    let mut ids = Vec::with_capacity(n);
    let mut next: Option<String> = None;
    while ids.len() < n {
        let body = session
            .send(
                Request::get("/api/v2/instances")
                    .query("limit", Some(1000))
                    .query("pageToken", next.as_deref()),
            )
            .await?
            .body;
        for item in body["data"].as_array().into_iter().flatten() {
            if ids.len() < n {
                ids.push(field(item, "/id")?);
            }
        }
        match body["nextPage"].as_str() {
            Some(token) => next = Some(token.to_owned()),
            None => break,
        }
    }
    let missing = n - ids.len();
    if missing > 0 {
        eprintln!("seeding {missing} instances…");
    }
    let mut tasks = Vec::with_capacity(missing);
    for i in 0..missing {
        let accepted = session
            .send(Request::post(
                "/api/v2/instances",
                json!({"name": format!("bench-seed-{i}"), "image": "alpine-3.20"}),
            ))
            .await?
            .body;
        tasks.push(field(&accepted, "/taskId")?);
    }
    // Seeding is bounded too: a server that never finishes its tasks is
    // reported, not waited for.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    for task in tasks {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let t = crate::cli::instances::follow(session, &task, left, false).await?;
        if t["taskStatus"] == "FAILED" {
            return Err(Failure::new(
                Exit::TaskFailed,
                format!("seeding an instance failed: {}", t["error"]),
            ));
        }
        ids.push(field(&t, "/resourceId")?);
    }
    Ok(ids)
}

/// One connection's client and state.
pub struct Worker<'f> {
    fixture: &'f Fixture,
    /// The fixture's URL, parsed once.
    base: reqwest::Url,
    http: reqwest::Client,
    rng: rand::rngs::StdRng,
    refresh_token: Option<String>,
}

impl<'f> Worker<'f> {
    pub fn new(fixture: &'f Fixture) -> Result<Worker<'f>, Failure> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(1)
            .timeout(std::time::Duration::from_secs(70))
            .build()
            .map_err(|e| Failure::new(Exit::Error, format!("HTTP client: {e}")))?;
        let base = reqwest::Url::parse(&fixture.url)
            .map_err(|e| Failure::new(Exit::Usage, format!("URL {}: {e}", fixture.url)))?;
        Ok(Worker {
            fixture,
            base,
            http,
            rng: rand::rngs::StdRng::from_entropy(),
            refresh_token: None,
        })
    }

    /// The server's URL with `path` (and its query): set on a copy of the
    /// parsed URL, since parsing it whole for every request was a tenth of
    /// the load generator's CPU.
    fn url(&self, path: &str) -> reqwest::Url {
        let (path, query) = path
            .split_once('?')
            .map_or((path, None), |(path, query)| (path, Some(query)));
        let mut url = self.base.clone();
        let prefix = self.base.path().trim_end_matches('/');
        if prefix.is_empty() {
            url.set_path(path);
        } else {
            url.set_path(&format!("{prefix}{path}"));
        }
        url.set_query(query);
        url
    }

    /// An API request with the run's authentication.
    fn api(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let f = self.fixture;
        let builder = self.http.request(method, self.url(path)).header(
            reqwest::header::ACCEPT,
            if f.xml {
                "application/xml"
            } else {
                "application/json"
            },
        );
        match f.auth {
            Auth::Bearer => builder.bearer_auth(&f.bearer),
            Auth::ApiKey => builder.header(nephele_client::API_KEY_HEADER, &f.api_key),
            Auth::Basic => builder.basic_auth(&f.login, Some(&f.password)),
        }
    }

    /// One step of the scenario.
    pub async fn once(&mut self) -> Outcome {
        let scenario = match self.fixture.scenario {
            Scenario::Mixed => match self.rng.gen_range(0..100) {
                0..60 => Scenario::GetInstance,
                60..85 => Scenario::ListInstances,
                85..95 => Scenario::TokenClientCredentials,
                _ => Scenario::CreateInstance,
            },
            s => s,
        };
        match scenario {
            Scenario::TokenClientCredentials => {
                let f = self.fixture;
                let r = self
                    .http
                    .post(self.url("/api/2/idp/token"))
                    .basic_auth(&f.client_id, Some(&f.client_secret))
                    .form(&[("grant_type", "client_credentials")]);
                status(r.send().await).await
            }
            Scenario::TokenPassword => self.password_grant(None).await.map(|(s, _)| s),
            Scenario::TokenRefresh => self.refresh().await,
            Scenario::GetInstance => {
                let i = self.rng.gen_range(0..self.fixture.instances.len().max(1));
                let id = self.fixture.instances.get(i).cloned().unwrap_or_default();
                status(
                    self.api(Method::GET, &format!("/api/v2/instances/{id}"))
                        .send()
                        .await,
                )
                .await
            }
            Scenario::ListInstances => {
                status(
                    self.api(Method::GET, "/api/v2/instances?limit=100")
                        .send()
                        .await,
                )
                .await
            }
            Scenario::CreateInstance | Scenario::Mixed => self.create_instance().await,
            Scenario::LoginCode => self.login_code().await,
        }
    }

    /// A whole sign-in, as a browser and its web app make it: the login
    /// page, the form (its hidden fields read back from the page, with the
    /// browser's cookie), the redirect's code, the token exchange.
    async fn login_code(&mut self) -> Outcome {
        let f = self.fixture;
        let params = [
            ("response_type", "code"),
            ("client_id", f.client_id.as_str()),
            ("redirect_uri", LOGIN_REDIRECT),
            ("scope", "openid"),
            ("state", "bench"),
            ("code_challenge", PKCE_CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        let mut url = self.url("/api/2/idp/authorize");
        url.query_pairs_mut().extend_pairs(params);
        let page = self.http.get(url).send().await.map_err(|e| transport(&e))?;
        if page.status() != 200 {
            return Ok(page.status().as_u16());
        }
        let cookie = page
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.split(';').next().filter(|p| p.contains("_browser=")))
            .map(str::to_owned)
            .ok_or("no-browser-cookie")?;
        let html = page.text().await.map_err(|e| transport(&e))?;
        let marker = r#"name="form_token" value=""#;
        let start = html.find(marker).ok_or("no-form-token")? + marker.len();
        let token = html[start..].split('"').next().unwrap_or_default();
        let mut form: Vec<(&str, &str)> = params.to_vec();
        form.extend([
            ("form_token", token),
            ("action", "login"),
            ("username", f.login.as_str()),
            ("password", f.password.as_str()),
        ]);
        let posted = self
            .http
            .post(self.url("/api/2/idp/authorize"))
            .header(reqwest::header::COOKIE, cookie)
            .form(&form)
            .send()
            .await
            .map_err(|e| transport(&e))?;
        if posted.status() != 302 {
            return Ok(posted.status().as_u16());
        }
        let location = posted
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| reqwest::Url::parse(l).ok())
            .ok_or("no-redirect")?;
        let code = location
            .query_pairs()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
            .ok_or("no-code")?;
        let exchange = self
            .http
            .post(self.url("/api/2/idp/token"))
            .basic_auth(&f.client_id, Some(&f.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", LOGIN_REDIRECT),
                ("code_verifier", PKCE_VERIFIER),
            ]);
        status(exchange.send().await).await
    }

    async fn password_grant(&self, scope: Option<&str>) -> Result<(u16, Value), &'static str> {
        let f = self.fixture;
        let mut form = vec![
            ("grant_type", "password"),
            ("username", f.login.as_str()),
            ("password", f.password.as_str()),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.token_form(&form).await
    }

    /// `POST /api/2/idp/token` with `form`, no client authentication.
    async fn token_form(&self, form: &[(&str, &str)]) -> Result<(u16, Value), &'static str> {
        body(
            self.http
                .post(self.url("/api/2/idp/token"))
                .form(form)
                .send()
                .await,
        )
        .await
    }

    /// Each connection rotates its own refresh-token chain, started by a
    /// password grant (counted like any other request).
    async fn refresh(&mut self) -> Outcome {
        let (code, answer) = match self.refresh_token.take() {
            None => self.password_grant(Some("offline_access")).await?,
            Some(token) => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ];
                self.token_form(&form).await?
            }
        };
        self.refresh_token = answer["refresh_token"].as_str().map(str::to_owned);
        Ok(code)
    }

    /// Create, then long-poll the task: the outcome is the task's end.
    async fn create_instance(&mut self) -> Outcome {
        let name = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let request = self
            .api(Method::POST, "/api/v2/instances")
            .header(reqwest::header::ACCEPT, "application/json")
            .json(&json!({"name": name, "image": "alpine-3.20"}));
        let (code, accepted) = body::<Accepted>(request.send().await).await?;
        if code != 202 {
            return Ok(code);
        }
        let Some(task) = accepted.task_id else {
            return Err("no-task-id");
        };
        loop {
            let poll = self
                .api(Method::GET, &format!("/api/v2/tasks/{task}?wait=60"))
                .header(reqwest::header::ACCEPT, "application/json");
            let (code, answer) = body::<TaskAnswer>(poll.send().await).await?;
            if code != 200 {
                return Ok(code);
            }
            match answer.data.task_status.as_deref() {
                Some("SUCCESS") => return Ok(200),
                Some("FAILED") => return Err("task-failed"),
                _ => {}
            }
        }
    }
}

/// What create-instance reads of a 202 and of a task: the rest of each
/// answer is skipped rather than built into a `Value`.
#[derive(Default, Deserialize)]
struct Accepted {
    #[serde(rename = "taskId")]
    task_id: Option<String>,
}

#[derive(Default, Deserialize)]
struct TaskAnswer {
    #[serde(default)]
    data: TaskState,
}

#[derive(Default, Deserialize)]
struct TaskState {
    #[serde(rename = "taskStatus")]
    task_status: Option<String>,
}

fn transport(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else {
        "transport"
    }
}

/// The status of an answer; its body is read (so the connection is kept)
/// and dropped.
async fn status(response: reqwest::Result<reqwest::Response>) -> Outcome {
    let response = response.map_err(|e| transport(&e))?;
    let code = response.status().as_u16();
    response.bytes().await.map_err(|e| transport(&e))?;
    Ok(code)
}

async fn body<T: DeserializeOwned + Default>(
    response: reqwest::Result<reqwest::Response>,
) -> Result<(u16, T), &'static str> {
    let response = response.map_err(|e| transport(&e))?;
    let code = response.status().as_u16();
    let bytes = response.bytes().await.map_err(|e| transport(&e))?;
    Ok((code, serde_json::from_slice(&bytes).unwrap_or_default()))
}
