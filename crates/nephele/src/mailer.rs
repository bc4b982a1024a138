//! The app's [`Mailer`] over SMTP (lettre): `--smtp-url` names the server
//! the way lettre's `from_url` reads it — `smtp://HOST[:PORT]` plain,
//! `smtp://HOST[:PORT]?tls=required` with STARTTLS (or
//! `?tls=opportunistic`), `smtps://HOST[:PORT]` with implicit TLS, and
//! `user:password@` for SMTP AUTH. TLS is rustls with the system's roots.

use anyhow::Context;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use nephele_app::mail::{Mail, Mailer};
use nephele_common::{Error, Result};
use std::time::Duration;

/// How long one exchange with the mail server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(15);

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The URL without its credentials, for the log.
    server: String,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpMailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .finish()
    }
}

/// `url` without a password, to name the server in logs and errors.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            let _ = u.set_username("");
            u.to_string()
        }
        Err(_) => "(not a URL)".to_owned(),
    }
}

impl SmtpMailer {
    /// The mailer of `--smtp-url` and `--smtp-from` (default
    /// `nephele@` + the public URL's host, or `nephele@localhost` when
    /// that host is an address). No connection is made yet;
    /// it must be made inside the Tokio runtime (its connection pool
    /// starts a task).
    pub fn new(url: &str, from: Option<&str>, public_url: &str) -> anyhow::Result<SmtpMailer> {
        let server = redacted(url);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("--smtp-url {server}: {e}"))?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        let from = match from {
            Some(f) => f.to_owned(),
            None => {
                let host = url::Url::parse(public_url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "localhost".to_owned());
                let host = host.trim_start_matches('[').trim_end_matches(']');
                // lettre writes no From header with a domain literal
                // (`nephele@[192.0.2.1]`): an address is no mail domain.
                if host.parse::<std::net::IpAddr>().is_ok() {
                    "nephele@localhost".to_owned()
                } else {
                    format!("nephele@{host}")
                }
            }
        };
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("--smtp-from: not a mail address: {from:?}"))?;
        Ok(SmtpMailer {
            transport,
            from,
            server,
        })
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> Result<()> {
        let to: Mailbox = mail
            .to
            .parse()
            .map_err(|e| Error::internal(format!("recipient address: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.expose().to_owned())
            .map_err(|e| Error::internal(format!("building the mail: {e}")))?;
        self.transport
            .send(message)
            .await
            .map_err(|e| Error::internal(format!("SMTP {}: {e}", self.server)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The connection pool's janitor is a Tokio task: inside a runtime.
    #[tokio::test]
    async fn urls_are_read_as_lettre_reads_them_and_logged_without_secrets() {
        let local = SmtpMailer::new("smtp://127.0.0.1:2525", None, "http://127.0.0.1:8080");
        assert!(format!("{:?}", local.unwrap()).contains("nephele@localhost"));
        assert!(SmtpMailer::new(
            "smtp://mail.example?tls=required",
            None,
            "https://x.example"
        )
        .is_ok());
        assert!(SmtpMailer::new("smtps://mail.example", Some("Ops <ops@x.example>"), "").is_ok());
        assert!(SmtpMailer::new("http://mail.example", None, "").is_err());
        assert!(SmtpMailer::new("smtp://mail.example", Some("not an address"), "").is_err());
        let m = SmtpMailer::new(
            "smtp://u:hunter2@mail.example:25",
            None,
            "https://c.example",
        )
        .unwrap();
        let shown = format!("{m:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("nephele@c.example"), "{shown}");
    }
}
