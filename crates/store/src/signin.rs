//! The identity provider's sign-in state: SSO sessions, authorization
//! codes and consents.

use crate::door::{job, run};
use crate::tables::{api_clients, authorization_codes, consents, sso_sessions, users};
use crate::{AuthorizationCode, CodeSpend, SsoSession, Store};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use nephele_common::clock::to_micros;
use nephele_common::ids::{ClientId, RefreshTokenId, SsoSessionId, UserId};
use nephele_common::Result;

/// A code to store, with the hash it is found by.
#[derive(Debug, Clone)]
pub struct NewCode {
    pub hash: String,
    pub code: AuthorizationCode,
}

impl Store {
    pub async fn create_sso_session(&self, session: &SsoSession, token_hash: &str) -> Result<()> {
        let (s, hash) = (session.clone(), token_hash.to_owned());
        self.write(job!(|c| {
            run!(c.execute(diesel::insert_into(sso_sessions::table).values((
                sso_sessions::id.eq(s.id.to_string()),
                sso_sessions::token_hash.eq(&hash),
                sso_sessions::user_id.eq(s.user_id.to_string()),
                sso_sessions::session_generation.eq(s.session_generation),
                sso_sessions::amr.eq(&s.amr),
                sso_sessions::auth_time.eq(to_micros(s.auth_time)),
                sso_sessions::user_agent.eq(&s.user_agent),
                sso_sessions::address.eq(&s.address),
                sso_sessions::created_at.eq(to_micros(s.created_at)),
                sso_sessions::last_seen_at.eq(to_micros(s.last_seen_at)),
                sso_sessions::expires_at.eq(to_micros(s.expires_at)),
            ))))?;
            Ok(())
        }))
        .await
    }

    /// The session a cookie names, if it is still of its user's current
    /// session generation (it ends with the user's sessions).
    pub async fn sso_session_by_hash(&self, token_hash: &str) -> Result<Option<SsoSession>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            sso_sessions::table
                .inner_join(users::table.on(users::id.eq(sso_sessions::user_id)))
                .filter(sso_sessions::token_hash.eq(token_hash))
                .filter(users::session_generation.eq(sso_sessions::session_generation))
                .select(SsoSession::as_select())
        ))
    }

    pub async fn touch_sso_session(&self, id: SsoSessionId, now: DateTime<Utc>) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(
                diesel::update(sso_sessions::table.find(id.to_string()))
                    .set(sso_sessions::last_seen_at.eq(to_micros(now)))
            ))?;
            Ok(())
        }))
        .await
    }

    /// A user's live sessions, newest first.
    pub async fn sso_sessions(&self, user: UserId, now: DateTime<Utc>) -> Result<Vec<SsoSession>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            sso_sessions::table
                .inner_join(users::table.on(users::id.eq(sso_sessions::user_id)))
                .filter(sso_sessions::user_id.eq(user.to_string()))
                .filter(users::session_generation.eq(sso_sessions::session_generation))
                .filter(sso_sessions::expires_at.gt(to_micros(now)))
                .order(sso_sessions::created_at.desc())
                .select(SsoSession::as_select())
        ))
    }

    /// Ends one session of a user (`None`: all of them); how many ended.
    pub async fn end_sso_sessions(&self, user: UserId, id: Option<SsoSessionId>) -> Result<usize> {
        self.write(job!(|c| {
            let mine = sso_sessions::table.filter(sso_sessions::user_id.eq(user.to_string()));
            match id {
                Some(id) => run!(c.execute(diesel::delete(
                    mine.filter(sso_sessions::id.eq(id.to_string()))
                ))),
                None => run!(c.execute(diesel::delete(mine))),
            }
        }))
        .await
    }

    pub async fn create_authorization_code(&self, new: &NewCode) -> Result<()> {
        let new = new.clone();
        self.write(job!(|c| {
            let code = &new.code;
            run!(
                c.execute(diesel::insert_into(authorization_codes::table).values((
                    authorization_codes::code_hash.eq(&new.hash),
                    authorization_codes::client_id.eq(code.client_id.to_string()),
                    authorization_codes::user_id.eq(code.user_id.to_string()),
                    authorization_codes::session_id.eq(code.session_id.to_string()),
                    authorization_codes::redirect_uri.eq(&code.redirect_uri),
                    authorization_codes::scope.eq(&code.scope),
                    authorization_codes::nonce.eq(&code.nonce),
                    authorization_codes::code_challenge.eq(&code.code_challenge),
                    authorization_codes::amr.eq(&code.amr),
                    authorization_codes::auth_time.eq(to_micros(code.auth_time)),
                    authorization_codes::created_at.eq(to_micros(code.created_at)),
                    authorization_codes::expires_at.eq(to_micros(code.expires_at)),
                )))
            )?;
            Ok(())
        }))
        .await
    }

    /// Spends a code, once: the first presentation finds it fresh, every
    /// later one finds it replayed. Expired codes are as good as unknown.
    pub async fn spend_authorization_code(
        &self,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeSpend> {
        let hash = hash.to_owned();
        self.write(job!(|c| {
            let spent = run!(c.execute(
                diesel::update(
                    authorization_codes::table
                        .find(&hash)
                        .filter(authorization_codes::used_at.is_null())
                        .filter(authorization_codes::expires_at.gt(to_micros(now)))
                )
                .set(authorization_codes::used_at.eq(to_micros(now)))
            ))?;
            let code = run!(c.optional_first(
                authorization_codes::table
                    .find(&hash)
                    .select(AuthorizationCode::as_select())
            ))?;
            Ok(match code {
                Some(code) if spent == 1 => CodeSpend::Fresh(code),
                Some(code) => CodeSpend::Replayed(code),
                None => CodeSpend::Unknown,
            })
        }))
        .await
    }

    /// Notes what a spent code was exchanged for, for a replay to revoke.
    pub async fn note_code_issued(
        &self,
        hash: &str,
        access_jti: &str,
        access_expires_at: DateTime<Utc>,
        refresh_family: Option<RefreshTokenId>,
    ) -> Result<()> {
        let (hash, jti) = (hash.to_owned(), access_jti.to_owned());
        self.write(job!(|c| {
            run!(
                c.execute(
                    diesel::update(authorization_codes::table.find(&hash)).set((
                        authorization_codes::access_jti.eq(&jti),
                        authorization_codes::access_expires_at.eq(to_micros(access_expires_at)),
                        authorization_codes::refresh_family_id
                            .eq(refresh_family.map(|f| f.to_string())),
                    ))
                )
            )?;
            Ok(())
        }))
        .await
    }

    /// Forgets codes that expired a while ago (a replay of one that old is
    /// refused as unknown, and its tokens have long expired).
    pub async fn purge_expired_codes(&self, before: DateTime<Utc>) -> Result<()> {
        self.write(job!(|c| {
            run!(c.execute(diesel::delete(
                authorization_codes::table
                    .filter(authorization_codes::expires_at.lt(to_micros(before)))
            )))?;
            run!(c.execute(diesel::delete(
                sso_sessions::table.filter(sso_sessions::expires_at.lt(to_micros(before)))
            )))?;
            Ok(())
        }))
        .await
    }

    /// The scope a user allowed a client, if any.
    pub async fn consent(&self, user: UserId, client: ClientId) -> Result<Option<String>> {
        let mut c = self.door.reader().await?;
        run!(c.optional_first(
            consents::table
                .find((user.to_string(), client.to_string()))
                .select(consents::scope)
        ))
    }

    pub async fn grant_consent(
        &self,
        user: UserId,
        client: ClientId,
        scope: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let scope = scope.to_owned();
        self.write(job!(|c| {
            let key = (user.to_string(), client.to_string());
            run!(c.execute(diesel::delete(consents::table.find(key))))?;
            run!(c.execute(diesel::insert_into(consents::table).values((
                consents::user_id.eq(user.to_string()),
                consents::client_id.eq(client.to_string()),
                consents::scope.eq(&scope),
                consents::created_at.eq(to_micros(now)),
            ))))?;
            Ok(())
        }))
        .await
    }

    /// What a user allowed, client by client: `(client, its name, scope,
    /// when)`, newest first.
    pub async fn consents(&self, user: UserId) -> Result<Vec<Consent>> {
        let mut c = self.door.reader().await?;
        run!(c.load(
            consents::table
                .inner_join(api_clients::table.on(api_clients::id.eq(consents::client_id)))
                .filter(consents::user_id.eq(user.to_string()))
                .order(consents::created_at.desc())
                .select((
                    consents::client_id,
                    api_clients::name,
                    consents::scope,
                    consents::created_at
                ))
        ))
    }

    /// Forgets a consent; whether there was one.
    pub async fn revoke_consent(&self, user: UserId, client: ClientId) -> Result<bool> {
        self.write(job!(|c| {
            let key = (user.to_string(), client.to_string());
            Ok(run!(c.execute(diesel::delete(consents::table.find(key))))? > 0)
        }))
        .await
    }
}

/// A consent a user gave a client.
#[derive(Debug, Clone, PartialEq, Queryable)]
pub struct Consent {
    #[diesel(deserialize_as = crate::columns::Parsed<ClientId>)]
    pub client_id: ClientId,
    pub client_name: String,
    pub scope: String,
    #[diesel(deserialize_as = crate::columns::Micros)]
    pub created_at: DateTime<Utc>,
}
