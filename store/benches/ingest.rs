//! Ingest throughput against a plain file copy of the same bytes on the same disk, in the
//! same run; BLAKE3 alone for scale; and ingest into S3 (moto) with multipart.
//!
//! `cargo bench -p epatrol-store --bench ingest` (env: `EPATROL_BENCH_BIG_MB`, default 2048,
//! size of the generated large file; `EPATROL_BENCH_DIR`, default /tmp; `EPATROL_TEST_S3_URL`
//! or `moto_server` on PATH for the S3 part). Prints a markdown table and one JSON line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use epatrol_store::Catalog;
use epatrol_store::clock::SystemClock;
use epatrol_store::vault::{Declared, EvidenceVault, IngestRequest, Source, Vault};

fn dataset(name: &str) -> PathBuf {
    std::env::var("EPATROL_VIDEO_DATASET")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/video"))
        .join(name)
}

fn req() -> IngestRequest {
    IngestRequest {
        officer: "B".into(),
        device: "B".into(),
        source: Source::Dock,
        actor: "bench".into(),
        recorded_from: None,
        declared: Declared::default(),
    }
}

/// Copy + fsync, as durable as the vault's write.
fn copy(src: &Path, dst: &Path, fsync: bool) -> f64 {
    let t = Instant::now();
    std::fs::copy(src, dst).unwrap();
    if fsync {
        std::fs::File::open(dst).unwrap().sync_all().unwrap();
    }
    let s = t.elapsed().as_secs_f64();
    std::fs::remove_file(dst).unwrap();
    s
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn ingest_once(ev_dir: &Path, vault: Vault, file: &Path) -> f64 {
    let _ = std::fs::remove_dir_all(ev_dir);
    std::fs::create_dir_all(ev_dir).unwrap();
    let catalog = Catalog::open_in(ev_dir).await.unwrap();
    let ev = EvidenceVault::with_parts(ev_dir, catalog, vault, Arc::new(SystemClock)).unwrap();
    let t = Instant::now();
    let out = ev.ingest_file(file, &req()).await.unwrap();
    let s = t.elapsed().as_secs_f64();
    assert!(matches!(format!("{:?}", out.status).as_str(), "Stored" | "Damaged"), "{out:?}");
    ev.catalog().close().await;
    s
}

/// The vault's byte path alone (stage with hashing, commit create-if-absent, fsynced):
/// what ingest costs without ffmpeg probing, thumbnails and the catalog transaction.
async fn byte_path_once(dir: &Path, file: &Path) -> f64 {
    let _ = std::fs::remove_dir_all(dir);
    let vault = Vault::local(dir).unwrap();
    let t = Instant::now();
    let key = object_store::path::Path::from(format!("staging/{}", epatrol_store::vault::random_id()));
    let staged = vault.stage_file(key, file, Declared::default()).await.unwrap();
    vault.commit(&staged).await.unwrap();
    t.elapsed().as_secs_f64()
}

fn sync() {
    let _ = std::process::Command::new("sync").status();
}

fn make_big(dir: &Path, mb: u64) -> PathBuf {
    let p = dir.join(format!("epatrol-bench-{mb}MB.mp4"));
    if std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0) < mb << 20 {
        // a real (faststart) video followed by incompressible padding: probes as 20 s of
        // H.264, and every byte goes through staging, hashing and commit
        let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
        f.write_all(&std::fs::read(dataset("a_h264_aac_720p30_20s.mp4")).unwrap()).unwrap();
        let mut block = vec![0u8; 1 << 20];
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..mb {
            for c in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block).unwrap();
        }
        f.flush().unwrap();
    }
    p
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    // `cargo bench` passes --bench; `cargo test --all-targets` does not: then only check
    // that one small ingest works, instead of writing gigabytes
    if !std::env::args().any(|a| a == "--bench") {
        let tmp = std::env::temp_dir().join(format!("epatrol-bench-smoke-{}", std::process::id()));
        let s = rt.block_on(ingest_once(&tmp, Vault::memory(), &dataset("g_faststart.mp4")));
        let _ = std::fs::remove_dir_all(&tmp);
        println!("bench smoke: one ingest in {s:.3} s (run `cargo bench` for the measurement)");
        return;
    }
    let base = PathBuf::from(std::env::var("EPATROL_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()));
    let big_mb: u64 = std::env::var("EPATROL_BENCH_BIG_MB").ok().and_then(|s| s.parse().ok()).unwrap_or(2048);
    let work = base.join("epatrol-bench-work");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let files =
        [dataset("h_h264_480p30_60s_lowbitrate.mp4"), dataset("a_h264_aac_720p30_20s.mp4"), make_big(&base, big_mb)];
    let reps = 3;
    let mut results = Vec::new();
    // BLAKE3 alone, in memory, one thread: the ceiling hashing puts on ingest
    let blake3_gbps = {
        let buf = vec![7u8; 256 << 20];
        let t = Instant::now();
        std::hint::black_box(blake3::hash(&buf));
        buf.len() as f64 / t.elapsed().as_secs_f64() / 1e9
    };
    println!("BLAKE3 one thread, in memory: {blake3_gbps:.2} GB/s\n");
    println!(
        "| file | MB | copy s | copy+fsync s | byte path s | full ingest s | ingest MB/s | byte path / copy+fsync | full ingest / copy+fsync | full ingest / copy |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for f in &files {
        let size = std::fs::metadata(f).unwrap().len();
        let mb = size as f64 / (1 << 20) as f64;
        // warm the page cache so every contender reads from memory
        std::io::copy(&mut std::fs::File::open(f).unwrap(), &mut std::io::sink()).unwrap();
        let (mut c, mut cf, mut bp, mut ing) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            // flush earlier dirty pages first, so no contender pays for another's writeback
            sync();
            c.push(copy(f, &work.join("copy.bin"), false));
            sync();
            cf.push(copy(f, &work.join("copy.bin"), true));
            sync();
            bp.push(rt.block_on(byte_path_once(&work.join("bp"), f)));
            sync();
            let ev_dir = work.join("ev");
            ing.push(rt.block_on(ingest_once(&ev_dir, Vault::local(&ev_dir.join("vault")).unwrap(), f)));
        }
        let (c, cf, bp, ing) = (median(c), median(cf), median(bp), median(ing));
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        println!(
            "| {name} | {mb:.1} | {c:.3} | {cf:.3} | {bp:.3} | {ing:.3} | {:.0} | {:.2} | {:.2} | {:.2} |",
            mb / ing,
            cf / bp,
            cf / ing,
            c / ing
        );
        results.push(serde_json::json!({"file": name, "bytes": size, "copy_s": c, "copy_fsync_s": cf,
            "byte_path_s": bp, "ingest_s": ing, "ratio_byte_path_vs_copy_fsync": cf / bp,
            "ratio_vs_copy_fsync": cf / ing, "ratio_vs_copy": c / ing}));
    }

    // S3 (moto): multipart ingest of the samples and a 256 MiB file
    let ep = std::env::var("EPATROL_TEST_S3_URL").ok().or_else(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/s3-test-server.sh");
        let o = std::process::Command::new("bash")
            .arg(script)
            .arg("--watch-pid")
            .arg(std::process::id().to_string())
            .output()
            .ok()?;
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    });
    let mut s3 = Vec::new();
    if let Some(ep) = ep {
        let s3_files = [files[0].clone(), files[1].clone(), make_big(&base, 256)];
        println!("\n| S3 (moto, multipart 8 MiB parts) | MB | ingest s | MB/s |\n|---|---:|---:|---:|");
        for f in &s3_files {
            let size = std::fs::metadata(f).unwrap().len();
            let bucket = format!("bench-{}", &epatrol_store::vault::random_id()[..10]);
            let b = object_store::aws::AmazonS3Builder::new()
                .with_endpoint(&ep)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_bucket_name(&bucket)
                .with_access_key_id("bench")
                .with_secret_access_key("bench");
            let vault = Vault::s3_builder(b).unwrap();
            rt.block_on(vault.s3_control().unwrap().create_bucket(false)).unwrap();
            let s = rt.block_on(ingest_once(&work.join("ev-s3"), vault, f));
            let mb = size as f64 / (1 << 20) as f64;
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            println!("| {name} | {mb:.1} | {s:.3} | {:.0} |", mb / s);
            s3.push(serde_json::json!({"file": name, "bytes": size, "ingest_s": s}));
        }
    } else {
        println!("\n(S3 part skipped: no moto)");
    }
    println!(
        "{}",
        serde_json::json!({"bench": "vault_ingest", "blake3_gbps_1t": blake3_gbps, "local": results, "s3_moto": s3})
    );
    let _ = std::fs::remove_dir_all(&work);
}
