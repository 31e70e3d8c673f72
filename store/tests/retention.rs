//! Retention with an injectable clock: every tier's deadline, every upgrade path
//! (general → administrative → crime, general → crime), never a downgrade, and the
//! sweeper deleting exactly at the deadline and not a second before.

mod common;

use common::{Backend, World, dataset, req};
use epatrol_store::StoreError;
use epatrol_store::clock::{fmt_ts, parse_ts};
use epatrol_store::retention::{IncidentReport, Offence, Sweeper, Tier, add_months};
use epatrol_store::vault::Digest;
use time::Duration;

const G: &str = "g_faststart.mp4"; // 6 s, no creation_time: recorded_from is declared below
const START: &str = "2024-01-31T10:00:00Z";

async fn world_with_item() -> (World, Digest) {
    let w = World::new(Backend::Memory).await.unwrap();
    w.clock.set(parse_ts("2024-02-01T00:00:00Z").unwrap());
    let mut r = req();
    r.recorded_from = Some(parse_ts(START).unwrap());
    let out = w.ev.ingest_file(&dataset(G), &r).await.unwrap();
    (w, out.digest.parse().unwrap())
}

fn incident(reference: &str, offence: Offence) -> IncidentReport {
    IncidentReport {
        reference: reference.into(),
        offence,
        officer: "O-1".into(),
        starts_at: "2024-01-31T09:55:00Z".into(),
        ends_at: "2024-01-31T10:00:03Z".into(),
        report: String::new(),
    }
}

async fn state(w: &World, d: &Digest) -> (String, String) {
    let e = w.ev.catalog().evidence_by_digest(&d.to_hex()).await.unwrap().unwrap();
    (e.tier.to_string(), fmt_ts(e.expires_at))
}

/// Sweeps at one second before `deadline` (must keep) and at `deadline` (must delete).
async fn deleted_exactly_at(w: &World, d: &Digest, deadline: &str) {
    let t = parse_ts(deadline).unwrap();
    let sweeper = Sweeper::new(&w.ev, "n");
    w.clock.set(t - Duration::seconds(1));
    assert!(sweeper.run(false).await.unwrap().deleted.is_empty(), "deleted before {deadline}");
    w.clock.set(t);
    let rep = sweeper.run(false).await.unwrap();
    assert_eq!(rep.deleted.len(), 1, "not deleted at {deadline}");
    assert_eq!(rep.deleted[0].digest, d.to_hex());
}

#[tokio::test]
async fn general_is_one_month_from_the_end_of_recording() {
    let (w, d) = world_with_item().await;
    // 31 Jan + 1 month clamps to 29 Feb (2024 is a leap year)
    assert_eq!(state(&w, &d).await, ("general".into(), "2024-02-29T10:00:06Z".into()));
    deleted_exactly_at(&w, &d, "2024-02-29T10:00:06Z").await;
}

#[tokio::test]
async fn control_check_and_administrative_are_one_year() {
    for offence in [Offence::ControlCheck, Offence::Administrative] {
        let (w, d) = world_with_item().await;
        w.ev.file_incident("sup", &incident("R-1", offence)).await.unwrap();
        assert_eq!(state(&w, &d).await, ("administrative".into(), "2025-01-31T10:00:06Z".into()), "{offence:?}");
        deleted_exactly_at(&w, &d, "2025-01-31T10:00:06Z").await;
    }
}

#[tokio::test]
async fn crime_is_five_years() {
    let (w, d) = world_with_item().await;
    w.ev.file_incident("sup", &incident("R-1", Offence::Crime)).await.unwrap();
    assert_eq!(state(&w, &d).await, ("crime".into(), "2029-01-31T10:00:06Z".into()));
    deleted_exactly_at(&w, &d, "2029-01-31T10:00:06Z").await;
}

#[tokio::test]
async fn upgrade_path_general_administrative_crime_and_never_back() {
    let (w, d) = world_with_item().await;
    w.ev.file_incident("sup", &incident("R-1", Offence::Other)).await.unwrap();
    assert_eq!(state(&w, &d).await.0, "general");
    // months later an administrative report, then a crime report, reach the same footage
    w.clock.advance(Duration::days(20));
    w.ev.file_incident("sup", &incident("R-2", Offence::ControlCheck)).await.unwrap();
    assert_eq!(state(&w, &d).await, ("administrative".into(), "2025-01-31T10:00:06Z".into()));
    w.clock.advance(Duration::days(200));
    w.ev.file_incident("sup", &incident("R-3", Offence::Crime)).await.unwrap();
    assert_eq!(state(&w, &d).await, ("crime".into(), "2029-01-31T10:00:06Z".into()));
    // lower reports and manual downgrades change nothing
    w.ev.file_incident("sup", &incident("R-4", Offence::Administrative)).await.unwrap();
    w.ev.file_incident("sup", &incident("R-5", Offence::Other)).await.unwrap();
    for t in [Tier::General, Tier::Administrative] {
        assert!(matches!(w.ev.reclassify("sup", &d, t, "mistake").await, Err(StoreError::Refused(_))));
    }
    assert_eq!(state(&w, &d).await, ("crime".into(), "2029-01-31T10:00:06Z".into()));
    // still there the day before the five years are up
    w.clock.set(parse_ts("2029-01-30T00:00:00Z").unwrap());
    assert!(Sweeper::new(&w.ev, "n").run(false).await.unwrap().deleted.is_empty());
}

#[tokio::test]
async fn general_straight_to_crime_by_manual_reclassification() {
    let (w, d) = world_with_item().await;
    let r = w.ev.reclassify("sup", &d, Tier::Crime, "video shows a robbery").await.unwrap();
    assert_eq!((r.from_tier.as_str(), r.to_tier.as_str()), ("general", "crime"));
    let audit = w.ev.catalog().audit_tail(5).await.unwrap();
    assert!(audit.iter().any(|a| a.action == "reclassify"), "manual reclassification is audited");
    let custody = w.ev.custody().entries_for(&d.to_hex()).await.unwrap();
    assert_eq!(custody.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["ingest", "classify"]);
}

#[tokio::test]
async fn an_upgrade_after_the_general_deadline_is_too_late() {
    // retention counts from the recording, so a report filed after the sweep finds nothing
    let (w, d) = world_with_item().await;
    w.clock.set(parse_ts("2024-03-01T00:00:00Z").unwrap());
    Sweeper::new(&w.ev, "n").run(false).await.unwrap();
    let r = w.ev.file_incident("sup", &incident("LATE", Offence::Crime)).await.unwrap();
    assert!(r.items.is_empty());
    assert!(w.ev.active_evidence(&d).await.is_err());
}

#[test]
fn calendar_months_clamp_to_month_end() {
    let t = |s| parse_ts(s).unwrap();
    assert_eq!(add_months(t("2023-01-31T00:00:00Z"), 1), t("2023-02-28T00:00:00Z"));
    assert_eq!(add_months(t("2024-02-29T12:00:00Z"), 12), t("2025-02-28T12:00:00Z"));
    assert_eq!(add_months(t("2024-02-29T12:00:00Z"), 60), t("2029-02-28T12:00:00Z"));
    assert_eq!(add_months(t("2023-12-15T08:00:00Z"), 1), t("2024-01-15T08:00:00Z"));
    assert_eq!(Tier::Crime.deadline(t("2020-02-29T00:00:00Z")), t("2025-02-28T00:00:00Z"));
}
