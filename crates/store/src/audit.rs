use crate::db::{col, col_id, col_opt_id, col_time, db_error, JsonType};
use crate::write::Arg;
use crate::{AuditEvent, AuditFilter, Store};
use nephele_common::clock::to_micros;
use nephele_common::ids::OrganizationId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::Result;
use sqlx::any::AnyRow;

const COLUMNS: &str = "id, occurred_at, organization_id, actor_type, actor_id, actor_name, \
                       action, target_type, target_id, outcome, status, request_id, agent_id, \
                       client_address";

fn event_from_row(r: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        id: col_id(r, "id")?,
        occurred_at: col_time(r, "occurred_at")?,
        organization_id: col_opt_id(r, "organization_id")?,
        actor_type: col(r, "actor_type")?,
        actor_id: col(r, "actor_id")?,
        actor_name: col(r, "actor_name")?,
        action: col(r, "action")?,
        target_type: col(r, "target_type")?,
        target_id: col(r, "target_id")?,
        outcome: col(r, "outcome")?,
        status: u16::try_from(col::<i64>(r, "status")?).unwrap_or(0),
        request_id: col(r, "request_id")?,
        agent_id: col(r, "agent_id")?,
        client_address: col(r, "client_address")?,
    })
}

impl Store {
    /// Appends events, in one statement.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        use JsonType::{Integer, Text};
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                serde_json::json!({
                    "id": e.id.to_string(),
                    "occurred_at": to_micros(e.occurred_at),
                    "organization_id": e.organization_id.map(|o| o.to_string()),
                    "actor_type": e.actor_type,
                    "actor_id": e.actor_id,
                    "actor_name": e.actor_name,
                    "action": e.action,
                    "target_type": e.target_type,
                    "target_id": e.target_id,
                    "outcome": e.outcome,
                    "status": e.status,
                    "request_id": e.request_id,
                    "agent_id": e.agent_id,
                    "client_address": e.client_address,
                })
            })
            .collect();
        let mut tx = self.begin_write().await?;
        let j = tx.rows(
            "j",
            &[
                ("id", Text),
                ("occurred_at", Integer),
                ("organization_id", Text),
                ("actor_type", Text),
                ("actor_id", Text),
                ("actor_name", Text),
                ("action", Text),
                ("target_type", Text),
                ("target_id", Text),
                ("outcome", Text),
                ("status", Integer),
                ("request_id", Text),
                ("agent_id", Text),
                ("client_address", Text),
            ],
            &rows,
        );
        tx.execute(
            &format!("INSERT INTO audit_events ({COLUMNS}) SELECT {COLUMNS} FROM {j}"),
            &[Arg::Rows(&j)],
        )
        .await?;
        tx.commit().await
    }

    /// Events of the organizations in the subtree of `root`, oldest first;
    /// when `root` is the root organization, also those of no organization.
    pub async fn list_audit_events(
        &self,
        root: OrganizationId,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let rows = sqlx::query(&format!(
            "WITH RECURSIVE sub(id) AS ( \
               SELECT id FROM organizations WHERE id = $1 \
               UNION ALL \
               SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id \
             ) SELECT {COLUMNS} FROM audit_events \
             WHERE (organization_id IN (SELECT id FROM sub) \
                    OR (organization_id IS NULL AND EXISTS ( \
                        SELECT 1 FROM organizations WHERE id = $1 AND parent_id IS NULL))) \
               AND ($2 IS NULL OR occurred_at >= $2) \
               AND ($3 IS NULL OR actor_id = $3 OR actor_name = $3) \
               AND ($4 IS NULL OR action = $4) \
               AND ($5 IS NULL OR id > $5) \
             ORDER BY id LIMIT $6"
        ))
        .bind(root.to_string())
        .bind(filter.since.map(to_micros))
        .bind(filter.actor.clone())
        .bind(filter.action.clone())
        .bind(page.after.clone())
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        let items = rows
            .iter()
            .map(event_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |e| e.id.to_string()))
    }
}
