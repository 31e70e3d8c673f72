//! Evidence access: who may upload footage for whom, who may see which item, and the
//! cases that grant investigators their view. Every read, and every refused read, is
//! audited here with the caller's device; reading footage or a thumbnail is also a
//! `view` entry in the item's custody chain.
//!
//! Supervisors see all footage, investigators only items linked to a case they are
//! assigned to. Patrol officers and docks upload but never read; a patrol officer
//! uploads only their own footage.
//!
//! Each rule is checked once. The upload, search and case routes are gated by role in
//! their handlers, before the request is parsed; reading an item and resuming an upload
//! are gated here, with the per-item rules (case membership, the upload's owner).

use bytes::Bytes;
use futures::stream::BoxStream;

use epatrol_store::StoreError;
use epatrol_store::catalog::{Case, Evidence, EvidenceQuery, Hold, Incident, ThumbnailRow};
use epatrol_store::clock::parse_ts;
use epatrol_store::custody::CustodyEntry;
use epatrol_store::model::Tier;
use epatrol_store::vault::{Declared, Digest, EvidenceVault, IngestRequest, Source, UploadStatus};

use super::accounts::{Principal, Role};
use crate::error::{ApiError, Result};

/// Most rows one search returns.
pub const MAX_SEARCH_ROWS: i64 = 500;
/// Rows a search returns when not told.
pub const DEFAULT_SEARCH_ROWS: i64 = 100;

/// What an uploader declares about a footage file.
#[derive(Debug, Default)]
pub struct Declaration {
    /// Officer the footage belongs to (patrol: themselves, the default; docks: required).
    pub officer: Option<String>,
    /// Camera or device that recorded it.
    pub device: String,
    /// `body_camera`, `dock` or `other_device` (default: `dock` for docks, else
    /// `body_camera`).
    pub source: Option<String>,
    /// Start of recording (RFC 3339), when the file's own metadata should not be trusted.
    pub recorded_from: Option<String>,
    /// Expected BLAKE3 of the file.
    pub digest: Option<Digest>,
}

/// A search of active footage.
#[derive(Debug, Default)]
pub struct EvidenceFilter {
    /// Officer id.
    pub officer: Option<String>,
    /// Recording device id.
    pub device: Option<String>,
    /// `general`, `administrative` or `crime`.
    pub tier: Option<String>,
    /// Case reference.
    pub case: Option<String>,
    /// Recordings that end at or after this time (RFC 3339).
    pub from: Option<String>,
    /// Recordings that start at or before this time (RFC 3339).
    pub to: Option<String>,
    /// Rows, newest first (1-500, default 100).
    pub limit: Option<i64>,
    /// Paging: only ids below this.
    pub before: Option<i64>,
}

/// An item with what is attached to it.
#[derive(Debug)]
pub struct ItemDetail {
    /// The catalog row.
    pub evidence: Evidence,
    /// Incident reports that selected it.
    pub incidents: Vec<Incident>,
    /// Cases it is linked to.
    pub cases: Vec<Case>,
    /// Legal holds, released or not.
    pub holds: Vec<Hold>,
    /// Keyframe thumbnails.
    pub thumbnails: Vec<ThumbnailRow>,
}

/// The evidence access rules over the vault.
#[derive(Debug, Clone)]
pub struct EvidenceAccess {
    vault: EvidenceVault,
}

const READERS: [Role; 2] = [Role::Supervisor, Role::Investigator];
const UPLOADERS: [Role; 2] = [Role::Patrol, Role::Dock];

impl EvidenceAccess {
    /// The rules over `vault`.
    pub fn new(vault: EvidenceVault) -> Self {
        Self { vault }
    }

    /// Writes one audit row for an evidence access (the item's digest, when there is
    /// one, goes into the detail).
    async fn audit(
        &self,
        p: &Principal<'_>,
        action: &str,
        digest: &str,
        outcome: &str,
        mut detail: serde_json::Value,
    ) -> Result<()> {
        if !digest.is_empty() {
            detail["digest"] = digest.into();
        }
        self.vault.catalog().audit(p.login, p.device, action, None, outcome, &detail).await?;
        Ok(())
    }

    /// The ingest request for footage `p` uploads: patrol officers upload their own,
    /// docks name the officer. Shared by the one-shot and the resumable upload.
    pub fn upload_request(p: &Principal<'_>, d: Declaration) -> Result<IngestRequest> {
        let officer = match (p.role, d.officer) {
            (Role::Patrol, Some(o)) if o != p.login => {
                return Err(ApiError::Forbidden("patrol officers upload only their own footage"));
            }
            (Role::Patrol, _) => p.login.to_string(),
            (_, Some(o)) if !o.trim().is_empty() => o,
            _ => return Err(ApiError::BadRequest("`officer` is required".into())),
        };
        if d.device.trim().is_empty() {
            return Err(ApiError::BadRequest("`device` is required".into()));
        }
        let source = match d.source {
            Some(s) => s.parse::<Source>()?,
            None if p.role == Role::Dock => Source::Dock,
            None => Source::BodyCamera,
        };
        let recorded_from = d.recorded_from.as_deref().map(parse_ts).transpose()?;
        Ok(IngestRequest {
            officer,
            device: d.device,
            source,
            actor: p.login.to_string(),
            recorded_from,
            declared: Declared { len: None, digest: d.digest },
        })
    }

    /// Resumable upload `id` if `p` started it; another account's upload is "not found".
    pub async fn own_upload(&self, p: &Principal<'_>, id: &str) -> Result<UploadStatus> {
        p.require(&UPLOADERS)?;
        match self.vault.upload_status(id).await {
            Ok(st) if st.owner == p.login => Ok(st),
            Ok(_) | Err(StoreError::NotFound(_)) => Err(ApiError::NotFound("upload".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// Active footage matching `f` (supervisor: all; investigator: items of their cases).
    pub async fn search(&self, p: &Principal<'_>, f: EvidenceFilter) -> Result<Vec<Evidence>> {
        let limit = f.limit.unwrap_or(DEFAULT_SEARCH_ROWS);
        if !(1..=MAX_SEARCH_ROWS).contains(&limit) {
            return Err(ApiError::BadRequest(format!("limit must be 1 to {MAX_SEARCH_ROWS}")));
        }
        let time = |t: Option<String>| t.as_deref().map(parse_ts).transpose();
        let query = EvidenceQuery {
            officer: f.officer,
            device: f.device,
            tier: f.tier.as_deref().map(str::parse::<Tier>).transpose()?,
            case_ref: f.case,
            from: time(f.from)?,
            to: time(f.to)?,
            member: (p.role == Role::Investigator).then(|| p.login.to_string()),
            before_id: f.before,
            limit,
        };
        let rows = self.vault.catalog().search_evidence(&query).await?;
        self.audit(p, "evidence.search", "", "ok", serde_json::json!({"rows": rows.len()})).await?;
        Ok(rows)
    }

    /// The active item `digest` (and the parsed digest) if `p` may view it; a refusal is
    /// audited as `action`.
    pub async fn viewable(&self, p: &Principal<'_>, digest: &str, action: &str) -> Result<(Evidence, Digest)> {
        p.require(&READERS)?;
        let d: Digest = digest.parse().map_err(|_| ApiError::BadRequest("evidence id must be 64 hex digits".into()))?;
        let e = self.vault.active_evidence(&d).await?;
        if p.role == Role::Investigator && !self.vault.catalog().may_view_via_case(e.id, p.login).await? {
            self.audit(p, action, digest, "denied", serde_json::json!({})).await?;
            return Err(ApiError::Forbidden("this evidence is not linked to a case assigned to you"));
        }
        Ok((e, d))
    }

    /// One item's row, incidents, cases, holds and thumbnails.
    pub async fn metadata(&self, p: &Principal<'_>, digest: &str) -> Result<ItemDetail> {
        let (e, _) = self.viewable(p, digest, "evidence.metadata").await?;
        let cat = self.vault.catalog();
        let detail = ItemDetail {
            thumbnails: cat.thumbnails_of(e.id).await?,
            incidents: cat.incidents_of(e.id).await?,
            cases: cat.cases_of(e.id).await?,
            holds: cat.holds_of(e.id).await?,
            evidence: e,
        };
        self.audit(p, "evidence.metadata", digest, "ok", serde_json::json!({})).await?;
        Ok(detail)
    }

    /// Bytes `start..end` of item `digest`, which [`viewable`](Self::viewable) gave as
    /// `e` and `d` (action `evidence.view`): one custody `view` entry and one audit row,
    /// then the stream.
    pub async fn view(
        &self,
        p: &Principal<'_>,
        digest: &str,
        (e, d): &(Evidence, Digest),
        (start, end): (u64, u64),
    ) -> Result<BoxStream<'static, std::result::Result<Bytes, StoreError>>> {
        let detail = serde_json::json!({"evidence_id": e.id, "range": [start, end], "device": p.device});
        self.vault.custody().append(p.login, "view", &e.digest, &detail).await?;
        self.audit(p, "evidence.view", digest, "ok", serde_json::json!({"range": [start, end]})).await?;
        Ok(self.vault.vault().read_range_stream(d, start..end).await?)
    }

    /// Keyframe thumbnail `idx` of an item as JPEG; a custody `view` entry.
    pub async fn thumbnail(&self, p: &Principal<'_>, digest: &str, idx: i64) -> Result<Bytes> {
        let (e, _) = self.viewable(p, digest, "evidence.thumbnail").await?;
        let jpeg = self.vault.thumbnail(e.id, idx).await?;
        let detail = serde_json::json!({"evidence_id": e.id, "thumbnail": idx, "device": p.device});
        self.vault.custody().append(p.login, "view", &e.digest, &detail).await?;
        self.audit(p, "evidence.thumbnail", digest, "ok", serde_json::json!({"thumbnail": idx})).await?;
        Ok(jpeg)
    }

    /// The item's custody chain.
    pub async fn custody(&self, p: &Principal<'_>, digest: &str) -> Result<Vec<CustodyEntry>> {
        let (e, _) = self.viewable(p, digest, "evidence.custody").await?;
        let entries = self.vault.custody().entries_for(&e.digest).await?;
        self.audit(p, "evidence.custody", digest, "ok", serde_json::json!({"entries": entries.len()})).await?;
        Ok(entries)
    }

    /// Opens a case (idempotent) and assigns investigators, each an enabled investigator
    /// account; returns the case id and everyone assigned now.
    pub async fn open_case(
        &self,
        p: &Principal<'_>,
        reference: &str,
        investigators: &[String],
    ) -> Result<(i64, Vec<String>)> {
        if reference.trim().is_empty() || reference.len() > 100 {
            return Err(ApiError::BadRequest("`reference` must be 1 to 100 characters".into()));
        }
        let cat = self.vault.catalog();
        for login in investigators {
            match cat.user_by_login(login).await? {
                Some(u) if u.role == Role::Investigator.as_str() && !u.disabled => {}
                _ => return Err(ApiError::BadRequest("every assignee must be an enabled investigator account".into())),
            }
        }
        let now = self.vault.clock().now();
        let case_id = cat.open_case(reference, now).await?;
        for login in investigators {
            cat.add_case_member(reference, login, p.login, now).await?;
        }
        let detail = serde_json::json!({"case": reference, "investigators": investigators});
        self.audit(p, "case.open", "", "ok", detail).await?;
        Ok((case_id, cat.case_members(reference).await?))
    }

    /// Links an item to an open case (its investigators may then view it). Over the API
    /// a case is opened explicitly (with its investigators) first, and a closed one
    /// takes no new evidence.
    pub async fn link_case(&self, p: &Principal<'_>, reference: &str, d: &Digest) -> Result<()> {
        match self.vault.catalog().case_by_reference(reference).await? {
            Some(c) if c.closed_at.is_none() => {}
            _ => return Err(ApiError::NotFound("open case".into())),
        }
        self.vault.link_case(p.login, d, reference).await?;
        Ok(())
    }

    /// Closes a case: its links stop blocking deletion.
    pub async fn close_case(&self, p: &Principal<'_>, reference: &str) -> Result<()> {
        self.vault.catalog().close_case(reference, self.vault.clock().now()).await?;
        self.audit(p, "case.close", "", "ok", serde_json::json!({"case": reference})).await
    }
}
