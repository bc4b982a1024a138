//! One-time links sent by e-mail: an invited user's activation link and
//! a password reset link. A link is found by the keyed hash of its token
//! (never the token), lives until `expires_at`, and is spent once: the
//! transaction that sets the password deletes it, and every other link of
//! its user, and ends the user's sessions.

use crate::door::{job, run};
use crate::tables::{link_tokens, users};
use crate::{NewUser, Store, User};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::{RoleId, UserId};
use nephele_common::status::UserStatus;
use nephele_common::Result;

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// An invited user sets a first password, which enables it.
    Activate,
    /// An enabled user sets a new password.
    Reset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Activate => "activate",
            LinkPurpose::Reset => "reset",
        }
    }

    /// The status a user must have for a link of this purpose to work.
    pub fn takes(self) -> UserStatus {
        match self {
            LinkPurpose::Activate => UserStatus::Invited,
            LinkPurpose::Reset => UserStatus::Enabled,
        }
    }
}

/// A link to store, by the hash of its token.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub token_hash: String,
    pub user_id: UserId,
    pub purpose: LinkPurpose,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What presenting a link to set a password came to.
#[derive(Debug, Clone, PartialEq)]
pub enum Redeemed {
    /// The password is set (an invited user enabled), the link spent and
    /// the user's sessions ended: the user as it is now.
    Done(User),
    /// No live link of that purpose has this hash: unknown, used or
    /// expired, which the holder is not told apart.
    Unknown,
    /// The link is live but its user's status does not let it work (a
    /// disabled user): nothing changed.
    Refused(UserStatus),
}

async fn insert_link(c: &mut crate::door::Conn, link: &NewLink) -> Result<()> {
    run!(c.execute(diesel::insert_into(link_tokens::table).values((
        link_tokens::token_hash.eq(&link.token_hash),
        link_tokens::user_id.eq(link.user_id.to_string()),
        link_tokens::purpose.eq(link.purpose.as_str()),
        link_tokens::created_at.eq(to_micros(link.created_at)),
        link_tokens::expires_at.eq(to_micros(link.expires_at)),
    ))))?;
    Ok(())
}

impl Store {
    /// Creates an invited user with its roles and its activation link, in
    /// one transaction.
    pub async fn create_invited_user(
        &self,
        new: &NewUser,
        roles: &[RoleId],
        link: &NewLink,
    ) -> Result<User> {
        let (new, roles, link) = (new.clone(), roles.to_vec(), link.clone());
        self.write(job!(|c| {
            let user = crate::users::add_user(c, &new, &roles).await?;
            insert_link(c, &link).await?;
            Ok(user)
        }))
        .await
    }

    /// Stores a link unless the user was given one of the same purpose
    /// after `not_since` (a flood of requests sends one mail); the
    /// user's older links of that purpose go. Whether it was stored.
    pub async fn issue_link(&self, link: &NewLink, not_since: DateTime<Utc>) -> Result<bool> {
        let link = link.clone();
        self.write(job!(|c| {
            let mine = link_tokens::table
                .filter(link_tokens::user_id.eq(link.user_id.to_string()))
                .filter(link_tokens::purpose.eq(link.purpose.as_str()));
            let recent: i64 = run!(c.get_result(
                mine.clone()
                    .filter(link_tokens::created_at.gt(to_micros(not_since)))
                    .count()
            ))?;
            if recent > 0 {
                return Ok(false);
            }
            run!(c.execute(diesel::delete(mine)))?;
            insert_link(c, &link).await?;
            Ok(true)
        }))
        .await
    }

    /// The user of the live link of `purpose` that `hash` names, if any.
    pub async fn link_user(
        &self,
        hash: &str,
        purpose: LinkPurpose,
        now: DateTime<Utc>,
    ) -> Result<Option<User>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            link_tokens::table
                .inner_join(users::table.on(users::id.eq(link_tokens::user_id)))
                .filter(link_tokens::token_hash.eq(hash))
                .filter(link_tokens::purpose.eq(purpose.as_str()))
                .filter(link_tokens::expires_at.gt(to_micros(now)))
                .select(User::as_select())
        ))
    }

    /// Spends a live link to set its user's password (`password_hash`),
    /// in one transaction: the link and every other link of the user are
    /// deleted, an invited user becomes enabled, and the user's sessions
    /// end. Deleting the link is what decides a race: of two presentations
    /// one finds it.
    pub async fn redeem_link(
        &self,
        hash: &str,
        purpose: LinkPurpose,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Redeemed> {
        let _change = self.access_change();
        let (hash, password_hash) = (hash.to_owned(), password_hash.to_owned());
        self.write(job!(|c| {
            let live = link_tokens::table
                .filter(link_tokens::token_hash.eq(&hash))
                .filter(link_tokens::purpose.eq(purpose.as_str()))
                .filter(link_tokens::expires_at.gt(to_micros(now)));
            let found: Option<String> = run!(c.optional_first(live.select(link_tokens::user_id)))?;
            let Some(user_id) = found else {
                return Ok(Redeemed::Unknown);
            };
            let Some(user) =
                run!(c.optional_first(users::table.find(&user_id).select(User::as_select())))?
            else {
                return Ok(Redeemed::Unknown);
            };
            if user.status != purpose.takes() {
                return Ok(Redeemed::Refused(user.status));
            }
            if run!(c.execute(diesel::delete(live)))? != 1 {
                return Ok(Redeemed::Unknown);
            }
            run!(c.execute(diesel::delete(
                link_tokens::table.filter(link_tokens::user_id.eq(&user_id))
            )))?;
            if !crate::users::write_password(c, user.id, &password_hash, now).await? {
                return Ok(Redeemed::Unknown);
            }
            Ok(Redeemed::Done(User {
                password_hash,
                status: UserStatus::Enabled,
                updated_at: now,
                version: user.version + 1,
                session_generation: user.session_generation + 1,
                ..user
            }))
        }))
        .await
    }

    /// Forgets links that have expired.
    pub async fn purge_expired_links(&self, now: DateTime<Utc>) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(diesel::delete(
                link_tokens::table.filter(link_tokens::expires_at.le(to_micros(now)))
            )))?;
            Ok(())
        }))
        .await
    }
}
