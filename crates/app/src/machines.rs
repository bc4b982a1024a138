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
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How often every machine is compared with its record, besides the
/// driver's own change events.
const RECONCILE: Duration = Duration::from_secs(30);
/// How often a changed machine whose instance a task owned is looked at
/// again.
const RECHECK: Duration = Duration::from_secs(1);
/// How often a failing reconciliation is tried before it waits for the
/// next sweep.
const RECHECK_TRIES: u32 = 10;

#[derive(Debug, Clone)]
pub enum DriverConfig {
    Sim(SimConfig),
    Qemu(QemuConfig),
}

/// Must run inside a Tokio runtime.
pub(crate) fn driver(
    config: &DriverConfig,
    clock: &nephele_common::clock::SharedClock,
) -> Result<Arc<dyn Driver>> {
    Ok(match config {
        DriverConfig::Sim(sim) => Arc::new(SimDriver::new(clock.clone(), sim.clone())),
        DriverConfig::Qemu(qemu) => Arc::new(QemuDriver::new(qemu.clone())?),
    })
}

/// What a recorded state becomes, given the machine's power.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Agrees,
    Becomes(InstanceState),
    /// A task owns the instance (a transitional state): ask again later.
    Owned,
}

fn reconciled(recorded: InstanceState, power: Option<Power>) -> Verdict {
    use InstanceState::*;
    match (recorded, power) {
        (Running, Some(Power::Stopped)) => Verdict::Becomes(Stopped),
        (Running | Stopped, None) => Verdict::Becomes(Error),
        (Stopped, Some(Power::Running)) => Verdict::Becomes(Running),
        (Running | Stopped | Error, _) => Verdict::Agrees,
        (Provisioning | Starting | Stopping | Rebooting | Deleting, _) => Verdict::Owned,
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

    /// Brings one instance's record in line with its machine. False when
    /// a task owns the instance, so it must be asked again once the task
    /// is done: a machine may change while its task runs.
    pub async fn reconcile_instance(&self, id: InstanceId) -> Result<bool> {
        let Some(instance) = self.store().get_instance(id).await? else {
            return Ok(true);
        };
        let power = self.driver().status(id).await?;
        let state = match reconciled(instance.state, power) {
            Verdict::Agrees => return Ok(true),
            Verdict::Owned => return Ok(false),
            Verdict::Becomes(state) => state,
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
        Ok(true)
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
            // Changed machines not yet reconciled (their task still runs,
            // or the last try failed), with the failures so far; looked at
            // again each tick.
            let mut pending: BTreeMap<InstanceId, u32> = BTreeMap::new();
            let mut ticks = tokio::time::interval(RECHECK);
            loop {
                tokio::select! {
                    changed = changes.recv() => match changed {
                        Some(id) => { pending.entry(id).or_default(); }
                        None => break,
                    },
                    _ = ticks.tick() => {}
                }
                let Some(inner) = weak.upgrade() else { break };
                let app = App { inner };
                for (id, failures) in std::mem::take(&mut pending) {
                    match app.reconcile_instance(id).await {
                        Ok(true) => {}
                        Ok(false) => {
                            pending.insert(id, failures);
                        }
                        Err(e) if failures + 1 < RECHECK_TRIES => {
                            tracing::debug!(%id, error = %e, "cannot reconcile the instance yet");
                            pending.insert(id, failures + 1);
                        }
                        Err(e) => tracing::warn!(%id, error = %e, "cannot reconcile the instance"),
                    }
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
        use Verdict::*;
        assert_eq!(reconciled(Running, Some(Power::Stopped)), Becomes(Stopped));
        assert_eq!(reconciled(Stopped, Some(Power::Running)), Becomes(Running));
        assert_eq!(reconciled(Running, None), Becomes(Error));
        assert_eq!(reconciled(Running, Some(Power::Running)), Agrees);
        assert_eq!(reconciled(Stopped, Some(Power::Stopped)), Agrees);
        assert_eq!(reconciled(Error, None), Agrees);
        for owned in [Provisioning, Starting, Stopping, Rebooting, Deleting] {
            assert_eq!(reconciled(owned, Some(Power::Stopped)), Owned);
            assert_eq!(reconciled(owned, None), Owned);
        }
    }
}
