//! Instances and their quotas. An operation on an instance is accepted in
//! one transaction that checks the instance's state, moves it to the
//! operation's transitional state and queues the task (see `tasks`).

use crate::db::{col, col_id, col_time, db_error, from_json_row, parse_id, Backend, JsonType};
use crate::door::{db_error as door_error, run, Conn};
use crate::idempotency::{record_task, IdempotencyKey};
use crate::tasks::{cancel_in, insert_task, NewTask, Task};
use crate::write::{Arg, WriteTx};
use crate::Store;
use chrono::{DateTime, Utc};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{DatacenterId, InstanceId, OrganizationId, TaskId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, ErrorCode, Precondition, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

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

impl std::fmt::Display for InstanceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub id: InstanceId,
    pub organization_id: OrganizationId,
    pub name: String,
    pub state: InstanceState,
    pub cpu: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub image: String,
    pub datacenter_id: DatacenterId,
    pub created_at: DateTime<Utc>,
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

/// `select` over the instances of `$1`'s subtree.
fn subtree_usage_sql(select: &str) -> String {
    format!(
        "WITH RECURSIVE sub(id) AS ( \
           SELECT id FROM organizations WHERE id = $1 \
           UNION ALL \
           SELECT o.id FROM organizations o JOIN sub ON o.parent_id = sub.id \
         ) SELECT {select} FROM instances WHERE organization_id IN (SELECT id FROM sub)"
    )
}

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

const COLUMNS: &str = "id, organization_id, name, state, cpu, memory_mib, disk_gib, image, \
                       datacenter_id, created_at, updated_at, version";

fn instance_from_row(r: &AnyRow) -> Result<Instance> {
    let state: String = col(r, "state")?;
    Ok(Instance {
        id: col_id(r, "id")?,
        organization_id: col_id(r, "organization_id")?,
        name: col(r, "name")?,
        state: InstanceState::parse(&state)
            .ok_or_else(|| Error::internal(format!("corrupt instance state {state:?}")))?,
        cpu: col(r, "cpu")?,
        memory_mib: col(r, "memory_mib")?,
        disk_gib: col(r, "disk_gib")?,
        image: col(r, "image")?,
        datacenter_id: col_id(r, "datacenter_id")?,
        created_at: col_time(r, "created_at")?,
        updated_at: col_time(r, "updated_at")?,
        version: col(r, "version")?,
    })
}

/// A page from SQLite's `json_group_array(json_array(COLUMNS))`, in id
/// order.
fn instances_from_json(text: &str) -> Result<Vec<Instance>> {
    type Row = (
        String,
        String,
        String,
        String,
        i64,
        i64,
        i64,
        String,
        String,
        i64,
        i64,
        i64,
    );
    let rows: Vec<Row> = serde_json::from_str(text)
        .map_err(|e| Error::internal(format!("corrupt instance page: {e}")))?;
    let mut items = rows
        .into_iter()
        .map(|r| {
            Ok(Instance {
                id: parse_id(&r.0)?,
                organization_id: parse_id(&r.1)?,
                name: r.2,
                state: InstanceState::parse(&r.3)
                    .ok_or_else(|| Error::internal(format!("corrupt instance state {:?}", r.3)))?,
                cpu: r.4,
                memory_mib: r.5,
                disk_gib: r.6,
                image: r.7,
                datacenter_id: parse_id(&r.8)?,
                created_at: from_micros(r.9),
                updated_at: from_micros(r.10),
                version: r.11,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    // An aggregate's input order is SQLite's habit, not its promise.
    items.sort_by_key(|i| i.id);
    Ok(items)
}

/// Instances from rows of [`Store::json_array_sql`] of [`COLUMNS`], in id
/// order.
fn instances_from_rows(rows: &[String]) -> Result<Vec<Instance>> {
    instances_from_json(&format!("[{}]", rows.join(",")))
}

async fn fetch_instance(
    store: &Store,
    tx: &mut WriteTx,
    id: InstanceId,
) -> Result<Option<Instance>> {
    let found = tx
        .texts(
            &format!(
                "SELECT {} FROM instances WHERE id = $1",
                store.json_array_sql(COLUMNS)
            ),
            &[Arg::Text(&id.to_string())],
        )
        .await?;
    Ok(instances_from_rows(&found)?.pop())
}

/// The id of the unfinished task on `resource`, if any.
async fn active_task<'c, E>(executor: E, resource: &str) -> Result<Option<String>>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    sqlx::query_scalar("SELECT id FROM tasks WHERE active_resource = $1")
        .bind(resource)
        .fetch_optional(executor)
        .await
        .map_err(db_error)
}

/// 409 (2013) naming the task that holds `resource`, if one does.
async fn refuse_while_busy(tx: &mut WriteTx, resource_type: &str, resource: &str) -> Result<()> {
    let found = tx
        .texts(
            "SELECT id FROM tasks WHERE active_resource = $1",
            &[Arg::Text(resource)],
        )
        .await?;
    match found.first() {
        Some(task) => Err(busy(resource_type, resource, task)),
        None => Ok(()),
    }
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
        let mut tx = self.write.begin().await.map_err(db_error)?;
        settle_instance(&mut tx, id, restore, now).await?;
        tx.commit().await.map_err(db_error)
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
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let Some(task) = cancel_in(&mut tx, id, error, now).await? else {
            return Ok(None);
        };
        settle_instance(&mut tx, instance, restore, now).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Some(task))
    }
    /// Reads the quotas that bind instances of `orgs` — their own and
    /// every ancestor's, each with its subtree's usage — and locks their
    /// rows for the rest of the transaction (PostgreSQL, in id order so
    /// that concurrent transactions lock alike; SQLite's writer is alone
    /// anyway). Two creates in sibling organizations thus queue on their
    /// parent's quota, and the second counts the first.
    async fn room(&self, tx: &mut WriteTx, orgs: &BTreeSet<OrganizationId>) -> Result<Room> {
        let lock = match self.backend() {
            Backend::Postgres => {
                tx.execute(
                    "SELECT pg_advisory_xact_lock_shared($1)",
                    &[Arg::Int(TREE_LOCK)],
                )
                .await?;
                " FOR UPDATE"
            }
            Backend::Sqlite => "",
        };
        let mut room = Room::default();
        for org in orgs {
            let binding = tx
                .texts(LIMITED_ANCESTRY, &[Arg::Text(&org.to_string())])
                .await?
                .iter()
                .map(|id| parse_id(id))
                .collect::<Result<Vec<OrganizationId>>>()?;
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
        let placeholders: Vec<String> = (1..=limited.len()).map(|i| format!("${i}")).collect();
        let args: Vec<Arg> = limited.iter().map(|id| Arg::Text(id)).collect();
        let rows = tx
            .texts(
                &format!(
                    "SELECT {} FROM quotas WHERE organization_id IN ({}) \
                     ORDER BY organization_id{lock}",
                    self.json_array_sql("organization_id, instances, vcpus, memory_mib"),
                    placeholders.join(", ")
                ),
                &args,
            )
            .await?;
        let usage_sql = subtree_usage_sql(&self.json_array_sql(USAGE));
        for row in rows {
            let (id, instances, vcpus, memory_mib): (String, _, _, _) = from_json_row(&row)?;
            let usage: (i64, i64, i64) = from_json_row(
                tx.texts(&usage_sql, &[Arg::Text(&id)])
                    .await?
                    .first()
                    .map_or("", String::as_str),
            )?;
            room.limited.insert(
                parse_id(&id)?,
                (
                    Limits {
                        instances,
                        vcpus,
                        memory_mib,
                    },
                    Usage {
                        instances: usage.0,
                        vcpus: usage.1,
                        memory_mib: usage.2,
                    },
                ),
            );
        }
        Ok(room)
    }

    /// Records new instances (`Provisioning`) and queues the tasks that
    /// make them, in one transaction of a few statements however many
    /// there are. Each must fit in its organization's quota, counting the
    /// ones before it; one that does not is refused on its own.
    pub async fn create_instances(&self, batch: &[Acceptance]) -> Result<Vec<Result<()>>> {
        use JsonType::{Integer, Text};
        let mut tx = self.begin_write().await?;
        let orgs: BTreeSet<OrganizationId> =
            batch.iter().map(|a| a.instance.organization_id).collect();
        let mut room = self.room(&mut tx, &orgs).await?;
        let mut answers = Vec::with_capacity(batch.len());
        let mut accepted = Vec::with_capacity(batch.len());
        for a in batch {
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
                let (new, task) = (&a.instance, &a.task);
                serde_json::json!({
                    "id": new.id.to_string(),
                    "organization_id": new.organization_id.to_string(),
                    "name": new.name,
                    "cpu": new.cpu,
                    "memory_mib": new.memory_mib,
                    "disk_gib": new.disk_gib,
                    "image": new.image,
                    "datacenter_id": new.datacenter_id.to_string(),
                    "at": to_micros(new.now),
                    "task_id": task.id.to_string(),
                    "task_organization_id": task.organization_id.to_string(),
                    "operation": task.operation,
                    "resource_type": task.resource_type,
                    "resource_id": task.resource_id,
                    "agent_id": task.agent_id,
                    "input": task.input,
                    "task_at": to_micros(task.now),
                    "status": task.status().as_str(),
                    "owner": task.owner.map(|o| o.to_string()),
                    "started_at": task.started_at().map(to_micros),
                    "scope": a.idempotency.as_ref().map(|k| &k.scope),
                    "idempotency_key": a.idempotency.as_ref().map(|k| &k.key),
                })
            })
            .collect();
        let instances = tx.rows(
            "j",
            &[
                ("id", Text),
                ("organization_id", Text),
                ("name", Text),
                ("cpu", Integer),
                ("memory_mib", Integer),
                ("disk_gib", Integer),
                ("image", Text),
                ("datacenter_id", Text),
                ("at", Integer),
            ],
            &rows,
        );
        tx.execute(
            &format!(
                "INSERT INTO instances (id, organization_id, name, state, cpu, memory_mib, \
                 disk_gib, image, datacenter_id, created_at, updated_at, version) \
                 SELECT id, organization_id, name, 'Provisioning', cpu, memory_mib, disk_gib, \
                 image, datacenter_id, at, at, 1 FROM {instances}"
            ),
            &[Arg::Rows(&instances)],
        )
        .await?;
        let tasks = instances.table(
            "j",
            &[
                ("task_id", Text),
                ("task_organization_id", Text),
                ("operation", Text),
                ("resource_type", Text),
                ("resource_id", Text),
                ("agent_id", Text),
                ("input", Text),
                ("task_at", Integer),
                ("status", Text),
                ("owner", Text),
                ("started_at", Integer),
            ],
        );
        // The resources are new: no other task can be active on them.
        tx.execute(
            &format!(
                "INSERT INTO tasks (id, organization_id, operation, resource_type, resource_id, \
                 active_resource, agent_id, status, progress, step, unwinding, input, \
                 created_at, owner, started_at) \
                 SELECT task_id, task_organization_id, operation, resource_type, resource_id, \
                 resource_id, agent_id, status, 0, 0, 0, input, task_at, owner, started_at \
                 FROM {tasks}"
            ),
            &[Arg::Rows(&tasks)],
        )
        .await?;
        if accepted.iter().any(|a| a.idempotency.is_some()) {
            let j = instances.table(
                "j",
                &[
                    ("task_id", Text),
                    ("scope", Text),
                    ("idempotency_key", Text),
                ],
            );
            tx.execute(
                &format!(
                    "UPDATE idempotency_keys SET task_id = j.task_id FROM {j} \
                     WHERE idempotency_keys.scope = j.scope \
                     AND idempotency_keys.key = j.idempotency_key"
                ),
                &[Arg::Rows(&j)],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(answers)
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
        let mut tx = self.begin_write().await?;
        let instance = fetch_instance(self, &mut tx, id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        precondition.check(instance.version)?;
        refuse_while_busy(&mut tx, TYPE, &id.to_string()).await?;
        if !transition.expected.contains(&instance.state) {
            return Err(wrong_state(
                id,
                transition.verb,
                instance.state,
                transition.expected,
            ));
        }
        task.input = serde_json::json!({ "restore": instance.state.as_str() }).to_string();
        tx.execute(
            "UPDATE instances SET state = $1, updated_at = $2, version = version + 1 \
             WHERE id = $3",
            &[
                Arg::Text(transition.transitional.as_str()),
                Arg::Int(to_micros(task.now)),
                Arg::Text(&id.to_string()),
            ],
        )
        .await?;
        if !insert_task(&mut tx, &task).await? {
            // Another node queued a task on it between our check and insert.
            drop(tx);
            let running = active_task(&self.read, &id.to_string()).await?;
            return Err(busy(TYPE, &id.to_string(), &running.unwrap_or_default()));
        }
        record_task(&mut tx, idempotency, &task.id.to_string()).await?;
        tx.commit().await?;
        Ok(task.queued())
    }

    pub async fn get_instance(&self, id: InstanceId) -> Result<Option<Instance>> {
        if let Some(local) = &self.local {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "SELECT json_group_array(json_array({COLUMNS})) FROM instances WHERE id = $1"
                )
            });
            return match local.text(&SQL, &id.to_string())? {
                Some(page) => Ok(instances_from_json(&page)?.pop()),
                None => Ok(None),
            };
        }
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM instances WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(instance_from_row).transpose()
    }

    /// The organization's instances by id, filtered.
    pub async fn list_instances(
        &self,
        org: OrganizationId,
        filter: &InstanceFilter,
        page: &PageRequest,
    ) -> Result<Page<Instance>> {
        let mut sql = format!("SELECT {COLUMNS} FROM instances WHERE organization_id = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        if filter.state.is_some() {
            sql.push_str(&format!(" AND state = ${}", next()));
        }
        if filter.name.is_some() {
            sql.push_str(&format!(" AND name = ${}", next()));
        }
        if page.after.is_some() {
            sql.push_str(&format!(" AND id > ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY id LIMIT ${}", next()));
        if self.backend() == Backend::Sqlite {
            // The page as one JSON value in one row. sqlx hands each row
            // over from its SQLite thread on its own, and for a page of a
            // hundred those handovers were most of the time a list took
            // (perf: thread switches).
            sql = format!("SELECT json_group_array(json_array({COLUMNS})) AS page FROM ({sql})");
        }
        let mut query = sqlx::query(&sql).bind(org.to_string());
        if let Some(state) = filter.state {
            query = query.bind(state.as_str());
        }
        if let Some(name) = &filter.name {
            query = query.bind(name.clone());
        }
        if let Some(after) = &page.after {
            query = query.bind(after.clone());
        }
        let query = query.bind(i64::from(page.limit) + 1);
        let items = match self.backend() {
            Backend::Postgres => query
                .fetch_all(&self.read)
                .await
                .map_err(db_error)?
                .iter()
                .map(instance_from_row)
                .collect::<Result<Vec<_>>>()?,
            Backend::Sqlite => {
                let row = query.fetch_one(&self.read).await.map_err(db_error)?;
                instances_from_json(&col::<String>(&row, "page")?)?
            }
        };
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
        let mut tx = self.begin_write().await?;
        let Some(mut instance) = fetch_instance(self, &mut tx, id).await? else {
            return Err(Error::not_found(TYPE, id));
        };
        precondition.check(instance.version)?;
        if changes.resizes() {
            refuse_while_busy(&mut tx, TYPE, &id.to_string()).await?;
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
            self.room(&mut tx, &BTreeSet::from([org])).await?.take(
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
        tx.execute(
            "UPDATE instances SET name = $1, cpu = $2, memory_mib = $3, updated_at = $4, \
             version = $5 WHERE id = $6",
            &[
                Arg::Text(&instance.name),
                Arg::Int(instance.cpu),
                Arg::Int(instance.memory_mib),
                Arg::Int(to_micros(now)),
                Arg::Int(instance.version),
                Arg::Text(&id.to_string()),
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(instance)
    }

    /// Sets instances' states (task steps: idempotent), in one statement
    /// (two when some already had theirs). Each answer is the instance as
    /// it now is, or `None` when it is gone: a task's last step takes its
    /// result from here instead of reading the instance again.
    pub async fn set_instance_states(
        &self,
        batch: &[(InstanceId, InstanceState, DateTime<Utc>)],
    ) -> Result<Vec<Option<Instance>>> {
        use JsonType::{Integer, Text};
        let rows: Vec<_> = batch
            .iter()
            .map(|(id, state, now)| {
                serde_json::json!({
                    "id": id.to_string(),
                    "state": state.as_str(),
                    "at": to_micros(*now),
                })
            })
            .collect();
        // Qualified, since `j` has columns of the same names.
        let columns = self.json_array_sql(
            &COLUMNS
                .split(", ")
                .map(|c| format!("instances.{c}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        let mut tx = self.begin_write().await?;
        let j = tx.rows(
            "j",
            &[("id", Text), ("state", Text), ("at", Integer)],
            &rows,
        );
        let mut found = tx
            .texts(
                &format!(
                    "UPDATE instances SET state = j.state, updated_at = j.at, \
                     version = version + 1 FROM {j} \
                     WHERE instances.id = j.id AND instances.state <> j.state \
                     RETURNING {columns}"
                ),
                &[Arg::Rows(&j)],
            )
            .await?;
        if found.len() < batch.len() {
            // Those already in their state (a step run again) exist too.
            found.extend(
                tx.texts(
                    &format!(
                        "SELECT {columns} FROM instances JOIN {j} ON instances.id = j.id \
                         WHERE instances.state = j.state"
                    ),
                    &[Arg::Rows(&j)],
                )
                .await?,
            );
        }
        tx.commit().await?;
        let found = instances_from_rows(&found)?
            .into_iter()
            .map(|i| (i.id, i))
            .collect::<HashMap<_, _>>();
        Ok(batch
            .iter()
            .map(|(id, _, _)| found.get(id).cloned())
            .collect())
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
        let done = sqlx::query(
            "UPDATE instances SET state = $1, updated_at = $2, version = version + 1 \
             WHERE id = $3 AND state = $4",
        )
        .bind(to.as_str())
        .bind(to_micros(now))
        .bind(id.to_string())
        .bind(from.as_str())
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(done.rows_affected() == 1)
    }

    /// Every instance in `state`, whatever its organization (for the
    /// driver's reconciliation).
    pub async fn instance_ids_in_state(&self, state: InstanceState) -> Result<Vec<InstanceId>> {
        sqlx::query_scalar::<_, String>("SELECT id FROM instances WHERE state = $1")
            .bind(state.as_str())
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?
            .iter()
            .map(|id| parse_id(id))
            .collect()
    }

    /// Removes an instance's record (a task step: idempotent).
    pub async fn remove_instance(&self, id: InstanceId) -> Result<()> {
        sqlx::query("DELETE FROM instances WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// An organization's limits and what the instances of its subtree use
    /// of them.
    pub async fn quota(&self, org: OrganizationId) -> Result<Quota> {
        let row = sqlx::query(
            "SELECT instances, vcpus, memory_mib, updated_at, version FROM quotas \
             WHERE organization_id = $1",
        )
        .bind(org.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        let mut conn = self.read.acquire().await.map_err(db_error)?;
        let usage = usage_of(&mut *conn, org).await?;
        Ok(match row {
            Some(r) => Quota {
                organization_id: org,
                limits: limits_from_row(&r)?,
                usage,
                updated_at: Some(col_time(&r, "updated_at")?),
                version: col(&r, "version")?,
            },
            None => Quota {
                organization_id: org,
                limits: Limits::default(),
                usage,
                updated_at: None,
                version: 0,
            },
        })
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
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let version: Option<i64> =
            sqlx::query_scalar("SELECT version FROM quotas WHERE organization_id = $1")
                .bind(org.to_string())
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_error)?;
        precondition.check(version.unwrap_or(0))?;
        let next = version.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO quotas (organization_id, instances, vcpus, memory_mib, updated_at, version) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (organization_id) DO UPDATE SET \
             instances = $2, vcpus = $3, memory_mib = $4, updated_at = $5, version = $6",
        )
        .bind(org.to_string())
        .bind(limits.instances)
        .bind(limits.vcpus)
        .bind(limits.memory_mib)
        .bind(to_micros(now))
        .bind(next)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        let usage = usage_of(&mut *tx, org).await?;
        tx.commit().await.map_err(db_error)?;
        Ok(Quota {
            organization_id: org,
            limits,
            usage,
            updated_at: Some(now),
            version: next,
        })
    }
}

/// A `quotas` row's `instances`, `vcpus` and `memory_mib`.
fn limits_from_row(r: &AnyRow) -> Result<Limits> {
    Ok(Limits {
        instances: col(r, "instances")?,
        vcpus: col(r, "vcpus")?,
        memory_mib: col(r, "memory_mib")?,
    })
}

/// What instances use: their count, vCPUs and memory.
const USAGE: &str = "count(*), CAST(COALESCE(SUM(cpu), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(memory_mib), 0) AS BIGINT)";

pub(crate) async fn usage_of<'c, E>(executor: E, org: OrganizationId) -> Result<Usage>
where
    E: sqlx::Executor<'c, Database = Any>,
{
    use sqlx::Row;
    let row = sqlx::query(&subtree_usage_sql(USAGE))
        .bind(org.to_string())
        .fetch_one(executor)
        .await
        .map_err(db_error)?;
    Ok(Usage {
        instances: row.try_get(0).map_err(db_error)?,
        vcpus: row.try_get(1).map_err(db_error)?,
        memory_mib: row.try_get(2).map_err(db_error)?,
    })
}

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
    use crate::tables::quotas;
    use diesel::prelude::*;
    use diesel::sql_types::{BigInt, Text};
    if matches!(c, Conn::Pg(_)) {
        run!(
            c,
            execute,
            diesel::sql_query("SELECT pg_advisory_xact_lock($1)").bind::<BigInt, _>(TREE_LOCK)
        )
        .map_err(door_error)?;
    }
    let moved = usage_in(c, org).await?;
    if moved == Usage::default() {
        return Ok(());
    }
    #[derive(diesel::QueryableByName)]
    struct Limited {
        #[diesel(sql_type = Text)]
        organization_id: String,
    }
    let limited =
        |of: OrganizationId| diesel::sql_query(LIMITED_ANCESTRY).bind::<Text, _>(of.to_string());
    let before: Vec<Limited> = run!(c, load, limited(org)).map_err(door_error)?;
    let after: Vec<Limited> = run!(c, load, limited(new_parent)).map_err(door_error)?;
    for Limited {
        organization_id: id,
    } in after.into_iter().filter(|a| {
        !before
            .iter()
            .any(|b| b.organization_id == a.organization_id)
    }) {
        let (instances, vcpus, memory_mib) = run!(
            c,
            get_result,
            quotas::table
                .find(&id)
                .select((quotas::instances, quotas::vcpus, quotas::memory_mib))
        )
        .map_err(door_error)?;
        let limits = Limits {
            instances,
            vcpus,
            memory_mib,
        };
        let used = usage_in(c, parse_id(&id)?).await?;
        fits(&limits, used, moved, false)?;
    }
    Ok(())
}

/// [`usage_of`] in a door transaction.
async fn usage_in(c: &mut Conn, org: OrganizationId) -> Result<Usage> {
    use crate::tables::instances;
    use diesel::prelude::*;
    use diesel::sql_types::BigInt;
    let (instances, vcpus, memory_mib) = run!(
        c,
        get_result,
        instances::table
            .filter(crate::organizations::in_subtree(
                "instances.organization_id",
                org.to_string()
            ))
            .select(diesel::dsl::sql::<(BigInt, BigInt, BigInt)>(USAGE))
    )
    .map_err(door_error)?;
    Ok(Usage {
        instances,
        vcpus,
        memory_mib,
    })
}

async fn settle_instance(
    tx: &mut Transaction<'static, Any>,
    id: InstanceId,
    restore: Option<InstanceState>,
    now: DateTime<Utc>,
) -> Result<()> {
    match restore {
        Some(state) => {
            sqlx::query(
                "UPDATE instances SET state = $1, updated_at = $2, version = version + 1 \
                 WHERE id = $3 AND state <> $1",
            )
            .bind(state.as_str())
            .bind(to_micros(now))
            .bind(id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
        }
        None => {
            sqlx::query("DELETE FROM instances WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
        }
    }
    Ok(())
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
