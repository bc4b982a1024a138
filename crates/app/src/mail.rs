//! Outgoing mail: what the app sends, and the one door it sends it
//! through. The binary supplies a [`Mailer`] over SMTP when
//! `--smtp-url` is set; without one the app sends nothing and says so
//! where that matters (an invitation's answer carries its link instead).

use nephele_common::{Result, Secret};

/// One plain-text message. Its text holds a one-time link, so it is a
/// [`Secret`]: `Debug` and logs never show it.
#[derive(Debug, Clone)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    pub subject: String,
    pub text: Secret,
}

/// Sends mail. One implementation speaks SMTP (the binary's); tests
/// give their own.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Hands the message to the mail server; an error says it was not
    /// accepted (the message never appears in it).
    async fn send(&self, mail: Mail) -> Result<()>;
}
