//! The simulated hypervisor's machines. Every change is idempotent: made
//! twice (a task step run again after a crash), it takes effect once.

use crate::db::{col, db_error};
use crate::Store;
use chrono::{DateTime, Utc};
use nephele_common::clock::to_micros;
use nephele_common::ids::{InstanceId, TaskId};
use nephele_common::Result;

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

impl Store {
    /// Makes a stopped machine, unless it exists.
    pub async fn sim_create(
        &self,
        id: InstanceId,
        cpu: i64,
        memory_mib: i64,
        image: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sim_machines (id, power, cpu, memory_mib, image, boots, updated_at) \
             VALUES ($1, 'stopped', $2, $3, $4, 0, $5) ON CONFLICT (id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(cpu)
        .bind(memory_mib)
        .bind(image)
        .bind(to_micros(now))
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(())
    }

    /// Powers a machine on or off (`running`/`stopped`), counting a boot
    /// when it comes on; with the sizes it boots with. False when there is
    /// no such machine.
    pub async fn sim_power(
        &self,
        id: InstanceId,
        power: &str,
        sizes: Option<(i64, i64)>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let boot = i64::from(power == "running");
        let (cpu, memory) = sizes.unzip();
        sqlx::query(
            "UPDATE sim_machines SET power = $1, boots = boots + $2, updated_at = $3, \
             cpu = COALESCE($4, cpu), memory_mib = COALESCE($5, memory_mib) \
             WHERE id = $6 AND power <> $1",
        )
        .bind(power)
        .bind(boot)
        .bind(to_micros(now))
        .bind(cpu)
        .bind(memory)
        .bind(id.to_string())
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(self.sim_machine(id).await?.is_some())
    }

    /// Reboots a running machine once per task: the same task asking again
    /// changes nothing. False when it is not running.
    pub async fn sim_reboot(
        &self,
        id: InstanceId,
        task: TaskId,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        sqlx::query(
            "UPDATE sim_machines SET boots = boots + 1, last_task = $1, updated_at = $2 \
             WHERE id = $3 AND power = 'running' AND (last_task IS NULL OR last_task <> $1)",
        )
        .bind(task.to_string())
        .bind(to_micros(now))
        .bind(id.to_string())
        .execute(&self.write)
        .await
        .map_err(db_error)?;
        Ok(self
            .sim_machine(id)
            .await?
            .is_some_and(|m| m.power == "running"))
    }

    pub async fn sim_delete(&self, id: InstanceId) -> Result<()> {
        sqlx::query("DELETE FROM sim_machines WHERE id = $1")
            .bind(id.to_string())
            .execute(&self.write)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub async fn sim_machine(&self, id: InstanceId) -> Result<Option<SimMachine>> {
        let row = sqlx::query(
            "SELECT power, cpu, memory_mib, image, boots FROM sim_machines WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.write)
        .await
        .map_err(db_error)?;
        row.map(|r| {
            Ok(SimMachine {
                id,
                power: col(&r, "power")?,
                cpu: col(&r, "cpu")?,
                memory_mib: col(&r, "memory_mib")?,
                image: col(&r, "image")?,
                boots: col(&r, "boots")?,
            })
        })
        .transpose()
    }
}
