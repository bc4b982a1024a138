//! Nephele's HTTP surface. Handlers are thin: extract, call one app method,
//! reply. Everything the contract says about representation — JSON/XML,
//! envelopes, errors, request ids, idempotency, preconditions — lives in
//! the layers and extractors here, once, for every route.

pub mod audit;
pub mod auth;
pub mod docs;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod negotiate;
pub mod notary_page;
pub mod openapi;
pub mod reply;
pub mod routes;
pub mod state;
pub mod views;
pub mod xml;

use axum::Router;
use error::HttpError;
use nephele_app::App;
use nephele_common::{Error, ErrorCode};
pub use state::{AppState, HttpOptions};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route with its OpenAPI entry.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, api) = router_and_paths();
    (router, openapi::finish(api))
}

/// The routes, and their OpenAPI paths before [`openapi::finish`] adds
/// the common responses. Serving needs only the routes: the document is
/// made when it is first asked for, not at every start (finished, it
/// takes megabytes that an idle server would keep).
fn router_and_paths() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    use routes::{
        accounts, api_keys, audit_events, clients, datacenters, idp, images, instances, me, notary,
        ops, organizations, roles, setup, tasks, users,
    };
    let (router, api) =
        OpenApiRouter::with_openapi(<openapi::ApiDoc as utoipa::OpenApi>::openapi())
            .routes(routes!(ops::healthz))
            .routes(routes!(ops::readyz))
            .routes(routes!(ops::metrics))
            .routes(routes!(ops::openapi))
            .routes(routes!(ops::docs))
            .routes(routes!(setup::status))
            .routes(routes!(setup::init))
            .routes(routes!(organizations::list, organizations::create))
            .routes(routes!(
                organizations::get,
                organizations::put,
                organizations::patch,
                organizations::delete
            ))
            .routes(routes!(me::get))
            .routes(routes!(users::list, users::create))
            .routes(routes!(users::get, users::put, users::patch, users::delete))
            .routes(routes!(users::password))
            .routes(routes!(roles::list, roles::create))
            .routes(routes!(roles::get, roles::put, roles::delete))
            .routes(routes!(api_keys::list, api_keys::create))
            .routes(routes!(api_keys::delete))
            .routes(routes!(api_keys::regenerate))
            .routes(routes!(audit_events::list))
            .routes(routes!(datacenters::list, datacenters::create))
            .routes(routes!(datacenters::delete))
            .routes(routes!(images::list))
            .routes(routes!(accounts::get))
            .routes(routes!(idp::token))
            .routes(routes!(idp::revoke))
            .routes(routes!(idp::introspect))
            .routes(routes!(idp::userinfo))
            .routes(routes!(idp::keys))
            .routes(routes!(idp::rotate_keys))
            .routes(routes!(idp::openid_configuration))
            .routes(routes!(clients::list, clients::create))
            .routes(routes!(clients::get, clients::put, clients::delete))
            .routes(routes!(clients::secret))
            .routes(routes!(organizations::get_quota, organizations::put_quota))
            .routes(routes!(instances::list, instances::create))
            .routes(routes!(instances::get, instances::patch, instances::delete))
            .routes(routes!(instances::start))
            .routes(routes!(instances::stop))
            .routes(routes!(instances::reboot))
            .routes(routes!(tasks::list))
            .routes(routes!(tasks::get, tasks::cancel))
            .routes(routes!(notary::list, notary::create))
            .routes(routes!(notary::get, notary::delete))
            .routes(routes!(notary::content))
            .routes(routes!(notary::certificate))
            .routes(routes!(notary::verify))
            .routes(routes!(notary::keys))
            .routes(routes!(notary::tree_heads))
            .split_for_parts();
    (router, api)
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
pub fn service(app: App, options: HttpOptions) -> Router {
    let (routes, _) = router_and_paths();
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
        .with_state(state);
    // Negotiation must see the request before routing (it strips `.xml`),
    // so it wraps the routed service from outside.
    Router::new().fallback_service(inner).layer(
        ServiceBuilder::new()
            .layer(CatchPanicLayer::custom(|_| {
                error::error_response(&Error::internal("handler panicked"))
            }))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(from_fn(negotiate::negotiate)),
    )
}
