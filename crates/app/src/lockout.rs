//! Brute-force defence for passwords (HTTP Basic and the password grant).
//!
//! Failures are counted per account name (as typed: unknown logins are
//! counted the same, and nothing is created for them but this in-memory
//! entry) and per client address. Past a threshold the account, or the
//! address, is locked for a period that doubles with every further
//! failure, up to a cap. While locked, even the right password is refused:
//! the answer does not depend on the password, so it is no oracle. A
//! success clears the account's count.
//!
//! The counts live in each node's memory: with N nodes an attacker gets at
//! most N times the attempts, still a handful per growing period.

use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures an account may have before it is locked.
    pub account_threshold: u32,
    /// Failures an address may have (many users may share one).
    pub address_threshold: u32,
    /// The first lock's length; each further failure doubles it.
    pub base: Duration,
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            account_threshold: 5,
            address_threshold: 50,
            base: Duration::seconds(30),
            max: Duration::minutes(15),
            window: Duration::minutes(15),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: DateTime<Utc>,
    locked_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

/// How many entries are kept at most: beyond it, the stale ones go first.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Default)]
pub struct Lockout {
    policy: LockoutPolicy,
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Lockout {
    pub fn new(policy: LockoutPolicy) -> Lockout {
        Lockout {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn keys(account: &str, address: Option<IpAddr>) -> impl Iterator<Item = Key> {
        std::iter::once(Key::Account(account.to_lowercase())).chain(address.map(Key::Address))
    }

    /// `Some(seconds to wait)` while the account or the address is locked.
    pub fn locked(
        &self,
        account: &str,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Option<u64> {
        let entries = self.entries.lock().ok()?;
        Self::keys(account, address)
            .filter_map(|k| entries.get(&k)?.locked_until)
            .filter(|until| *until > now)
            .max()
            .map(|until| (until - now).num_seconds().max(1) as u64)
    }

    /// Counts a failed attempt.
    pub fn failed(&self, account: &str, address: Option<IpAddr>, now: DateTime<Utc>) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ENTRIES {
            let window = self.policy.window;
            entries.retain(|_, e| {
                e.last_failure + window > now || e.locked_until.is_some_and(|u| u > now)
            });
        }
        for key in Self::keys(account, address) {
            let threshold = match key {
                Key::Account(_) => self.policy.account_threshold,
                Key::Address(_) => self.policy.address_threshold,
            };
            let e = entries.entry(key).or_insert(Entry {
                failures: 0,
                last_failure: now,
                locked_until: None,
            });
            if e.last_failure + self.policy.window <= now {
                e.failures = 0;
            }
            e.failures += 1;
            e.last_failure = now;
            if e.failures >= threshold {
                let doublings = (e.failures - threshold).min(16);
                let lock = (self.policy.base * 2i32.pow(doublings)).min(self.policy.max);
                e.locked_until = Some(now + lock);
            }
        }
    }

    /// A success clears the account's count (not the address's: one good
    /// password must not launder a spray of guesses).
    pub fn succeeded(&self, account: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(&Key::Account(account.to_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    #[test]
    fn locks_after_the_threshold_for_a_growing_period() {
        let l = Lockout::new(LockoutPolicy::default());
        for i in 0..4 {
            l.failed("Alice", None, t(i));
            assert_eq!(l.locked("alice", None, t(i)), None);
        }
        l.failed("alice", None, t(4));
        assert_eq!(l.locked("ALICE", None, t(4)), Some(30));
        assert_eq!(l.locked("alice", None, t(34)), None);
        l.failed("alice", None, t(35));
        assert_eq!(l.locked("alice", None, t(35)), Some(60));
        l.failed("alice", None, t(100));
        assert_eq!(l.locked("alice", None, t(100)), Some(120));
        // Others are not affected.
        assert_eq!(l.locked("bob", None, t(100)), None);
    }

    #[test]
    fn success_clears_the_account_and_old_failures_are_forgotten() {
        let l = Lockout::new(LockoutPolicy::default());
        for i in 0..4 {
            l.failed("alice", None, t(i));
        }
        l.succeeded("alice");
        l.failed("alice", None, t(5));
        assert_eq!(l.locked("alice", None, t(5)), None);
        for i in 0..3 {
            l.failed("carol", None, t(i));
        }
        l.failed("carol", None, t(2000));
        assert_eq!(l.locked("carol", None, t(2000)), None);
    }

    #[test]
    fn an_address_spraying_many_accounts_is_locked() {
        let l = Lockout::new(LockoutPolicy::default());
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for i in 0..50 {
            l.failed(&format!("user{i}"), Some(ip), t(0));
        }
        assert_eq!(l.locked("someone-else", Some(ip), t(1)), Some(29));
        assert_eq!(l.locked("someone-else", None, t(1)), None);
    }
}
