//! The simulated hypervisor's machines. Every change is idempotent: made
//! twice (a task step run again after a crash), it takes effect once.
//! Changes are applied in groups, one transaction each.

use crate::db::{col, db_error};
use crate::Store;
use chrono::{DateTime, Utc};
use nephele_common::clock::to_micros;
use nephele_common::ids::{InstanceId, TaskId};
use nephele_common::Result;
use sqlx::{Any, Transaction};

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

/// One change to the simulated machines.
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
    /// Removes a machine, unless it is gone.
    Delete { id: InstanceId },
}

async fn apply(tx: &mut Transaction<'static, Any>, change: &SimChange, now: i64) -> Result<bool> {
    match change {
        SimChange::Create {
            id,
            cpu,
            memory_mib,
            image,
        } => {
            sqlx::query(
                "INSERT INTO sim_machines (id, power, cpu, memory_mib, image, boots, updated_at) \
                 VALUES ($1, 'stopped', $2, $3, $4, 0, $5) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(*cpu)
            .bind(*memory_mib)
            .bind(image)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(true)
        }
        SimChange::Power { id, on, sizes } => {
            // One statement: a machine already in that power state is
            // left as it is, and the row count says whether it exists.
            let power = if *on { "running" } else { "stopped" };
            let (cpu, memory) = sizes.unzip();
            let done = sqlx::query(
                "UPDATE sim_machines SET \
                 boots = boots + CASE WHEN power <> $1 THEN $2 ELSE 0 END, \
                 cpu = CASE WHEN power <> $1 THEN COALESCE($4, cpu) ELSE cpu END, \
                 memory_mib = CASE WHEN power <> $1 THEN COALESCE($5, memory_mib) \
                 ELSE memory_mib END, \
                 updated_at = CASE WHEN power <> $1 THEN $3 ELSE updated_at END, \
                 power = $1 WHERE id = $6",
            )
            .bind(power)
            .bind(i64::from(*on))
            .bind(now)
            .bind(cpu)
            .bind(memory)
            .bind(id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(done.rows_affected() > 0)
        }
        SimChange::Reboot { id, task } => {
            // Counted once per task; the row count says whether it runs.
            let done = sqlx::query(
                "UPDATE sim_machines SET \
                 boots = boots + CASE WHEN last_task IS NULL OR last_task <> $1 THEN 1 ELSE 0 END, \
                 last_task = $1, updated_at = $2 WHERE id = $3 AND power = 'running'",
            )
            .bind(task.to_string())
            .bind(now)
            .bind(id.to_string())
            .execute(&mut **tx)
            .await
            .map_err(db_error)?;
            Ok(done.rows_affected() > 0)
        }
        SimChange::Delete { id } => {
            sqlx::query("DELETE FROM sim_machines WHERE id = $1")
                .bind(id.to_string())
                .execute(&mut **tx)
                .await
                .map_err(db_error)?;
            Ok(true)
        }
    }
}

impl Store {
    /// Applies changes to the simulated machines in one transaction; one
    /// answer per change.
    pub async fn sim_apply(&self, batch: &[(SimChange, DateTime<Utc>)]) -> Result<Vec<bool>> {
        let mut tx = self.write.begin().await.map_err(db_error)?;
        let mut answers = Vec::with_capacity(batch.len());
        for (change, now) in batch {
            answers.push(apply(&mut tx, change, to_micros(*now)).await?);
        }
        tx.commit().await.map_err(db_error)?;
        Ok(answers)
    }

    pub async fn sim_machine(&self, id: InstanceId) -> Result<Option<SimMachine>> {
        let row = sqlx::query(
            "SELECT power, cpu, memory_mib, image, boots FROM sim_machines WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.read)
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
