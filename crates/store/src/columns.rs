//! Column values as the database holds them, made into the domain's
//! types as diesel reads a row: ids and names are text, times are
//! microseconds since the epoch. A model field says which with
//! `#[diesel(deserialize_as = …)]`.

use chrono::{DateTime, Utc};
use diesel::backend::Backend;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::sql_types::{BigInt, Nullable, Text};
use nephele_common::clock::from_micros;
use std::str::FromStr;

/// Text parsed as `T` (an id, a name).
#[derive(Debug, FromSqlRow)]
pub struct Parsed<T>(pub T);

/// Nullable text parsed as `T`.
#[derive(Debug, FromSqlRow)]
pub struct MaybeParsed<T>(pub Option<T>);

/// An integer flag (0 or 1), as a boolean.
#[derive(Debug, FromSqlRow)]
pub struct Flag(pub bool);

impl<DB: Backend> FromSql<BigInt, DB> for Flag
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Flag(i64::from_sql(bytes)? != 0))
    }
}

impl From<Flag> for bool {
    fn from(value: Flag) -> Self {
        value.0
    }
}

/// Microseconds since the epoch, as a time.
#[derive(Debug, FromSqlRow)]
pub struct Micros(pub DateTime<Utc>);

/// Nullable microseconds since the epoch, as a time.
#[derive(Debug, FromSqlRow)]
pub struct MaybeMicros(pub Option<DateTime<Utc>>);

fn parse<T: FromStr>(text: String) -> deserialize::Result<T> {
    text.parse()
        .map_err(|_| format!("corrupt value in database: {text:?}").into())
}

impl<T: FromStr, DB: Backend> FromSql<Text, DB> for Parsed<T>
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        parse(String::from_sql(bytes)?).map(Parsed)
    }
}

impl<T: FromStr, DB: Backend> FromSql<Nullable<Text>, DB> for MaybeParsed<T>
where
    String: FromSql<Text, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        parse(String::from_sql(bytes)?).map(|v| MaybeParsed(Some(v)))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match bytes {
            Some(bytes) => Self::from_sql(bytes),
            None => Ok(MaybeParsed(None)),
        }
    }
}

impl<DB: Backend> FromSql<BigInt, DB> for Micros
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(Micros(from_micros(i64::from_sql(bytes)?)))
    }
}

impl<DB: Backend> FromSql<Nullable<BigInt>, DB> for MaybeMicros
where
    i64: FromSql<BigInt, DB>,
{
    fn from_sql(bytes: DB::RawValue<'_>) -> deserialize::Result<Self> {
        Ok(MaybeMicros(Some(from_micros(i64::from_sql(bytes)?))))
    }

    fn from_nullable_sql(bytes: Option<DB::RawValue<'_>>) -> deserialize::Result<Self> {
        match bytes {
            Some(bytes) => Self::from_sql(bytes),
            None => Ok(MaybeMicros(None)),
        }
    }
}

impl From<Micros> for DateTime<Utc> {
    fn from(value: Micros) -> Self {
        value.0
    }
}

impl From<MaybeMicros> for Option<DateTime<Utc>> {
    fn from(value: MaybeMicros) -> Self {
        value.0
    }
}

/// The conversions of parsed text into each type a model holds.
macro_rules! parsed {
    ($($ty:ty),* $(,)?) => {$(
        impl From<Parsed<$ty>> for $ty {
            fn from(value: Parsed<$ty>) -> Self {
                value.0
            }
        }
        impl From<MaybeParsed<$ty>> for Option<$ty> {
            fn from(value: MaybeParsed<$ty>) -> Self {
                value.0
            }
        }
    )*};
}

use nephele_common::ids::*;
parsed!(
    ApiKeyId,
    AuditEventId,
    ClientId,
    DatacenterId,
    OrganizationId,
    RefreshTokenId,
    RoleId,
    SigningKeyId,
    UserId,
    TaskId,
    InstanceId,
    NodeId,
    StoredFileId,
    SsoSessionId,
    nephele_common::names::Name,
    nephele_common::names::Login,
    nephele_common::names::Email,
    crate::tasks::TaskStatus,
    nephele_common::status::UserStatus,
    nephele_common::status::OrganizationStatus,
    crate::instances::InstanceState,
    crate::mfa::TotpState,
);
