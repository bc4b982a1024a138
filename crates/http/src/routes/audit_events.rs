//! `/api/v2/audit-events`.

use crate::auth::Auth;
use crate::error::HttpResult;
use crate::extract::{Paging, Query};
use crate::reply::Reply;
use crate::state::AppState;
use axum::extract::State;
use chrono::{DateTime, Utc};
use nephele_api_types::{AuditEvent, List};
use nephele_app::audit::AuditFilter;
use nephele_app::wire;
use nephele_common::ids::OrganizationId;
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditParams {
    /// Act in this organization (yours or one below it).
    #[serde(rename = "org_id")]
    #[param(rename = "org_id")]
    pub org_id: Option<uuid::Uuid>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Only events of this principal (its id or login).
    pub actor: Option<String>,
    /// Only events of this action (`users.create`, `authentication`, …).
    pub action: Option<String>,
    /// Items per page, 1–1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `nextPage` of the previous page.
    pub page_token: Option<String>,
}

/// Who did what, when, from which agent, with what outcome: the events of
/// the organization acted in and every organization below it, oldest
/// first. Needs `audit:read`.
#[utoipa::path(get, path = "/api/v2/audit-events", tag = "audit",
    params(AuditParams),
    responses((status = 200, description = "A page of audit events", body = List<AuditEvent>)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(ctx): Auth,
    Query(params): Query<AuditParams>,
    Paging(page): Paging,
) -> HttpResult<Reply> {
    let filter = AuditFilter {
        since: params.since,
        actor: params.actor.map(|a| a.to_lowercase()),
        action: params.action,
    };
    let page = state
        .app
        .list_audit_events(&ctx, params.org_id.map(OrganizationId), &filter, &page)
        .await?;
    Ok(Reply::list(
        "auditEvent",
        page.map(|e| wire::audit_event(&e)),
    )?)
}
