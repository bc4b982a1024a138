//! Kinds of task, typed: each kind of resource (instances today; volumes
//! and snapshots next) says which operations it has, the steps of each,
//! the input a task carries and the result it ends with. The engine knows
//! none of them: it drives whatever [`Kinds`] it is given, by the
//! resource type a task names.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nephele_common::{Error, Result};
use nephele_store::tasks::Task;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// A kind of resource that tasks work on, and what its operations do.
///
/// Every step must be idempotent (run twice, it has the effect of once:
/// a step may run again after a crash) and undoable (its undo may find
/// it half done, or not done at all). The engine's tests hold every kind
/// to this (see `nephele_tasks::faults`).
#[async_trait]
pub trait TaskKind: Send + Sync + 'static {
    /// The `resource_type` of its tasks.
    const RESOURCE: &'static str;
    /// What can be done to the resource.
    type Operation: Copy + fmt::Debug + Send + Sync + 'static;
    /// One step of an operation.
    type Step: Copy + fmt::Debug + Send + Sync + 'static;
    /// What a task carries from its acceptance to its steps.
    type Input: DeserializeOwned + Send + Sync;
    /// What a task ends with, as its `result`.
    type Output: Serialize + Send;

    /// The operation a task names; `None` for one this kind lacks.
    fn operation(name: &str) -> Option<Self::Operation>;
    /// The steps of `operation`, in order; never empty.
    fn steps(operation: Self::Operation) -> &'static [Self::Step];
    /// The step's name in the task's step log.
    fn step_name(step: Self::Step) -> &'static str;

    /// Runs `step`. What the last step returns is the task's result.
    async fn run(&self, job: &Job<Self>, step: Self::Step) -> Result<Option<Self::Output>>;
    /// Undoes `step`, which may have run partly, or not at all.
    async fn undo(&self, job: &Job<Self>, step: Self::Step) -> Result<()>;
    /// Once every step is undone: puts the resource in its defined state
    /// (`undo_failed`: one undo failed, and the resource may be broken).
    async fn settle(&self, job: &Job<Self>, undo_failed: bool) -> Result<()>;
    /// Cancels a task no node has started: it ends FAILED with `error`
    /// and the resource goes back where it was, in one transaction.
    /// `None` when the task is no longer waiting.
    async fn cancel(
        &self,
        job: &Job<Self>,
        error: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Task>>;
}

/// A task of kind `K`, its operation and input read once.
pub struct Job<K: TaskKind + ?Sized> {
    pub task: Task,
    pub operation: K::Operation,
    pub input: K::Input,
}

impl<K: TaskKind + ?Sized> Job<K> {
    /// Reads a stored task as a job of kind `K`.
    pub fn read(task: &Task) -> Result<Job<K>> {
        let operation = K::operation(&task.operation)
            .ok_or_else(|| Error::internal(format!("unknown operation {:?}", task.operation)))?;
        let input = serde_json::from_str(&task.input)
            .map_err(|e| Error::internal(format!("task {} input: {e}", task.id)))?;
        Ok(Job {
            task: task.clone(),
            operation,
            input,
        })
    }
}

/// What the engine sees of a kind: a stored task made ready to run.
pub(crate) trait Driven: Send + Sync {
    /// The task as a job of this kind, or why it cannot run.
    fn prepare(self: Arc<Self>, task: &Task) -> Result<Box<dyn Prepared>>;
}

impl<K: TaskKind> Driven for K {
    fn prepare(self: Arc<Self>, task: &Task) -> Result<Box<dyn Prepared>> {
        Ok(Box::new(Bound {
            job: Job::read(task)?,
            kind: self,
        }))
    }
}

#[async_trait]
pub(crate) trait Prepared: Send + Sync {
    fn step_names(&self) -> Vec<&'static str>;
    async fn run(&self, index: usize) -> Result<Option<String>>;
    async fn undo(&self, index: usize) -> Result<()>;
    async fn settle(&self, undo_failed: bool) -> Result<()>;
    async fn cancel(&self, error: &str, now: DateTime<Utc>) -> Result<Option<Task>>;
}

struct Bound<K: TaskKind> {
    kind: Arc<K>,
    job: Job<K>,
}

impl<K: TaskKind> Bound<K> {
    fn step(&self, index: usize) -> Result<K::Step> {
        K::steps(self.job.operation)
            .get(index)
            .copied()
            .ok_or_else(|| Error::internal(format!("no step {index} in {:?}", self.job.operation)))
    }
}

#[async_trait]
impl<K: TaskKind> Prepared for Bound<K> {
    fn step_names(&self) -> Vec<&'static str> {
        K::steps(self.job.operation)
            .iter()
            .map(|s| K::step_name(*s))
            .collect()
    }

    async fn run(&self, index: usize) -> Result<Option<String>> {
        let output = self.kind.run(&self.job, self.step(index)?).await?;
        output
            .map(|o| serde_json::to_string(&o))
            .transpose()
            .map_err(|e| Error::internal(format!("task result: {e}")))
    }

    async fn undo(&self, index: usize) -> Result<()> {
        self.kind.undo(&self.job, self.step(index)?).await
    }

    async fn settle(&self, undo_failed: bool) -> Result<()> {
        self.kind.settle(&self.job, undo_failed).await
    }

    async fn cancel(&self, error: &str, now: DateTime<Utc>) -> Result<Option<Task>> {
        self.kind.cancel(&self.job, error, now).await
    }
}

/// The kinds an engine drives, by resource type.
#[derive(Clone, Default)]
pub struct Kinds {
    by_resource: HashMap<&'static str, Arc<dyn Driven>>,
}

impl Kinds {
    pub fn new() -> Kinds {
        Kinds::default()
    }

    /// Adds a kind (one per resource type).
    pub fn with<K: TaskKind>(mut self, kind: Arc<K>) -> Kinds {
        self.by_resource.insert(K::RESOURCE, kind);
        self
    }

    /// The task as its kind runs it.
    pub(crate) fn prepare(&self, task: &Task) -> Result<Box<dyn Prepared>> {
        self.by_resource
            .get(task.resource_type.as_str())
            .ok_or_else(|| Error::internal(format!("no task kind for {:?}", task.resource_type)))?
            .clone()
            .prepare(task)
    }
}

impl fmt::Debug for Kinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.by_resource.keys()).finish()
    }
}
