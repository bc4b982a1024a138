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
use nephele_common::ids::OrganizationId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};
use nephele_store::{AuditEvent, AuditFilter, Store};
use tokio::sync::{mpsc, oneshot};

/// At most this many events go into one transaction.
const BATCH: usize = 512;

type Pending = (AuditEvent, oneshot::Sender<Result<()>>);

/// The handle to the writer task.
#[derive(Debug, Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Pending>,
}

impl AuditLog {
    /// Starts the writer; it ends when the last handle is dropped.
    pub fn start(store: Store) -> AuditLog {
        let (queue, mut rx) = mpsc::channel::<Pending>(4 * BATCH);
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let (events, acks): (Vec<_>, Vec<_>) = batch.drain(..).unzip();
                let result = store.insert_audit_events(&events).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, events = events.len(), "could not write audit events");
                }
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        AuditLog { queue }
    }

    async fn record(&self, event: AuditEvent) -> Result<()> {
        let (ack, done) = oneshot::channel();
        self.queue
            .send((event, ack))
            .await
            .map_err(|_| Error::unavailable("the audit log is closed"))?;
        done.await
            .map_err(|_| Error::unavailable("the audit log is closed"))?
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
