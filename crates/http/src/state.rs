use crate::metrics::Metrics;
use nephele_app::App;
use std::sync::{Arc, OnceLock};

/// Options of the HTTP surface itself.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The longest wait for the next part of a request body (408 after).
    pub body_read_timeout: std::time::Duration,
    /// Origins whose pages browsers may let call the API (CORS); none
    /// answers no CORS at all.
    pub cors_origins: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
            body_read_timeout: std::time::Duration::from_secs(30),
            cors_origins: Vec::new(),
        }
    }
}

/// What every handler and middleware can reach. One reference count to
/// clone: axum clones the state for every layer and extractor of every
/// request, and five shared counts were five cache lines that both cores
/// took turns writing (`drop_in_place<AppState>` alone was about 1 % of the
/// server's samples under `get-instance`).
#[derive(Clone, Debug)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
pub struct Shared {
    pub app: App,
    pub metrics: Metrics,
    pub options: HttpOptions,
    /// The OpenAPI document and the reference page, rendered on first
    /// request: an idle server should not hold them (or the code that
    /// renders them) in memory.
    pub openapi_json: OnceLock<String>,
    pub docs_html: OnceLock<crate::pages::Page>,
}

impl AppState {
    pub fn new(app: App, metrics: Metrics, options: HttpOptions) -> AppState {
        AppState(Arc::new(Shared {
            app,
            metrics,
            options,
            openapi_json: OnceLock::new(),
            docs_html: OnceLock::new(),
        }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
