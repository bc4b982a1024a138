//! The simulated hypervisor's machines. Every change is idempotent: made
//! twice (a task step run again after a crash), it takes effect once.
//! Changes are applied in groups, one transaction each, and one statement
//! for each kind of change in a group.

use crate::db::{col, db_error, JsonType};
use crate::write::{Arg, WriteTx};
use crate::Store;
use chrono::{DateTime, Utc};
use nephele_common::clock::to_micros;
use nephele_common::ids::{InstanceId, TaskId};
use nephele_common::Result;
use serde_json::json;
use std::collections::HashSet;

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

impl SimChange {
    fn machine(&self) -> InstanceId {
        match self {
            SimChange::Create { id, .. }
            | SimChange::Power { id, .. }
            | SimChange::Reboot { id, .. }
            | SimChange::Delete { id } => *id,
        }
    }
}

impl Store {
    /// Applies changes to the simulated machines in one transaction; one
    /// answer per change. Changes to different machines commute, so each
    /// kind of change is one statement for the whole batch; a machine
    /// changed twice in one batch has its second change in a later round.
    pub async fn sim_apply(&self, batch: &[(SimChange, DateTime<Utc>)]) -> Result<Vec<bool>> {
        let mut tx = self.begin_write().await?;
        let mut answers = vec![false; batch.len()];
        let mut rest: Vec<usize> = (0..batch.len()).collect();
        while !rest.is_empty() {
            let mut seen = HashSet::new();
            let (round, later): (Vec<usize>, Vec<usize>) = rest
                .into_iter()
                .partition(|&i| seen.insert(batch[i].0.machine()));
            self.apply_round(&mut tx, batch, &round, &mut answers)
                .await?;
            rest = later;
        }
        tx.commit().await?;
        Ok(answers)
    }

    async fn apply_round(
        &self,
        tx: &mut WriteTx,
        batch: &[(SimChange, DateTime<Utc>)],
        round: &[usize],
        answers: &mut [bool],
    ) -> Result<()> {
        use JsonType::{Integer, Text};
        let (mut creates, mut powers, mut reboots, mut deletes) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for &i in round {
            let (change, now) = &batch[i];
            let at = to_micros(*now);
            match change {
                SimChange::Create {
                    id,
                    cpu,
                    memory_mib,
                    image,
                } => {
                    answers[i] = true;
                    creates.push(json!({"id": id.to_string(), "cpu": cpu,
                        "memory_mib": memory_mib, "image": image, "at": at}));
                }
                SimChange::Power { id, on, sizes } => {
                    let (cpu, memory) = sizes.unzip();
                    powers.push(json!({"id": id.to_string(),
                        "want": if *on { "running" } else { "stopped" },
                        "boot": i64::from(*on), "new_cpu": cpu, "new_memory": memory, "at": at}));
                }
                SimChange::Reboot { id, task } => {
                    reboots.push(json!({"id": id.to_string(), "task": task.to_string(), "at": at}));
                }
                SimChange::Delete { id } => {
                    answers[i] = true;
                    deletes.push(json!({"id": id.to_string()}));
                }
            }
        }
        if !creates.is_empty() {
            let j = tx.rows(
                "j",
                &[
                    ("id", Text),
                    ("cpu", Integer),
                    ("memory_mib", Integer),
                    ("image", Text),
                    ("at", Integer),
                ],
                &creates,
            );
            // `WHERE true` tells SQLite's parser that ON CONFLICT is not a
            // join's ON.
            tx.execute(
                &format!(
                    "INSERT INTO sim_machines \
                     (id, power, cpu, memory_mib, image, boots, updated_at) \
                     SELECT id, 'stopped', cpu, memory_mib, image, 0, at FROM {j} WHERE true \
                     ON CONFLICT (id) DO NOTHING"
                ),
                &[Arg::Rows(&j)],
            )
            .await?;
        }
        let mut found = HashSet::new();
        if !powers.is_empty() {
            // A machine already in that power state is left as it is; the
            // ids returned are the machines that exist.
            let j = tx.rows(
                "j",
                &[
                    ("id", Text),
                    ("want", Text),
                    ("boot", Integer),
                    ("new_cpu", Integer),
                    ("new_memory", Integer),
                    ("at", Integer),
                ],
                &powers,
            );
            let changed = "sim_machines.power <> j.want";
            found.extend(
                tx.texts(
                    &format!(
                        "UPDATE sim_machines SET \
                         boots = sim_machines.boots + CASE WHEN {changed} THEN j.boot ELSE 0 END, \
                         cpu = CASE WHEN {changed} THEN COALESCE(j.new_cpu, sim_machines.cpu) \
                         ELSE sim_machines.cpu END, \
                         memory_mib = CASE WHEN {changed} \
                         THEN COALESCE(j.new_memory, sim_machines.memory_mib) \
                         ELSE sim_machines.memory_mib END, \
                         updated_at = CASE WHEN {changed} THEN j.at \
                         ELSE sim_machines.updated_at END, \
                         power = j.want FROM {j} WHERE sim_machines.id = j.id \
                         RETURNING sim_machines.id"
                    ),
                    &[Arg::Rows(&j)],
                )
                .await?,
            );
        }
        if !reboots.is_empty() {
            // Counted once per task; the ids returned are the machines
            // that run.
            let j = tx.rows(
                "j",
                &[("id", Text), ("task", Text), ("at", Integer)],
                &reboots,
            );
            found.extend(
                tx.texts(
                    &format!(
                        "UPDATE sim_machines SET boots = sim_machines.boots + \
                         CASE WHEN sim_machines.last_task IS NULL \
                         OR sim_machines.last_task <> j.task THEN 1 ELSE 0 END, \
                         last_task = j.task, updated_at = j.at FROM {j} \
                         WHERE sim_machines.id = j.id AND sim_machines.power = 'running' \
                         RETURNING sim_machines.id"
                    ),
                    &[Arg::Rows(&j)],
                )
                .await?,
            );
        }
        if !deletes.is_empty() {
            let j = tx.rows("j", &[("id", Text)], &deletes);
            tx.execute(
                &format!("DELETE FROM sim_machines WHERE id IN (SELECT id FROM {j})"),
                &[Arg::Rows(&j)],
            )
            .await?;
        }
        for &i in round {
            if matches!(
                batch[i].0,
                SimChange::Power { .. } | SimChange::Reboot { .. }
            ) {
                answers[i] = found.contains(&batch[i].0.machine().to_string());
            }
        }
        Ok(())
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
