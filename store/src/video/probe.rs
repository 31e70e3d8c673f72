//! Probe a file: container, codecs, geometry, duration, creation time, and whether the
//! bytes the container's sample table points at are actually present.

use std::path::Path;

use ffmpeg_next as ff;
use serde::Serialize;
use time::OffsetDateTime;

use super::{Rejection, init, sniff};

/// Facts about a video file.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaInfo {
    /// Container (ffmpeg demuxer name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// Video codec (`h264`, `hevc`, `mjpeg`, ...).
    pub video_codec: String,
    /// Audio codec, if there is an audio stream.
    pub audio_codec: Option<String>,
    /// Frame width in pixels.
    pub width: u32,
    /// Frame height in pixels.
    pub height: u32,
    /// Duration the container declares, in milliseconds.
    pub duration_ms: u64,
    /// Average frame rate, if known.
    pub frame_rate: Option<f64>,
    /// `creation_time` from the container metadata, if present and parseable.
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub creation_time: Option<OffsetDateTime>,
    /// Why the file is damaged (truncated, unreadable tail), or `None` if it looks whole.
    pub damage: Option<String>,
}

/// Probes `path`. Files that are not video at all (empty, text, unknown magic, no video
/// stream, no readable index) are rejected with a reason; a video whose data is cut short
/// is accepted with `damage` set, because a truncated camera file is still evidence.
pub fn probe(path: &Path) -> Result<MediaInfo, Rejection> {
    init();
    sniff(path)?;
    let file_size = std::fs::metadata(path).map_err(|e| Rejection(format!("cannot stat: {e}")))?.len();
    let mut ictx = ff::format::input(path).map_err(|e| Rejection(format!("ffmpeg cannot open the container: {e}")))?;
    let container = ictx.format().name().to_string();

    let vstream = ictx.streams().best(ff::media::Type::Video).ok_or_else(|| Rejection("no video stream".into()))?;
    let vindex = vstream.index();
    let vparams = vstream.parameters();
    let video_codec = vparams.id().name().to_string();
    let dec = ff::codec::context::Context::from_parameters(vparams)
        .and_then(|c| c.decoder().video())
        .map_err(|e| Rejection(format!("video stream {video_codec} cannot be decoded: {e}")))?;
    let (width, height) = (dec.width(), dec.height());
    if width == 0 || height == 0 {
        return Err(Rejection("video stream has no frame size".into()));
    }
    let rate = vstream.avg_frame_rate();
    let frame_rate = (rate.denominator() != 0 && rate.numerator() > 0).then(|| f64::from(rate));
    let audio_codec = ictx.streams().best(ff::media::Type::Audio).map(|s| s.parameters().id().name().to_string());

    let duration_ms = if ictx.duration() > 0 {
        (ictx.duration() as u64) / 1000
    } else {
        let tb = vstream.time_base();
        let d = vstream.duration().max(0) as f64 * f64::from(tb);
        (d * 1000.0) as u64
    };
    let creation_time = ictx
        .metadata()
        .get("creation_time")
        .map(str::to_string)
        .or_else(|| vstream.metadata().get("creation_time").map(str::to_string))
        .and_then(|s| OffsetDateTime::parse(&s, &time::format_description::well_known::Rfc3339).ok());

    let damage = match index_end(&ictx) {
        Some(end) if end > file_size => Some(format!(
            "truncated: the sample table reaches byte {end} but the file has {file_size} bytes ({:.0}% present)",
            100.0 * file_size as f64 / end as f64
        )),
        Some(_) => None,
        // no index (streamed formats): read every packet to find out
        None => demux_to_end(&mut ictx, vindex),
    };
    Ok(MediaInfo { container, video_codec, audio_codec, width, height, duration_ms, frame_rate, creation_time, damage })
}

/// The furthest byte any stream's index points at, or `None` when no stream has an index.
fn index_end(ictx: &ff::format::context::Input) -> Option<u64> {
    let mut end: Option<u64> = None;
    for s in ictx.streams() {
        // SAFETY: the stream pointer is valid while `ictx` is borrowed; the index accessors
        // only read the demuxer's index array and return null past its end.
        unsafe {
            let st = s.as_ptr() as *mut ff::ffi::AVStream;
            let n = ff::ffi::avformat_index_get_entries_count(st);
            for i in [n - 1, n.saturating_sub(2)].into_iter().filter(|&i| i >= 0) {
                let e = ff::ffi::avformat_index_get_entry(st, i);
                if !e.is_null() && (*e).pos >= 0 {
                    let last = (*e).pos as u64 + (*e).size() as u64;
                    end = Some(end.map_or(last, |x: u64| x.max(last)));
                }
            }
        }
    }
    end
}

fn demux_to_end(ictx: &mut ff::format::context::Input, vindex: usize) -> Option<String> {
    let mut video_packets = 0u64;
    let mut packet = ff::Packet::empty();
    loop {
        match packet.read(ictx) {
            Ok(()) => {
                if packet.stream() == vindex {
                    video_packets += 1;
                }
            }
            Err(ff::Error::Eof) => break,
            Err(e) => {
                return Some(format!("unreadable after {video_packets} video packets: {e}"));
            }
        }
    }
    (video_packets == 0).then(|| "no video packets could be read".to_string())
}
