//! The database the catalog runs on, named once, and the column encodings every
//! repository shares.
//!
//! Repository functions take `&mut `[`Conn`] (a pooled connection or an open
//! transaction), so callers compose several of them in one transaction. A second backend
//! changes these aliases (or adds a module beside this one); the repositories name no
//! driver type of their own. Column encodings here are written generically over the
//! database, in terms of its `TEXT` type.
//!
//! Timestamps are stored as text in one of two formats (see [`crate::clock`]); the
//! wrappers below encode and decode [`OffsetDateTime`] in exactly those formats, so rows
//! written before these types existed read back unchanged and SQL string order stays time
//! order.

use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::{Database, Decode, Encode, Type, ValueRef};
use time::OffsetDateTime;

use crate::clock::{fmt_rfc3339, fmt_ts, parse_ts};

/// The catalog's database.
pub type Db = sqlx::Sqlite;
/// A connection to it; a `&mut Tx` derefs to one.
pub type Conn = sqlx::SqliteConnection;
/// The connection pool.
pub type Pool = sqlx::Pool<Db>;
/// A connection taken from the pool.
pub type PoolConn = sqlx::pool::PoolConnection<Db>;
/// An open transaction (commits on `commit()`, rolls back when dropped).
pub type Tx = sqlx::Transaction<'static, Db>;

/// Whether `e` is a UNIQUE (or primary key) violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Implements `Type` as the database's text type.
macro_rules! text_type {
    ($($t:ty),*) => {$(
        impl<DB: Database> Type<DB> for $t
        where
            String: Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as Type<DB>>::compatible(ty)
            }
        }
    )*};
}

/// A timestamp column in the fixed-width `YYYY-MM-DDTHH:MM:SSZ` format ([`fmt_ts`]):
/// evidence, incidents, cases, holds, uploads and the ingest journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Fixed(pub OffsetDateTime);

/// A nullable [`Fixed`] column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedOpt(pub Option<OffsetDateTime>);

/// A timestamp column in RFC 3339 with sub-second digits ([`fmt_rfc3339`]): subjects,
/// templates, accounts, devices, audit rows and outbox events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Precise(pub OffsetDateTime);

/// A JSON document stored as text; text that does not parse reads as `null`.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonText(pub serde_json::Value);

/// A JSON document stored as text; text that does not parse reads as a JSON string of it.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonOrText(pub serde_json::Value);

text_type!(Fixed, FixedOpt, Precise, JsonText, JsonOrText);

impl<'q, DB: Database> Encode<'q, DB> for Fixed
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        fmt_ts(self.0).encode(buf)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for Precise
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        fmt_rfc3339(self.0).encode(buf)
    }
}

impl<'q, DB: Database> Encode<'q, DB> for JsonText
where
    String: Encode<'q, DB>,
{
    fn encode_by_ref(&self, buf: &mut <DB as Database>::ArgumentBuffer<'q>) -> Result<IsNull, BoxDynError> {
        self.0.to_string().encode(buf)
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Fixed
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Fixed(parse_ts(<&str as Decode<DB>>::decode(value)?)?))
    }
}

impl<'r, DB: Database> Decode<'r, DB> for FixedOpt
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        if value.is_null() {
            return Ok(FixedOpt(None));
        }
        Ok(FixedOpt(Some(parse_ts(<&str as Decode<DB>>::decode(value)?)?)))
    }
}

impl<'r, DB: Database> Decode<'r, DB> for Precise
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        Ok(Precise(parse_ts(<&str as Decode<DB>>::decode(value)?)?))
    }
}

impl<'r, DB: Database> Decode<'r, DB> for JsonText
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        Ok(JsonText(serde_json::from_str(text).unwrap_or(serde_json::Value::Null)))
    }
}

impl<'r, DB: Database> Decode<'r, DB> for JsonOrText
where
    &'r str: Decode<'r, DB>,
{
    fn decode(value: <DB as Database>::ValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<DB>>::decode(value)?;
        Ok(JsonOrText(serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.into()))))
    }
}

impl From<Fixed> for OffsetDateTime {
    fn from(t: Fixed) -> Self {
        t.0
    }
}

impl From<FixedOpt> for Option<OffsetDateTime> {
    fn from(t: FixedOpt) -> Self {
        t.0
    }
}

impl From<Precise> for OffsetDateTime {
    fn from(t: Precise) -> Self {
        t.0
    }
}

impl From<JsonText> for serde_json::Value {
    fn from(j: JsonText) -> Self {
        j.0
    }
}

impl From<JsonOrText> for serde_json::Value {
    fn from(j: JsonOrText) -> Self {
        j.0
    }
}
