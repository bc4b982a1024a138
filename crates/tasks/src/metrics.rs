//! What the engine counts, for `/metrics`.

use nephele_store::tasks::TaskStatus;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FinishedLabels {
    operation: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StepLabels {
    operation: String,
    step: String,
    outcome: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Tasks finished by operation and status, their duration, the duration
/// of each step, and how many run now on this node.
#[derive(Debug, Clone)]
pub struct TaskMetrics {
    finished: Family<FinishedLabels, Counter>,
    duration: Histograms<OperationLabels>,
    steps: Histograms<StepLabels>,
    running: Gauge,
}

impl Default for TaskMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskMetrics {
    pub fn new() -> TaskMetrics {
        TaskMetrics {
            finished: Family::default(),
            duration: Family::new_with_constructor(seconds),
            steps: Family::new_with_constructor(seconds),
            running: Gauge::default(),
        }
    }

    /// Adds these metrics to a registry.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tasks_finished",
            "Tasks finished on this node, by operation and status",
            self.finished.clone(),
        );
        registry.register(
            "task_duration_seconds",
            "From a task's start to its end, by operation",
            self.duration.clone(),
        );
        registry.register(
            "task_step_duration_seconds",
            "Driver and bookkeeping time of each task step",
            self.steps.clone(),
        );
        registry.register(
            "tasks_running",
            "Tasks running on this node now",
            self.running.clone(),
        );
    }

    pub(crate) fn finished(&self, operation: &str, status: TaskStatus, took: Duration) {
        self.finished
            .get_or_create(&FinishedLabels {
                operation: operation.to_owned(),
                status: status.as_str().to_owned(),
            })
            .inc();
        self.duration
            .get_or_create(&OperationLabels {
                operation: operation.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn step(&self, operation: &str, step: &str, took: Duration, ok: bool) {
        self.steps
            .get_or_create(&StepLabels {
                operation: operation.to_owned(),
                step: step.to_owned(),
                outcome: if ok { "done" } else { "failed" }.to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    pub(crate) fn running(&self, delta: i64) {
        self.running.inc_by(delta);
    }
}
