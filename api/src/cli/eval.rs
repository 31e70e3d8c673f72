//! `epatrol eval`: accuracy on labelled datasets.

use std::process::ExitCode;

use super::{eval_faces, eval_fingers};

/// Arguments of `epatrol eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Which modality.
    #[command(subcommand)]
    pub what: EvalCommand,
}

/// Evaluations.
#[derive(Debug, clap::Subcommand)]
pub enum EvalCommand {
    /// Face verification and closed-set identification (EER, FNMR@FMR, rank-1, timings).
    Faces(eval_faces::EvalFacesArgs),
    /// Fingerprint verification, FVC protocol (EER, FMR100, FMR1000, ZeroFMR, timings).
    Fingers(eval_fingers::EvalFingersArgs),
}

/// Runs the chosen evaluation.
pub fn run(a: EvalArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        EvalCommand::Faces(f) => eval_faces::run(f),
        EvalCommand::Fingers(f) => eval_fingers::run(f),
    }
}
