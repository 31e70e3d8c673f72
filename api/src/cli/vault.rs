//! Evidence vault commands: `ingest`, `incident`, `classify`, `hold`, `case`, `sweep`,
//! `verify`, `export`, `verify-export`, `cat`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use epatrol_store::clock::parse_ts;
use epatrol_store::retention::{IncidentReport, Sweeper, Tier};
use epatrol_store::vault::{
    Declared, Digest, EvidenceVault, IngestRequest, IngestStatus, Source, node_name, verify_export,
};

/// Options every vault command shares.
#[derive(Debug, clap::Args)]
pub struct VaultOpts {
    /// Where blobs live: a directory, `s3://bucket?endpoint=..&allow_http=true` (credentials
    /// from AWS_* variables) or `memory://`. Default: DATA/vault.
    #[arg(long, env = "EPATROL_VAULT")]
    vault: Option<String>,
    /// Who is acting, for the custody log. Default: `cli:$USER`.
    #[arg(long, env = "EPATROL_ACTOR")]
    actor: Option<String>,
}

impl VaultOpts {
    fn actor(&self) -> String {
        self.actor
            .clone()
            .unwrap_or_else(|| format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into())))
    }
}

/// The vault's top-level commands (flattened into the main command list).
#[derive(Debug, clap::Subcommand)]
pub enum VaultCommand {
    /// Ingest footage files; prints one JSON line per file (`digest`, `status`, ...).
    Ingest(IngestArgs),
    /// File an incident report: overlapping footage moves to the offence's tier.
    Incident(IncidentArgs),
    /// Manually move one item to a higher tier (audited; never lower).
    Classify(ClassifyArgs),
    /// Place or release a legal hold on an item.
    Hold(HoldArgs),
    /// Link an item to a case, or close a case.
    Case(CaseArgs),
    /// Delete expired, unheld footage (with signed deletion records).
    Sweep(SweepArgs),
    /// Re-hash every blob and check the custody chain; non-zero exit on any problem.
    Verify(VerifyArgs),
    /// Write a court export package for one item.
    Export(ExportArgs),
    /// Check an export package (signatures and hashes).
    VerifyExport(VerifyExportArgs),
    /// Write an item's bytes (or a byte range) to stdout; recorded as a view.
    Cat(CatArgs),
}

/// `epatrol ingest`.
#[derive(Debug, clap::Args)]
pub struct IngestArgs {
    /// Video files.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Officer id.
    #[arg(long)]
    officer: String,
    /// Recording device id.
    #[arg(long)]
    device: String,
    /// body_camera, dock or other_device.
    #[arg(long, default_value = "body_camera")]
    source: Source,
    /// Start of recording (RFC 3339), if the file's metadata should not be trusted.
    #[arg(long)]
    recorded_from: Option<String>,
    /// Expected BLAKE3 (only with a single file).
    #[arg(long)]
    digest: Option<Digest>,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol incident`.
#[derive(Debug, clap::Args)]
pub struct IncidentArgs {
    /// Report number.
    #[arg(long)]
    reference: String,
    /// crime, administrative, control_check or other.
    #[arg(long)]
    offence: epatrol_store::retention::Offence,
    /// Officer whose footage it concerns.
    #[arg(long)]
    officer: String,
    /// Window start (RFC 3339).
    #[arg(long)]
    from: String,
    /// Window end (RFC 3339).
    #[arg(long)]
    to: String,
    /// Report text.
    #[arg(long, default_value = "")]
    report: String,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol classify`.
#[derive(Debug, clap::Args)]
pub struct ClassifyArgs {
    /// Evidence digest.
    digest: Digest,
    /// general, administrative or crime.
    #[arg(long)]
    tier: Tier,
    /// Why (recorded).
    #[arg(long)]
    reason: String,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol hold`.
#[derive(Debug, clap::Args)]
pub struct HoldArgs {
    /// Evidence digest.
    digest: Digest,
    /// Why (recorded).
    #[arg(long)]
    reason: String,
    /// Release the item's holds instead of placing one.
    #[arg(long)]
    release: bool,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol case`.
#[derive(Debug, clap::Args)]
pub struct CaseArgs {
    /// Case reference.
    reference: String,
    /// Evidence to link (omit with --close).
    #[arg(long)]
    link: Option<Digest>,
    /// Close the case (its links stop blocking deletion).
    #[arg(long)]
    close: bool,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol sweep`.
#[derive(Debug, clap::Args)]
pub struct SweepArgs {
    /// Report what would be deleted; change nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Evidence digest.
    digest: Digest,
    /// Package directory to create.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    opts: VaultOpts,
}

/// `epatrol verify-export`.
#[derive(Debug, clap::Args)]
pub struct VerifyExportArgs {
    /// Package directory.
    dir: PathBuf,
    /// Public key (hex) the package must be signed by.
    #[arg(long)]
    key: Option<String>,
}

/// `epatrol cat`.
#[derive(Debug, clap::Args)]
pub struct CatArgs {
    /// Evidence digest.
    digest: Digest,
    /// Byte range `START-END` (end exclusive).
    #[arg(long)]
    range: Option<String>,
    #[command(flatten)]
    opts: VaultOpts,
}

/// Runs a vault command.
pub fn run(data: &Path, cmd: VaultCommand) -> anyhow::Result<ExitCode> {
    if let VaultCommand::VerifyExport(a) = &cmd {
        let problems = verify_export(&a.dir, a.key.as_deref())?;
        return Ok(report_problems(&problems, "export package intact"));
    }
    super::runtime()?.block_on(async move {
        match cmd {
            VaultCommand::Ingest(a) => ingest(data, a).await,
            VaultCommand::Incident(a) => {
                let ev = open(data, &a.opts).await?;
                let r = IncidentReport {
                    reference: a.reference,
                    offence: a.offence,
                    officer: a.officer,
                    starts_at: a.from,
                    ends_at: a.to,
                    report: a.report,
                };
                print_json(&ev.file_incident(&a.opts.actor(), &r).await?)
            }
            VaultCommand::Classify(a) => {
                let ev = open(data, &a.opts).await?;
                print_json(&ev.reclassify(&a.opts.actor(), &a.digest, a.tier, &a.reason).await?)
            }
            VaultCommand::Hold(a) => {
                let ev = open(data, &a.opts).await?;
                if a.release {
                    let n = ev.release_holds(&a.opts.actor(), &a.digest, &a.reason).await?;
                    print_json(&serde_json::json!({"digest": a.digest, "released": n}))
                } else {
                    let id = ev.place_hold(&a.opts.actor(), &a.digest, &a.reason).await?;
                    print_json(&serde_json::json!({"digest": a.digest, "hold_id": id}))
                }
            }
            VaultCommand::Case(a) => {
                let ev = open(data, &a.opts).await?;
                match (a.link, a.close) {
                    (Some(d), false) => {
                        let id = ev.link_case(&a.opts.actor(), &d, &a.reference).await?;
                        print_json(&serde_json::json!({"case": a.reference, "case_id": id, "linked": d}))
                    }
                    (None, true) => {
                        ev.catalog().close_case(&a.reference, ev.clock().now()).await?;
                        print_json(&serde_json::json!({"case": a.reference, "closed": true}))
                    }
                    _ => anyhow::bail!("give exactly one of --link DIGEST or --close"),
                }
            }
            VaultCommand::Sweep(a) => {
                let ev = open(data, &a.opts).await?;
                ev.recover().await?;
                print_json(&Sweeper::new(&ev, node_name()).run(a.dry_run).await?)
            }
            VaultCommand::Verify(a) => {
                let ev = open(data, &a.opts).await?;
                let rec = ev.recover().await?;
                let rep = ev.verify().await?;
                eprintln!(
                    "checked {} blobs ({} bytes), {} thumbnails, {} custody entries, {} deletion records; rolled back {} interrupted ingests",
                    rep.blobs_checked, rep.bytes_checked, rep.thumbnails_checked, rep.custody_entries, rep.deletions_checked, rec.rolled_back
                );
                Ok(report_problems(&rep.problems, "vault verified: no problems"))
            }
            VaultCommand::Export(a) => {
                let ev = open(data, &a.opts).await?;
                let rep = ev.export(&a.opts.actor(), &a.digest, &a.out).await?;
                print_json(&serde_json::json!({"dir": rep.dir, "files": rep.manifest.files.len(), "key_id": rep.manifest.key_id}))
            }
            VaultCommand::Cat(a) => {
                let ev = open(data, &a.opts).await?;
                let mut stdout = std::io::stdout().lock();
                if let Some(r) = &a.range {
                    let (s, t) = r.split_once('-').context("--range is START-END")?;
                    let range = s.parse::<u64>()?..t.parse::<u64>()?;
                    stdout.write_all(&ev.view_range(&a.opts.actor(), &a.digest, range).await?)?;
                } else {
                    // whole file: log the view, then stream (never the whole file in memory)
                    let e = ev.active_evidence(&a.digest).await?;
                    ev.custody().append(&a.opts.actor(), "view", &e.digest, &serde_json::json!({"range": "all"})).await?;
                    ev.vault().copy_blob_to(&a.digest, &mut stdout).await?;
                }
                Ok(ExitCode::SUCCESS)
            }
            VaultCommand::VerifyExport(_) => unreachable!("handled above"),
        }
    })
}

async fn open(data: &Path, opts: &VaultOpts) -> anyhow::Result<EvidenceVault> {
    EvidenceVault::open_default(data, opts.vault.as_deref())
        .await
        .with_context(|| format!("opening the evidence vault under {}", data.display()))
}

async fn ingest(data: &Path, a: IngestArgs) -> anyhow::Result<ExitCode> {
    if a.digest.is_some() && a.files.len() != 1 {
        anyhow::bail!("--digest applies to a single file");
    }
    let ev = open(data, &a.opts).await?;
    // finish what killed ingests left before adding more
    ev.recover().await?;
    let req = IngestRequest {
        officer: a.officer,
        device: a.device,
        source: a.source,
        actor: a.opts.actor(),
        recorded_from: a.recorded_from.as_deref().map(parse_ts).transpose()?,
        declared: Declared { len: None, digest: a.digest },
    };
    let mut failed = false;
    let mut out = std::io::stdout().lock();
    for f in &a.files {
        let line = match ev.ingest_file(f, &req).await {
            Ok(o) => {
                failed |= o.status == IngestStatus::Rejected;
                serde_json::to_string(&o)?
            }
            Err(e) => {
                failed = true;
                // an I/O or store failure is not a verdict on the file: no digest to report
                serde_json::json!({"file": f.display().to_string(), "status": "error", "reason": e.to_string()})
                    .to_string()
            }
        };
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(if failed { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_json<T: serde::Serialize>(v: &T) -> anyhow::Result<ExitCode> {
    println!("{}", serde_json::to_string(v)?);
    Ok(ExitCode::SUCCESS)
}

fn report_problems(problems: &[String], ok_msg: &str) -> ExitCode {
    if problems.is_empty() {
        println!("{ok_msg}");
        ExitCode::SUCCESS
    } else {
        for p in problems {
            println!("FAIL {p}");
        }
        println!("{} problem(s)", problems.len());
        ExitCode::from(1)
    }
}
