//! `epatrol bench gallery` and `epatrol bench load`: the region's peak against a running
//! server. `gallery` fills the catalog with synthetic face distractors (random unit
//! vectors under the configured recognizer: they cost the search exactly what real
//! templates cost, and match nobody); `load` fires identifications with thousands of
//! connections open at once, honours 503/429 `Retry-After` as a tablet would, and
//! reports whether every request was answered, and how fast.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use epatrol_engine::models::Manifest;
use epatrol_store::Catalog;
use epatrol_store::catalog::{Flags, NewSubject, NewTemplate};
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Options of `epatrol bench gallery`.
#[derive(Debug, clap::Args)]
pub struct GalleryArgs {
    /// Synthetic face distractors to add.
    #[arg(long, default_value_t = 100_000)]
    pub faces: usize,
    /// Random seed (the same seed gives the same vectors).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Subjects per catalog transaction.
    #[arg(long, default_value_t = 5_000)]
    pub batch: usize,
}

/// Options of `epatrol bench load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Patrol account to identify as.
    #[arg(long)]
    pub login: String,
    /// Its password (or env EPATROL_PASSWORD).
    #[arg(long, env = "EPATROL_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Device id to log in from.
    #[arg(long, default_value = "load-tablet")]
    pub device: String,
    /// Face photo sent as every probe.
    #[arg(long)]
    pub face: PathBuf,
    /// Identification requests in all.
    #[arg(long, default_value_t = 3_000)]
    pub requests: usize,
    /// Requests in flight at once (each on its own connection).
    #[arg(long, default_value_t = 3_000)]
    pub concurrency: usize,
    /// Give up on a request after this many 503/429 answers.
    #[arg(long, default_value_t = 1_000)]
    pub max_retries: u32,
    /// Write the JSON summary here as well as to stdout.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Adds `a.faces` synthetic distractor subjects with one random unit-vector face
/// template each, in batched transactions.
pub fn run_gallery(data: PathBuf, a: GalleryArgs) -> anyhow::Result<()> {
    let model = Manifest::embedded().default_of("face_embedder")?;
    let dim = model.dim.context("face model has no dim in the manifest")?;
    let name = model.name.clone();
    super::runtime()?.block_on(async move {
        let catalog = Catalog::open_in(&data).await?;
        let (start, _) = catalog.counts().await?;
        let mut rng = rand::rngs::StdRng::seed_from_u64(a.seed);
        let bar = indicatif::ProgressBar::new(a.faces as u64);
        let t = Instant::now();
        let mut done = 0usize;
        while done < a.faces {
            let n = a.batch.min(a.faces - done).max(1);
            let batch: Vec<_> = (done..done + n)
                .map(|i| {
                    let mut v: Vec<f32> = (0..dim).map(|_| rng.r#gen::<f32>() - 0.5).collect();
                    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                    v.iter_mut().for_each(|x| *x /= norm);
                    let data: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    let subject = NewSubject {
                        external_id: format!("SYN-{}-{:07}", a.seed, start as usize + i),
                        surname: "SYNTHETIC-DISTRACTOR".into(),
                        given_name: "Benchmark".into(),
                        patronymic: String::new(),
                        date_of_birth: String::new(),
                        address: String::new(),
                        flags: Flags::default(),
                    };
                    let template = NewTemplate {
                        modality: epatrol_store::model::Modality::Face,
                        model: name.clone(),
                        position: None,
                        quality: 1.0,
                        source_sha256: hex::encode(sha256(&data)),
                        data,
                    };
                    (subject, vec![template])
                })
                .collect();
            catalog.enroll_many(&batch).await?;
            done += n;
            bar.set_position(done as u64);
        }
        bar.finish_and_clear();
        let (subjects, templates) = catalog.counts().await?;
        catalog.close().await;
        println!(
            "{}",
            json!({"added": a.faces, "model": name, "dim": dim, "subjects": subjects, "templates": templates,
                   "seconds": t.elapsed().as_secs_f64()})
        );
        Ok(())
    })
}

/// The catalog records a source hash per template; for a synthetic one, of its bytes.
fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

/// Outcome counters shared by the request tasks.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    retried: AtomicU64,
    gave_up: AtomicU64,
    failed: AtomicU64,
}

/// Fires `a.requests` identifications with `a.concurrency` in flight; prints a JSON
/// summary. Exits non-zero unless every request was answered 200.
pub fn run_load(a: LoadArgs) -> anyhow::Result<std::process::ExitCode> {
    let face = std::fs::read(&a.face).with_context(|| format!("reading {}", a.face.display()))?;
    super::runtime()?.block_on(async move {
        // one connection per in-flight request, as thousands of tablets would have
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(a.concurrency)
            .timeout(Duration::from_secs(600))
            .build()?;
        let login = http
            .post(format!("{}/v1/auth/login", a.url))
            .json(&json!({"login": a.login, "password": a.password, "device_id": a.device}))
            .send()
            .await?;
        anyhow::ensure!(login.status().is_success(), "login failed: {}", login.status());
        let token = login.json::<serde_json::Value>().await?["token"].as_str().context("no token")?.to_string();

        let tally = Arc::new(Tally::default());
        let gate = Arc::new(tokio::sync::Semaphore::new(a.concurrency.max(1)));
        let t0 = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..a.requests {
            let permit = gate.clone().acquire_owned().await?;
            let (http, token, face, tally) = (http.clone(), token.clone(), face.clone(), tally.clone());
            let (url, device, max_retries) = (format!("{}/v1/identify", a.url), a.device.clone(), a.max_retries);
            tasks.spawn(async move {
                let _permit = permit;
                let started = Instant::now();
                for attempt in 0..=max_retries {
                    let form = reqwest::multipart::Form::new()
                        .part("face", reqwest::multipart::Part::bytes(face.clone()).file_name("probe.jpg"));
                    let r =
                        http.post(&url).bearer_auth(&token).header("x-device-id", &device).multipart(form).send().await;
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            tally.ok.fetch_add(1, Ordering::Relaxed);
                            return Some(started.elapsed());
                        }
                        Ok(r) if r.status() == 503 || r.status() == 429 => {
                            let wait = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1);
                            if attempt == max_retries {
                                break;
                            }
                            tally.retried.fetch_add(1, Ordering::Relaxed);
                            // jittered, so refused tablets do not return in lockstep
                            let jitter = rand::thread_rng().gen_range(0..500);
                            tokio::time::sleep(Duration::from_millis(wait * 1000 + jitter)).await;
                        }
                        Ok(r) => {
                            eprintln!("epatrol bench load: answer {}", r.status());
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            return None;
                        }
                        Err(e) => {
                            eprintln!("epatrol bench load: request failed: {e}");
                            tally.failed.fetch_add(1, Ordering::Relaxed);
                            return None;
                        }
                    }
                }
                tally.gave_up.fetch_add(1, Ordering::Relaxed);
                None
            });
        }
        let mut lat: Vec<f64> = Vec::with_capacity(a.requests);
        while let Some(r) = tasks.join_next().await {
            if let Some(d) = r? {
                lat.push(d.as_secs_f64() * 1e3);
            }
        }
        let wall = t0.elapsed().as_secs_f64();
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| lat.get(((lat.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
        let ok = tally.ok.load(Ordering::Relaxed);
        let summary = json!({
            "requests": a.requests, "concurrency": a.concurrency,
            "answered_ok": ok, "retried_503_429": tally.retried.load(Ordering::Relaxed),
            "gave_up": tally.gave_up.load(Ordering::Relaxed), "failed": tally.failed.load(Ordering::Relaxed),
            "wall_s": wall, "throughput_per_s": ok as f64 / wall,
            "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        });
        println!("{summary}");
        if let Some(p) = &a.json {
            std::fs::write(p, serde_json::to_vec_pretty(&summary)?)?;
        }
        Ok(if ok as usize == a.requests { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
    })
}
