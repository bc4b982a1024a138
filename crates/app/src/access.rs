//! Authentication (credentials → [`Actor`]) and authorization (may this
//! actor do this, in that organization?).

use crate::credentials::{hash_api_key, looks_like_api_key};
use crate::App;
use nephele_auth::{Actor, AuthMethod, Grant, Mfa, Permission, Permissions, PrincipalId};
use nephele_common::ids::{ClientId, OrganizationId, UserId};
use nephele_common::status::UserStatus;
use nephele_common::{Error, ErrorCode, Result, Secret};
use nephele_store::{ApiClient, ApiKey, Lineage, Role, RoleGrant, User};
use std::net::IpAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long a principal or an ancestry is remembered. Changes made on this
/// node apply at once (the store's access generation); changes made on
/// another node apply within this time, as revocations do.
const REMEMBER: Duration = Duration::from_secs(1);
const ACCESS_CACHE_CAPACITY: usize = 10_000;

/// What an authenticated request would otherwise read on every call: who
/// its principal is (the user or client, and its role grants), and the
/// organizations above the one it acts in. A read of one instance made
/// four queries, three of them these.
pub(crate) struct AccessCache {
    /// With a user's session generation (0 for a client).
    actors: Memory<PrincipalId, (Actor, i64)>,
    api_keys: Memory<String, (ApiKey, Actor)>,
    ancestry: Memory<OrganizationId, Lineage>,
    /// The token endpoint's clients with their secret's hash.
    pub(crate) clients: Memory<ClientId, Option<Arc<(ApiClient, String)>>>,
}

type Memory<K, T> = quick_cache::sync::Cache<K, Arc<Remembered<T>>>;

pub(crate) struct Remembered<T> {
    value: T,
    generation: u64,
    at: Instant,
}

impl<T> Remembered<T> {
    fn new(value: T, generation: u64) -> Arc<Remembered<T>> {
        Arc::new(Remembered {
            value,
            generation,
            at: Instant::now(),
        })
    }

    fn fresh(&self, generation: u64) -> bool {
        self.generation == generation && self.at.elapsed() < REMEMBER
    }
}

impl std::fmt::Debug for AccessCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessCache")
            .field("actors", &self.actors.len())
            .field("api_keys", &self.api_keys.len())
            .field("ancestry", &self.ancestry.len())
            .field("clients", &self.clients.len())
            .finish()
    }
}

impl Default for AccessCache {
    fn default() -> Self {
        AccessCache {
            actors: quick_cache::sync::Cache::new(ACCESS_CACHE_CAPACITY),
            api_keys: quick_cache::sync::Cache::new(ACCESS_CACHE_CAPACITY),
            ancestry: quick_cache::sync::Cache::new(ACCESS_CACHE_CAPACITY),
            clients: quick_cache::sync::Cache::new(ACCESS_CACHE_CAPACITY),
        }
    }
}

fn fresh<K, T: Clone>(cache: &Memory<K, T>, key: &K, generation: u64) -> Option<T>
where
    K: Eq + std::hash::Hash + Clone,
{
    cache
        .get(key)
        .filter(|hit| hit.fresh(generation))
        .map(|hit| hit.value.clone())
}

/// Credentials as a request presents them (SPEC §4).
#[derive(Debug)]
pub enum Credentials {
    /// HTTP Basic: a login or e-mail with a password, or an e-mail (or
    /// login) with one of the user's API keys.
    Basic { username: String, secret: Secret },
    /// `MC-Api-Key`.
    ApiKey(Secret),
    /// `Authorization: Bearer`.
    Bearer(Secret),
}

/// Where an operation acted, noted by authorization for the audit log: the
/// organization of the first object the actor was allowed to see.
#[derive(Debug, Clone, Default)]
pub struct AuditScope(Arc<OnceLock<OrganizationId>>);

impl AuditScope {
    pub fn organization(&self) -> Option<OrganizationId> {
        self.0.get().copied()
    }

    fn note(&self, org: OrganizationId) {
        let _ = self.0.set(org);
    }
}

/// The context every tenant-scoped operation runs in.
#[derive(Debug, Clone)]
pub struct OpCtx {
    pub actor: Actor,
    pub request_id: String,
    pub agent_id: Option<String>,
    pub audit: AuditScope,
    /// The `Idempotency-Key` the request holds: an operation that queues a
    /// task records it under the key in the same transaction.
    pub idempotency: Option<nephele_store::idempotency::IdempotencyKey>,
}

/// 401 (1002): the credentials were good, but their subject may no
/// longer act.
pub(crate) fn refused(message: &str) -> Error {
    Error::new(ErrorCode::TokenExpired, message)
}

pub fn invalid_credentials() -> Error {
    Error::new(ErrorCode::InvalidCredentials, "Invalid credentials")
}

/// 403 naming the first permission the actor lacks.
pub fn forbidden(missing: Permissions) -> Error {
    let mut e = Error::new(ErrorCode::Forbidden, "Your role does not allow this action");
    if let Some(p) = missing.iter().next() {
        e = e.with("permission", p.as_str());
    }
    e
}

impl App {
    /// Turns credentials into an actor, or 401 (1001). Unknown logins cost
    /// the same Argon2id verification as wrong passwords; passwords are
    /// guarded by the lockout (429, 1004). `address` is the client's.
    pub async fn authenticate(
        &self,
        credentials: &Credentials,
        address: Option<IpAddr>,
    ) -> Result<Actor> {
        match credentials {
            Credentials::Basic { username, secret } => {
                if looks_like_api_key(secret.expose()) {
                    if let Some(actor) = self.authenticate_api_key(secret, Some(username)).await? {
                        return Ok(actor);
                    }
                }
                self.authenticate_password(username, secret, address).await
            }
            Credentials::ApiKey(secret) => self
                .authenticate_api_key(secret, None)
                .await?
                .ok_or_else(invalid_credentials),
            Credentials::Bearer(token) => {
                let claims = self.verify_access_token(token.expose()).await?;
                self.actor_for_token(&claims).await
            }
        }
    }

    /// HTTP Basic with a password. A user with MFA enrolled is refused
    /// (401, 1001) even with the right password: Basic has no place for a
    /// second factor, and an API key still works. The check reads the
    /// user's standing anew on every request (the actor is never cached
    /// here), so the verified-password cache cannot outlive an enrolment.
    async fn authenticate_password(
        &self,
        login: &str,
        password: &Secret,
        address: Option<IpAddr>,
    ) -> Result<Actor> {
        let user = self.verify_password(login, password, address).await?;
        let actor = self.actor_for(user, AuthMethod::Password).await?;
        if actor.mfa == Mfa::Enrolled {
            return Err(Error::new(
                ErrorCode::InvalidCredentials,
                "This user has MFA enabled: a password cannot be used over HTTP Basic; \
                 use a bearer token or an API key",
            ));
        }
        Ok(actor)
    }

    /// `None` when no key has this secret, or when `username` is given and
    /// is not the key owner's e-mail or login.
    async fn authenticate_api_key(
        &self,
        secret: &Secret,
        username: Option<&str>,
    ) -> Result<Option<Actor>> {
        if !looks_like_api_key(secret.expose()) || secret.expose().len() > 128 {
            return Ok(None);
        }
        // Looked up by hash: the comparison never touches the secret itself.
        let hash = hash_api_key(secret.expose());
        let generation = self.store().access_generation();
        let (key, actor, owner) = match fresh(&self.access_cache().api_keys, &hash, generation) {
            Some((key, actor)) => (key, actor, None),
            None => {
                let Some(key) = self.store().api_key_by_hash(&hash).await? else {
                    return Ok(None);
                };
                let Some(user) = self.store().user(key.user_id).await? else {
                    return Ok(None);
                };
                let actor = self.actor_for(user.clone(), AuthMethod::ApiKey).await?;
                self.access_cache().api_keys.insert(
                    hash.clone(),
                    Remembered::new((key.clone(), actor.clone()), generation),
                );
                (key, actor, Some(user))
            }
        };
        if let Some(name) = username {
            // Basic with a key: the name must be the owner's login or e-mail.
            let owner = match owner {
                Some(user) => user,
                None => match self.store().user(key.user_id).await? {
                    Some(user) => user,
                    None => return Ok(None),
                },
            };
            if !owner.answers_to(name) {
                return Ok(None);
            }
        }
        let now = self.clock().now();
        if self.store().touch_api_key(&key, now).await? {
            // Remember the touch, so the next requests do not write again.
            let mut touched = key;
            touched.last_used_at = Some(now);
            self.access_cache()
                .api_keys
                .insert(hash, Remembered::new((touched, actor.clone()), generation));
        }
        Ok(Some(actor))
    }

    /// The actor of an enabled user in good standing (a disabled or
    /// invited user, or one of a suspended organization, is refused), with
    /// its role grants and where it stands with MFA.
    pub(crate) async fn actor_for(&self, user: User, method: AuthMethod) -> Result<Actor> {
        self.ensure_may_act(&user).await?;
        let grants = grants_of(self.store().role_grants(user.id).await?);
        let required = self.ancestry(user.organization_id).await?.mfa_required;
        let enrolled = self.store().totp_active(user.id).await?;
        Ok(Actor {
            principal: PrincipalId::User(user.id),
            name: user.login,
            organization_id: user.organization_id,
            grants,
            method,
            mfa: mfa_of(enrolled, required.is_some()),
        })
    }

    /// The user behind a request: API keys and passwords are for users,
    /// not API clients (403).
    pub fn acting_user(&self, ctx: &OpCtx) -> Result<UserId> {
        ctx.actor.user_id().ok_or_else(|| {
            Error::new(
                ErrorCode::Forbidden,
                "API clients cannot do this; only users can",
            )
        })
    }

    /// The actor's permissions in `org`, or `None` when it cannot see `org`
    /// (it is neither the actor's organization nor below it).
    pub async fn permissions_in(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
    ) -> Result<Option<Permissions>> {
        let ancestry = self.ancestry(org).await?.chain;
        if ancestry.is_empty() || !ctx.actor.can_see(&ancestry) {
            return Ok(None);
        }
        ctx.audit.note(org);
        Ok(Some(ctx.actor.permissions_in(&ancestry)))
    }

    /// The value under `key` while it is fresh; otherwise what `load`
    /// reads, remembered when `keep` says it is worth it. The generation is
    /// taken before the read, so a change committed meanwhile makes the
    /// entry stale.
    pub(crate) async fn remember<K, T, F>(
        &self,
        memory: &Memory<K, T>,
        key: K,
        keep: impl Fn(&T) -> bool,
        load: F,
    ) -> Result<T>
    where
        K: Eq + std::hash::Hash + Clone,
        T: Clone,
        F: std::future::Future<Output = Result<T>>,
    {
        let generation = self.store().access_generation();
        if let Some(value) = fresh(memory, &key, generation) {
            return Ok(value);
        }
        let value = load.await?;
        if keep(&value) {
            memory.insert(key, Remembered::new(value.clone(), generation));
        }
        Ok(value)
    }

    /// `org` and the organizations above it, nearest first; empty when
    /// there is no such organization.
    pub(crate) async fn ancestry(&self, org: OrganizationId) -> Result<Lineage> {
        self.remember(
            &self.access_cache().ancestry,
            org,
            |lineage| !lineage.chain.is_empty(),
            self.store().organization_lineage(org),
        )
        .await
    }

    /// Refuses (401, 1002) a user who is not enabled or whose
    /// organization is suspended.
    pub(crate) async fn ensure_may_act(&self, user: &User) -> Result<()> {
        if user.status != UserStatus::Enabled {
            return Err(refused("This account is disabled"));
        }
        self.ensure_not_suspended(user.organization_id).await
    }

    /// Refuses (401, 1002) a principal of `org` when it, or one above it,
    /// is suspended.
    pub(crate) async fn ensure_not_suspended(&self, org: OrganizationId) -> Result<()> {
        if self.ancestry(org).await?.suspended.is_some() {
            return Err(refused("This organization is suspended"));
        }
        Ok(())
    }

    /// The actor of a principal a token names, remembered: see
    /// [`AccessCache`]. `load` reads it when it is not remembered.
    /// Not for passwords: a cached actor says nothing of which password
    /// is current.
    pub(crate) async fn remembered_actor<F>(
        &self,
        principal: PrincipalId,
        method: AuthMethod,
        load: F,
    ) -> Result<(Actor, i64)>
    where
        F: std::future::Future<Output = Result<(Actor, i64)>>,
    {
        let (actor, sessions) = self
            .remember(&self.access_cache().actors, principal, |_| true, load)
            .await?;
        Ok((Actor { method, ..actor }, sessions))
    }

    /// Checks that the actor may `permission` in the organization it acts
    /// in. An organization it cannot see does not exist for it (404); one
    /// it sees without the permission is 403. Returns all its permissions
    /// there.
    pub async fn authorize(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
        permission: Permission,
    ) -> Result<Permissions> {
        self.authorize_object(ctx, org, permission, "organizations", &org)
            .await
    }

    /// [`App::authorize`] for an object that lives in `org`: when the actor
    /// cannot see it, the answer is the object's own 404, identical to the
    /// one for an object that does not exist.
    pub async fn authorize_object(
        &self,
        ctx: &OpCtx,
        org: OrganizationId,
        permission: Permission,
        object_type: &str,
        object_id: &(dyn std::fmt::Display + Sync),
    ) -> Result<Permissions> {
        let Some(held) = self.permissions_in(ctx, org).await? else {
            return Err(Error::not_found(object_type, object_id));
        };
        if !held.contains(permission) {
            let mut missing = Permissions::default();
            missing.insert(permission);
            return Err(forbidden(missing));
        }
        Ok(held)
    }

    /// The organization a request acts in: `org_id` if given, otherwise the
    /// actor's own. Whether the actor may act there (its own or below it,
    /// else 404) is checked by [`App::authorize`], which every operation
    /// runs on the organization it acts in.
    pub fn acting_organization(
        &self,
        ctx: &OpCtx,
        org_id: Option<OrganizationId>,
    ) -> OrganizationId {
        org_id.unwrap_or(ctx.actor.organization_id)
    }
}

/// What a user's MFA standing means for its requests: `enrolled` (an
/// active TOTP), and whether its organization or one above it requires
/// MFA.
pub(crate) fn mfa_of(enrolled: bool, required: bool) -> Mfa {
    match (enrolled, required) {
        (true, _) => Mfa::Enrolled,
        (false, true) => Mfa::MustEnrol,
        (false, false) => Mfa::Off,
    }
}

/// The 403 (1003) of a user who must enrol in MFA before anything else.
pub fn enrolment_required() -> Error {
    Error::new(
        ErrorCode::Forbidden,
        "MFA enrolment is required: your organization requires a second factor; \
         enrol with POST /api/v2/me/mfa/totp first",
    )
    .with("reason", "mfa_enrolment_required")
}

/// Stored role grants as the actor holds them.
pub(crate) fn grants_of(rows: Vec<RoleGrant>) -> Vec<Grant> {
    rows.into_iter()
        .map(|g| Grant {
            organization_id: g.organization_id,
            role: g.role_name,
            permissions: Permissions::from_names(g.permissions.iter().map(String::as_str)),
        })
        .collect()
}

/// The permissions a role carries.
pub fn permissions_of(role: &Role) -> Permissions {
    Permissions::from_names(role.permissions.iter().map(String::as_str))
}

/// Nobody grants what they do not hold: `wanted` must be within `held`.
pub fn ensure_grantable(held: Permissions, wanted: Permissions) -> Result<()> {
    let missing = wanted.difference(held);
    if missing == Permissions::default() {
        Ok(())
    } else {
        Err(forbidden(missing))
    }
}
