//! The password lockout's counters (the policy is the app's `lockout`).
//! Each attempt reads and changes its counters in one transaction, with
//! their rows locked on PostgreSQL, so no two attempts on any node see
//! the same count.

use crate::door::{job, run, Conn};
use crate::tables::login_throttle;
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
    /// it changed, all in one transaction. (`change` runs in the write
    /// transaction, which may be run by another caller's task: it owns
    /// what it uses.)
    pub async fn update_login_counters<R: Send + 'static>(
        &self,
        keys: &[String],
        change: impl FnOnce(&mut [Counter]) -> R + Send + 'static,
    ) -> Result<R> {
        let keys = keys.to_vec();
        // A write transaction from the start (on SQLite `BEGIN
        // IMMEDIATE`): a read that later writes could otherwise find
        // another node's write in between and fail.
        self.write(job!(|c| {
            let columns = (
                login_throttle::key,
                login_throttle::count,
                login_throttle::at,
                login_throttle::locked_until,
            );
            let rows: Vec<(String, i64, i64, Option<i64>)> = match c {
                // Each row is locked (made first when missing, so that two
                // first attempts do not both start from zero) by an upsert
                // that returns it, in key order: two attempts sharing keys
                // lock them alike and never wait on each other in a circle.
                Conn::Pg(_) => {
                    let mut sorted: Vec<&String> = keys.iter().collect();
                    sorted.sort();
                    let mut rows = Vec::with_capacity(keys.len());
                    for key in sorted {
                        rows.push(run!(c.get_result(
                            diesel::insert_into(login_throttle::table)
                                .values((
                                    login_throttle::key.eq(key),
                                    login_throttle::count.eq(0),
                                    login_throttle::at.eq(0),
                                ))
                                .on_conflict(login_throttle::key)
                                .do_update()
                                .set(login_throttle::count.eq(login_throttle::count))
                                .returning(columns)
                        ))?);
                    }
                    rows
                }
                // SQLite's one writer holds the whole database.
                Conn::Sqlite(_) => run!(c.load(
                    login_throttle::table
                        .select(columns)
                        .filter(login_throttle::key.eq_any(&keys))
                ))?,
            };
            let mut counters = vec![Counter::default(); keys.len()];
            for (key, count, at, locked_until) in rows {
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
                    run!(c.execute(diesel::delete(login_throttle::table.find(key))))?;
                    continue;
                }
                let set = (
                    login_throttle::count.eq(new.count),
                    login_throttle::at.eq(to_micros(new.at)),
                    login_throttle::locked_until.eq(new.locked_until.map(to_micros)),
                );
                run!(c.execute(
                    diesel::insert_into(login_throttle::table)
                        .values((login_throttle::key.eq(key), set))
                        .on_conflict(login_throttle::key)
                        .do_update()
                        .set(set)
                ))?;
            }
            Ok(answer)
        }))
        .await
    }

    /// The keys locked at `now`, with the end of each lock.
    pub async fn login_locks(&self, now: DateTime<Utc>) -> Result<Vec<(String, DateTime<Utc>)>> {
        let mut c = self.door.reader().await?;
        let rows: Vec<(String, i64)> = run!(c.load(
            login_throttle::table
                .select((
                    login_throttle::key,
                    login_throttle::locked_until.assume_not_null(),
                ))
                .filter(login_throttle::locked_until.gt(to_micros(now)))
        ))?;
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
            run!(c.execute(
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
            ))?;
            Ok(())
        }))
        .await
    }
}
