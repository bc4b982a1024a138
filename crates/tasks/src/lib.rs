//! The durable task engine.
//!
//! A task is a sequence of steps, each idempotent and each with an undo,
//! of one of the [`Kinds`] the engine is given (each a [`TaskKind`]). The
//! engine claims queued tasks (see `nephele_store::tasks` for the lease)
//! and runs their steps in order. A
//! step done is recorded once the next one has run for [`RECORD_AFTER`],
//! or with whatever is written first after it (a failure, the task's
//! end): quick steps cost one write between them, not one each. A task
//! interrupted by a crash resumes, on whichever node claims it next, at
//! the first step not recorded, and steps are idempotent, so one that ran
//! unrecorded takes effect once.
//! When a step fails, the steps done so far (and the failed one, which may
//! have half happened) are undone in reverse, the resource is settled in a
//! defined state, and the task ends FAILED with the step's error.

mod faults;
mod kind;
mod metrics;

pub use faults::Faults;
pub use kind::{Job, Kinds, TaskKind};
pub use metrics::TaskMetrics;

use kind::Prepared;

use chrono::{DateTime, Utc};
use nephele_common::batch::Batcher;
use nephele_common::clock::{to_micros, SharedClock};
use nephele_common::ids::{NodeId, TaskId};
use nephele_common::{Error, Result};
use nephele_store::tasks::{Finish, Progress, StepEntry, Task, TaskStatus};
use nephele_store::Store;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How many tasks run at once on this node.
    pub workers: usize,
    /// How long a node's claim on its tasks lasts without renewal.
    pub lease: Duration,
    /// How often the queue is polled when nothing wakes the engine.
    pub poll: Duration,
    /// How long finished tasks are kept.
    pub retention: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            workers: 256,
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(200),
            retention: Duration::from_secs(24 * 3600),
        }
    }
}

/// The engine of one node. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.inner.node)
            .finish()
    }
}

struct Inner {
    store: Store,
    clock: SharedClock,
    node: NodeId,
    config: EngineConfig,
    kinds: Kinds,
    faults: Faults,
    workers: Arc<Semaphore>,
    wake: Notify,
    /// Tasks may be queued here that no worker of this node was free for:
    /// a worker that frees up wakes the claims. Otherwise the claims wake
    /// only for the poll (tasks other nodes queued, and orphans); a look
    /// at the queue after every task that ends would find nothing.
    backlog: AtomicBool,
    /// Until when (micros) this node's lease is known to hold.
    lease_until: AtomicI64,
    stopping: AtomicBool,
    progress: Batcher<Progress, bool>,
    finisher: Batcher<Finish, bool>,
    /// Requests waiting for a task to finish (`?wait=`).
    waiters: Mutex<HashMap<TaskId, Arc<Finished>>>,
    metrics: TaskMetrics,
}

/// How many step records are written in one transaction.
const PROGRESS_BATCH: usize = 512;
/// How long a step runs before the steps done ahead of it are recorded
/// (and `progress` shows them): long enough for quick steps, such as
/// the simulated driver's at no latency, to be recorded together.
pub const RECORD_AFTER: Duration = Duration::from_millis(50);
/// How often finished tasks past their retention are purged.
const PURGE_EVERY: Duration = Duration::from_secs(60);

fn error_json(e: &Error) -> Value {
    let detail = e.details().first();
    json!({
        "code": e.code().number(),
        "message": detail.map(|d| d.message.as_str()).unwrap_or("The operation failed"),
        "context": detail.map(|d| Value::Object(d.context.clone())).unwrap_or(json!({})),
    })
}

impl Engine {
    /// Registers this node and starts claiming tasks. Must run inside a
    /// Tokio runtime; the background work ends when the engine is dropped.
    pub async fn start(
        store: Store,
        clock: SharedClock,
        kinds: Kinds,
        config: EngineConfig,
    ) -> Result<Engine> {
        let node = NodeId::new();
        let now = clock.now();
        let until = now + lease(&config);
        store.register_node(node, now, until).await?;
        let writer = store.clone();
        let finisher = store.clone();
        let engine = Engine {
            inner: Arc::new(Inner {
                progress: Batcher::start("task progress", PROGRESS_BATCH, move |batch| {
                    let store = writer.clone();
                    async move { store.record_progress(&batch).await }
                }),
                finisher: Batcher::start("task ends", PROGRESS_BATCH, move |batch| {
                    let store = finisher.clone();
                    async move { store.finish_tasks(&batch).await }
                }),
                workers: Arc::new(Semaphore::new(config.workers.max(1))),
                lease_until: AtomicI64::new(to_micros(until)),
                store,
                clock,
                node,
                config,
                kinds,
                faults: Faults::default(),
                wake: Notify::new(),
                backlog: AtomicBool::new(false),
                stopping: AtomicBool::new(false),
                waiters: Mutex::new(HashMap::new()),
                metrics: TaskMetrics::new(),
            }),
        };
        tracing::info!(node = %node, "task engine started");
        let weak = Arc::downgrade(&engine.inner);
        tokio::spawn(heartbeat(weak.clone()));
        tokio::spawn(claim_loop(weak.clone()));
        tokio::spawn(purge_loop(weak));
        Ok(engine)
    }

    /// This node's id: the owner of the tasks it runs and of the
    /// idempotency claims it holds.
    pub fn node(&self) -> NodeId {
        self.inner.node
    }

    pub fn metrics(&self) -> &TaskMetrics {
        &self.inner.metrics
    }

    /// Faults to inject into the steps this node runs, for the tests that
    /// hold every task kind to its contract. Off unless set.
    pub fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    /// Cancels `task`, which no node has started, through its kind: it
    /// ends FAILED with `error` and its resource goes back where it was.
    /// `None` when it is no longer waiting.
    pub async fn cancel(
        &self,
        task: &Task,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>> {
        self.inner.kinds.prepare(task)?.cancel(error, now).await
    }

    /// A task was queued: look now rather than at the next poll.
    pub fn wake(&self) {
        self.inner.backlog.store(true, Ordering::Release);
        self.inner.wake.notify_one();
    }

    /// Sets a worker aside for a task about to be queued, when one is
    /// free and this node may start work: the task is queued as this
    /// node's ([`Claim::node`]) and handed to [`Engine::run`] once it is
    /// stored, so that it starts without a claim of the queue (a write,
    /// and the wait for it). Dropped unused, the worker is free again.
    pub fn reserve(&self) -> Option<Claim> {
        // Tasks that wait for a worker go first: a new one queues behind.
        if self.inner.backlog.load(Ordering::Acquire)
            || !self.inner.may_proceed(self.inner.clock.now())
        {
            return None;
        }
        let permit = self.inner.workers.clone().try_acquire_owned().ok()?;
        Some(Claim {
            node: self.inner.node,
            permit,
        })
    }

    /// Runs `task`, stored as this node's with `claim`'s worker.
    pub fn run(&self, claim: Claim, task: Task) {
        spawn_drive(&self.inner, Arc::downgrade(&self.inner), task, claim.permit);
    }

    /// Starts watching task `id`: the watch learns of its end on this node
    /// from now on, even before anyone waits on it. Tasks finished on other
    /// nodes are seen by the caller's own polling.
    pub fn watch(&self, id: TaskId) -> TaskWatch {
        let finished = {
            let mut waiters = self.inner.waiters.lock().unwrap_or_else(|e| e.into_inner());
            waiters.entry(id).or_default().clone()
        };
        TaskWatch {
            engine: Arc::downgrade(&self.inner),
            id,
            finished,
        }
    }

    /// Stops claiming, lets running steps end (at most `grace`), hands
    /// every unfinished task back to the queue and gives up the lease.
    pub async fn shutdown(&self, grace: Duration) -> Result<()> {
        self.inner.stopping.store(true, Ordering::Release);
        self.inner.wake.notify_one();
        let all = u32::try_from(self.inner.config.workers.max(1)).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(grace, self.inner.workers.acquire_many(all)).await;
        self.inner
            .store
            .retire_node(self.inner.node, self.inner.clock.now())
            .await
    }
}

/// A worker set aside for one task; see [`Engine::reserve`].
pub struct Claim {
    node: NodeId,
    permit: OwnedSemaphorePermit,
}

impl Claim {
    /// The node the task is to be stored as claimed by.
    pub fn node(&self) -> NodeId {
        self.node
    }
}

/// Whether a watched task has ended on this node.
#[derive(Default)]
struct Finished {
    done: AtomicBool,
    notify: Notify,
}

/// A watch on one task's end; see [`Engine::watch`].
pub struct TaskWatch {
    engine: Weak<Inner>,
    id: TaskId,
    finished: Arc<Finished>,
}

impl TaskWatch {
    /// Has the task ended on this node since the watch began?
    pub fn ended(&self) -> bool {
        self.finished.done.load(Ordering::Acquire)
    }

    /// Waits at most `timeout` for the task to end on this node (at once
    /// if it already has); the caller re-reads it.
    pub async fn finished(&self, timeout: Duration) {
        let notified = self.finished.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if !self.finished.done.load(Ordering::Acquire) {
            let _ = tokio::time::timeout(timeout, notified).await;
        }
    }
}

impl Drop for TaskWatch {
    fn drop(&mut self) {
        let Some(inner) = self.engine.upgrade() else {
            return;
        };
        let mut waiters = inner.waiters.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map and this watch hold it: nobody else watches.
        if waiters
            .get(&self.id)
            .is_some_and(|f| Arc::strong_count(f) <= 2)
        {
            waiters.remove(&self.id);
        }
    }
}

fn lease(config: &EngineConfig) -> chrono::Duration {
    chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(10))
}

impl Inner {
    /// May this node start another step? Its lease must hold for a while
    /// yet, and it must not be stopping.
    fn may_proceed(&self, now: DateTime<Utc>) -> bool {
        let margin = to_micros(now) + i64::try_from(self.config.lease.as_micros() / 4).unwrap_or(0);
        !self.stopping.load(Ordering::Acquire) && self.lease_until.load(Ordering::Acquire) > margin
    }

    fn notify_finished(&self, id: TaskId) {
        let waiters = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = waiters.get(&id) {
            f.done.store(true, Ordering::Release);
            f.notify.notify_waiters();
        }
    }

    /// Records a step; false when the task is no longer this node's.
    async fn record(
        &self,
        task: &Task,
        step: i64,
        unwinding: bool,
        error: Option<String>,
        entries: Vec<StepEntry>,
        steps: usize,
    ) -> Result<bool> {
        let done = if unwinding { task.progress } else { step };
        let progress = (done * 100 / i64::try_from(steps.max(1)).unwrap_or(1)).min(99);
        self.progress
            .submit(Progress {
                task: task.id,
                owner: self.node,
                step,
                unwinding,
                progress,
                error,
                entries,
                now: self.clock.now(),
            })
            .await
    }

    /// Runs a claimed task to its end (true), or until this node must let
    /// it go (false: it is stopping, or its lease is in doubt).
    async fn drive(&self, mut task: Task) -> Result<bool> {
        let prepared = self.kinds.prepare(&task);
        let steps = prepared
            .as_ref()
            .map(|p| p.step_names())
            .unwrap_or_default();
        let prepared = match prepared {
            Ok(p) if !steps.is_empty() => p,
            failed => {
                let e = failed
                    .err()
                    .unwrap_or_else(|| Error::internal("an operation of no steps"));
                let error = Some(error_json(&e).to_string());
                self.end(&task, TaskStatus::Failed, None, error, None, Vec::new())
                    .await?;
                return Ok(true);
            }
        };
        let mut undo_failed = task
            .error
            .as_deref()
            .and_then(|e| serde_json::from_str::<Value>(e).ok())
            .is_some_and(|e| e["context"]["undoFailed"] == json!(true));
        // Steps done since the last record: `task.step` counts them.
        let mut unrecorded = Vec::new();
        loop {
            if !self.may_proceed(self.clock.now()) {
                // Another node (or the next start) takes it from here.
                return Ok(false);
            }
            let index = usize::try_from(task.step).unwrap_or(0);
            if !task.unwinding {
                // Past the last step (recorded on its own by an earlier
                // version): run it again, idempotent, for the result.
                let index = index.min(steps.len() - 1);
                let name = steps[index];
                let Some((outcome, took)) = self
                    .run_step(&task, &*prepared, index, &mut unrecorded, steps.len())
                    .await?
                else {
                    return Ok(true);
                };
                self.metrics
                    .step(&task.operation, name, took, outcome.is_ok());
                match outcome {
                    Ok(result) => {
                        unrecorded.push(entry(name, "do", "done", None));
                        let done = i64::try_from(index + 1).unwrap_or(i64::MAX);
                        if index + 1 == steps.len() {
                            // The last step is recorded with the task's end.
                            self.end(
                                &task,
                                TaskStatus::Success,
                                result,
                                None,
                                Some(done),
                                unrecorded,
                            )
                            .await?;
                            return Ok(true);
                        }
                        task.step = done;
                        if self.faults.halts_after(&task.operation, index) {
                            return Ok(false);
                        }
                    }
                    Err(e) => {
                        let error = error_json(&e);
                        let detail = error["message"].as_str().map(str::to_owned);
                        tracing::info!(task = %task.id, step = name, error = %e, "task step failed; undoing");
                        unrecorded.push(entry(name, "do", "failed", detail));
                        // The failed step may have half happened: undo it too.
                        let step = i64::try_from(index).unwrap_or(i64::MAX);
                        let error = Some(error.to_string());
                        let entries = std::mem::take(&mut unrecorded);
                        if !self
                            .record(&task, step, true, error.clone(), entries, steps.len())
                            .await?
                        {
                            return Ok(true);
                        }
                        task.step = step;
                        task.unwinding = true;
                        task.error = error;
                    }
                }
            } else {
                if task.step < 0 {
                    prepared.settle(undo_failed).await?;
                    let error = task.error.clone();
                    self.end(&task, TaskStatus::Failed, None, error, None, Vec::new())
                        .await?;
                    return Ok(true);
                }
                let name = steps[index.min(steps.len() - 1)];
                let (outcome, detail) = match prepared.undo(index).await {
                    Ok(()) => ("done", None),
                    Err(e) => {
                        tracing::warn!(task = %task.id, step = name, error = %e, "undo failed");
                        undo_failed = true;
                        let message = error_json(&e)["message"].clone();
                        let mut error = task
                            .error
                            .as_deref()
                            .and_then(|e| serde_json::from_str::<Value>(e).ok())
                            .unwrap_or_else(|| json!({"context": {}}));
                        error["context"]["undoFailed"] = json!(true);
                        error["context"]["undoError"] = message.clone();
                        task.error = Some(error.to_string());
                        ("failed", message.as_str().map(str::to_owned))
                    }
                };
                let error = (outcome == "failed").then(|| task.error.clone()).flatten();
                if !self
                    .record(
                        &task,
                        task.step - 1,
                        true,
                        error,
                        vec![entry(name, "undo", outcome, detail)],
                        steps.len(),
                    )
                    .await?
                {
                    return Ok(true);
                }
                task.step -= 1;
            }
        }
    }

    /// Runs step `index`: its outcome and how long it took, or `None`
    /// when the task turned out to be no longer this node's. Steps done
    /// before it and not yet recorded are recorded once it has run for
    /// [`RECORD_AFTER`], alongside it.
    async fn run_step(
        &self,
        task: &Task,
        prepared: &dyn Prepared,
        index: usize,
        unrecorded: &mut Vec<StepEntry>,
        steps: usize,
    ) -> Result<Option<(Result<Option<String>>, Duration)>> {
        let run = async {
            let started = std::time::Instant::now();
            let outcome = self.faults.run(&task.operation, index, prepared).await;
            (outcome, started.elapsed())
        };
        if unrecorded.is_empty() {
            return Ok(Some(run.await));
        }
        tokio::pin!(run);
        tokio::select! {
            ran = &mut run => return Ok(Some(ran)),
            () = tokio::time::sleep(RECORD_AFTER) => {}
        }
        let entries = std::mem::take(unrecorded);
        let (held, ran) = tokio::join!(
            self.record(task, task.step, false, None, entries, steps),
            run
        );
        Ok(held?.then_some(ran))
    }

    async fn end(
        &self,
        task: &Task,
        status: TaskStatus,
        result: Option<String>,
        error: Option<String>,
        step: Option<i64>,
        entries: Vec<StepEntry>,
    ) -> Result<()> {
        let now = self.clock.now();
        if self
            .finisher
            .submit(Finish {
                task: task.id,
                owner: self.node,
                status,
                result,
                error,
                now,
                step,
                entries,
            })
            .await?
        {
            let took = task
                .started_at
                .map(|s| (now - s).to_std().unwrap_or_default())
                .unwrap_or_default();
            self.metrics.finished(&task.operation, status, took);
            self.notify_finished(task.id);
        }
        Ok(())
    }
}

fn entry(
    name: &str,
    action: &'static str,
    outcome: &'static str,
    detail: Option<String>,
) -> StepEntry {
    StepEntry {
        name: name.to_owned(),
        action,
        outcome,
        detail,
    }
}

/// Renews this node's lease three times per lease period. A node that
/// could not renew in time stops starting steps (see `may_proceed`) until
/// it can again; tasks taken over meanwhile are no longer its to write.
async fn heartbeat(engine: Weak<Inner>) {
    loop {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let period = inner.config.lease / 3;
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        let now = inner.clock.now();
        let until = now + lease(&inner.config);
        match inner.store.renew_node(inner.node, now, until).await {
            Ok(true) => inner.lease_until.store(to_micros(until), Ordering::Release),
            Ok(false) => {
                tracing::warn!(node = %inner.node, "the task lease ran out; registering again");
                match inner.store.register_node(inner.node, now, until).await {
                    Ok(()) => inner.lease_until.store(to_micros(until), Ordering::Release),
                    Err(e) => tracing::warn!(error = %e, "could not register the node again"),
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not renew the task lease"),
        }
        drop(inner);
        tokio::time::sleep(period).await;
    }
}

/// Claims as many tasks as there are free workers, and runs each. Tasks
/// of nodes whose lease ran out are looked for once per poll period; the
/// queue, whenever the engine is woken.
async fn claim_loop(engine: Weak<Inner>) {
    let mut last_sweep: Option<tokio::time::Instant> = None;
    loop {
        let Some(inner) = engine.upgrade() else {
            return;
        };
        if inner.stopping.load(Ordering::Acquire) {
            return;
        }
        let free = inner.workers.available_permits();
        let mut claimed = 0;
        if free > 0 && inner.may_proceed(inner.clock.now()) {
            let orphans = last_sweep.is_none_or(|at| at.elapsed() >= inner.config.poll);
            if orphans {
                last_sweep = Some(tokio::time::Instant::now());
            }
            // This look covers whatever was queued before it.
            inner.backlog.store(false, Ordering::Release);
            match inner
                .store
                .claim_tasks(inner.node, free, inner.clock.now(), orphans)
                .await
            {
                Ok(tasks) => {
                    claimed = tasks.len();
                    for task in tasks {
                        // Claimed, so ours to run: if a request reserved
                        // the worker it was counted on, wait for another.
                        let Ok(permit) = inner.workers.clone().acquire_owned().await else {
                            break;
                        };
                        spawn_drive(&inner, engine.clone(), task, permit);
                    }
                }
                Err(e) => {
                    inner.backlog.store(true, Ordering::Release);
                    tracing::warn!(error = %e, "could not claim tasks");
                }
            }
        }
        let poll = inner.config.poll;
        let full = claimed == free && free > 0;
        if full {
            // More may be waiting: look again once a worker is free.
            inner.backlog.store(true, Ordering::Release);
            let workers = inner.workers.clone();
            drop(inner);
            if let Ok(p) = workers.acquire_owned().await {
                drop(p);
            }
            continue;
        }
        let notified = inner.wake.notified();
        let _ = tokio::time::timeout(poll, notified).await;
    }
}

fn spawn_drive(inner: &Arc<Inner>, engine: Weak<Inner>, task: Task, permit: OwnedSemaphorePermit) {
    inner.metrics.running(1);
    tokio::spawn(async move {
        let id = task.id;
        if let Some(inner) = engine.upgrade() {
            let let_go = match inner.drive(task).await {
                Ok(done) => !done,
                Err(e) => {
                    tracing::warn!(task = %id, error = %e, "task interrupted; it will be taken up again");
                    true
                }
            };
            if let_go {
                // Back to the queue at once, rather than when the lease ends.
                if let Err(e) = inner.store.release_task(id, inner.node).await {
                    tracing::warn!(task = %id, error = %e, "could not hand a task back");
                }
                inner.backlog.store(true, Ordering::Release);
            }
            inner.metrics.running(-1);
            drop(permit);
            if inner.backlog.load(Ordering::Acquire) {
                inner.wake.notify_one();
            }
        }
    });
}

async fn purge_loop(engine: Weak<Inner>) {
    loop {
        tokio::time::sleep(PURGE_EVERY).await;
        let Some(inner) = engine.upgrade() else {
            return;
        };
        let before = inner.clock.now()
            - chrono::Duration::from_std(inner.config.retention)
                .unwrap_or(chrono::Duration::hours(24));
        match inner.store.purge_tasks(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(tasks = n, "purged finished tasks past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not purge finished tasks"),
        }
    }
}
