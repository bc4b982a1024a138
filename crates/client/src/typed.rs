//! The API's resources as the `api-types` structs: a request body is the
//! struct the server reads, an answer the struct it writes. The CLI's
//! generic commands send [`Request`]s; these are for code that works
//! with the resources themselves (the integration tests, scripts).

use std::fmt::Display;

use nephele_api_types as api;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Client, Error, Method, Request};

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
    /// `GET /api/v2/me`.
    pub async fn me(&self) -> Result<api::Me, Error> {
        self.ok(&Request::get("/api/v2/me")).await
    }

    /// `POST /api/v2/me/mfa/totp`: a new pending TOTP secret, shown once.
    pub async fn enrol_totp(&self) -> Result<api::TotpEnrolment, Error> {
        self.created(&Request::new(Method::POST, "/api/v2/me/mfa/totp"))
            .await
    }

    /// `POST /api/v2/me/mfa/totp/confirm`: enables MFA; the recovery
    /// codes, shown once.
    pub async fn confirm_totp(&self, code: &str) -> Result<api::RecoveryCodes, Error> {
        let body = api::TotpConfirm {
            code: Some(code.to_owned()),
        };
        self.ok(&Request::new(Method::POST, "/api/v2/me/mfa/totp/confirm").body(&body))
            .await
    }

    /// `DELETE /api/v2/me/mfa/totp` with the password and a current or
    /// recovery code.
    pub async fn remove_totp(&self, removal: &api::TotpRemoval) -> Result<(), Error> {
        self.no_content(&Request::new(Method::DELETE, "/api/v2/me/mfa/totp").body(removal))
            .await
    }

    /// `POST /api/v2/organizations`.
    pub async fn create_organization(
        &self,
        org: &api::OrganizationCreate,
    ) -> Result<api::Organization, Error> {
        self.created(&Request::new(Method::POST, "/api/v2/organizations").body(org))
            .await
    }

    /// `POST /api/v2/users`, in `org` (default: one's own).
    pub async fn create_user(
        &self,
        org: Option<impl Display>,
        user: &api::UserCreate,
    ) -> Result<api::User, Error> {
        let request = Request::new(Method::POST, "/api/v2/users")
            .in_org(org)
            .body(user);
        self.created(&request).await
    }

    /// `POST /api/v2/instances`, in `org`: the task that makes it.
    pub async fn create_instance(
        &self,
        org: Option<impl Display>,
        instance: &api::InstanceCreate,
    ) -> Result<api::TaskAccepted, Error> {
        let request = Request::new(Method::POST, "/api/v2/instances")
            .in_org(org)
            .body(instance);
        self.accepted(&request).await
    }

    /// `GET /api/v2/instances/{id}`.
    pub async fn instance(&self, id: impl Display) -> Result<api::Instance, Error> {
        self.ok(&Request::get(format!("/api/v2/instances/{id}")))
            .await
    }

    /// `GET /api/v2/tasks/{id}`, waiting up to `wait` seconds for it to
    /// end.
    pub async fn task(&self, id: impl Display, wait: Option<u64>) -> Result<api::Task, Error> {
        self.ok(&Request::get(format!("/api/v2/tasks/{id}")).query("wait", wait))
            .await
    }

    /// `POST /api/v2/api-keys`: the key, with its secret (shown once).
    pub async fn create_api_key(&self, key: &api::ApiKeyCreate) -> Result<api::ApiKey, Error> {
        self.created(&Request::new(Method::POST, "/api/v2/api-keys").body(key))
            .await
    }

    /// `POST /api/2/idp/password-reset`: asks for a reset link by mail for
    /// a login or e-mail. The answer (202) is the same whether or not the
    /// account exists.
    pub async fn request_password_reset(&self, login: &str) -> Result<(), Error> {
        let body = api::PasswordResetRequest {
            login: Some(login.to_owned()),
        };
        let request = Request::new(Method::POST, "/api/2/idp/password-reset").body(&body);
        self.answer(&request, 202).await.map(|_| ())
    }

    /// Sends `request`, whose answer must be a 204 (No Content).
    pub async fn no_content(&self, request: &Request) -> Result<(), Error> {
        self.answer(request, 204).await.map(|_| ())
    }

    /// Sends `request`; its reply, which must have `status`.
    async fn answer(&self, request: &Request, status: u16) -> Result<crate::Reply, Error> {
        let reply = self.send(request).await?;
        if reply.status != status {
            return Err(Error::Unexpected {
                url: format!("{}{}", self.base_url(), request.path),
                status: reply.status,
                detail: Some(format!("expected {status}")),
            });
        }
        Ok(reply)
    }

    /// Sends `request`, whose answer must have `status`; its body as `T`.
    async fn answered<T: DeserializeOwned>(
        &self,
        request: &Request,
        status: u16,
    ) -> Result<T, Error> {
        let reply = self.answer(request, status).await?;
        self.decode(reply, &request.path)
    }

    /// A 200's body as `T`.
    async fn ok_bare<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        self.answered(request, 200).await
    }

    /// The `data` of a 200.
    async fn ok<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        Ok(self.ok_bare::<api::Data<T>>(request).await?.data)
    }

    /// A 201's body as `T`.
    async fn created_bare<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        self.answered(request, 201).await
    }

    /// The `data` of a 201.
    async fn created<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        Ok(self.created_bare::<api::Data<T>>(request).await?.data)
    }

    /// A 202's task.
    async fn accepted(&self, request: &Request) -> Result<api::TaskAccepted, Error> {
        self.answered(request, 202).await
    }

    // ---- Organizations and quotas. ----

    /// `GET /api/v2/organizations/{id}`.
    pub async fn organization(&self, id: impl Display) -> Result<api::Organization, Error> {
        self.ok(&Request::get(format!("/api/v2/organizations/{id}")))
            .await
    }

    /// `GET /api/v2/organizations`: the first page, seen from `org`
    /// (default: one's own).
    pub async fn organizations(
        &self,
        org: Option<impl Display>,
    ) -> Result<api::List<api::Organization>, Error> {
        self.ok_bare(&Request::get("/api/v2/organizations").in_org(org))
            .await
    }

    /// `PUT /api/v2/organizations/{id}`.
    pub async fn update_organization(
        &self,
        id: impl Display,
        org: &api::OrganizationUpdate,
    ) -> Result<api::Organization, Error> {
        let path = format!("/api/v2/organizations/{id}");
        self.ok(&Request::new(Method::PUT, path).body(org)).await
    }

    /// `PATCH /api/v2/organizations/{id}`: a merge patch (the fields
    /// left `None` stay as they are).
    pub async fn patch_organization(
        &self,
        id: impl Display,
        patch: &api::OrganizationUpdate,
    ) -> Result<api::Organization, Error> {
        let path = format!("/api/v2/organizations/{id}");
        self.ok(&Request::new(Method::PATCH, path).body(patch))
            .await
    }

    /// `DELETE /api/v2/organizations/{id}`.
    pub async fn delete_organization(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/organizations/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    /// `GET /api/v2/organizations/{id}/quota`.
    pub async fn quota(&self, org: impl Display) -> Result<api::Quota, Error> {
        self.ok(&Request::get(format!("/api/v2/organizations/{org}/quota")))
            .await
    }

    /// `PUT /api/v2/organizations/{id}/quota`.
    pub async fn set_quota(
        &self,
        org: impl Display,
        quota: &api::QuotaWrite,
    ) -> Result<api::Quota, Error> {
        let path = format!("/api/v2/organizations/{org}/quota");
        self.ok(&Request::new(Method::PUT, path).body(quota)).await
    }

    // ---- Users. ----

    /// `GET /api/v2/users/{id}`.
    pub async fn user(&self, id: impl Display) -> Result<api::User, Error> {
        self.ok(&Request::get(format!("/api/v2/users/{id}"))).await
    }

    /// `GET /api/v2/users`: the first page, in `org` (default: one's own).
    pub async fn users(&self, org: Option<impl Display>) -> Result<api::List<api::User>, Error> {
        self.ok_bare(&Request::get("/api/v2/users").in_org(org))
            .await
    }

    /// `PUT /api/v2/users/{id}`.
    pub async fn update_user(
        &self,
        id: impl Display,
        user: &api::UserUpdate,
    ) -> Result<api::User, Error> {
        let path = format!("/api/v2/users/{id}");
        self.ok(&Request::new(Method::PUT, path).body(user)).await
    }

    /// `PATCH /api/v2/users/{id}`: a merge patch (the fields left `None`
    /// stay as they are).
    pub async fn patch_user(
        &self,
        id: impl Display,
        patch: &api::UserUpdate,
    ) -> Result<api::User, Error> {
        let path = format!("/api/v2/users/{id}");
        self.ok(&Request::new(Method::PATCH, path).body(patch))
            .await
    }

    /// `DELETE /api/v2/users/{id}`.
    pub async fn delete_user(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/users/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    /// `POST /api/v2/users/{id}/password`.
    pub async fn change_password(
        &self,
        id: impl Display,
        change: &api::PasswordChange,
    ) -> Result<(), Error> {
        let path = format!("/api/v2/users/{id}/password");
        self.no_content(&Request::new(Method::POST, path).body(change))
            .await
    }

    /// `POST /api/v2/users/{id}/sessions/revoke`.
    pub async fn revoke_sessions(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/users/{id}/sessions/revoke");
        self.no_content(&Request::new(Method::POST, path)).await
    }

    // ---- Roles. ----

    /// `POST /api/v2/roles`, in `org` (default: one's own).
    pub async fn create_role(
        &self,
        org: Option<impl Display>,
        role: &api::RoleWrite,
    ) -> Result<api::Role, Error> {
        let request = Request::new(Method::POST, "/api/v2/roles")
            .in_org(org)
            .body(role);
        self.created(&request).await
    }

    /// `GET /api/v2/roles`: the first page, in `org` (default: one's own).
    pub async fn roles(&self, org: Option<impl Display>) -> Result<api::List<api::Role>, Error> {
        self.ok_bare(&Request::get("/api/v2/roles").in_org(org))
            .await
    }

    /// `GET /api/v2/roles/{id}`.
    pub async fn role(&self, id: impl Display) -> Result<api::Role, Error> {
        self.ok(&Request::get(format!("/api/v2/roles/{id}"))).await
    }

    /// `PUT /api/v2/roles/{id}`.
    pub async fn update_role(
        &self,
        id: impl Display,
        role: &api::RoleWrite,
    ) -> Result<api::Role, Error> {
        let path = format!("/api/v2/roles/{id}");
        self.ok(&Request::new(Method::PUT, path).body(role)).await
    }

    /// `DELETE /api/v2/roles/{id}`.
    pub async fn delete_role(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/roles/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    // ---- Sign-in sessions. ----

    /// `GET /api/v2/me/sessions`: one's signed-in browsers.
    pub async fn sign_in_sessions(&self) -> Result<api::List<api::SignInSession>, Error> {
        self.ok_bare(&Request::get("/api/v2/me/sessions")).await
    }

    /// `DELETE /api/v2/me/sessions/{id}`, or every session with `None`.
    pub async fn end_sign_in_sessions(&self, id: Option<impl Display>) -> Result<(), Error> {
        let path = match id {
            Some(id) => format!("/api/v2/me/sessions/{id}"),
            None => "/api/v2/me/sessions".to_owned(),
        };
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    /// `GET /api/v2/me/consents`: the third-party clients one allowed.
    pub async fn consents(&self) -> Result<api::List<api::Consent>, Error> {
        self.ok_bare(&Request::get("/api/v2/me/consents")).await
    }

    /// `DELETE /api/v2/me/consents/{client_id}`.
    pub async fn revoke_consent(&self, client: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/me/consents/{client}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    // ---- API keys. ----

    /// `GET /api/v2/api-keys`: one's own keys, without their secrets.
    pub async fn api_keys(&self) -> Result<api::List<api::ApiKey>, Error> {
        self.ok_bare(&Request::get("/api/v2/api-keys")).await
    }

    /// `DELETE /api/v2/api-keys/{id}`.
    pub async fn delete_api_key(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/api-keys/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    /// `POST /api/v2/api-keys/{id}/regenerate`: the key with its new
    /// secret.
    pub async fn regenerate_api_key(&self, id: impl Display) -> Result<api::ApiKey, Error> {
        let path = format!("/api/v2/api-keys/{id}/regenerate");
        self.ok(&Request::new(Method::POST, path)).await
    }

    // ---- API clients (no envelope). ----

    /// `POST /api/2/clients`: the client, with its secret (shown once).
    pub async fn create_api_client(
        &self,
        client: &api::ApiClientCreate,
    ) -> Result<api::ApiClient, Error> {
        self.created_bare(&Request::new(Method::POST, "/api/2/clients").body(client))
            .await
    }

    /// `GET /api/2/clients/{client_id}`.
    pub async fn api_client(&self, id: impl Display) -> Result<api::ApiClient, Error> {
        self.ok_bare(&Request::get(format!("/api/2/clients/{id}")))
            .await
    }

    /// `GET /api/2/clients`, of `tenant` (default: one's own).
    pub async fn api_clients(
        &self,
        tenant: Option<impl Display>,
    ) -> Result<api::ApiClientList, Error> {
        let request =
            Request::get("/api/2/clients").query("tenant_id", tenant.map(|t| t.to_string()));
        self.ok_bare(&request).await
    }

    /// `PUT /api/2/clients/{client_id}`.
    pub async fn update_api_client(
        &self,
        id: impl Display,
        client: &api::ApiClientUpdate,
    ) -> Result<api::ApiClient, Error> {
        let path = format!("/api/2/clients/{id}");
        self.ok_bare(&Request::new(Method::PUT, path).body(client))
            .await
    }

    /// `POST /api/2/clients/{client_id}/secret`: the client with its new
    /// secret.
    pub async fn reset_api_client_secret(&self, id: impl Display) -> Result<api::ApiClient, Error> {
        let path = format!("/api/2/clients/{id}/secret");
        self.ok_bare(&Request::new(Method::POST, path)).await
    }

    /// `DELETE /api/2/clients/{client_id}`.
    pub async fn delete_api_client(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/2/clients/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    // ---- Instances, tasks, audit events, data centers. ----

    /// `GET /api/v2/instances`: the first page, filtered by `query`
    /// (`org_id`, `state`, `name`, `limit`).
    pub async fn instances(&self, query: Query<'_>) -> Result<api::List<api::Instance>, Error> {
        self.ok_bare(&with_query(Request::get("/api/v2/instances"), query))
            .await
    }

    /// `PATCH /api/v2/instances/{id}`: a rename, or a resize while it is
    /// stopped.
    pub async fn update_instance(
        &self,
        id: impl Display,
        update: &api::InstanceUpdate,
    ) -> Result<api::Instance, Error> {
        let path = format!("/api/v2/instances/{id}");
        self.ok(&Request::new(Method::PATCH, path).body(update))
            .await
    }

    /// `POST /api/v2/instances/{id}/{action}` (`start`, `stop`,
    /// `reboot`): the task that does it.
    pub async fn instance_action(
        &self,
        id: impl Display,
        action: &str,
    ) -> Result<api::TaskAccepted, Error> {
        let path = format!("/api/v2/instances/{id}/{action}");
        self.accepted(&Request::new(Method::POST, path)).await
    }

    /// `DELETE /api/v2/instances/{id}`: the task that deletes it.
    pub async fn delete_instance(&self, id: impl Display) -> Result<api::TaskAccepted, Error> {
        let path = format!("/api/v2/instances/{id}");
        self.accepted(&Request::new(Method::DELETE, path)).await
    }

    /// `GET /api/v2/tasks`: the first page, filtered by `query` (`org_id`,
    /// `status`, `resourceId`, `limit`).
    pub async fn tasks(&self, query: Query<'_>) -> Result<api::List<api::Task>, Error> {
        self.ok_bare(&with_query(Request::get("/api/v2/tasks"), query))
            .await
    }

    /// `DELETE /api/v2/tasks/{id}`: cancels a task that has not started.
    pub async fn cancel_task(&self, id: impl Display) -> Result<api::Task, Error> {
        let path = format!("/api/v2/tasks/{id}");
        self.ok(&Request::new(Method::DELETE, path)).await
    }

    /// `GET /api/v2/audit-events`: the first page, filtered by `query`
    /// (`org_id`, `since`, `actor`, `action`, `limit`).
    pub async fn audit_events(
        &self,
        query: Query<'_>,
    ) -> Result<api::List<api::AuditEvent>, Error> {
        self.ok_bare(&with_query(Request::get("/api/v2/audit-events"), query))
            .await
    }

    /// `GET /api/v2/datacenters`.
    pub async fn datacenters(&self) -> Result<api::List<api::Datacenter>, Error> {
        self.ok_bare(&Request::get("/api/v2/datacenters")).await
    }

    /// `POST /api/v2/datacenters`.
    pub async fn create_datacenter(
        &self,
        dc: &api::DatacenterCreate,
    ) -> Result<api::Datacenter, Error> {
        self.created(&Request::new(Method::POST, "/api/v2/datacenters").body(dc))
            .await
    }

    /// `DELETE /api/v2/datacenters/{id}`.
    pub async fn delete_datacenter(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/v2/datacenters/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    /// `GET /api/v2/images`.
    pub async fn images(&self) -> Result<api::List<api::Image>, Error> {
        self.ok_bare(&Request::get("/api/v2/images")).await
    }

    // ---- The notary. ----

    /// `POST /api/notary/v2/stored-files` of a hash without content, in
    /// `org` (default: one's own).
    pub async fn register_file(
        &self,
        org: Option<impl Display>,
        file: &api::StoredFileRegistration,
    ) -> Result<api::StoredFile, Error> {
        let request = Request::new(Method::POST, "/api/notary/v2/stored-files")
            .in_org(org)
            .body(file);
        self.created(&request).await
    }

    /// `GET /api/notary/v2/stored-files`: the first page, filtered by
    /// `query` (`org_id`, `sha256`, `name`, `limit`).
    pub async fn stored_files(
        &self,
        query: Query<'_>,
    ) -> Result<api::List<api::StoredFile>, Error> {
        let request = with_query(Request::get("/api/notary/v2/stored-files"), query);
        self.ok_bare(&request).await
    }

    /// `GET /api/notary/v2/stored-files/{id}`.
    pub async fn stored_file(&self, id: impl Display) -> Result<api::StoredFile, Error> {
        self.ok(&Request::get(format!("/api/notary/v2/stored-files/{id}")))
            .await
    }

    /// `DELETE /api/notary/v2/stored-files/{id}`: removes the content
    /// (the hash stays notarized).
    pub async fn delete_stored_file(&self, id: impl Display) -> Result<(), Error> {
        let path = format!("/api/notary/v2/stored-files/{id}");
        self.no_content(&Request::new(Method::DELETE, path)).await
    }

    /// `GET /api/notary/v2/stored-files/{id}/certificate`.
    pub async fn certificate(&self, id: impl Display) -> Result<api::Certificate, Error> {
        let path = format!("/api/notary/v2/stored-files/{id}/certificate");
        self.ok(&Request::get(path)).await
    }

    /// `POST /api/notary/v2/verify` of a hash, in `org` (default: one's
    /// own).
    pub async fn verify(
        &self,
        org: Option<impl Display>,
        request: &api::VerifyRequest,
    ) -> Result<api::Verification, Error> {
        let request = Request::new(Method::POST, "/api/notary/v2/verify")
            .in_org(org)
            .body(request);
        self.ok(&request).await
    }

    /// `GET /api/notary/v2/keys`.
    pub async fn notary_keys(&self) -> Result<api::List<api::NotaryKey>, Error> {
        self.ok_bare(&Request::get("/api/notary/v2/keys")).await
    }

    /// `GET /api/notary/v2/tree-heads`: the first page.
    pub async fn tree_heads(&self) -> Result<api::List<api::LoggedTreeHead>, Error> {
        self.ok_bare(&Request::get("/api/notary/v2/tree-heads"))
            .await
    }
}

/// A list's query parameters, as pairs: `[("status", "FAILED")]`.
pub type Query<'a> = &'a [(&'a str, &'a str)];

fn with_query(request: Request, query: Query<'_>) -> Request {
    query.iter().fold(request, |request, (key, value)| {
        request.query(key, Some(value))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_holds_only_the_fields_set_and_a_secret_as_text() {
        let patch = api::UserUpdate {
            roles: Some(vec!["viewer".into()]),
            ..Default::default()
        };
        let request = Request::new(Method::PATCH, "/api/v2/users/u").body(&patch);
        assert_eq!(request.body, Some(json!({"roles": ["viewer"]})));
        let change = api::PasswordChange {
            password: Some(nephele_common::Secret::new("another-password-456")),
            ..Default::default()
        };
        let body = serde_json::to_value(&change).unwrap();
        assert_eq!(body, json!({"password": "another-password-456"}));
    }

    #[test]
    fn a_list_query_keeps_its_pairs_in_order() {
        let request = with_query(
            Request::get("/api/v2/tasks"),
            &[("status", "FAILED"), ("limit", "2")],
        );
        let pairs: Vec<(&str, &str)> = request
            .query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(pairs, [("status", "FAILED"), ("limit", "2")]);
    }
}
