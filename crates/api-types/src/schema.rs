//! The schemas of the strings the server parses, each one component that
//! every field of its kind refers to, saying exactly what the parser
//! (`nephele_common::names`, the notary's) accepts: a generated client or
//! a fuzzer that keeps to the schema is never refused for the form of one,
//! and one that breaks it always is.
//!
//! Patterns are written for both ECMA-262 and Python's `re` (what
//! validators and schemathesis use): `\uXXXX` escapes, no look-arounds.
//! They cover the Basic Multilingual Plane; the few invisible characters
//! above it (the tag characters U+E0001, U+E0020–U+E007F) are named in the
//! descriptions and refused by the server.

use serde::Deserializer;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Control characters and the invisible format characters of
/// `nephele_common::names::is_hidden`, as a character-class body.
const HIDDEN: &str = r"\u0000-\u001F\u007F-\u009F\u00AD\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFB";
/// The white space (Unicode `White_Space`) that is not a control character.
const SPACE: &str = r"\u0020\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";

/// [`Name`]'s pattern (its length is `minLength`/`maxLength`).
pub fn name_pattern() -> String {
    format!("^[^{HIDDEN}{SPACE}](?:[^{HIDDEN}]*[^{HIDDEN}{SPACE}])?$")
}

/// [`FileName`]'s pattern.
pub fn file_name_pattern() -> String {
    format!("^[^{HIDDEN}]*[^{HIDDEN}{SPACE}][^{HIDDEN}]*$")
}

fn string(description: &str, min: usize, max: usize, pattern: String) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .into()
}

/// A display name: organizations, roles, instances, images, API keys,
/// clients, data centers.
pub struct Name;

impl PartialSchema for Name {
    fn schema() -> RefOr<Schema> {
        string(
            "A name: 1–100 characters, without control or invisible formatting characters \
             (nor the tag characters U+E0001, U+E0020–U+E007F), not beginning or ending \
             with white space.",
            1,
            nephele_common::names::Name::MAX,
            name_pattern(),
        )
    }
}

impl ToSchema for Name {}

/// A login, as typed (it is stored lower-case).
pub struct Login;

impl PartialSchema for Login {
    fn schema() -> RefOr<Schema> {
        string(
            "A login: 1–64 letters, digits and `. _ - @`; case does not matter.",
            1,
            nephele_common::names::Login::MAX,
            "^[A-Za-z0-9._@-]+$".to_owned(),
        )
    }
}

impl ToSchema for Login {}

/// A stored file's name.
pub struct FileName;

impl PartialSchema for FileName {
    fn schema() -> RefOr<Schema> {
        string(
            "A file name: 1–255 characters, not all white space, without control or \
             invisible formatting characters (nor the tag characters U+E0001, \
             U+E0020–U+E007F).",
            1,
            nephele_common::names::FILE_NAME_MAX,
            file_name_pattern(),
        )
    }
}

impl ToSchema for FileName {}

/// A SHA-256 digest in hexadecimal.
pub struct Sha256;

impl PartialSchema for Sha256 {
    fn schema() -> RefOr<Schema> {
        string(
            "A SHA-256 digest: 64 hexadecimal digits.",
            64,
            64,
            "^[0-9A-Fa-f]{64}$".to_owned(),
        )
    }
}

impl ToSchema for Sha256 {}

/// A data center's `serverUrl`.
pub struct HttpUrl;

impl PartialSchema for HttpUrl {
    fn schema() -> RefOr<Schema> {
        string(
            "An absolute `http://` or `https://` URL of a host name or dotted IPv4 address, \
             with an optional port and path, without a query or fragment (a trailing `/` \
             is dropped).",
            1,
            nephele_common::names::HTTP_URL_MAX,
            nephele_common::names::HTTP_URL.to_owned(),
        )
    }
}

impl ToSchema for HttpUrl {}

/// A client's redirect URI.
pub struct RedirectUri;

impl PartialSchema for RedirectUri {
    fn schema() -> RefOr<Schema> {
        string(
            "An absolute `https://` URI of a host name or dotted IPv4 address, or `http://` \
             on a loopback address (`127.0.0.1`, `[::1]`, `localhost`; any port, RFC 8252 \
             §7.3), with an optional port, path and query; no fragment, credentials or \
             wildcard. Matched exactly.",
            1,
            nephele_common::names::REDIRECT_URI_MAX,
            nephele_common::names::REDIRECT_URI.to_owned(),
        )
    }
}

impl ToSchema for RedirectUri {}

/// A task's status as the API shows it (a running task is `PENDING`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "UPPERCASE")]
pub enum TaskStatus {
    Pending,
    Success,
    Failed,
}

/// An instance's state (SPEC §6).
#[derive(utoipa::ToSchema)]
pub enum InstanceState {
    Provisioning,
    Stopped,
    Starting,
    Running,
    Stopping,
    Rebooting,
    Deleting,
    Error,
}

/// A `resource:action` permission.
pub struct Permission;

impl PartialSchema for Permission {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A `resource:action` permission."))
            .enum_values(Some(
                nephele_auth::Permission::ALL.map(nephele_auth::Permission::as_str),
            ))
            .into()
    }
}

impl ToSchema for Permission {}

/// How an API client authenticates at the token endpoint.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    ClientSecretBasic,
    ClientSecretPost,
    None,
}

/// The grants of the token endpoint.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    Password,
    ClientCredentials,
    RefreshToken,
}

/// Whether a client may get tokens.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ClientStatus {
    Enabled,
    Disabled,
}

/// Whether a user may sign in: `invited` users have not set a password
/// yet.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum UserStatus {
    Enabled,
    Disabled,
    Invited,
}

/// Whether an organization's principals (and those below it) may act.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum OrganizationStatus {
    Active,
    Suspended,
}

/// The kind of an OAuth2 client: there is one.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ClientType {
    ApiClient,
}

/// An optional field whose schema does not admit `null`: absent is
/// `None` (with `#[serde(default)]`), `null` is refused like any other
/// wrong type. (serde reads `null` into an `Option` as absent, which
/// would let a merge patch's "remove this" pass as "leave it".)
pub fn present<'de, D: Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A secret a client sends (a new user's password) goes on the wire as
/// itself. `Secret` has no `Serialize` of its own, so no answer can carry
/// one by accident.
pub fn secret_as_text<S: serde::Serializer>(
    secret: &Option<nephele_common::Secret>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => s.serialize_str(secret.expose()),
        None => s.serialize_none(),
    }
}

/// JSON Schema's `integer` is any number without a fraction, `7262.0` as
/// much as `7262`; serde's `i64` refuses the first. Integer fields of
/// request bodies read through this, so that the server takes what its
/// schema says (XML's digits arrive through `deserialize_i64` too).
pub fn whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    struct Maybe;
    impl<'de> serde::de::Visitor<'de> for Maybe {
        type Value = Option<i64>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a whole number or null")
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<i64>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<i64>, D::Error> {
            d.deserialize_i64(Whole).map(Some)
        }
    }
    d.deserialize_option(Maybe)
}

/// [`whole_number`] for a field whose schema does not admit `null` (see
/// [`present`]).
pub fn present_whole_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    d.deserialize_i64(Whole).map(Some)
}

struct Whole;
impl serde::de::Visitor<'_> for Whole {
    type Value = i64;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number")
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        // Below 2^63 in magnitude, where `as` is exact for whole values.
        if v.fract() == 0.0 && v.abs() < 9_223_372_036_854_775_808.0 {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Body {
        #[serde(default, deserialize_with = "whole_number")]
        n: Option<i64>,
    }

    fn n(json: &str) -> Result<Option<i64>, String> {
        serde_json::from_str::<Body>(json)
            .map(|b| b.n)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_whole_number_may_be_written_with_a_fraction_of_zero() {
        assert_eq!(n(r#"{"n": 7262}"#), Ok(Some(7262)));
        assert_eq!(n(r#"{"n": 7262.0}"#), Ok(Some(7262)));
        assert_eq!(n(r#"{"n": -3e2}"#), Ok(Some(-300)));
        assert_eq!(n(r#"{"n": null}"#), Ok(None));
        assert_eq!(n("{}"), Ok(None));
        assert!(n(r#"{"n": 1.5}"#).unwrap_err().contains("a whole number"));
        assert!(n(r#"{"n": 1e300}"#).is_err());
        assert!(n(r#"{"n": 18446744073709551615}"#).is_err());
        assert!(n(r#"{"n": "5"}"#).is_err());
    }

    #[derive(serde::Deserialize, Debug)]
    struct Patch {
        #[serde(default, deserialize_with = "present")]
        name: Option<String>,
        #[serde(default, deserialize_with = "present_whole_number")]
        cpu: Option<i64>,
    }

    #[test]
    fn a_field_that_is_not_nullable_refuses_null() {
        let patch = |json: &str| serde_json::from_str::<Patch>(json).map(|p| (p.name, p.cpu));
        assert_eq!(patch("{}").unwrap(), (None, None));
        assert_eq!(
            patch(r#"{"name":"a","cpu":2.0}"#).unwrap(),
            (Some("a".into()), Some(2))
        );
        assert!(patch(r#"{"name":null}"#).is_err());
        assert!(patch(r#"{"cpu":null}"#).is_err());
    }
}
