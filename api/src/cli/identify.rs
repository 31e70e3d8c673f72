//! `epatrol identify`: a fingerprint and/or a face photo → decision, candidates, flags,
//! escort advice. The print decides first; the face when the print is unusable or
//! inconclusive.

use std::path::PathBuf;
use std::process::ExitCode;

use epatrol_api::service::{IdentificationService, IdentifyReport};

use super::common::{cli_actor, read_finger, read_probe};

/// Arguments of `epatrol identify`.
#[derive(Debug, clap::Args)]
pub struct IdentifyArgs {
    /// Face photo of the person to identify (the fallback when a print is given too).
    #[arg(long = "face", required_unless_present = "finger")]
    pub face: Option<PathBuf>,
    /// Fingerprint image as `[POS=]PATH` (POS: ISO finger position, optional): tried first.
    #[arg(long = "finger")]
    pub finger: Option<String>,
    /// Number of candidates to list.
    #[arg(long, default_value_t = epatrol_api::service::identification::DEFAULT_TOP_K)]
    pub top: usize,
    /// Officer login recorded in the audit log (default: the OS user).
    #[arg(long)]
    pub officer: Option<String>,
    /// Device id recorded in the audit log.
    #[arg(long, default_value = "")]
    pub device: String,
    /// Face recognizer (manifest name).
    #[arg(long)]
    pub model: Option<String>,
}

/// Identifies and prints the answer as JSON on stdout and one line for people on stderr.
pub fn run(data: PathBuf, a: IdentifyArgs) -> anyhow::Result<ExitCode> {
    let probe = a.face.as_deref().map(read_probe).transpose()?;
    let finger = a.finger.as_deref().map(read_finger).transpose()?;
    super::runtime()?.block_on(async {
        let svc = IdentificationService::open(&data, a.model.as_deref()).await?;
        let report =
            svc.identify(probe.as_ref(), finger.as_ref(), a.top, &cli_actor(a.officer.as_deref()), &a.device).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        eprintln!("{}", summary(&report));
        svc.catalog().close().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// One line an officer can read at a glance.
pub fn summary(r: &IdentifyReport) -> String {
    let who = match (&r.person, r.score) {
        (Some(p), Some(s)) => {
            format!("MATCH {} {} {} ({}) score {s:.3}", p.surname, p.given_name, p.patronymic, p.external_id)
        }
        _ if r.decision == "rejected" => format!("REJECTED: {}", r.reason.as_deref().unwrap_or("")),
        _ => "NO MATCH".to_string(),
    };
    let who = format!("[{}] {who}", r.modality);
    let who = match &r.fallback {
        Some(why) => format!("{who} ({why})"),
        None => who,
    };
    match &r.escort_reason {
        Some(why) => format!("{who} — ESCORT TO STATION: {why}"),
        None => who,
    }
}
