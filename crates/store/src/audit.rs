use crate::columns::{MaybeParsed, Micros, Parsed};
use crate::door::{job, run};
use crate::tables::{audit_events, organizations};
use crate::{AuditEvent, AuditFilter, Store};
use chrono::{DateTime, Utc};
use diesel::dsl::{exists, sql};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::sqlite::Sqlite;
use nephele_common::clock::to_micros;
use nephele_common::ids::{AuditEventId, OrganizationId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::Result;

/// An event as stored: its status is a BIGINT, the event's a `u16`.
#[derive(Queryable, Selectable)]
#[diesel(table_name = audit_events, check_for_backend(Sqlite, Pg))]
struct EventRow {
    #[diesel(deserialize_as = Parsed<AuditEventId>)]
    id: AuditEventId,
    #[diesel(deserialize_as = Micros)]
    occurred_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeParsed<OrganizationId>)]
    organization_id: Option<OrganizationId>,
    actor_type: Option<String>,
    actor_id: Option<String>,
    actor_name: Option<String>,
    action: String,
    target_type: Option<String>,
    target_id: Option<String>,
    outcome: String,
    status: i64,
    request_id: Option<String>,
    agent_id: Option<String>,
    client_address: Option<String>,
}

impl From<EventRow> for AuditEvent {
    fn from(r: EventRow) -> AuditEvent {
        AuditEvent {
            id: r.id,
            occurred_at: r.occurred_at,
            organization_id: r.organization_id,
            actor_type: r.actor_type,
            actor_id: r.actor_id,
            actor_name: r.actor_name,
            action: r.action,
            target_type: r.target_type,
            target_id: r.target_id,
            outcome: r.outcome,
            status: u16::try_from(r.status).unwrap_or(0),
            request_id: r.request_id,
            agent_id: r.agent_id,
            client_address: r.client_address,
        }
    }
}

impl Store {
    /// Appends events, in one statement.
    pub async fn insert_audit_events(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = events
            .iter()
            .map(|e| {
                (
                    audit_events::id.eq(e.id.to_string()),
                    audit_events::occurred_at.eq(to_micros(e.occurred_at)),
                    audit_events::organization_id.eq(e.organization_id.map(|o| o.to_string())),
                    audit_events::actor_type.eq(e.actor_type.clone()),
                    audit_events::actor_id.eq(e.actor_id.clone()),
                    audit_events::actor_name.eq(e.actor_name.clone()),
                    audit_events::action.eq(e.action.clone()),
                    audit_events::target_type.eq(e.target_type.clone()),
                    audit_events::target_id.eq(e.target_id.clone()),
                    audit_events::outcome.eq(e.outcome.clone()),
                    audit_events::status.eq(i64::from(e.status)),
                    audit_events::request_id.eq(e.request_id.clone()),
                    audit_events::agent_id.eq(e.agent_id.clone()),
                    audit_events::client_address.eq(e.client_address.clone()),
                )
            })
            .collect();
        self.write(job!(|c| {
            run!(c.execute(diesel::insert_into(audit_events::table).values(&rows)))?;
            Ok(())
        }))
        .await
    }

    /// Events of the organizations in the subtree of `root`, oldest first;
    /// when `root` is the root organization, also those of no organization.
    pub async fn list_audit_events(
        &self,
        root: OrganizationId,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let root = root.to_string();
        // Every time is at or after the smallest; every id after the empty
        // text. An absent actor or action is a NULL that lets all through.
        let since = filter.since.map_or(i64::MIN, to_micros);
        let after = page.after.clone().unwrap_or_default();
        let (actor, action) = (&filter.actor, &filter.action);
        let mut c = self.door.reader().await?;
        let rows = run!(c.load(
            audit_events::table
                .select(EventRow::as_select())
                .filter(
                    sql::<Bool>(
                        "audit_events.organization_id IN (WITH RECURSIVE sub(id) AS ( \
                           SELECT id FROM organizations WHERE id = "
                    )
                    .bind::<Text, _>(&root)
                    .sql(
                        " UNION ALL \
                           SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id \
                         ) SELECT id FROM sub)"
                    )
                    .or(audit_events::organization_id.is_null().and(exists(
                        organizations::table
                            .find(&root)
                            .filter(organizations::parent_id.is_null())
                            .select(organizations::id)
                    )))
                )
                .filter(audit_events::occurred_at.ge(since))
                .filter(
                    actor
                        .into_sql::<Nullable<Text>>()
                        .is_null()
                        .or(audit_events::actor_id.eq(actor))
                        .or(audit_events::actor_name.eq(actor))
                )
                .filter(
                    action
                        .into_sql::<Nullable<Text>>()
                        .is_null()
                        .or(audit_events::action.nullable().eq(action))
                )
                .filter(audit_events::id.gt(&after))
                .order(audit_events::id)
                .limit(i64::from(page.limit) + 1)
        ))?;
        let items = rows.into_iter().map(AuditEvent::from).collect();
        Ok(Page::from_rows(items, page.limit, |e: &AuditEvent| {
            e.id.to_string()
        }))
    }
}
