//! Hypervisor drivers: what actually makes, starts and stops machines.
//! The task engine calls a [`Driver`]; every operation must be idempotent
//! (asked twice, it takes effect once), because a step interrupted by a
//! crash runs again.

pub mod qemu;
pub mod qmp;
pub mod sim;

use async_trait::async_trait;
use nephele_common::ids::{InstanceId, TaskId};
use nephele_common::Result;
use tokio::sync::mpsc;

/// What a machine is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineSpec {
    pub id: InstanceId,
    pub cpu: i64,
    pub memory_mib: i64,
    pub disk_gib: i64,
    pub image: String,
}

/// A machine's power state as the hypervisor sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Power {
    Running,
    Stopped,
}

/// An image instances can be made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub name: String,
    /// `qcow2`, `raw`, or `simulated`.
    pub format: String,
    /// The image file's size, where there is a file.
    pub size_bytes: Option<u64>,
}

#[async_trait]
pub trait Driver: Send + Sync + std::fmt::Debug {
    /// `sim` or `qemu`.
    fn name(&self) -> &'static str;
    /// The images it offers, by name.
    async fn images(&self) -> Result<Vec<Image>>;
    /// Can instances be made of `image`?
    async fn has_image(&self, image: &str) -> Result<bool>;
    /// Makes the machine (stopped), unless it exists.
    async fn create(&self, spec: &MachineSpec) -> Result<()>;
    /// Powers it on with the spec's sizes, unless it runs.
    async fn start(&self, spec: &MachineSpec) -> Result<()>;
    /// Powers it off, unless it is off.
    async fn stop(&self, id: InstanceId) -> Result<()>;
    /// Restarts it, once for `task` however often asked.
    async fn reboot(&self, id: InstanceId, task: TaskId) -> Result<()>;
    /// Removes it and everything it holds, unless it is gone.
    async fn delete(&self, id: InstanceId) -> Result<()>;
    /// Its power state; `None` when there is no such machine.
    async fn status(&self, id: InstanceId) -> Result<Option<Power>>;
    /// Machines whose power may have changed outside any operation (a
    /// guest that powered itself off, a process killed from outside):
    /// the receiver, for the one caller that reconciles them. `None` when
    /// machines change only through operations.
    fn changes(&self) -> Option<mpsc::UnboundedReceiver<InstanceId>> {
        None
    }
    /// The machines it holds, to be reconciled with the records at start.
    async fn machines(&self) -> Result<Vec<InstanceId>> {
        Ok(Vec::new())
    }
}
