//! The password lockout's counters (the policy is the app's `lockout`).
//! Each attempt reads and changes its counters in one transaction, with
//! their rows locked on PostgreSQL, so no two attempts on any node see
//! the same count.

use crate::db::{from_json_row, Backend};
use crate::door::{db_error, job, run};
use crate::tables::login_throttle;
use crate::write::Arg;
use crate::Store;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::Result;

/// One key's counter: a missing row is all zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: i64,
    /// The last attempt's (or success's) time; the epoch when none.
    pub at: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl Default for Counter {
    fn default() -> Self {
        Counter {
            count: 0,
            at: DateTime::<Utc>::UNIX_EPOCH,
            locked_until: None,
        }
    }
}

impl Store {
    /// Reads the counters of `keys` (in that order; a missing one is
    /// zero), lets `change` change them and decide, and writes back what
    /// it changed, all in one transaction.
    pub async fn update_login_counters<R>(
        &self,
        keys: &[String],
        change: impl FnOnce(&mut [Counter]) -> R + Send,
    ) -> Result<R> {
        // A write transaction from the start (on SQLite `BEGIN
        // IMMEDIATE`): a read that later writes could otherwise find
        // another node's write in between and fail.
        let mut tx = self.begin_write().await?;
        let columns = self.json_array_sql("key, count, at, locked_until");
        let rows = match self.backend() {
            // Each row is locked (made first when missing, so that two
            // first attempts do not both start from zero) by an upsert
            // that returns it, in key order: two attempts sharing keys
            // lock them alike and never wait on each other in a circle.
            Backend::Postgres => {
                let mut sorted: Vec<&String> = keys.iter().collect();
                sorted.sort();
                let mut rows = Vec::with_capacity(keys.len());
                for key in sorted {
                    rows.extend(
                        tx.texts(
                            &format!(
                                "INSERT INTO login_throttle (key, count, at) VALUES ($1, 0, 0) \
                                 ON CONFLICT (key) DO UPDATE SET count = login_throttle.count \
                                 RETURNING {columns}"
                            ),
                            &[Arg::Text(key)],
                        )
                        .await?,
                    );
                }
                rows
            }
            // SQLite's one writer holds the whole database.
            Backend::Sqlite => {
                let placeholders: Vec<String> = (1..=keys.len()).map(|i| format!("${i}")).collect();
                let args: Vec<Arg> = keys.iter().map(|k| Arg::Text(k)).collect();
                tx.texts(
                    &format!(
                        "SELECT {columns} FROM login_throttle WHERE key IN ({})",
                        placeholders.join(", ")
                    ),
                    &args,
                )
                .await?
            }
        };
        let mut counters = vec![Counter::default(); keys.len()];
        for row in rows {
            let (key, count, at, locked_until): (String, i64, i64, Option<i64>) =
                from_json_row(&row)?;
            if let Some(i) = keys.iter().position(|k| *k == key) {
                counters[i] = Counter {
                    count,
                    at: from_micros(at),
                    locked_until: locked_until.map(from_micros),
                };
            }
        }
        let before = counters.clone();
        let answer = change(&mut counters);
        for ((key, old), new) in keys.iter().zip(&before).zip(&counters) {
            if old == new {
                continue;
            }
            if *new == Counter::default() {
                tx.execute(
                    "DELETE FROM login_throttle WHERE key = $1",
                    &[Arg::Text(key)],
                )
                .await?;
                continue;
            }
            let locked_until = match new.locked_until {
                Some(until) => Arg::Int(to_micros(until)),
                None => Arg::NullInt,
            };
            tx.execute(
                "INSERT INTO login_throttle (key, count, at, locked_until) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (key) DO UPDATE SET count = $2, at = $3, locked_until = $4",
                &[
                    Arg::Text(key),
                    Arg::Int(new.count),
                    Arg::Int(to_micros(new.at)),
                    locked_until,
                ],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(answer)
    }

    /// The keys locked at `now`, with the end of each lock.
    pub async fn login_locks(&self, now: DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut c = self.door.reader().await?;
        let rows: Vec<(String, i64)> = run!(
            c,
            load,
            login_throttle::table
                .select((
                    login_throttle::key,
                    login_throttle::locked_until.assume_not_null(),
                ))
                .filter(login_throttle::locked_until.gt(to_micros(now)))
        )
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(key, until)| (key, from_micros(until)))
            .collect())
    }

    /// Forgets counters last touched before `forget_before` (and not
    /// locked at `now`), and addresses last signed in from before
    /// `known_before`.
    pub async fn purge_login_counters(
        &self,
        now: DateTime<Utc>,
        forget_before: DateTime<Utc>,
        known_before: DateTime<Utc>,
    ) -> Result<()> {
        let (now, forget_before, known_before) = (
            to_micros(now),
            to_micros(forget_before),
            to_micros(known_before),
        );
        self.write(job!(|c| {
            run!(
                c,
                execute,
                diesel::delete(login_throttle::table).filter(
                    login_throttle::key
                        .like("known:%")
                        .and(login_throttle::at.lt(known_before))
                        .or(login_throttle::key
                            .not_like("known:%")
                            .and(login_throttle::at.lt(forget_before))
                            .and(
                                login_throttle::locked_until
                                    .is_null()
                                    .or(login_throttle::locked_until.le(now))
                            ))
                )
            )
            .map_err(db_error)?;
            Ok(())
        }))
        .await
    }
}
