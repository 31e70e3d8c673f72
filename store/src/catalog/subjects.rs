//! Subjects (identity data + flags) and their biometric templates.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use time::OffsetDateTime;

use super::Catalog;
use super::crypto::FieldCipher;
use super::db::{Conn, Db, Precise, is_unique_violation};
use crate::clock::now_rfc3339;
use crate::error::{Result, StoreError};
use crate::model::Modality;

/// Operational flags that travel with an identification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
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
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// A template to store with a subject.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    /// Face or finger.
    pub modality: Modality,
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
#[derive(Debug, Clone, sqlx::FromRow)]
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

/// A subject row as stored: personal fields still sealed.
#[derive(sqlx::FromRow)]
struct SubjectRow {
    id: i64,
    external_id: String,
    surname: String,
    given_name: String,
    patronymic: String,
    date_of_birth: String,
    address: String,
    #[sqlx(flatten)]
    flags: Flags,
    #[sqlx(try_from = "Precise")]
    created_at: OffsetDateTime,
}

impl SubjectRow {
    /// Opens the personal fields.
    fn open(self, cipher: &FieldCipher) -> Result<Subject> {
        let field = |c: &str, v: &str| cipher.open(&field_aad(&self.external_id, c), v);
        Ok(Subject {
            id: self.id,
            data: NewSubject {
                surname: field("surname", &self.surname)?,
                given_name: field("given_name", &self.given_name)?,
                patronymic: field("patronymic", &self.patronymic)?,
                date_of_birth: field("date_of_birth", &self.date_of_birth)?,
                address: field("address", &self.address)?,
                flags: self.flags,
                external_id: self.external_id,
            },
            created_at: self.created_at,
        })
    }
}

/// Inserts one subject row; returns its id. An existing `external_id` is a conflict.
async fn insert_subject(conn: &mut Conn, cipher: &FieldCipher, s: &NewSubject, now: OffsetDateTime) -> Result<i64> {
    if s.external_id.trim().is_empty() || s.surname.trim().is_empty() || s.given_name.trim().is_empty() {
        return Err(StoreError::Invalid("external id, surname and given name are required".into()));
    }
    let f = &s.flags;
    let seal = |c: &str, v: &str| cipher.seal(&field_aad(&s.external_id, c), v);
    let res = sqlx::query_scalar(
        "INSERT INTO subjects (external_id, surname, given_name, patronymic, date_of_birth, address, \
         convicted, wanted, missing, preventive_supervision, probation_supervision, administrative_supervision, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
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
    .bind(Precise(now))
    .fetch_one(&mut *conn)
    .await;
    match res {
        Ok(id) => Ok(id),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict(format!("subject {}", s.external_id))),
        Err(e) => Err(e.into()),
    }
}

/// Most ids bound in one `IN (...)` list (SQLite allows 32766 variables per statement).
const IDS_PER_QUERY: usize = 1000;

/// Subjects with these row ids (sealed), in one query per [`IDS_PER_QUERY`] ids.
async fn rows_by_ids(conn: &mut Conn, ids: &[i64]) -> Result<Vec<SubjectRow>> {
    let mut rows = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_QUERY) {
        let mut b: QueryBuilder<Db> =
            QueryBuilder::new(format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE id IN ("));
        let mut list = b.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        b.push(")");
        rows.extend(b.build_query_as::<SubjectRow>().fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

impl Catalog {
    /// Enrols a subject with its templates in one transaction: either all rows are written
    /// or none. An existing `external_id` is a conflict (nothing is overwritten).
    pub async fn enroll(&self, s: &NewSubject, templates: &[NewTemplate]) -> Result<(i64, Vec<i64>)> {
        let mut tx = self.begin().await?;
        let now = OffsetDateTime::now_utc();
        let subject_id = insert_subject(&mut tx, &self.cipher, s, now).await?;
        let ids = insert_templates(&mut tx, subject_id, templates, now).await?;
        tx.commit().await?;
        Ok((subject_id, ids))
    }

    /// Enrols many subjects in one transaction (bulk loads such as synthetic benchmark
    /// galleries): all or none.
    pub async fn enroll_many(&self, batch: &[(NewSubject, Vec<NewTemplate>)]) -> Result<usize> {
        let mut tx = self.begin().await?;
        let now = OffsetDateTime::now_utc();
        for (s, templates) in batch {
            let subject_id = insert_subject(&mut tx, &self.cipher, s, now).await?;
            insert_templates(&mut tx, subject_id, templates, now).await?;
        }
        tx.commit().await?;
        Ok(batch.len())
    }

    /// Adds templates to an existing subject (one transaction).
    pub async fn add_templates(&self, subject_id: i64, templates: &[NewTemplate]) -> Result<Vec<i64>> {
        let mut tx = self.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM subjects WHERE id = ?")
            .bind(subject_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("subject {subject_id}")));
        }
        let ids = insert_templates(&mut tx, subject_id, templates, OffsetDateTime::now_utc()).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// A subject by row id.
    pub async fn subject(&self, id: i64) -> Result<Subject> {
        let row: SubjectRow = sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut *self.acquire().await?)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("subject {id}")))?;
        row.open(&self.cipher)
    }

    /// The subjects with these row ids, read in one query (for up to a thousand ids), in
    /// the order of `ids`; ids with no subject are simply absent, and a repeated id is
    /// returned once. Personal fields are decrypted as by [`Catalog::subject`].
    pub async fn subjects_by_ids(&self, ids: &[i64]) -> Result<Vec<Subject>> {
        let mut wanted: Vec<i64> = Vec::with_capacity(ids.len());
        for id in ids {
            if !wanted.contains(id) {
                wanted.push(*id);
            }
        }
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let rows = rows_by_ids(&mut *self.acquire().await?, &wanted).await?;
        let mut by_id: HashMap<i64, SubjectRow> = rows.into_iter().map(|r| (r.id, r)).collect();
        wanted.iter().filter_map(|id| by_id.remove(id)).map(|r| r.open(&self.cipher)).collect()
    }

    /// A subject by external id.
    pub async fn subject_by_external_id(&self, external_id: &str) -> Result<Subject> {
        let row: SubjectRow = sqlx::query_as(&format!("SELECT {SUBJECT_COLUMNS} FROM subjects WHERE external_id = ?"))
            .bind(external_id)
            .fetch_optional(&mut *self.acquire().await?)
            .await?
            .ok_or_else(|| StoreError::NotFound("subject".into()))?;
        row.open(&self.cipher)
    }

    /// Replaces a subject's flags; returns its row id and the flags before.
    pub async fn set_flags(&self, external_id: &str, flags: &Flags) -> Result<(i64, Flags)> {
        #[derive(sqlx::FromRow)]
        struct Before {
            id: i64,
            #[sqlx(flatten)]
            flags: Flags,
        }
        let mut tx = self.begin().await?;
        let Before { id, flags: old } = sqlx::query_as(
            "SELECT id, convicted, wanted, missing, preventive_supervision, probation_supervision, \
             administrative_supervision FROM subjects WHERE external_id = ?",
        )
        .bind(external_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| StoreError::NotFound("subject".into()))?;
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
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar("SELECT id FROM subjects WHERE external_id = ?")
            .bind(external_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| StoreError::NotFound("subject".into()))?;
        let templates: Vec<(i64, Modality)> =
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
        let mut conn = self.acquire().await?;
        let s: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subjects").fetch_one(&mut *conn).await?;
        let t: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM templates").fetch_one(&mut *conn).await?;
        Ok((s, t))
    }

    /// (template id, subject id) of every template of one modality and model, by id:
    /// what a persisted index is checked against at start, without reading the templates.
    pub async fn template_owners(&self, modality: Modality, model: &str) -> Result<Vec<(i64, i64)>> {
        Ok(sqlx::query_as("SELECT id, subject_id FROM templates WHERE modality = ? AND model = ? ORDER BY id")
            .bind(modality)
            .bind(model)
            .fetch_all(&mut *self.acquire().await?)
            .await?)
    }

    /// Every template of one modality and model (to build the in-memory index at start).
    pub async fn templates(&self, modality: Modality, model: &str) -> Result<Vec<TemplateRow>> {
        Ok(sqlx::query_as(
            "SELECT id, subject_id, position, data FROM templates WHERE modality = ? AND model = ? ORDER BY id",
        )
        .bind(modality)
        .bind(model)
        .fetch_all(&mut *self.acquire().await?)
        .await?)
    }
}

async fn insert_templates(
    conn: &mut Conn,
    subject_id: i64,
    templates: &[NewTemplate],
    now: OffsetDateTime,
) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(templates.len());
    for t in templates {
        let res = sqlx::query_scalar(
            "INSERT INTO templates (subject_id, modality, model, position, quality, data, source_sha256, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(subject_id)
        .bind(t.modality)
        .bind(&t.model)
        .bind(t.position)
        .bind(t.quality)
        .bind(&t.data)
        .bind(&t.source_sha256)
        .bind(Precise(now))
        .fetch_one(&mut *conn)
        .await;
        match res {
            Ok(id) => ids.push(id),
            Err(e) if is_unique_violation(&e) => {
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
    pub templates: Vec<(i64, Modality)>,
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
        let rows: Vec<SubjectRow> = sqlx::query_as(&format!(
            "SELECT {SUBJECT_COLUMNS} FROM subjects WHERE surname NOT LIKE '{}%'",
            super::crypto::PREFIX
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut tx = self.begin().await?;
        for r in &rows {
            let (id, external_id) = (r.id, &r.external_id);
            let values = [&r.surname, &r.given_name, &r.patronymic, &r.date_of_birth, &r.address];
            for (c, v) in PERSONAL_COLUMNS.into_iter().zip(values) {
                if v.starts_with(super::crypto::PREFIX) {
                    continue;
                }
                let sealed = self.cipher.seal(&field_aad(external_id, c), v)?;
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
        // (SQLite-specific maintenance statements)
        sqlx::query("VACUUM").execute(&self.pool).await?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await?;
        tracing::info!(rows = rows.len(), "encrypted personal fields of legacy subject rows");
        Ok(rows.len() as u64)
    }
}
