//! Video understanding with ffmpeg (libavformat/libavcodec through `ffmpeg-next`):
//! container sniffing, probing, damage detection, keyframe thumbnails.
//!
//! Everything here is blocking; async callers use `spawn_blocking`.

mod probe;
mod sniff;
mod thumbs;

pub use probe::{MediaInfo, probe};
pub use sniff::sniff;
pub use thumbs::{Thumbnail, thumbnails};

use std::sync::OnceLock;

/// Why a file is not accepted as footage (shown to the user as-is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Rejection(pub String);

/// Initialises ffmpeg once per process and silences its own logging (our errors carry
/// the reason; ffmpeg's stderr chatter would only confuse the CLI's JSON output).
pub(crate) fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg_next::init().expect("ffmpeg initialisation");
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Quiet);
    });
}
