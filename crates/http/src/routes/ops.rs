//! Operations: health, readiness, metrics, the OpenAPI document and the
//! reference page.

use crate::error::HttpResult;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use nephele_api_types::{ErrorBody, Health};

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(Health {
        status: "ok".into(),
    })
}

/// The database is reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to serve", body = Health),
        (status = 503, description = "The database is unreachable", body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> HttpResult<Response> {
    state.app.ping().await?;
    Ok(axum::Json(Health {
        status: "ready".into(),
    })
    .into_response())
}

/// Metrics: the Prometheus text format 0.0.4 by default, OpenMetrics 1.0
/// when `Accept` names it.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in the Prometheus text format (0.0.4), or OpenMetrics when asked for",
        content(
            (String = "text/plain"),
            (String = "application/openmetrics-text"),
        ))))]
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    use crate::exposition::{Exposition, Family, Kind};
    let format = Exposition::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let pools = state.app.pool_connections();
    let mut connections = Family {
        name: "nephele_db_connections",
        kind: Kind::Gauge,
        help: "Database connections by pool and state.",
        samples: Vec::new(),
    };
    for (pool, in_use, idle) in pools {
        connections.samples.push((
            vec![("pool", pool.into()), ("state", "in_use".into())],
            f64::from(in_use),
        ));
        connections.samples.push((
            vec![("pool", pool.into()), ("state", "idle".into())],
            f64::from(idle),
        ));
    }
    let extra = [
        Family {
            name: "nephele_build",
            kind: Kind::Info,
            help: "The running build.",
            samples: vec![(vec![("version", env!("CARGO_PKG_VERSION").into())], 1.0)],
        },
        connections,
        Family::one(
            "nephele_login_locks",
            Kind::Gauge,
            "Login lockout keys (account at address, address, account) locked now.",
            state.app.login_locks_now() as f64,
        ),
    ];
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, format.content_type())],
        state.metrics.render(format, &extra),
    )
        .into_response()
}

/// This OpenAPI 3.1 document, generated from the code.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi_json.get_or_init(crate::openapi_json).clone(),
    )
        .into_response()
}

/// A readable API reference, self-contained.
#[utoipa::path(get, path = "/docs", tag = "operations",
    responses((status = 200, description = "The API reference", content_type = "text/html", body = String)))]
pub async fn docs(State(state): State<AppState>) -> crate::pages::Page {
    state
        .docs_html
        .get_or_init(|| crate::pages::docs::render(&crate::api().1))
        .clone()
}
