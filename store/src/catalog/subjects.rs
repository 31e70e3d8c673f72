//! Subjects (identity data + flags) and their biometric templates.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::crypto::FieldCipher;
use super::{Catalog, now_rfc3339};
use crate::error::{Result, StoreError};

/// Operational flags that travel with an identification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default, deny_unknown_fields)]
pub struct Flags {
    /// Has a criminal conviction.
    pub convicted: bool,
    /// Wanted: escort to the station.
    pub wanted: bool,
    /// Reported missing: escort to the station.
    pub missing: bool,
    /// Under preventive supervision.
    pub preventive_supervision: bool,
    /// Under probation supervision.
    pub probation_supervision: bool,
    /// Under administrative supervision.
    pub administrative_supervision: bool,
}

impl Flags {
    /// Wanted and missing people are escorted to the station (MISSION.md).
    pub fn escort_required(&self) -> bool {
        self.wanted || self.missing
    }
}

/// Identity data for a new subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewSubject {
    /// Caller-chosen unique id (e.g. a registry number).
    pub external_id: String,
    /// Family name.
    pub surname: String,
    /// Given name.
    pub given_name: String,
    /// Patronymic (may be empty).
    pub patronymic: String,
    /// Date of birth, ISO 8601 (may be empty).
    pub date_of_birth: String,
    /// Registered address (may be empty).
    pub address: String,
    /// Flags.
    pub flags: Flags,
}

/// A stored subject.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subject {
    /// Catalog row id.
    pub id: i64,
    /// Identity data and flags.
    #[serde(flatten)]
    pub data: NewSubject,
    /// When enrolled (RFC 3339).
    pub created_at: String,
}

/// A template to store with a subject.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// `face` or `finger`.
    pub modality: String,
    /// Model that produced it (manifest name).
    pub model: String,
    /// Finger position for fingerprints.
    pub position: Option<i64>,
    /// Quality score of the source image.
    pub quality: f64,
    /// Encoded template (for faces: little-endian f32 embedding).
    pub data: Vec<u8>,
    /// sha256 of the source image.
    pub source_sha256: String,
}

/// A stored template, as loaded to build the search index.
#[derive(Debug, Clone)]
pub struct TemplateRow {
    /// Template row id (the id in the search index).
    pub id: i64,
    /// Owner.
    pub subject_id: i64,
    /// Finger position, if any.
    pub position: Option<i64>,
    /// Encoded template.
    pub data: Vec<u8>,
}

const SUBJECT_COLUMNS: &str = "id, external_id, surname, given_name, patronymic, date_of_birth, address, \
     convicted, wanted, missing, preventive_supervision, probation_supervision, administrative_supervision, created_at";

/// The personal columns of `subjects`, encrypted at rest (see [`super::crypto`]).
pub(crate) const PERSONAL_COLUMNS: [&str; 5] = ["surname", "given_name", "patronymic", "date_of_birth", "address"];

/// Associated data binding an encrypted value to its row and column.
pub(crate) fn field_aad(external_id: &str, column: &str) -> String {
    format!("subjects/{external_id}/{column}")
}

fn subject_from_row(cipher: &FieldCipher, r: &sqlx::sqlite::SqliteRow) -> Result<Subject> {
    let external_id: String = r.try_get("external_id")?;
    let field = |c: &str| -> Result<String> { cipher.open(&field_aad(&external_id, c), &r.try_get::<String, _>(c)?) };
    Ok(Subject {
        id: r.try_get("id")?,
        data: NewSubject {
            surname: field("surname")?,
            given_name: field("given_name")?,
            patronymic: field("patronymic")?,
            date_of_birth: field("date_of_birth")?,
            address: field("address")?,
            external_id,
            flags: Flags {
                convicted: r.try_get("convicted")?,
                wanted: r.try_get("wanted")?,
                missing: r.try_get("missing")?,
                preventive_supervision: r.try_get("preventive_supervision")?,
                probation_supervision: r.try_get("probation_supervision")?,
                administrative_supervision: r.try_get("administrative_supervision")?,
            },
        },
        created_at: r.try_get("created_at")?,
    })
}

/// Inserts one subject row inside `tx`; returns its id. An existing `external_id` is a
/// conflict.
async fn insert_subject(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    cipher: &FieldCipher,
    s: &NewSubject,
    now: &str,
) -> Result<i64> {
    if s.external_id.trim().is_empty() || s.surname.trim().is_empty() || s.given_name.trim().is_empty() {
        return Err(StoreError::Invalid("external id, surname and given name are required".into()));
    }
    let f = &s.flags;
    let seal = |c: &str, v: &str| cipher.seal(&field_aad(&s.external_id, c), v);
    let res = sqlx::query(
            "INSERT INTO subjects (external_id, surname, given_name, patronymic, date_of_birth, address, \
             convicted, wanted, missing, preventive_supervision, probation_supervision, administrative_supervision, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.external_id)
        .bind(seal("surname", &s.surname)?)
        .bind(seal("given_name", &s.given_name)?)
        .bind(seal("patronymic", &s.patronymic)?)
        .bind(seal("date_of_birth", &s.date_of_birth)?)
        .bind(seal("address", &s.address)?)
        .bind(f.convicted)
        .bind(f.wanted)
        .bind(f.missing)
        .bind(f.preventive_supervision)
        .bind(f.probation_supervision)
        .bind(f.administrative_supervision)
        .bind(now)
        .execute(&mut **tx)
        .await;
    match res {
        Ok(r) => Ok(r.last_insert_rowid()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(StoreError::Conflict(format!("subject {}", s.external_id)))
        }
        Err(e) => Err(e.into()),
    }
}

impl Catalog {
    /// Enrols a subject with its templates in one transaction: either all rows are written
    /// or none. An existing `external_id` is a conflict (nothing is overwritten).
    pub async fn enroll(&self, s: &NewSubject, templates: &[NewTemplate]) -> Result<(i64, Vec<i64>)> {
        let mut tx = self.pool.begin().await?;
        let now = now_rfc3339();
        let subject_id = insert_subject(&mut tx, &self.cipher, s, &now).await?;
        let ids = insert_templates(&mut tx, subject_id, templates, &now).await?;
        tx.commit().await?;
        Ok((subject_id, ids))
    }

    /// Enrols many subjects in one transaction (bulk loads such as synthetic benchmark
    /// galleries): all or none.
    pub async fn enroll_many(&self, batch: &[(NewSubject, Vec<NewTemplate>)]) -> Result<usize> {
        let mut tx = self.pool.begin().await?;
        let now = now_rfc3339();
        for (s, templates) in batch {
            let subject_id = insert_subject(&mut tx, &self.cipher, s, &now).await?;
            insert_templates(&mut tx, subject_id, templates, &now).await?;
        }
        tx.commit().await?;
        Ok(batch.len())
    }

    /// Adds templates to an existing subject (one transaction).
    pub async fn add_templates(&self, subject_id: i64, templates: &[NewTemplate]) -> Result<Vec<i64>> {
        let mut tx = self.pool.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM subjects WHERE id = ?")
            .bind(subject_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("subject {subject_id}")));
        }
        let ids = insert_templates(&mut tx, subject_id, templates, &now_rfc3339()).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// A subject by row id.
    pub async fn subject(&self, id: i64) -> Result<Subject> {
        let row = sqlx::query(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("subject {id}")))?;
        subject_from_row(&self.cipher, &row)
    }

    /// A subject by external id.
    pub async fn subject_by_external_id(&self, external_id: &str) -> Result<Subject> {
        let row = sqlx::query(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE external_id = ?"))
            .bind(external_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NotFound("subject".into()))?;
        subject_from_row(&self.cipher, &row)
    }

    /// Replaces a subject's flags; returns its row id and the flags before.
    pub async fn set_flags(&self, external_id: &str, flags: &Flags) -> Result<(i64, Flags)> {
        let mut tx = self.pool.begin().await?;
        let before = sqlx::query(
            "SELECT id, convicted, wanted, missing, preventive_supervision, probation_supervision, \
             administrative_supervision FROM subjects WHERE external_id = ?",
        )
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound("subject".into()))?;
        let id: i64 = before.try_get("id")?;
        let old = Flags {
            convicted: before.try_get("convicted")?,
            wanted: before.try_get("wanted")?,
            missing: before.try_get("missing")?,
            preventive_supervision: before.try_get("preventive_supervision")?,
            probation_supervision: before.try_get("probation_supervision")?,
            administrative_supervision: before.try_get("administrative_supervision")?,
        };
        sqlx::query(
            "UPDATE subjects SET convicted = ?, wanted = ?, missing = ?, preventive_supervision = ?, \
             probation_supervision = ?, administrative_supervision = ? WHERE id = ?",
        )
        .bind(flags.convicted)
        .bind(flags.wanted)
        .bind(flags.missing)
        .bind(flags.preventive_supervision)
        .bind(flags.probation_supervision)
        .bind(flags.administrative_supervision)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, old))
    }

    /// Deletes a subject and all their templates in one transaction (the audit trail
    /// keeps the row id only). `secure_delete` overwrites the freed pages.
    pub async fn delete_subject(&self, external_id: &str) -> Result<DeletedSubject> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM subjects WHERE external_id = ?")
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound("subject".into()))?;
        let templates: Vec<(i64, String)> =
            sqlx::query_as("SELECT id, modality FROM templates WHERE subject_id = ? ORDER BY id")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        // templates go by ON DELETE CASCADE
        sqlx::query("DELETE FROM subjects WHERE id = ?").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(DeletedSubject { id, templates })
    }

    /// Number of subjects and templates.
    pub async fn counts(&self) -> Result<(i64, i64)> {
        let s: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subjects").fetch_one(&self.pool).await?;
        let t: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM templates").fetch_one(&self.pool).await?;
        Ok((s, t))
    }

    /// (template id, subject id) of every template of one modality and model, by id:
    /// what a persisted index is checked against at start, without reading the templates.
    pub async fn template_owners(&self, modality: &str, model: &str) -> Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as("SELECT id, subject_id FROM templates WHERE modality = ? AND model = ? ORDER BY id")
            .bind(modality)
            .bind(model)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Every template of one modality and model (to build the in-memory index at start).
    pub async fn templates(&self, modality: &str, model: &str) -> Result<Vec<TemplateRow>> {
        let rows = sqlx::query(
            "SELECT id, subject_id, position, data FROM templates WHERE modality = ? AND model = ? ORDER BY id",
        )
        .bind(modality)
        .bind(model)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TemplateRow {
                    id: r.try_get("id")?,
                    subject_id: r.try_get("subject_id")?,
                    position: r.try_get("position")?,
                    data: r.try_get("data")?,
                })
            })
            .collect()
    }
}

async fn insert_templates(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    subject_id: i64,
    templates: &[NewTemplate],
    now: &str,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(templates.len());
    for t in templates {
        let res = sqlx::query(
            "INSERT INTO templates (subject_id, modality, model, position, quality, data, source_sha256, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(subject_id)
        .bind(&t.modality)
        .bind(&t.model)
        .bind(t.position)
        .bind(t.quality)
        .bind(&t.data)
        .bind(&t.source_sha256)
        .bind(now)
        .execute(&mut **tx)
        .await;
        match res {
            Ok(r) => ids.push(r.last_insert_rowid()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(StoreError::Conflict("this image is already enrolled for the subject".into()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(ids)
}

/// What [`Catalog::delete_subject`] removed.
#[derive(Debug, Clone)]
pub struct DeletedSubject {
    /// Row id the subject had.
    pub id: i64,
    /// `(template id, modality)` of each template removed with them.
    pub templates: Vec<(i64, String)>,
}

/// `catalog_meta` key set once every subject row is encrypted.
const SUBJECTS_ENCRYPTED: &str = "subjects_encrypted";

impl Catalog {
    /// Encrypts the personal fields of rows written in plain text (catalogs from before
    /// encryption at rest), one transaction. Done once per file: afterwards a
    /// `catalog_meta` row says so and later opens skip the table scan.
    pub(crate) async fn encrypt_legacy_subjects(&self) -> Result<u64> {
        let done: Option<String> = sqlx::query_scalar("SELECT value FROM catalog_meta WHERE key = ?")
            .bind(SUBJECTS_ENCRYPTED)
            .fetch_optional(&self.pool)
            .await?;
        if done.is_some() {
            return Ok(0);
        }
        let rows = sqlx::query(&format!(
            "SELECT id, external_id, {} FROM subjects WHERE surname NOT LIKE '{}%'",
            PERSONAL_COLUMNS.join(", "),
            super::crypto::PREFIX
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut tx = self.pool.begin().await?;
        for r in &rows {
            let id: i64 = r.try_get("id")?;
            let external_id: String = r.try_get("external_id")?;
            for c in PERSONAL_COLUMNS {
                let v: String = r.try_get(c)?;
                if v.starts_with(super::crypto::PREFIX) {
                    continue;
                }
                let sealed = self.cipher.seal(&field_aad(&external_id, c), &v)?;
                sqlx::query(&format!("UPDATE subjects SET {c} = ? WHERE id = ?"))
                    .bind(sealed)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        // all writers encrypt, so once this commits no plain row can appear again
        sqlx::query("INSERT INTO catalog_meta (key, value) VALUES (?, ?)")
            .bind(SUBJECTS_ENCRYPTED)
            .bind(now_rfc3339())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if rows.is_empty() {
            return Ok(0);
        }
        // rebuild the file and empty the WAL, so no page still holds the plain text
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        tracing::info!(rows = rows.len(), "encrypted personal fields of legacy subject rows");
        Ok(rows.len() as u64)
    }
}

impl Catalog {
    /// The subjects among `ids` that exist, in one query (missing ids are absent; the
    /// order is unspecified).
    pub async fn subjects_by_ids(&self, ids: &[i64]) -> Result<Vec<Subject>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE id IN ({})", vec!["?"; ids.len()].join(", "));
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(|r| subject_from_row(&self.cipher, r)).collect()
    }
}
