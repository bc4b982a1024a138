//! Nephele's wire types: what goes over HTTP, with the OpenAPI schema of
//! each. Shared by the server, the client and the CLI.
//!
//! Request types take every field as `Option` and refuse unknown fields: the
//! server then reports *every* missing or invalid field in one 422, rather
//! than the first one serde trips over.

use chrono::{DateTime, Utc};
use nephele_common::{ErrorDetail, Secret};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub mod schema;

/// `{"data": …}`: every successful `/api/v2` and `/occm` body.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Data<T> {
    pub data: T,
}

/// A page of a list. `nextPage` is present when more remain: pass it as
/// `?pageToken=` to continue.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct List<T> {
    pub data: Vec<T>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page: Option<String>,
}

/// `{"errors": […]}`: every error body (but OAuth2's).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<ErrorDetail>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SetupStatus {
    pub initialized: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"setupToken": "8Zq3…", "organization": {"name": "Acme"}, "admin": {"login": "admin", "email": "admin@acme.test", "password": "correct-horse-1"}})))]
pub struct SetupInit {
    /// The one-time token from `DATA_DIR/setup-token` (or `--setup-token`).
    #[schema(value_type = String)]
    pub setup_token: Option<Secret>,
    pub organization: Option<SetupOrganization>,
    pub admin: Option<SetupAdmin>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupOrganization {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    pub name: Option<String>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SetupAdmin {
    #[schema(value_type = schema::Login, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    pub login: Option<String>,
    #[schema(value_type = String, format = Email, max_length = 254)]
    pub email: Option<String>,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024)]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetupResult {
    pub organization: Organization,
    pub user: User,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Organization {
    pub id: Uuid,
    pub name: String,
    /// The organization above this one; `null` for the root.
    pub parent_id: Option<Uuid>,
    /// `suspended`: its principals and those of every organization below
    /// it are refused, and its instances cannot be started.
    #[schema(value_type = schema::OrganizationStatus)]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Increases with every change; the `ETag` is derived from it.
    pub version: i64,
    /// Its users, and those of every organization below it, must enrol in
    /// MFA before anything but enrolment works.
    pub mfa_required: bool,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "Customer A"})))]
pub struct OrganizationCreate {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Default: the organization acted in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
}

/// PUT replaces the mutable fields (`name`, and `parentId` to move the
/// organization); PATCH takes a JSON merge patch of the same shape.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "Customer A (EU)"})))]
pub struct OrganizationUpdate {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Move the organization below this one (not below itself or its own
    /// descendants). Absent: it stays where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    /// `active` or `suspended`; set by an administrator of an organization
    /// above this one. Absent: unchanged.
    #[schema(value_type = Option<schema::OrganizationStatus>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Require MFA of the organization's users and of those below it.
    /// Turned on by an administrator of the organization or above it;
    /// turned off only by one above it (for the root, by its own).
    /// Absent: unchanged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mfa_required: Option<bool>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: Uuid,
    pub login: String,
    pub email: String,
    pub organization_id: Uuid,
    /// Role names held in the user's organization.
    pub roles: Vec<String>,
    /// The user's home data center.
    pub datacenter_id: Uuid,
    /// Only an `enabled` user authenticates.
    #[schema(value_type = schema::UserStatus)]
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
    /// Only in the answer that created an invited user when the server
    /// sends no mail: the one-time link (72 h) with which the user sets a
    /// password. Never shown again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activation_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    pub status: String,
}

/// A new user of the organization acted in.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"login": "bob", "email": "bob@acme.test", "password": "password-123", "roles": ["viewer"]})))]
pub struct UserCreate {
    #[schema(value_type = schema::Login, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[schema(value_type = String, format = Email, max_length = 254, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Without one the user is `invited`: it gets a one-time link by mail
    /// (or, when the server sends no mail, the answer carries it as
    /// `activationUrl`) to set its password.
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024)]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "schema::secret_as_text"
    )]
    pub password: Option<Secret>,
    /// Role names (built-in or the organization's own) or role ids.
    /// Default: none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// Default: this server's data center.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter_id: Option<Uuid>,
}

/// PUT replaces the mutable fields (`login`, `email`, `roles` required;
/// `datacenterId` optional); PATCH takes a JSON merge patch of the same
/// shape. The password changes through `POST /api/v2/users/{id}/password`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"login": "bob", "email": "bob@acme.test", "roles": ["viewer"]})))]
pub struct UserUpdate {
    #[schema(value_type = schema::Login, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
    #[schema(value_type = String, format = Email, max_length = 254, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[schema(value_type = Vec<String>, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter_id: Option<Uuid>,
    /// `enabled` or `disabled` (which ends the user's sessions); an
    /// `invited` user is enabled by setting a password. Absent: unchanged.
    #[schema(value_type = Option<schema::UserStatus>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// A password change. Changing your own password needs the current one.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"password": "another-password-456"})))]
pub struct PasswordChange {
    /// Required to change your own password.
    #[schema(value_type = String, format = Password, required = false)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "schema::secret_as_text"
    )]
    pub current_password: Option<Secret>,
    #[schema(value_type = String, format = Password, min_length = 8, max_length = 1024, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "schema::secret_as_text"
    )]
    pub password: Option<Secret>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Role {
    pub id: Uuid,
    pub name: String,
    /// `resource:action` strings.
    pub permissions: Vec<String>,
    /// Built-in roles (`admin`, `operator`, `viewer`) belong to no
    /// organization and cannot be changed.
    pub builtin: bool,
    pub organization_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A custom role of the organization acted in (POST), or its new name and
/// permissions (PUT: both required).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "ops", "permissions": ["instances:read", "tasks:read"]})))]
pub struct RoleWrite {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = Vec<schema::Permission>, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The key's first characters, to recognise it by.
    pub prefix: String,
    /// The key itself: only in the answer to its creation or regeneration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the key last authenticated a request (to the minute).
    pub last_used_at: Option<DateTime<Utc>>,
    pub version: i64,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "ci"})))]
pub struct ApiKeyCreate {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A browser's session with the identity provider (`GET
/// /api/v2/me/sessions`): the user's signed-in browsers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignInSession {
    /// Also the id token's `sid`.
    pub id: Uuid,
    /// How the user signed in: `pwd`, `otp`.
    pub amr: Vec<String>,
    pub auth_time: DateTime<Utc>,
    pub user_agent: String,
    /// The address it began from.
    pub address: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When it ends, used or not (it also ends when unused for 12 hours).
    pub expires_at: DateTime<Utc>,
}

/// A third-party client the user allowed (`GET /api/v2/me/consents`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub client_id: Uuid,
    pub client_name: String,
    /// The scopes allowed.
    pub scopes: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// `GET /api/v2/me`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub principal: Principal,
    pub organization: Organization,
    /// Effective permissions in the principal's own organization (and so in
    /// every organization below it).
    pub permissions: Vec<String>,
    /// How this request authenticated: `password`, `api_key` or `bearer`.
    pub authenticated_by: String,
    /// The user has an active TOTP second factor (always `false` for an
    /// API client).
    pub mfa_enabled: bool,
    /// The user's organization, or one above it, requires MFA. Without
    /// `mfaEnabled`, only this and enrolment (`/api/v2/me/mfa/totp`) work.
    pub mfa_required: bool,
}

/// A new TOTP enrolment, pending until confirmed; shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({"secret": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "otpauthUri": "otpauth://totp/Nephele:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=Nephele", "qrSvg": "<svg …>…</svg>"})))]
pub struct TotpEnrolment {
    /// The shared secret, base32 (for typing into an authenticator app).
    pub secret: String,
    /// The same as an `otpauth://totp/` URI (RFC 6238: SHA-1, 6 digits,
    /// 30 s), issuer `Nephele`, account the login.
    pub otpauth_uri: String,
    /// `otpauthUri` as a QR code: an SVG document to inline in a page.
    pub qr_svg: String,
}

/// Confirms a pending enrolment with a current code of its secret.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"code": "123456"})))]
pub struct TotpConfirm {
    /// The 6-digit code the authenticator shows now.
    #[schema(value_type = String, required = true, pattern = "^[0-9]{6}$")]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// The one-time recovery codes of a confirmed enrolment, shown this once.
/// Each stands in for a TOTP code once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(examples(json!({"recoveryCodes": ["k7m2p-xq9ra", "…"]})))]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Removes the caller's TOTP: the password, and a current code or an
/// unused recovery code. Both are required; for a pending enrolment the
/// code is not checked.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"password": "correct-horse-1", "code": "123456"})))]
pub struct TotpRemoval {
    #[schema(value_type = String, format = Password, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "schema::secret_as_text"
    )]
    pub password: Option<Secret>,
    /// A current TOTP code or an unused recovery code.
    #[schema(value_type = String, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// `user` or `client` (an API client).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Uuid,
    /// A user's login; an API client's name.
    pub login: String,
    /// `null` for an API client.
    pub email: Option<String>,
    pub roles: Vec<String>,
    /// `null` for an API client.
    pub datacenter_id: Option<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    pub id: Uuid,
    pub occurred_at: DateTime<Utc>,
    /// Where it happened; `null` for a failed authentication.
    pub organization_id: Option<Uuid>,
    /// `user`; for a failed authentication the scheme tried (`basic`,
    /// `api_key`, `bearer`); `null` when no credentials were involved
    /// (setup).
    pub actor_type: Option<String>,
    pub actor_id: Option<String>,
    /// The login used (also for a failed authentication).
    pub actor_name: Option<String>,
    /// `resource.verb`: `users.create`, `api-keys.regenerate`,
    /// `authentication`, …
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// `success`, `denied` (401, 403) or `failure`.
    pub outcome: String,
    /// The HTTP status of the response.
    pub status: u16,
    pub request_id: Option<String>,
    pub agent_id: Option<String>,
    pub client_address: Option<String>,
}

/// A file in the notary, or a hash registered without content.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StoredFile {
    pub id: Uuid,
    pub name: String,
    /// Lower-case hex of the content's SHA-256.
    pub sha256: String,
    /// Absent for a registered hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
    /// `stored`, `none` (a registered hash) or `deleted`.
    pub content: String,
    /// `PENDING` until a batch notarizes it, then `NOTARIZED`.
    pub status: String,
    /// Its leaf in the notary's log, once notarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notarized_at: Option<DateTime<Utc>>,
    pub organization_id: Uuid,
    /// `user` or `client`.
    pub owner_type: String,
    pub owner_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// Registers a hash without content.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "contract.pdf", "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})))]
pub struct StoredFileRegistration {
    #[schema(value_type = schema::Sha256, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[schema(value_type = schema::FileName)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A `multipart/form-data` upload of a stored file; the parts may come in
/// any order, and no others. (The server reads the parts as they stream;
/// serde's attributes are here for the schema.)
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"file": "minutes of the meeting", "name": "minutes.txt"})))]
pub struct StoredFileUpload {
    /// The content. Its part's `filename` names the file when neither
    /// `name` nor `?name=` does.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    #[schema(value_type = schema::FileName)]
    #[serde(default, deserialize_with = "schema::present")]
    pub name: Option<String>,
    /// The SHA-256 the content must have.
    #[schema(value_type = schema::Sha256)]
    #[serde(default, deserialize_with = "schema::present")]
    pub sha256: Option<String>,
}

/// A `multipart/form-data` verification (the public page's form): the
/// content or its hash, one of them.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(max_properties = 1, examples(json!({"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})))]
pub struct VerifyUpload {
    /// The content, hashed and not kept.
    #[schema(value_type = String, format = Binary, required = false)]
    pub file: Option<Vec<u8>>,
    #[schema(value_type = schema::Sha256, required = false)]
    pub sha256: Option<String>,
}

/// Asks whether a hash is notarized.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"})))]
pub struct VerifyRequest {
    #[schema(value_type = schema::Sha256, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A signed tree head of the notary's log (RFC 9162 hashing).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SignedTreeHead {
    pub tree_size: u64,
    /// Hex.
    pub root_hash: String,
    /// Millisecond precision; signed as milliseconds since the epoch.
    pub timestamp: String,
    pub key_id: String,
    /// `Ed25519`.
    pub algorithm: String,
    /// Base64 of the signature over `nephele-notary-tree-head-v1\0`,
    /// tree size (u64 BE), timestamp (i64 BE ms) and root (32 bytes).
    pub signature: String,
}

/// A tree head as the log keeps it: with the proof that it extends the
/// head before it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggedTreeHead {
    #[serde(flatten)]
    pub head: SignedTreeHead,
    pub previous_size: u64,
    /// Hex hashes: RFC 9162 consistency proof from `previousSize`.
    pub consistency_proof: Vec<String>,
}

/// Proof that a file's hash is in the notary's log: checkable offline
/// with the notary's public key (`nephele notary verify`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    /// Hex SHA-256 of the file; the leaf's data is these 32 bytes.
    pub sha256: String,
    pub leaf_index: u64,
    /// Hex: SHA-256(0x00 || digest).
    pub leaf_hash: String,
    /// Hex hashes, RFC 9162 order.
    pub inclusion_proof: Vec<String>,
    pub signed_tree_head: SignedTreeHead,
}

/// A key the notary signs tree heads with.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotaryKey {
    pub key_id: String,
    /// `Ed25519`.
    pub algorithm: String,
    /// Base64 of the raw 32-byte public key.
    pub public_key: String,
}

/// Whether a hash is notarized, and the proof.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    pub sha256: String,
    pub notarized: bool,
    /// When the earliest of the caller's files with this hash was notarized.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notarized_at: Option<DateTime<Utc>>,
    /// The caller's notarized files with this hash.
    pub stored_file_ids: Vec<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
}

/// An image instances can be made of (`image` of an instance).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub name: String,
    /// `qcow2` or `raw` under the QEMU driver; `simulated` under `sim`.
    pub format: String,
    /// The image file's size in bytes; absent where there is no file
    /// (simulated images, and `blank`: an empty disk of `diskGiB`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Datacenter {
    pub id: Uuid,
    pub name: String,
    /// The base URL of the Nephele server of that data center.
    pub server_url: String,
    /// Is this the data center of the server answering?
    pub local: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "eu-west", "serverUrl": "https://eu-west.cloud.example.com"})))]
pub struct DatacenterCreate {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = schema::HttpUrl, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_url: Option<String>,
}

// ---- Instances, quotas and tasks (SPEC §6). ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub id: Uuid,
    pub name: String,
    pub organization_id: Uuid,
    #[schema(value_type = schema::InstanceState)]
    pub state: String,
    pub cpu: i64,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: i64,
    #[serde(rename = "diskGiB")]
    pub disk_gib: i64,
    pub image: String,
    /// The id of the data center it runs in.
    pub datacenter: Uuid,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub version: i64,
}

/// A new instance in the organization acted in. `name` and `image` are
/// required; `cpu` defaults to 1, `memoryMiB` to 1024, `diskGiB` to 10.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"name": "web-1", "image": "ubuntu-24.04", "cpu": 2, "memoryMiB": 2048})))]
pub struct InstanceCreate {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[schema(value_type = i64, required = false, minimum = 1, maximum = 128)]
    #[serde(default, deserialize_with = "schema::present_whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    #[serde(rename = "memoryMiB")]
    #[schema(value_type = i64, required = false, minimum = 64, maximum = 1048576)]
    #[serde(default, deserialize_with = "schema::present_whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
    #[serde(rename = "diskGiB")]
    #[schema(value_type = i64, required = false, minimum = 1, maximum = 65536)]
    #[serde(default, deserialize_with = "schema::present_whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk_gib: Option<i64>,
    /// This server's data center (the default); no other is accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<Uuid>,
}

/// A merge patch of an instance: `name` any time; `cpu` and `memoryMiB`
/// only while it is `Stopped`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"cpu": 4})))]
pub struct InstanceUpdate {
    #[schema(value_type = schema::Name, required = false)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[schema(value_type = i64, required = false, minimum = 1, maximum = 128)]
    #[serde(default, deserialize_with = "schema::present_whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<i64>,
    #[serde(rename = "memoryMiB")]
    #[schema(value_type = i64, required = false, minimum = 64, maximum = 1048576)]
    #[serde(default, deserialize_with = "schema::present_whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
}

/// The 202 body of an asynchronous operation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskAccepted {
    pub task_id: Uuid,
    /// Always `PENDING` here.
    pub task_status: String,
}

/// One step of a task's log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskStep {
    pub name: String,
    /// `do` or `undo`.
    pub action: String,
    /// `done` or `failed`.
    pub outcome: String,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_id: Uuid,
    #[schema(value_type = schema::TaskStatus)]
    pub task_status: String,
    /// `create`, `start`, `stop`, `reboot` or `delete`.
    pub operation: String,
    pub resource_type: String,
    pub resource_id: String,
    pub organization_id: Uuid,
    /// The `x-agent-id` of the request that started it.
    pub agent_id: Option<String>,
    /// 0–100.
    pub progress: i64,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// On SUCCESS: the resource as it ended (`null` once deleted).
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// On FAILED: what went wrong.
    pub error: Option<ErrorDetail>,
    /// The step log (`GET /api/v2/tasks/{id}` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<TaskStep>>,
}

/// Usage of an organization's quota by its own instances.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QuotaUsage {
    pub instances: i64,
    pub vcpus: i64,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: i64,
}

/// An organization's limits (`null`: none) and its usage.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quota {
    pub organization_id: Uuid,
    pub instances: Option<i64>,
    pub vcpus: Option<i64>,
    #[serde(rename = "memoryMiB")]
    pub memory_mib: Option<i64>,
    pub usage: QuotaUsage,
    pub updated_at: Option<DateTime<Utc>>,
    pub version: i64,
}

/// New limits for an organization, set from its parent; a missing or
/// `null` field is no limit (the parent's still applies as a ceiling).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(examples(json!({"instances": 10, "vcpus": 20, "memoryMiB": 40960})))]
pub struct QuotaWrite {
    #[schema(value_type = Option<i64>, minimum = 0)]
    #[serde(default, deserialize_with = "schema::whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances: Option<i64>,
    #[schema(value_type = Option<i64>, minimum = 0)]
    #[serde(default, deserialize_with = "schema::whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vcpus: Option<i64>,
    #[serde(rename = "memoryMiB")]
    #[schema(value_type = Option<i64>, minimum = 0)]
    #[serde(default, deserialize_with = "schema::whole_number")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<i64>,
}

// ---- Identity and discovery (SPEC §5): snake_case, no envelope. ----

/// `GET /api/1/accounts?login=`: where an account lives. The same shape for
/// every login, known or not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Account {
    pub login: String,
    /// Always 0: the answer never tells whether the account exists.
    pub id: i64,
    /// The base URL of the account's home data center.
    pub server_url: String,
}

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT (RFC 9068).
    pub access_token: String,
    /// `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the access token expires, in Unix seconds.
    pub expires_on: i64,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// For the password grant, and whenever `openid` is granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// When `offline_access` is granted (password and refresh grants).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An OAuth2 error (RFC 6749 §5.2).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OAuthError {
    /// `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `invalid_token`.
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// Token introspection (RFC 7662). An inactive token is exactly
/// `{"active":false}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct Introspection {
    pub active: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// OIDC UserInfo.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserInfo {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    pub tenant_id: String,
}

/// One public key of the JWKS (RFC 7517).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JsonWebKey {
    /// `EC`, `OKP` or `RSA`.
    pub kty: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// `GET /api/2/idp/keys`: every key that may verify a live token.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct JsonWebKeySet {
    pub keys: Vec<JsonWebKey>,
}

/// `GET /.well-known/openid-configuration` (OIDC Discovery 1.0).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpenIdConfiguration {
    pub issuer: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    pub revocation_endpoint: String,
    pub introspection_endpoint: String,
    pub userinfo_endpoint: String,
    pub authorization_endpoint: String,
    pub end_session_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    pub scopes_supported: Vec<String>,
    pub id_token_signing_alg_values_supported: Vec<String>,
    pub response_types_supported: Vec<String>,
    pub response_modes_supported: Vec<String>,
    pub subject_types_supported: Vec<String>,
    pub claims_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    /// RFC 9207: the authorization response carries `iss`.
    pub authorization_response_iss_parameter_supported: bool,
    pub prompt_values_supported: Vec<String>,
}

/// An API client (SPEC §5). The secret appears only in the answer to its
/// creation and to a secret reset.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiClient {
    pub client_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `api_client`.
    #[serde(rename = "type")]
    pub kind: String,
    pub tenant_id: Uuid,
    /// `client_secret_basic` or `client_secret_post`.
    pub token_endpoint_auth_method: String,
    pub data: ApiClientData,
    /// The roles the client acts with in its tenant.
    pub roles: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    /// The user who created it.
    pub created_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    /// When the client last asked for a token (kept to within seconds).
    pub last_access_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClientData {
    #[schema(value_type = schema::Name, required = true)]
    #[serde(default, deserialize_with = "schema::present")]
    pub client_name: Option<String>,
    /// Where the authorization endpoint may send a code: absolute `https`
    /// URIs, or `http` on a loopback address (any port, RFC 8252 §7.3);
    /// matched exactly, no wildcards.
    #[schema(value_type = Option<Vec<schema::RedirectUri>>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uris: Option<Vec<String>>,
    /// Where RP-initiated logout may send the browser back to.
    #[schema(value_type = Option<Vec<schema::RedirectUri>>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_logout_redirect_uris: Option<Vec<String>>,
    /// Of `authorization_code`, `client_credentials`, `password`,
    /// `refresh_token`. Default: `client_credentials`, `password`,
    /// `refresh_token`, and `authorization_code` with redirect URIs; a
    /// public client, `authorization_code` and `refresh_token` only.
    #[schema(value_type = Option<Vec<schema::GrantType>>)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// The platform's own application (only the root organization's
    /// clients): its users are asked for no consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_party: Option<bool>,
}

/// `POST /api/2/clients`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"type": "api_client", "token_endpoint_auth_method": "client_secret_basic", "data": {"client_name": "MyApp"}, "roles": ["admin"]})))]
pub struct ApiClientCreate {
    /// `api_client` (the only type).
    #[serde(rename = "type")]
    #[schema(value_type = Option<schema::ClientType>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The organization the client acts in. Default: the caller's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<Uuid>,
    /// `client_secret_basic` (default), `client_secret_post`, or `none`
    /// for a public client (no secret; PKCE only).
    #[schema(value_type = Option<schema::TokenEndpointAuthMethod>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_method: Option<String>,
    #[schema(value_type = ApiClientData, required = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<ApiClientData>,
    /// Role names (built-in or the tenant's own) or ids. Default: `admin`.
    /// The caller must hold every permission they carry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// `PUT /api/2/clients/{client_id}`: the name, the status, the roles.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"status": "disabled"})))]
pub struct ApiClientUpdate {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<ApiClientData>,
    /// `enabled` or `disabled`.
    #[schema(value_type = Option<schema::ClientStatus>)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// `GET /api/2/clients`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApiClientList {
    pub items: Vec<ApiClient>,
}

/// The form of `POST /api/2/idp/token` (`application/x-www-form-urlencoded`;
/// each parameter at most once). A client authenticates with HTTP Basic
/// (`client_secret_basic`) or with `client_id` and `client_secret` here
/// (`client_secret_post`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"grant_type": "client_credentials", "scope": "offline_access", "client_id": "01a23abd-0588-7003-82b3-bf23c84c8f39", "client_secret": "nph_sec_…"})))]
pub struct TokenForm {
    #[schema(value_type = schema::GrantType)]
    pub grant_type: String,
    /// For `password`.
    pub username: Option<String>,
    /// For `password`.
    pub password: Option<String>,
    /// For `password`, when the user has MFA: a current TOTP code or an
    /// unused recovery code. Without it such a user gets `invalid_grant`
    /// with `error_description` `mfa_required`.
    pub otp: Option<String>,
    /// Space-separated: `openid`, `profile`, `email`, `offline_access`.
    pub scope: Option<String>,
    /// For `refresh_token`.
    pub refresh_token: Option<String>,
    /// With `client_secret` (an empty parameter is an absent one).
    #[schema(min_length = 1)]
    pub client_id: Option<String>,
    #[schema(min_length = 1)]
    pub client_secret: Option<String>,
}

/// The login and consent forms of `POST /api/2/idp/authorize`: the
/// authorization request's parameters again, the browser's `form_token`,
/// and the step's own fields.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"response_type": "code", "client_id": "01a23abd-0588-7003-82b3-bf23c84c8f39", "redirect_uri": "https://app.example/callback", "scope": "openid email", "state": "af0ifjsldkj", "nonce": "n-0S6_WzA2Mj", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256", "form_token": "…", "action": "login", "username": "bob", "password": "…"})))]
pub struct SignInForm {
    #[schema(pattern = "^code$")]
    pub response_type: String,
    #[schema(format = Uuid)]
    pub client_id: String,
    /// Exactly one of the client's `redirect_uris`.
    #[schema(min_length = 1, max_length = 2000)]
    pub redirect_uri: String,
    /// Space-separated: `openid`, `profile`, `email`, `offline_access`.
    pub scope: Option<String>,
    #[schema(min_length = 1, max_length = 1024)]
    pub state: String,
    #[schema(max_length = 255)]
    pub nonce: Option<String>,
    /// The S256 challenge (RFC 7636): 43 base64url characters.
    #[schema(pattern = "^[A-Za-z0-9_-]{43}$")]
    pub code_challenge: String,
    #[schema(pattern = "^S256$")]
    pub code_challenge_method: String,
    pub max_age: Option<u32>,
    /// From the page: binds the form to the browser's cookie.
    pub form_token: String,
    /// `login` (the first step), `otp` (the second, with MFA) or
    /// `consent`.
    #[schema(pattern = "^(login|otp|consent)$")]
    pub action: String,
    /// For `login`.
    pub username: Option<String>,
    /// For `login`.
    pub password: Option<String>,
    /// For `otp`: from the second step's page.
    pub ticket: Option<String>,
    /// For `otp`: a current TOTP code or an unused recovery code.
    pub otp: Option<String>,
    /// For `consent`: `allow`; anything else denies.
    pub decision: Option<String>,
}

/// `POST /api/2/idp/password-reset`: the account's login or e-mail.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"login": "bob@acme.test"})))]
pub struct PasswordResetRequest {
    #[schema(value_type = String, required = true, min_length = 1, max_length = 320)]
    #[serde(default, deserialize_with = "schema::present")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<String>,
}

/// The form of `POST /api/2/idp/forgot-password`: the page's form token
/// and the account's login or e-mail.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(examples(json!({"form_token": "…", "login": "bob@acme.test"})))]
pub struct ForgotPasswordForm {
    /// From the page: binds the form to the browser's cookie.
    pub form_token: String,
    #[schema(min_length = 1, max_length = 320)]
    pub login: String,
}

/// The form of `POST /api/2/idp/activate` and `/api/2/idp/reset`: the
/// link's token and the new password, twice.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"token": "…", "form_token": "…", "username": "bob", "password": "a-new-password", "password_confirmation": "a-new-password"})))]
pub struct PasswordLinkForm {
    pub token: String,
    /// From the page: binds the form to the browser's cookie.
    pub form_token: String,
    /// Ignored (for password managers).
    pub username: Option<String>,
    pub password: String,
    pub password_confirmation: String,
}

/// The form of `POST /api/2/idp/logout`: RP-initiated logout's
/// parameters, or the confirmation page's `form_token`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"id_token_hint": "eyJ…", "post_logout_redirect_uri": "https://app.example/signed-out", "state": "bye"})))]
#[serde(deny_unknown_fields)]
pub struct LogoutForm {
    /// An id token the server issued (expired ones too): which client's
    /// `post_logout_redirect_uris` apply, and no confirmation asked.
    pub id_token_hint: Option<String>,
    /// Read and ignored: the browser's session is the one that ends.
    pub logout_hint: Option<String>,
    /// Which client's `post_logout_redirect_uris` apply, without a hint.
    pub client_id: Option<String>,
    /// One of the client's registered `post_logout_redirect_uris`.
    pub post_logout_redirect_uri: Option<String>,
    /// Given back with the redirect.
    pub state: Option<String>,
    /// Read and ignored: the pages are in English.
    pub ui_locales: Option<String>,
    /// The confirmation page's token.
    pub form_token: Option<String>,
}

/// The form of `POST /api/2/idp/revoke` and `/api/2/idp/introspect`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[schema(examples(json!({"token": "nph_rt_…", "token_type_hint": "refresh_token", "client_id": "01a23abd-0588-7003-82b3-bf23c84c8f39", "client_secret": "nph_sec_…"})))]
pub struct TokenHintForm {
    #[schema(min_length = 1)]
    pub token: String,
    /// `access_token` or `refresh_token`.
    pub token_type_hint: Option<String>,
    /// With `client_secret` (an empty parameter is an absent one).
    #[schema(min_length = 1)]
    pub client_id: Option<String>,
    #[schema(min_length = 1)]
    pub client_secret: Option<String>,
}
