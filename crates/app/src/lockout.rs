//! Brute-force defence for passwords (HTTP Basic and the password grant).
//!
//! Attempts are counted in the database, so every node sees every attempt,
//! under three keys:
//!
//! - the account at one address (`pair`): a few failures lock that
//!   account for that address only, so an attacker cannot lock a user
//!   who signs in from elsewhere;
//! - the address (`address`): one address spraying many accounts is
//!   locked for all of them;
//! - the account from anywhere (`account`): many addresses guessing one
//!   account lock it — but only for addresses it has never been signed in
//!   to from. From an address it has, a login is slowed, not refused.
//!
//! Logins are counted as typed (unknown ones alike: nothing is created for
//! them but counters). An attempt is counted as a failure *before* its
//! password is hashed, and a success takes its count back: a burst of
//! parallel guesses gets no more checks than the limit. A lock lasts
//! from 30 s, doubling with each further failure up to 15 min; while it
//! holds even the right password is refused, so the answer is no oracle.

use crate::App;
use chrono::{DateTime, Duration, Utc};
use nephele_common::{Error, ErrorCode, Result};
use nephele_store::throttle::Counter;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::RwLock;

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures one account may have from one address before it is
    /// locked there.
    pub pair_threshold: u32,
    /// Failures one address may have, over all accounts.
    pub address_threshold: u32,
    /// Failures one account may have, from all addresses.
    pub account_threshold: u32,
    /// Wrong second-factor codes one user may enter before its codes are
    /// locked (the lock grows as a password lock does).
    pub code_threshold: u32,
    /// The first lock's length; each further failure doubles it.
    pub base: Duration,
    pub max: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// How long a login waits when its account is locked but its address
    /// has signed in to it before.
    pub known_address_delay: std::time::Duration,
    /// How long an address stays known after its last sign-in.
    pub known_for: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        LockoutPolicy {
            pair_threshold: 5,
            address_threshold: 50,
            account_threshold: 20,
            code_threshold: 5,
            base: Duration::seconds(30),
            max: Duration::minutes(15),
            window: Duration::minutes(15),
            known_address_delay: std::time::Duration::from_secs(1),
            known_for: Duration::days(90),
        }
    }
}

/// The counter keys of one attempt: the account's, and with an address
/// the pair's, the address's and the known-address mark.
#[derive(Debug, Clone)]
pub(crate) struct Keys(Vec<String>);

impl Keys {
    pub(crate) fn new(login: &str, address: Option<IpAddr>) -> Keys {
        let login = login.to_lowercase();
        let mut keys = vec![format!("account:{login}")];
        if let Some(a) = address {
            keys.push(format!("pair:{login}|{a}"));
            keys.push(format!("address:{a}"));
            keys.push(format!("known:{login}|{a}"));
        }
        Keys(keys)
    }

    /// The keys whose lock refuses or slows an attempt.
    fn locking(&self) -> &[String] {
        &self.0[..self.0.len().min(3)]
    }
}

/// The counters of one attempt, by role.
struct Slots<'a> {
    account: &'a mut Counter,
    pair: Option<&'a mut Counter>,
    address: Option<&'a mut Counter>,
    known: Option<&'a mut Counter>,
}

impl<'a> Slots<'a> {
    /// `None` without the account's counter (there always is one).
    fn of(counters: &'a mut [Counter]) -> Option<Slots<'a>> {
        let mut it = counters.iter_mut();
        Some(Slots {
            account: it.next()?,
            pair: it.next(),
            address: it.next(),
            known: it.next(),
        })
    }
}

/// What the lockout says of an attempt before its password is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Locked: refused whatever the password, for this many seconds more.
    Refused(u64),
    /// Counted; check the password after waiting this long.
    Check(std::time::Duration),
}

/// The seconds a counter's lock still holds at `now`, if it holds.
pub(crate) fn wait(c: &Counter, now: DateTime<Utc>) -> Option<u64> {
    c.locked_until
        .filter(|until| *until > now)
        .map(|until| (until - now).num_seconds().max(1) as u64)
}

impl LockoutPolicy {
    /// Counts one failure: the lock begins at `threshold` failures within
    /// the window and doubles with each further one.
    pub(crate) fn count_failure(&self, c: &mut Counter, threshold: u32, now: DateTime<Utc>) {
        if c.at + self.window <= now {
            c.count = 0;
        }
        c.count += 1;
        c.at = now;
        if c.count >= i64::from(threshold) {
            let doublings = (c.count - i64::from(threshold)).clamp(0, 16) as i32;
            let lock = (self.base * 2i32.pow(doublings as u32)).min(self.max);
            c.locked_until = Some(now + lock);
        }
    }

    /// Decides an attempt and, unless it is refused, counts it as a failure.
    pub(crate) fn reserve(&self, counters: &mut [Counter], now: DateTime<Utc>) -> Verdict {
        let Some(s) = Slots::of(counters) else {
            return Verdict::Refused(1);
        };
        let refused = [s.pair.as_deref(), s.address.as_deref()]
            .into_iter()
            .flatten()
            .filter_map(|c| wait(c, now))
            .max();
        if let Some(w) = refused {
            return Verdict::Refused(w);
        }
        let known = s
            .known
            .as_deref()
            .is_some_and(|k| k.count > 0 && k.at + self.known_for > now);
        let mut delay = std::time::Duration::ZERO;
        if let Some(w) = wait(s.account, now) {
            if !known {
                return Verdict::Refused(w);
            }
            delay = self.known_address_delay;
        }
        // Without an address the account's own count is all there is:
        // it locks at the pair's threshold.
        let account_threshold = match s.pair {
            Some(_) => self.account_threshold,
            None => self.pair_threshold,
        };
        self.count_failure(s.account, account_threshold, now);
        if let Some(pair) = s.pair {
            self.count_failure(pair, self.pair_threshold, now);
        }
        if let Some(address) = s.address {
            self.count_failure(address, self.address_threshold, now);
        }
        Verdict::Check(delay)
    }

    /// A checked password was right: the attempt's count is taken back,
    /// the pair's cleared, and the address becomes known. The address's
    /// and the account's other failures stay: one good password must not
    /// launder a spray of guesses.
    pub(crate) fn succeeded(&self, counters: &mut [Counter], now: DateTime<Utc>) {
        let Some(s) = Slots::of(counters) else {
            return;
        };
        s.account.count = (s.account.count - 1).max(0);
        if let Some(pair) = s.pair {
            *pair = Counter::default();
        }
        if let Some(address) = s.address {
            address.count = (address.count - 1).max(0);
        }
        if let Some(known) = s.known {
            known.count += 1;
            known.at = now;
        }
        if s.account.count == 0 && wait(s.account, now).is_none() {
            *s.account = Counter::default();
        }
    }
}

/// The locks this node knows of: its own attempts' and, polled with the
/// revocations, every node's. HTTP Basic's cache of verified passwords
/// is used only while none of an attempt's keys is locked here; otherwise
/// the attempt takes the full path, which asks the database.
#[derive(Debug, Default)]
pub(crate) struct Locks(RwLock<HashMap<String, DateTime<Utc>>>);

impl Locks {
    pub(crate) fn any(&self, keys: &Keys, now: DateTime<Utc>) -> bool {
        let Ok(locks) = self.0.read() else {
            return true;
        };
        keys.locking()
            .iter()
            .any(|k| locks.get(k).is_some_and(|until| *until > now))
    }

    /// How many keys are locked at `now`.
    fn count(&self, now: DateTime<Utc>) -> usize {
        self.0
            .read()
            .map(|locks| locks.values().filter(|until| **until > now).count())
            .unwrap_or(0)
    }

    fn note(&self, keys: &Keys, counters: &[Counter]) {
        if let Ok(mut locks) = self.0.write() {
            for (key, c) in keys.0.iter().zip(counters) {
                match c.locked_until {
                    Some(until) => locks.insert(key.clone(), until),
                    None => locks.remove(key),
                };
            }
        }
    }

    fn replace(&self, all: Vec<(String, DateTime<Utc>)>) {
        if let Ok(mut locks) = self.0.write() {
            *locks = all.into_iter().collect();
        }
    }
}

pub(crate) fn locked_out(wait: u64) -> Error {
    Error::new(
        ErrorCode::LockedOut,
        "Too many failed logins; try again later",
    )
    .with_retry_after(wait)
}

impl App {
    /// Counts an attempt before its password is checked: 429 (1004) while
    /// locked; otherwise waits as long as the lockout says.
    pub(crate) async fn reserve_login_attempt(&self, keys: &Keys) -> Result<()> {
        match self
            .change_login_counters(keys, LockoutPolicy::reserve)
            .await?
        {
            Verdict::Refused(wait) => Err(locked_out(wait)),
            Verdict::Check(delay) => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
        }
    }

    /// Takes back the count of an attempt whose password was right.
    pub(crate) async fn login_succeeded(&self, keys: &Keys) -> Result<()> {
        self.change_login_counters(keys, LockoutPolicy::succeeded)
            .await
    }

    /// Applies one step of the policy to an attempt's counters in the
    /// database, and notes the locks they now hold.
    async fn change_login_counters<R: Send + 'static>(
        &self,
        keys: &Keys,
        step: fn(&LockoutPolicy, &mut [Counter], DateTime<Utc>) -> R,
    ) -> Result<R> {
        let policy = self.config().lockout;
        let now = self.clock().now();
        let (answer, counters) = self
            .store()
            .update_login_counters(&keys.0, move |counters| {
                (step(&policy, counters, now), counters.to_vec())
            })
            .await?;
        self.login_locks().note(keys, &counters);
        Ok(answer)
    }

    /// How many lockout keys are locked now (this node's view: its own
    /// and every node's, polled).
    pub fn login_locks_now(&self) -> usize {
        self.login_locks().count(self.clock().now())
    }

    /// Learns the locks other nodes set.
    pub(crate) async fn poll_login_locks(&self) -> Result<()> {
        let locks = self.store().login_locks(self.clock().now()).await?;
        self.login_locks().replace(locks);
        Ok(())
    }

    pub(crate) async fn purge_login_counters(&self) -> Result<()> {
        let policy = self.config().lockout;
        let now = self.clock().now();
        self.store()
            .purge_login_counters(now, now - policy.window, now - policy.known_for)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    /// Counters of one login at one address (or none), kept between
    /// attempts as the database would.
    struct Sim {
        policy: LockoutPolicy,
        counters: HashMap<String, Counter>,
    }

    impl Sim {
        fn new() -> Sim {
            Sim {
                policy: LockoutPolicy::default(),
                counters: HashMap::new(),
            }
        }

        fn with<R>(
            &mut self,
            keys: &Keys,
            f: impl FnOnce(&LockoutPolicy, &mut [Counter]) -> R,
        ) -> R {
            let mut cs: Vec<Counter> = keys
                .0
                .iter()
                .map(|k| self.counters.get(k).copied().unwrap_or_default())
                .collect();
            let r = f(&self.policy, &mut cs);
            for (k, c) in keys.0.iter().zip(cs) {
                self.counters.insert(k.clone(), c);
            }
            r
        }

        /// An attempt: its verdict, then (unless refused) its outcome.
        fn attempt(
            &mut self,
            login: &str,
            address: Option<&str>,
            right: bool,
            now: DateTime<Utc>,
        ) -> Verdict {
            let keys = Keys::new(login, address.map(|a| a.parse().unwrap()));
            let verdict = self.with(&keys, |p, cs| p.reserve(cs, now));
            if right && matches!(verdict, Verdict::Check(_)) {
                self.with(&keys, |p, cs| p.succeeded(cs, now));
            }
            verdict
        }
    }

    const NOW: Verdict = Verdict::Check(std::time::Duration::ZERO);

    #[test]
    fn an_account_locks_at_one_address_for_a_growing_period() {
        let mut sim = Sim::new();
        for i in 0..5 {
            assert_eq!(sim.attempt("Alice", Some("192.0.2.1"), false, t(i)), NOW);
        }
        assert_eq!(
            sim.attempt("alice", Some("192.0.2.1"), true, t(5)),
            Verdict::Refused(29)
        );
        assert_eq!(sim.attempt("alice", Some("192.0.2.1"), false, t(34)), NOW);
        assert_eq!(
            sim.attempt("alice", Some("192.0.2.1"), true, t(35)),
            Verdict::Refused(59)
        );
        // Elsewhere, and for others, nothing is locked.
        assert_eq!(sim.attempt("alice", Some("192.0.2.2"), true, t(35)), NOW);
        assert_eq!(sim.attempt("bob", Some("192.0.2.1"), true, t(35)), NOW);
    }

    #[test]
    fn a_burst_gets_no_more_checks_than_the_limit() {
        let mut sim = Sim::new();
        let keys = Keys::new("alice", Some("192.0.2.1".parse().unwrap()));
        // Thirty attempts reserved before any is checked.
        let verdicts: Vec<Verdict> = (0..30)
            .map(|_| sim.with(&keys, |p, cs| p.reserve(cs, t(0))))
            .collect();
        let checked = verdicts
            .iter()
            .filter(|v| matches!(v, Verdict::Check(_)))
            .count();
        assert_eq!(checked, 5);
    }

    #[test]
    fn a_success_takes_its_count_back_and_old_failures_are_forgotten() {
        let mut sim = Sim::new();
        for i in 0..4 {
            sim.attempt("alice", Some("192.0.2.1"), false, t(i));
        }
        sim.attempt("alice", Some("192.0.2.1"), true, t(4));
        for i in 5..9 {
            assert_eq!(sim.attempt("alice", Some("192.0.2.1"), false, t(i)), NOW);
        }
        for i in 0..4 {
            sim.attempt("carol", Some("192.0.2.1"), false, t(i));
        }
        assert_eq!(sim.attempt("carol", Some("192.0.2.1"), false, t(2000)), NOW);
        assert_eq!(sim.attempt("carol", Some("192.0.2.1"), false, t(2001)), NOW);
    }

    #[test]
    fn an_address_spraying_many_accounts_is_locked() {
        let mut sim = Sim::new();
        for i in 0..50 {
            sim.attempt(&format!("user{i}"), Some("192.0.2.7"), false, t(0));
        }
        assert_eq!(
            sim.attempt("someone-else", Some("192.0.2.7"), true, t(1)),
            Verdict::Refused(29)
        );
        assert_eq!(
            sim.attempt("someone-else", Some("192.0.2.8"), true, t(1)),
            NOW
        );
    }

    #[test]
    fn many_addresses_lock_an_account_but_only_slow_a_known_address() {
        let mut sim = Sim::new();
        assert_eq!(sim.attempt("alice", Some("198.51.100.1"), true, t(0)), NOW);
        for i in 0..20 {
            let at = format!("203.0.113.{i}");
            assert_eq!(sim.attempt("alice", Some(&at), false, t(1)), NOW);
        }
        assert_eq!(
            sim.attempt("alice", Some("203.0.113.99"), true, t(2)),
            Verdict::Refused(29)
        );
        assert_eq!(
            sim.attempt("alice", Some("198.51.100.1"), true, t(2)),
            Verdict::Check(std::time::Duration::from_secs(1))
        );
    }

    #[test]
    fn without_an_address_the_account_locks_at_the_pair_threshold() {
        let mut sim = Sim::new();
        for i in 0..5 {
            assert_eq!(sim.attempt("alice", None, false, t(i)), NOW);
        }
        assert_eq!(sim.attempt("alice", None, true, t(5)), Verdict::Refused(29));
    }
}
