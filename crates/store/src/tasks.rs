//! Durable tasks, their step log, and the leases of the nodes that run
//! them.
//!
//! A task is claimed by one node at a time: the claim sets `owner`, and a
//! node holds its tasks only while its lease (`nodes.lease_until`) is
//! live. Every write of a running task is conditional on `owner`, so a
//! node whose tasks were taken over can no longer advance them. Claiming
//! uses `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer
//! makes the same statement atomic there.

use crate::columns::{Flag, MaybeMicros, MaybeParsed, Micros, Parsed};
use crate::door::{breaks_unique, db_error, job, run, run_raw, Conn};
use crate::rows::{self, Bind, Statement};
use crate::tables::{nodes, task_steps, tasks};
use crate::Store;
use chrono::{DateTime, Utc};
use diesel::dsl::{exists, not};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable};
use nephele_common::clock::to_micros;
use nephele_common::ids::{NodeId, OrganizationId, TaskId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::Result;
use std::collections::HashSet;

pub const TYPE: &str = "tasks";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskStatus {
    /// Accepted, not yet claimed by a node.
    Pending,
    /// Claimed and running; the API shows it as `PENDING` too.
    Running,
    Success,
    Failed,
}

impl std::str::FromStr for TaskStatus {
    type Err = ();

    fn from_str(s: &str) -> std::result::Result<Self, ()> {
        TaskStatus::parse(s).ok_or(())
    }
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "PENDING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::Success => "SUCCESS",
            TaskStatus::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Option<TaskStatus> {
        [
            TaskStatus::Pending,
            TaskStatus::Running,
            TaskStatus::Success,
            TaskStatus::Failed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }

    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Success | TaskStatus::Failed)
    }
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tasks, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct Task {
    #[diesel(deserialize_as = Parsed<TaskId>)]
    pub id: TaskId,
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    pub organization_id: OrganizationId,
    pub operation: String,
    pub resource_type: String,
    pub resource_id: String,
    pub agent_id: Option<String>,
    #[diesel(deserialize_as = Parsed<TaskStatus>)]
    pub status: TaskStatus,
    pub progress: i64,
    /// The next step to run, or while `unwinding`, the next to undo.
    pub step: i64,
    #[diesel(deserialize_as = Flag)]
    pub unwinding: bool,
    /// The operation's parameters (JSON).
    pub input: String,
    /// On success: the resource as it ended (JSON).
    pub result: Option<String>,
    /// On failure, and while unwinding: the error (JSON).
    pub error: Option<String>,
    #[diesel(deserialize_as = MaybeParsed<NodeId>)]
    pub owner: Option<NodeId>,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub started_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub completed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct NewTask {
    pub id: TaskId,
    pub organization_id: OrganizationId,
    pub operation: String,
    pub resource_type: String,
    pub resource_id: String,
    pub agent_id: Option<String>,
    pub input: String,
    pub now: DateTime<Utc>,
    /// The node that runs it, when one took it as it was queued (a worker
    /// of its was free): it is queued RUNNING, started and that node's,
    /// and no claim of the queue is needed.
    pub owner: Option<NodeId>,
}

impl NewTask {
    /// The status it is queued with.
    pub(crate) fn status(&self) -> TaskStatus {
        match self.owner {
            Some(_) => TaskStatus::Running,
            None => TaskStatus::Pending,
        }
    }

    /// When it started: as it was queued, if a node took it then.
    pub(crate) fn started_at(&self) -> Option<DateTime<Utc>> {
        self.owner.map(|_| self.now)
    }

    /// The task as it is right after it was queued.
    pub fn queued(&self) -> Task {
        Task {
            id: self.id,
            organization_id: self.organization_id,
            operation: self.operation.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: self.resource_id.clone(),
            agent_id: self.agent_id.clone(),
            status: self.status(),
            progress: 0,
            step: 0,
            unwinding: false,
            input: self.input.clone(),
            result: None,
            error: None,
            owner: self.owner,
            created_at: self.now,
            started_at: self.started_at(),
            completed_at: None,
        }
    }
}

/// One entry of the step log.
#[derive(Debug, Clone, PartialEq)]
pub struct StepEntry {
    pub name: String,
    /// `do` or `undo`.
    pub action: &'static str,
    /// `done` or `failed`.
    pub outcome: &'static str,
    pub detail: Option<String>,
}

/// Where a task has got to, written as its steps end (quick ones together).
#[derive(Debug, Clone)]
pub struct Progress {
    pub task: TaskId,
    pub owner: NodeId,
    pub step: i64,
    pub unwinding: bool,
    pub progress: i64,
    /// The error that started the unwinding.
    pub error: Option<String>,
    /// The step log's new entries, in order: several when the engine
    /// recorded quick steps together.
    pub entries: Vec<StepEntry>,
    pub now: DateTime<Utc>,
}

/// How a task ends.
#[derive(Debug, Clone)]
pub struct Finish {
    pub task: TaskId,
    pub owner: NodeId,
    pub status: TaskStatus,
    pub result: Option<String>,
    pub error: Option<String>,
    pub now: DateTime<Utc>,
    /// The steps done, when the last ones are recorded with the task's
    /// end rather than on their own.
    pub step: Option<i64>,
    /// Their entries in the step log, in order.
    pub entries: Vec<StepEntry>,
}

/// `?status=`, `?resourceId=` of a list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub status: Option<TaskStatus>,
    pub resource_id: Option<String>,
}

diesel::define_sql_function! {
    /// The first of its arguments that is not NULL.
    #[sql_name = "coalesce"]
    fn coalesce_bigint(x: Nullable<BigInt>, y: Nullable<BigInt>) -> Nullable<BigInt>;
}

/// A step log entry as stored: `(name, action, outcome, detail)`.
type StepRow = (String, String, String, Option<String>);

fn step_entry((name, action, outcome, detail): StepRow) -> StepEntry {
    StepEntry {
        name,
        action: if action == "undo" { "undo" } else { "do" },
        outcome: if outcome == "failed" {
            "failed"
        } else {
            "done"
        },
        detail,
    }
}

/// The task `owner` holds, running: the rows a node may still write.
macro_rules! held {
    ($task:expr, $owner:expr) => {
        tasks::table
            .find($task.to_string())
            .filter(tasks::owner.eq($owner.to_string()))
            .filter(tasks::status.eq(TaskStatus::Running.as_str()))
    };
}

/// Appends each task's entries to its step log, after its last entry:
/// one statement per batch.
async fn append_steps(
    c: &mut Conn,
    tasks: impl Iterator<Item = (TaskId, &[StepEntry], DateTime<Utc>)>,
) -> Result<()> {
    let rows: Vec<Vec<Bind>> = tasks
        .flat_map(|(task, entries, at)| {
            (1i64..).zip(entries).map(move |(n, e)| {
                vec![
                    task.to_string().into(),
                    n.into(),
                    e.name.clone().into(),
                    e.action.into(),
                    e.outcome.into(),
                    e.detail.clone().into(),
                    to_micros(at).into(),
                ]
            })
        })
        .collect();
    for rows in rows::chunks(rows) {
        Statement::with_rows(
            "e",
            &[
                "e_task",
                "e_n",
                "e_name",
                "e_action",
                "e_outcome",
                "e_detail",
                "e_at",
            ],
            rows,
        )
        .sql(
            "INSERT INTO task_steps (task_id, seq, name, action, outcome, detail, at) \
             SELECT e_task, (SELECT COALESCE(MAX(s.seq), 0) FROM task_steps s \
             WHERE s.task_id = e_task) + e_n, e_name, e_action, e_outcome, e_detail, e_at \
             FROM e",
        )
        .execute(c)
        .await?;
    }
    Ok(())
}

/// Sets `set` (of the batch's columns, `j_…`, a row per task of
/// `steps`) on the tasks of a batch that their nodes still hold, and
/// appends those tasks' new entries to their step logs; for each task,
/// whether it was held. `RUNNING` in a form no index serves: otherwise
/// SQLite may walk every running task and, for each, the whole batch,
/// instead of looking each task of the batch up by id.
async fn update_held(
    c: &mut Conn,
    columns: &[&str],
    rows: Vec<Vec<Bind>>,
    set: &str,
    steps: &[(TaskId, &[StepEntry], DateTime<Utc>)],
) -> Result<Vec<bool>> {
    let mut held = HashSet::with_capacity(rows.len());
    for rows in rows::chunks(rows) {
        let updated: Vec<rows::Id> = Statement::with_rows("j", columns, rows)
            .sql("UPDATE tasks SET ")
            .sql(set)
            .sql(
                " FROM j WHERE tasks.id = j.j_id AND tasks.owner = j.j_owner \
                 AND tasks.status || '' = 'RUNNING' RETURNING tasks.id AS id",
            )
            .load(c)
            .await?;
        held.extend(updated.into_iter().map(|i| i.id));
    }
    let answers: Vec<bool> = steps
        .iter()
        .map(|(task, _, _)| held.contains(&task.to_string()))
        .collect();
    append_steps(
        c,
        steps
            .iter()
            .zip(&answers)
            .filter(|(_, held)| **held)
            .map(|(steps, _)| *steps),
    )
    .await?;
    Ok(answers)
}

/// Queues a task inside the transaction that accepted its operation;
/// false when another unfinished task holds the same resource, and then
/// the transaction is to be abandoned (PostgreSQL refuses anything more
/// in it).
pub(crate) async fn insert_task(c: &mut Conn, t: &NewTask) -> Result<bool> {
    let inserted = run_raw!(c.execute(diesel::insert_into(tasks::table).values(new_task_row(t))));
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if breaks_unique(&e, "active_resource") => Ok(false),
        Err(e) => Err(db_error(e)),
    }
}

/// A new task's row, for an insert.
#[allow(clippy::type_complexity)]
pub(crate) fn new_task_row(
    t: &NewTask,
) -> (
    diesel::dsl::Eq<tasks::id, String>,
    diesel::dsl::Eq<tasks::organization_id, String>,
    diesel::dsl::Eq<tasks::operation, String>,
    diesel::dsl::Eq<tasks::resource_type, String>,
    diesel::dsl::Eq<tasks::resource_id, String>,
    diesel::dsl::Eq<tasks::active_resource, String>,
    diesel::dsl::Eq<tasks::agent_id, Option<String>>,
    diesel::dsl::Eq<tasks::status, &'static str>,
    diesel::dsl::Eq<tasks::input, String>,
    diesel::dsl::Eq<tasks::created_at, i64>,
    diesel::dsl::Eq<tasks::owner, Option<String>>,
    diesel::dsl::Eq<tasks::started_at, Option<i64>>,
    (
        diesel::dsl::Eq<tasks::progress, i64>,
        diesel::dsl::Eq<tasks::step, i64>,
        diesel::dsl::Eq<tasks::unwinding, i64>,
    ),
) {
    (
        tasks::id.eq(t.id.to_string()),
        tasks::organization_id.eq(t.organization_id.to_string()),
        tasks::operation.eq(t.operation.clone()),
        tasks::resource_type.eq(t.resource_type.clone()),
        tasks::resource_id.eq(t.resource_id.clone()),
        tasks::active_resource.eq(t.resource_id.clone()),
        tasks::agent_id.eq(t.agent_id.clone()),
        tasks::status.eq(t.status().as_str()),
        tasks::input.eq(t.input.clone()),
        tasks::created_at.eq(to_micros(t.now)),
        tasks::owner.eq(t.owner.map(|o| o.to_string())),
        tasks::started_at.eq(t.started_at().map(to_micros)),
        (
            tasks::progress.eq(0),
            tasks::step.eq(0),
            tasks::unwinding.eq(0),
        ),
    )
}

impl Store {
    pub async fn get_task(&self, id: TaskId) -> Result<Option<Task>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(tasks::table.find(id.to_string()).select(Task::as_select())))
    }

    /// A task's organization and status: what a wait for its end needs,
    /// a read of one short row (its step log is not read).
    pub async fn task_status(&self, id: TaskId) -> Result<Option<(OrganizationId, TaskStatus)>> {
        let mut c = self.door.reader().await?;
        let row: Option<(Parsed<OrganizationId>, Parsed<TaskStatus>)> = run!(c.optional_first(
            tasks::table
                .find(id.to_string())
                .select((tasks::organization_id, tasks::status))
        ))?;
        Ok(row.map(|(org, status)| (org.0, status.0)))
    }

    /// An organization's tasks, newest first.
    pub async fn list_tasks(
        &self,
        org: OrganizationId,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> Result<Page<Task>> {
        let statuses: &[&str] = match filter.status {
            None => &["PENDING", "RUNNING", "SUCCESS", "FAILED"],
            // Running tasks are PENDING to the API.
            Some(TaskStatus::Pending | TaskStatus::Running) => &["PENDING", "RUNNING"],
            Some(TaskStatus::Success) => &["SUCCESS"],
            Some(TaskStatus::Failed) => &["FAILED"],
        };
        // Ids are lower-case hexadecimal: every one is before "~".
        let before = page.after.clone().unwrap_or_else(|| "~".to_owned());
        let limit = i64::from(page.limit) + 1;
        let mut c = self.door.reader().await?;
        let items = match &filter.resource_id {
            Some(resource) => run!(c.load(
                tasks::table
                    .select(Task::as_select())
                    .filter(tasks::organization_id.eq(org.to_string()))
                    .filter(tasks::status.eq_any(statuses))
                    .filter(tasks::resource_id.eq(resource))
                    .filter(tasks::id.lt(&before))
                    .order(tasks::id.desc())
                    .limit(limit)
            )),
            None => run!(c.load(
                tasks::table
                    .select(Task::as_select())
                    .filter(tasks::organization_id.eq(org.to_string()))
                    .filter(tasks::status.eq_any(statuses))
                    .filter(tasks::id.lt(&before))
                    .order(tasks::id.desc())
                    .limit(limit)
            )),
        }?;
        Ok(Page::from_rows(items, page.limit, |t| t.id.to_string()))
    }

    /// A task with its step log, oldest entry first, in one read
    /// transaction's view.
    pub async fn task_with_steps(&self, id: TaskId) -> Result<Option<(Task, Vec<StepEntry>)>> {
        let mut c = self.door.reader().await?;
        let Some(task) =
            run!(c.optional_first(tasks::table.find(id.to_string()).select(Task::as_select())))?
        else {
            return Ok(None);
        };
        let steps: Vec<StepRow> = run!(c.load(
            task_steps::table
                .filter(task_steps::task_id.eq(id.to_string()))
                .order(task_steps::seq)
                .select((
                    task_steps::name,
                    task_steps::action,
                    task_steps::outcome,
                    task_steps::detail,
                ))
        ))?;
        Ok(Some((task, steps.into_iter().map(step_entry).collect())))
    }

    /// Claims up to `limit` tasks for `node`: tasks not yet claimed and,
    /// with `orphans`, tasks whose node's lease has run out. Oldest first.
    ///
    /// Looking for orphans reads every running task (whose node's lease
    /// must be checked), a few hundred rows under load; the queue alone is
    /// a short range of the status index. The engine looks for orphans
    /// only at its periodic poll (a lease takes seconds to run out) and
    /// for queued tasks whenever one is queued or a worker frees up.
    pub async fn claim_tasks(
        &self,
        node: NodeId,
        limit: usize,
        now: DateTime<Utc>,
        orphans: bool,
    ) -> Result<Vec<Task>> {
        let at = to_micros(now);
        let statuses: &'static [&'static str] = if orphans {
            &["PENDING", "RUNNING"]
        } else {
            &["PENDING"]
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        // Claimable: not yet claimed, or its node's lease has run out. (An
        // alias: the claim's UPDATE of `tasks` reads it in a subquery.)
        let t = diesel::alias!(tasks as t);
        macro_rules! claimable {
            () => {
                t.filter(t.field(tasks::status).eq_any(statuses)).filter(
                    t.field(tasks::owner).is_null().or(not(exists(
                        nodes::table
                            .filter(nodes::id.nullable().eq(t.field(tasks::owner)))
                            .filter(nodes::lease_until.ge(at)),
                    ))),
                )
            };
        }
        // Looked for first on a reader: most polls find nothing, and then
        // no write waits for the writer or holds up the others'.
        {
            let mut c = self.door.reader().await?;
            let any: Option<String> =
                run!(c.optional_first(claimable!().select(t.field(tasks::id))))?;
            if any.is_none() {
                return Ok(Vec::new());
            }
        }
        let node = node.to_string();
        let mut tasks = self
            .write(job!(|c| {
                let set = (
                    tasks::owner.eq(&node),
                    tasks::status.eq(TaskStatus::Running.as_str()),
                    tasks::started_at.eq(coalesce_bigint(tasks::started_at, Some(at))),
                );
                match c {
                    Conn::Sqlite(c) => diesel::RunQueryDsl::get_results(
                        diesel::update(tasks::table)
                            .filter(
                                tasks::id.eq_any(
                                    claimable!()
                                        .select(t.field(tasks::id))
                                        .order(t.field(tasks::id))
                                        .limit(limit),
                                ),
                            )
                            .set(set)
                            .returning(Task::as_returning()),
                        c,
                    ),
                    // Nodes claiming at once skip each other's rows.
                    Conn::Pg(c) => {
                        diesel_async::RunQueryDsl::get_results(
                            diesel::update(tasks::table)
                                .filter(
                                    tasks::id.eq_any(
                                        claimable!()
                                            .select(t.field(tasks::id))
                                            .order(t.field(tasks::id))
                                            .limit(limit)
                                            .for_update()
                                            .skip_locked(),
                                    ),
                                )
                                .set(set)
                                .returning(Task::as_returning()),
                            &mut **c,
                        )
                        .await
                    }
                }
                .map_err(db_error)
            }))
            .await?;
        tasks.sort_by_key(|t| t.id);
        Ok(tasks)
    }

    /// Records the steps tasks have got through, in one transaction of
    /// two statements. Each answer is false when that task is no longer
    /// its node's.
    pub async fn record_progress(&self, batch: &[Progress]) -> Result<Vec<bool>> {
        let batch = batch.to_vec();
        self.write(job!(|c| {
            let rows = batch
                .iter()
                .map(|p| {
                    vec![
                        p.task.to_string().into(),
                        p.owner.to_string().into(),
                        p.step.into(),
                        i64::from(p.unwinding).into(),
                        p.progress.into(),
                        p.error.clone().into(),
                    ]
                })
                .collect();
            let steps: Vec<_> = batch
                .iter()
                .map(|p| (p.task, &p.entries[..], p.now))
                .collect();
            update_held(
                c,
                &[
                    "j_id",
                    "j_owner",
                    "j_step",
                    "j_unwinding",
                    "j_progress",
                    "j_error",
                ],
                rows,
                "step = j_step, unwinding = j_unwinding, progress = j_progress, \
                 error = COALESCE(j_error, tasks.error)",
                &steps,
            )
            .await
        }))
        .await
    }

    /// Ends tasks their nodes hold, in one transaction of two statements:
    /// SUCCESS with a result or FAILED with an error, with their last
    /// steps when they are recorded with the end. Each answer is false
    /// when that task was no longer its node's.
    pub async fn finish_tasks(&self, batch: &[Finish]) -> Result<Vec<bool>> {
        let batch = batch.to_vec();
        self.write(job!(|c| {
            let rows = batch
                .iter()
                .map(|f| {
                    vec![
                        f.task.to_string().into(),
                        f.owner.to_string().into(),
                        f.status.as_str().into(),
                        f.result.clone().into(),
                        f.error.clone().into(),
                        to_micros(f.now).into(),
                        f.step.into(),
                    ]
                })
                .collect();
            let steps: Vec<_> = batch
                .iter()
                .map(|f| (f.task, &f.entries[..], f.now))
                .collect();
            update_held(
                c,
                &[
                    "j_id", "j_owner", "j_status", "j_result", "j_error", "j_at", "j_step",
                ],
                rows,
                "status = j_status, result = j_result, error = COALESCE(j_error, tasks.error), \
                 progress = 100, completed_at = j_at, step = COALESCE(j_step, tasks.step), \
                 active_resource = NULL",
                &steps,
            )
            .await
        }))
        .await
    }

    /// Hands a task `node` holds back to the queue (it stopped before the
    /// end): the next claim resumes it at the step it had reached.
    pub async fn release_task(&self, id: TaskId, node: NodeId) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(diesel::update(held!(id, node)).set((
                tasks::owner.eq(None::<String>),
                tasks::status.eq(TaskStatus::Pending.as_str()),
            ))))?;
            Ok(())
        }))
        .await
    }

    /// Drops tasks that finished before `before`, with their step logs.
    pub async fn purge_tasks(&self, before: DateTime<Utc>) -> Result<u64> {
        let before = to_micros(before);
        self.write(job!(|c| {
            run!(c.execute(diesel::delete(
                task_steps::table.filter(
                    task_steps::task_id.eq_any(
                        tasks::table
                            .filter(tasks::completed_at.lt(before))
                            .select(tasks::id)
                    )
                )
            )))?;
            let done = run!(c.execute(diesel::delete(
                tasks::table.filter(tasks::completed_at.lt(before))
            )))?;
            Ok(u64::try_from(done).unwrap_or(0))
        }))
        .await
    }

    /// Registers a node with a lease until `until`: at start, and again
    /// after its lease ran out, when its row is still there. Tasks taken
    /// over meanwhile stay taken: every write of a task is fenced on its
    /// owner, not on the node's lease.
    pub async fn register_node(
        &self,
        node: NodeId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<()> {
        let (now, until) = (to_micros(now), to_micros(until));
        self.write(job!(|c| {
            run!(c.execute(
                diesel::insert_into(nodes::table)
                    .values((
                        nodes::id.eq(node.to_string()),
                        nodes::started_at.eq(now),
                        nodes::lease_until.eq(until),
                    ))
                    .on_conflict(nodes::id)
                    .do_update()
                    .set(nodes::lease_until.eq(until))
            ))?;
            Ok(())
        }))
        .await
    }

    /// Extends a node's lease; false when the lease had already run out
    /// (its tasks may have been taken over: it must stop working on them).
    pub async fn renew_node(
        &self,
        node: NodeId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let (now, until) = (to_micros(now), to_micros(until));
        self.write(job!(|c| {
            let done = run!(c.execute(
                diesel::update(
                    nodes::table
                        .find(node.to_string())
                        .filter(nodes::lease_until.ge(now))
                )
                .set(nodes::lease_until.eq(until))
            ))?;
            Ok(done > 0)
        }))
        .await
    }

    /// A node leaving: its running tasks go back to the queue for another
    /// node (or the next start), and its lease ends. Nodes long dead are
    /// forgotten.
    pub async fn retire_node(&self, node: NodeId, now: DateTime<Utc>) -> Result<()> {
        let long_ago = to_micros(now - chrono::Duration::days(1));
        let node = node.to_string();
        self.write(job!(|c| {
            run!(c.execute(
                diesel::update(
                    tasks::table
                        .filter(tasks::owner.eq(&node))
                        .filter(tasks::status.eq(TaskStatus::Running.as_str()))
                )
                .set((
                    tasks::owner.eq(None::<String>),
                    tasks::status.eq(TaskStatus::Pending.as_str()),
                ))
            ))?;
            run!(c.execute(diesel::delete(
                nodes::table.filter(nodes::id.eq(&node).or(nodes::lease_until.lt(long_ago)))
            )))?;
            Ok(())
        }))
        .await
    }
}

/// Cancels, in a write, a task no node has claimed yet: it ends FAILED
/// with `error`. `None` when the task is no longer waiting (the caller
/// says why). Its kind puts the resource back in the same transaction.
pub(crate) async fn cancel_in(
    c: &mut Conn,
    id: TaskId,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Option<Task>> {
    let task: Option<Task> = run!(c.optional_get_result(
        diesel::update(
            tasks::table
                .find(id.to_string())
                .filter(tasks::status.eq(TaskStatus::Pending.as_str()))
                .filter(tasks::started_at.is_null())
        )
        .set((
            tasks::status.eq(TaskStatus::Failed.as_str()),
            tasks::error.eq(error),
            tasks::completed_at.eq(to_micros(now)),
            tasks::active_resource.eq(None::<String>),
        ))
        .returning(Task::as_returning())
    ))?;
    if task.is_some() {
        // Never started: the log's first entry.
        run!(c.execute(diesel::insert_into(task_steps::table).values((
            task_steps::task_id.eq(id.to_string()),
            task_steps::seq.eq(1),
            task_steps::name.eq("cancel"),
            task_steps::action.eq("undo"),
            task_steps::outcome.eq("done"),
            task_steps::at.eq(to_micros(now)),
        ))))?;
    }
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;
    use nephele_common::clock::from_micros;

    /// A task and its log read back as written, whatever its fields hold,
    /// and a claim returns the task a read finds.
    #[tokio::test]
    async fn a_task_reads_back_as_written_and_as_claimed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("store");
        let (bare, full) = (TaskId::new(), TaskId::new());
        let (org, owner) = (OrganizationId::new(), NodeId::new());
        let now: i64 = 1_700_000_000_000_000;
        let row = |id: TaskId, status: &'static str| {
            (
                tasks::id.eq(id.to_string()),
                tasks::organization_id.eq(org.to_string()),
                tasks::operation.eq("create"),
                tasks::resource_type.eq("instances"),
                tasks::resource_id.eq(id.to_string()),
                tasks::status.eq(status),
                tasks::progress.eq(0),
                tasks::step.eq(0),
                tasks::unwinding.eq(0),
                tasks::input.eq("{}"),
                tasks::created_at.eq(now),
            )
        };
        let (bare_row, full_row) = (row(bare, "PENDING"), row(full, "FAILED"));
        store
            .write(job!(|c| {
                run!(c.execute(diesel::insert_into(tasks::table).values(bare_row)))?;
                run!(c.execute(diesel::insert_into(tasks::table).values(full_row)))?;
                run!(
                    c.execute(diesel::update(tasks::table.find(full.to_string())).set((
                        tasks::agent_id.eq("agent \"é\""),
                        tasks::unwinding.eq(1),
                        tasks::result.eq("{\"a\":[1,2]}"),
                        tasks::error.eq("{\"code\":2000}"),
                        tasks::owner.eq(owner.to_string()),
                        tasks::started_at.eq(now + 1),
                        tasks::completed_at.eq(now + 2),
                    )))
                )?;
                // Out of order: the log is read in the order of `seq`.
                for (seq, action, outcome, detail) in [
                    (3, "undo", "done", None),
                    (1, "do", "done", None),
                    (2, "do", "failed", Some("disk \"busy\"")),
                ] {
                    run!(c.execute(diesel::insert_into(task_steps::table).values((
                        task_steps::task_id.eq(full.to_string()),
                        task_steps::seq.eq(seq),
                        task_steps::name.eq("step"),
                        task_steps::action.eq(action),
                        task_steps::outcome.eq(outcome),
                        task_steps::detail.eq(detail),
                        task_steps::at.eq(seq),
                    ))))?;
                }
                Ok(())
            }))
            .await
            .expect("tasks");
        let (task, steps) = store
            .task_with_steps(full)
            .await
            .expect("read")
            .expect("the task");
        assert_eq!(task.agent_id.as_deref(), Some("agent \"é\""));
        assert!(task.unwinding);
        assert_eq!(task.owner, Some(owner));
        assert_eq!(task.completed_at, Some(from_micros(now + 2)));
        let actions: Vec<_> = steps.iter().map(|s| (s.action, s.outcome)).collect();
        assert_eq!(
            actions,
            [("do", "done"), ("do", "failed"), ("undo", "done")]
        );
        assert_eq!(steps[1].detail.as_deref(), Some("disk \"busy\""));
        assert_eq!(
            store.task_status(full).await.expect("status"),
            Some((org, TaskStatus::Failed))
        );
        assert_eq!(
            store.task_status(TaskId::new()).await.expect("status"),
            None
        );

        let node = NodeId::new();
        let at = from_micros(now + 10);
        store
            .register_node(node, at, from_micros(now + 1_000_000))
            .await
            .expect("node");
        let claimed = store.claim_tasks(node, 10, at, true).await.expect("claim");
        assert_eq!(claimed.len(), 1, "only the pending task");
        assert_eq!(claimed[0].owner, Some(node));
        assert_eq!(claimed[0].started_at, Some(at));
        let read = store.get_task(bare).await.expect("read");
        assert_eq!(Some(&claimed[0]), read.as_ref());
    }
}
