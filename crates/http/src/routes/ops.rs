//! Operations: health, readiness, metrics, the OpenAPI document and the
//! reference page.

use crate::error::HttpResult;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
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
    state.app.store().ping().await?;
    Ok(axum::Json(Health {
        status: "ready".into(),
    })
    .into_response())
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in the OpenMetrics text format",
        content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
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
pub async fn docs(State(state): State<AppState>) -> Html<String> {
    let html = state
        .docs_html
        .get_or_init(|| crate::docs::render(&crate::api().1));
    Html(html.clone())
}
