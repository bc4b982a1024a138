//! Audit events from requests: every mutating request and every failed
//! authentication becomes one event, written before its response leaves.

use crate::request::{Principal, RequestContext};
use axum::http::{HeaderValue, Method};
use nephele_app::access::AuditScope;
use nephele_app::audit::AuditEvent;
use nephele_app::App;
use nephele_common::ids::AuditEventId;

/// What the access layer knows of a finished request.
pub struct Request<'a> {
    pub method: &'a Method,
    /// The route template (`/api/v2/users/{id}`).
    pub route: &'a str,
    /// The path as requested.
    pub path: &'a str,
    pub ctx: &'a RequestContext,
    pub principal: Option<&'a Principal>,
    pub scope: &'a AuditScope,
    pub location: Option<&'a HeaderValue>,
    pub status: u16,
}

/// `resource.verb` and the target of a request, from its route template:
/// `POST /api/v2/users` is `users.create`, `PATCH /api/v2/users/{id}` is
/// `users.update` of that user, `POST /api/v2/api-keys/{id}/regenerate` is
/// `api-keys.regenerate`; `POST /api/notary/v2/stored-files` is
/// `stored-files.create`.
pub fn action(method: &Method, route: &str, path: &str) -> (String, String, Option<String>) {
    // The caller's own second factor, named for what is done to it.
    let mfa = match (method, route) {
        (&Method::POST, "/api/v2/me/mfa/totp") => Some("mfa.enrol"),
        (&Method::POST, "/api/v2/me/mfa/totp/confirm") => Some("mfa.confirm"),
        (&Method::DELETE, "/api/v2/me/mfa/totp") => Some("mfa.remove"),
        _ => None,
    };
    if let Some(action) = mfa {
        return (action.to_owned(), "mfa".to_owned(), None);
    }
    // The one-time links: what is done to the user's password.
    let link = match (method, route) {
        (&Method::POST, "/api/2/idp/activate") => Some("users.activate"),
        (&Method::POST, "/api/2/idp/reset") => Some("users.reset-password"),
        (&Method::POST, "/api/2/idp/password-reset") => Some("users.request-password-reset"),
        _ => None,
    };
    if let Some(action) = link {
        return (action.to_owned(), "users".to_owned(), None);
    }
    let strip = |p: &'static str| route.strip_prefix(p);
    let rest = strip("/api/notary/v2/")
        .or_else(|| strip("/api/v2/"))
        .or_else(|| strip("/api/2/"))
        .or_else(|| strip("/api/1/"))
        .or_else(|| strip("/occm/"))
        .or_else(|| strip("/api/"))
        .unwrap_or(route.trim_start_matches('/'));
    let segments: Vec<&str> = rest.split('/').collect();
    let resource = segments.first().copied().unwrap_or("unknown").to_owned();
    let last = segments.last().copied().unwrap_or_default();
    let verb = if segments.len() > 1 && !last.starts_with('{') {
        last.to_owned()
    } else {
        match *method {
            Method::POST => "create",
            Method::PUT | Method::PATCH => "update",
            Method::DELETE => "delete",
            _ => "read",
        }
        .to_owned()
    };
    // The target id is the path segment where the template has `{id}`
    // (the template and the path have the same number of segments).
    let target = route
        .split('/')
        .zip(path.split('/'))
        .find(|(t, _)| t.starts_with('{'))
        .map(|(_, p)| p.to_owned());
    (format!("{resource}.{verb}"), resource, target)
}

pub fn outcome(status: u16) -> &'static str {
    match status {
        401 | 403 => "denied",
        s if s < 400 => "success",
        _ => "failure",
    }
}

pub fn event(app: &App, r: Request<'_>) -> AuditEvent {
    let failed_auth = r.principal.is_some_and(|p| p.failed);
    let (action, target_type, target_id) = if failed_auth {
        ("authentication".to_owned(), None, None)
    } else {
        let (action, resource, mut target) = action(r.method, r.route, r.path);
        // A link's user is the one it acted on (and the one who acted).
        if r.route.starts_with("/api/2/idp/") && resource == "users" {
            target = r.principal.and_then(|p| p.id.clone());
        }
        // A create names its target in `Location` (an asynchronous one
        // names its task there, not its target).
        if target.is_none() {
            target = r
                .location
                .and_then(|l| l.to_str().ok())
                .filter(|l| !l.starts_with("/api/v2/tasks/"))
                .and_then(|l| l.rsplit('/').next())
                .map(str::to_owned);
        }
        (action, Some(resource), target)
    };
    AuditEvent {
        id: AuditEventId::new(),
        occurred_at: app.clock().now(),
        organization_id: r
            .scope
            .organization()
            .or(r.principal.and_then(|p| p.organization_id)),
        actor_type: r.principal.map(|p| p.kind.to_owned()),
        actor_id: r.principal.and_then(|p| p.id.clone()),
        actor_name: r.principal.and_then(|p| p.name.clone()),
        action,
        target_type,
        target_id,
        outcome: outcome(r.status).to_owned(),
        status: r.status,
        request_id: Some(r.ctx.request_id.clone()).filter(|s| !s.is_empty()),
        agent_id: r.ctx.agent_id.clone(),
        client_address: r.ctx.client_ip.map(|a| a.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_from_routes() {
        let id = "0190a0b0-0000-7000-8000-000000000001";
        assert_eq!(
            action(&Method::POST, "/api/v2/users", "/api/v2/users"),
            ("users.create".into(), "users".into(), None)
        );
        assert_eq!(
            action(
                &Method::PATCH,
                "/api/v2/users/{id}",
                &format!("/api/v2/users/{id}")
            ),
            ("users.update".into(), "users".into(), Some(id.into()))
        );
        assert_eq!(
            action(
                &Method::POST,
                "/api/v2/api-keys/{id}/regenerate",
                &format!("/api/v2/api-keys/{id}/regenerate")
            ),
            (
                "api-keys.regenerate".into(),
                "api-keys".into(),
                Some(id.into())
            )
        );
        assert_eq!(
            action(
                &Method::DELETE,
                "/api/notary/v2/stored-files/{id}",
                &format!("/api/notary/v2/stored-files/{id}")
            ),
            (
                "stored-files.delete".into(),
                "stored-files".into(),
                Some(id.into())
            )
        );
        assert_eq!(
            action(&Method::POST, "/occm/setup/init", "/occm/setup/init").0,
            "setup.init"
        );
        let totp = "/api/v2/me/mfa/totp";
        assert_eq!(action(&Method::POST, totp, totp).0, "mfa.enrol");
        assert_eq!(action(&Method::DELETE, totp, totp).0, "mfa.remove");
        let confirm = "/api/v2/me/mfa/totp/confirm";
        assert_eq!(action(&Method::POST, confirm, confirm).0, "mfa.confirm");
        for (route, named) in [
            ("/api/2/idp/activate", "users.activate"),
            ("/api/2/idp/reset", "users.reset-password"),
            ("/api/2/idp/password-reset", "users.request-password-reset"),
        ] {
            assert_eq!(
                action(&Method::POST, route, route),
                (named.into(), "users".into(), None)
            );
        }
        assert_eq!(
            action(
                &Method::DELETE,
                "/api/v2/datacenters/{id}",
                &format!("/api/v2/datacenters/{id}")
            )
            .0,
            "datacenters.delete"
        );
    }

    #[test]
    fn outcomes() {
        assert_eq!(outcome(201), "success");
        assert_eq!(outcome(401), "denied");
        assert_eq!(outcome(403), "denied");
        assert_eq!(outcome(409), "failure");
    }
}
