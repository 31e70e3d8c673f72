//! WSQ (FBI Wavelet Scalar Quantization, IAFIS-IC-0110) files: structure parsing.
//!
//! What is implemented: the marker structure is walked and checked (SOI, tables, frame
//! header, blocks, EOI, each segment's length inside the file), and the frame header and
//! the NIST comment give width, height and resolution, so `inspect` can describe a WSQ
//! file and a corrupted one is refused with the offset and the reason.
//!
//! What is not: reconstructing pixels (Huffman decoding of the 64 sub-bands, inverse
//! quantisation and the 2-D inverse wavelet transform). A search of the crate documentation
//! index found no Rust WSQ decoder, and there is no WSQ sample with known pixels in
//! `../shared/datasets` to test a decoder against, so [`decode`] returns
//! `EngineError::Unsupported` for a well-formed file rather than pixels nobody checked.

use crate::error::{EngineError, Result};
use crate::finger::image::{GrayImage, PLAUSIBLE_PPI};

const SOI: u16 = 0xFFA0;
const EOI: u16 = 0xFFA1;
const SOF: u16 = 0xFFA2;
const SOB: u16 = 0xFFA3;
const DTT: u16 = 0xFFA4;
const DQT: u16 = 0xFFA5;
const DHT: u16 = 0xFFA6;
const DRT: u16 = 0xFFA7;
const COM: u16 = 0xFFA8;

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

fn bad(msg: String) -> EngineError {
    EngineError::BadInput(format!("corrupted WSQ: {msg}"))
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

/// Decodes a WSQ file: the structure is checked ([`parse`]); pixel reconstruction is not
/// implemented (see the module doc), so a well-formed file gives `Unsupported`.
pub fn decode(bytes: &[u8]) -> Result<GrayImage> {
    let info = parse(bytes)?;
    Err(EngineError::Unsupported(format!(
        "WSQ pixel decoding is not implemented ({}x{} WSQ image, {} block(s)); convert it to PNG with NBIS dwsq",
        info.width, info.height, info.blocks
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(marker: u16, body: &[u8]) -> Vec<u8> {
        let mut v = marker.to_be_bytes().to_vec();
        v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    /// A structurally valid WSQ skeleton (tables are opaque to the parser).
    fn skeleton() -> Vec<u8> {
        let mut f = SOI.to_be_bytes().to_vec();
        f.extend(seg(COM, b"NIST_COM 3\nPIX_WIDTH 300\nPIX_HEIGHT 400\nPPI 500\n"));
        f.extend(seg(DTT, &[0; 8]));
        f.extend(seg(DQT, &[0; 8]));
        f.extend(seg(DHT, &[0; 8]));
        let mut sof = vec![0, 255];
        sof.extend_from_slice(&400u16.to_be_bytes());
        sof.extend_from_slice(&300u16.to_be_bytes());
        sof.extend_from_slice(&[0; 9]);
        f.extend(seg(SOF, &sof));
        f.extend(seg(SOB, &[0]));
        f.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]); // entropy data with a stuffed FF
        f.extend_from_slice(&EOI.to_be_bytes());
        f
    }

    #[test]
    fn headers_are_read_and_pixels_are_refused_honestly() {
        let info = parse(&skeleton()).unwrap();
        assert_eq!((info.width, info.height, info.ppi, info.blocks), (300, 400, Some(500.0), 1));
        let e = decode(&skeleton()).unwrap_err();
        assert!(matches!(e, EngineError::Unsupported(_)), "{e}");
        assert!(e.to_string().contains("300x400"));
    }

    #[test]
    fn corrupted_files_are_refused_with_a_reason() {
        let good = skeleton();
        for cut in [1, 3, 10, good.len() / 2, good.len() - 2] {
            let e = parse(&good[..cut]).unwrap_err().to_string();
            assert!(e.contains("corrupted WSQ"), "cut {cut}: {e}");
        }
        let mut bad_marker = good.clone();
        bad_marker[2..4].copy_from_slice(&0xFFB9u16.to_be_bytes());
        assert!(parse(&bad_marker).unwrap_err().to_string().contains("unknown marker"));
        let mut huge = good.clone();
        huge[4..6].copy_from_slice(&0xFFF0u16.to_be_bytes());
        assert!(parse(&huge).unwrap_err().to_string().contains("past the end"));
    }
}
