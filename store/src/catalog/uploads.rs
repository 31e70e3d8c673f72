//! Resumable uploads: the upload row (declared length and digest, owner, state) and one
//! row per stored part with its BLAKE3 chaining value.

use time::OffsetDateTime;

use super::db::{Conn, Fixed};
use crate::error::Result;
use crate::model::UploadState;

/// One upload.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UploadRow {
    /// Upload id (random hex).
    pub id: String,
    /// Part size in bytes (all parts but the last).
    pub part_size: i64,
    /// Total length declared at the start.
    pub declared_len: i64,
    /// BLAKE3 declared at the start, if any (hex).
    pub declared_digest: Option<String>,
    /// When it was started.
    #[sqlx(try_from = "Fixed")]
    pub created_at: OffsetDateTime,
    /// Where it stands.
    pub state: UploadState,
    /// Who started it.
    pub owner: String,
}

/// Stores a new open upload (`state` ignored).
pub async fn insert(conn: &mut Conn, u: &UploadRow) -> Result<()> {
    sqlx::query(
        "INSERT INTO uploads (id, part_size, declared_len, declared_digest, created_at, owner) \
         VALUES (?, ?, ?, ?, ?, ?)",
    )
    .bind(&u.id)
    .bind(u.part_size)
    .bind(u.declared_len)
    .bind(&u.declared_digest)
    .bind(Fixed(u.created_at))
    .bind(&u.owner)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The upload `id`, if any.
pub async fn get(conn: &mut Conn, id: &str) -> Result<Option<UploadRow>> {
    Ok(sqlx::query_as("SELECT * FROM uploads WHERE id = ?").bind(id).fetch_optional(&mut *conn).await?)
}

/// Sets the upload's state.
pub async fn set_state(conn: &mut Conn, id: &str, state: UploadState) -> Result<()> {
    sqlx::query("UPDATE uploads SET state = ? WHERE id = ?").bind(state).bind(id).execute(&mut *conn).await?;
    Ok(())
}

/// Indices of the parts stored so far, ascending.
pub async fn received_parts(conn: &mut Conn, id: &str) -> Result<Vec<i64>> {
    Ok(sqlx::query_scalar("SELECT idx FROM upload_parts WHERE upload_id = ? ORDER BY idx")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?)
}

/// Records part `idx` (`len` bytes, chaining value `cv` in hex); a part sent again
/// replaces the earlier one.
pub async fn put_part(conn: &mut Conn, id: &str, idx: i64, len: i64, cv: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO upload_parts (upload_id, idx, len, cv) VALUES (?, ?, ?, ?) \
         ON CONFLICT (upload_id, idx) DO UPDATE SET len = excluded.len, cv = excluded.cv",
    )
    .bind(id)
    .bind(idx)
    .bind(len)
    .bind(cv)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The parts' chaining values (hex) in part order.
pub async fn part_cvs(conn: &mut Conn, id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar("SELECT cv FROM upload_parts WHERE upload_id = ? ORDER BY idx")
        .bind(id)
        .fetch_all(&mut *conn)
        .await?)
}
