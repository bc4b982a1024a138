//! OAuth2 API clients (SPEC §5): created in a tenant with roles, acting
//! there with those roles through client-credentials tokens.
//!
//! Managing a client (changing it, resetting its secret, deleting it)
//! needs `clients:write` where it lives and every permission the client
//! holds: resetting a secret hands over the client's power.

use crate::access::{ensure_grantable, grants_of, OpCtx};
use crate::tokens::{ClientAuthMethod, ClientCredentials, TokenError};
use crate::users::{held_permissions, resolve_roles};
use crate::App;
use hmac::{Hmac, Mac};
use nephele_api_types::{ApiClientCreate, ApiClientUpdate};
use nephele_auth::{Actor, AuthMethod, Permission, Permissions, PrincipalId};
use nephele_common::error::Validator;
use nephele_common::ids::{ClientId, OrganizationId};
use nephele_common::names::Name;
use nephele_common::{Error, Precondition, Result, Secret};
use nephele_store::{ApiClient, ClientChanges, NewApiClient, Role};
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use subtle::ConstantTimeEq;

const TYPE: &str = "clients";
/// Every client secret starts with this, so leaked ones can be found.
pub const CLIENT_SECRET_PREFIX: &str = "nph_sec_";
/// 40 of 62 symbols ≈ 238 bits.
const CLIENT_SECRET_RANDOM_CHARS: usize = 40;
const AUTH_METHODS: [&str; 3] = ["client_secret_basic", "client_secret_post", "none"];
const STATUSES: [&str; 2] = ["enabled", "disabled"];

/// Hashes client secrets with HMAC-SHA256 under a key derived from the
/// configured secret key. Secrets are random and long, so a fast keyed
/// hash is as strong as a slow one and keeps the token endpoint fast; the
/// key means a stolen table alone does not even allow checking a guess.
pub struct SecretHasher(Hmac<Sha256>);

impl std::fmt::Debug for SecretHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretHasher")
    }
}

impl SecretHasher {
    /// The hasher of client secrets.
    pub fn new(secret_key: &[u8; 32]) -> Result<SecretHasher> {
        SecretHasher::for_purpose(secret_key, b"nephele client secrets v1")
    }

    /// A hasher under a key of its own for `purpose`, derived from the
    /// secret key: one purpose's hashes say nothing of another's.
    pub fn for_purpose(secret_key: &[u8; 32], purpose: &[u8]) -> Result<SecretHasher> {
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(secret_key)
            .map_err(|e| Error::internal(format!("hmac key: {e}")))?;
        derive.update(purpose);
        let key = derive.finalize().into_bytes();
        <Hmac<Sha256> as Mac>::new_from_slice(&key)
            .map(SecretHasher)
            .map_err(|e| Error::internal(format!("hmac key: {e}")))
    }

    pub fn hash(&self, secret: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(secret.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn new_client_secret() -> Secret {
    let random: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(CLIENT_SECRET_RANDOM_CHARS)
        .map(char::from)
        .collect();
    Secret::new(format!("{CLIENT_SECRET_PREFIX}{random}"))
}

/// When clients last asked for a token, written in batches.
#[derive(Debug, Default)]
pub struct ClientAccess(Mutex<HashMap<ClientId, chrono::DateTime<chrono::Utc>>>);

impl App {
    /// Checks a client's id and secret: the keyed hash is compared in
    /// constant time; a disabled client does not authenticate.
    pub async fn authenticate_client(
        &self,
        credentials: &ClientCredentials,
    ) -> std::result::Result<ApiClient, TokenError> {
        let Ok(id) = credentials.client_id.parse::<ClientId>() else {
            return Err(TokenError::invalid_client());
        };
        let Some(entry) = self.client_entry(id).await? else {
            return Err(TokenError::invalid_client());
        };
        let (client, stored) = (&entry.0, &entry.1);
        // A public client has no secret to compare: it proves itself with
        // PKCE, in the one grant it may use.
        let matches: bool = if credentials.method == ClientAuthMethod::None {
            client.is_public()
        } else {
            let presented = self.secret_hasher().hash(credentials.secret.expose());
            !client.is_public() && bool::from(presented.as_bytes().ct_eq(stored.as_bytes()))
        };
        if !matches || !client.is_enabled() {
            return Err(TokenError::invalid_client());
        }
        // A client uses the authentication method it was registered with.
        if client.auth_method != credentials.method.as_str() {
            return Err(TokenError::oauth(
                "invalid_client",
                format!("This client authenticates with {}", client.auth_method),
            ));
        }
        Ok(client.clone())
    }

    /// A client and its secret's hash, remembered for a second (see
    /// [`crate::access::AccessCache`]): the token endpoint then costs no
    /// query. A change to a client on this node applies at once; on other
    /// nodes within the second, the same bound as for revocations.
    pub(crate) async fn client_entry(
        &self,
        id: ClientId,
    ) -> Result<Option<Arc<(ApiClient, String)>>> {
        self.remember(&self.access_cache().clients, id, Option::is_some, async {
            Ok(self.store().client_with_secret(id).await?.map(Arc::new))
        })
        .await
    }

    /// Notes a token request for the next batched write of `last_access_at`.
    pub(crate) fn note_client_access(&self, id: ClientId) {
        let now = self.clock().now();
        if let Ok(mut seen) = self.client_access().0.lock() {
            seen.insert(id, now);
        }
    }

    /// Writes the noted `last_access_at` times.
    pub(crate) async fn flush_client_access(&self) -> Result<()> {
        let batch: Vec<_> = match self.client_access().0.lock() {
            Ok(mut seen) => seen.drain().collect(),
            Err(_) => return Ok(()),
        };
        self.store().touch_clients(&batch).await
    }

    pub(crate) async fn actor_for_client(
        &self,
        client: ApiClient,
        method: AuthMethod,
    ) -> Result<Actor> {
        self.ensure_not_suspended(client.organization_id).await?;
        let grants = grants_of(self.store().client_grants(client.id).await?);
        Ok(Actor {
            principal: PrincipalId::Client(client.id),
            name: client.name,
            organization_id: client.organization_id,
            grants,
            method,
            mfa: nephele_auth::Mfa::Off,
        })
    }

    pub async fn list_clients(
        &self,
        ctx: &OpCtx,
        tenant: Option<OrganizationId>,
    ) -> Result<Vec<ApiClient>> {
        let org = self.acting_organization(ctx, tenant);
        self.authorize(ctx, org, Permission::ClientsRead).await?;
        self.store().list_clients(org).await
    }

    async fn visible_client(
        &self,
        ctx: &OpCtx,
        id: ClientId,
        permission: Permission,
    ) -> Result<(ApiClient, Permissions)> {
        let client = self
            .store()
            .client(id)
            .await?
            .ok_or_else(|| Error::not_found(TYPE, id))?;
        let held = self
            .authorize_object(ctx, client.organization_id, permission, TYPE, &id)
            .await?;
        Ok((client, held))
    }

    pub async fn get_client(&self, ctx: &OpCtx, id: ClientId) -> Result<ApiClient> {
        Ok(self
            .visible_client(ctx, id, Permission::ClientsRead)
            .await?
            .0)
    }

    /// A client to be managed: `clients:write` and every permission the
    /// client holds.
    async fn managed_client(
        &self,
        ctx: &OpCtx,
        id: ClientId,
    ) -> Result<(ApiClient, Permissions, Vec<Role>)> {
        let (client, held) = self
            .visible_client(ctx, id, Permission::ClientsWrite)
            .await?;
        let assignable = self
            .store()
            .assignable_roles(client.organization_id)
            .await?;
        ensure_grantable(held, held_permissions(&assignable, &client.roles))?;
        Ok((client, held, assignable))
    }

    pub async fn create_client(
        &self,
        ctx: &OpCtx,
        request: ApiClientCreate,
    ) -> Result<(ApiClient, Secret)> {
        let org = self.acting_organization(ctx, request.tenant_id.map(OrganizationId));
        let mut v = Validator::new();
        if let Some(kind) = &request.kind {
            if kind != "api_client" {
                v.push("type", "must be 'api_client'");
            }
        }
        let auth_method = request
            .token_endpoint_auth_method
            .unwrap_or_else(|| AUTH_METHODS[0].to_owned());
        if !AUTH_METHODS.contains(&auth_method.as_str()) {
            v.push(
                "token_endpoint_auth_method",
                "must be client_secret_basic, client_secret_post or none",
            );
        }
        let data = request.data.unwrap_or_default();
        let root = self
            .store()
            .organization(org)
            .await?
            .is_some_and(|o| o.parent_id.is_none());
        let sign_in = crate::signin::registration(&mut v, &data, &auth_method, root, None);
        let name = v.require("data.client_name", data.client_name, |n| Name::parse(&n));
        let held = self.authorize(ctx, org, Permission::ClientsWrite).await?;
        let assignable = self.store().assignable_roles(org).await?;
        let wanted = request.roles.unwrap_or_else(|| vec!["admin".to_owned()]);
        let (roles, granted) = resolve_roles(&mut v, &assignable, &wanted);
        v.finish()?;
        let Some(name) = name else {
            return Err(Error::internal("validated client name missing"));
        };
        ensure_grantable(held, granted)?;
        let secret = new_client_secret();
        let client = self
            .store()
            .create_client(&NewApiClient {
                id: ClientId::new(),
                organization_id: org,
                name,
                auth_method,
                secret_hash: self.secret_hasher().hash(secret.expose()),
                created_by: ctx.actor.user_id(),
                roles,
                sign_in,
                now: self.clock().now(),
            })
            .await?;
        Ok((client, secret))
    }

    /// Changes a client's name, status or roles (those given). Disabling
    /// it ends its refresh tokens; its access tokens stop working at once,
    /// since every request checks the client is enabled.
    pub async fn update_client(
        &self,
        ctx: &OpCtx,
        id: ClientId,
        request: ApiClientUpdate,
        precondition: &Precondition,
    ) -> Result<ApiClient> {
        let (current, held, assignable) = self.managed_client(ctx, id).await?;
        let mut v = Validator::new();
        // `data`, when sent, is whole: it has the name; a sign-in field it
        // leaves out keeps its value.
        let root = self
            .store()
            .organization(current.organization_id)
            .await?
            .is_some_and(|o| o.parent_id.is_none());
        let sign_in = request.data.as_ref().map(|d| {
            crate::signin::registration(
                &mut v,
                d,
                &current.auth_method,
                root,
                Some(&current.sign_in),
            )
        });
        let name = request
            .data
            .and_then(|d| v.require("data.client_name", d.client_name, |n| Name::parse(&n)));
        if let Some(status) = &request.status {
            if !STATUSES.contains(&status.as_str()) {
                v.push("status", "must be enabled or disabled");
            }
        }
        let roles = request
            .roles
            .map(|wanted| resolve_roles(&mut v, &assignable, &wanted));
        v.finish()?;
        if let Some((_, granted)) = &roles {
            ensure_grantable(held, *granted)?;
        }
        let now = self.clock().now();
        let client = self
            .store()
            .update_client(
                id,
                &ClientChanges {
                    name,
                    status: request.status.clone(),
                    roles: roles.map(|(ids, _)| ids),
                    sign_in,
                },
                precondition,
                now,
            )
            .await?;
        if !client.is_enabled() {
            self.store().revoke_client_refresh_tokens(id, now).await?;
        }
        Ok(client)
    }

    /// A new secret; the old one stops working at once.
    pub async fn reset_client_secret(
        &self,
        ctx: &OpCtx,
        id: ClientId,
    ) -> Result<(ApiClient, Secret)> {
        self.managed_client(ctx, id).await?;
        let secret = new_client_secret();
        let client = self
            .store()
            .set_client_secret(
                id,
                &self.secret_hasher().hash(secret.expose()),
                self.clock().now(),
            )
            .await?;
        Ok((client, secret))
    }

    pub async fn delete_client(
        &self,
        ctx: &OpCtx,
        id: ClientId,
        precondition: &Precondition,
    ) -> Result<()> {
        self.managed_client(ctx, id).await?;
        self.store().delete_client(id, precondition).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed_with_the_key() {
        let a = new_client_secret();
        let b = new_client_secret();
        assert!(a.expose().starts_with(CLIENT_SECRET_PREFIX));
        assert_eq!(
            a.expose().len(),
            CLIENT_SECRET_PREFIX.len() + CLIENT_SECRET_RANDOM_CHARS
        );
        assert_ne!(a.expose(), b.expose());
        let h1 = SecretHasher::new(&[1; 32]).unwrap();
        let h2 = SecretHasher::new(&[2; 32]).unwrap();
        assert_eq!(h1.hash(a.expose()), h1.hash(a.expose()));
        assert_ne!(h1.hash(a.expose()), h2.hash(a.expose()));
    }
}
