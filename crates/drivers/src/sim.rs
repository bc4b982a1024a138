//! The simulated hypervisor. Machines live in the database (so they
//! survive restarts and every node sees the same ones); each operation
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
use nephele_store::sim::SimChange;
use nephele_store::Store;
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
}

#[derive(Debug)]
pub struct SimDriver {
    store: Store,
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
    pub fn new(store: Store, clock: SharedClock, config: SimConfig) -> SimDriver {
        let writer = store.clone();
        SimDriver {
            changes: Batcher::start("simulated machines", 512, move |batch| {
                let store = writer.clone();
                async move { store.sim_apply(&batch).await }
            }),
            store,
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
        Ok(self.store.sim_machine(id).await?.map(|m| m.image))
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
        Ok(self.store.sim_machine(id).await?.map(|m| {
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
