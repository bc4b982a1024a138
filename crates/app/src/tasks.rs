//! Reading, waiting for and cancelling tasks.

use crate::access::OpCtx;
use crate::instances::permission_of;
use crate::App;
use nephele_auth::Permission;
use nephele_common::ids::{OrganizationId, TaskId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Result};
pub use nephele_store::tasks::TaskStatus;
use nephele_store::tasks::{StepEntry, Task, TaskFilter, TYPE};
pub use nephele_tasks::TaskMetrics;
use serde_json::json;
use std::time::Duration;

/// The longest `?wait=` (SPEC §6).
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// How often a waiting request looks for a task finished on another node.
const WAIT_POLL: Duration = Duration::from_millis(250);

impl App {
    async fn visible_task(&self, ctx: &OpCtx, id: TaskId) -> Result<Task> {
        let task = self
            .store()
            .get_task(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        self.authorize_object(ctx, task.organization_id, Permission::TasksRead, TYPE, &id)
            .await?;
        Ok(task)
    }

    /// A task with its step log; with `wait`, once it has finished or
    /// `wait` has passed, whichever comes first.
    pub async fn get_task(
        &self,
        ctx: &OpCtx,
        id: TaskId,
        wait: Option<Duration>,
    ) -> Result<(Task, Vec<StepEntry>)> {
        let authorized = match wait.filter(|w| !w.is_zero()) {
            Some(wait) => {
                self.wait_for_end(ctx, id, wait).await?;
                true
            }
            None => false,
        };
        let (task, steps) = self
            .store()
            .task_with_steps(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        if !authorized {
            self.authorize_object(ctx, task.organization_id, Permission::TasksRead, TYPE, &id)
                .await?;
        }
        Ok((task, steps))
    }

    /// Waits for a task the caller may read to end, at most `wait`. Only
    /// its status is read meanwhile (not its step log, which the caller
    /// reads once, at the end).
    async fn wait_for_end(&self, ctx: &OpCtx, id: TaskId, wait: Duration) -> Result<()> {
        // Watched before it is read, so that an end in between is not missed.
        let watch = self.engine()?.watch(id);
        let (org, mut status) = self
            .store()
            .task_status(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        self.authorize_object(ctx, org, Permission::TasksRead, TYPE, &id)
            .await?;
        let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
        while !status.is_finished() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            watch.finished(left.min(WAIT_POLL)).await;
            if watch.ended() {
                break;
            }
            // It may have ended on another node.
            match self.store().task_status(id).await? {
                Some((_, now)) => status = now,
                None => break,
            }
        }
        Ok(())
    }

    /// The tasks of the organization acted in, newest first.
    pub async fn list_tasks(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        status: Option<&str>,
        resource_id: Option<String>,
        page: &PageRequest,
    ) -> Result<Page<Task>> {
        let org = self.acting_organization(ctx, acting);
        let status = match status {
            None => None,
            Some(s) => Some(
                TaskStatus::parse(s)
                    .filter(|s| *s != TaskStatus::Running)
                    .ok_or_else(|| {
                        Error::invalid("status", "must be one of PENDING, SUCCESS, FAILED")
                    })?,
            ),
        };
        self.authorize(ctx, org, Permission::TasksRead).await?;
        self.store()
            .list_tasks(
                org,
                &TaskFilter {
                    status,
                    resource_id,
                },
                page,
            )
            .await
    }

    /// Cancels a task that has not started: it ends FAILED and its
    /// resource goes back to where it was. A task that has started or
    /// finished cannot be (409, 2012).
    pub async fn cancel_task(&self, ctx: &OpCtx, id: TaskId) -> Result<Task> {
        let task = self.visible_task(ctx, id).await?;
        self.authorize_object(
            ctx,
            task.organization_id,
            permission_of(&task.operation),
            TYPE,
            &id,
        )
        .await?;
        let error = json!({
            "code": ErrorCode::WrongState.number(),
            "message": "The task was cancelled before it started",
            "context": {"type": TYPE, "id": id.to_string(), "currentState": "CANCELLED"},
        });
        let now = self.clock().now();
        if let Some(mut cancelled) = self
            .engine()?
            .cancel(&task, &error.to_string(), now)
            .await?
        {
            cancelled.status = TaskStatus::Failed;
            cancelled.completed_at = Some(now);
            return Ok(cancelled);
        }
        let task = self.visible_task(ctx, id).await?;
        let current = match task.status {
            TaskStatus::Pending | TaskStatus::Running => "RUNNING",
            other => other.as_str(),
        };
        Err(Error::wrong_state(
            TYPE,
            id,
            "Only a task that has not started can be cancelled",
        )
        .with("currentState", current)
        .with("expectedStates", vec!["PENDING"]))
    }
}
