//! `epatrol user add` and `epatrol device enroll`: accounts and device credentials from
//! the command line (the first administrator's workstation, scripted provisioning).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use epatrol_api::ApiError;
use epatrol_api::service::accounts::{Accounts, Actor, MIN_PASSWORD_CHARS, Role, random_secret};
use epatrol_store::Catalog;

/// A refused account or device change in the catalog's words (`already exists: …`,
/// `invalid: …`), which scripts around these commands match.
fn catalog_words(e: ApiError) -> anyhow::Error {
    match e {
        ApiError::Conflict(m) => anyhow::anyhow!("already exists: {m}"),
        ApiError::BadRequest(m) => anyhow::anyhow!("invalid: {m}"),
        other => other.into(),
    }
}

/// Roles as `--role` spells them (the account roles' stored names).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    /// Patrol officer: identify, upload.
    Patrol,
    /// Charging dock: upload only.
    Dock,
    /// Investigator: search and view evidence of their cases.
    Investigator,
    /// Supervisor: classify, holds, duty records.
    Supervisor,
    /// Administrator: users, devices, enrolment.
    Admin,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Patrol => Role::Patrol,
            RoleArg::Dock => Role::Dock,
            RoleArg::Investigator => Role::Investigator,
            RoleArg::Supervisor => Role::Supervisor,
            RoleArg::Admin => Role::Admin,
        }
    }
}

/// Account commands.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create an account. Without --password-stdin a random password is generated and
    /// printed once to stderr.
    Add(UserAddArgs),
}

/// Arguments of `epatrol user add`.
#[derive(Debug, clap::Args)]
pub struct UserAddArgs {
    /// Login name.
    #[arg(long)]
    pub login: String,
    /// Role.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// Read the password from the first line of stdin instead of generating one.
    #[arg(long)]
    pub password_stdin: bool,
}

/// Runs a `user` command.
pub fn run(data: PathBuf, c: UserCommand) -> anyhow::Result<ExitCode> {
    let UserCommand::Add(a) = c;
    let (password, generated) = if a.password_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
        let p = line.trim_end_matches(['\r', '\n']).to_string();
        anyhow::ensure!(
            p.chars().count() >= MIN_PASSWORD_CHARS,
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        );
        (p, false)
    } else {
        (random_secret(), true)
    };
    let role = Role::from(a.role);
    super::runtime()?.block_on(async {
        let catalog = Catalog::open_in(&data).await?;
        let by = super::common::cli_actor(None);
        let id = Accounts::new(catalog.clone())
            .create(Actor { login: &by, device: "" }, &a.login, role, &password)
            .await
            .map_err(catalog_words)?;
        catalog.close().await;
        eprintln!("epatrol: created {} account '{}' (id {id})", role.as_str(), a.login);
        if generated {
            eprintln!("epatrol: one-time password: {password}");
        }
        Ok(ExitCode::SUCCESS)
    })
}

/// Device commands.
#[derive(Debug, clap::Subcommand)]
pub enum DeviceCommand {
    /// Enrol (or re-key) a device: prints its secret once to stderr; logins from the device
    /// must then send it as `device_secret`. Its existing tokens are revoked.
    Enroll(DeviceEnrollArgs),
}

/// Arguments of `epatrol device enroll`.
#[derive(Debug, clap::Args)]
pub struct DeviceEnrollArgs {
    /// Device id, as the device sends it at login.
    #[arg(long)]
    pub id: String,
}

/// Runs a `device` command.
pub fn run_device(data: PathBuf, c: DeviceCommand) -> anyhow::Result<ExitCode> {
    let DeviceCommand::Enroll(a) = c;
    super::runtime()?.block_on(async {
        let catalog = Catalog::open_in(&data).await?;
        let by = super::common::cli_actor(None);
        let secret = Accounts::new(catalog.clone())
            .enroll_device(Actor { login: &by, device: "" }, &a.id)
            .await
            .map_err(catalog_words)?;
        catalog.close().await;
        eprintln!("epatrol: enrolled device '{}'; its secret (shown once): {secret}", a.id);
        Ok(ExitCode::SUCCESS)
    })
}
