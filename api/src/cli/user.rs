//! `epatrol user add` and `epatrol device enroll`: accounts and device credentials from
//! the command line (the first administrator's workstation, scripted provisioning).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use epatrol_api::http::auth::{Role, hash_password, random_secret, token_digest};
use epatrol_store::Catalog;

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
    pub role: Role,
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
        anyhow::ensure!(p.chars().count() >= 12, "the password must have at least 12 characters");
        (p, false)
    } else {
        (random_secret(), true)
    };
    let hash = hash_password(&password)?;
    super::runtime()?.block_on(async {
        let catalog = Catalog::open_in(&data).await?;
        let id = catalog.create_user(&a.login, a.role.as_str(), &hash).await?;
        let detail = serde_json::json!({"login": a.login, "role": a.role.as_str()});
        catalog.audit(&super::common::cli_actor(None), "", "user.create", None, "ok", &detail).await?;
        catalog.close().await;
        eprintln!("epatrol: created {} account '{}' (id {id})", a.role.as_str(), a.login);
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
    let secret = random_secret();
    super::runtime()?.block_on(async {
        let catalog = Catalog::open_in(&data).await?;
        catalog.enroll_device(&a.id, &token_digest(&secret)).await?;
        let detail = serde_json::json!({"device": a.id});
        catalog.audit(&super::common::cli_actor(None), "", "device.enroll", None, "ok", &detail).await?;
        catalog.close().await;
        eprintln!("epatrol: enrolled device '{}'; its secret (shown once): {secret}", a.id);
        Ok(ExitCode::SUCCESS)
    })
}
