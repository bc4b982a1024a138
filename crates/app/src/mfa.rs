//! MFA with TOTP (SPEC §5; RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps,
//! a code of the step before or after now accepted too) and one-time
//! recovery codes.
//!
//! - Enrolment makes a pending secret (sealed under the configured secret
//!   key, as signing keys are); a code confirms it, which makes it active
//!   and answers 10 recovery codes, once. They are kept as keyed hashes.
//! - A code is accepted once: the step of the last accepted code is kept,
//!   and a code of that step or an earlier one is refused.
//! - Wrong codes are counted per user (the password has already been
//!   checked: only someone who holds it gets this far) and lock the
//!   user's codes from the fifth on, as the password lockout locks an
//!   account: 30 s, doubling to 15 min. While locked even the right code
//!   is refused.
//! - Removal takes the password and a code (or a recovery code).
//!
//! Each check of a code reads and changes the user's TOTP in one
//! transaction with its row locked, so no two attempts on any node accept
//! the same code or miscount a failure.

use crate::access::OpCtx;
use crate::lockout::{locked_out, wait, LockoutPolicy};
use crate::App;
use chrono::{DateTime, Utc};
use nephele_common::error::Validator;
use nephele_common::ids::UserId;
use nephele_common::{Error, ErrorCode, Result, Secret};
use nephele_store::mfa::{StoredTotp, TotpState};
use nephele_store::throttle::Counter;
use rand::Rng;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};

/// The issuer an authenticator app shows beside the account (the login).
pub const TOTP_ISSUER: &str = "Nephele";
const DIGITS: usize = 6;
const STEP_SECONDS: i64 = 30;
/// Steps either side of now whose codes are accepted too: clocks a little
/// apart, and the time it takes to type a code.
const SKEW_STEPS: i64 = 1;
/// 160 bits, the length RFC 4226 recommends.
const SECRET_BYTES: usize = 20;
/// How many recovery codes a confirmation answers.
pub const RECOVERY_CODES: usize = 10;
/// Recovery codes are 10 symbols of these 31 (no 0/o, 1/i/l), about 50
/// bits, shown as `xxxxx-xxxxx`.
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const RECOVERY_LEN: usize = 10;

/// A new enrolment, shown once: the secret for an authenticator app, as
/// text and as an `otpauth://` URI (also as a QR code).
#[derive(Debug, Clone)]
pub struct TotpEnrolment {
    /// Base32, without padding.
    pub secret: Secret,
    pub otpauth_uri: Secret,
    /// The URI as a QR code, an SVG document to inline in a page.
    pub qr_svg: String,
}

/// The second factor a code proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    /// A current TOTP code.
    Totp,
    /// A recovery code, now spent; how many remain unused.
    RecoveryCode { remaining: usize },
}

impl SecondFactor {
    /// The id token's `amr` for a password and this factor (RFC 8176).
    pub fn amr(self) -> [&'static str; 2] {
        ["pwd", "otp"]
    }
}

/// What one code is, from its form: six digits are a TOTP code; ten
/// symbols of the recovery alphabet (dashes and spaces aside, any case)
/// a recovery code.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Code {
    Totp(String),
    Recovery(String),
    Malformed,
}

fn classify(code: &str) -> Code {
    let code = code.trim();
    if code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit()) {
        return Code::Totp(code.to_owned());
    }
    let normal: String = code
        .chars()
        .filter(|c| *c != '-' && !c.is_whitespace())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if normal.len() == RECOVERY_LEN && normal.bytes().all(|b| RECOVERY_ALPHABET.contains(&b)) {
        Code::Recovery(normal)
    } else {
        Code::Malformed
    }
}

/// The TOTP of a secret, for `account`.
fn totp(secret: Vec<u8>, account: &str) -> Result<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        SKEW_STEPS as u8,
        STEP_SECONDS as u64,
        secret,
        Some(TOTP_ISSUER.to_owned()),
        account.to_owned(),
    )
    .map_err(|e| Error::internal(format!("TOTP: {e}")))
}

/// The time step of `now`.
fn step_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(STEP_SECONDS)
}

/// The step, within the skew around `now` and after `after`, whose code
/// `code` is; `None` when it is none of them.
fn matching_step(totp: &TOTP, code: &str, now: DateTime<Utc>, after: Option<i64>) -> Option<i64> {
    let current = step_of(now);
    (current - SKEW_STEPS..=current + SKEW_STEPS)
        .filter(|s| *s >= 0 && after.is_none_or(|last| *s > last))
        .find(|s| {
            let expected = totp.generate((*s * STEP_SECONDS) as u64);
            bool::from(expected.as_bytes().ct_eq(code.as_bytes()))
        })
}

fn new_recovery_code() -> String {
    let mut rng = rand::thread_rng();
    let symbols: String = (0..RECOVERY_LEN)
        .map(|_| char::from(RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())]))
        .collect();
    format!("{}-{}", &symbols[..5], &symbols[5..])
}

/// The associated data a user's sealed secret is bound to: moved to
/// another user's row, it does not open.
fn seal_context(user: UserId) -> String {
    format!("totp:{user}")
}

/// What an attempt with a code came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Accepted(SecondFactor),
    /// Wrong, replayed or malformed: counted.
    Wrong,
    /// Locked: refused whatever the code, this many seconds more.
    Locked(u64),
}

/// Decides one attempt against a user's TOTP (as stored, changed in place
/// as it must be written back) and the hashes of its unused recovery
/// codes; the recovery code to spend, if one was used.
fn attempt(
    stored: &mut StoredTotp,
    unused: &[String],
    totp: &TOTP,
    code: &Code,
    recovery_hash: Option<&str>,
    policy: &LockoutPolicy,
    now: DateTime<Utc>,
) -> (Option<String>, Outcome) {
    let mut counter = Counter {
        count: stored.failures,
        at: stored.failed_at,
        locked_until: stored.locked_until,
    };
    if let Some(w) = wait(&counter, now) {
        return (None, Outcome::Locked(w));
    }
    let (spend, accepted) = match code {
        Code::Totp(code) => match matching_step(totp, code, now, stored.last_step) {
            Some(step) => {
                stored.last_step = Some(step);
                (None, Some(SecondFactor::Totp))
            }
            None => (None, None),
        },
        Code::Recovery(_) => match recovery_hash.filter(|h| unused.iter().any(|u| u == h)) {
            Some(hash) => (
                Some(hash.to_owned()),
                Some(SecondFactor::RecoveryCode {
                    remaining: unused.len().saturating_sub(1),
                }),
            ),
            None => (None, None),
        },
        Code::Malformed => (None, None),
    };
    match accepted {
        Some(factor) => {
            counter = Counter::default();
            (stored.failures, stored.failed_at, stored.locked_until) =
                (counter.count, counter.at, counter.locked_until);
            (spend, Outcome::Accepted(factor))
        }
        None => {
            policy.count_failure(&mut counter, policy.code_threshold, now);
            (stored.failures, stored.failed_at, stored.locked_until) =
                (counter.count, counter.at, counter.locked_until);
            (None, Outcome::Wrong)
        }
    }
}

/// The answer to a wrong, replayed or malformed code.
pub fn wrong_code() -> Error {
    Error::new(
        ErrorCode::InvalidCredentials,
        "The code is wrong or has already been used",
    )
}

impl App {
    /// Does the user have an active TOTP? (The login page asks before its
    /// second step; the password grant before it asks for `otp`.)
    pub async fn mfa_enrolled(&self, user: UserId) -> Result<bool> {
        self.store().totp_active(user).await
    }

    /// Checks a second factor of a user whose password has just been
    /// verified: a current TOTP code not accepted before, or an unused
    /// recovery code (which this spends). Wrong, replayed and malformed
    /// codes are refused alike (401, 1001) and counted; from the fifth
    /// within 15 minutes the user's codes are locked (429, 1004, with
    /// `Retry-After`), right ones too. A user without an active TOTP is
    /// refused like a wrong code: callers ask [`App::mfa_enrolled`] first.
    pub async fn verify_second_factor(&self, user: UserId, code: &str) -> Result<SecondFactor> {
        let code = classify(code);
        let recovery_hash = match &code {
            Code::Recovery(normal) => Some(self.recovery_hasher().hash(normal)),
            _ => None,
        };
        let policy = self.config().lockout;
        let now = self.clock().now();
        let app = self.clone();
        let outcome = self
            .store()
            .use_second_factor(user, now, move |stored, unused| {
                if stored.state != TotpState::Active {
                    return (None, Ok(Outcome::Wrong));
                }
                let secret = match app
                    .record_sealer()
                    .open(&stored.sealed_secret, &seal_context(user))
                {
                    Ok(secret) => secret,
                    Err(e) => return (None, Err(e)),
                };
                let totp = match totp(secret, "") {
                    Ok(totp) => totp,
                    Err(e) => return (None, Err(e)),
                };
                let (spend, outcome) = attempt(
                    stored,
                    unused,
                    &totp,
                    &code,
                    recovery_hash.as_deref(),
                    &policy,
                    now,
                );
                (spend, Ok(outcome))
            })
            .await?
            .unwrap_or(Ok(Outcome::Wrong))?;
        match outcome {
            Outcome::Accepted(factor) => Ok(factor),
            Outcome::Wrong => Err(wrong_code()),
            Outcome::Locked(w) => Err(locked_out(w).with("reason", "mfa_codes_locked")),
        }
    }

    /// `POST /api/v2/me/mfa/totp`: a new pending secret for the caller
    /// (replacing a pending one), shown this once; 409 (2012) while one is
    /// active. Users only.
    pub async fn enrol_totp(&self, ctx: &OpCtx) -> Result<TotpEnrolment> {
        let user = self.acting_user(ctx)?;
        let secret: [u8; SECRET_BYTES] = rand::thread_rng().gen();
        let sealed = self.record_sealer().seal(&secret, &seal_context(user))?;
        let totp = totp(secret.to_vec(), &ctx.actor.name)?;
        self.store()
            .begin_totp(user, sealed, self.clock().now())
            .await?;
        let uri = totp.get_url();
        let qr_svg = qr_svg(&uri)?;
        Ok(TotpEnrolment {
            secret: Secret::new(totp.get_secret_base32()),
            otpauth_uri: Secret::new(uri),
            qr_svg,
        })
    }

    /// `POST /api/v2/me/mfa/totp/confirm`: a current code of the pending
    /// secret makes it active; the answer is the recovery codes, shown
    /// this once. A wrong code is 422 (`code`); no pending enrolment is
    /// 409 (2012).
    pub async fn confirm_totp(&self, ctx: &OpCtx, code: Option<String>) -> Result<Vec<Secret>> {
        let user = self.acting_user(ctx)?;
        let mut v = Validator::new();
        let code = v.require("code", code, |c| match classify(&c) {
            Code::Totp(c) => Ok(c),
            _ => Err(format!(
                "must be the {DIGITS}-digit code of your authenticator"
            )),
        });
        v.finish()?;
        let code = code.unwrap_or_default();
        let pending = match self.store().totp(user).await? {
            Some(t) if t.state == TotpState::Pending => t,
            found => {
                let current = match found {
                    Some(_) => TotpState::Active.as_str(),
                    None => "none",
                };
                return Err(Error::wrong_state(
                    "mfa",
                    user,
                    "No MFA enrolment is pending: start one with POST /api/v2/me/mfa/totp",
                )
                .with("currentState", current)
                .with("expectedStates", vec![TotpState::Pending.as_str()]));
            }
        };
        let secret = self
            .record_sealer()
            .open(&pending.sealed_secret, &seal_context(user))?;
        let totp = totp(secret, &ctx.actor.name)?;
        let now = self.clock().now();
        let Some(step) = matching_step(&totp, &code, now, None) else {
            return Err(Error::invalid(
                "code",
                "is not a current code of the secret being enrolled",
            ));
        };
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let hashes = codes
            .iter()
            .map(|c| self.recovery_hasher().hash(&c.replace('-', "")))
            .collect();
        if !self
            .store()
            .confirm_totp(user, pending.sealed_secret, step, hashes, now)
            .await?
        {
            return Err(Error::wrong_state(
                "mfa",
                user,
                "The enrolment changed meanwhile; start again",
            ));
        }
        Ok(codes.into_iter().map(Secret::new).collect())
    }

    /// `DELETE /api/v2/me/mfa/totp`: removes the caller's TOTP and
    /// recovery codes. Takes the caller's password (422 `password` when
    /// wrong) and, for an active TOTP, a current or recovery code (422
    /// `code` when wrong, counted toward the code lockout: 429 once
    /// locked). Both fields are required; for a pending enrolment only the
    /// password is checked. No TOTP at all is 404.
    pub async fn remove_totp(
        &self,
        ctx: &OpCtx,
        password: Option<Secret>,
        code: Option<String>,
    ) -> Result<()> {
        let user = self.acting_user(ctx)?;
        let mut v = Validator::new();
        let password = v.require("password", password, Ok);
        let code = v.require("code", code, Ok);
        v.finish()?;
        let password = password.unwrap_or_else(|| Secret::new(""));
        let found = self
            .store()
            .user(user)
            .await?
            .ok_or_else(|| Error::not_found("users", user))?;
        if password.expose().len() > nephele_common::names::PASSWORD_MAX
            || !self
                .passwords()
                .verify(&password, Some(&found.password_hash))
                .await?
        {
            return Err(Error::invalid("password", "is not your password"));
        }
        let Some(totp) = self.store().totp(user).await? else {
            return Err(Error::not_found("mfa", "totp"));
        };
        if totp.state == TotpState::Active {
            match self
                .verify_second_factor(user, code.as_deref().unwrap_or_default())
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == ErrorCode::InvalidCredentials => {
                    return Err(Error::invalid(
                        "code",
                        "is not a current code or an unused recovery code",
                    ))
                }
                Err(e) => return Err(e),
            }
        }
        self.store().remove_totp(user).await?;
        Ok(())
    }
}

/// `data` as a QR code, an SVG document without its XML declaration.
fn qr_svg(data: &str) -> Result<String> {
    let code = qrcode::QrCode::new(data.as_bytes())
        .map_err(|e| Error::internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    Ok(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn stored() -> StoredTotp {
        StoredTotp {
            user_id: UserId::new(),
            sealed_secret: String::new(),
            state: TotpState::Active,
            last_step: None,
            failures: 0,
            failed_at: DateTime::<Utc>::UNIX_EPOCH,
            locked_until: None,
            created_at: t(0),
            confirmed_at: Some(t(0)),
        }
    }

    fn secret() -> TOTP {
        totp(b"12345678901234567890".to_vec(), "alice").unwrap()
    }

    #[test]
    fn codes_follow_rfc_6238() {
        // RFC 6238 Appendix B, SHA-1, the last six digits.
        let totp = secret();
        assert_eq!(totp.generate(59), "287082");
        assert_eq!(totp.generate(1_111_111_109), "081804");
        assert_eq!(totp.generate(20_000_000_000), "353130");
    }

    #[test]
    fn codes_and_recovery_codes_are_told_apart() {
        assert_eq!(classify(" 123456 "), Code::Totp("123456".into()));
        assert_eq!(classify("ABCDE-fgh23"), Code::Recovery("abcdefgh23".into()));
        assert_eq!(classify("12345"), Code::Malformed);
        assert_eq!(classify("abcde-fghi0"), Code::Malformed);
        let made = new_recovery_code();
        assert_eq!(made.len(), RECOVERY_LEN + 1);
        assert!(matches!(classify(&made), Code::Recovery(_)));
    }

    #[test]
    fn a_code_is_accepted_once_within_one_step_of_now() {
        let policy = LockoutPolicy::default();
        let totp = secret();
        let mut s = stored();
        let now = t(0);
        let code = |at: i64| Code::Totp(totp.generate((step_of(now) + at) as u64 * 30));
        let (_, first) = attempt(&mut s, &[], &totp, &code(0), None, &policy, now);
        assert_eq!(first, Outcome::Accepted(SecondFactor::Totp));
        // The same code again: refused.
        let (_, again) = attempt(&mut s, &[], &totp, &code(0), None, &policy, now);
        assert_eq!(again, Outcome::Wrong);
        // The previous step's code is older than the accepted one.
        let (_, older) = attempt(&mut s, &[], &totp, &code(-1), None, &policy, now);
        assert_eq!(older, Outcome::Wrong);
        // The next step's is accepted (skew), the one after is not.
        let (_, next) = attempt(&mut s, &[], &totp, &code(1), None, &policy, now);
        assert_eq!(next, Outcome::Accepted(SecondFactor::Totp));
        let (_, far) = attempt(&mut s, &[], &totp, &code(2), None, &policy, now);
        assert_eq!(far, Outcome::Wrong);
    }

    #[test]
    fn wrong_codes_lock_and_a_right_one_clears_the_count() {
        let policy = LockoutPolicy::default();
        let totp = secret();
        let mut s = stored();
        let wrong = Code::Totp("000000".into());
        let right = |at: i64| Code::Totp(totp.generate(step_of(t(at)) as u64 * 30));
        for i in 0..4 {
            attempt(&mut s, &[], &totp, &wrong, None, &policy, t(i));
        }
        let (_, ok) = attempt(&mut s, &[], &totp, &right(4), None, &policy, t(4));
        assert_eq!(ok, Outcome::Accepted(SecondFactor::Totp));
        assert_eq!(s.failures, 0);
        for i in 0..5 {
            let (_, o) = attempt(&mut s, &[], &totp, &wrong, None, &policy, t(5 + i));
            assert_eq!(o, Outcome::Wrong);
        }
        // Locked for 30 s: even the right code is refused.
        let (_, locked) = attempt(&mut s, &[], &totp, &right(60), None, &policy, t(10));
        assert_eq!(locked, Outcome::Locked(29));
        let (_, after) = attempt(&mut s, &[], &totp, &right(100), None, &policy, t(100));
        assert_eq!(after, Outcome::Accepted(SecondFactor::Totp));
    }

    #[test]
    fn a_recovery_code_works_when_unused_and_is_spent() {
        let policy = LockoutPolicy::default();
        let totp = secret();
        let mut s = stored();
        let unused = vec!["h1".to_owned(), "h2".to_owned()];
        let code = Code::Recovery("abcdefgh23".into());
        let (spend, o) = attempt(&mut s, &unused, &totp, &code, Some("h2"), &policy, t(0));
        assert_eq!(spend.as_deref(), Some("h2"));
        assert_eq!(
            o,
            Outcome::Accepted(SecondFactor::RecoveryCode { remaining: 1 })
        );
        let (spend, o) = attempt(
            &mut s,
            &unused[..1],
            &totp,
            &code,
            Some("h2"),
            &policy,
            t(1),
        );
        assert_eq!((spend, o), (None, Outcome::Wrong));
        assert_eq!(s.failures, 1);
    }

    #[test]
    fn enrolment_uris_name_the_issuer_and_account() {
        let totp = secret();
        let uri = totp.get_url();
        assert!(uri.starts_with("otpauth://totp/Nephele:alice?"), "{uri}");
        assert!(uri.contains("issuer=Nephele"), "{uri}");
        assert!(qr_svg(&uri).unwrap().starts_with("<svg"));
    }
}
