//! `epatrol bench face-vectors` end to end: real ONNX models on real ORL images, the
//! gen_vectors.py `.npy` layout it writes, and `epatrol bench index` reading it (rank-1
//! per row for the `first` split, per subject through gallery_ids.npy for `multi`).

use std::path::Path;
use std::process::{Command, Output};

mod people;
use people::orl;

fn epatrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_epatrol")).args(args).output().unwrap()
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// The header length and data of a `.npy` file, checked against `descr` and `shape`.
fn npy(path: &Path, descr: &str, shape: &str) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    assert_eq!((10 + hl) % 64, 0, "data 64-byte aligned");
    let h = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    assert_eq!(h.trim_end(), format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"));
    b[10 + hl..].to_vec()
}

fn i64s(b: &[u8]) -> Vec<i64> {
    b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn face_vectors_writes_the_gen_vectors_layout_and_bench_index_identifies_on_it() {
    // 5 ORL people x 3 photos, absolute paths in a temp manifest; person 5 is held out.
    let dir = tempfile::tempdir().unwrap();
    let ds = dir.path().join("orl5");
    std::fs::create_dir(&ds).unwrap();
    let mut manifest = String::from("path,identity,source,license\n");
    for s in 1..=5 {
        for i in 1..=3 {
            manifest += &format!("{},s{s},test,test\n", orl().join(format!("s{s}/{i}.pgm")).display());
        }
    }
    std::fs::write(ds.join("manifest.csv"), manifest).unwrap();
    let ds_arg = ds.to_str().unwrap();

    // first split: row i = subject i, 4 gallery rows, 4x2 mated + 3 non-mated probes
    let first = dir.path().join("first");
    ok(epatrol(&["bench", "face-vectors", "--dataset", ds_arg, "--out", first.to_str().unwrap()]));
    let g = npy(&first.join("gallery.npy"), "<f4", "(4, 512)");
    let rows: Vec<f32> = g.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    for r in rows.chunks_exact(512) {
        let norm: f32 = r.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "rows are L2-normalised: {norm}");
    }
    npy(&first.join("probes.npy"), "<f4", "(11, 512)");
    let ids = i64s(&npy(&first.join("probe_ids.npy"), "<i8", "(11,)"));
    assert_eq!(ids, vec![0, 0, 1, 1, 2, 2, 3, 3, -1, -1, -1]);
    assert!(!first.join("gallery_ids.npy").exists());
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(first.join("meta.json")).unwrap()).unwrap();
    assert_eq!((meta["n"].as_u64(), meta["mated"].as_u64(), meta["non_mated"].as_u64()), (Some(4), Some(8), Some(3)));
    assert!(!String::from_utf8_lossy(&std::fs::read(first.join("meta.json")).unwrap()).contains(".pgm"));
    let csv = std::fs::read_to_string(first.join("rows.csv")).unwrap();
    assert_eq!(csv.lines().count(), 16, "header + one line per image");

    let json = dir.path().join("first.json");
    ok(epatrol(&[
        "bench",
        "index",
        "--vectors",
        first.to_str().unwrap(),
        "--index",
        "flat,ivf-int8",
        "--nlist",
        "2",
        "--nprobe-list",
        "1,2",
        "--target",
        "1.0",
        "--lat-budget",
        "0.1",
        "--json",
        json.to_str().unwrap(),
    ]));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["dataset"]["subject_level"], false);
    let res = r["results"].as_array().unwrap();
    assert_eq!(res[0]["rank1_mated"].as_f64(), Some(1.0), "exact search identifies all 8 ORL probes");
    let ivf_all = res.iter().find(|x| x["params"].as_str().unwrap().contains("nprobe=2")).unwrap();
    assert_eq!(ivf_all["scanned_frac"].as_f64(), Some(1.0), "all lists probed = whole gallery");
    assert_eq!(ivf_all["recall@1"].as_f64(), Some(1.0));

    // multi split: the last photo probes, the first two are gallery rows of their subject
    let multi = dir.path().join("multi");
    ok(epatrol(&["bench", "face-vectors", "--dataset", ds_arg, "--split", "multi", "--out", multi.to_str().unwrap()]));
    npy(&multi.join("gallery.npy"), "<f4", "(8, 512)");
    assert_eq!(i64s(&npy(&multi.join("gallery_ids.npy"), "<i8", "(8,)")), vec![0, 0, 1, 1, 2, 2, 3, 3]);
    assert_eq!(i64s(&npy(&multi.join("probe_ids.npy"), "<i8", "(7,)")), vec![0, 1, 2, 3, -1, -1, -1]);
    let json = dir.path().join("multi.json");
    ok(epatrol(&[
        "bench",
        "index",
        "--vectors",
        multi.to_str().unwrap(),
        "--index",
        "flat",
        "--lat-budget",
        "0.1",
        "--json",
        json.to_str().unwrap(),
    ]));
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(r["dataset"]["subject_level"], true);
    assert_eq!(r["results"][0]["rank1_mated"].as_f64(), Some(1.0), "subject-level rank-1 over gallery_ids");

    // embeddings are personal data: never inside a git work tree
    let inside = Path::new(env!("CARGO_MANIFEST_DIR")).join("target-face-vectors-test");
    let out = epatrol(&["bench", "face-vectors", "--dataset", ds_arg, "--out", inside.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("git work tree"));
    assert!(!inside.exists());
}
