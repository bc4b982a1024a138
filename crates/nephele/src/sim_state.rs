//! The simulated hypervisor's machines, kept in the shared database (so
//! every node sees one hypervisor and it survives restarts), in the
//! simulator's own table, made by its own migrations and recorded apart
//! from the control plane's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::InstanceId;
use nephele_common::Result;
use nephele_drivers::sim::{SimChange, SimMachine, SimState, MIGRATIONS};
use nephele_store::door::Conn;
use nephele_store::migrate::Migrations;
use nephele_store::rows::{Bind, Id, Statement};
use nephele_store::{job, run, Store};
use std::collections::HashSet;

diesel::table! {
    sim_machines (id) {
        id -> Text,
        power -> Text,
        cpu -> BigInt,
        memory_mib -> BigInt,
        image -> Text,
        boots -> BigInt,
        last_task -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

const TABLES: Migrations = Migrations {
    table: "_sim_migrations",
    sqlite: MIGRATIONS.sqlite,
    postgres: MIGRATIONS.postgres,
};

#[derive(Debug)]
pub struct SimTables {
    store: Store,
}

impl SimTables {
    /// Makes the simulator's tables in `store`'s database, or brings
    /// them up to date.
    pub async fn open(store: Store) -> Result<SimTables> {
        store.migrate(&TABLES).await?;
        Ok(SimTables { store })
    }
}

#[async_trait]
impl SimState for SimTables {
    /// Changes to different machines commute, so each kind of change is
    /// one statement for the whole batch; a machine changed twice in one
    /// batch has its second change in a later round.
    async fn apply(&self, changes: &[(SimChange, DateTime<Utc>)]) -> Result<Vec<bool>> {
        let changes = changes.to_vec();
        self.store
            .write(job!(|c| {
                let mut answers = vec![false; changes.len()];
                let mut rest: Vec<usize> = (0..changes.len()).collect();
                while !rest.is_empty() {
                    let mut seen = HashSet::new();
                    let (round, later): (Vec<usize>, Vec<usize>) = rest
                        .into_iter()
                        .partition(|&i| seen.insert(machine(&changes[i].0)));
                    apply_round(c, &changes, &round, &mut answers).await?;
                    rest = later;
                }
                Ok(answers)
            }))
            .await
    }

    async fn machine(&self, id: InstanceId) -> Result<Option<SimMachine>> {
        let mut c = self.store.reader().await?;
        let row: Option<(String, i64, i64, String, i64)> = run!(c.optional_first(
            sim_machines::table.find(id.to_string()).select((
                sim_machines::power,
                sim_machines::cpu,
                sim_machines::memory_mib,
                sim_machines::image,
                sim_machines::boots,
            ))
        ))?;
        Ok(
            row.map(|(power, cpu, memory_mib, image, boots)| SimMachine {
                id,
                power,
                cpu,
                memory_mib,
                image,
                boots,
            }),
        )
    }
}

fn machine(change: &SimChange) -> InstanceId {
    match change {
        SimChange::Create { id, .. }
        | SimChange::Power { id, .. }
        | SimChange::Reboot { id, .. }
        | SimChange::Delete { id } => *id,
    }
}

/// Makes the changes of `round` (to distinct machines), idempotently,
/// and sets their answers (see [`SimChange`]).
async fn apply_round(
    c: &mut Conn,
    changes: &[(SimChange, DateTime<Utc>)],
    round: &[usize],
    answers: &mut [bool],
) -> Result<()> {
    let (mut creates, mut powers, mut reboots, mut deletes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for &i in round {
        let (change, at) = &changes[i];
        let at = Bind::from(to_micros(*at));
        match change {
            SimChange::Create {
                id,
                cpu,
                memory_mib,
                image,
            } => {
                answers[i] = true;
                creates.push(vec![
                    id.to_string().into(),
                    (*cpu).into(),
                    (*memory_mib).into(),
                    image.as_str().into(),
                    at,
                ]);
            }
            SimChange::Power { id, on, sizes } => {
                let (cpu, memory) = sizes.unzip();
                powers.push(vec![
                    id.to_string().into(),
                    if *on { "running" } else { "stopped" }.into(),
                    i64::from(*on).into(),
                    cpu.into(),
                    memory.into(),
                    at,
                ]);
            }
            SimChange::Reboot { id, task } => {
                reboots.push(vec![id.to_string().into(), task.to_string().into(), at]);
            }
            SimChange::Delete { id } => {
                answers[i] = true;
                deletes.push(id.to_string());
            }
        }
    }
    if !creates.is_empty() {
        // `WHERE true` tells SQLite's parser that ON CONFLICT is not a
        // join's ON.
        Statement::with_rows(
            "j",
            &["j_id", "j_cpu", "j_memory", "j_image", "j_at"],
            creates,
        )
        .sql(
            "INSERT INTO sim_machines (id, power, cpu, memory_mib, image, boots, updated_at) \
             SELECT j_id, 'stopped', j_cpu, j_memory, j_image, 0, j_at FROM j WHERE true \
             ON CONFLICT (id) DO NOTHING",
        )
        .execute(c)
        .await?;
    }
    let mut found = HashSet::new();
    if !powers.is_empty() {
        // A machine already in that power state is left as it is; the ids
        // returned are the machines that exist.
        let ids: Vec<Id> = Statement::with_rows(
            "j",
            &["j_id", "j_want", "j_boot", "j_cpu", "j_memory", "j_at"],
            powers,
        )
        .sql(
            "UPDATE sim_machines SET \
             boots = boots + CASE WHEN power <> j_want THEN j_boot ELSE 0 END, \
             cpu = CASE WHEN power <> j_want THEN COALESCE(j_cpu, cpu) ELSE cpu END, \
             memory_mib = CASE WHEN power <> j_want THEN COALESCE(j_memory, memory_mib) \
             ELSE memory_mib END, \
             updated_at = CASE WHEN power <> j_want THEN j_at ELSE updated_at END, \
             power = j_want FROM j WHERE id = j_id RETURNING id",
        )
        .load(c)
        .await?;
        found.extend(ids.into_iter().map(|i| i.id));
    }
    if !reboots.is_empty() {
        // Counted once per task; the ids returned are the machines that run.
        let ids: Vec<Id> = Statement::with_rows("j", &["j_id", "j_task", "j_at"], reboots)
            .sql(
                "UPDATE sim_machines SET boots = boots + \
                 CASE WHEN last_task IS NULL OR last_task <> j_task THEN 1 ELSE 0 END, \
                 last_task = j_task, updated_at = j_at FROM j \
                 WHERE id = j_id AND power = 'running' RETURNING id",
            )
            .load(c)
            .await?;
        found.extend(ids.into_iter().map(|i| i.id));
    }
    if !deletes.is_empty() {
        run!(c.execute(diesel::delete(
            sim_machines::table.filter(sim_machines::id.eq_any(&deletes))
        )))?;
    }
    for &i in round {
        if matches!(
            changes[i].0,
            SimChange::Power { .. } | SimChange::Reboot { .. }
        ) {
            answers[i] = found.contains(&machine(&changes[i].0).to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use nephele_common::ids::TaskId;
    use nephele_store::StoreOptions;

    fn at() -> DateTime<Utc> {
        nephele_common::clock::from_micros(1_764_000_000_000_000)
    }

    /// Each kind of change is one statement per batch: the answers still
    /// come per change, a machine changed twice in a batch gets both
    /// changes in order, and every change is idempotent.
    #[tokio::test]
    async fn a_batch_answers_each_change() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("sim.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("store");
        let sim = SimTables::open(store).await.expect("tables");
        let (a, missing) = (InstanceId::new(), InstanceId::new());
        let task = TaskId::new();
        let create = SimChange::Create {
            id: a,
            cpu: 1,
            memory_mib: 256,
            image: "debian-12".into(),
        };
        let on = |id| SimChange::Power {
            id,
            on: true,
            sizes: Some((2, 512)),
        };
        let answers = sim
            .apply(&[
                (create.clone(), at()),
                (on(a), at()),
                (on(missing), at()),
                (SimChange::Reboot { id: missing, task }, at()),
            ])
            .await
            .expect("applied");
        assert_eq!(answers, [true, true, false, false]);
        let m = sim.machine(a).await.expect("read").expect("made");
        assert_eq!(
            (m.power.as_str(), m.cpu, m.memory_mib, m.boots),
            ("running", 2, 512, 1)
        );

        // Again: nothing changes twice.
        let reboot = SimChange::Reboot { id: a, task };
        let answers = sim
            .apply(&[(create, at()), (on(a), at()), (reboot.clone(), at())])
            .await
            .expect("applied again");
        assert_eq!(answers, [true, true, true]);
        let answers = sim.apply(&[(reboot, at())]).await.expect("rebooted");
        assert_eq!(answers, [true]);
        let m = sim.machine(a).await.expect("read").expect("kept");
        assert_eq!((m.cpu, m.boots), (2, 2), "one boot, one reboot per task");

        let answers = sim
            .apply(&[(SimChange::Delete { id: a }, at()), (on(a), at())])
            .await
            .expect("deleted");
        assert_eq!(answers, [true, false]);
        assert!(sim.machine(a).await.expect("read").is_none());
    }
}
