//! The API's resources as the `api-types` structs: a request body is the
//! struct the server reads, an answer the struct it writes. The CLI's
//! generic commands send [`Request`]s; these are for code that works
//! with the resources themselves (the integration tests, scripts).

use std::fmt::Display;

use nephele_api_types as api;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Client, Error, Request};

impl Request {
    /// The body, from a wire struct.
    #[must_use]
    pub fn body(self, body: &impl Serialize) -> Request {
        // The api-types structs serialize to JSON infallibly.
        self.json(serde_json::to_value(body).unwrap_or_default())
    }

    /// `?org_id=`: act in another organization (below one's own).
    #[must_use]
    pub fn in_org(self, org: Option<impl Display>) -> Request {
        self.query("org_id", org.map(|o| o.to_string()))
    }
}

impl Client {
    /// Sends `request`; its answer decoded as `T`.
    pub async fn typed<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        let reply = self.send(request).await?;
        self.decode(reply, &request.path)
    }

    /// Sends `request`; the `data` of its answer.
    pub async fn data<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        Ok(self.typed::<api::Data<T>>(request).await?.data)
    }

    /// `GET /api/v2/me`.
    pub async fn me(&self) -> Result<api::Me, Error> {
        self.data(&Request::get("/api/v2/me")).await
    }

    /// `POST /api/v2/organizations`.
    pub async fn create_organization(
        &self,
        org: &api::OrganizationCreate,
    ) -> Result<api::Organization, Error> {
        self.data(&Request::new(crate::Method::POST, "/api/v2/organizations").body(org))
            .await
    }

    /// `POST /api/v2/users`, in `org` (default: one's own).
    pub async fn create_user(
        &self,
        org: Option<impl Display>,
        user: &api::UserCreate,
    ) -> Result<api::User, Error> {
        let request = Request::new(crate::Method::POST, "/api/v2/users")
            .in_org(org)
            .body(user);
        self.data(&request).await
    }

    /// `POST /api/v2/instances`, in `org`: the task that makes it.
    pub async fn create_instance(
        &self,
        org: Option<impl Display>,
        instance: &api::InstanceCreate,
    ) -> Result<api::TaskAccepted, Error> {
        let request = Request::new(crate::Method::POST, "/api/v2/instances")
            .in_org(org)
            .body(instance);
        self.typed(&request).await
    }

    /// `GET /api/v2/instances/{id}`.
    pub async fn instance(&self, id: impl Display) -> Result<api::Instance, Error> {
        self.data(&Request::get(format!("/api/v2/instances/{id}")))
            .await
    }

    /// `GET /api/v2/tasks/{id}`, waiting up to `wait` seconds for it to
    /// end.
    pub async fn task(&self, id: impl Display, wait: Option<u64>) -> Result<api::Task, Error> {
        self.data(&Request::get(format!("/api/v2/tasks/{id}")).query("wait", wait))
            .await
    }

    /// `POST /api/v2/api-keys`: the key, with its secret (shown once).
    pub async fn create_api_key(&self, key: &api::ApiKeyCreate) -> Result<api::ApiKey, Error> {
        self.data(&Request::new(crate::Method::POST, "/api/v2/api-keys").body(key))
            .await
    }
}
