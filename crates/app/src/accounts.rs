//! `GET /api/1/accounts?login=`: which data center an account lives in.
//! The answer has the same shape, and costs the same, for unknown logins:
//! they get the default data center (this one).

use crate::App;
use nephele_api_types::Account;
use nephele_common::Result;

/// Longer logins cannot exist; they are answered without a lookup.
const MAX_LOGIN: usize = 320;

impl App {
    pub async fn account(&self, login: &str) -> Result<Account> {
        let home = if login.len() <= MAX_LOGIN {
            match self.store().user_by_login_or_email(login).await? {
                Some(user) => self.store().datacenter(user.datacenter_id).await?,
                None => None,
            }
        } else {
            None
        };
        let server_url = home
            .and_then(|dc| dc.server_url)
            .unwrap_or_else(|| self.config().public_url.clone());
        Ok(Account {
            login: login.to_owned(),
            id: 0,
            server_url,
        })
    }
}
