//! Domain models as they go on the wire: every conversion from a model
//! to its `api-types` shape, in one place (the HTTP layer renders these;
//! a task's result is one).

use crate::App;
use nephele_api_types as api;
use nephele_common::Secret;
use nephele_store as model;

pub fn organization(o: &model::Organization) -> api::Organization {
    api::Organization {
        id: o.id.0,
        name: o.name.clone(),
        parent_id: o.parent_id.map(|p| p.0),
        status: o.status.to_string(),
        created_at: o.created_at,
        updated_at: o.updated_at,
        version: o.version,
        mfa_required: o.mfa_required,
    }
}

pub fn user(u: &model::UserDetail) -> api::User {
    let roles = u.roles.clone();
    let u = &u.user;
    api::User {
        id: u.id.0,
        login: u.login.clone(),
        email: u.email.clone(),
        organization_id: u.organization_id.0,
        roles,
        datacenter_id: u.datacenter_id.0,
        status: u.status.to_string(),
        created_at: u.created_at,
        updated_at: u.updated_at,
        version: u.version,
        activation_url: None,
    }
}

pub fn role(r: &model::Role) -> api::Role {
    api::Role {
        id: r.id.0,
        name: r.name.clone(),
        permissions: r.permissions.clone(),
        builtin: r.is_builtin(),
        organization_id: r.organization_id.map(|o| o.0),
        created_at: r.created_at,
        updated_at: r.updated_at,
        version: r.version,
    }
}

pub fn api_key(k: &model::ApiKey, secret: Option<&Secret>) -> api::ApiKey {
    api::ApiKey {
        id: k.id.0,
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        secret: secret.map(|s| s.expose().to_owned()),
        created_at: k.created_at,
        updated_at: k.updated_at,
        last_used_at: k.last_used_at,
        version: k.version,
    }
}

pub fn image(i: crate::machines::Image) -> api::Image {
    api::Image {
        name: i.name,
        format: i.format,
        size_bytes: i.size_bytes,
    }
}

pub fn datacenter(app: &App, d: &model::Datacenter) -> api::Datacenter {
    api::Datacenter {
        id: d.id.0,
        name: d.name.clone(),
        server_url: app.datacenter_url(d),
        local: d.id == model::Datacenter::LOCAL,
        created_at: d.created_at,
        updated_at: d.updated_at,
        version: d.version,
    }
}

pub fn audit_event(e: &model::AuditEvent) -> api::AuditEvent {
    api::AuditEvent {
        id: e.id.0,
        occurred_at: e.occurred_at,
        organization_id: e.organization_id.map(|o| o.0),
        actor_type: e.actor_type.clone(),
        actor_id: e.actor_id.clone(),
        actor_name: e.actor_name.clone(),
        action: e.action.clone(),
        target_type: e.target_type.clone(),
        target_id: e.target_id.clone(),
        outcome: e.outcome.clone(),
        status: e.status,
        request_id: e.request_id.clone(),
        agent_id: e.agent_id.clone(),
        client_address: e.client_address.clone(),
    }
}

pub fn me(m: &crate::me::Me, method: &str) -> api::Me {
    use crate::me::MePrincipal;
    let principal = match &m.principal {
        MePrincipal::User(u) => api::Principal {
            kind: "user".into(),
            id: u.user.id.0,
            login: u.user.login.clone(),
            email: Some(u.user.email.clone()),
            roles: u.roles.clone(),
            datacenter_id: Some(u.user.datacenter_id.0),
        },
        MePrincipal::Client(c) => api::Principal {
            kind: "client".into(),
            id: c.id.0,
            login: c.name.clone(),
            email: None,
            roles: c.roles.clone(),
            datacenter_id: None,
        },
    };
    api::Me {
        principal,
        organization: organization(&m.organization),
        permissions: m
            .permissions
            .iter()
            .map(|p| p.as_str().to_owned())
            .collect(),
        authenticated_by: method.to_owned(),
        mfa_enabled: m.mfa_enabled,
        mfa_required: m.mfa_required,
    }
}

pub fn totp_enrolment(e: &crate::mfa::TotpEnrolment) -> api::TotpEnrolment {
    api::TotpEnrolment {
        secret: e.secret.expose().to_owned(),
        otpauth_uri: e.otpauth_uri.expose().to_owned(),
        qr_svg: e.qr_svg.clone(),
    }
}

pub fn recovery_codes(codes: &[Secret]) -> api::RecoveryCodes {
    api::RecoveryCodes {
        recovery_codes: codes.iter().map(|c| c.expose().to_owned()).collect(),
    }
}

pub fn api_client(c: &model::ApiClient, secret: Option<&Secret>) -> api::ApiClient {
    api::ApiClient {
        client_id: c.id.0,
        // A public client has no secret to show.
        client_secret: secret
            .filter(|_| !c.is_public())
            .map(|s| s.expose().to_owned()),
        kind: "api_client".into(),
        tenant_id: c.organization_id.0,
        token_endpoint_auth_method: c.auth_method.clone(),
        data: api::ApiClientData {
            client_name: Some(c.name.clone()),
            redirect_uris: Some(c.sign_in.redirect_uris.clone()),
            post_logout_redirect_uris: Some(c.sign_in.post_logout_redirect_uris.clone()),
            grant_types: Some(c.sign_in.grant_types.clone()),
            first_party: Some(c.sign_in.first_party),
        },
        roles: c.roles.clone(),
        status: c.status.clone(),
        created_by: c.created_by.map(|u| u.0),
        created_at: c.created_at,
        last_access_at: c.last_access_at,
    }
}

/// A task as the API shows it: a running task is `PENDING`; `steps` only
/// when the log is given.
pub fn task(t: &model::tasks::Task, steps: Option<&[model::tasks::StepEntry]>) -> api::Task {
    use model::tasks::TaskStatus;
    let status = match t.status {
        TaskStatus::Pending | TaskStatus::Running => "PENDING",
        other => other.as_str(),
    };
    let finished = t.status.is_finished();
    api::Task {
        task_id: t.id.0,
        task_status: status.to_owned(),
        operation: t.operation.clone(),
        resource_type: t.resource_type.clone(),
        resource_id: t.resource_id.clone(),
        organization_id: t.organization_id.0,
        agent_id: t.agent_id.clone(),
        progress: t.progress,
        created_at: t.created_at,
        started_at: t.started_at,
        completed_at: t.completed_at,
        result: t
            .result
            .as_deref()
            .and_then(|r| serde_json::from_str(r).ok()),
        // While unwinding a task carries the error it will end with; it is
        // shown once the task has ended.
        error: t
            .error
            .as_deref()
            .filter(|_| finished && t.status == TaskStatus::Failed)
            .and_then(|e| serde_json::from_str(e).ok()),
        steps: steps.map(|s| {
            s.iter()
                .map(|e| api::TaskStep {
                    name: e.name.clone(),
                    action: e.action.to_owned(),
                    outcome: e.outcome.to_owned(),
                    detail: e.detail.clone(),
                })
                .collect()
        }),
    }
}

/// An instance (also a task's `result`).
pub fn instance(i: &model::instances::Instance) -> api::Instance {
    api::Instance {
        id: i.id.0,
        name: i.name.clone(),
        organization_id: i.organization_id.0,
        state: i.state.as_str().to_owned(),
        cpu: i.cpu,
        memory_mib: i.memory_mib,
        disk_gib: i.disk_gib,
        image: i.image.clone(),
        datacenter: i.datacenter_id.0,
        created_at: i.created_at,
        updated_at: i.updated_at,
        version: i.version,
    }
}

pub fn quota(q: &model::instances::Quota) -> api::Quota {
    api::Quota {
        organization_id: q.organization_id.0,
        instances: q.limits.instances,
        vcpus: q.limits.vcpus,
        memory_mib: q.limits.memory_mib,
        usage: api::QuotaUsage {
            instances: q.usage.instances,
            vcpus: q.usage.vcpus,
            memory_mib: q.usage.memory_mib,
        },
        updated_at: q.updated_at,
        version: q.version,
    }
}

pub fn stored_file(f: &model::notary::StoredFile) -> api::StoredFile {
    api::StoredFile {
        id: f.id.0,
        name: f.name.clone(),
        sha256: f.sha256.clone(),
        size_bytes: f.size_bytes,
        content: f.content.as_str().to_owned(),
        status: if f.leaf_index.is_some() {
            "NOTARIZED"
        } else {
            "PENDING"
        }
        .to_owned(),
        leaf_index: f.leaf_index,
        notarized_at: f.notarized_at,
        organization_id: f.organization_id.0,
        owner_type: f.owner_type.clone(),
        owner_id: f.owner_id.parse().unwrap_or_default(),
        created_at: f.created_at,
        updated_at: f.updated_at,
        version: f.version,
    }
}

/// The notary's own types serialize exactly as the wire's (the same
/// names, the same text of the signed timestamp): one goes into the other.
pub fn same_shape<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    value: &T,
) -> Result<U, nephele_common::Error> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| nephele_common::Error::internal(format!("notary wire shape: {e}")))
}

pub fn sign_in_session(s: &model::SsoSession) -> api::SignInSession {
    api::SignInSession {
        id: s.id.0,
        amr: s.amr.split(' ').map(str::to_owned).collect(),
        auth_time: s.auth_time,
        user_agent: s.user_agent.clone(),
        address: s.address.clone(),
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        expires_at: s.expires_at,
    }
}

pub fn consent(c: &model::signin::Consent) -> api::Consent {
    api::Consent {
        client_id: c.client_id.0,
        client_name: c.client_name.clone(),
        scopes: c
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: c.created_at,
    }
}
