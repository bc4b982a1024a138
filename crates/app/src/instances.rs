//! Instances: accepted here (a state check, a quota check, a queued task,
//! one transaction), carried out by the task engine through the steps of
//! [`InstanceTasks`].

use crate::access::OpCtx;
use crate::App;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nephele_api_types as api;
use nephele_auth::Permission;
use nephele_common::batch::Batcher;
use nephele_common::clock::SharedClock;
use nephele_common::error::Validator;
use nephele_common::ids::{InstanceId, OrganizationId, TaskId};
use nephele_common::names::Name;
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Precondition, Result};
use nephele_drivers::{Driver, MachineSpec, Power};
pub use nephele_store::instances::InstanceState;
use nephele_store::instances::{
    Acceptance, Instance, InstanceChanges, InstanceFilter, NewInstance, Transition, TYPE,
};
use nephele_store::tasks::{NewTask, Task};
use nephele_store::{Datacenter, Store};
use nephele_tasks::{Job, TaskKind};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Sizes an instance may have.
const CPU: std::ops::RangeInclusive<i64> = 1..=128;
const MEMORY_MIB: std::ops::RangeInclusive<i64> = 64..=1_048_576;
const DISK_GIB: std::ops::RangeInclusive<i64> = 1..=65_536;

/// The asynchronous operations on an existing instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Start,
    Stop,
    Reboot,
    Delete,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Start => "start",
            Operation::Stop => "stop",
            Operation::Reboot => "reboot",
            Operation::Delete => "delete",
        }
    }

    fn permission(self) -> Permission {
        match self {
            Operation::Delete => Permission::InstancesWrite,
            _ => Permission::InstancesOperate,
        }
    }

    fn transition(self) -> Transition<'static> {
        use InstanceState::*;
        let (expected, transitional): (&'static [InstanceState], _) = match self {
            Operation::Start => (&[Stopped], Starting),
            Operation::Stop => (&[Running], Stopping),
            Operation::Reboot => (&[Running], Rebooting),
            Operation::Delete => (&[Stopped, Running, Error], Deleting),
        };
        Transition {
            expected,
            transitional,
            verb: self.as_str(),
        }
    }
}

/// The permission a task's operation needs (to cancel it, say).
pub(crate) fn permission_of(operation: &str) -> Permission {
    match operation {
        "start" | "stop" | "reboot" => Permission::InstancesOperate,
        _ => Permission::InstancesWrite,
    }
}

fn in_range(value: i64, range: &std::ops::RangeInclusive<i64>) -> std::result::Result<i64, String> {
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(format!(
            "must be between {} and {}",
            range.start(),
            range.end()
        ))
    }
}

impl App {
    fn new_task(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
        operation: &str,
        instance: InstanceId,
        restore: Option<InstanceState>,
    ) -> NewTask {
        NewTask {
            id: TaskId::new(),
            organization_id: org,
            operation: operation.to_owned(),
            resource_type: TYPE.to_owned(),
            resource_id: instance.to_string(),
            agent_id: ctx.agent_id.clone(),
            input: InstanceInput {
                restore: restore.map(|s| s.as_str().to_owned()),
                machine: None,
            }
            .to_json(),
            now: self.clock().now(),
            owner: None,
        }
    }

    /// Queues a task through `store`, which stores it: taken by this node
    /// at once when one of its workers is free, and otherwise left to the
    /// first node that claims it. A task stored as this node's is run by
    /// no other while this node lives, so storing and running it go on
    /// even if the request is dropped meanwhile (its client went away).
    async fn queue<F>(
        &self,
        mut task: NewTask,
        store: impl FnOnce(App, NewTask) -> F,
    ) -> Result<Task>
    where
        F: std::future::Future<Output = Result<Task>> + Send + 'static,
    {
        let engine = self.engine()?.clone();
        let Some(claim) = engine.reserve() else {
            let task = store(self.clone(), task).await?;
            engine.wake();
            return Ok(task);
        };
        task.owner = Some(claim.node());
        let stored = store(self.clone(), task);
        tokio::spawn(async move {
            let task = stored.await?;
            engine.run(claim, task.clone());
            Ok(task)
        })
        .await
        .map_err(|e| Error::internal(format!("queueing a task: {e}")))?
    }

    /// Accepts a new instance; the task that makes it is returned.
    pub async fn create_instance(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        request: api::InstanceCreate,
    ) -> Result<Task> {
        let org = self.acting_organization(ctx, acting);
        self.authorize(ctx, org, Permission::InstancesWrite).await?;
        self.refuse_in_suspended(org).await?;
        let mut v = Validator::new();
        let name = v.require("name", request.name, |n| Name::parse(&n));
        let image = v.require("image", request.image, |i| Name::parse(&i));
        let cpu = v.check("cpu", in_range(request.cpu.unwrap_or(1), &CPU));
        let memory = v.check(
            "memoryMiB",
            in_range(request.memory_mib.unwrap_or(1024), &MEMORY_MIB),
        );
        let disk = v.check(
            "diskGiB",
            in_range(request.disk_gib.unwrap_or(10), &DISK_GIB),
        );
        if let Some(image) = &image {
            if !self.driver().has_image(image.as_str()).await? {
                v.push("image", "is not an image this data center offers");
            }
        }
        if request.datacenter.is_some_and(|d| d != Datacenter::LOCAL.0) {
            v.push(
                "datacenter",
                "must be this server's data center: instances run where they are created",
            );
        }
        v.finish()?;
        let (Some(name), Some(image), Some(cpu), Some(memory_mib), Some(disk_gib)) =
            (name, image, cpu, memory, disk)
        else {
            return Err(Error::internal("validated instance incomplete"));
        };
        let id = InstanceId::new();
        let mut task = self.new_task(ctx, org, "create", id, None);
        // The machine as accepted, so that the steps need not read it back.
        task.input = InstanceInput {
            restore: None,
            machine: Some(AcceptedMachine {
                cpu,
                memory_mib,
                disk_gib,
                image: image.as_str().to_owned(),
            }),
        }
        .to_json();
        let instance = NewInstance {
            id,
            organization_id: org,
            name: name.as_str().to_owned(),
            cpu,
            memory_mib,
            disk_gib,
            image: image.as_str().to_owned(),
            datacenter_id: Datacenter::LOCAL,
            now: task.now,
        };
        let idempotency = ctx.idempotency.clone();
        self.queue(task, |app, task| async move {
            let queued = task.queued();
            app.acceptances()
                .submit(Acceptance {
                    instance,
                    task,
                    idempotency,
                })
                .await??;
            Ok(queued)
        })
        .await
    }

    pub async fn list_instances(
        &self,
        ctx: &OpCtx,
        acting: Option<OrganizationId>,
        state: Option<&str>,
        name: Option<String>,
        page: &PageRequest,
    ) -> Result<Page<Instance>> {
        let org = self.acting_organization(ctx, acting);
        let state = match state {
            None => None,
            Some(s) => Some(InstanceState::parse(s).ok_or_else(|| {
                let known: Vec<&str> = InstanceState::ALL.iter().map(|s| s.as_str()).collect();
                Error::invalid("state", format!("must be one of {}", known.join(", ")))
            })?),
        };
        self.authorize(ctx, org, Permission::InstancesRead).await?;
        self.store()
            .list_instances(org, &InstanceFilter { state, name }, page)
            .await
    }

    /// An instance the actor may `permission` on (404 when it cannot see it).
    async fn visible_instance(
        &self,
        ctx: &OpCtx,
        id: InstanceId,
        permission: Permission,
    ) -> Result<Instance> {
        let instance = self
            .store()
            .get_instance(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        self.authorize_object(ctx, instance.organization_id, permission, TYPE, &id)
            .await?;
        Ok(instance)
    }

    pub async fn get_instance(&self, ctx: &OpCtx, id: InstanceId) -> Result<Instance> {
        self.visible_instance(ctx, id, Permission::InstancesRead)
            .await
    }

    /// Renames (any time) or resizes (only `Stopped`) an instance.
    pub async fn update_instance(
        &self,
        ctx: &OpCtx,
        id: InstanceId,
        request: api::InstanceUpdate,
        precondition: &Precondition,
    ) -> Result<Instance> {
        self.visible_instance(ctx, id, Permission::InstancesWrite)
            .await?;
        let mut v = Validator::new();
        let name = v.field("name", request.name, false, |n| Name::parse(&n));
        let cpu = v.field("cpu", request.cpu, false, |c| in_range(c, &CPU));
        let memory_mib = v.field("memoryMiB", request.memory_mib, false, |m| {
            in_range(m, &MEMORY_MIB)
        });
        v.finish()?;
        self.store()
            .update_instance(
                id,
                &InstanceChanges {
                    name: name.map(|n| n.as_str().to_owned()),
                    cpu,
                    memory_mib,
                },
                precondition,
                self.clock().now(),
            )
            .await
    }

    /// A suspended organization's instances are not made or started, not
    /// even by an administrator above it (409, 2012).
    async fn refuse_in_suspended(&self, org: OrganizationId) -> Result<()> {
        if let Some(suspended) = self.ancestry(org).await?.suspended {
            return Err(Error::wrong_state(
                "organizations",
                suspended,
                "The organization is suspended: its instances cannot be created or started",
            )
            .with("currentState", "suspended")
            .with("expectedStates", vec!["active"]));
        }
        Ok(())
    }

    /// Starts, stops, reboots or deletes an instance: the task is returned.
    pub async fn operate_instance(
        &self,
        ctx: &OpCtx,
        id: InstanceId,
        operation: Operation,
        precondition: &Precondition,
    ) -> Result<Task> {
        let instance = self
            .visible_instance(ctx, id, operation.permission())
            .await?;
        if operation == Operation::Start {
            self.refuse_in_suspended(instance.organization_id).await?;
        }
        // The state to restore is the one found when the operation is
        // accepted, inside the store's transaction.
        let task = self.new_task(ctx, instance.organization_id, operation.as_str(), id, None);
        let (precondition, idempotency) = (precondition.clone(), ctx.idempotency.clone());
        self.queue(task, |app, task| async move {
            app.store()
                .begin_instance_operation(
                    id,
                    &operation.transition(),
                    &precondition,
                    task,
                    idempotency.as_ref(),
                )
                .await
        })
        .await
    }
}

/// New instances are accepted in groups, one transaction each: a burst
/// of creates costs one commit, not one each.
pub(crate) type AcceptanceWriter = Batcher<Acceptance, Result<()>>;

pub(crate) fn acceptance_writer(store: Store) -> AcceptanceWriter {
    Batcher::start("instance acceptances", 512, move |batch| {
        let store = store.clone();
        async move { store.create_instances(&batch).await }
    })
}

/// What an instance task carries from its acceptance to its steps. The
/// same JSON tasks stored by earlier builds carry.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InstanceInput {
    /// The state an undone task returns the instance to; none when the
    /// task created it (undone, it is removed).
    pub restore: Option<String>,
    /// The machine as accepted, for a create: its steps need not read it
    /// back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<AcceptedMachine>,
}

impl InstanceInput {
    fn restore_state(&self) -> Option<InstanceState> {
        self.restore.as_deref().and_then(InstanceState::parse)
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptedMachine {
    pub cpu: i64,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: i64,
    #[serde(rename = "diskGiB")]
    pub disk_gib: i64,
    pub image: String,
}

/// Every operation an instance task does: its making, or an operation
/// on the instance made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceTask {
    Create,
    Operate(Operation),
}

/// The steps of instance tasks. Every step is idempotent; the `Mark…`
/// steps only set the recorded state, which the driver steps before them
/// made true.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceStep {
    CreateMachine,
    StartMachine,
    MarkRunning,
    StopMachine,
    MarkStopped,
    RebootMachine,
    /// A delete's first step: a stopped or broken machine has nothing to
    /// stop.
    StopIfRunning,
    DeleteMachine,
    RemoveRecord,
}

/// Instances as a kind of task: the steps of each operation on them.
#[derive(Debug)]
pub struct InstanceTasks {
    store: Store,
    clock: SharedClock,
    driver: Arc<dyn Driver>,
    /// State changes, written in groups.
    states: Batcher<(InstanceId, InstanceState, DateTime<Utc>), Option<Instance>>,
}

impl InstanceTasks {
    pub fn new(store: Store, clock: SharedClock, driver: Arc<dyn Driver>) -> InstanceTasks {
        let writer = store.clone();
        InstanceTasks {
            states: Batcher::start("instance states", 512, move |batch| {
                let store = writer.clone();
                async move { store.set_instance_states(&batch).await }
            }),
            store,
            clock,
            driver,
        }
    }

    async fn set_state(&self, id: InstanceId, state: InstanceState) -> Result<Option<Instance>> {
        self.states.submit((id, state, self.clock.now())).await
    }

    fn instance_id(job: &Job<Self>) -> Result<InstanceId> {
        job.task
            .resource_id
            .parse()
            .map_err(|_| Error::internal(format!("task {} names no instance", job.task.id)))
    }

    /// The machine a task works on: as accepted, for a create; as
    /// recorded, otherwise (it may have been resized since).
    async fn spec(&self, job: &Job<Self>) -> Result<MachineSpec> {
        let id = Self::instance_id(job)?;
        if let Some(m) = &job.input.machine {
            return Ok(MachineSpec {
                id,
                cpu: m.cpu,
                memory_mib: m.memory_mib,
                disk_gib: m.disk_gib,
                image: m.image.clone(),
            });
        }
        let i = self
            .store
            .get_instance(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        Ok(MachineSpec {
            id: i.id,
            cpu: i.cpu,
            memory_mib: i.memory_mib,
            disk_gib: i.disk_gib,
            image: i.image,
        })
    }

    /// Records the instance's state; the instance as it now is, as the
    /// task's result.
    async fn mark(&self, job: &Job<Self>, state: InstanceState) -> Result<Option<api::Instance>> {
        let id = Self::instance_id(job)?;
        let instance = self
            .set_state(id, state)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        Ok(Some(crate::wire::instance(&instance)))
    }
}

#[async_trait]
impl TaskKind for InstanceTasks {
    const RESOURCE: &'static str = TYPE;
    type Operation = InstanceTask;
    type Step = InstanceStep;
    type Input = InstanceInput;
    type Output = api::Instance;

    fn operation(name: &str) -> Option<InstanceTask> {
        if name == "create" {
            return Some(InstanceTask::Create);
        }
        [
            Operation::Start,
            Operation::Stop,
            Operation::Reboot,
            Operation::Delete,
        ]
        .into_iter()
        .find(|o| o.as_str() == name)
        .map(InstanceTask::Operate)
    }

    fn steps(operation: InstanceTask) -> &'static [InstanceStep] {
        use InstanceStep::*;
        match operation {
            InstanceTask::Create => &[CreateMachine, StartMachine, MarkRunning],
            InstanceTask::Operate(Operation::Start) => &[StartMachine, MarkRunning],
            InstanceTask::Operate(Operation::Stop) => &[StopMachine, MarkStopped],
            InstanceTask::Operate(Operation::Reboot) => &[RebootMachine, MarkRunning],
            InstanceTask::Operate(Operation::Delete) => {
                &[StopIfRunning, DeleteMachine, RemoveRecord]
            }
        }
    }

    fn step_name(step: InstanceStep) -> &'static str {
        use InstanceStep::*;
        match step {
            CreateMachine => "create machine",
            StartMachine => "start machine",
            MarkRunning => "mark running",
            StopMachine | StopIfRunning => "stop machine",
            MarkStopped => "mark stopped",
            RebootMachine => "reboot machine",
            DeleteMachine => "delete machine",
            RemoveRecord => "remove record",
        }
    }

    async fn run(&self, job: &Job<Self>, step: InstanceStep) -> Result<Option<api::Instance>> {
        use InstanceStep::*;
        let id = Self::instance_id(job)?;
        match step {
            CreateMachine => self.driver.create(&self.spec(job).await?).await?,
            StartMachine => self.driver.start(&self.spec(job).await?).await?,
            MarkRunning => return self.mark(job, InstanceState::Running).await,
            StopMachine => self.driver.stop(id).await?,
            MarkStopped => return self.mark(job, InstanceState::Stopped).await,
            RebootMachine => self.driver.reboot(id, job.task.id).await?,
            StopIfRunning => {
                if self.driver.status(id).await? == Some(Power::Running) {
                    self.driver.stop(id).await?;
                }
            }
            DeleteMachine => self.driver.delete(id).await?,
            RemoveRecord => self.store.remove_instance(id).await?,
        }
        Ok(None)
    }

    async fn undo(&self, job: &Job<Self>, step: InstanceStep) -> Result<()> {
        use InstanceStep::*;
        let id = Self::instance_id(job)?;
        match step {
            CreateMachine => self.driver.delete(id).await,
            StartMachine => self.driver.stop(id).await,
            StopMachine => self.driver.start(&self.spec(job).await?).await,
            StopIfRunning if job.input.restore_state() == Some(InstanceState::Running) => {
                self.driver.start(&self.spec(job).await?).await
            }
            // Marking is undone by settling; a reboot, a machine deleted
            // and a record removed cannot be undone.
            _ => Ok(()),
        }
    }

    async fn cancel(
        &self,
        job: &Job<Self>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let id = Self::instance_id(job)?;
        self.store
            .cancel_instance_task(job.task.id, id, job.input.restore_state(), error, now)
            .await
    }

    async fn settle(&self, job: &Job<Self>, undo_failed: bool) -> Result<()> {
        let id = Self::instance_id(job)?;
        let now = self.clock.now();
        if undo_failed {
            self.set_state(id, InstanceState::Error).await.map(|_| ())
        } else {
            self.store
                .settle_instance(id, job.input.restore_state(), now)
                .await
        }
    }
}
