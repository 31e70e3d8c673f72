//! The face gallery's segment files through the real service: written at first start from
//! a real SQLite catalog, kept up by enrolments and deletions, read back at restart,
//! mended when the catalog changed behind them, and discarded and rewritten from the
//! catalog when a file is corrupted or torn (never served).

use std::path::{Path, PathBuf};
use std::process::Command;

use epatrol_api::service::face_files::FilesReport;
use epatrol_api::service::{IdentificationService, Probe};
use epatrol_engine::index::SegmentStore;
use epatrol_store::Catalog;

mod people;
use people::{orl, probe, subject};

/// A catalog with `n` synthetic face templates (real SQLite, `epatrol bench gallery`).
fn synthetic_catalog(data: &Path, n: usize) {
    let out = Command::new(env!("CARGO_BIN_EXE_epatrol"))
        .arg("--data")
        .arg(data)
        .args(["bench", "gallery", "--faces", &n.to_string(), "--seed", "3"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Opens the service, enrols a real person from two ORL photos, checks a third is
/// identified as them.
async fn open_and_enroll(data: &Path) -> IdentificationService {
    let svc = IdentificationService::open(data, None).await.unwrap();
    let person = subject("REAL-1");
    let photos: Vec<Probe> = (1..=2).map(|i| probe(&orl().join(format!("s9/{i}.pgm")))).collect();
    svc.enroll(&person, &photos, "test").await.unwrap();
    svc
}

async fn identifies_the_person(svc: &IdentificationService) {
    let r = svc.identify_face(&probe(&orl().join("s9/6.pgm")), 3, "test", "tab-1").await.unwrap();
    assert_eq!(r.person.as_ref().map(|p| p.external_id.as_str()), Some("REAL-1"));
}

/// The segment files of the one face model.
fn segment_files(data: &Path) -> Vec<PathBuf> {
    let models: Vec<PathBuf> = std::fs::read_dir(data.join("index")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(models.len(), 1, "{models:?}");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&models[0])
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eps"))
        .collect();
    segs.sort();
    segs
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_reads_the_files_and_mends_what_the_catalog_changed() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_catalog(dir.path(), 300);
    let svc = open_and_enroll(dir.path()).await;
    // first start: nothing on disk, every catalog template appended
    let (report, files) = svc.face_files();
    assert_eq!((report.from_files, report.appended, report.tombstoned), (0, 300, 0));
    assert!(files >= 1);
    svc.delete_subject("SYN-3-0000007").await.unwrap();
    drop(svc);

    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    assert_eq!(svc.face_files().0, &FilesReport { from_files: 301, ..FilesReport::default() });
    assert_eq!(svc.face_gallery_size().0, 301);
    identifies_the_person(&svc).await;
    drop(svc);

    // the catalog changes without the service (as after a crash between the catalog
    // commit and the file write): the files still hold the deleted person
    let catalog = Catalog::open_in(dir.path()).await.unwrap();
    catalog.delete_subject("REAL-1").await.unwrap();
    drop(catalog);
    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    assert_eq!(svc.face_files().0, &FilesReport { from_files: 301, tombstoned: 2, ..FilesReport::default() });
    assert_eq!(svc.face_gallery_size().0, 299);
    let r = svc.identify_face(&probe(&orl().join("s9/6.pgm")), 3, "test", "tab-1").await.unwrap();
    assert!(r.candidates.iter().all(|c| c.external_id != "REAL-1"), "deleted person still in the gallery");
}

/// Restarts the service on damaged files: they must be reported as discarded (`why` in
/// the reason), all `templates` rewritten from the catalog, and the person still found.
async fn reopens_rewritten(data: &Path, why: &str, templates: usize) {
    let svc = IdentificationService::open(data, None).await.unwrap();
    let report = svc.face_files().0.clone();
    assert!(report.discarded.as_deref().is_some_and(|r| r.contains(why)), "{report:?}");
    assert_eq!((report.from_files, report.appended), (0, templates));
    identifies_the_person(&svc).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn corrupted_or_torn_files_are_rewritten_from_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    synthetic_catalog(dir.path(), 40);
    let svc = open_and_enroll(dir.path()).await;
    let dim = svc.extract_faces(&[probe(&orl().join("s9/6.pgm"))])[0].as_ref().unwrap().embedding.len();
    drop(svc);

    // one flipped byte in a segment's vectors
    let seg = segment_files(dir.path()).pop().expect("a segment file");
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() - 100;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    reopens_rewritten(dir.path(), "checksum", 42).await;

    // a torn write: the segment cut short
    let seg = segment_files(dir.path()).pop().expect("a segment file");
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(len - 512).unwrap();
    reopens_rewritten(dir.path(), "length", 42).await;

    // files that verify but do not replay (an id stored twice): rewritten as well
    let model_dir = segment_files(dir.path())[0].parent().unwrap().to_path_buf();
    let mut store = SegmentStore::open(&model_dir, dim).unwrap();
    let f = &store.files()[0];
    let (id, row) = (f.ids()[0], f.vectors()[..dim].to_vec());
    store.append(&[id], &row).unwrap();
    drop(store);
    reopens_rewritten(dir.path(), "already in the gallery", 42).await;

    // and the rewritten files are whole again
    let svc = IdentificationService::open(dir.path(), None).await.unwrap();
    assert_eq!(svc.face_files().0, &FilesReport { from_files: 42, ..FilesReport::default() });
}
