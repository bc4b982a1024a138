//! A signed-in client: the profile's credentials on a [`Client`], tokens
//! refreshed before they expire and once more if the server says they have.

use nephele_client::{Client, Credentials, Error, Reply, Request};
use serde_json::Value;

use super::profile::{Login, Profile, Store};
use super::{Exit, Failure, Global};

/// Seconds before expiry at which a token is renewed rather than sent.
const RENEW_AHEAD: i64 = 30;

pub struct Session {
    client: Client,
    store: Store,
    name: String,
    profile: Profile,
    org: Option<String>,
}

/// The scopes a CLI sign-in asks for: an id token and a refresh token.
pub const LOGIN_SCOPE: &str = "openid offline_access";

fn now() -> i64 {
    use nephele_common::clock::{Clock, SystemClock};
    SystemClock.now().timestamp()
}

fn credentials(login: &Login) -> Credentials {
    match login {
        Login::Password { access_token, .. } | Login::Client { access_token, .. } => {
            Credentials::Bearer(access_token.clone())
        }
        Login::ApiKey { api_key } => Credentials::ApiKey(api_key.clone()),
    }
}

impl Session {
    /// The profile `--profile` names, signed in.
    pub async fn open(global: &Global) -> Result<Session, Failure> {
        let store = Store::load()?;
        let profile = store.get(&global.profile).cloned().ok_or_else(|| {
            Failure::new(
                Exit::Auth,
                format!(
                    "not logged in (profile '{}'): run `nephele login --url URL`",
                    global.profile
                ),
            )
        })?;
        let client = Client::new(&profile.url, global.debug, profile.cacert.as_deref())?
            .with_credentials(credentials(&profile.login));
        let mut session = Session {
            client,
            store,
            name: global.profile.clone(),
            profile,
            org: global.org.map(|o| o.to_string()),
        };
        let expires_on = match &session.profile.login {
            Login::Password { expires_on, .. } | Login::Client { expires_on, .. } => {
                Some(*expires_on)
            }
            Login::ApiKey { .. } => None,
        };
        if expires_on.is_some_and(|at| at - RENEW_AHEAD <= now()) {
            session.renew().await?;
        }
        Ok(session)
    }

    #[must_use]
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    #[must_use]
    pub fn profile_name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Forgets the profile.
    pub fn forget(mut self) -> Result<(), Failure> {
        self.store.remove(&self.name).map(|_| ())
    }

    /// Gets a new access token with what the profile keeps.
    async fn renew(&mut self) -> Result<(), Failure> {
        let expired = |e: Error| {
            match e {
            Error::OAuth { .. } | Error::Api { .. } => Failure::new(
                Exit::Auth,
                format!(
                    "the session of profile '{}' has expired or was revoked ({e}): run `nephele login` again",
                    self.name
                ),
            ),
            other => other.into(),
        }
        };
        let anonymous = self.client.clone().with_credentials(Credentials::None);
        match &mut self.profile.login {
            Login::Password {
                access_token,
                expires_on,
                refresh_token,
                client_id,
                ..
            } => {
                let Some(refresh) = refresh_token.clone() else {
                    return Err(expired(Error::OAuth {
                        status: 401,
                        error: "no refresh token".into(),
                        description: None,
                    }));
                };
                let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", &refresh)];
                if let Some(client_id) = client_id {
                    form.push(("client_id", client_id));
                }
                let token = anonymous.token(&form).await.map_err(expired)?;
                *access_token = token.access_token;
                *expires_on = token.expires_on;
                // Refresh tokens rotate: the old one is spent.
                *refresh_token = token.refresh_token.or(Some(refresh));
            }
            Login::Client {
                client_id,
                client_secret,
                secret_in_form,
                access_token,
                expires_on,
            } => {
                let token = anonymous
                    .client_token(client_id, client_secret, *secret_in_form)
                    .await
                    .map_err(expired)?;
                *access_token = token.access_token;
                *expires_on = token.expires_on;
            }
            Login::ApiKey { .. } => return Ok(()),
        }
        self.client
            .set_credentials(credentials(&self.profile.login));
        self.store.put(&self.name, self.profile.clone())
    }

    /// Sends a request in the acted-in organization; a token the server
    /// calls expired or invalid is renewed once and the request sent again.
    pub async fn send(&mut self, mut request: Request) -> Result<Reply, Failure> {
        if let Some(org) = &self.org {
            if request.path.starts_with("/api/v2/") {
                request.query.push(("org_id".into(), org.clone()));
            }
        }
        match self.client.send(&request).await {
            Err(Error::Api { status: 401, .. })
                if !matches!(self.profile.login, Login::ApiKey { .. }) =>
            {
                self.renew().await?;
                Ok(self.client.send(&request).await?)
            }
            other => Ok(other?),
        }
    }

    /// The `data` of an `/api/v2` answer.
    pub async fn data(&mut self, request: Request) -> Result<Value, Failure> {
        let mut reply = self.send(request).await?;
        Ok(reply
            .body
            .get_mut("data")
            .map(Value::take)
            .unwrap_or(reply.body))
    }

    /// Every item of a list, following `nextPage` while `all` is set (or
    /// up to `limit` items otherwise).
    pub async fn list(
        &mut self,
        request: Request,
        paging: &super::Paging,
    ) -> Result<Vec<Value>, Failure> {
        let mut items = Vec::new();
        let mut next = paging.page_token.clone();
        loop {
            let page = request
                .clone()
                .query("limit", paging.limit)
                .query("pageToken", next.as_deref());
            let body = self.send(page).await?.body;
            if let Some(Value::Array(page_items)) = body.get("data") {
                items.extend(page_items.iter().cloned());
            }
            next = body
                .get("nextPage")
                .and_then(Value::as_str)
                .map(str::to_owned);
            match &next {
                Some(_) if paging.all => continue,
                Some(token) => {
                    eprintln!("(more results: add --page-token {token}, or --all)");
                    break;
                }
                None => break,
            }
        }
        Ok(items)
    }
}
