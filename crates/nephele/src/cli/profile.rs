//! Stored credentials: one TOML file in the user's config directory
//! (`$NEPHELE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/nephele`, else
//! `~/.config/nephele`), mode 0600, one table per profile. A file that
//! others can read is refused, as ssh refuses a private key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Exit, Failure};

/// How a profile signs in, and what it keeps to do so again.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "kebab-case")]
pub enum Login {
    /// A user's sign-in, by the password grant or through the browser
    /// (`login --web`); the password itself is never stored, only the
    /// tokens it bought.
    Password {
        login: String,
        access_token: String,
        expires_on: i64,
        refresh_token: Option<String>,
        /// The public client the tokens were issued to (`login --web`):
        /// it names itself when refreshing them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    /// An API key, sent as `MC-Api-Key`.
    ApiKey { api_key: String },
    /// An API client's credentials grant; the secret is kept to get the
    /// next token.
    Client {
        client_id: String,
        client_secret: String,
        /// The client was registered for `client_secret_post`, not Basic.
        #[serde(default)]
        secret_in_form: bool,
        access_token: String,
        expires_on: i64,
    },
}

#[derive(Clone, Serialize, Deserialize)]
pub struct Profile {
    /// The data center's base URL.
    pub url: String,
    pub login: Login,
    /// A PEM file of CA certificates to trust beside the system's, given
    /// at login or setup with --cacert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacert: Option<PathBuf>,
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    profiles: BTreeMap<String, Profile>,
}

/// The credentials file.
pub struct Store {
    path: PathBuf,
    file: File,
}

fn config_dir() -> Result<PathBuf, Failure> {
    if let Some(dir) = std::env::var_os("NEPHELE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::config_dir()
        .map(|d| d.join("nephele"))
        .ok_or_else(|| {
            Failure::new(
                Exit::Usage,
                "no config directory: set NEPHELE_CONFIG_DIR or HOME",
            )
        })
}

impl Store {
    /// Reads the credentials file; a missing one is empty.
    pub fn load() -> Result<Store, Failure> {
        let path = config_dir()?.join("credentials.toml");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Store {
                    path,
                    file: File::default(),
                })
            }
            Err(e) => {
                return Err(Failure::new(
                    Exit::Auth,
                    format!("cannot read {}: {e}", path.display()),
                ))
            }
        };
        check_private(&path)?;
        let file = toml::from_str(&text).map_err(|e| {
            Failure::new(
                Exit::Auth,
                format!(
                    "{} is not a valid credentials file ({}); remove it and log in again",
                    path.display(),
                    e.message()
                ),
            )
        })?;
        Ok(Store { path, file })
    }

    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.file.profiles.get(name)
    }

    pub fn put(&mut self, name: &str, profile: Profile) -> Result<(), Failure> {
        self.file.profiles.insert(name.to_owned(), profile);
        self.save()
    }

    pub fn remove(&mut self, name: &str) -> Result<Option<Profile>, Failure> {
        let removed = self.file.profiles.remove(name);
        if removed.is_some() {
            self.save()?;
        }
        Ok(removed)
    }

    /// Writes the file whole: to a private temporary file, then renamed
    /// over the old one, so a crash never leaves half a file.
    fn save(&self) -> Result<(), Failure> {
        let fail = |e: std::io::Error| {
            Failure::new(
                Exit::Error,
                format!("cannot write {}: {e}", self.path.display()),
            )
        };
        let text = toml::to_string(&self.file)
            .map_err(|e| Failure::new(Exit::Error, format!("cannot encode credentials: {e}")))?;
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).map_err(fail)?;
        }
        let temp = self.path.with_extension("toml.tmp");
        crate::private_file::write(&temp, text.as_bytes()).map_err(fail)?;
        std::fs::rename(&temp, &self.path).map_err(fail)
    }
}

#[cfg(unix)]
fn check_private(path: &std::path::Path) -> Result<(), Failure> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| Failure::new(Exit::Auth, format!("cannot read {}: {e}", path.display())))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(Failure::new(
            Exit::Auth,
            format!(
                "warning: {} is accessible by other users (mode {mode:04o}); refusing to use it. Run: chmod 600 {}",
                path.display(),
                path.display()
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &std::path::Path) -> Result<(), Failure> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}
