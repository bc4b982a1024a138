//! Faults injected into steps, for the tests that hold every task kind to
//! its contract, in the manner of omicron's saga tests: a step that fails
//! (without having run) must leave the resource in its defined state once
//! the steps before it are undone, and a step run twice must have the
//! effect of running once, and a node that dies between two steps leaves
//! a task that resumes and ends as if it had not. Nothing is injected
//! unless a test sets it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use nephele_common::{Error, ErrorCode, Result};

use crate::kind::Prepared;

#[derive(Debug, Default)]
pub struct Faults {
    /// Cheap to read on every step while nothing is set.
    armed: AtomicBool,
    set: Mutex<Set>,
    /// How many steps ran twice, and how many halts happened: a test
    /// sees that what it set took effect.
    repeated: AtomicUsize,
    halted: AtomicUsize,
}

#[derive(Debug, Default, Clone)]
struct Set {
    /// Fails this step of this operation, instead of running it.
    fail: Option<(String, usize)>,
    /// Runs every step twice.
    repeat: bool,
    /// Once this step of this operation is done, the node lets the task
    /// go as a crash would, its unrecorded steps unrecorded; once.
    halt: Option<(String, usize)>,
}

impl Set {
    fn any(&self) -> bool {
        self.fail.is_some() || self.repeat || self.halt.is_some()
    }
}

/// Does `target` name step `index` of `operation`?
fn names(target: &Option<(String, usize)>, operation: &str, index: usize) -> bool {
    target
        .as_ref()
        .is_some_and(|(op, step)| op == operation && *step == index)
}

impl Faults {
    /// Step `index` of `operation` fails, without running, from now on.
    pub fn fail_step(&self, operation: &str, index: usize) {
        self.update(|s| s.fail = Some((operation.to_owned(), index)));
    }

    /// Every step runs twice in a row; the second run's result counts.
    pub fn repeat_steps(&self) {
        self.update(|s| s.repeat = true);
    }

    /// After step `index` of `operation`, the node drops the task as if
    /// it had died there, once: what it had not recorded is lost, and the
    /// task resumes from its last record, on whichever node claims it.
    pub fn halt_after(&self, operation: &str, index: usize) {
        self.update(|s| s.halt = Some((operation.to_owned(), index)));
    }

    /// How many steps have run twice so far.
    pub fn repeated(&self) -> usize {
        self.repeated.load(Ordering::Acquire)
    }

    /// How many halts have happened so far.
    pub fn halted(&self) -> usize {
        self.halted.load(Ordering::Acquire)
    }

    /// Nothing is injected any more.
    pub fn clear(&self) {
        self.update(|s| *s = Set::default());
    }

    fn update(&self, change: impl FnOnce(&mut Set)) {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut set);
        self.armed.store(
            set.fail.is_some() || set.repeat || set.halt.is_some(),
            Ordering::Release,
        );
    }

    /// Whether the node dies after step `index` of `operation` (once).
    pub(crate) fn halts_after(&self, operation: &str, index: usize) -> bool {
        if !self.armed.load(Ordering::Acquire) {
            return false;
        }
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        if !names(&set.halt, operation, index) {
            return false;
        }
        set.halt = None;
        self.armed.store(set.any(), Ordering::Release);
        self.halted.fetch_add(1, Ordering::AcqRel);
        true
    }

    /// Runs step `index`, or what the faults make of it.
    pub(crate) async fn run(
        &self,
        operation: &str,
        index: usize,
        prepared: &dyn Prepared,
    ) -> Result<Option<String>> {
        if !self.armed.load(Ordering::Acquire) {
            return prepared.run(index).await;
        }
        let set = self.set.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if names(&set.fail, operation, index) {
            return Err(Error::new(
                ErrorCode::Unavailable,
                format!("Injected failure of step {index} of {operation}"),
            ));
        }
        if set.repeat {
            prepared.run(index).await?;
            self.repeated.fetch_add(1, Ordering::AcqRel);
        }
        prepared.run(index).await
    }
}
