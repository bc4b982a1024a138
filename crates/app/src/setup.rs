//! First-run setup (SPEC §2).

use crate::App;
use nephele_api_types::SetupInit;
use nephele_common::error::Validator;
use nephele_common::ids::{OrganizationId, UserId};
use nephele_common::names::{check_password, Email, Login, Name};
use nephele_common::{Error, ErrorCode, Result, Secret};
use nephele_store::{Datacenter, NewOrganization, NewUser, Organization, User, UserDetail};
use rand::distributions::Alphanumeric;
use rand::Rng;

/// What `--demo` created; the password is shown once, never stored in clear.
#[derive(Debug)]
pub struct DemoAccount {
    pub organization: String,
    pub login: String,
    pub password: Secret,
}

/// A random printable secret of `len` characters (≈5.95 bits each).
pub fn random_token(len: usize) -> Secret {
    Secret::new(
        rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(len)
            .map(char::from)
            .collect::<String>(),
    )
}

impl App {
    /// Has the platform been set up? Cached once true (it cannot be undone).
    pub async fn is_initialized(&self) -> Result<bool> {
        if self.known_initialized() {
            return Ok(true);
        }
        let done = self.store().is_initialized().await?;
        if done {
            self.mark_initialized();
        }
        Ok(done)
    }

    /// 409 (1101) once the platform is set up.
    pub async fn ensure_not_initialized(&self) -> Result<()> {
        if self.is_initialized().await? {
            return Err(Error::new(
                ErrorCode::AlreadySetUp,
                "Nephele has already been set up",
            ));
        }
        Ok(())
    }

    /// `POST /occm/setup/init`.
    pub async fn initialize(&self, request: SetupInit) -> Result<(Organization, UserDetail)> {
        self.ensure_not_initialized().await?;
        let mut v = Validator::new();
        let token = v.require("setupToken", request.setup_token, Ok);
        let org = request.organization.unwrap_or_default();
        let name = v.require("organization.name", org.name, |n| Name::parse(&n));
        let admin = request.admin.unwrap_or_default();
        let login = v.require("admin.login", admin.login, |l| Login::parse(&l));
        let email = v.require("admin.email", admin.email, |e| Email::parse(&e));
        let password = v.require("admin.password", admin.password, |p| {
            check_password(p.expose()).map(|()| p)
        });
        // A missing token is a bad request like any missing field; a wrong
        // one is a credential failure, checked only once the rest is sound.
        v.finish()?;
        let (Some(token), Some(name), Some(login), Some(email), Some(password)) =
            (token, name, login, email, password)
        else {
            return Err(Error::internal("validated setup input incomplete"));
        };
        if !self.config().setup_token.matches(token.expose()) {
            return Err(Error::new(
                ErrorCode::InvalidCredentials,
                "The setup token is not valid",
            ));
        }
        let (organization, user) = self.create_root(name, login, email, &password).await?;
        let admin = UserDetail {
            user,
            roles: vec!["admin".into()],
        };
        if let Some(path) = &self.config().setup_token_file {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove the setup token file");
                }
            }
        }
        Ok((organization, admin))
    }

    /// `--demo`: on a new platform, an organization `demo` and a user `admin`
    /// with a generated password. `None` when already set up.
    pub async fn set_up_demo(&self) -> Result<Option<DemoAccount>> {
        if self.is_initialized().await? {
            return Ok(None);
        }
        let password = random_token(20);
        let name = Name::parse("demo").map_err(Error::internal)?;
        let login = Login::parse("admin").map_err(Error::internal)?;
        let email = Email::parse("admin@demo.nephele.local").map_err(Error::internal)?;
        match self.create_root(name, login, email, &password).await {
            Ok(_) => Ok(Some(DemoAccount {
                organization: "demo".into(),
                login: "admin".into(),
                password,
            })),
            // Another node set it up first.
            Err(e) if e.code() == ErrorCode::AlreadySetUp => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn create_root(
        &self,
        name: Name,
        login: Login,
        email: Email,
        password: &Secret,
    ) -> Result<(Organization, User)> {
        let password_hash = self.passwords().hash(password).await?;
        let now = self.clock().now();
        let org = NewOrganization {
            id: OrganizationId::new(),
            parent_id: None,
            name,
            now,
        };
        let admin = NewUser {
            id: UserId::new(),
            organization_id: org.id,
            login,
            email,
            password_hash,
            status: nephele_common::status::UserStatus::Enabled,
            datacenter_id: Datacenter::LOCAL,
            now,
        };
        let result = self.store().initialize(&org, &admin).await?;
        self.mark_initialized();
        tracing::info!(organization = %org.id, user = %admin.id, "platform set up");
        Ok(result)
    }
}
