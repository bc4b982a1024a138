//! Signing in and out, and first-run setup.

use clap::Args;
use nephele_client::{Client, Credentials, Request};
use serde_json::{json, Value};

use super::output::{Output, OBJECT};
use super::profile::{Login, Profile, Store};
use super::session::{Session, LOGIN_SCOPE};
use super::web_login::web_login;
use super::{read_password, Exit, Failure, Global};

pub const LOGIN_EXAMPLES: &str = "Examples:
  nephele login --url https://cloud.example.com --web
  nephele login --url https://cloud.example.com --username alice
  echo \"$PASSWORD\" | nephele login --url http://127.0.0.1:8080 -u admin --password-stdin
  nephele login --url http://127.0.0.1:8080 --api-key nph_key_…
  nephele login --url http://127.0.0.1:8080 --client-id ID --client-secret nph_sec_…
  nephele login --url https://staging.example.com -u alice --profile staging
  nephele login --url https://nephele.internal -u alice --cacert internal-ca.pem";

pub const SETUP_EXAMPLES: &str = "Examples:
  nephele setup --url http://127.0.0.1:8080 --token-file nephele-data/setup-token \\
      --organization Acme --login admin --email admin@acme.test
  echo \"$PASSWORD\" | nephele setup --url http://127.0.0.1:8080 --token \"$TOKEN\" \\
      --organization Acme --login admin --email admin@acme.test --password-stdin";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The server's URL; with --username, the server is asked where the
    /// account lives and that data center is the one signed in to
    #[arg(long, env = "NEPHELE_URL")]
    url: String,
    /// Sign in as this user (the password grant)
    #[arg(short, long, conflicts_with_all = ["api_key", "client_id"])]
    username: Option<String>,
    /// Read the password from the first line of stdin
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// A one-time code (TOTP or recovery code) for a user with MFA; asked
    /// for on a terminal when the server wants one
    #[arg(long, requires = "username")]
    otp: Option<String>,
    /// Sign in with an API key
    #[arg(
        long,
        env = "NEPHELE_API_KEY",
        hide_env_values = true,
        conflicts_with = "client_id"
    )]
    api_key: Option<String>,
    /// Sign in as an API client (the client-credentials grant)
    #[arg(long)]
    client_id: Option<String>,
    /// The API client's secret
    #[arg(long, env = "NEPHELE_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// Sign in through a browser (the authorization code flow, with MFA
    /// if the account has it): the URL is printed and opened
    #[arg(long, conflicts_with_all = ["username", "api_key", "client_id"])]
    web: bool,
    /// With --web, print the URL without opening a browser
    #[arg(long, requires = "web")]
    no_browser: bool,
    /// Sign in to --url itself, without asking where the account lives
    #[arg(long)]
    no_discovery: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

/// How the CLI trusts a server's TLS certificate.
#[derive(Debug, Args)]
pub struct TlsArgs {
    /// A PEM file of CA certificates to trust beside the system's roots
    /// (SSL_CERT_FILE replaces those); remembered in the profile
    #[arg(long, value_name = "FILE")]
    cacert: Option<std::path::PathBuf>,
}

impl TlsArgs {
    /// The CA file as an absolute path, so that the profile finds it from
    /// any directory.
    fn cacert(&self) -> Result<Option<std::path::PathBuf>, Failure> {
        self.cacert
            .as_ref()
            .map(|path| {
                std::fs::canonicalize(path).map_err(|e| {
                    Failure::new(Exit::Usage, format!("cannot read {}: {e}", path.display()))
                })
            })
            .transpose()
    }
}

/// The password grant, with `otp` when given.
async fn password_grant(
    client: &Client,
    login: &str,
    password: &str,
    otp: Option<&str>,
) -> Result<nephele_api_types::TokenResponse, nephele_client::Error> {
    let mut form = vec![
        ("grant_type", "password"),
        ("username", login),
        ("password", password),
        ("scope", LOGIN_SCOPE),
    ];
    if let Some(otp) = otp {
        form.push(("otp", otp));
    }
    client.token(&form).await
}

/// The password grant at `url`: a profile holding its tokens. A user with
/// MFA sends `otp`; without one, the server's `mfa_required` is answered
/// from a prompt when there is a terminal.
async fn password_login(
    client: &Client,
    login: &str,
    password: &str,
    otp: Option<String>,
) -> Result<Profile, Failure> {
    let token = match password_grant(client, login, password, otp.as_deref()).await {
        Err(nephele_client::Error::OAuth { description, .. })
            if otp.is_none()
                && description.as_deref() == Some("mfa_required")
                && std::io::IsTerminal::is_terminal(&std::io::stdin()) =>
        {
            let code = rpassword::prompt_password(format!("One-time code for {login}: "))
                .map_err(|e| Failure::new(Exit::Usage, format!("cannot read the code: {e}")))?;
            password_grant(client, login, password, Some(code.trim())).await?
        }
        other => other?,
    };
    Ok(Profile {
        url: client.base_url(),
        login: Login::Password {
            login: login.to_owned(),
            access_token: token.access_token,
            expires_on: token.expires_on,
            refresh_token: token.refresh_token,
            client_id: None,
        },
        cacert: None,
    })
}

pub async fn login(global: &Global, args: LoginArgs) -> Result<(), Failure> {
    // Refuse a bad credentials file before asking for a password.
    let mut store = Store::load()?;
    let cacert = args.tls.cacert()?;
    let client = Client::new(&args.url, global.debug, cacert.as_deref())?;
    let (mut profile, who) = if args.web {
        web_login(&client, !args.no_browser).await?
    } else if let Some(username) = &args.username {
        let home = if args.no_discovery {
            client
        } else {
            let account = client.account(username).await?;
            if account.server_url.trim_end_matches('/') == client.base_url() {
                client
            } else {
                eprintln!("{username} lives at {}", account.server_url);
                Client::new(&account.server_url, global.debug, cacert.as_deref())?
            }
        };
        let password = read_password(args.password_stdin, &format!("Password for {username}: "))?;
        (
            password_login(&home, username, &password, args.otp.clone()).await?,
            username.clone(),
        )
    } else if let Some(api_key) = args.api_key {
        let keyed = client.with_credentials(Credentials::ApiKey(api_key.clone()));
        let me = keyed.send(&Request::get("/api/v2/me")).await?.body;
        let who = me
            .pointer("/data/principal/login")
            .and_then(Value::as_str)
            .unwrap_or("API key")
            .to_owned();
        let profile = Profile {
            url: keyed.base_url(),
            login: Login::ApiKey { api_key },
            cacert: None,
        };
        (profile, who)
    } else if let Some(client_id) = args.client_id {
        let Some(client_secret) = args.client_secret else {
            return Err(Failure::new(
                Exit::Usage,
                "--client-id needs --client-secret (or NEPHELE_CLIENT_SECRET)",
            ));
        };
        // A client authenticates the way it was registered, which the
        // CLI is not told: Basic first (the default), then the form.
        let (token, secret_in_form) =
            match client.client_token(&client_id, &client_secret, false).await {
                Err(nephele_client::Error::OAuth { error, .. }) if error == "invalid_client" => (
                    client
                        .client_token(&client_id, &client_secret, true)
                        .await?,
                    true,
                ),
                other => (other?, false),
            };
        let profile = Profile {
            url: client.base_url(),
            login: Login::Client {
                client_id: client_id.clone(),
                client_secret,
                secret_in_form,
                access_token: token.access_token,
                expires_on: token.expires_on,
            },
            cacert: None,
        };
        (profile, format!("client {client_id}"))
    } else {
        return Err(Failure::new(
            Exit::Usage,
            "say how to sign in: --web, --username, --api-key or --client-id",
        ));
    };
    profile.cacert = cacert;
    let url = profile.url.clone();
    store.put(&global.profile, profile)?;
    eprintln!("Logged in to {url} as {who} (profile '{}')", global.profile);
    Ok(())
}

pub async fn logout(global: &Global) -> Result<(), Failure> {
    let session = match Session::open(global).await {
        Ok(session) => session,
        // An expired session is still forgotten; an absent one is a no-op.
        Err(failure) if failure.exit == Exit::Auth => {
            let mut store = Store::load()?;
            if store.remove(&global.profile)?.is_none() {
                eprintln!("Not logged in (profile '{}')", global.profile);
            } else {
                eprintln!("Logged out (profile '{}')", global.profile);
            }
            return Ok(());
        }
        Err(failure) => return Err(failure),
    };
    if let Login::Password {
        refresh_token: Some(refresh),
        ..
    } = &session.profile().login
    {
        // Best effort: the credentials are forgotten even if this fails.
        if let Err(e) = session.client().revoke(refresh).await {
            eprintln!("warning: the refresh token was not revoked: {e}");
        }
    }
    let url = session.profile().url.clone();
    let name = session.profile_name().to_owned();
    session.forget()?;
    eprintln!("Logged out of {url} (profile '{name}')");
    Ok(())
}

pub async fn whoami(global: &Global, out: Output) -> Result<(), Failure> {
    let mut session = Session::open(global).await?;
    let me = session.data(Request::get("/api/v2/me")).await?;
    let field = |pointer: &str| me.pointer(pointer).cloned().unwrap_or(Value::Null);
    let shown = json!({
        "id": field("/principal/id"),
        "login": field("/principal/login"),
        "type": field("/principal/type"),
        "organization": field("/organization/name"),
        "organizationId": field("/organization/id"),
        "roles": field("/principal/roles"),
        "authenticatedBy": field("/authenticatedBy"),
        "url": session.profile().url,
        "profile": session.profile_name(),
    });
    out.item(&shown, &OBJECT)
}

#[derive(Debug, Args)]
pub struct SetupArgs {
    /// The new server's URL
    #[arg(long, env = "NEPHELE_URL")]
    url: String,
    /// The one-time setup token
    #[arg(
        long,
        env = "NEPHELE_SETUP_TOKEN",
        hide_env_values = true,
        conflicts_with = "token_file"
    )]
    token: Option<String>,
    /// A file holding the setup token (the server writes DATA_DIR/setup-token)
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// Name of the root organization
    #[arg(long)]
    organization: String,
    /// The first admin's login
    #[arg(long)]
    login: String,
    /// The first admin's email
    #[arg(long)]
    email: String,
    /// Read the admin's password from the first line of stdin
    #[arg(long)]
    password_stdin: bool,
    /// Do not sign in as the new admin afterwards
    #[arg(long)]
    no_login: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

pub async fn setup(global: &Global, args: SetupArgs, out: Output) -> Result<(), Failure> {
    let token = match (args.token, &args.token_file) {
        (Some(token), _) => token,
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| Failure::new(Exit::Usage, format!("cannot read {}: {e}", file.display())))?
            .trim()
            .to_owned(),
        (None, None) => {
            return Err(Failure::new(
                Exit::Usage,
                "give the setup token: --token, --token-file or NEPHELE_SETUP_TOKEN",
            ))
        }
    };
    let mut store = Store::load()?;
    let cacert = args.tls.cacert()?;
    let client = Client::new(&args.url, global.debug, cacert.as_deref())?;
    let password = read_password(
        args.password_stdin,
        &format!("Password for {}: ", args.login),
    )?;
    let body = json!({
        "setupToken": token,
        "organization": {"name": args.organization},
        "admin": {"login": args.login, "email": args.email, "password": password},
    });
    let reply = client
        .send(&Request::post("/occm/setup/init", body))
        .await?;
    let data = reply.body.get("data").cloned().unwrap_or(Value::Null);
    let mut shown = json!({
        "organizationId": data.pointer("/organization/id"),
        "organization": data.pointer("/organization/name"),
        "id": data.pointer("/user/id"),
        "login": data.pointer("/user/login"),
        "url": client.base_url(),
    });
    if !args.no_login {
        let mut profile = password_login(&client, &args.login, &password, None).await?;
        profile.cacert = cacert;
        store.put(&global.profile, profile)?;
        shown["profile"] = Value::String(global.profile.clone());
        eprintln!(
            "Nephele is set up; logged in as {} (profile '{}')",
            args.login, global.profile
        );
    }
    out.item(&shown, &OBJECT)
}
