//! Nephele's HTTP surface. Handlers are thin: extract, call one app method,
//! reply. Everything the contract says about representation — JSON/XML,
//! envelopes, errors, request ids, idempotency, preconditions — lives in
//! the layers and extractors here, once, for every route.

pub mod audit;
pub mod auth;
pub mod error;
pub mod exposition;
pub mod extract;
pub mod limits;
pub mod metrics;
pub mod middleware;
pub mod negotiate;
pub mod openapi;
pub mod pages;
pub mod reply;
pub mod request;
pub mod routes;
pub mod state;
pub mod xml;

use axum::Router;
use error::HttpError;
use nephele_app::App;
use nephele_common::{Error, ErrorCode};
pub use state::{AppState, HttpOptions};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route group once, each handed to `$group` (`routes!` for the
/// OpenAPI document, `handlers!` for serving) and added to `$router` with
/// its `routes` method.
macro_rules! every_route {
    ($router:expr, $group:ident) => {{
        use routes::{
            accounts, api_keys, audit_events, authorize, clients, datacenters, idp, images,
            instances, links, me, notary, ops, organizations, roles, setup, tasks, users,
        };
        $router
            .routes($group!(ops::healthz))
            .routes($group!(ops::readyz))
            .routes($group!(ops::metrics))
            .routes($group!(ops::openapi))
            .routes($group!(ops::docs))
            .routes($group!(setup::status))
            .routes($group!(setup::init))
            .routes($group!(organizations::list, organizations::create))
            .routes($group!(
                organizations::get,
                organizations::put,
                organizations::patch,
                organizations::delete
            ))
            .routes($group!(me::get))
            .routes($group!(me::sessions, me::end_sessions))
            .routes($group!(me::end_session))
            .routes($group!(me::consents))
            .routes($group!(me::revoke_consent))
            .routes($group!(me::enrol_totp, me::remove_totp))
            .routes($group!(me::confirm_totp))
            .routes($group!(users::list, users::create))
            .routes($group!(users::get, users::put, users::patch, users::delete))
            .routes($group!(users::password))
            .routes($group!(users::revoke_sessions))
            .routes($group!(roles::list, roles::create))
            .routes($group!(roles::get, roles::put, roles::delete))
            .routes($group!(api_keys::list, api_keys::create))
            .routes($group!(api_keys::delete))
            .routes($group!(api_keys::regenerate))
            .routes($group!(audit_events::list))
            .routes($group!(datacenters::list, datacenters::create))
            .routes($group!(datacenters::delete))
            .routes($group!(images::list))
            .routes($group!(accounts::get))
            .routes($group!(authorize::authorize, authorize::submit))
            .routes($group!(authorize::logout, authorize::logout_post))
            .routes($group!(links::activate_page, links::activate))
            .routes($group!(links::reset_page, links::reset))
            .routes($group!(links::password_reset))
            .routes($group!(links::forgot_page, links::forgot))
            .routes($group!(idp::token))
            .routes($group!(idp::revoke))
            .routes($group!(idp::introspect))
            .routes($group!(idp::userinfo, idp::userinfo_post))
            .routes($group!(idp::keys))
            .routes($group!(idp::rotate_keys))
            .routes($group!(idp::openid_configuration))
            .routes($group!(clients::list, clients::create))
            .routes($group!(clients::get, clients::put, clients::delete))
            .routes($group!(clients::secret))
            .routes($group!(organizations::get_quota, organizations::put_quota))
            .routes($group!(instances::list, instances::create))
            .routes($group!(instances::get, instances::patch, instances::delete))
            .routes($group!(instances::start))
            .routes($group!(instances::stop))
            .routes($group!(instances::reboot))
            .routes($group!(tasks::list))
            .routes($group!(tasks::get, tasks::cancel))
            .routes($group!(notary::list, notary::create))
            .routes($group!(notary::get, notary::delete))
            .routes($group!(notary::content))
            .routes($group!(notary::certificate))
            .routes($group!(notary::verify, notary::verify_page))
            .routes($group!(notary::keys))
            .routes($group!(notary::tree_heads))
    }};
}

/// One route group's handlers on their shared path, for serving only.
/// Unlike `routes!`, it builds no OpenAPI operation and walks no schema:
/// at start that work took most of the code an idle server keeps mapped
/// and megabytes of heap, for a document few ever ask for.
macro_rules! handlers {
    ($first:ident :: $first_handler:ident $(, $module:ident :: $handler:ident)* $(,)?) => {{
        use utoipa_axum::PathItemExt;
        utoipa_axum::paste! {
            let path = <$first::[<__path_ $first_handler>] as utoipa::Path>::path();
            let mut methods = axum::routing::MethodRouter::new();
            for method in <$first::[<__path_ $first_handler>] as utoipa::Path>::methods() {
                methods = methods.on(method.to_method_filter(), $first::$first_handler);
            }
            $(
                for method in <$module::[<__path_ $handler>] as utoipa::Path>::methods() {
                    methods = methods.on(method.to_method_filter(), $module::$handler);
                }
            )*
        }
        (path, methods)
    }};
}

/// Adds a group from [`handlers!`] to a plain router.
trait AddHandlers {
    fn routes(self, group: (String, axum::routing::MethodRouter<AppState>)) -> Self;
}

impl AddHandlers for Router<AppState> {
    fn routes(self, (path, methods): (String, axum::routing::MethodRouter<AppState>)) -> Self {
        self.route(&path, methods)
    }
}

/// Every route with its OpenAPI entry: the document's source.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, api) = every_route!(
        OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi()),
        routes
    )
    .split_for_parts();
    (router, openapi::finish(api))
}

/// Every route, as served. The document is made when it is first asked
/// for, not at every start.
fn served_routes() -> Router<AppState> {
    every_route!(Router::new(), handlers)
}

/// The OpenAPI document as served and as committed in `openapi/nephele.json`.
pub fn openapi_json() -> String {
    let (_, api) = api();
    api.to_pretty_json().unwrap_or_default()
}

async fn not_found(uri: axum::http::Uri) -> HttpError {
    Error::new(ErrorCode::NotFound, "No such path")
        .with("path", uri.path())
        .into()
}

/// The complete service: routes, layers and state.
/// CORS for front ends served from `origins` (exact matches): the methods
/// and headers the API takes, the headers its answers carry. No cookies:
/// credentials travel in headers, which a page must set itself.
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    let named = |names: &[&'static str]| -> Vec<HeaderName> {
        names.iter().map(|n| HeaderName::from_static(n)).collect()
    };
    let mut allowed = vec![
        header::AUTHORIZATION,
        header::CONTENT_TYPE,
        header::ACCEPT,
        header::IF_MATCH,
    ];
    allowed.extend(named(&[
        "mc-api-key",
        "idempotency-key",
        "prefer",
        "x-request-id",
        "x-agent-id",
    ]));
    let mut exposed = vec![
        header::ETAG,
        header::LOCATION,
        header::RETRY_AFTER,
        header::WWW_AUTHENTICATE,
    ];
    exposed.extend(named(&["x-request-id", "idempotent-replayed"]));
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers(allowed)
            .expose_headers(exposed)
            .max_age(std::time::Duration::from_secs(600)),
    )
}

pub fn service(app: App, options: HttpOptions) -> Router {
    let cors = cors(&options.cors_origins);
    let routes = served_routes();
    let metrics = metrics::Metrics::new(app.engine().ok().map(|e| e.metrics()));
    let state = AppState::new(app, metrics, options);
    use axum::middleware::{from_fn, from_fn_with_state};
    let inner = routes
        .fallback(not_found)
        // Uploads are limited by the notary's own limit as they stream;
        // every other body by the `Body` extractor's.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .layer(from_fn_with_state(state.clone(), middleware::idempotency))
        .layer(from_fn(middleware::prefer_minimal))
        .layer(from_fn_with_state(state.clone(), middleware::setup_gate))
        .layer(from_fn_with_state(state.clone(), middleware::access_log))
        .with_state(state.clone());
    // Negotiation must see the request before routing (it strips `.xml`),
    // so it wraps the routed service from outside.
    Router::new().fallback_service(inner).layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                error::error_response(&Error::internal("handler panicked"))
            }))
            .layer(from_fn_with_state(state.clone(), limits::edge))
            // Before negotiation and the setup gate: a preflight carries
            // no credentials and asks for no representation.
            .option_layer(cors)
            .layer(from_fn(negotiate::negotiate)),
    )
}
