//! Command-line interface: one file per command group; this file only wires them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod bench_face;
mod bench_load;
mod common;
mod demo;
mod enroll;
mod eval;
mod eval_faces;
mod eval_fingers;
mod face_vectors;
mod fingerprint;
mod identify;
mod models;
mod serve;
mod user;
mod vault;

/// E-patrol: real-time 1:N identification (fingerprint, face) and body-camera evidence vault.
#[derive(Debug, Parser)]
#[command(name = "epatrol", version, about, long_about = None)]
pub struct Cli {
    /// Data directory (catalog, vault, keys). Created on first use.
    #[arg(long, global = true, env = "EPATROL_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Enrol a person: identity data, flags and face photo(s).
    Enroll(enroll::EnrollArgs),
    /// Identify a person 1:N from a face photo: decision, candidates, flags, escort advice.
    Identify(identify::IdentifyArgs),
    /// Build a sample gallery from ../shared/datasets (synthetic personal data) and identify held-back photos.
    Demo(demo::DemoArgs),
    /// Measure accuracy on a labelled dataset (`eval faces --dataset DIR`).
    Eval(eval::EvalArgs),
    /// Fingerprint files: decode to PNG, inspect images and templates, extract ISO templates.
    Fingerprint(fingerprint::FingerprintArgs),
    /// List the models in the manifest and check their files and checksums.
    Models(models::ModelsArgs),
    /// Benchmarks (`bench index`: gallery search, same JSON keys as shared/bench/faiss_anchor.py).
    Bench(bench::BenchArgs),
    /// Serve the HTTP API (`/v1/...`) over the data dir until SIGINT/SIGTERM.
    Serve(serve::ServeArgs),
    /// Accounts for the HTTP API (`user add --login L --role R`).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Device credentials for the HTTP API (`device enroll --id D`).
    #[command(subcommand)]
    Device(user::DeviceCommand),
    /// Evidence vault commands (ingest, incident, classify, hold, case, sweep, verify, export, ...).
    #[command(flatten)]
    Vault(vault::VaultCommand),
}

/// Runs a parsed command line; the exit code on success (some commands report failures
/// through it, e.g. `verify`).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Enroll(a) => enroll::run(cli.data, a),
        Command::Identify(a) => identify::run(cli.data, a),
        Command::Eval(a) => eval::run(a),
        Command::Demo(a) => demo::run(cli.data, a),
        Command::Fingerprint(a) => fingerprint::run(a),
        Command::Models(a) => models::run(a),
        Command::Bench(a) => bench::run(cli.data, a),
        Command::Serve(a) => serve::run(cli.data, a),
        Command::User(c) => user::run(cli.data, c),
        Command::Device(c) => user::run_device(cli.data, c),
        Command::Vault(c) => vault::run(&cli.data, c),
    }
}

/// A tokio runtime for commands that talk to the catalog or the vault.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
