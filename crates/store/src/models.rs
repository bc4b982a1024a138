//! What the store keeps, as the domain sees it.

use crate::columns::*;
use crate::tables;
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::sqlite::Sqlite;
use diesel::{Queryable, QueryableByName, Selectable};
use nephele_common::ids::{
    ApiKeyId, AuditEventId, ClientId, DatacenterId, OrganizationId, RefreshTokenId, RoleId,
    SigningKeyId, SsoSessionId, UserId,
};
use nephele_common::names::{Email, Login, Name};
use nephele_common::status::{OrganizationStatus, UserStatus};

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::organizations, check_for_backend(Sqlite, Pg))]
pub struct Organization {
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    pub id: OrganizationId,
    #[diesel(deserialize_as = MaybeParsed<OrganizationId>)]
    pub parent_id: Option<OrganizationId>,
    pub name: String,
    #[diesel(deserialize_as = Parsed<OrganizationStatus>)]
    pub status: OrganizationStatus,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Its users, and those of every organization below it, must enrol
    /// in MFA before anything but enrolment works.
    #[diesel(deserialize_as = Flag)]
    pub mfa_required: bool,
}

/// An organization and the organizations above it, nearest first; empty
/// when there is no such organization.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lineage {
    pub chain: Vec<OrganizationId>,
    /// The nearest organization of the chain that is suspended: all of
    /// the chain's principals are refused while there is one.
    pub suspended: Option<OrganizationId>,
    /// The nearest organization of the chain that requires MFA: all of
    /// the chain's users must enrol while there is one.
    pub mfa_required: Option<OrganizationId>,
}

/// What an update of an organization changes; `None` leaves a field as
/// it is.
#[derive(Debug, Clone, Default)]
pub struct OrganizationChanges {
    pub name: Option<Name>,
    /// Moves the organization below this one.
    pub parent_id: Option<OrganizationId>,
    pub status: Option<OrganizationStatus>,
    /// Requires MFA of its users and those below it.
    pub mfa_required: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct NewOrganization {
    pub id: OrganizationId,
    pub parent_id: Option<OrganizationId>,
    pub name: Name,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::users, check_for_backend(Sqlite, Pg))]
pub struct User {
    #[diesel(deserialize_as = Parsed<UserId>)]
    pub id: UserId,
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    pub organization_id: OrganizationId,
    pub login: String,
    pub email: String,
    pub password_hash: String,
    #[diesel(deserialize_as = Parsed<UserStatus>)]
    pub status: UserStatus,
    /// The user's home data center.
    #[diesel(deserialize_as = Parsed<DatacenterId>)]
    pub datacenter_id: DatacenterId,
    /// Moved on whenever the user's sessions end: an access token of an
    /// older generation is refused.
    pub session_generation: i64,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: UserId,
    pub organization_id: OrganizationId,
    pub login: Login,
    pub email: Email,
    pub password_hash: String,
    /// `Enabled`, or `Invited` for a user who sets a password later.
    pub status: UserStatus,
    pub datacenter_id: DatacenterId,
    pub now: DateTime<Utc>,
}

impl User {
    /// Is `name` this user's login or e-mail (both stored lower-case)?
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.to_lowercase();
        name == self.login || name == self.email
    }
}

/// A user with the names of the roles it holds, as the API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserDetail {
    pub user: User,
    pub roles: Vec<String>,
}

/// What an update of a user changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    pub login: Option<Login>,
    pub email: Option<Email>,
    pub datacenter_id: Option<DatacenterId>,
    pub roles: Option<Vec<RoleId>>,
    /// `Enabled` or `Disabled`; disabling ends the user's sessions.
    pub status: Option<UserStatus>,
}

/// A role: built-in (no organization) or an organization's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub id: RoleId,
    pub organization_id: Option<OrganizationId>,
    pub name: String,
    /// Permission names, as stored.
    pub permissions: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Role {
    pub fn is_builtin(&self) -> bool {
        self.organization_id.is_none()
    }
}

#[derive(Debug, Clone)]
pub struct NewRole {
    pub id: RoleId,
    pub organization_id: OrganizationId,
    pub name: Name,
    pub permissions: Vec<String>,
    pub now: DateTime<Utc>,
}

/// A user's API key. The secret itself is never stored, only its hash.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::api_keys, check_for_backend(Sqlite, Pg))]
pub struct ApiKey {
    #[diesel(deserialize_as = Parsed<ApiKeyId>)]
    pub id: ApiKeyId,
    #[diesel(deserialize_as = Parsed<UserId>)]
    pub user_id: UserId,
    pub name: String,
    /// The first characters of the secret, to recognise it by.
    pub prefix: String,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub updated_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub last_used_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub user_id: UserId,
    pub name: Name,
    pub prefix: String,
    pub secret_hash: String,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::datacenters, check_for_backend(Sqlite, Pg))]
pub struct Datacenter {
    #[diesel(deserialize_as = Parsed<DatacenterId>)]
    pub id: DatacenterId,
    pub name: String,
    /// `None` for this server's own data center: its URL is the public URL.
    pub server_url: Option<String>,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

impl Datacenter {
    /// This server's own data center (seeded by a migration).
    pub const LOCAL: DatacenterId = DatacenterId(uuid::Uuid::from_u128(
        0x00000000_0000_7000_8000_000000000100,
    ));
}

#[derive(Debug, Clone)]
pub struct NewDatacenter {
    pub id: DatacenterId,
    pub name: Name,
    pub server_url: String,
    pub now: DateTime<Utc>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    pub id: AuditEventId,
    pub occurred_at: DateTime<Utc>,
    /// Where it happened; `None` when no organization is known (a failed
    /// authentication): only the root organization sees those.
    pub organization_id: Option<OrganizationId>,
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `denied` or `failure`.
    pub outcome: String,
    pub status: u16,
    pub request_id: Option<String>,
    pub agent_id: Option<String>,
    pub client_address: Option<String>,
}

/// Filters of the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub since: Option<DateTime<Utc>>,
    /// A principal's id or name.
    pub actor: Option<String>,
    pub action: Option<String>,
}

/// A role held by a user in an organization (and every organization below it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    pub role_id: RoleId,
    pub role_name: String,
    pub organization_id: OrganizationId,
    /// The role's permission names, as stored.
    pub permissions: Vec<String>,
}

/// Ids of the built-in roles (seeded by the first migration).
pub mod builtin_roles {
    use nephele_common::ids::RoleId;
    use uuid::Uuid;

    pub const ADMIN: RoleId = RoleId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000001));
    pub const OPERATOR: RoleId = RoleId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000002));
    pub const VIEWER: RoleId = RoleId(Uuid::from_u128(0x00000000_0000_7000_8000_000000000003));
}

/// An OAuth2 API client. Its secret is never stored, only a keyed hash.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiClient {
    pub id: ClientId,
    pub organization_id: OrganizationId,
    pub name: String,
    /// `client_secret_basic` or `client_secret_post`.
    pub auth_method: String,
    /// `enabled` or `disabled`.
    pub status: String,
    pub created_by: Option<UserId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_access_at: Option<DateTime<Utc>>,
    pub version: i64,
    /// Carried by the tokens issued through the client; moved on when it
    /// is disabled or its secret reset, which ends the tokens issued before.
    pub token_generation: i64,
    /// The names of the roles it acts with.
    pub roles: Vec<String>,
    pub sign_in: ClientSignIn,
}

impl ApiClient {
    /// The command-line client's own registration (`nephele login --web`):
    /// public, first-party, made with the root organization.
    pub const CLI: ClientId = ClientId(uuid::Uuid::from_u128(
        0x00000000_0000_7000_8000_000000000c11,
    ));
    /// Where the CLI listens for the code: any port of it (RFC 8252 §7.3).
    pub const CLI_REDIRECT_URI: &str = "http://127.0.0.1/callback";

    pub fn is_enabled(&self) -> bool {
        self.status == "enabled"
    }

    /// A public client (`none`) has no secret: PKCE is all it proves.
    pub fn is_public(&self) -> bool {
        self.auth_method == "none"
    }

    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.sign_in.grant_types.iter().any(|g| g == grant_type)
    }
}

/// What a client registers for signing people in (SPEC §5).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClientSignIn {
    /// Where the authorization endpoint may send a code: exact URIs.
    pub redirect_uris: Vec<String>,
    /// Where RP-initiated logout may send the browser back to.
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    /// The platform's own applications ask for no consent.
    pub first_party: bool,
}

#[derive(Debug, Clone)]
pub struct NewApiClient {
    pub id: ClientId,
    pub organization_id: OrganizationId,
    pub name: Name,
    pub auth_method: String,
    pub secret_hash: String,
    pub created_by: Option<UserId>,
    pub roles: Vec<RoleId>,
    pub sign_in: ClientSignIn,
    pub now: DateTime<Utc>,
}

impl NewApiClient {
    /// [`ApiClient::CLI`] in the root organization `root`.
    pub fn cli(root: OrganizationId, now: DateTime<Utc>) -> nephele_common::Result<NewApiClient> {
        Ok(NewApiClient {
            id: ApiClient::CLI,
            organization_id: root,
            name: Name::parse("Nephele CLI").map_err(nephele_common::Error::internal)?,
            auth_method: "none".into(),
            secret_hash: String::new(),
            created_by: None,
            roles: Vec::new(),
            sign_in: ClientSignIn {
                redirect_uris: vec![ApiClient::CLI_REDIRECT_URI.into()],
                post_logout_redirect_uris: Vec::new(),
                grant_types: vec!["authorization_code".into(), "refresh_token".into()],
                first_party: true,
            },
            now,
        })
    }
}

/// What an update of a client changes; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ClientChanges {
    pub name: Option<Name>,
    pub status: Option<String>,
    pub roles: Option<Vec<RoleId>>,
    pub sign_in: Option<ClientSignIn>,
}

/// A token-signing key as stored: the private half sealed.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::signing_keys, check_for_backend(Sqlite, Pg))]
pub struct StoredSigningKey {
    #[diesel(deserialize_as = Parsed<SigningKeyId>)]
    pub id: SigningKeyId,
    /// `access` or `id`: which tokens it signs.
    pub purpose: String,
    pub algorithm: String,
    /// The PKCS#8 private key, sealed under the configured secret key.
    pub sealed_key: String,
    /// The public half, as a JWK (JSON).
    pub public_jwk: String,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    /// When it stopped signing; `None` while it is the current key.
    #[diesel(deserialize_as = MaybeMicros)]
    pub retired_at: Option<DateTime<Utc>>,
    /// When the last token it signed expires: it leaves the JWKS then.
    #[diesel(deserialize_as = MaybeMicros)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A refresh token as stored (its hash only). Read by name too: the
/// rotation's PostgreSQL statement is SQL of its own (see `tokens`).
#[derive(Debug, Clone, PartialEq, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = tables::refresh_tokens, check_for_backend(Sqlite, Pg))]
pub struct RefreshToken {
    #[diesel(deserialize_as = Parsed<RefreshTokenId>)]
    pub id: RefreshTokenId,
    /// Every token rotated from the same first one shares its family.
    #[diesel(deserialize_as = Parsed<RefreshTokenId>)]
    pub family_id: RefreshTokenId,
    /// The user whose token it is; `None` for a client's own token
    /// (client credentials), whose subject is `client_id`.
    #[diesel(deserialize_as = MaybeParsed<UserId>)]
    pub user_id: Option<UserId>,
    /// The subject's organization (users and clients never move).
    #[diesel(deserialize_as = Parsed<OrganizationId>)]
    pub organization_id: OrganizationId,
    #[diesel(deserialize_as = MaybeParsed<ClientId>)]
    pub client_id: Option<ClientId>,
    pub scope: String,
    /// The user's session generation when the family began.
    pub session_generation: i64,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub expires_at: DateTime<Utc>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub used_at: Option<DateTime<Utc>>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A refresh to make: the presented token's hash and client, and the
/// successor's id, hash and expiry.
#[derive(Debug, Clone)]
pub struct RefreshSpend {
    pub hash: String,
    pub client: Option<ClientId>,
    pub now: DateTime<Utc>,
    pub next_id: RefreshTokenId,
    pub next_hash: String,
    pub next_expires: DateTime<Utc>,
}

/// Why a refresh token did not spend.
#[derive(Debug, Clone, PartialEq)]
pub enum RefreshOutcome {
    /// The token had been used before: a replay. Its family is revoked.
    Replayed(RefreshToken),
    /// The token belongs to another client (or to none): left unspent.
    WrongClient(RefreshToken),
    /// No such token, or it expired or was revoked.
    Invalid,
}

/// An access token revoked before its expiry.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::revoked_tokens, check_for_backend(Sqlite, Pg))]
pub struct RevokedToken {
    pub jti: String,
    #[diesel(deserialize_as = Micros)]
    pub expires_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub revoked_at: DateTime<Utc>,
}

/// A browser's session with the identity provider. Its cookie is never
/// stored, only the SHA-256 of it.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::sso_sessions, check_for_backend(Sqlite, Pg))]
pub struct SsoSession {
    #[diesel(deserialize_as = Parsed<SsoSessionId>)]
    pub id: SsoSessionId,
    #[diesel(deserialize_as = Parsed<UserId>)]
    pub user_id: UserId,
    /// The user's session generation when it began: it ends with them.
    pub session_generation: i64,
    /// Space-separated RFC 8176 methods (`pwd`, `pwd otp`).
    pub amr: String,
    #[diesel(deserialize_as = Micros)]
    pub auth_time: DateTime<Utc>,
    pub user_agent: String,
    pub address: String,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub last_seen_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub expires_at: DateTime<Utc>,
}

/// An authorization code as stored (by the SHA-256 of the code).
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = tables::authorization_codes, check_for_backend(Sqlite, Pg))]
pub struct AuthorizationCode {
    #[diesel(deserialize_as = Parsed<ClientId>)]
    pub client_id: ClientId,
    #[diesel(deserialize_as = Parsed<UserId>)]
    pub user_id: UserId,
    #[diesel(deserialize_as = Parsed<SsoSessionId>)]
    pub session_id: SsoSessionId,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: String,
    pub amr: String,
    #[diesel(deserialize_as = Micros)]
    pub auth_time: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub created_at: DateTime<Utc>,
    #[diesel(deserialize_as = Micros)]
    pub expires_at: DateTime<Utc>,
    /// The access token it was exchanged for, and its expiry.
    pub access_jti: Option<String>,
    #[diesel(deserialize_as = MaybeMicros)]
    pub access_expires_at: Option<DateTime<Utc>>,
    /// The refresh-token family it began.
    #[diesel(deserialize_as = MaybeParsed<RefreshTokenId>)]
    pub refresh_family_id: Option<RefreshTokenId>,
}

/// What presenting an authorization code found.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeSpend {
    /// Unused until now: it is spent.
    Fresh(AuthorizationCode),
    /// Spent before: what it issued must be revoked.
    Replayed(AuthorizationCode),
    Unknown,
}
