//! The simulated hypervisor. Its machines live in a [`SimState`], which
//! the binary keeps in the shared database (in tables of the simulator's
//! own, made by [`MIGRATIONS`]), so they survive restarts and every node
//! sees the same ones, as it would a real hypervisor; each operation
//! takes `latency`; failures are injected by image name
//! (`fail-on-start`, or several: `fail-on-start+fail-on-delete`) or at
//! random with `failure_rate`. An injected failure happens before the
//! operation has any effect.

use crate::{Driver, Image, MachineSpec, Power};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nephele_common::batch::Batcher;
use nephele_common::clock::SharedClock;
use nephele_common::ids::{InstanceId, TaskId};
use nephele_common::{Error, ErrorCode, Result};
use std::sync::Arc;
use std::time::Duration;

/// The images the simulator offers besides the failure-injecting ones.
pub const IMAGES: [&str; 5] = [
    "ubuntu-24.04",
    "debian-12",
    "alpine-3.20",
    "fedora-41",
    "rocky-9",
];

const OPERATIONS: [&str; 5] = ["create", "start", "stop", "reboot", "delete"];

#[derive(Debug, Clone)]
pub struct SimConfig {
    pub latency: Duration,
    /// The chance, 0 to 1, that any operation fails.
    pub failure_rate: f64,
    /// Where the machines are kept.
    pub state: Arc<dyn SimState>,
}

/// A simulated machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMachine {
    pub id: InstanceId,
    /// `running` or `stopped`.
    pub power: String,
    pub cpu: i64,
    pub memory_mib: i64,
    pub image: String,
    /// How many times it has booted (a start or a reboot).
    pub boots: i64,
}

/// One change to the simulated machines. Each is idempotent: made twice
/// (a task step run again after a crash), it takes effect once.
#[derive(Debug, Clone)]
pub enum SimChange {
    /// Makes a stopped machine, unless it exists.
    Create {
        id: InstanceId,
        cpu: i64,
        memory_mib: i64,
        image: String,
    },
    /// Powers a machine on (counting a boot, with the sizes it boots with)
    /// or off; answers whether the machine exists.
    Power {
        id: InstanceId,
        on: bool,
        sizes: Option<(i64, i64)>,
    },
    /// Reboots a running machine once per task, however often asked;
    /// answers whether it runs.
    Reboot { id: InstanceId, task: TaskId },
    /// Removes a machine, unless it is gone; answers true.
    Delete { id: InstanceId },
}

/// Where the simulated hypervisor keeps its machines.
#[async_trait]
pub trait SimState: Send + Sync + std::fmt::Debug {
    /// Makes `changes`, in their order, in one transaction: one answer per
    /// change (see [`SimChange`]), each change made at its time.
    async fn apply(&self, changes: &[(SimChange, DateTime<Utc>)]) -> Result<Vec<bool>>;

    async fn machine(&self, id: InstanceId) -> Result<Option<SimMachine>>;
}

/// One migration of the simulator's tables: `NNNN_description` and its SQL.
pub type Migration = (&'static str, &'static str);

/// The simulator's tables, for each backend; a [`SimState`] in a
/// database applies them (and records them apart from the control
/// plane's).
pub struct Migrations {
    pub sqlite: &'static [Migration],
    pub postgres: &'static [Migration],
}

pub const MIGRATIONS: Migrations = Migrations {
    sqlite: &[(
        "0001_machines",
        include_str!("../migrations/sim/sqlite/0001_machines.sql"),
    )],
    postgres: &[(
        "0001_machines",
        include_str!("../migrations/sim/postgres/0001_machines.sql"),
    )],
};

#[derive(Debug)]
pub struct SimDriver {
    state: Arc<dyn SimState>,
    clock: SharedClock,
    config: SimConfig,
    /// Machine changes, written in groups.
    changes: Batcher<(SimChange, DateTime<Utc>), bool>,
}

/// Does `image` name an injected failure of `operation`?
fn fails_on(image: &str, operation: &str) -> bool {
    image
        .split('+')
        .any(|part| part.strip_prefix("fail-on-") == Some(operation))
}

/// Is `image` one the simulator offers: a known one, or failure
/// injections (`fail-on-OP[+fail-on-OP…]`).
pub fn known_image(image: &str) -> bool {
    IMAGES.contains(&image)
        || image.split('+').all(|part| {
            part.strip_prefix("fail-on-")
                .is_some_and(|op| OPERATIONS.contains(&op))
        })
}

impl SimDriver {
    /// Must run inside a Tokio runtime: it starts the writer of changes.
    pub fn new(clock: SharedClock, config: SimConfig) -> SimDriver {
        let writer = config.state.clone();
        SimDriver {
            changes: Batcher::start("simulated machines", 512, move |batch| {
                let state = writer.clone();
                async move { state.apply(&batch).await }
            }),
            state: config.state.clone(),
            clock,
            config,
        }
    }

    async fn change(&self, change: SimChange) -> Result<bool> {
        self.changes.submit((change, self.clock.now())).await
    }

    /// Waits the latency, then fails if this operation is to fail.
    async fn operate(&self, operation: &str, image: Option<&str>) -> Result<()> {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
        let injected = image.is_some_and(|i| fails_on(i, operation));
        let random = self.config.failure_rate > 0.0
            && rand::Rng::gen_bool(
                &mut rand::thread_rng(),
                self.config.failure_rate.clamp(0.0, 1.0),
            );
        if injected || random {
            return Err(Error::new(
                ErrorCode::Unavailable,
                format!(
                    "The simulated hypervisor failed to {operation} the machine (injected failure)"
                ),
            ));
        }
        Ok(())
    }

    async fn image_of(&self, id: InstanceId) -> Result<Option<String>> {
        Ok(self.state.machine(id).await?.map(|m| m.image))
    }
}

#[async_trait]
impl Driver for SimDriver {
    fn name(&self) -> &'static str {
        "sim"
    }

    async fn images(&self) -> Result<Vec<Image>> {
        Ok(IMAGES
            .iter()
            .map(|name| Image {
                name: (*name).to_owned(),
                format: "simulated".to_owned(),
                size_bytes: None,
            })
            .collect())
    }

    async fn has_image(&self, image: &str) -> Result<bool> {
        Ok(known_image(image))
    }

    async fn create(&self, spec: &MachineSpec) -> Result<()> {
        self.operate("create", Some(&spec.image)).await?;
        self.change(SimChange::Create {
            id: spec.id,
            cpu: spec.cpu,
            memory_mib: spec.memory_mib,
            image: spec.image.clone(),
        })
        .await
        .map(|_| ())
    }

    async fn start(&self, spec: &MachineSpec) -> Result<()> {
        self.operate("start", Some(&spec.image)).await?;
        let on = SimChange::Power {
            id: spec.id,
            on: true,
            sizes: Some((spec.cpu, spec.memory_mib)),
        };
        if !self.change(on).await? {
            return Err(failure("The simulated machine does not exist"));
        }
        Ok(())
    }

    async fn stop(&self, id: InstanceId) -> Result<()> {
        let image = self.image_of(id).await?;
        self.operate("stop", image.as_deref()).await?;
        let off = SimChange::Power {
            id,
            on: false,
            sizes: None,
        };
        if !self.change(off).await? {
            return Err(failure("The simulated machine does not exist"));
        }
        Ok(())
    }

    async fn reboot(&self, id: InstanceId, task: TaskId) -> Result<()> {
        let image = self.image_of(id).await?;
        self.operate("reboot", image.as_deref()).await?;
        if !self.change(SimChange::Reboot { id, task }).await? {
            return Err(failure("The simulated machine is not running"));
        }
        Ok(())
    }

    async fn delete(&self, id: InstanceId) -> Result<()> {
        let Some(image) = self.image_of(id).await? else {
            return Ok(());
        };
        self.operate("delete", Some(&image)).await?;
        self.change(SimChange::Delete { id }).await.map(|_| ())
    }

    async fn status(&self, id: InstanceId) -> Result<Option<Power>> {
        Ok(self.state.machine(id).await?.map(|m| {
            if m.power == "running" {
                Power::Running
            } else {
                Power::Stopped
            }
        }))
    }
}

/// A hypervisor failure, told as it is: the task's error shows it.
fn failure(message: &str) -> Error {
    Error::new(ErrorCode::Unavailable, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_named_by_image() {
        assert!(fails_on("fail-on-start", "start"));
        assert!(fails_on("fail-on-start+fail-on-delete", "delete"));
        assert!(!fails_on("fail-on-start", "stop"));
        assert!(!fails_on("ubuntu-24.04", "start"));
        assert!(known_image("fail-on-start+fail-on-delete"));
        assert!(known_image("debian-12"));
        assert!(!known_image("fail-on-fly"));
        assert!(!known_image("windows-95"));
    }
}
