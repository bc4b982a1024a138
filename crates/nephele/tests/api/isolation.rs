//! The isolation matrix: every authenticated route of the OpenAPI document,
//! tried by every kind of principal that must be refused, on another
//! tenant's objects. After each refusal the target is re-read and must be
//! unchanged. A route missing from the table fails the test, so a new
//! route cannot be forgotten.

use crate::support::*;
use nephele_api_types as api;
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use std::collections::BTreeSet;

/// Who tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// No credentials: 401 (1000).
    Nobody,
    /// A malformed `Authorization`: 401 (1001).
    Malformed,
    /// The admin of a sibling tenant.
    Sibling,
    /// A viewer of the victim's own tenant.
    Viewer,
    /// The admin of an organization below the victim's tenant.
    ChildAdmin,
}

const EVERYONE: [Who; 5] = [
    Who::Nobody,
    Who::Malformed,
    Who::Sibling,
    Who::Viewer,
    Who::ChildAdmin,
];

/// Routes that answer without credentials (and refuse bad ones).
const PUBLIC: [&str; 3] = [
    "/api/notary/v2/verify",
    "/api/notary/v2/keys",
    "/api/notary/v2/tree-heads",
];

/// What a principal must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// 404, byte for byte the answer for an object that does not exist.
    Hidden,
    /// 403 (1003).
    Forbidden,
    /// Allowed: its own view or its own credentials (2xx).
    Allowed,
    /// Its own, but refused on its merits: 422 (3001), as a wrong code
    /// or password is.
    Invalid,
}

/// The tenants, principals and victim objects.
struct World {
    s: TestServer,
    tenant_a: String,
    user: String,
    role: String,
    key: String,
    datacenter: String,
    client: String,
    instance: String,
    task: String,
    stored_file: String,
    /// A signed-in browser of `a-admin`.
    session: String,
}

/// One route of the table. `request` builds the path and body for a victim
/// id (or, to compare, for an id that does not exist); `reread` is what the
/// root admin (or, for API keys, their owner) reads to prove nothing changed.
struct Route {
    method: Method,
    template: &'static str,
    victim: fn(&World) -> String,
    request: fn(&str) -> (String, Option<Value>),
    reread: fn(&World) -> (String, &'static str),
    sibling: Expect,
    viewer: Expect,
    child_admin: Expect,
}

/// A re-read by the root admin.
fn as_root(path: String) -> (String, &'static str) {
    (path, ADMIN_LOGIN)
}

/// The victim's stored file, and its SHA-256.
const VICTIM_FILE: &str = "a tenant's secret";
const VICTIM_FILE_SHA256: &str = "82d89b847ab143fa90279d22f057f53eb06d932a005fb8a3a9b87ac91c43d2eb";

fn routes() -> Vec<Route> {
    use Expect::*;
    let org = |w: &World| w.tenant_a.clone();
    let user = |w: &World| w.user.clone();
    let role = |w: &World| w.role.clone();
    let key = |w: &World| w.key.clone();
    let client = |w: &World| w.client.clone();
    let dc = |w: &World| w.datacenter.clone();
    let instance = |w: &World| w.instance.clone();
    let task = |w: &World| w.task.clone();
    let stored_file = |w: &World| w.stored_file.clone();
    let file_reread = |w: &World| as_root(format!("/api/notary/v2/stored-files/{}", w.stored_file));
    vec![
        Route {
            method: Method::GET,
            template: "/api/v2/me",
            victim: org,
            request: |_| ("/api/v2/me".into(), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        // The caller's own signed-in browsers: each sees and ends only its
        // own; another user's session is as unknown as none.
        Route {
            method: Method::GET,
            template: "/api/v2/me/sessions",
            victim: org,
            request: |_| ("/api/v2/me/sessions".into(), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/me/sessions",
            victim: org,
            request: |_| ("/api/v2/me/sessions".into(), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/me/sessions/{id}",
            victim: |w| w.session.clone(),
            request: |id| (format!("/api/v2/me/sessions/{id}"), None),
            reread: |_| ("/api/v2/me/sessions".into(), "a-admin"),
            sibling: Hidden,
            viewer: Hidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/me/consents",
            victim: org,
            request: |_| ("/api/v2/me/consents".into(), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        // Another user's consent (a-admin allowed the victim client) is as
        // unknown as none.
        Route {
            method: Method::DELETE,
            template: "/api/v2/me/consents/{client_id}",
            victim: |w| w.client.clone(),
            request: |id| (format!("/api/v2/me/consents/{id}"), None),
            reread: |_| ("/api/v2/me/consents".into(), "a-admin"),
            sibling: Hidden,
            viewer: Hidden,
            child_admin: Hidden,
        },
        // The caller's own second factor: anyone may start enrolling;
        // nobody confirms or removes one without its codes.
        Route {
            method: Method::POST,
            template: "/api/v2/me/mfa/totp",
            victim: org,
            request: |_| ("/api/v2/me/mfa/totp".into(), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/me/mfa/totp/confirm",
            victim: org,
            request: |_| {
                (
                    "/api/v2/me/mfa/totp/confirm".into(),
                    Some(json!({"code": "not-a-code"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Invalid,
            viewer: Invalid,
            child_admin: Invalid,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/me/mfa/totp",
            victim: org,
            request: |_| {
                (
                    "/api/v2/me/mfa/totp".into(),
                    Some(json!({"password": "not-the-password", "code": "000000"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Invalid,
            viewer: Invalid,
            child_admin: Invalid,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/organizations",
            victim: org,
            request: |id| (format!("/api/v2/organizations?org_id={id}"), None),
            reread: |w| as_root(format!("/api/v2/organizations?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/organizations",
            victim: org,
            request: |id| {
                (
                    "/api/v2/organizations".into(),
                    Some(json!({"name": "Intruder", "parentId": id})),
                )
            },
            reread: |w| as_root(format!("/api/v2/organizations?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/organizations/{id}",
            victim: org,
            request: |id| (format!("/api/v2/organizations/{id}"), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::PUT,
            template: "/api/v2/organizations/{id}",
            victim: org,
            request: |id| {
                (
                    format!("/api/v2/organizations/{id}"),
                    Some(json!({"name": "Renamed"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::PATCH,
            template: "/api/v2/organizations/{id}",
            victim: org,
            request: |id| {
                (
                    format!("/api/v2/organizations/{id}"),
                    Some(json!({"name": "Patched"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/organizations/{id}",
            victim: org,
            request: |id| (format!("/api/v2/organizations/{id}"), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/users",
            victim: org,
            request: |id| (format!("/api/v2/users?org_id={id}"), None),
            reread: |w| as_root(format!("/api/v2/users?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/users",
            victim: org,
            request: |id| {
                (
                    format!("/api/v2/users?org_id={id}"),
                    Some(
                        json!({"login": "intruder", "email": "intruder@example.test",
                                "password": USER_PASSWORD, "roles": ["viewer"]}),
                    ),
                )
            },
            reread: |w| as_root(format!("/api/v2/users?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/users/{id}",
            victim: user,
            request: |id| (format!("/api/v2/users/{id}"), None),
            reread: |w| as_root(format!("/api/v2/users/{}", w.user)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::PUT,
            template: "/api/v2/users/{id}",
            victim: user,
            request: |id| {
                (
                    format!("/api/v2/users/{id}"),
                    Some(
                        json!({"login": "renamed", "email": "renamed@example.test", "roles": ["admin"]}),
                    ),
                )
            },
            reread: |w| as_root(format!("/api/v2/users/{}", w.user)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::PATCH,
            template: "/api/v2/users/{id}",
            victim: user,
            request: |id| {
                (
                    format!("/api/v2/users/{id}"),
                    Some(json!({"roles": ["admin"]})),
                )
            },
            reread: |w| as_root(format!("/api/v2/users/{}", w.user)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/users/{id}",
            victim: user,
            request: |id| (format!("/api/v2/users/{id}"), None),
            reread: |w| as_root(format!("/api/v2/users/{}", w.user)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/users/{id}/password",
            victim: user,
            request: |id| {
                (
                    format!("/api/v2/users/{id}/password"),
                    Some(json!({"password": "hijacked-password"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/users/{}", w.user)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/users/{id}/sessions/revoke",
            victim: user,
            request: |id| (format!("/api/v2/users/{id}/sessions/revoke"), None),
            reread: |w| as_root(format!("/api/v2/users/{}", w.user)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/roles",
            victim: org,
            request: |id| (format!("/api/v2/roles?org_id={id}"), None),
            reread: |w| as_root(format!("/api/v2/roles?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/roles",
            victim: org,
            request: |id| {
                (
                    format!("/api/v2/roles?org_id={id}"),
                    Some(json!({"name": "planted", "permissions": ["users:read"]})),
                )
            },
            reread: |w| as_root(format!("/api/v2/roles?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/roles/{id}",
            victim: role,
            request: |id| (format!("/api/v2/roles/{id}"), None),
            reread: |w| as_root(format!("/api/v2/roles/{}", w.role)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::PUT,
            template: "/api/v2/roles/{id}",
            victim: role,
            request: |id| {
                (
                    format!("/api/v2/roles/{id}"),
                    Some(json!({"name": "widened", "permissions": ["users:read", "users:write"]})),
                )
            },
            reread: |w| as_root(format!("/api/v2/roles/{}", w.role)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/roles/{id}",
            victim: role,
            request: |id| (format!("/api/v2/roles/{id}"), None),
            reread: |w| as_root(format!("/api/v2/roles/{}", w.role)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/api-keys",
            victim: key,
            request: |_| ("/api/v2/api-keys".into(), None),
            reread: |_| ("/api/v2/api-keys".into(), "a-admin"),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/api-keys",
            victim: key,
            request: |_| ("/api/v2/api-keys".into(), Some(json!({"name": "mine"}))),
            reread: |_| ("/api/v2/api-keys".into(), "a-admin"),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/api-keys/{id}",
            victim: key,
            request: |id| (format!("/api/v2/api-keys/{id}"), None),
            reread: |_| ("/api/v2/api-keys".into(), "a-admin"),
            sibling: Hidden,
            viewer: Hidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/api-keys/{id}/regenerate",
            victim: key,
            request: |id| (format!("/api/v2/api-keys/{id}/regenerate"), None),
            reread: |_| ("/api/v2/api-keys".into(), "a-admin"),
            sibling: Hidden,
            viewer: Hidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/audit-events",
            victim: org,
            request: |id| (format!("/api/v2/audit-events?org_id={id}"), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/datacenters",
            victim: dc,
            request: |_| ("/api/v2/datacenters".into(), None),
            reread: |_| as_root("/api/v2/datacenters".into()),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/stored-files",
            victim: org,
            request: |id| (format!("/api/notary/v2/stored-files?org_id={id}"), None),
            reread: file_reread,
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/notary/v2/stored-files",
            victim: org,
            request: |id| {
                (
                    format!("/api/notary/v2/stored-files?org_id={id}"),
                    Some(json!({"name": "intruder", "sha256": "ab".repeat(32)})),
                )
            },
            reread: |w| as_root(format!("/api/notary/v2/stored-files?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/stored-files/{id}",
            victim: stored_file,
            request: |id| (format!("/api/notary/v2/stored-files/{id}"), None),
            reread: file_reread,
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/notary/v2/stored-files/{id}",
            victim: stored_file,
            request: |id| (format!("/api/notary/v2/stored-files/{id}"), None),
            reread: file_reread,
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/stored-files/{id}/content",
            victim: stored_file,
            request: |id| (format!("/api/notary/v2/stored-files/{id}/content"), None),
            reread: file_reread,
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/stored-files/{id}/certificate",
            victim: stored_file,
            request: |id| {
                (
                    format!("/api/notary/v2/stored-files/{id}/certificate"),
                    None,
                )
            },
            reread: file_reread,
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/notary/v2/verify",
            victim: org,
            request: |id| {
                (
                    format!("/api/notary/v2/verify?org_id={id}"),
                    Some(json!({"sha256": VICTIM_FILE_SHA256})),
                )
            },
            reread: file_reread,
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/verify",
            victim: org,
            request: |_| ("/api/notary/v2/verify".into(), None),
            reread: file_reread,
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/keys",
            victim: org,
            request: |_| ("/api/notary/v2/keys".into(), None),
            reread: file_reread,
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::GET,
            template: "/api/notary/v2/tree-heads",
            victim: org,
            request: |_| ("/api/notary/v2/tree-heads".into(), None),
            reread: file_reread,
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/images",
            victim: dc,
            request: |_| ("/api/v2/images".into(), None),
            reread: |_| as_root("/api/v2/images".into()),
            sibling: Allowed,
            viewer: Allowed,
            child_admin: Allowed,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/datacenters",
            victim: dc,
            request: |_| {
                (
                    "/api/v2/datacenters".into(),
                    Some(json!({"name": "rogue", "serverUrl": "https://rogue.example"})),
                )
            },
            reread: |_| as_root("/api/v2/datacenters".into()),
            sibling: Forbidden,
            viewer: Forbidden,
            child_admin: Forbidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/datacenters/{id}",
            victim: dc,
            request: |id| (format!("/api/v2/datacenters/{id}"), None),
            reread: |_| as_root("/api/v2/datacenters".into()),
            sibling: Forbidden,
            viewer: Forbidden,
            child_admin: Forbidden,
        },
        Route {
            method: Method::GET,
            template: "/api/2/clients",
            victim: org,
            request: |id| (format!("/api/2/clients?tenant_id={id}"), None),
            reread: |w| as_root(format!("/api/2/clients?tenant_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/2/clients",
            victim: org,
            request: |id| {
                (
                    "/api/2/clients".into(),
                    Some(json!({"tenant_id": id, "data": {"client_name": "intruder"}})),
                )
            },
            reread: |w| as_root(format!("/api/2/clients?tenant_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/2/clients/{client_id}",
            victim: client,
            request: |id| (format!("/api/2/clients/{id}"), None),
            reread: |w| as_root(format!("/api/2/clients/{}", w.client)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::PUT,
            template: "/api/2/clients/{client_id}",
            victim: client,
            request: |id| {
                (
                    format!("/api/2/clients/{id}"),
                    Some(json!({"status": "disabled"})),
                )
            },
            reread: |w| as_root(format!("/api/2/clients/{}", w.client)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/2/clients/{client_id}",
            victim: client,
            request: |id| (format!("/api/2/clients/{id}"), None),
            reread: |w| as_root(format!("/api/2/clients/{}", w.client)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/2/clients/{client_id}/secret",
            victim: client,
            request: |id| (format!("/api/2/clients/{id}/secret"), None),
            reread: |w| as_root(format!("/api/2/clients/{}", w.client)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/2/idp/keys/rotate",
            victim: org,
            request: |_| ("/api/2/idp/keys/rotate".into(), None),
            reread: |_| as_root("/api/2/idp/keys".into()),
            sibling: Forbidden,
            viewer: Forbidden,
            child_admin: Forbidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/organizations/{id}/quota",
            victim: org,
            request: |id| (format!("/api/v2/organizations/{id}/quota"), None),
            reread: |w| as_root(format!("/api/v2/organizations/{}/quota", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::PUT,
            template: "/api/v2/organizations/{id}/quota",
            victim: org,
            request: |id| {
                (
                    format!("/api/v2/organizations/{id}/quota"),
                    Some(json!({"instances": 1000})),
                )
            },
            reread: |w| as_root(format!("/api/v2/organizations/{}/quota", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/instances",
            victim: org,
            request: |id| (format!("/api/v2/instances?org_id={id}"), None),
            reread: |w| as_root(format!("/api/v2/instances?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/instances",
            victim: org,
            request: |id| {
                (
                    format!("/api/v2/instances?org_id={id}"),
                    Some(json!({"name": "intruder", "image": "debian-12"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/instances?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/instances/{id}",
            victim: instance,
            request: |id| (format!("/api/v2/instances/{id}"), None),
            reread: |w| as_root(format!("/api/v2/instances/{}", w.instance)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::PATCH,
            template: "/api/v2/instances/{id}",
            victim: instance,
            request: |id| {
                (
                    format!("/api/v2/instances/{id}"),
                    Some(json!({"name": "renamed"})),
                )
            },
            reread: |w| as_root(format!("/api/v2/instances/{}", w.instance)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/instances/{id}",
            victim: instance,
            request: |id| (format!("/api/v2/instances/{id}"), None),
            reread: |w| as_root(format!("/api/v2/instances/{}", w.instance)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/instances/{id}/start",
            victim: instance,
            request: |id| (format!("/api/v2/instances/{id}/start"), None),
            reread: |w| as_root(format!("/api/v2/instances/{}", w.instance)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/instances/{id}/stop",
            victim: instance,
            request: |id| (format!("/api/v2/instances/{id}/stop"), None),
            reread: |w| as_root(format!("/api/v2/instances/{}", w.instance)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::POST,
            template: "/api/v2/instances/{id}/reboot",
            victim: instance,
            request: |id| (format!("/api/v2/instances/{id}/reboot"), None),
            reread: |w| as_root(format!("/api/v2/instances/{}", w.instance)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/tasks",
            victim: org,
            request: |id| (format!("/api/v2/tasks?org_id={id}"), None),
            reread: |w| as_root(format!("/api/v2/tasks?org_id={}", w.tenant_a)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::GET,
            template: "/api/v2/tasks/{id}",
            victim: task,
            request: |id| (format!("/api/v2/tasks/{id}"), None),
            reread: |w| as_root(format!("/api/v2/tasks/{}", w.task)),
            sibling: Hidden,
            viewer: Allowed,
            child_admin: Hidden,
        },
        Route {
            method: Method::DELETE,
            template: "/api/v2/tasks/{id}",
            victim: task,
            request: |id| (format!("/api/v2/tasks/{id}"), None),
            reread: |w| as_root(format!("/api/v2/tasks/{}", w.task)),
            sibling: Hidden,
            viewer: Forbidden,
            child_admin: Hidden,
        },
    ]
}

async fn world() -> World {
    let s = TestServer::set_up().await;
    let tenant_a = s.create_org("Tenant A", None).await;
    let tenant_b = s.create_org("Tenant B", None).await;
    let child_a = s.create_org("Child of A", Some(&tenant_a)).await;
    s.create_user(&tenant_a, "a-admin", &["admin"]).await;
    s.create_user(&tenant_a, "a-viewer", &["viewer"]).await;
    s.create_user(&tenant_b, "b-admin", &["admin"]).await;
    s.create_user(&child_a, "c-admin", &["admin"]).await;
    let user = s.create_user(&tenant_a, "a-target", &["viewer"]).await;
    let role = s
        .create_role(Some(&tenant_a), "a-role", &["users:read"])
        .await;
    let key = s
        .client_as("a-admin")
        .create_api_key(&api::ApiKeyCreate {
            name: Some("victim".into()),
        })
        .await
        .unwrap()
        .id
        .to_string();
    let datacenter = s
        .create_datacenter("victim-dc", "https://victim.example")
        .await;
    let client = s
        .create_api_client(&api::ApiClientCreate {
            kind: Some("api_client".into()),
            tenant_id: Some(tenant_a.parse().unwrap()),
            data: Some(api::ApiClientData {
                client_name: Some("victim-client".into()),
                redirect_uris: Some(vec!["https://victim.example/callback".into()]),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .client_id
        .to_string();
    let instance = s.create_instance(&tenant_a, "victim-vm").await;
    let tasks = s.admin_client().tasks(&[("org_id", &tenant_a)]).await;
    let task = tasks.unwrap().data[0].task_id.to_string();
    let r = s
        .admin(
            Method::POST,
            &format!("/api/notary/v2/stored-files?org_id={tenant_a}&name=victim.txt"),
        )
        .header("content-type", "application/octet-stream")
        .body(VICTIM_FILE)
        .send()
        .await
        .unwrap();
    let stored_file = json_of(r, 201).await["data"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    s.app().notarize_pending().await.unwrap();
    let password = nephele_common::Secret::new(USER_PASSWORD);
    let a_admin = s
        .app()
        .sign_in_password("a-admin", &password, None)
        .await
        .unwrap();
    let (signed_in, _) = s
        .app()
        .start_session(&a_admin, &["pwd"], "test", None)
        .await
        .unwrap();
    let session = signed_in.session.id.to_string();
    consent(&s, &client, "a-admin").await;
    World {
        s,
        session,
        stored_file,
        tenant_a,
        user,
        instance,
        task,
        role,
        key,
        datacenter,
        client,
    }
}

/// `login` allows the third-party `client`, in a browser.
async fn consent(s: &TestServer, client: &str, login: &str) {
    let mut browser = crate::signin::Browser::default();
    let challenge = crate::signin::pkce().1;
    let url = crate::signin::authorize_url(s, client, &challenge, &[])
        .replace("app.example%2Fcallback", "victim.example%2Fcallback");
    let page = browser.get(&url).await;
    let asked = browser.sign_in(s, &page, login, USER_PASSWORD).await;
    let mut form = asked.hidden_fields();
    form.push(("decision".into(), "allow".into()));
    let allowed = browser
        .post(&format!("{}/api/2/idp/authorize", s.url), &form)
        .await;
    assert_eq!(allowed.status, 302, "{}", allowed.body);
    assert!(allowed.redirect_params().contains_key("code"));
    let consents = s.client_as(login).consents().await.unwrap().data;
    assert_eq!(consents[0].client_id.to_string(), client);
}

fn as_who(s: &TestServer, who: Who, method: Method, path: &str) -> RequestBuilder {
    let r = s.request(method, path);
    match who {
        Who::Nobody => r,
        Who::Malformed => r.header("authorization", "Basic !!!"),
        Who::Sibling => r.basic_auth("b-admin", Some(USER_PASSWORD)),
        Who::Viewer => r.basic_auth("a-viewer", Some(USER_PASSWORD)),
        Who::ChildAdmin => r.basic_auth("c-admin", Some(USER_PASSWORD)),
    }
}

async fn send(
    s: &TestServer,
    who: Who,
    method: &Method,
    (path, body): (String, Option<Value>),
) -> (u16, String, String) {
    let mut r = as_who(s, who, method.clone(), &path);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

async fn reread(w: &World, route: &Route) -> Value {
    let (path, login) = (route.reread)(w);
    let password = if login == ADMIN_LOGIN {
        ADMIN_PASSWORD
    } else {
        USER_PASSWORD
    };
    let r =
        w.s.request(Method::GET, &path)
            .basic_auth(login, Some(password))
            .send()
            .await
            .unwrap();
    json_of(r, 200).await
}

/// An id of the right shape that names nothing.
fn missing_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test]
async fn every_route_refuses_every_principal_that_must_not_pass() {
    let w = world().await;
    let table = routes();

    // The table covers exactly the authenticated routes of the document.
    let doc = json_of(w.s.get("/api/openapi.json").await, 200).await;
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        // Every route that takes the principal's credentials: the
        // management API, API clients and key rotation. (The OAuth2
        // endpoints authenticate clients their own way, userinfo takes
        // only a user's bearer token (identity.rs tests it), and discovery
        // is public.)
        let authenticated = path.starts_with("/api/v2/")
            || path.starts_with("/api/notary/")
            || path.starts_with("/api/2/clients")
            || path == "/api/2/idp/keys/rotate";
        if !authenticated {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let tabled: BTreeSet<_> = table
        .iter()
        .map(|r| format!("{} {}", r.method, r.template))
        .collect();
    let missing: Vec<_> = documented.difference(&tabled).collect();
    assert!(
        missing.is_empty(),
        "routes missing from the isolation table: {missing:?}"
    );
    let stale: Vec<_> = tabled.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "table routes not in the document: {stale:?}"
    );

    let mut cases = 0;
    for route in &table {
        let victim = (route.victim)(&w);
        for who in EVERYONE {
            cases += 1;
            let before = reread(&w, route).await;
            let label = format!("{who:?} {} {}", route.method, route.template);
            let (status, content_type, body) =
                send(&w.s, who, &route.method, (route.request)(&victim)).await;
            let expect = match who {
                // Anyone may check a notary proof (SPEC §7).
                Who::Nobody if PUBLIC.contains(&route.template) => Some(Expect::Allowed),
                Who::Nobody | Who::Malformed => None,
                Who::Sibling => Some(route.sibling),
                Who::Viewer => Some(route.viewer),
                Who::ChildAdmin => Some(route.child_admin),
            };
            match expect {
                None => {
                    let code = if who == Who::Nobody { 1000 } else { 1001 };
                    assert_eq!(status, 401, "{label}: {body}");
                    let v: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(v["errors"][0]["code"], code, "{label}: {body}");
                }
                Some(Expect::Forbidden) => {
                    assert_eq!(status, 403, "{label}: {body}");
                    let v: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(v["errors"][0]["code"], 1003, "{label}: {body}");
                }
                Some(Expect::Hidden) => {
                    assert_eq!(status, 404, "{label}: {body}");
                    let other = missing_id();
                    let (m_status, m_type, m_body) =
                        send(&w.s, who, &route.method, (route.request)(&other)).await;
                    assert_eq!(
                        (status, content_type, body.replace(&victim, &other)),
                        (m_status, m_type, m_body),
                        "{label}: another tenant's object must look exactly like a missing one"
                    );
                }
                Some(Expect::Allowed) => {
                    assert!((200..300).contains(&status), "{label}: {status} {body}");
                }
                Some(Expect::Invalid) => {
                    assert_eq!(status, 422, "{label}: {body}");
                    let v: Value = serde_json::from_str(&body).unwrap();
                    assert_eq!(v["errors"][0]["code"], 3001, "{label}: {body}");
                }
            }
            assert_eq!(
                before,
                reread(&w, route).await,
                "{label} changed its target"
            );
        }
    }
    println!(
        "isolation matrix: {} routes x {} principals = {cases} cases",
        table.len(),
        EVERYONE.len()
    );
    w.s.stop().await;
}
