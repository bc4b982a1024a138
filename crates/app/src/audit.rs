//! The audit log: who did what, when, where, from which agent, with what
//! outcome.
//!
//! Events are written by a single writer task that commits whatever has
//! queued up in one transaction (group commit), so a burst of requests
//! costs one write transaction, not one each. [`App::record`] waits for
//! the commit: when a request's response leaves, its event is stored.

use crate::access::OpCtx;
use crate::App;
use nephele_auth::Permission;
use nephele_common::batch::Batcher;
use nephele_common::ids::OrganizationId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::Result;
use nephele_store::Store;
pub use nephele_store::{AuditEvent, AuditFilter};

/// At most this many events go into one transaction.
const BATCH: usize = 512;

/// The handle to the writer task.
#[derive(Debug, Clone)]
pub struct AuditLog(Batcher<AuditEvent, ()>);

impl AuditLog {
    /// Starts the writer; it ends when the last handle is dropped.
    pub fn start(store: Store) -> AuditLog {
        AuditLog(Batcher::start(
            "audit log",
            BATCH,
            move |events: Vec<AuditEvent>| {
                let store = store.clone();
                async move {
                    let n = events.len();
                    store.insert_audit_events(&events).await?;
                    Ok(vec![(); n])
                }
            },
        ))
    }

    async fn record(&self, event: AuditEvent) -> Result<()> {
        self.0.submit(event).await
    }
}

impl App {
    /// Stores an event; returns once it is committed.
    pub async fn record(&self, event: AuditEvent) -> Result<()> {
        self.audit_log().record(event).await
    }

    /// Events of the organization acted in and every organization below
    /// it; the root organization also sees events of no organization
    /// (failed authentications).
    pub async fn list_audit_events(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::AuditRead).await?;
        self.store().list_audit_events(org, filter, page).await
    }
}
