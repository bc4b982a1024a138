//! Invitations and password reset (SPEC §5): one-time links, sent by
//! mail, with which a user sets a password.
//!
//! - `POST /api/v2/users` without a password makes an `invited` user and
//!   an activation link (72 h) in one transaction; the link goes by mail
//!   when a [`Mailer`](crate::mail::Mailer) is configured, else in the
//!   answer, once.
//! - `POST /api/2/idp/password-reset` with a login or e-mail always
//!   answers at once, the same way, and does the rest in the background:
//!   an enabled user gets a reset link (1 h), an invited one a new
//!   activation link; nobody else gets anything. So neither the answer
//!   nor its timing says whether the account exists.
//! - A link's token is 256 random bits, kept only as a keyed hash. It is
//!   checked, not spent, when its page is shown (mail scanners fetch
//!   links); setting the password spends it, with every other link of
//!   the user, and ends the user's sessions.
//! - A disabled user's link does nothing, nor one of a suspended
//!   organization; a reset never enables anyone.

use crate::mail::Mail;
use crate::signin::random_token;
use crate::App;
use chrono::Duration;
use nephele_api_types::PasswordResetRequest;
use nephele_common::error::Validator;
use nephele_common::names::check_password;
use nephele_common::status::UserStatus;
use nephele_common::{Result, Secret};
use nephele_store::links::{LinkPurpose, NewLink, Redeemed};
use nephele_store::User;
use subtle::ConstantTimeEq;

pub use nephele_store::links::LinkPurpose as Purpose;

/// How long an activation link works.
pub const ACTIVATION_TTL: Duration = Duration::hours(72);
/// How long a password reset link works.
pub const RESET_TTL: Duration = Duration::hours(1);
/// A user is sent at most one link of a purpose in this time, however
/// often one is asked for.
const RESEND_AFTER: Duration = Duration::seconds(60);
/// A presented token longer than this is no token of ours.
const MAX_TOKEN_LEN: usize = 128;

/// Where each link's page is.
pub const ACTIVATE_PATH: &str = "/api/2/idp/activate";
pub const RESET_PATH: &str = "/api/2/idp/reset";
/// The page where a person asks for a reset link (linked from the login
/// page when mail is sent).
pub const FORGOT_PATH: &str = "/api/2/idp/forgot-password";

fn path_of(purpose: LinkPurpose) -> &'static str {
    match purpose {
        LinkPurpose::Activate => ACTIVATE_PATH,
        LinkPurpose::Reset => RESET_PATH,
    }
}

fn ttl_of(purpose: LinkPurpose) -> Duration {
    match purpose {
        LinkPurpose::Activate => ACTIVATION_TTL,
        LinkPurpose::Reset => RESET_TTL,
    }
}

/// What a presented link is worth.
#[derive(Debug, Clone)]
pub enum LinkState {
    /// It works: its user.
    Live(User),
    /// Unknown, used or expired (the holder is not told which).
    Invalid,
    /// Live, but its user may not use it: why.
    Refused(&'static str),
}

/// What setting a password through a link came to.
#[derive(Debug, Clone)]
pub enum LinkUse {
    /// Set; the link is spent and the user's sessions ended.
    Done(User),
    /// The link does not work (never [`LinkState::Live`]).
    Unusable(LinkState),
    /// The new password is not acceptable: the form's field and why. The
    /// link still works.
    Rejected {
        user: User,
        field: &'static str,
        reason: String,
    },
}

impl App {
    /// The keyed hash a link's token is stored and found by.
    fn link_hash(&self, token: &str) -> String {
        self.link_hasher().hash(token)
    }

    /// A new link for `user`: its URL (holding the token) and what is
    /// stored of it.
    pub(crate) fn new_link(
        &self,
        user: nephele_common::ids::UserId,
        purpose: LinkPurpose,
    ) -> (Secret, NewLink) {
        let token = random_token();
        let now = self.clock().now();
        let link = NewLink {
            token_hash: self.link_hash(&token),
            user_id: user,
            purpose,
            created_at: now,
            expires_at: now + ttl_of(purpose),
        };
        let base = self.config().public_url.trim_end_matches('/');
        let url = format!("{base}{}?token={token}", path_of(purpose));
        (Secret::new(url), link)
    }

    /// Is there a mailer to send links with?
    pub fn sends_mail(&self) -> bool {
        self.config().mailer.is_some()
    }

    /// Mails `user` its link. Failures are logged (without the link) and
    /// not the caller's: the user can ask for another.
    pub(crate) async fn mail_link(&self, user: &User, purpose: LinkPurpose, url: &Secret) {
        let Some(mailer) = self.config().mailer.clone() else {
            return;
        };
        let site = &self.config().public_url;
        let (subject, text) = match purpose {
            LinkPurpose::Activate => (
                "Your Nephele account".to_owned(),
                format!(
                    "Hello {login},\n\n\
                     An account on Nephele ({site}) has been made for you, with the login \
                     \"{login}\".\n\
                     To choose your password, open this link within {hours} hours:\n\n\
                     {url}\n\n\
                     The link works once. If you did not expect this, ignore this message.\n",
                    login = user.login,
                    hours = ACTIVATION_TTL.num_hours(),
                    url = url.expose(),
                ),
            ),
            LinkPurpose::Reset => (
                "Reset your Nephele password".to_owned(),
                format!(
                    "Hello {login},\n\n\
                     Someone asked to reset the password of your account \"{login}\" on \
                     Nephele ({site}).\n\
                     To choose a new password, open this link within {minutes} minutes:\n\n\
                     {url}\n\n\
                     The link works once. If you did not ask for this, ignore this message: \
                     your password stays as it is.\n",
                    login = user.login,
                    minutes = RESET_TTL.num_minutes(),
                    url = url.expose(),
                ),
            ),
        };
        let mail = Mail {
            to: user.email.clone(),
            subject,
            text: Secret::new(text),
        };
        if let Err(e) = mailer.send(mail).await {
            tracing::warn!(user = %user.id, purpose = purpose.as_str(), error = %e,
                "the mail with a one-time link was not sent");
        }
    }

    /// `POST /api/2/idp/password-reset`: answers nothing, at once; the
    /// lookup and the mail happen in the background, so the caller
    /// learns nothing of the account.
    pub fn request_password_reset(&self, request: PasswordResetRequest) -> Result<()> {
        let mut v = Validator::new();
        let login = v.require("login", request.login, |l: String| {
            if l.is_empty() || l.chars().count() > 320 {
                Err("must be a login or e-mail address of 1 to 320 characters".to_owned())
            } else {
                Ok(l)
            }
        });
        v.finish()?;
        let Some(login) = login else {
            return Err(nephele_common::Error::internal("validated login missing"));
        };
        let app = self.clone();
        tokio::spawn(async move {
            if let Err(e) = app.send_reset_link(&login).await {
                tracing::warn!(error = %e, "a password reset request failed");
            }
        });
        Ok(())
    }

    async fn send_reset_link(&self, login: &str) -> Result<()> {
        let Some(user) = self.store().user_by_login_or_email(login.trim()).await? else {
            return Ok(());
        };
        let purpose = match user.status {
            UserStatus::Enabled => LinkPurpose::Reset,
            // An invitation whose mail was lost: a new one.
            UserStatus::Invited => LinkPurpose::Activate,
            UserStatus::Disabled => return Ok(()),
        };
        if self
            .ensure_not_suspended(user.organization_id)
            .await
            .is_err()
        {
            return Ok(());
        }
        if !self.sends_mail() {
            tracing::warn!(
                "a password reset was asked for, but no mail server is configured (--smtp-url)"
            );
            return Ok(());
        }
        let (url, link) = self.new_link(user.id, purpose);
        let now = self.clock().now();
        if self.store().issue_link(&link, now - RESEND_AFTER).await? {
            self.mail_link(&user, purpose, &url).await;
        }
        Ok(())
    }

    /// What the link with `token` is worth for `purpose` (its page shows
    /// this; nothing is spent).
    pub async fn link_state(&self, purpose: LinkPurpose, token: &str) -> Result<LinkState> {
        if token.is_empty() || token.len() > MAX_TOKEN_LEN {
            return Ok(LinkState::Invalid);
        }
        let now = self.clock().now();
        let Some(user) = self
            .store()
            .link_user(&self.link_hash(token), purpose, now)
            .await?
        else {
            return Ok(LinkState::Invalid);
        };
        self.usable(user, purpose).await
    }

    async fn usable(&self, user: User, purpose: LinkPurpose) -> Result<LinkState> {
        if user.status != purpose.takes() {
            return Ok(LinkState::Refused(match user.status {
                UserStatus::Disabled => "This account is disabled",
                UserStatus::Enabled => "This account is already active",
                UserStatus::Invited => "This account has not been activated yet",
            }));
        }
        if self
            .ensure_not_suspended(user.organization_id)
            .await
            .is_err()
        {
            return Ok(LinkState::Refused("This organization is suspended"));
        }
        Ok(LinkState::Live(user))
    }

    /// Sets the password of the link's user: `password` twice (as the
    /// form asks), held to the rules of every password. The link is spent,
    /// an invited user enabled, and every session of the user ends.
    pub async fn use_link(
        &self,
        purpose: LinkPurpose,
        token: &str,
        password: &Secret,
        confirmation: &Secret,
    ) -> Result<LinkUse> {
        let user = match self.link_state(purpose, token).await? {
            LinkState::Live(user) => user,
            other => return Ok(LinkUse::Unusable(other)),
        };
        if let Err(reason) = check_password(password.expose()) {
            return Ok(LinkUse::Rejected {
                user,
                field: "password",
                reason: format!("The password {reason}"),
            });
        }
        let same: bool = password
            .expose()
            .as_bytes()
            .ct_eq(confirmation.expose().as_bytes())
            .into();
        if !same {
            return Ok(LinkUse::Rejected {
                user,
                field: "password_confirmation",
                reason: "The two passwords are not the same".to_owned(),
            });
        }
        let hash = self.passwords().hash(password).await?;
        let now = self.clock().now();
        let redeemed = self
            .store()
            .redeem_link(&self.link_hash(token), purpose, &hash, now)
            .await?;
        Ok(match redeemed {
            Redeemed::Done(user) => LinkUse::Done(user),
            Redeemed::Unknown => LinkUse::Unusable(LinkState::Invalid),
            Redeemed::Refused(_) => LinkUse::Unusable(self.usable(user, purpose).await?),
        })
    }
}
