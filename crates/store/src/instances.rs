//! Instances and their quotas. An operation on an instance is accepted in
//! one transaction that checks the instance's state, moves it to the
//! operation's transitional state and queues the task (see `tasks`).

use crate::columns::{Micros, Parsed};
use crate::door::{db_error, job, run, Conn};
use crate::idempotency::{record_task, IdempotencyKey};
use crate::rows::Statement;
use crate::tables::{instances, quotas, tasks};
use crate::tasks::{cancel_in, insert_task, new_task_row, NewTask, Task};
use crate::Store;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use nephele_common::clock::to_micros;
use nephele_common::ids::{DatacenterId, InstanceId, OrganizationId, TaskId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Precondition, Result};
use std::collections::{BTreeSet, HashMap};

pub const TYPE: &str = "instances";

/// The states of SPEC §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    Provisioning,
    Stopped,
    Starting,
    Running,
    Stopping,
    Rebooting,
    Deleting,
    Error,
}

impl InstanceState {
    pub const ALL: [InstanceState; 8] = [
        InstanceState::Provisioning,
        InstanceState::Stopped,
        InstanceState::Starting,
        InstanceState::Running,
        InstanceState::Stopping,
        InstanceState::Rebooting,
        InstanceState::Deleting,
        InstanceState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        use InstanceState::*;
        match self {
            Provisioning => "Provisioning",
            Stopped => "Stopped",
            Starting => "Starting",
            Running => "Running",
            Stopping => "Stopping",
            Rebooting => "Rebooting",
            Deleting => "Deleting",
            Error => "Error",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceState> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::str::FromStr for InstanceState {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        InstanceState::parse(s).ok_or(())
    }
}

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = instances, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Instance {
    #[diesel(deserialize_as = Parsed<InstanceId>)]
    pub id: InstanceId,
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    pub organization_id: OrganizationId,
    pub name: String,
    #[diesel(deserialize_as = Parsed<InstanceState>)]
    pub state: InstanceState,
    pub cpu: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub image: String,
    #[diesel(deserialize_as = Parsed<DatacenterId>)]
    pub datacenter_id: DatacenterId,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Sizes an instance takes from its organization's quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub instances: i64,
    pub vcpus: i64,
    pub memory_mib: i64,
}

impl Usage {
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            instances: self.instances + other.instances,
            vcpus: self.vcpus + other.vcpus,
            memory_mib: self.memory_mib + other.memory_mib,
        }
    }

    pub fn minus(self, other: Usage) -> Usage {
        Usage {
            instances: self.instances - other.instances,
            vcpus: self.vcpus - other.vcpus,
            memory_mib: self.memory_mib - other.memory_mib,
        }
    }
}

/// An organization's limits; `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub instances: Option<i64>,
    pub vcpus: Option<i64>,
    pub memory_mib: Option<i64>,
}

impl Limits {
    /// The first limit `usage` goes over: (quota name, limit, usage).
    pub fn exceeded_by(&self, usage: Usage) -> Option<(&'static str, i64, i64)> {
        [
            ("instances", self.instances, usage.instances),
            ("vcpus", self.vcpus, usage.vcpus),
            ("memoryMiB", self.memory_mib, usage.memory_mib),
        ]
        .into_iter()
        .find_map(|(name, limit, used)| limit.filter(|l| used > *l).map(|l| (name, l, used)))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Quota {
    pub organization_id: OrganizationId,
    pub limits: Limits,
    pub usage: Usage,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// Does `extra` more fit within `limits`, with `used` already taken?
/// Growing over a limit is refused; shrinking under a lowered one is not.
/// `own` tells whether the limits are those of the organization the
/// instance is in, or of one above it.
fn fits(limits: &Limits, used: Usage, extra: Usage, own: bool) -> Result<()> {
    let after = used.plus(extra);
    if let Some((quota, limit, _)) = limits.exceeded_by(after) {
        let (used, requested) = match quota {
            "instances" => (used.instances, extra.instances),
            "vcpus" => (used.vcpus, extra.vcpus),
            _ => (used.memory_mib, extra.memory_mib),
        };
        if requested > 0 {
            return Err(quota_exceeded(quota, limit, used, requested, own));
        }
    }
    Ok(())
}

/// 400 (3004): `requested` more of `quota` would go over its limit. An
/// ancestor's limit and usage are not told: they would show a tenant what
/// its siblings use; only the room left is.
fn quota_exceeded(quota: &str, limit: i64, used: i64, requested: i64, own: bool) -> Error {
    let available = (limit - used).max(0);
    if own {
        Error::new(
            ErrorCode::QuotaExceeded,
            format!("The organization's {quota} quota would be exceeded"),
        )
        .with("quota", quota)
        .with("limitedBy", "organization")
        .with("limit", limit)
        .with("used", used)
        .with("available", available)
        .with("requested", requested)
    } else {
        Error::new(
            ErrorCode::QuotaExceeded,
            format!("The {quota} quota of an organization above this one would be exceeded"),
        )
        .with("quota", quota)
        .with("limitedBy", "ancestor")
        .with("available", available)
        .with("requested", requested)
    }
}

/// The quotas that bind instances of some organizations: each limited
/// organization among them and their ancestors, with its limits and the
/// usage of its whole subtree, and which of them bind each organization.
#[derive(Default)]
struct Room {
    limited: HashMap<OrganizationId, (Limits, Usage)>,
    binding: HashMap<OrganizationId, Vec<OrganizationId>>,
}

impl Room {
    /// Takes `extra` for an instance of `org` if it fits every quota that
    /// binds it, else the first refusal.
    fn take(&mut self, org: OrganizationId, extra: Usage) -> Result<()> {
        let Some(binding) = self.binding.get(&org) else {
            return Ok(());
        };
        for limited in binding {
            if let Some((limits, used)) = self.limited.get(limited) {
                fits(limits, *used, extra, *limited == org)?;
            }
        }
        for limited in binding {
            if let Some((_, used)) = self.limited.get_mut(limited) {
                *used = used.plus(extra);
            }
        }
        Ok(())
    }
}

/// The organizations with a limit among `$1` and its ancestors.
const LIMITED_ANCESTRY: &str = "WITH RECURSIVE up(id, parent_id) AS ( \
       SELECT id, parent_id FROM organizations WHERE id = $1 \
       UNION ALL \
       SELECT o.id, o.parent_id FROM organizations o JOIN up ON o.id = up.parent_id \
     ) SELECT q.organization_id FROM quotas q JOIN up ON q.organization_id = up.id \
     WHERE q.instances IS NOT NULL OR q.vcpus IS NOT NULL OR q.memory_mib IS NOT NULL";

/// On PostgreSQL, instance creates and resizes hold this advisory lock
/// shared and an organization move holds it exclusively, so that no
/// quota check reads an ancestry that a move is changing.
const TREE_LOCK: i64 = 7002;

#[derive(Debug, Clone)]
pub struct NewInstance {
    pub id: InstanceId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub cpu: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub image: String,
    pub datacenter_id: DatacenterId,
    pub now: DateTime<Utc>,
}

/// A new instance and the task that makes it, as accepted.
#[derive(Debug, Clone)]
pub struct Acceptance {
    pub instance: NewInstance,
    pub task: NewTask,
    pub idempotency: Option<IdempotencyKey>,
}

/// What an update of an instance changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct InstanceChanges {
    pub name: Option<String>,
    pub cpu: Option<i64>,
    pub memory_mib: Option<i64>,
}

impl InstanceChanges {
    fn resizes(&self) -> bool {
        self.cpu.is_some() || self.memory_mib.is_some()
    }
}

/// An operation to start on an existing instance: it must be in one of
/// `expected` and moves to `transitional` while the task runs.
#[derive(Debug, Clone)]
pub struct Transition<'a> {
    pub expected: &'a [InstanceState],
    pub transitional: InstanceState,
    /// The verb for the 2012 message ("start", "stop", …).
    pub verb: &'a str,
}

/// `?state=`, `?name=` of a list.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub state: Option<InstanceState>,
    pub name: Option<String>,
}

/// What an instance's change of state sets: the state, the time, the
/// next version.
macro_rules! state_change {
    ($state:expr, $at:expr) => {
        (
            instances::state.eq($state),
            instances::updated_at.eq($at),
            instances::version.eq(instances::version + 1),
        )
    };
}

/// The organizations with a limit among `org` and its ancestors.
async fn limited_ancestry(c: &mut Conn, org: OrganizationId) -> Result<Vec<OrganizationId>> {
    #[derive(QueryableByName)]
    struct Limited {
        #[diesel(sql_type = Text, deserialize_as = Parsed<OrganizationId>)]
        organization_id: OrganizationId,
    }
    let rows: Vec<Limited> =
        run!(c.load(diesel::sql_query(LIMITED_ANCESTRY).bind::<Text, _>(org.to_string())))?;
    Ok(rows.into_iter().map(|r| r.organization_id).collect())
}

async fn fetch_instance(c: &mut Conn, id: InstanceId) -> Result<Option<Instance>> {
    run!(c.optional_first(
        instances::table
            .find(id.to_string())
            .select(Instance::as_select())
    ))
}

/// The id of the unfinished task on `resource`, if any.
async fn active_task(c: &mut Conn, resource: &str) -> Result<Option<String>> {
    run!(c.optional_first(
        tasks::table
            .filter(tasks::active_resource.eq(resource))
            .select(tasks::id)
    ))
}

/// 409 (2013) naming the task that holds `resource`, if one does.
async fn refuse_while_busy(c: &mut Conn, resource_type: &str, resource: &str) -> Result<()> {
    match active_task(c, resource).await? {
        Some(task) => Err(busy(resource_type, resource, &task)),
        None => Ok(()),
    }
}

/// Reads the quotas that bind instances of `orgs` (their own and every
/// ancestor's, each with its subtree's usage) and locks their rows for
/// the rest of the transaction (PostgreSQL, in id order so that
/// concurrent transactions lock alike; SQLite's writer is alone anyway).
/// Two creates in sibling organizations thus queue on their parent's
/// quota, and the second counts the first.
async fn room(c: &mut Conn, orgs: &BTreeSet<OrganizationId>) -> Result<Room> {
    if let Conn::Pg(_) = c {
        run!(c.execute(
            diesel::sql_query("SELECT pg_advisory_xact_lock_shared($1)")
                .bind::<BigInt, _>(TREE_LOCK)
        ))?;
    }
    let mut room = Room::default();
    for org in orgs {
        let binding = limited_ancestry(c, *org).await?;
        if !binding.is_empty() {
            room.binding.insert(*org, binding);
        }
    }
    let limited: BTreeSet<String> = room
        .binding
        .values()
        .flatten()
        .map(ToString::to_string)
        .collect();
    if limited.is_empty() {
        return Ok(room);
    }
    type LimitRow = (
        Parsed<OrganizationId>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
    );
    macro_rules! limits {
        () => {
            quotas::table
                .filter(quotas::organization_id.eq_any(&limited))
                .order(quotas::organization_id)
                .select((
                    quotas::organization_id,
                    quotas::instances,
                    quotas::vcpus,
                    quotas::memory_mib,
                ))
        };
    }
    let rows: Vec<LimitRow> = match c {
        Conn::Sqlite(c) => diesel::RunQueryDsl::load(limits!(), c),
        Conn::Pg(c) => diesel_async::RunQueryDsl::load(limits!().for_update(), &mut **c).await,
    }
    .map_err(db_error)?;
    for (Parsed(id), instances, vcpus, memory_mib) in rows {
        let usage = usage_in(c, id).await?;
        let limits = Limits {
            instances,
            vcpus,
            memory_mib,
        };
        room.limited.insert(id, (limits, usage));
    }
    Ok(room)
}

/// Puts an instance back in `restore`, or removes it when there is
/// nothing to go back to (a creation undone). Idempotent.
async fn settle_instance(
    c: &mut Conn,
    id: InstanceId,
    restore: Option<InstanceState>,
    now: DateTime<Utc>,
) -> Result<()> {
    match restore {
        Some(state) => run!(c.execute(
            diesel::update(
                instances::table
                    .find(id.to_string())
                    .filter(instances::state.ne(state.as_str()))
            )
            .set(state_change!(state.as_str(), to_micros(now)))
        )),
        None => run!(c.execute(diesel::delete(instances::table.find(id.to_string())))),
    }?;
    Ok(())
}

fn busy(resource_type: &str, resource: &str, task: &str) -> Error {
    Error::new(
        ErrorCode::OperationInProgress,
        "Another operation is in progress on this resource",
    )
    .with("type", resource_type)
    .with("id", resource)
    .with("taskId", task)
}

/// 409 (2012) with the state found and the states the operation needs.
pub fn wrong_state(
    id: InstanceId,
    verb: &str,
    current: InstanceState,
    expected: &[InstanceState],
) -> Error {
    let names: Vec<&str> = expected.iter().map(|s| s.as_str()).collect();
    let wanted = match names.as_slice() {
        [one] => format!("the {} state", one.to_lowercase()),
        many => format!("one of the states {}", many.join(", ")),
    };
    Error::wrong_state(
        TYPE,
        id,
        format!("Cannot {verb} an instance that isn't in {wanted}"),
    )
    .with("currentState", current.as_str())
    .with("expectedStates", names)
}

impl Store {
    /// Puts an instance back in `restore`, or removes it when there is
    /// nothing to go back to (a creation undone). Idempotent.
    pub async fn settle_instance(
        &self,
        id: InstanceId,
        restore: Option<InstanceState>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        self.write(job!(|c| { settle_instance(c, id, restore, now).await }))
            .await
    }

    /// Cancels task `id` on `instance` before any node has started it: it
    /// ends FAILED with `error` and the instance is settled back in
    /// `restore`, in one transaction. `None` when the task is no longer
    /// waiting.
    pub async fn cancel_instance_task(
        &self,
        id: TaskId,
        instance: InstanceId,
        restore: Option<InstanceState>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        let error = error.to_owned();
        self.write(job!(|c| {
            let Some(task) = cancel_in(c, id, &error, now).await? else {
                return Ok(None);
            };
            settle_instance(c, instance, restore, now).await?;
            Ok(Some(task))
        }))
        .await
    }

    /// Records new instances (`Provisioning`) and queues the tasks that
    /// make them, in one transaction of a few statements however many
    /// there are. Each must fit in its organization's quota, counting the
    /// ones before it; one that does not is refused on its own.
    pub async fn create_instances(&self, batch: &[Acceptance]) -> Result<Vec<Result<()>>> {
        let batch = batch.to_vec();
        self.write(job!(|c| {
            let orgs: BTreeSet<OrganizationId> =
                batch.iter().map(|a| a.instance.organization_id).collect();
            let mut room = room(c, &orgs).await?;
            let mut answers = Vec::with_capacity(batch.len());
            let mut accepted = Vec::with_capacity(batch.len());
            for a in &batch {
                let new = &a.instance;
                let extra = Usage {
                    instances: 1,
                    vcpus: new.cpu,
                    memory_mib: new.memory_mib,
                };
                let answer = room.take(new.organization_id, extra);
                if answer.is_ok() {
                    accepted.push(a);
                }
                answers.push(answer);
            }
            if accepted.is_empty() {
                return Ok(answers);
            }
            let rows: Vec<_> = accepted
                .iter()
                .map(|a| {
                    let new = &a.instance;
                    let at = to_micros(new.now);
                    (
                        instances::id.eq(new.id.to_string()),
                        instances::organization_id.eq(new.organization_id.to_string()),
                        instances::name.eq(&new.name),
                        instances::state.eq(InstanceState::Provisioning.as_str()),
                        instances::cpu.eq(new.cpu),
                        instances::memory_mib.eq(new.memory_mib),
                        instances::disk_gib.eq(new.disk_gib),
                        instances::image.eq(&new.image),
                        instances::datacenter_id.eq(new.datacenter_id.to_string()),
                        instances::created_at.eq(at),
                        instances::updated_at.eq(at),
                        instances::version.eq(1),
                    )
                })
                .collect();
            run!(c.execute(diesel::insert_into(instances::table).values(&rows)))?;
            // The resources are new: no other task can be active on them.
            let tasks: Vec<_> = accepted.iter().map(|a| new_task_row(&a.task)).collect();
            run!(c.execute(diesel::insert_into(tasks::table).values(&tasks)))?;
            for a in &accepted {
                record_task(c, a.idempotency.as_ref(), a.task.id).await?;
            }
            Ok(answers)
        }))
        .await
    }

    /// Starts an operation on an instance: 2013 while another runs on it,
    /// 2012 when its state is not one the operation needs; otherwise the
    /// instance takes the transitional state and the task is queued (with
    /// the state found as the one to restore if it fails), in one
    /// transaction.
    pub async fn begin_instance_operation(
        &self,
        id: InstanceId,
        transition: &Transition<'_>,
        precondition: &Precondition,
        mut task: NewTask,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<Task> {
        let (expected, transitional, verb) = (
            transition.expected.to_vec(),
            transition.transitional,
            transition.verb.to_owned(),
        );
        let (precondition, idempotency) = (precondition.clone(), idempotency.cloned());
        let begun = self
            .write(job!(|c| {
                let instance = fetch_instance(c, id)
                    .await?
                    .ok_or_else(|| Error::not_found(TYPE, id))?;
                precondition.check(instance.version)?;
                refuse_while_busy(c, TYPE, &id.to_string()).await?;
                if !expected.contains(&instance.state) {
                    return Err(wrong_state(id, &verb, instance.state, &expected));
                }
                task.input = serde_json::json!({ "restore": instance.state.as_str() }).to_string();
                run!(c.execute(
                    diesel::update(instances::table.find(id.to_string()))
                        .set(state_change!(transitional.as_str(), to_micros(task.now)))
                ))?;
                if !insert_task(c, &task).await? {
                    // Another node queued a task on it between the check
                    // and the insert: named below, once this is undone.
                    return Err(busy(TYPE, &id.to_string(), ""));
                }
                record_task(c, idempotency.as_ref(), task.id).await?;
                Ok(task.queued())
            }))
            .await;
        match begun {
            Err(e) if raced(&e) => {
                let mut c = self.door.reader().await?;
                let running = active_task(&mut c, &id.to_string()).await?;
                Err(busy(TYPE, &id.to_string(), &running.unwrap_or_default()))
            }
            begun => begun,
        }
    }

    pub async fn get_instance(&self, id: InstanceId) -> Result<Option<Instance>> {
        let mut c = self.door.reader().await?;
        fetch_instance(&mut c, id).await
    }

    /// The organization's instances by id, filtered.
    pub async fn list_instances(
        &self,
        org: OrganizationId,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<Page<Instance>> {
        // Every id is after the empty text.
        let after = page.after.clone().unwrap_or_default();
        let limit = i64::from(page.limit) + 1;
        macro_rules! page {
            () => {
                instances::table
                    .select(Instance::as_select())
                    .filter(instances::organization_id.eq(org.to_string()))
                    .filter(instances::id.gt(&after))
                    .order(instances::id)
                    .limit(limit)
            };
        }
        // One statement per combination of filters, each prepared once
        // (an `IN` list of states would be prepared again every time).
        let mut c = self.door.reader().await?;
        let items = match (filter.state.map(InstanceState::as_str), &filter.name) {
            (None, None) => run!(c.load(page!())),
            (Some(state), None) => run!(c.load(page!().filter(instances::state.eq(state)))),
            (None, Some(name)) => run!(c.load(page!().filter(instances::name.eq(name)))),
            (Some(state), Some(name)) => run!(c.load(
                page!()
                    .filter(instances::state.eq(state))
                    .filter(instances::name.eq(name))
            )),
        }?;
        Ok(Page::from_rows(items, page.limit, |i| i.id.to_string()))
    }

    /// Renames an instance (any time) or resizes it (only `Stopped`, with
    /// no task on it, within the quota).
    pub async fn update_instance(
        &self,
        id: InstanceId,
        changes: &InstanceChanges,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<Instance> {
        let (changes, precondition) = (changes.clone(), precondition.clone());
        self.write(job!(|c| {
            let Some(mut instance) = fetch_instance(c, id).await? else {
                return Err(Error::not_found(TYPE, id));
            };
            precondition.check(instance.version)?;
            if changes.resizes() {
                refuse_while_busy(c, TYPE, &id.to_string()).await?;
                if instance.state != InstanceState::Stopped {
                    return Err(wrong_state(
                        id,
                        "resize",
                        instance.state,
                        &[InstanceState::Stopped],
                    ));
                }
                let cpu = changes.cpu.unwrap_or(instance.cpu);
                let memory = changes.memory_mib.unwrap_or(instance.memory_mib);
                let org = instance.organization_id;
                room(c, &BTreeSet::from([org])).await?.take(
                    org,
                    Usage {
                        instances: 0,
                        vcpus: cpu - instance.cpu,
                        memory_mib: memory - instance.memory_mib,
                    },
                )?;
                instance.cpu = cpu;
                instance.memory_mib = memory;
            }
            if let Some(name) = &changes.name {
                instance.name = name.clone();
            }
            instance.updated_at = now;
            instance.version += 1;
            run!(
                c.execute(diesel::update(instances::table.find(id.to_string())).set((
                    instances::name.eq(&instance.name),
                    instances::cpu.eq(instance.cpu),
                    instances::memory_mib.eq(instance.memory_mib),
                    instances::updated_at.eq(to_micros(now)),
                    instances::version.eq(instance.version),
                )))
            )?;
            Ok(instance)
        }))
        .await
    }

    /// Sets instances' states (task steps: idempotent), in one
    /// transaction. Each answer is the instance as it now is, or `None`
    /// when it is gone: a task's last step takes its result from here
    /// instead of reading the instance again.
    pub async fn set_instance_states(
        &self,
        batch: &[(InstanceId, InstanceState, DateTime<Utc>)],
    ) -> Result<Vec<Option<Instance>>> {
        let batch = batch.to_vec();
        let ids: Vec<InstanceId> = batch.iter().map(|(id, _, _)| *id).collect();
        let found: HashMap<InstanceId, Instance> = self
            .write(job!(|c| {
                let changes = || {
                    let rows = batch
                        .iter()
                        .map(|(id, state, now)| {
                            vec![
                                id.to_string().into(),
                                state.as_str().into(),
                                to_micros(*now).into(),
                            ]
                        })
                        .collect();
                    Statement::with_rows("j", &["j_id", "j_state", "j_at"], rows)
                };
                let mut found: Vec<Instance> = changes()
                    .sql(
                        "UPDATE instances SET state = j_state, updated_at = j_at, \
                         version = version + 1 FROM j WHERE id = j_id AND state <> j_state \
                         RETURNING *",
                    )
                    .load(c)
                    .await?;
                if found.len() < batch.len() {
                    // Those already in their state (a step run again) exist
                    // too.
                    found.extend(
                        changes()
                            .sql(
                                "SELECT instances.* FROM instances JOIN j ON id = j_id \
                                 WHERE state = j_state",
                            )
                            .load::<Instance>(c)
                            .await?,
                    );
                }
                Ok(found.into_iter().map(|i| (i.id, i)).collect())
            }))
            .await?;
        Ok(ids.iter().map(|id| found.get(id).cloned()).collect())
    }

    /// Moves an instance from `from` to `to` only if it is still in
    /// `from`: a reconciliation never overwrites what a task just wrote.
    pub async fn reconcile_instance_state(
        &self,
        id: InstanceId,
        from: InstanceState,
        to: InstanceState,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        self.write(job!(|c| {
            let done = run!(c.execute(
                diesel::update(
                    instances::table
                        .find(id.to_string())
                        .filter(instances::state.eq(from.as_str()))
                )
                .set(state_change!(to.as_str(), to_micros(now)))
            ))?;
            Ok(done == 1)
        }))
        .await
    }

    /// Every instance in `state`, whatever its organization (for the
    /// driver's reconciliation).
    pub async fn instance_ids_in_state(&self, state: InstanceState) -> Result<Vec<InstanceId>> {
        let mut c = self.door.reader().await?;
        let ids: Vec<Parsed<InstanceId>> = run!(c.load(
            instances::table
                .filter(instances::state.eq(state.as_str()))
                .select(instances::id)
        ))?;
        Ok(ids.into_iter().map(|Parsed(id)| id).collect())
    }

    /// Removes an instance's record (a task step: idempotent).
    pub async fn remove_instance(&self, id: InstanceId) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(diesel::delete(instances::table.find(id.to_string()))))?;
            Ok(())
        }))
        .await
    }

    /// An organization's limits and what the instances of its subtree use
    /// of them.
    pub async fn quota(&self, org: OrganizationId) -> Result<Quota> {
        let mut c = self.door.reader().await?;
        let row: Option<QuotaRow> =
            run!(c.optional_first(quotas::table.find(org.to_string()).select(QUOTA_ROW)))?;
        let usage = usage_in(&mut c, org).await?;
        Ok(quota_of(org, row, usage))
    }

    /// Sets an organization's limits (the app layer checks them against
    /// the room its ancestors leave).
    pub async fn set_quota(
        &self,
        org: OrganizationId,
        limits: Limits,
        precondition: &Precondition,
        now: DateTime<Utc>,
    ) -> Result<Quota> {
        let precondition = precondition.clone();
        self.write(job!(|c| {
            let version: Option<i64> = run!(
                c.optional_first(quotas::table.find(org.to_string()).select(quotas::version))
            )?;
            precondition.check(version.unwrap_or(0))?;
            let next = version.unwrap_or(0) + 1;
            let set = (
                quotas::instances.eq(limits.instances),
                quotas::vcpus.eq(limits.vcpus),
                quotas::memory_mib.eq(limits.memory_mib),
                quotas::updated_at.eq(to_micros(now)),
                quotas::version.eq(next),
            );
            run!(c.execute(
                diesel::insert_into(quotas::table)
                    .values((quotas::organization_id.eq(org.to_string()), set))
                    .on_conflict(quotas::organization_id)
                    .do_update()
                    .set(set)
            ))?;
            let usage = usage_in(c, org).await?;
            Ok(Quota {
                organization_id: org,
                limits,
                usage,
                updated_at: Some(now),
                version: next,
            })
        }))
        .await
    }
}

/// Was this the refusal of a task queued on a resource another task took
/// between the check and the insert (see `begin_instance_operation`)?
fn raced(e: &Error) -> bool {
    e.code() == ErrorCode::OperationInProgress
        && e.details()
            .first()
            .and_then(|d| d.context.get("taskId"))
            .is_some_and(|task| task == "")
}

/// A `quotas` row: its limits, when it changed, its version.
type QuotaRow = (Option<i64>, Option<i64>, Option<i64>, Micros, i64);

const QUOTA_ROW: (
    quotas::instances,
    quotas::vcpus,
    quotas::memory_mib,
    quotas::updated_at,
    quotas::version,
) = (
    quotas::instances,
    quotas::vcpus,
    quotas::memory_mib,
    quotas::updated_at,
    quotas::version,
);

fn quota_of(org: OrganizationId, row: Option<QuotaRow>, usage: Usage) -> Quota {
    match row {
        Some((instances, vcpus, memory_mib, Micros(updated_at), version)) => Quota {
            organization_id: org,
            limits: Limits {
                instances,
                vcpus,
                memory_mib,
            },
            usage,
            updated_at: Some(updated_at),
            version,
        },
        None => Quota {
            organization_id: org,
            limits: Limits::default(),
            usage,
            updated_at: None,
            version: 0,
        },
    }
}

/// What instances use: their count, vCPUs and memory.
const USAGE: &str = "count(*), CAST(COALESCE(SUM(cpu), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT)";

/// Checks, in an organization move's transaction, that the instances
/// of `org`'s subtree fit in the quota of every organization they
/// come under below `new_parent`. Holds the tree lock exclusively for
/// the rest of the transaction (PostgreSQL), so no create or resize
/// checks a quota against the ancestry being changed.
pub(crate) async fn check_move(
    c: &mut Conn,
    org: OrganizationId,
    new_parent: OrganizationId,
) -> Result<()> {
    if matches!(c, Conn::Pg(_)) {
        run!(c.execute(
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)").bind::<BigInt, _>(TREE_LOCK)
        ))?;
    }
    let moved = usage_in(c, org).await?;
    if moved == Usage::default() {
        return Ok(());
    }
    let before = limited_ancestry(c, org).await?;
    let after = limited_ancestry(c, new_parent).await?;
    for id in after.into_iter().filter(|a| !before.contains(a)) {
        let (instances, vcpus, memory_mib) =
            run!(c.get_result(quotas::table.find(id.to_string()).select((
                quotas::instances,
                quotas::vcpus,
                quotas::memory_mib
            ))))?;
        let limits = Limits {
            instances,
            vcpus,
            memory_mib,
        };
        let used = usage_in(c, id).await?;
        fits(&limits, used, moved, false)?;
    }
    Ok(())
}

/// What the instances of `org`'s subtree use.
async fn usage_in(c: &mut Conn, org: OrganizationId) -> Result<Usage> {
    let (instances, vcpus, memory_mib) = run!(c.get_result(
        instances::table
            .filter(crate::organizations::in_subtree(
                "instances.organization_id",
                org.to_string()
            ))
            .select(diesel::dsl::sql::<(BigInt, BigInt, BigInt)>(USAGE))
    ))?;
    Ok(Usage {
        instances,
        vcpus,
        memory_mib,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_parse_back() {
        for s in InstanceState::ALL {
            assert_eq!(InstanceState::parse(s.as_str()), Some(s));
        }
        assert_eq!(InstanceState::parse("running"), None);
    }

    #[test]
    fn the_first_limit_exceeded_is_named() {
        let limits = Limits {
            instances: Some(2),
            vcpus: Some(4),
            memory_mib: None,
        };
        let ok = Usage {
            instances: 2,
            vcpus: 4,
            memory_mib: 1 << 40,
        };
        assert_eq!(limits.exceeded_by(ok), None);
        let over = Usage { vcpus: 5, ..ok };
        assert_eq!(limits.exceeded_by(over), Some(("vcpus", 4, 5)));
    }
}
