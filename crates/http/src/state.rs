use crate::metrics::Metrics;
use nephele_app::App;
use std::sync::Arc;

/// Options of the HTTP surface itself.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Request bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// Reverse proxies whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            max_body_bytes: 1024 * 1024,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What every handler and middleware can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub app: App,
    pub metrics: Arc<Metrics>,
    pub options: Arc<HttpOptions>,
    /// The OpenAPI document and the reference page, rendered on first
    /// request: an idle server should not hold them (or the code that
    /// renders them) in memory.
    pub openapi_json: Arc<std::sync::OnceLock<String>>,
    pub docs_html: Arc<std::sync::OnceLock<String>>,
}
