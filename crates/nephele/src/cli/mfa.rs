//! `nephele mfa`: the signed-in user's TOTP second factor.

use clap::Subcommand;
use nephele_api_types as api;
use nephele_client::{Method, Request};
use nephele_common::Secret;
use serde_json::Value;

use super::output::{write_line, Format, Kind, Output};
use super::session::Session;
use super::{read_password, Failure, Global};

const ENROLMENT: Kind = Kind {
    element: "data",
    id: "otpauthUri",
    columns: &[],
};
const RECOVERY: Kind = Kind {
    element: "data",
    id: "recoveryCodes",
    columns: &[],
};

#[derive(Debug, Subcommand)]
pub enum MfaCommand {
    /// Start enrolling: prints a secret and its otpauth:// URI for an
    /// authenticator app (not active until confirmed)
    #[command(
        visible_alias = "enroll",
        after_help = "Examples:\n  nephele mfa enrol\n  nephele mfa enrol -o json | jq -r .otpauthUri | qrencode -t ansiutf8"
    )]
    Enrol,
    /// Confirm the enrolment with the code the app shows: MFA is then on,
    /// and 10 one-time recovery codes are printed this once
    #[command(after_help = "Examples:\n  nephele mfa confirm 123456")]
    Confirm {
        /// The 6-digit code the authenticator shows now
        code: String,
    },
    /// Turn MFA off: takes your password and a current or recovery code
    #[command(
        visible_alias = "remove",
        after_help = "Examples:\n  nephele mfa disable --code 123456\n  echo \"$PASSWORD\" | nephele mfa disable --code k7m2p-xq9ra --password-stdin"
    )]
    Disable {
        /// A current code, or an unused recovery code
        #[arg(long)]
        code: String,
        /// Read the password from the first line of stdin
        #[arg(long)]
        password_stdin: bool,
    },
}

pub async fn mfa(global: &Global, command: MfaCommand, out: Output) -> Result<(), Failure> {
    let mut s = Session::open(global).await?;
    let path = "/api/v2/me/mfa/totp";
    match command {
        MfaCommand::Enrol => {
            let value = s.data(Request::new(Method::POST, path)).await?;
            if out.format == Format::Table && !out.quiet {
                let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or("");
                write_line(&format!("Secret:      {}", field("secret")));
                write_line(&format!("otpauth URI: {}", field("otpauthUri")));
                eprintln!(
                    "Add it to an authenticator app, then run `nephele mfa confirm CODE` \
                     with the code it shows."
                );
                return Ok(());
            }
            out.item(&value, &ENROLMENT)
        }
        MfaCommand::Confirm { code } => {
            let body = api::TotpConfirm { code: Some(code) };
            let request = Request::new(Method::POST, format!("{path}/confirm")).body(&body);
            let value = s.data(request).await?;
            if out.format == Format::Table || out.quiet {
                let codes = value
                    .get("recoveryCodes")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !out.quiet {
                    eprintln!(
                        "MFA is on. Keep these recovery codes somewhere safe: each works \
                         once in place of a code, and they are not shown again."
                    );
                }
                for c in codes.iter().filter_map(Value::as_str) {
                    write_line(c);
                }
                return Ok(());
            }
            out.item(&value, &RECOVERY)
        }
        MfaCommand::Disable {
            code,
            password_stdin,
        } => {
            let password = read_password(password_stdin, "Your password: ")?;
            let body = api::TotpRemoval {
                password: Some(Secret::new(password)),
                code: Some(code),
            };
            s.send(Request::new(Method::DELETE, path).body(&body))
                .await?;
            if !out.quiet {
                eprintln!("MFA is off");
            }
            Ok(())
        }
    }
}
