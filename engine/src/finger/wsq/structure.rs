//! The marker structure of a WSQ file: segments, frame size, resolution, comments.

use super::{COM, DHT, DQT, DRT, DTT, EOI, SOB, SOF, SOI, bad};
use crate::error::Result;
use crate::finger::image::PLAUSIBLE_PPI;

/// What the headers of a WSQ file say.
#[derive(Debug, Clone, PartialEq)]
pub struct WsqInfo {
    /// Image width, pixels.
    pub width: u16,
    /// Image height, pixels.
    pub height: u16,
    /// Resolution from a NIST comment (`PPI n`), if present and plausible.
    pub ppi: Option<f32>,
    /// Number of compressed blocks.
    pub blocks: usize,
    /// Free-text comments (NIST_COM and others).
    pub comments: Vec<String>,
}

fn u16_at(b: &[u8], pos: usize) -> Result<u16> {
    b.get(pos..pos + 2)
        .map(|s| u16::from_be_bytes([s[0], s[1]]))
        .ok_or_else(|| bad(format!("file ends at offset {pos} inside a header")))
}

/// Walks the markers of a WSQ file and returns its header information.
pub fn parse(bytes: &[u8]) -> Result<WsqInfo> {
    if u16_at(bytes, 0)? != SOI {
        return Err(bad("does not start with the SOI marker FFA0".into()));
    }
    let mut pos = 2;
    let mut frame: Option<(u16, u16)> = None;
    let (mut blocks, mut comments, mut have_dtt, mut have_dqt, mut have_dht) = (0, Vec::new(), false, false, false);
    loop {
        let marker = u16_at(bytes, pos)?;
        if marker == EOI {
            break;
        }
        let len = u16_at(bytes, pos + 2)? as usize;
        if len < 2 || pos + 2 + len > bytes.len() {
            return Err(bad(format!("segment {marker:04X} at offset {pos} declares {len} bytes past the end")));
        }
        let seg = &bytes[pos + 4..pos + 2 + len];
        match marker {
            SOF => {
                // black, white, height, width, m-shift exponent + value, r-scale exponent + value, encoder, software
                if seg.len() < 15 {
                    return Err(bad(format!("frame header at offset {pos} is {} bytes, 15 expected", seg.len())));
                }
                let (h, w) = (u16::from_be_bytes([seg[2], seg[3]]), u16::from_be_bytes([seg[4], seg[5]]));
                if w == 0 || h == 0 {
                    return Err(bad(format!("frame header says {w}x{h}")));
                }
                frame = Some((w, h));
            }
            DTT => have_dtt = true,
            DQT => have_dqt = true,
            DHT => have_dht = true,
            DRT => {}
            COM => comments.push(String::from_utf8_lossy(seg).into_owned()),
            SOB => {
                if frame.is_none() || !(have_dtt && have_dqt && have_dht) {
                    return Err(bad(format!(
                        "block at offset {pos} before the frame header and transform/quantisation/Huffman tables"
                    )));
                }
                blocks += 1;
                // entropy-coded data follows the block header up to the next marker
                // (0xFF bytes inside the data are stuffed as FF 00)
                let mut p = pos + 2 + len;
                while p + 1 < bytes.len() && !(bytes[p] == 0xFF && bytes[p + 1] != 0x00) {
                    p += 1;
                }
                if p + 1 >= bytes.len() {
                    return Err(bad(format!("block at offset {pos} runs to the end of the file without EOI")));
                }
                pos = p;
                continue;
            }
            m => return Err(bad(format!("unknown marker {m:04X} at offset {pos}"))),
        }
        pos += 2 + len;
    }
    let (width, height) = frame.ok_or_else(|| bad("no frame header (FFA2)".into()))?;
    if blocks == 0 {
        return Err(bad("no compressed block".into()));
    }
    let ppi = comments
        .iter()
        .find_map(|c| c.lines().find_map(|l| l.strip_prefix("PPI ").and_then(|v| v.trim().parse::<f32>().ok())));
    Ok(WsqInfo { width, height, ppi: ppi.filter(|p| PLAUSIBLE_PPI.contains(p)), blocks, comments })
}
