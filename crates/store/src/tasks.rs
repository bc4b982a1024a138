//! Durable tasks, their step log, and the leases of the nodes that run
//! them.
//!
//! A task is claimed by one node at a time: the claim sets `owner`, and a
//! node holds its tasks only while its lease (`nodes.lease_until`) is
//! live. Every write of a running task is conditional on `owner`, so a
//! node whose tasks were taken over can no longer advance them. Claiming
//! uses `FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single writer
//! makes the same statement atomic there.

use crate::db::{
    col, col_id, col_opt_id, col_time, db_error, json_object_fields, parse_id, Backend, JsonType,
};
use crate::write::{Arg, Rows, WriteTx};
use crate::Store;
use chrono::{DateTime, Utc};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{NodeId, OrganizationId, TaskId};
use nephele_common::page::{Page, PageRequest};
use nephele_common::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};
use std::collections::HashSet;
use std::sync::LazyLock;

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

#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub id: TaskId,
    pub organization_id: OrganizationId,
    pub operation: String,
    pub resource_type: String,
    pub resource_id: String,
    pub agent_id: Option<String>,
    pub status: TaskStatus,
    pub progress: i64,
    /// The next step to run, or while `unwinding`, the next to undo.
    pub step: i64,
    pub unwinding: bool,
    /// The operation's parameters (JSON).
    pub input: String,
    /// On success: the resource as it ended (JSON).
    pub result: Option<String>,
    /// On failure, and while unwinding: the error (JSON).
    pub error: Option<String>,
    pub owner: Option<NodeId>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
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

const COLUMNS: &str = "id, organization_id, operation, resource_type, resource_id, agent_id, \
                       status, progress, step, unwinding, input, result, error, owner, \
                       created_at, started_at, completed_at";

fn task_from_row(r: &AnyRow) -> Result<Task> {
    let status: String = col(r, "status")?;
    Ok(Task {
        id: col_id(r, "id")?,
        organization_id: col_id(r, "organization_id")?,
        operation: col(r, "operation")?,
        resource_type: col(r, "resource_type")?,
        resource_id: col(r, "resource_id")?,
        agent_id: col(r, "agent_id")?,
        status: TaskStatus::parse(&status)
            .ok_or_else(|| Error::internal(format!("corrupt task status {status:?}")))?,
        progress: col(r, "progress")?,
        step: col(r, "step")?,
        unwinding: col::<i64>(r, "unwinding")? != 0,
        input: col(r, "input")?,
        result: col(r, "result")?,
        error: col(r, "error")?,
        owner: col_opt_id(r, "owner")?,
        created_at: col_time(r, "created_at")?,
        started_at: col::<Option<i64>>(r, "started_at")?.map(from_micros),
        completed_at: col::<Option<i64>>(r, "completed_at")?.map(from_micros),
    })
}

/// A task's step log as SQLite's JSON array, oldest first. Ordered by a
/// subquery, which reads the primary key in order, rather than by the
/// aggregate's own ORDER BY, which sorts every log in a temporary table.
const SQLITE_STEPS: &str = "(SELECT json_group_array(json_array(name, action, outcome, detail)) \
                            FROM (SELECT s.name, s.action, s.outcome, s.detail \
                            FROM task_steps s WHERE s.task_id = tasks.id ORDER BY s.seq))";

/// A step log entry as JSON: `[name, action, outcome, detail]`.
type StepJson = (String, String, String, Option<String>);

fn step_entries(steps: Vec<StepJson>) -> Vec<StepEntry> {
    steps
        .into_iter()
        .map(|(name, action, outcome, detail)| StepEntry {
            name,
            action: if action == "undo" { "undo" } else { "do" },
            outcome: if outcome == "failed" {
                "failed"
            } else {
                "done"
            },
            detail,
        })
        .collect()
}

/// A task as a JSON object of [`COLUMNS`], with its steps when asked for.
#[derive(serde::Deserialize)]
struct TaskJson {
    id: String,
    organization_id: String,
    operation: String,
    resource_type: String,
    resource_id: String,
    agent_id: Option<String>,
    status: String,
    progress: i64,
    step: i64,
    unwinding: i64,
    input: String,
    result: Option<String>,
    error: Option<String>,
    owner: Option<String>,
    created_at: i64,
    started_at: Option<i64>,
    completed_at: Option<i64>,
    #[serde(default)]
    steps: Vec<StepJson>,
}

impl TaskJson {
    fn task(self) -> Result<Task> {
        Ok(Task {
            id: parse_id(&self.id)?,
            organization_id: parse_id(&self.organization_id)?,
            operation: self.operation,
            resource_type: self.resource_type,
            resource_id: self.resource_id,
            agent_id: self.agent_id,
            status: TaskStatus::parse(&self.status)
                .ok_or_else(|| Error::internal(format!("corrupt task status {:?}", self.status)))?,
            progress: self.progress,
            step: self.step,
            unwinding: self.unwinding != 0,
            input: self.input,
            result: self.result,
            error: self.error,
            owner: self.owner.as_deref().map(parse_id).transpose()?,
            created_at: from_micros(self.created_at),
            started_at: self.started_at.map(from_micros),
            completed_at: self.completed_at.map(from_micros),
        })
    }
}

/// The rows of step log entries for [`append_steps`]: each task's
/// `entries`, with its node and time, its entries in order.
fn entry_rows<'a>(
    tasks: impl Iterator<Item = (TaskId, NodeId, DateTime<Utc>, &'a [StepEntry])>,
) -> Vec<serde_json::Value> {
    let mut rows = Vec::new();
    for (task, owner, at, entries) in tasks {
        // `ord` numbers a task's entries from 1: the statement sees the
        // log as it was before it, so each adds its place to the end.
        for (ord, e) in (1i64..).zip(entries) {
            rows.push(serde_json::json!({
                "id": task.to_string(),
                "owner": owner.to_string(),
                "ord": ord,
                "name": e.name,
                "action": e.action,
                "outcome": e.outcome,
                "detail": e.detail,
                "at": to_micros(at),
            }));
        }
    }
    rows
}

/// Appends step log entries ([`entry_rows`]) to the log of the tasks
/// their nodes still hold, in one statement.
async fn append_steps(tx: &mut WriteTx, rows: &[serde_json::Value]) -> Result<()> {
    use JsonType::{Integer, Text};
    if rows.is_empty() {
        return Ok(());
    }
    let e = tx.rows(
        "e",
        &[
            ("id", Text),
            ("owner", Text),
            ("ord", Integer),
            ("name", Text),
            ("action", Text),
            ("outcome", Text),
            ("detail", Text),
            ("at", Integer),
        ],
        rows,
    );
    tx.execute(
        &format!(
            "INSERT INTO task_steps (task_id, seq, name, action, outcome, detail, at) \
             SELECT e.id, (SELECT COALESCE(MAX(s.seq), 0) FROM task_steps s \
             WHERE s.task_id = e.id) + e.ord, e.name, e.action, e.outcome, e.detail, e.at \
             FROM {e} WHERE EXISTS (SELECT 1 FROM tasks t WHERE t.id = e.id \
             AND t.owner = e.owner AND t.status = 'RUNNING')"
        ),
        &[Arg::Rows(&e)],
    )
    .await?;
    Ok(())
}

/// Sets `set` on the tasks of a batch (`j`) that their nodes still hold;
/// their ids.
async fn update_held(tx: &mut WriteTx, set: &str, j: &Rows<'_>) -> Result<HashSet<String>> {
    Ok(tx
        .texts(
            &format!(
                "UPDATE tasks SET {set} FROM {j} \
                 WHERE tasks.id = j.id AND tasks.owner = j.owner AND {RUNNING} \
                 RETURNING tasks.id"
            ),
            &[Arg::Rows(j)],
        )
        .await?
        .into_iter()
        .collect())
}

/// `status = 'RUNNING'` in a form no index serves: otherwise SQLite may
/// walk every running task and, for each, the whole batch, instead of
/// looking each task of the batch up by id.
const RUNNING: &str = "tasks.status || '' = 'RUNNING'";

/// Queues a task inside the transaction that accepted its operation;
/// false, and nothing queued, when another unfinished task holds the
/// same resource.
pub(crate) async fn insert_task(tx: &mut WriteTx, t: &NewTask) -> Result<bool> {
    let owner = t.owner.map(|o| o.to_string());
    let inserted = tx
        .execute_unless_taken(
            "INSERT INTO tasks (id, organization_id, operation, resource_type, resource_id, \
             active_resource, agent_id, status, progress, step, unwinding, input, created_at, \
             owner, started_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6, $9, 0, 0, 0, $7, $8, $10, $11)",
            &[
                Arg::Text(&t.id.to_string()),
                Arg::Text(&t.organization_id.to_string()),
                Arg::Text(&t.operation),
                Arg::Text(&t.resource_type),
                Arg::Text(&t.resource_id),
                t.agent_id.as_deref().map_or(Arg::Null, Arg::Text),
                Arg::Text(&t.input),
                Arg::Int(to_micros(t.now)),
                Arg::Text(t.status().as_str()),
                owner.as_deref().map_or(Arg::Null, Arg::Text),
                t.started_at()
                    .map_or(Arg::NullInt, |at| Arg::Int(to_micros(at))),
            ],
            "active_resource",
        )
        .await?;
    Ok(inserted.is_some())
}

async fn log_step(
    tx: &mut Transaction<'static, Any>,
    task: TaskId,
    entry: &StepEntry,
    now: DateTime<Utc>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO task_steps (task_id, seq, name, action, outcome, detail, at) \
         VALUES ($1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM task_steps WHERE task_id = $1), \
         $2, $3, $4, $5, $6)",
    )
    .bind(task.to_string())
    .bind(&entry.name)
    .bind(entry.action)
    .bind(entry.outcome)
    .bind(entry.detail.clone())
    .bind(to_micros(now))
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    Ok(())
}

impl Store {
    pub async fn get_task(&self, id: TaskId) -> Result<Option<Task>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tasks WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(task_from_row).transpose()
    }

    /// A task's organization and status: what a wait for its end needs,
    /// a read of one short row (its step log is not read).
    pub async fn task_status(&self, id: TaskId) -> Result<Option<(OrganizationId, TaskStatus)>> {
        const SQL: &str = "SELECT organization_id, status FROM tasks WHERE id = $1";
        let row = match &self.local {
            Some(local) => local.row(SQL, &id.to_string(), |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?,
            None => sqlx::query_as::<_, (String, String)>(SQL)
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await
                .map_err(db_error)?,
        };
        row.map(|(org, status)| {
            let status = TaskStatus::parse(&status)
                .ok_or_else(|| Error::internal(format!("task {id}: status {status:?}")))?;
            Ok((parse_id(&org)?, status))
        })
        .transpose()
    }

    /// An organization's tasks, newest first.
    pub async fn list_tasks(
        &self,
        org: OrganizationId,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> Result<Page<Task>> {
        let mut sql = format!("SELECT {COLUMNS} FROM tasks WHERE organization_id = $1");
        let mut n = 1;
        let mut next = || {
            n += 1;
            n
        };
        let statuses: &[&str] = match filter.status {
            None => &[],
            // Running tasks are PENDING to the API.
            Some(TaskStatus::Pending | TaskStatus::Running) => &["PENDING", "RUNNING"],
            Some(TaskStatus::Success) => &["SUCCESS"],
            Some(TaskStatus::Failed) => &["FAILED"],
        };
        if !statuses.is_empty() {
            let a = next();
            let b = next();
            sql.push_str(&format!(" AND status IN (${a}, ${b})"));
        }
        if filter.resource_id.is_some() {
            sql.push_str(&format!(" AND resource_id = ${}", next()));
        }
        if page.after.is_some() {
            sql.push_str(&format!(" AND id < ${}", next()));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", next()));
        let mut query = sqlx::query(&sql).bind(org.to_string());
        if let [a, rest @ ..] = statuses {
            query = query.bind(*a).bind(*rest.first().unwrap_or(a));
        }
        if let Some(r) = &filter.resource_id {
            query = query.bind(r.clone());
        }
        if let Some(after) = &page.after {
            query = query.bind(after.clone());
        }
        let rows = query
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.read)
            .await
            .map_err(db_error)?;
        let items = rows.iter().map(task_from_row).collect::<Result<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |t| t.id.to_string()))
    }

    /// A task with its step log, in one query: the log comes as a JSON
    /// array of `[name, action, outcome, detail]`, oldest first. On a
    /// SQLite file the whole task comes as one JSON object, read in the
    /// calling thread (`?wait=` reads each task twice; see `local`).
    pub async fn task_with_steps(&self, id: TaskId) -> Result<Option<(Task, Vec<StepEntry>)>> {
        if let Some(local) = &self.local {
            static SQL: LazyLock<String> = LazyLock::new(|| {
                format!(
                    "SELECT json_object({}, 'steps', json({SQLITE_STEPS})) \
                     FROM tasks WHERE id = $1",
                    json_object_fields(COLUMNS)
                )
            });
            let Some(text) = local.text(&SQL, &id.to_string())? else {
                return Ok(None);
            };
            let mut row: TaskJson = serde_json::from_str(&text)
                .map_err(|e| Error::internal(format!("task {id}: {e}")))?;
            let steps = step_entries(std::mem::take(&mut row.steps));
            return Ok(Some((row.task()?, steps)));
        }
        let steps = match self.backend() {
            Backend::Sqlite => SQLITE_STEPS,
            Backend::Postgres => {
                "(SELECT COALESCE(json_agg(json_build_array(s.name, s.action, s.outcome, \
                 s.detail) ORDER BY s.seq), '[]'::json)::text \
                 FROM task_steps s WHERE s.task_id = tasks.id)"
            }
        };
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS}, {steps} AS steps FROM tasks WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        let Some(row) = row else { return Ok(None) };
        let task = task_from_row(&row)?;
        let steps: Vec<StepJson> = serde_json::from_str(&col::<String>(&row, "steps")?)
            .map_err(|e| Error::internal(format!("task {id} steps: {e}")))?;
        Ok(Some((task, step_entries(steps))))
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
        let lock = match self.backend() {
            Backend::Postgres => " FOR UPDATE OF t SKIP LOCKED",
            Backend::Sqlite => "",
        };
        // Claimable: not yet claimed, or its node's lease has run out.
        const UNOWNED: &str = "(t.owner IS NULL OR NOT EXISTS (SELECT 1 FROM nodes n \
             WHERE n.id = t.owner AND n.lease_until >= $1))";
        let statuses = if orphans {
            "'PENDING', 'RUNNING'"
        } else {
            "'PENDING'"
        };
        let claimable = format!("t.status IN ({statuses}) AND {UNOWNED}");
        // Looked for first on a reader: most polls find nothing, and then
        // no write transaction waits for its turn, holds up the others'
        // or (on SQLite) opens the writers' connection of an idle server.
        let any: Option<i64> =
            sqlx::query_scalar(&format!("SELECT 1 FROM tasks t WHERE {claimable} LIMIT 1"))
                .bind(to_micros(now))
                .fetch_optional(&self.read)
                .await
                .map_err(db_error)?;
        if any.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.begin_write().await?;
        let rows = tx
            .texts(
                &format!(
                    "UPDATE tasks SET owner = $2, status = 'RUNNING', \
                     started_at = COALESCE(started_at, $1) \
                     WHERE id IN (SELECT t.id FROM tasks t WHERE {claimable} \
                     ORDER BY t.id LIMIT $3{lock}) RETURNING {}",
                    self.json_object_sql(COLUMNS)
                ),
                &[
                    Arg::Int(to_micros(now)),
                    Arg::Text(&node.to_string()),
                    Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)),
                ],
            )
            .await?;
        tx.commit().await?;
        let mut tasks = rows
            .iter()
            .map(|text| {
                serde_json::from_str::<TaskJson>(text)
                    .map_err(|e| Error::internal(format!("claimed task: {e}")))?
                    .task()
            })
            .collect::<Result<Vec<_>>>()?;
        tasks.sort_by_key(|t| t.id);
        Ok(tasks)
    }

    /// Records the steps tasks have got through, in one transaction of two
    /// statements whatever the batch's size. Each answer is false when
    /// that task is no longer its node's.
    pub async fn record_progress(&self, batch: &[Progress]) -> Result<Vec<bool>> {
        use JsonType::{Integer, Text};
        let rows: Vec<_> = batch
            .iter()
            .map(|p| {
                serde_json::json!({
                    "id": p.task.to_string(),
                    "owner": p.owner.to_string(),
                    "step": p.step,
                    "unwinding": i64::from(p.unwinding),
                    "progress": p.progress,
                    "error": p.error,
                })
            })
            .collect();
        let entries = entry_rows(
            batch
                .iter()
                .map(|p| (p.task, p.owner, p.now, &p.entries[..])),
        );
        let mut tx = self.begin_write().await?;
        let j = tx.rows(
            "j",
            &[
                ("id", Text),
                ("owner", Text),
                ("step", Integer),
                ("unwinding", Integer),
                ("progress", Integer),
                ("error", Text),
            ],
            &rows,
        );
        let held = update_held(
            &mut tx,
            "step = j.step, unwinding = j.unwinding, progress = j.progress, \
             error = COALESCE(j.error, tasks.error)",
            &j,
        )
        .await?;
        if !held.is_empty() {
            // The tasks just updated are exactly those still held.
            append_steps(&mut tx, &entries).await?;
        }
        tx.commit().await?;
        Ok(batch
            .iter()
            .map(|p| held.contains(&p.task.to_string()))
            .collect())
    }

    /// Ends tasks their nodes hold, in one transaction of one statement
    /// (two when last steps are recorded with their task's end): SUCCESS
    /// with a result or FAILED with an error. Each answer is false when
    /// that task was no longer its node's.
    pub async fn finish_tasks(&self, batch: &[Finish]) -> Result<Vec<bool>> {
        use JsonType::{Integer, Text};
        let rows: Vec<_> = batch
            .iter()
            .map(|f| {
                serde_json::json!({
                    "id": f.task.to_string(),
                    "owner": f.owner.to_string(),
                    "status": f.status.as_str(),
                    "result": f.result,
                    "error": f.error,
                    "at": to_micros(f.now),
                    "step": f.step,
                })
            })
            .collect();
        let entries = entry_rows(
            batch
                .iter()
                .map(|f| (f.task, f.owner, f.now, &f.entries[..])),
        );
        let mut tx = self.begin_write().await?;
        // Before the end, while the task is still running and held.
        append_steps(&mut tx, &entries).await?;
        let j = tx.rows(
            "j",
            &[
                ("id", Text),
                ("owner", Text),
                ("status", Text),
                ("result", Text),
                ("error", Text),
                ("at", Integer),
                ("step", Integer),
            ],
            &rows,
        );
        let done = update_held(
            &mut tx,
            "status = j.status, result = j.result, error = COALESCE(j.error, tasks.error), \
             progress = 100, completed_at = j.at, step = COALESCE(j.step, tasks.step), \
             active_resource = NULL",
            &j,
        )
        .await?;
        tx.commit().await?;
        Ok(batch
            .iter()
            .map(|f| done.contains(&f.task.to_string()))
            .collect())
    }

    /// Hands a task `node` holds back to the queue (it stopped before the
    /// end): the next claim resumes it at the step it had reached.
    pub async fn release_task(&self, id: TaskId, node: NodeId) -> Result<()> {
        sqlx::query(
            "UPDATE tasks SET owner = NULL, status = 'PENDING' \
             WHERE id = $1 AND owner = $2 AND status = 'RUNNING'",
        )
        .bind(id.to_string())
        .bind(node.to_string())
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Drops tasks that finished before `before`, with their step logs.
    pub async fn purge_tasks(&self, before: DateTime<Utc>) -> Result<u64> {
        sqlx::query(
            "DELETE FROM task_steps WHERE task_id IN \
             (SELECT id FROM tasks WHERE completed_at < $1)",
        )
        .bind(to_micros(before))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        let done = sqlx::query("DELETE FROM tasks WHERE completed_at < $1")
            .bind(to_micros(before))
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(done.rows_affected())
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
        sqlx::query(
            "INSERT INTO nodes (id, started_at, lease_until) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET lease_until = excluded.lease_until",
        )
        .bind(node.to_string())
        .bind(to_micros(now))
        .bind(to_micros(until))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Extends a node's lease; false when the lease had already run out
    /// (its tasks may have been taken over: it must stop working on them).
    pub async fn renew_node(
        &self,
        node: NodeId,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool> {
        let done =
            sqlx::query("UPDATE nodes SET lease_until = $1 WHERE id = $2 AND lease_until >= $3")
                .bind(to_micros(until))
                .bind(node.to_string())
                .bind(to_micros(now))
                .execute(&self.write)
                .await
                .map_err(db_error)?;
        Ok(done.rows_affected() > 0)
    }

    /// A node leaving: its running tasks go back to the queue for another
    /// node (or the next start), and its lease ends. Nodes long dead are
    /// forgotten.
    pub async fn retire_node(&self, node: NodeId, now: DateTime<Utc>) -> Result<()> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        sqlx::query("UPDATE tasks SET owner = NULL, status = 'PENDING' WHERE owner = $1 AND status = 'RUNNING'")
            .bind(node.to_string())
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        sqlx::query("DELETE FROM nodes WHERE id = $1 OR lease_until < $2")
            .bind(node.to_string())
            .bind(to_micros(now - chrono::Duration::days(1)))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)
    }
}

/// Cancels, in `tx`, a task no node has claimed yet: it ends FAILED with
/// `error`. `None` when the task is no longer waiting (the caller says
/// why). Its kind puts the resource back in the same transaction.
pub(crate) async fn cancel_in(
    tx: &mut Transaction<'static, Any>,
    id: TaskId,
    error: &str,
    now: DateTime<Utc>,
) -> Result<Option<Task>> {
    let done = sqlx::query(
        "UPDATE tasks SET status = 'FAILED', error = $1, completed_at = $2, \
         active_resource = NULL WHERE id = $3 AND status = 'PENDING' \
         AND started_at IS NULL",
    )
    .bind(error)
    .bind(to_micros(now))
    .bind(id.to_string())
    .execute(&mut **tx)
    .await
    .map_err(db_error)?;
    if done.rows_affected() == 0 {
        return Ok(None);
    }
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM tasks WHERE id = $1"))
        .bind(id.to_string())
        .fetch_one(&mut **tx)
        .await
        .map_err(db_error)?;
    let task = task_from_row(&row)?;
    log_step(
        tx,
        id,
        &StepEntry {
            name: "cancel".into(),
            action: "undo",
            outcome: "done",
            detail: None,
        },
        now,
    )
    .await?;
    Ok(Some(task))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoreOptions;

    /// The task read in the calling thread (as JSON) is the task sqlx
    /// reads (as a row), whatever its fields hold.
    #[tokio::test]
    async fn a_task_reads_the_same_in_the_calling_thread_as_through_sqlx_and_when_claimed() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let local = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("store");
        assert!(local.local.is_some(), "a database file is read locally");
        let mut through_sqlx = local.clone();
        through_sqlx.local = None;
        let (bare, full) = (TaskId::new(), TaskId::new());
        let now: i64 = 1_700_000_000_000_000;
        sqlx::query(
            "INSERT INTO tasks (id, organization_id, operation, resource_type, resource_id, \
             agent_id, status, progress, step, unwinding, input, result, error, owner, \
             created_at, started_at, completed_at) VALUES \
             ($1, $3, 'create', 'instances', 'r1', NULL, 'PENDING', 0, 0, 0, '{}', NULL, NULL, \
              NULL, $4, NULL, NULL), \
             ($2, $3, 'delete', 'instances', 'r2', 'agent \"é\"', 'FAILED', 99, 1, 1, \
              '{\"restore\":\"Running\"}', '{\"a\":[1,2]}', '{\"code\":2000,\"message\":\"x\\ny\"}', \
              $5, $4, $4 + 1, $4 + 2)",
        )
        .bind(bare.to_string())
        .bind(full.to_string())
        .bind(OrganizationId::new().to_string())
        .bind(now)
        .bind(NodeId::new().to_string())
        .execute(&local.write)
        .await
        .expect("tasks");
        sqlx::query(
            // Out of order: the log is read in the order of `seq`.
            "INSERT INTO task_steps (task_id, seq, name, action, outcome, detail, at) VALUES \
             ($1, 3, 'stop machine', 'undo', 'done', NULL, 3), \
             ($1, 1, 'stop machine', 'do', 'done', NULL, 1), \
             ($1, 2, 'delete machine', 'do', 'failed', 'disk \"busy\"', 2)",
        )
        .bind(full.to_string())
        .execute(&local.write)
        .await
        .expect("steps");
        for id in [bare, full, TaskId::new()] {
            let here = local.task_with_steps(id).await.expect("local read");
            let there = through_sqlx.task_with_steps(id).await.expect("sqlx read");
            assert_eq!(here, there);
        }
        let (_, steps) = local
            .task_with_steps(full)
            .await
            .expect("read")
            .expect("the task");
        let actions: Vec<_> = steps.iter().map(|s| (s.action, s.outcome)).collect();
        assert_eq!(
            actions,
            [("do", "done"), ("do", "failed"), ("undo", "done")]
        );
        assert_eq!(steps[1].detail.as_deref(), Some("disk \"busy\""));
        assert_eq!(
            local.task_status(full).await.expect("status"),
            through_sqlx.task_status(full).await.expect("status"),
        );
        assert_eq!(
            local
                .task_status(bare)
                .await
                .expect("status")
                .map(|(_, s)| s),
            Some(TaskStatus::Pending)
        );
        assert_eq!(
            local.task_status(TaskId::new()).await.expect("status"),
            None
        );

        // A claim returns its tasks as JSON objects: the same tasks a
        // read of their rows finds.
        let node = NodeId::new();
        let at = from_micros(now + 10);
        local
            .register_node(node, at, from_micros(now + 1_000_000))
            .await
            .expect("node");
        let claimed = local.claim_tasks(node, 10, at, true).await.expect("claim");
        assert_eq!(claimed.len(), 1, "only the pending task");
        assert_eq!(claimed[0].owner, Some(node));
        assert_eq!(claimed[0].started_at, Some(at));
        let row = through_sqlx.get_task(bare).await.expect("read");
        assert_eq!(Some(&claimed[0]), row.as_ref());
    }
}
