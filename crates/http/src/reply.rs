//! Successful responses in the contract's shapes. Handlers build a
//! [`Reply`]; bodies are JSON here and become XML, when negotiated, in the
//! negotiation layer.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use nephele_api_types::{Data, List};
use nephele_common::page::{encode_token, Page};
use nephele_common::{Error, Precondition};
use serde::Serialize;

/// The singular element name of a list's items in XML (`<role>` in a list
/// of roles), carried on the response for the negotiation layer.
#[derive(Debug, Clone, Copy)]
pub struct XmlListItem(pub &'static str);

#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    body: Option<Vec<u8>>,
    etag: Option<String>,
    location: Option<String>,
    list_item: Option<&'static str>,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(value).map_err(|e| Error::internal(format!("serialize response: {e}")))
}

impl Reply {
    fn new(status: StatusCode, body: Option<Vec<u8>>) -> Reply {
        Reply {
            status,
            body,
            etag: None,
            location: None,
            list_item: None,
        }
    }

    /// 200 `{"data": …}`.
    pub fn ok<T: Serialize>(data: T) -> Result<Reply, Error> {
        Ok(Reply::new(StatusCode::OK, Some(json(&Data { data })?)))
    }

    /// 200 `{"data": …}` of one versioned resource, with its `ETag`.
    pub fn resource<T: Serialize>(data: T, version: i64) -> Result<Reply, Error> {
        let mut r = Reply::ok(data)?;
        r.etag = Some(Precondition::etag(version));
        Ok(r)
    }

    /// 201 `{"data": …}` with `Location` naming the new resource.
    pub fn created<T: Serialize>(data: T, location: String) -> Result<Reply, Error> {
        let mut r = Reply::new(StatusCode::CREATED, Some(json(&Data { data })?));
        r.location = Some(location);
        Ok(r)
    }

    /// 200 `{"data": [...], "nextPage": "…"}`.
    pub fn list<T: Serialize>(item: &'static str, page: Page<T>) -> Result<Reply, Error> {
        let body = List {
            data: page.items,
            next_page: page.next.as_deref().map(encode_token),
        };
        let mut r = Reply::new(StatusCode::OK, Some(json(&body)?));
        r.list_item = Some(item);
        Ok(r)
    }

    /// A body outside the envelope (discovery and OAuth2 endpoints).
    pub fn bare<T: Serialize>(status: StatusCode, body: &T) -> Result<Reply, Error> {
        Ok(Reply::new(status, Some(json(body)?)))
    }

    /// 202 `{"taskId": …, "taskStatus": "PENDING"}` with `Location` naming
    /// the task that carries the operation out.
    pub fn accepted(task: uuid::Uuid) -> Result<Reply, Error> {
        let body = nephele_api_types::TaskAccepted {
            task_id: task,
            task_status: "PENDING".to_owned(),
        };
        let mut r = Reply::new(StatusCode::ACCEPTED, Some(json(&body)?));
        r.location = Some(format!("/api/v2/tasks/{task}"));
        Ok(r)
    }

    /// 202 with no body: accepted, and nothing to tell.
    pub fn accepted_empty() -> Reply {
        Reply::new(StatusCode::ACCEPTED, None)
    }

    /// 204.
    pub fn no_content() -> Reply {
        Reply::new(StatusCode::NO_CONTENT, None)
    }

    pub fn with_location(mut self, location: String) -> Reply {
        self.location = Some(location);
        self
    }

    pub fn with_version(mut self, version: i64) -> Reply {
        self.etag = Some(Precondition::etag(version));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self.body {
            Some(body) => (
                self.status,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            None => self.status.into_response(),
        };
        let headers = response.headers_mut();
        if let Some(tag) = self.etag.and_then(|t| HeaderValue::try_from(t).ok()) {
            headers.insert(header::ETAG, tag);
        }
        if let Some(loc) = self.location.and_then(|l| HeaderValue::try_from(l).ok()) {
            headers.insert(header::LOCATION, loc);
        }
        if let Some(item) = self.list_item {
            response.extensions_mut().insert(XmlListItem(item));
        }
        response
    }
}
