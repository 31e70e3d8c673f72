//! Keyframe thumbnails: seek to a few points, decode the keyframe there, scale to a small
//! JPEG. Best effort: a damaged file yields the thumbnails its readable part allows.

use std::path::Path;

use ffmpeg_next as ff;

use super::init;

/// Longest side of a thumbnail in pixels.
pub const THUMB_MAX: u32 = 320;

/// One encoded thumbnail.
#[derive(Debug, Clone)]
pub struct Thumbnail {
    /// Presentation time of the decoded frame, milliseconds from the start.
    pub pts_ms: i64,
    /// JPEG bytes.
    pub jpeg: Vec<u8>,
}

/// Up to `count` thumbnails spread over `duration_ms` (start, then evenly to ~90 %).
pub fn thumbnails(path: &Path, duration_ms: u64, count: usize) -> Vec<Thumbnail> {
    init();
    let mut out = Vec::new();
    for i in 0..count {
        let at_ms = if count <= 1 { 0 } else { duration_ms * 9 / 10 * i as u64 / (count as u64 - 1) };
        match one(path, at_ms) {
            Ok(Some(t)) if out.iter().all(|o: &Thumbnail| o.pts_ms != t.pts_ms) => out.push(t),
            Ok(_) => {}
            Err(e) => tracing::debug!(path = %path.display(), at_ms, error = %e, "no thumbnail"),
        }
    }
    out
}

fn one(path: &Path, at_ms: u64) -> Result<Option<Thumbnail>, ff::Error> {
    let mut ictx = ff::format::input(path)?;
    let stream = ictx.streams().best(ff::media::Type::Video).ok_or(ff::Error::StreamNotFound)?;
    let index = stream.index();
    let tb = stream.time_base();
    let mut decoder = ff::codec::context::Context::from_parameters(stream.parameters())?.decoder().video()?;
    if at_ms > 0 {
        // seek (in AV_TIME_BASE microseconds) to the keyframe at or before the target
        let ts = at_ms as i64 * 1000;
        ictx.seek(ts, ..ts + 1)?;
    }
    let mut frame = ff::frame::Video::empty();
    let mut packet = ff::Packet::empty();
    let mut got = false;
    for _ in 0..600 {
        match packet.read(&mut ictx) {
            Ok(()) if packet.stream() == index => {
                decoder.send_packet(&packet)?;
                if decoder.receive_frame(&mut frame).is_ok() {
                    got = true;
                    break;
                }
            }
            Ok(()) => {}
            Err(_) => {
                decoder.send_eof()?;
                got = decoder.receive_frame(&mut frame).is_ok();
                break;
            }
        }
    }
    if !got {
        return Ok(None);
    }
    let (w, h) = (frame.width(), frame.height());
    let scale = (THUMB_MAX as f64 / w.max(h) as f64).min(1.0);
    let (tw, th) = (((w as f64 * scale) as u32).max(2) & !1, ((h as f64 * scale) as u32).max(2) & !1);
    let mut scaler = ff::software::scaling::Context::get(
        frame.format(),
        w,
        h,
        ff::format::Pixel::RGB24,
        tw,
        th,
        ff::software::scaling::Flags::BILINEAR,
    )?;
    let mut rgb = ff::frame::Video::empty();
    scaler.run(&frame, &mut rgb)?;
    // copy out row by row: ffmpeg pads each line to its stride
    let stride = rgb.stride(0);
    let data = rgb.data(0);
    let mut packed = Vec::with_capacity((tw * th * 3) as usize);
    for y in 0..th as usize {
        packed.extend_from_slice(&data[y * stride..y * stride + tw as usize * 3]);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 80)
        .encode(&packed, tw, th, image::ExtendedColorType::Rgb8)
        .map_err(|_| ff::Error::Bug)?;
    let pts = frame.pts().or(frame.timestamp()).unwrap_or(0);
    let pts_ms = (pts as f64 * f64::from(tb) * 1000.0) as i64;
    Ok(Some(Thumbnail { pts_ms, jpeg }))
}
