//! `epatrol demo`: enrols a sample gallery from ../shared/datasets/faces with clearly
//! synthetic personal data, then identifies held-back photos and prints the answers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use epatrol_api::ApiError;
use epatrol_api::service::{IdentificationService, Probe};
use epatrol_store::catalog::{Flags, NewSubject};

use super::common::{cli_actor, default_datasets_dir, read_face_manifest, read_finger, read_probe};
use super::identify::summary;

/// Arguments of `epatrol demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// The shared datasets dir (holds faces/deepface_tests and faces/face_recognition_examples).
    #[arg(long)]
    pub datasets: Option<PathBuf>,
}

const SETS: [&str; 2] = ["faces/deepface_tests", "faces/face_recognition_examples"];
/// Left out of the gallery so the demo shows a "no match" answer.
const NOT_ENROLLED: &str = "lin_manuel_miranda";
const SURNAMES: [&str; 6] = ["Ivanenko", "Petrenko", "Sydorenko", "Kovalenko", "Bondarenko", "Tkachenko"];
const GIVEN: [&str; 5] = ["Oleksandr", "Maria", "Andrii", "Olena", "Dmytro"];

/// Synthetic, obviously fake identity data for the n-th demo person.
fn synthetic_subject(n: usize, label: &str) -> NewSubject {
    let flags = Flags {
        wanted: n % 5 == 1,
        missing: n % 7 == 3,
        convicted: n.is_multiple_of(3),
        probation_supervision: n % 4 == 2,
        administrative_supervision: n % 6 == 5,
        ..Flags::default()
    };
    NewSubject {
        external_id: format!("DEMO-{n:03}"),
        surname: format!("{}-DEMO", SURNAMES[n % SURNAMES.len()]),
        given_name: GIVEN[n % GIVEN.len()].to_string(),
        patronymic: "Syntheticovych".into(),
        date_of_birth: format!("19{:02}-0{}-1{}", 60 + n % 40, 1 + n % 9, n % 10),
        address: format!("{} Demo Street, Test City (dataset label {label})", n + 1),
        flags,
    }
}

/// Builds the gallery (once; re-runs reuse it) and identifies the held-back photos.
pub fn run(data: PathBuf, a: DemoArgs) -> anyhow::Result<ExitCode> {
    let root = a.datasets.unwrap_or_else(default_datasets_dir);
    anyhow::ensure!(root.is_dir(), "datasets dir {} not found (pass --datasets)", root.display());
    // identity → images, in manifest order, over both sets
    let mut people: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for set in SETS {
        for (path, id) in read_face_manifest(&root.join(set))? {
            people.entry(format!("{}:{id}", set.rsplit('/').next().unwrap_or(set))).or_default().push(path);
        }
    }
    let rt = super::runtime()?;
    rt.block_on(async {
        let svc = IdentificationService::open(&data, None).await?;
        let actor = cli_actor(Some("demo"));
        let mut probes: Vec<(PathBuf, String)> = Vec::new();
        let mut enrolled = 0;
        let mut to_enroll = Vec::new();
        for (n, (label, images)) in people.iter().enumerate() {
            if label.ends_with(NOT_ENROLLED) {
                probes.extend(images.iter().map(|p| (p.clone(), "(not enrolled)".to_string())));
                continue;
            }
            // two enrolment photos when there are enough, so subjects have several templates
            let k = if images.len() >= 4 { 2 } else { 1 };
            let subject = synthetic_subject(n, label);
            probes.extend(images[k..].iter().map(|p| (p.clone(), subject.external_id.clone())));
            to_enroll.push((subject, images[..k].to_vec()));
        }
        // extract every enrolment photo in one parallel batch (both cores), then store
        let all: Vec<Probe> = to_enroll.iter().flat_map(|(_, imgs)| imgs.iter().map(|p| read_probe(p))).collect::<anyhow::Result<_>>()?;
        let t = std::time::Instant::now();
        let mut extracted = svc.extract_faces(&all).into_iter();
        let extract_s = t.elapsed().as_secs_f64();
        let mut all = all.into_iter();
        for (subject, imgs) in &to_enroll {
            let probes_i: Vec<Probe> = all.by_ref().take(imgs.len()).collect();
            let ext: Vec<_> = extracted.by_ref().take(imgs.len()).collect();
            match svc.enroll_extracted(subject, &probes_i, ext, &actor).await {
                Ok(_) => enrolled += 1,
                Err(ApiError::Conflict(_)) => {} // already enrolled by an earlier demo run
                Err(e) => return Err(anyhow::Error::from(e).context(format!("enrolling {}", subject.external_id))),
            }
        }
        let (subjects, templates) = svc.gallery_size();
        println!(
            "gallery: {subjects} subjects, {templates} face templates ({enrolled} enrolled now; {} photos embedded in {extract_s:.1} s on {} threads)",
            to_enroll.iter().map(|t| t.1.len()).sum::<usize>(),
            rayon::current_num_threads()
        );
        let c = svc.calibration();
        println!("decision threshold {:.3} on cosine score, calibrated for FMR {} over {} impostor pairs (models/README.md)\n", c.threshold, c.fmr, c.impostor_pairs);
        let multi = root.join("faces/face_recognition_examples/two_people.jpg");
        if multi.is_file() {
            probes.push((multi, "(several faces)".into()));
        }
        let mut correct = 0;
        let mut genuine = 0;
        for (path, truth) in &probes {
            let probe = read_probe(path)?;
            let r = svc.identify_face(&probe, 3, &actor, "demo-tablet").await?;
            let got = r.person.as_ref().map(|p| p.external_id.as_str());
            let ok = match truth.as_str() {
                "(not enrolled)" => r.decision == "no_match",
                "(several faces)" => r.decision == "rejected",
                t => {
                    genuine += 1;
                    got == Some(t)
                }
            };
            correct += ok as usize;
            println!("{:<40} truth {:<16} {} {}", name(path), truth, if ok { "✓" } else { "✗" }, summary(&r));
        }
        let (f_ok, f_n) = finger_demo(&svc, &root, &actor).await?;
        println!(
            "\n{}/{} answers correct ({genuine} enrolled-person face probes, {f_n} fingerprint probes); every lookup is in the audit log",
            correct + f_ok,
            probes.len() + f_n
        );
        svc.catalog().close().await;
        Ok(ExitCode::SUCCESS)
    })
    .context("demo")
}

/// Fingers enrolled by the demo (FVC2002 DB2_B finger ids), two impressions each.
const DEMO_FINGERS: [u32; 5] = [101, 102, 103, 104, 105];

/// Fingerprint-first part: enrol prints, identify other impressions by print alone, and an
/// unenrolled print with a face photo (the face decides). Returns (correct, probes).
async fn finger_demo(svc: &IdentificationService, root: &Path, actor: &str) -> anyhow::Result<(usize, usize)> {
    let dir = root.join("fingerprints/fvc2002_db2_b");
    if !dir.is_dir() {
        return Ok((0, 0));
    }
    let print = |f: u32, i: u32| read_finger(&format!("2={}", dir.join(format!("{f}_{i}.tif")).display()));
    println!("\nfingerprints (FVC2002 DB2_B, right index), identified print first:");
    for (i, f) in DEMO_FINGERS.iter().enumerate() {
        let subject = synthetic_subject(100 + i, &format!("fvc2002_db2_b finger {f}"));
        match svc.enroll_with(&subject, &[], &[print(*f, 1)?, print(*f, 2)?], actor).await {
            Ok(_) | Err(ApiError::Conflict(_)) => {}
            Err(e) => return Err(anyhow::Error::from(e).context(format!("enrolling {}", subject.external_id))),
        }
    }
    let face = root.join("faces/deepface_tests/img4.jpg"); // DEMO-000 in the face gallery
    let mut cases: Vec<(String, Option<Probe>, epatrol_api::service::FingerProbe, String)> = DEMO_FINGERS
        .iter()
        .enumerate()
        .map(|(i, f)| Ok((format!("{f}_6.tif"), None, print(*f, 6)?, format!("DEMO-{:03}", 100 + i))))
        .collect::<anyhow::Result<_>>()?;
    cases.push(("110_1.tif (not enrolled)".into(), None, print(110, 1)?, "(not enrolled)".into()));
    if face.is_file() {
        cases.push(("110_1.tif + img4.jpg".into(), Some(read_probe(&face)?), print(110, 1)?, "DEMO-000".into()));
    }
    let mut correct = 0;
    for (label, face, finger, truth) in &cases {
        let r = svc.identify(face.as_ref(), Some(finger), 3, actor, "demo-tablet").await?;
        let got = r.person.as_ref().map(|p| p.external_id.as_str());
        let ok = if truth == "(not enrolled)" { r.decision == "no_match" } else { got == Some(truth.as_str()) };
        correct += ok as usize;
        println!("{label:<40} truth {truth:<16} {} {}", if ok { "✓" } else { "✗" }, summary(&r));
    }
    Ok((correct, cases.len()))
}

fn name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}
