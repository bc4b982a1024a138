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
use nephele_store::door::{db_error, Conn};
use nephele_store::migrate::Migrations;
use nephele_store::{job, run, Store};

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
    async fn apply(&self, changes: &[(SimChange, DateTime<Utc>)]) -> Result<Vec<bool>> {
        let changes = changes.to_vec();
        self.store
            .write(job!(|c| {
                let mut answers = Vec::with_capacity(changes.len());
                for (change, at) in &changes {
                    answers.push(apply(c, change, to_micros(*at)).await?);
                }
                Ok(answers)
            }))
            .await
    }

    async fn machine(&self, id: InstanceId) -> Result<Option<SimMachine>> {
        let mut c = self.store.reader().await?;
        let row: Option<(String, i64, i64, String, i64)> = run!(
            c,
            first,
            sim_machines::table.find(id.to_string()).select((
                sim_machines::power,
                sim_machines::cpu,
                sim_machines::memory_mib,
                sim_machines::image,
                sim_machines::boots,
            ))
        )
        .optional()
        .map_err(db_error)?;
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

/// Makes one change, idempotently; its answer (see [`SimChange`]).
async fn apply(c: &mut Conn, change: &SimChange, at: i64) -> Result<bool> {
    use sim_machines::dsl;
    match change {
        SimChange::Create {
            id,
            cpu,
            memory_mib,
            image,
        } => {
            run!(
                c,
                execute,
                diesel::insert_into(sim_machines::table)
                    .values((
                        dsl::id.eq(id.to_string()),
                        dsl::power.eq("stopped"),
                        dsl::cpu.eq(cpu),
                        dsl::memory_mib.eq(memory_mib),
                        dsl::image.eq(image),
                        dsl::boots.eq(0),
                        dsl::updated_at.eq(at),
                    ))
                    .on_conflict_do_nothing()
            )
            .map_err(db_error)?;
            Ok(true)
        }
        SimChange::Power { id, on, sizes } => {
            // A machine already in that power state is left as it is.
            let want = if *on { "running" } else { "stopped" };
            let boot = i64::from(*on);
            let machine = || {
                sim_machines::table
                    .find(id.to_string())
                    .filter(dsl::power.ne(want))
            };
            let changed = match sizes {
                Some((cpu, memory_mib)) => run!(
                    c,
                    execute,
                    diesel::update(machine()).set((
                        dsl::power.eq(want),
                        dsl::boots.eq(dsl::boots + boot),
                        dsl::cpu.eq(cpu),
                        dsl::memory_mib.eq(memory_mib),
                        dsl::updated_at.eq(at),
                    ))
                ),
                None => run!(
                    c,
                    execute,
                    diesel::update(machine()).set((
                        dsl::power.eq(want),
                        dsl::boots.eq(dsl::boots + boot),
                        dsl::updated_at.eq(at),
                    ))
                ),
            }
            .map_err(db_error)?;
            Ok(changed > 0 || exists(c, *id, None).await?)
        }
        SimChange::Reboot { id, task } => {
            // Counted once per task.
            let task = task.to_string();
            let changed = run!(
                c,
                execute,
                diesel::update(
                    sim_machines::table
                        .find(id.to_string())
                        .filter(dsl::power.eq("running"))
                        .filter(dsl::last_task.is_null().or(dsl::last_task.ne(&task)))
                )
                .set((
                    dsl::boots.eq(dsl::boots + 1),
                    dsl::last_task.eq(&task),
                    dsl::updated_at.eq(at),
                ))
            )
            .map_err(db_error)?;
            Ok(changed > 0 || exists(c, *id, Some("running")).await?)
        }
        SimChange::Delete { id } => {
            run!(
                c,
                execute,
                diesel::delete(sim_machines::table.find(id.to_string()))
            )
            .map_err(db_error)?;
            Ok(true)
        }
    }
}

/// Is there a machine `id` (in power state `power`, when given)?
async fn exists(c: &mut Conn, id: InstanceId, power: Option<&str>) -> Result<bool> {
    let machine = sim_machines::table.find(id.to_string());
    let found: i64 = match power {
        Some(power) => run!(
            c,
            get_result,
            machine.filter(sim_machines::power.eq(power)).count()
        ),
        None => run!(c, get_result, machine.count()),
    }
    .map_err(db_error)?;
    Ok(found > 0)
}
