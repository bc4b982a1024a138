//! A typed HTTP client for the Nephele API: the command-line client's
//! transport. It knows the contract's shapes (the `/api/v2` envelope and
//! error list, the OAuth2 token endpoint and its errors) and nothing about
//! profiles or output; the CLI owns those.

use std::time::Duration;

use nephele_api_types::{Account, TokenResponse};
use nephele_common::error::ErrorDetail;
use serde_json::Value;
use url::Url;

pub use reqwest::Method;

mod typed;
pub use typed::Query;

/// The header that carries an API key.
pub const API_KEY_HEADER: &str = "MC-Api-Key";

/// JSON object keys whose values are secrets: redacted in `--debug` output.
const SECRET_FIELDS: &[&str] = &[
    "password",
    "currentPassword",
    "secret",
    "setupToken",
    "client_secret",
    "access_token",
    "refresh_token",
    "id_token",
    "token",
    "api_key",
];

/// What the client presents as credentials.
#[derive(Clone, Default)]
pub enum Credentials {
    #[default]
    None,
    Bearer(String),
    ApiKey(String),
    /// HTTP Basic with a user's login and password.
    Basic {
        login: String,
        password: nephele_common::Secret,
    },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::None => "None",
            Credentials::Bearer(_) => "Bearer([redacted])",
            Credentials::ApiKey(_) => "ApiKey([redacted])",
            Credentials::Basic { .. } => "Basic([redacted])",
        })
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Nothing answered: connection refused, unknown host, timeout, a TLS
    /// failure other than the certificate's.
    #[error("cannot reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server's TLS certificate is not trusted (or a CA file given to
    /// trust could not be read).
    #[error("the TLS certificate of {url} is not trusted: {reason} (trust its CA with --cacert FILE or SSL_CERT_FILE)")]
    Certificate { url: String, reason: String },
    /// The server answered with the contract's error list.
    #[error("{}", describe(.status, .errors))]
    Api {
        status: u16,
        errors: Vec<ErrorDetail>,
    },
    /// The token endpoint refused (RFC 6749 §5.2).
    #[error("{error}{}", .description.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    OAuth {
        status: u16,
        error: String,
        description: Option<String>,
    },
    /// Something answered, but not in the contract's shape: a wrong URL.
    #[error("{url} answered {status}, not as a Nephele server would{}", .detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Unexpected {
        url: String,
        status: u16,
        detail: Option<String>,
    },
}

impl Error {
    /// The HTTP status of a server's refusal, if there was one.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Unreachable { .. } | Error::Certificate { .. } => None,
            Error::Api { status, .. }
            | Error::OAuth { status, .. }
            | Error::Unexpected { status, .. } => Some(*status),
        }
    }

    /// The first error code of an API error.
    #[must_use]
    pub fn code(&self) -> Option<u16> {
        match self {
            Error::Api { errors, .. } => errors.first().map(|e| e.code),
            _ => None,
        }
    }
}

/// One line per error: `Cannot stop … (code 2012; currentState: Stopped, …)`.
fn describe(status: &u16, errors: &[ErrorDetail]) -> String {
    if errors.is_empty() {
        return format!("the server answered {status}");
    }
    errors
        .iter()
        .map(describe_error)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One error object of the contract as one line, with its context.
#[must_use]
pub fn describe_error(e: &ErrorDetail) -> String {
    let context: Vec<String> = e
        .context
        .iter()
        .map(|(k, v)| format!("{k}: {}", plain(v)))
        .collect();
    if context.is_empty() {
        format!("{} (code {})", e.message, e.code)
    } else {
        format!("{} (code {}; {})", e.message, e.code, context.join(", "))
    }
}

/// A context value as a person reads it: `Stopped`, `Running, Stopped`.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    /// The `Location` header, for 201 and 202.
    pub location: Option<String>,
    /// The body; `Value::Null` when there is none (204).
    pub body: Value,
}

/// A request to the API, built by the caller and sent by [`Client::send`].
/// It is a plain value so a caller can send it again (after refreshing a
/// token, say).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub body: Option<Value>,
}

impl Request {
    #[must_use]
    pub fn new(method: reqwest::Method, path: impl Into<String>) -> Request {
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
        }
    }

    #[must_use]
    pub fn get(path: impl Into<String>) -> Request {
        Request::new(reqwest::Method::GET, path)
    }

    #[must_use]
    pub fn post(path: impl Into<String>, body: Value) -> Request {
        Request::new(reqwest::Method::POST, path).json(body)
    }

    #[must_use]
    pub fn json(mut self, body: Value) -> Request {
        self.body = Some(body);
        self
    }

    /// Adds a query parameter when it has a value.
    #[must_use]
    pub fn query(mut self, key: &str, value: Option<impl ToString>) -> Request {
        if let Some(value) = value {
            self.query.push((key.to_owned(), value.to_string()));
        }
        self
    }
}

/// The Nephele API at one base URL.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    credentials: Credentials,
    debug: bool,
}

impl Client {
    /// A client of the server at `base` (`http://host:port`, any path is kept
    /// as a prefix). `debug` prints every exchange to stderr, secrets redacted.
    /// HTTPS trusts the system's roots (`SSL_CERT_FILE` and `SSL_CERT_DIR`
    /// replace them, as for OpenSSL), the Mozilla roots, and the PEM
    /// certificates in `cacert`.
    pub fn new(base: &str, debug: bool, cacert: Option<&std::path::Path>) -> Result<Client, Error> {
        let mut base = Url::parse(base).map_err(|e| Error::Unreachable {
            url: base.to_owned(),
            reason: format!("not a URL: {e}"),
        })?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(Error::Unreachable {
                url: base.to_string(),
                reason: "the URL must start with http:// or https://".into(),
            });
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("nephele-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            // A long-poll waits up to 60 s; anything beyond is a dead server.
            .timeout(Duration::from_secs(90));
        if let Some(path) = cacert {
            let unreadable = |reason: String| Error::Certificate {
                url: base.to_string(),
                reason: format!("cannot use {}: {reason}", path.display()),
            };
            let pem = std::fs::read(path).map_err(|e| unreadable(e.to_string()))?;
            let certificates = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| unreadable(e.to_string()))?;
            if certificates.is_empty() {
                return Err(unreadable("no PEM certificate in it".into()));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder.build().map_err(|e| Error::Unreachable {
            url: base.to_string(),
            reason: e.to_string(),
        })?;
        Ok(Client {
            http,
            base,
            credentials: Credentials::None,
            debug,
        })
    }

    /// The base URL, without a trailing slash.
    #[must_use]
    pub fn base_url(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    pub fn set_credentials(&mut self, credentials: Credentials) {
        self.credentials = credentials;
    }

    #[must_use]
    pub fn with_credentials(mut self, credentials: Credentials) -> Client {
        self.credentials = credentials;
        self
    }

    fn url(&self, path: &str, query: &[(String, String)]) -> Result<Url, Error> {
        let mut url =
            self.base
                .join(path.trim_start_matches('/'))
                .map_err(|e| Error::Unreachable {
                    url: format!("{}{path}", self.base),
                    reason: e.to_string(),
                })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// Sends a request with the client's credentials and returns the reply,
    /// or the server's refusal as an [`Error`].
    pub async fn send(&self, request: &Request) -> Result<Reply, Error> {
        let url = self.url(&request.path, &request.query)?;
        let mut builder = self
            .http
            .request(request.method.clone(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        builder = match &self.credentials {
            Credentials::None => builder,
            Credentials::Bearer(token) => builder.bearer_auth(token),
            Credentials::ApiKey(key) => builder.header(API_KEY_HEADER, key),
            Credentials::Basic { login, password } => {
                builder.basic_auth(login, Some(password.expose()))
            }
        };
        if let Some(body) = &request.body {
            builder = builder.json(body);
        }
        self.exchange(builder, &url, request.body.as_ref()).await
    }

    /// `GET /api/1/accounts?login=L`: the data center where a login lives.
    pub async fn account(&self, login: &str) -> Result<Account, Error> {
        let reply = self
            .send(&Request::get("/api/1/accounts").query("login", Some(login)))
            .await?;
        self.decode(reply, "/api/1/accounts")
    }

    /// `POST /api/2/idp/token` with a form and no client authentication
    /// (the password and refresh grants of a user).
    pub async fn token(&self, form: &[(&str, &str)]) -> Result<TokenResponse, Error> {
        self.token_request(form, None).await
    }

    /// The client-credentials grant, the client authenticated the way it was
    /// registered: `client_secret_basic` or, with `post`, `client_secret_post`.
    pub async fn client_token(
        &self,
        client_id: &str,
        secret: &str,
        post: bool,
    ) -> Result<TokenResponse, Error> {
        let grant = ("grant_type", "client_credentials");
        if post {
            let form = [grant, ("client_id", client_id), ("client_secret", secret)];
            self.token_request(&form, None).await
        } else {
            self.token_request(&[grant], Some((client_id, secret)))
                .await
        }
    }

    async fn token_request(
        &self,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<TokenResponse, Error> {
        let url = self.url("/api/2/idp/token", &[])?;
        let mut builder = self
            .http
            .post(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form);
        if let Some((id, secret)) = basic {
            // RFC 6749 §2.3.1: each part form-encoded before Basic.
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            builder = builder.basic_auth(encode(id), Some(encode(secret)));
        }
        let shown: serde_json::Map<String, Value> = form
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
            .collect();
        let reply = self
            .exchange(builder, &url, Some(&Value::Object(shown)))
            .await?;
        self.decode(reply, "/api/2/idp/token")
    }

    /// `POST /api/2/idp/revoke` of a token, authenticated with this client's
    /// bearer token (a user revoking their own token).
    pub async fn revoke(&self, token: &str) -> Result<(), Error> {
        let url = self.url("/api/2/idp/revoke", &[])?;
        let mut builder = self.http.post(url.clone()).form(&[("token", token)]);
        if let Credentials::Bearer(bearer) = &self.credentials {
            builder = builder.bearer_auth(bearer);
        }
        self.exchange(builder, &url, None).await.map(|_| ())
    }

    /// A successful answer's body as `T`.
    fn decode<T: serde::de::DeserializeOwned>(&self, reply: Reply, path: &str) -> Result<T, Error> {
        serde_json::from_value(reply.body).map_err(|e| Error::Unexpected {
            url: format!("{}{}", self.base_url(), path),
            status: reply.status,
            detail: Some(e.to_string()),
        })
    }

    async fn exchange(
        &self,
        builder: reqwest::RequestBuilder,
        url: &Url,
        shown_body: Option<&Value>,
    ) -> Result<Reply, Error> {
        let request = builder.build().map_err(|e| Error::Unreachable {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        if self.debug {
            eprintln!("> {} {}", request.method(), request.url());
            for (name, value) in request.headers() {
                eprintln!("> {name}: {}", redact_header(name.as_str(), value));
            }
            if let Some(body) = shown_body {
                eprintln!("> {}", redact(body));
            }
        }
        let response = self
            .http
            .execute(request)
            .await
            .map_err(|e| transport_error(self.base_url(), &e))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if self.debug {
            eprintln!("< {}", response.status());
            for (name, value) in response.headers() {
                eprintln!("< {name}: {}", redact_header(name.as_str(), value));
            }
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| transport_error(self.base_url(), &e))?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        if self.debug {
            match &body {
                Some(body) => eprintln!("< {}", redact(body)),
                None if !bytes.is_empty() => eprintln!("< ({} bytes, not JSON)", bytes.len()),
                None => {}
            }
        }
        if (200..300).contains(&status) {
            return match body {
                Some(body) => Ok(Reply {
                    status,
                    location,
                    body,
                }),
                None if bytes.is_empty() => Ok(Reply {
                    status,
                    location,
                    body: Value::Null,
                }),
                None => Err(Error::Unexpected {
                    url: url.to_string(),
                    status,
                    detail: Some("the body is not JSON".into()),
                }),
            };
        }
        Err(refusal(url, status, body))
    }
}

/// The error a non-2xx answer stands for.
fn refusal(url: &Url, status: u16, body: Option<Value>) -> Error {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorDetail>,
    }
    #[derive(serde::Deserialize)]
    struct OAuth {
        error: String,
        error_description: Option<String>,
    }
    if let Some(body) = body {
        if let Ok(Errors { errors }) = serde_json::from_value::<Errors>(body.clone()) {
            return Error::Api { status, errors };
        }
        if let Ok(e) = serde_json::from_value::<OAuth>(body) {
            return Error::OAuth {
                status,
                error: e.error,
                description: e.error_description,
            };
        }
    }
    Error::Unexpected {
        url: url.to_string(),
        status,
        detail: None,
    }
}

/// A transport error as [`Error::Certificate`] when TLS refused the
/// server's certificate, else [`Error::Unreachable`].
fn transport_error(url: String, e: &reqwest::Error) -> Error {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(cause) = next {
        // rustls's error sits inside io::Errors (one in another), whose
        // `source` skips what they hold.
        let mut inner: &(dyn std::error::Error + 'static) = cause;
        while let Some(held) = inner
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            inner = held;
        }
        let tls = inner.downcast_ref::<rustls::Error>();
        if let Some(rustls::Error::InvalidCertificate(why)) = tls {
            return Error::Certificate {
                url,
                reason: format!("{why:?}"),
            };
        }
        next = cause.source();
    }
    Error::Unreachable {
        url,
        reason: reason(e),
    }
}

/// The innermost cause of a transport error: "Connection refused", not
/// reqwest's "error sending request for url".
fn reason(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(next) = source.source() {
        source = next;
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    let text = source.to_string();
    // "Connection refused (os error 111)" → "Connection refused".
    match text.find(" (os error") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

fn redact_header(name: &str, value: &reqwest::header::HeaderValue) -> String {
    let value = value.to_str().unwrap_or("(binary)");
    if name.eq_ignore_ascii_case("authorization") {
        let scheme = value.split(' ').next().unwrap_or("");
        format!("{scheme} [redacted]")
    } else if name.eq_ignore_ascii_case(API_KEY_HEADER) || name.eq_ignore_ascii_case("cookie") {
        "[redacted]".into()
    } else {
        value.to_owned()
    }
}

/// A copy of a JSON document with every secret field replaced.
#[must_use]
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if SECRET_FIELDS.contains(&k.as_str()) && !v.is_null() {
                        Value::String("[redacted]".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn redaction_hides_every_secret_at_any_depth() {
        let body = json!({
            "login": "admin",
            "admin": {"password": "p", "login": "x"},
            "items": [{"client_secret": "s", "name": "n"}],
            "access_token": "t",
            "lastUsedAt": null,
        });
        let shown = redact(&body).to_string();
        for secret in ["\"p\"", "\"s\"", "\"t\""] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("\"admin\"") && shown.contains("\"n\""));
    }

    #[test]
    fn an_error_list_reads_as_one_line_with_its_context() {
        let e = refusal(
            &Url::parse("http://x/").unwrap(),
            409,
            Some(
                json!({"errors":[{"code":2012,"message":"Cannot stop","context":{"currentState":"Stopped","expectedStates":["Running"]}}]}),
            ),
        );
        assert_eq!(e.code(), Some(2012));
        assert_eq!(
            e.to_string(),
            "Cannot stop (code 2012; currentState: Stopped, expectedStates: Running)"
        );
    }

    #[test]
    fn a_body_outside_the_contract_is_unexpected() {
        let e = refusal(&Url::parse("http://x/y").unwrap(), 404, None);
        assert!(matches!(e, Error::Unexpected { status: 404, .. }));
        let e = refusal(
            &Url::parse("http://x/").unwrap(),
            400,
            Some(json!({"error":"invalid_grant","error_description":"bad"})),
        );
        assert_eq!(e.to_string(), "invalid_grant: bad");
    }

    #[test]
    fn a_base_url_keeps_its_path_as_a_prefix() {
        let c = Client::new("http://h:1/prefix", false, None).unwrap();
        let url = c
            .url("/api/v2/me", &[("org_id".into(), "a b".into())])
            .unwrap();
        assert_eq!(url.as_str(), "http://h:1/prefix/api/v2/me?org_id=a+b");
        assert!(Client::new("ftp://h", false, None).is_err());
        assert!(Client::new("not a url", false, None).is_err());
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_refused() {
        let missing = std::path::Path::new("/nonexistent/ca.pem");
        let e = Client::new("https://h", false, Some(missing)).unwrap_err();
        assert!(matches!(e, Error::Certificate { .. }), "{e}");
        let dir = std::env::temp_dir().join(format!("nephele-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let e = Client::new("https://h", false, Some(&empty)).unwrap_err();
        assert!(e.to_string().contains("no PEM certificate"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
