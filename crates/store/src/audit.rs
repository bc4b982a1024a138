use crate::db::{col, col_id, col_opt_id, col_time, db_error};
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
    /// Appends events in one transaction.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        for e in events {
            sqlx::query(&format!(
                "INSERT INTO audit_events ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
            ))
            .bind(e.id.to_string())
            .bind(to_micros(e.occurred_at))
            .bind(e.organization_id.map(|o| o.to_string()))
            .bind(e.actor_type.clone())
            .bind(e.actor_id.clone())
            .bind(e.actor_name.clone())
            .bind(&e.action)
            .bind(e.target_type.clone())
            .bind(e.target_id.clone())
            .bind(&e.outcome)
            .bind(i64::from(e.status))
            .bind(e.request_id.clone())
            .bind(e.agent_id.clone())
            .bind(e.client_address.clone())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        tx.commit().await.map_err(db_error)
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
