//! A user's second factor: the TOTP secret (sealed by the app before it
//! reaches here) and its recovery codes (hashed by the app). Every change that
//! touches more than one row is one transaction; each changes who may do
//! what, so it moves the access generation on.

use crate::columns::{MaybeMicros, Micros, Parsed};
use crate::door::{job, run, Conn};
use crate::tables::{user_recovery_codes, user_totp};
use crate::Store;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::UserId;
use nephele_common::{Error, Result};

/// A TOTP secret's state: made by enrolment, active once a code confirms it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpState {
    Pending,
    Active,
}

impl TotpState {
    pub fn as_str(self) -> &'static str {
        match self {
            TotpState::Pending => "pending",
            TotpState::Active => "active",
        }
    }
}

impl std::str::FromStr for TotpState {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pending" => Ok(TotpState::Pending),
            "active" => Ok(TotpState::Active),
            other => Err(format!("unknown TOTP state {other:?}")),
        }
    }
}

/// A user's TOTP as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = user_totp, check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg))]
pub struct StoredTotp {
    #[diesel(deserialize_as = Parsed<UserId>)]
    pub user_id: UserId,
    /// Sealed by the app; opened only there.
    pub sealed_secret: String,
    #[diesel(deserialize_as = Parsed<TotpState>)]
    pub state: TotpState,
    /// The time step of the last accepted code.
    pub last_step: Option<i64>,
    /// Wrong codes counted toward the lockout.
    pub failures: i64,
    /// The last wrong code's time; the epoch when none.
    #[diesel(deserialize_as = Micros)]
    pub failed_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub locked_until: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub confirmed_at: Option<DateTime<Utc>>,
}

async fn totp_of(c: &mut Conn, user: &str) -> Result<Option<StoredTotp>> {
    run!(c.optional_first(user_totp::table.find(user).select(StoredTotp::as_select())))
}

impl Store {
    /// The user's TOTP, pending or active.
    pub async fn totp(&self, user: UserId) -> Result<Option<StoredTotp>> {
        let mut c = self.door.reader().await?;
        totp_of(&mut c, &user.to_string()).await
    }

    /// Has the user an active TOTP? (Whether its organization requires
    /// one is in the organization's lineage.)
    pub async fn totp_active(&self, user: UserId) -> Result<bool> {
        let mut c = self.door.reader().await?;
        let active: i64 = run!(c.get_result(
            user_totp::table
                .filter(user_totp::user_id.eq(user.to_string()))
                .filter(user_totp::state.eq(TotpState::Active.as_str()))
                .count()
        ))?;
        Ok(active > 0)
    }

    /// Starts an enrolment: a new pending secret for the user, replacing
    /// a pending one. An active one stays, and the answer is 409 (2012).
    pub async fn begin_totp(
        &self,
        user: UserId,
        sealed_secret: String,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let _change = self.access_change();
        self.write(job!(|c| {
            let key = user.to_string();
            if let Some(current) = totp_of(c, &key).await? {
                if current.state == TotpState::Active {
                    return Err(Error::wrong_state(
                        "mfa",
                        user,
                        "MFA is already enabled; remove it before enrolling again",
                    )
                    .with("currentState", TotpState::Active.as_str())
                    .with("expectedStates", vec![TotpState::Pending.as_str()]));
                }
            }
            let fields = (
                user_totp::sealed_secret.eq(&sealed_secret),
                user_totp::state.eq(TotpState::Pending.as_str()),
                user_totp::last_step.eq(None::<i64>),
                user_totp::failures.eq(0),
                user_totp::failed_at.eq(0),
                user_totp::locked_until.eq(None::<i64>),
                user_totp::created_at.eq(to_micros(now)),
                user_totp::confirmed_at.eq(None::<i64>),
            );
            run!(c.execute(
                diesel::insert_into(user_totp::table)
                    .values((user_totp::user_id.eq(&key), fields))
                    .on_conflict(user_totp::user_id)
                    .do_update()
                    .set(fields)
            ))?;
            Ok(())
        }))
        .await
    }

    /// Makes the pending secret `sealed_secret` active, its code of time
    /// step `step` accepted, with new recovery codes (their hashes) in
    /// place of any old ones. `false` when that secret is no longer the
    /// user's pending one (replaced or confirmed meanwhile).
    pub async fn confirm_totp(
        &self,
        user: UserId,
        sealed_secret: String,
        step: i64,
        recovery_hashes: Vec<String>,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let _change = self.access_change();
        self.write(job!(|c| {
            let key = user.to_string();
            let confirmed = run!(c.execute(
                diesel::update(
                    user_totp::table
                        .filter(user_totp::user_id.eq(&key))
                        .filter(user_totp::state.eq(TotpState::Pending.as_str()))
                        .filter(user_totp::sealed_secret.eq(&sealed_secret))
                )
                .set((
                    user_totp::state.eq(TotpState::Active.as_str()),
                    user_totp::last_step.eq(Some(step)),
                    user_totp::failures.eq(0),
                    user_totp::failed_at.eq(0),
                    user_totp::locked_until.eq(None::<i64>),
                    user_totp::confirmed_at.eq(Some(to_micros(now))),
                ))
            ))?;
            if confirmed != 1 {
                return Ok(false);
            }
            run!(c.execute(diesel::delete(
                user_recovery_codes::table.filter(user_recovery_codes::user_id.eq(&key))
            )))?;
            let rows: Vec<_> = recovery_hashes
                .iter()
                .map(|h| {
                    (
                        user_recovery_codes::user_id.eq(&key),
                        user_recovery_codes::code_hash.eq(h),
                        user_recovery_codes::used_at.eq(None::<i64>),
                    )
                })
                .collect();
            run!(c.execute(diesel::insert_into(user_recovery_codes::table).values(rows)))?;
            Ok(true)
        }))
        .await
    }

    /// Checks a second factor in one transaction, the user's TOTP row
    /// locked on PostgreSQL so that no two attempts on any node accept
    /// the same code or miscount a failure. `decide` sees the TOTP and
    /// the hashes of the unused recovery codes, may change the TOTP's
    /// last step and lockout fields (written back when changed), and
    /// names a recovery code to spend (used at `now`); its answer is
    /// returned. `None`
    /// when the user has no TOTP. (`decide` runs in the write transaction,
    /// which may be run by another caller's task: it owns what it uses.)
    pub async fn use_second_factor<R: Send + 'static>(
        &self,
        user: UserId,
        now: DateTime<Utc>,
        decide: impl FnOnce(&mut StoredTotp, &[String]) -> (Option<String>, R) + Send + 'static,
    ) -> Result<Option<R>> {
        self.write(job!(|c| {
            let key = user.to_string();
            // Takes the row's lock first (a no-op update): a read alone
            // would not wait for another node's attempt.
            run!(c.execute(
                diesel::update(user_totp::table.find(&key))
                    .set(user_totp::failures.eq(user_totp::failures))
            ))?;
            let Some(before) = totp_of(c, &key).await? else {
                return Ok(None);
            };
            let unused: Vec<String> = run!(c.load(
                user_recovery_codes::table
                    .filter(user_recovery_codes::user_id.eq(&key))
                    .filter(user_recovery_codes::used_at.is_null())
                    .select(user_recovery_codes::code_hash)
            ))?;
            let mut after = before.clone();
            let (spend, answer) = decide(&mut after, &unused);
            if after != before {
                run!(c.execute(diesel::update(user_totp::table.find(&key)).set((
                    user_totp::last_step.eq(after.last_step),
                    user_totp::failures.eq(after.failures),
                    user_totp::failed_at.eq(to_micros(after.failed_at)),
                    user_totp::locked_until.eq(after.locked_until.map(to_micros)),
                ))))?;
            }
            if let Some(hash) = spend {
                let spent = run!(c.execute(
                    diesel::update(
                        user_recovery_codes::table
                            .filter(user_recovery_codes::user_id.eq(&key))
                            .filter(user_recovery_codes::code_hash.eq(&hash))
                            .filter(user_recovery_codes::used_at.is_null())
                    )
                    .set(user_recovery_codes::used_at.eq(Some(to_micros(now))))
                ))?;
                if spent != 1 {
                    return Err(Error::internal("a recovery code was spent twice"));
                }
            }
            Ok(Some(answer))
        }))
        .await
    }

    /// How many of the user's recovery codes are unused.
    pub async fn unused_recovery_codes(&self, user: UserId) -> Result<i64> {
        let mut c = self.door.reader().await?;
        run!(c.get_result(
            user_recovery_codes::table
                .filter(user_recovery_codes::user_id.eq(user.to_string()))
                .filter(user_recovery_codes::used_at.is_null())
                .count()
        ))
    }

    /// Removes the user's TOTP and recovery codes; `false` when there was
    /// none.
    pub async fn remove_totp(&self, user: UserId) -> Result<bool> {
        let _change = self.access_change();
        self.write(job!(|c| {
            let key = user.to_string();
            run!(c.execute(diesel::delete(
                user_recovery_codes::table.filter(user_recovery_codes::user_id.eq(&key))
            )))?;
            let removed = run!(c.execute(diesel::delete(user_totp::table.find(&key))))?;
            Ok(removed > 0)
        }))
        .await
    }
}

/// Deletes a user's second factor, inside the transaction that deletes
/// the user.
pub(crate) async fn delete_for_user(c: &mut Conn, user: &str) -> Result<()> {
    run!(c.execute(diesel::delete(
        user_recovery_codes::table.filter(user_recovery_codes::user_id.eq(user))
    )))?;
    run!(c.execute(diesel::delete(user_totp::table.find(user))))?;
    Ok(())
}
