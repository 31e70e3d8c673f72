//! `epatrol enroll`: a subject record plus face images and/or fingerprints.

use std::path::PathBuf;
use std::process::ExitCode;

use epatrol_api::service::IdentificationService;
use epatrol_store::catalog::{Flags, NewSubject};

use super::common::{cli_actor, read_finger, read_probe};

/// Operational flags settable at enrolment.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Flag {
    /// Has a criminal conviction.
    Convicted,
    /// Wanted (escort to station).
    Wanted,
    /// Reported missing (escort to station).
    Missing,
    /// Under preventive supervision.
    Preventive,
    /// Under probation supervision.
    Probation,
    /// Under administrative supervision.
    Administrative,
}

/// Arguments of `epatrol enroll`.
#[derive(Debug, clap::Args)]
pub struct EnrollArgs {
    /// Unique registry id of the person.
    #[arg(long = "id")]
    pub external_id: String,
    /// Family name.
    #[arg(long)]
    pub surname: String,
    /// Given name.
    #[arg(long)]
    pub given_name: String,
    /// Patronymic.
    #[arg(long, default_value = "")]
    pub patronymic: String,
    /// Date of birth (YYYY-MM-DD).
    #[arg(long = "dob", default_value = "")]
    pub date_of_birth: String,
    /// Registered address.
    #[arg(long, default_value = "")]
    pub address: String,
    /// Flags (repeat or comma-separate): convicted, wanted, missing, preventive, probation, administrative.
    #[arg(long = "flag", value_delimiter = ',')]
    pub flags: Vec<Flag>,
    /// Face photo(s) of the person (JPEG, PNG, BMP, TIFF, PGM, WebP); one face per photo.
    #[arg(long = "face", required_unless_present = "fingers")]
    pub faces: Vec<PathBuf>,
    /// Fingerprint image(s) as `[POS=]PATH`, POS the ISO finger position (1 right thumb …
    /// 10 left little; omitted = unknown). Several impressions of a finger may be given.
    #[arg(long = "finger")]
    pub fingers: Vec<String>,
    /// Face recognizer (manifest name).
    #[arg(long)]
    pub model: Option<String>,
}

impl EnrollArgs {
    /// The subject record these arguments describe.
    pub fn subject(&self) -> NewSubject {
        let mut f = Flags::default();
        for flag in &self.flags {
            match flag {
                Flag::Convicted => f.convicted = true,
                Flag::Wanted => f.wanted = true,
                Flag::Missing => f.missing = true,
                Flag::Preventive => f.preventive_supervision = true,
                Flag::Probation => f.probation_supervision = true,
                Flag::Administrative => f.administrative_supervision = true,
            }
        }
        NewSubject {
            external_id: self.external_id.clone(),
            surname: self.surname.clone(),
            given_name: self.given_name.clone(),
            patronymic: self.patronymic.clone(),
            date_of_birth: self.date_of_birth.clone(),
            address: self.address.clone(),
            flags: f,
        }
    }
}

/// Enrols and prints the report as JSON.
pub fn run(data: PathBuf, a: EnrollArgs) -> anyhow::Result<ExitCode> {
    let probes = a.faces.iter().map(|p| read_probe(p)).collect::<anyhow::Result<Vec<_>>>()?;
    let fingers = a.fingers.iter().map(|f| read_finger(f)).collect::<anyhow::Result<Vec<_>>>()?;
    super::runtime()?.block_on(async {
        let svc = IdentificationService::open(&data, a.model.as_deref()).await?;
        let report = svc.enroll_with(&a.subject(), &probes, &fingers, &cli_actor(None)).await?;
        println!("{}", serde_json::to_string_pretty(&report)?);
        svc.catalog().close().await;
        Ok(ExitCode::SUCCESS)
    })
}
