//! The one place where an [`Error`] becomes an HTTP response: the status of
//! SPEC §3, the `errors` envelope, and the headers some statuses require.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nephele_api_types::ErrorBody;
use nephele_common::{Error, ErrorCode};

/// The schemes named in `WWW-Authenticate` on every 401.
pub const WWW_AUTHENTICATE: &str = "Bearer realm=\"nephele\", Basic realm=\"nephele\"";

/// An [`Error`] on its way out as an HTTP response.
#[derive(Debug)]
pub struct HttpError(pub Error);

impl From<Error> for HttpError {
    fn from(e: Error) -> Self {
        HttpError(e)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

pub fn error_response(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match e.code() {
        ErrorCode::Internal => {
            let id = e.details()[0]
                .context
                .get("errorId")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            tracing::error!(
                error_id = id,
                cause = e.internal_message().unwrap_or(""),
                "internal error"
            );
        }
        ErrorCode::Unavailable => {
            tracing::warn!(cause = e.internal_message().unwrap_or(""), "unavailable");
        }
        _ => {}
    }
    let body = ErrorBody {
        errors: e.details().to_vec(),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_else(|_| b"{\"errors\":[]}".to_vec());
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if status == StatusCode::UNAUTHORIZED {
        headers.insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(WWW_AUTHENTICATE),
        );
    }
    if let Some(seconds) = e.retry_after() {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

pub type HttpResult<T> = Result<T, HttpError>;
