use crate::db::{db_error, parse_id, unique_violation};
use crate::{NewUser, RoleGrant, Store, User};
use nephele_common::clock::{from_micros, to_micros};
use nephele_common::ids::{OrganizationId, RoleId, UserId};
use nephele_common::{Error, Result};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

const COLUMNS: &str =
    "id, organization_id, login, email, password_hash, created_at, updated_at, version";

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: parse_id(&r.try_get::<String, _>("id").map_err(db_error)?)?,
        organization_id: parse_id(
            &r.try_get::<String, _>("organization_id")
                .map_err(db_error)?,
        )?,
        login: r.try_get("login").map_err(db_error)?,
        email: r.try_get("email").map_err(db_error)?,
        password_hash: r.try_get("password_hash").map_err(db_error)?,
        created_at: from_micros(r.try_get("created_at").map_err(db_error)?),
        updated_at: from_micros(r.try_get("updated_at").map_err(db_error)?),
        version: r.try_get("version").map_err(db_error)?,
    })
}

/// Inserts a user and grants it roles in its own organization.
pub(crate) async fn insert_user(
    tx: &mut Transaction<'static, Any>,
    new: &NewUser,
    roles: &[RoleId],
) -> Result<User> {
    sqlx::query(
        "INSERT INTO users (id, organization_id, login, email, password_hash, created_at, updated_at, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $6, 1)",
    )
    .bind(new.id.to_string())
    .bind(new.organization_id.to_string())
    .bind(new.login.as_str())
    .bind(new.email.as_str())
    .bind(&new.password_hash)
    .bind(to_micros(new.now))
    .execute(&mut **tx)
    .await
    .map_err(|e| match unique_violation(&e) {
        Some(c) if c.contains("email") => Error::name_taken("users", "email", new.email.as_str()),
        Some(_) => Error::name_taken("users", "login", new.login.as_str()),
        None => db_error(e),
    })?;
    for role in roles {
        sqlx::query(
            "INSERT INTO role_assignments (user_id, role_id, organization_id) VALUES ($1, $2, $3)",
        )
        .bind(new.id.to_string())
        .bind(role.to_string())
        .bind(new.organization_id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(db_error)?;
    }
    Ok(User {
        id: new.id,
        organization_id: new.organization_id,
        login: new.login.to_string(),
        email: new.email.to_string(),
        password_hash: new.password_hash.clone(),
        created_at: new.now,
        updated_at: new.now,
        version: 1,
    })
}

impl Store {
    pub async fn user(&self, id: UserId) -> Result<Option<User>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await
            .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Looks a user up by login or e-mail (both stored lower-case).
    pub async fn user_by_login_or_email(&self, login_or_email: &str) -> Result<Option<User>> {
        let key = login_or_email.to_lowercase();
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM users WHERE login = $1 OR email = $1"
        ))
        .bind(key)
        .fetch_optional(&self.read)
        .await
        .map_err(db_error)?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// The roles a user holds, each with the organization it was granted in
    /// and its permissions.
    pub async fn role_grants(&self, user: UserId) -> Result<Vec<RoleGrant>> {
        let rows = sqlx::query(
            "SELECT a.role_id, r.name, a.organization_id, r.permissions FROM role_assignments a \
             JOIN roles r ON r.id = a.role_id WHERE a.user_id = $1 ORDER BY r.name",
        )
        .bind(user.to_string())
        .fetch_all(&self.read)
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|r| {
                Ok(RoleGrant {
                    role_id: parse_id(&r.try_get::<String, _>(0).map_err(db_error)?)?,
                    role_name: r.try_get(1).map_err(db_error)?,
                    organization_id: parse_id::<OrganizationId>(
                        &r.try_get::<String, _>(2).map_err(db_error)?,
                    )?,
                    permissions: r
                        .try_get::<String, _>(3)
                        .map_err(db_error)?
                        .split_whitespace()
                        .map(str::to_owned)
                        .collect(),
                })
            })
            .collect()
    }
}
