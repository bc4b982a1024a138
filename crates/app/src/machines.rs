//! The hypervisor side of instances: which driver runs them, the images
//! it offers, and keeping each instance's recorded state true to its
//! machine when the machine changes outside any task (a guest that
//! powers itself off, a process killed from outside, a restart).

use crate::access::OpCtx;
use crate::App;
use nephele_auth::Permission;
use nephele_common::ids::InstanceId;
use nephele_common::page::{Page, PageRequest};
use nephele_common::Result;
use nephele_drivers::qemu::{QemuConfig, QemuDriver};
use nephele_drivers::sim::{SimConfig, SimDriver};
pub use nephele_drivers::Image;
use nephele_drivers::{Driver, Power};
use nephele_store::instances::InstanceState;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// How often every machine is compared with its record, besides the
/// driver's own change events.
const RECONCILE: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub enum DriverConfig {
    Sim(SimConfig),
    Qemu(QemuConfig),
}

/// Must run inside a Tokio runtime.
pub(crate) fn driver(
    config: &DriverConfig,
    store: &nephele_store::Store,
    clock: &nephele_common::clock::SharedClock,
) -> Result<Arc<dyn Driver>> {
    Ok(match config {
        DriverConfig::Sim(sim) => {
            Arc::new(SimDriver::new(store.clone(), clock.clone(), sim.clone()))
        }
        DriverConfig::Qemu(qemu) => Arc::new(QemuDriver::new(qemu.clone())?),
    })
}

/// What a recorded state becomes, given the machine's power; `None`
/// when they agree or a task owns the instance (transitional states).
fn reconciled(recorded: InstanceState, power: Option<Power>) -> Option<InstanceState> {
    match (recorded, power) {
        (InstanceState::Running, Some(Power::Stopped)) => Some(InstanceState::Stopped),
        (InstanceState::Running | InstanceState::Stopped, None) => Some(InstanceState::Error),
        (InstanceState::Stopped, Some(Power::Running)) => Some(InstanceState::Running),
        _ => None,
    }
}

impl App {
    /// The images instances can be made of.
    pub async fn list_images(&self, ctx: &OpCtx, page: &PageRequest) -> Result<Page<Image>> {
        let org = self.acting_organization(ctx, None);
        self.authorize(ctx, org, Permission::InstancesRead).await?;
        let mut images = self.driver().images().await?;
        images.sort_by(|a, b| a.name.cmp(&b.name));
        images.retain(|i| page.after.as_ref().is_none_or(|after| i.name > *after));
        images.truncate(page.limit as usize + 1);
        Ok(Page::from_rows(images, page.limit, |i| i.name.clone()))
    }

    /// Brings one instance's record in line with its machine.
    pub async fn reconcile_instance(&self, id: InstanceId) -> Result<()> {
        let Some(instance) = self.store().get_instance(id).await? else {
            return Ok(());
        };
        let power = self.driver().status(id).await?;
        let Some(state) = reconciled(instance.state, power) else {
            return Ok(());
        };
        let now = self.clock().now();
        if self
            .store()
            .reconcile_instance_state(id, instance.state, state, now)
            .await?
        {
            tracing::warn!(
                %id,
                from = instance.state.as_str(),
                to = state.as_str(),
                machine = ?power,
                "the machine changed outside any task; its record follows"
            );
        }
        Ok(())
    }

    /// Reconciles every machine the driver holds and every instance
    /// recorded as running.
    async fn reconcile_all(&self) -> Result<()> {
        let mut ids: BTreeSet<InstanceId> = self.driver().machines().await?.into_iter().collect();
        ids.extend(
            self.store()
                .instance_ids_in_state(InstanceState::Running)
                .await?,
        );
        for id in ids {
            if let Err(e) = self.reconcile_instance(id).await {
                tracing::warn!(%id, error = %e, "cannot reconcile the instance");
            }
        }
        Ok(())
    }

    /// For a driver whose machines change on their own: reconciles all at
    /// start, each as the driver reports it changed, and all again every
    /// [`RECONCILE`].
    pub(crate) async fn start_reconciling(&self) -> Result<()> {
        let Some(mut changes) = self.driver().changes() else {
            return Ok(());
        };
        self.reconcile_all().await?;
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            while let Some(id) = changes.recv().await {
                let Some(inner) = weak.upgrade() else { break };
                if let Err(e) = (App { inner }).reconcile_instance(id).await {
                    tracing::warn!(%id, error = %e, "cannot reconcile the instance");
                }
            }
        });
        crate::every(Arc::downgrade(&self.inner), RECONCILE, |app| async move {
            app.reconcile_all().await
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceState::*;

    #[test]
    fn only_settled_states_follow_the_machine() {
        assert_eq!(reconciled(Running, Some(Power::Stopped)), Some(Stopped));
        assert_eq!(reconciled(Stopped, Some(Power::Running)), Some(Running));
        assert_eq!(reconciled(Running, None), Some(Error));
        assert_eq!(reconciled(Running, Some(Power::Running)), None);
        assert_eq!(reconciled(Stopped, Some(Power::Stopped)), None);
        for owned in [Provisioning, Starting, Stopping, Rebooting, Deleting, Error] {
            assert_eq!(reconciled(owned, Some(Power::Stopped)), None);
            assert_eq!(reconciled(owned, None), None);
        }
    }
}
