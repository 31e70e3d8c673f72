//! `epatrol fingerprint decode|inspect|extract`: fingerprint files on the command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use epatrol_engine::finger::image::{self, Format};
use epatrol_engine::finger::iso19794::{self, View};
use epatrol_engine::finger::leader::Leader;
use epatrol_engine::finger::{dataset, quality};

/// Arguments of `epatrol fingerprint`.
#[derive(Debug, clap::Args)]
pub struct FingerprintArgs {
    /// What to do.
    #[command(subcommand)]
    pub what: FingerprintCommand,
}

/// Fingerprint file commands.
#[derive(Debug, clap::Subcommand)]
pub enum FingerprintCommand {
    /// Convert any supported image (PNG, BMP, TIFF, PGM, JPEG, WSQ) to 8-bit grey PNG,
    /// keeping the resolution in the PNG pHYs chunk.
    Decode {
        /// Input image.
        input: PathBuf,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Resolution to record when the file states none (pixels per inch).
        #[arg(long)]
        ppi: Option<f32>,
    },
    /// Print JSON describing an image (format, size, resolution) or a minutiae template
    /// (standard, size, resolution, each view's finger position and minutiae count).
    Inspect {
        /// Image or ISO/IEC 19794-2 / ANSI INCITS 378 template.
        file: PathBuf,
    },
    /// Extract minutiae with LEADER and write an ISO/IEC 19794-2:2005 template.
    Extract {
        /// Input image.
        input: PathBuf,
        /// Output template.
        #[arg(long)]
        out: PathBuf,
        /// Sensor resolution (default: stated by the file, else 500).
        #[arg(long)]
        ppi: Option<f32>,
        /// ISO finger position code (0 unknown, 1 right thumb … 10 left little).
        #[arg(long, default_value_t = 0)]
        finger: u8,
    },
}

/// Runs a fingerprint command.
pub fn run(a: FingerprintArgs) -> anyhow::Result<ExitCode> {
    match a.what {
        FingerprintCommand::Decode { input, out, ppi } => {
            let bytes = std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let mut img = image::decode(&bytes).with_context(|| input.display().to_string())?;
            img.ppi = img.ppi.or(ppi);
            std::fs::write(&out, image::encode_png(&img)?).with_context(|| format!("writing {}", out.display()))?;
            eprintln!("{}x{} {:?} -> {} (ppi {:?})", img.width, img.height, img.format, out.display(), img.ppi);
            Ok(ExitCode::SUCCESS)
        }
        FingerprintCommand::Inspect { file } => {
            let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            println!("{}", serde_json::to_string_pretty(&inspect(&bytes)?)?);
            Ok(ExitCode::SUCCESS)
        }
        FingerprintCommand::Extract { input, out, ppi, finger } => {
            let bytes = std::fs::read(&input).with_context(|| format!("reading {}", input.display()))?;
            let img = image::decode(&bytes).with_context(|| input.display().to_string())?;
            let ppi = ppi.or(img.ppi).unwrap_or(500.0);
            let leader = Leader::open_latency(std::thread::available_parallelism().map_or(2, |n| n.get()))?;
            let mut t = leader.extract(&img, ppi)?;
            let q = quality::assess(&img, ppi, &t);
            t.quality = q.score;
            if let Some(reason) = &q.reject {
                anyhow::bail!("print unusable: {reason}");
            }
            let view =
                View { finger_position: finger, view_number: 0, impression_type: 0, quality: q.score, template: t };
            std::fs::write(&out, iso19794::encode_iso2005(std::slice::from_ref(&view))?)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("{} minutiae, quality {} -> {}", view.template.minutiae.len(), q.score, out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// JSON description of an image or template file.
pub fn inspect(bytes: &[u8]) -> anyhow::Result<serde_json::Value> {
    if image::sniff(bytes) == Some(Format::Wsq) {
        let w = epatrol_engine::finger::wsq::parse(bytes)?;
        // the headers can be sound while the coded data is not: say which
        let decoded = epatrol_engine::finger::wsq::decode(bytes);
        return Ok(serde_json::json!({
            "kind": "image", "format": "wsq", "width": w.width, "height": w.height, "ppi": w.ppi,
            "blocks": w.blocks, "pixels_decodable": decoded.is_ok(),
            "decode_error": decoded.err().map(|e| e.to_string()),
        }));
    }
    if iso19794::looks_like_template(bytes) {
        let r = iso19794::decode(bytes)?;
        let views: Vec<_> = r
            .views
            .iter()
            .map(|v| {
                serde_json::json!({
                    "finger_position": v.finger_position,
                    "view_number": v.view_number,
                    "impression_type": v.impression_type,
                    "quality": v.quality,
                    "minutiae": v.template.minutiae.len(),
                })
            })
            .collect();
        return Ok(serde_json::json!({
            "kind": "template", "format": r.standard, "width": r.width, "height": r.height,
            "ppi": r.ppi, "views": views, "warnings": r.warnings,
        }));
    }
    let img = image::decode(bytes)?;
    let fvc = dataset::fvc_ppi_by_geometry(img.width, img.height);
    Ok(serde_json::json!({
        "kind": "image",
        "format": img.format,
        "width": img.width,
        "height": img.height,
        "ppi": img.ppi,
        "ppi_source": if img.ppi.is_some() { "file" } else { "not stated (or implausible)" },
        "ppi_assumed": img.ppi.unwrap_or(fvc),
    }))
}
