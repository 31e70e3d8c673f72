//! Helpers shared by the service-level tests: the ORL face set from `../shared`, probes
//! read from files, and a subject with synthetic personal data.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use epatrol_api::service::Probe;
use epatrol_store::catalog::{Flags, NewSubject};

/// `../shared/datasets/faces/orl` (40 people, 10 photos each).
pub fn orl() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/faces/orl");
    assert!(p.is_dir(), "{} missing: tests need ../shared beside the repo", p.display());
    p
}

/// A probe from an image file, labelled with its path.
pub fn probe(path: &Path) -> Probe {
    Probe { label: path.display().to_string(), bytes: std::fs::read(path).unwrap() }
}

/// A subject with synthetic personal data and no flags.
pub fn subject(external_id: &str) -> NewSubject {
    NewSubject {
        external_id: external_id.into(),
        surname: "Real".into(),
        given_name: "Person".into(),
        patronymic: String::new(),
        date_of_birth: "1980-01-01".into(),
        address: String::new(),
        flags: Flags::default(),
    }
}
