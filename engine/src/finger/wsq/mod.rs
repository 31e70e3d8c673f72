//! WSQ (FBI Wavelet Scalar Quantization, IAFIS-IC-0110 v3) files: structure and pixels.
//!
//! [`parse`] walks the marker structure (SOI, tables, frame header, blocks, EOI, each
//! segment's length inside the file) and reads width, height and the NIST comment's
//! resolution, so `inspect` can describe a file and a corrupted one is refused with the
//! offset and the reason.
//!
//! [`decode`] reconstructs the pixels the way the NIST reference decoder (NBIS
//! `imgtools/src/lib/wsq`: decoder.c, tableio.c, tree.c, util.c) does, reimplemented here:
//! the transform table (DTT) gives the synthesis filters, the quantisation table (DQT) the
//! bin centre C and each subband's bin width Q and zero-bin width Z, the Huffman tables
//! (DHT) and block headers (SOB) decode the coefficients of the 60 coded subbands (symbols
//! 1..=100 zero runs, 101..=106 escapes for 8/16-bit values and runs, 107..=254 small values
//! offset by 180), `unquantize` maps them back to bin centres, the 20-node wavelet tree and
//! 64-node quantisation tree place the subbands, the 2-D inverse transform (`join_lets`,
//! symmetric extension for odd- and even-length filters) rebuilds the image, and
//! pixel = trunc(value * R + M + 0.5) clamped to 0..=255 with the frame header's shift M and
//! scale R. Float operations follow NBIS's order and precision, so the result equals NBIS's
//! decode pixel for pixel (tests/wsq_decode.rs, on fixtures NBIS encoded and decoded; sides
//! under about 40 pixels, where NBIS reads outside the smallest subbands, may differ by 1).
//!
//! Every offset and size is checked: a damaged file gives `BadInput` with the reason, never
//! a panic, and memory is bounded by the frame size (each side at most
//! [`MAX_SIDE`](crate::finger::image::MAX_SIDE)) and by the coefficients actually decoded.

mod huffman;
mod quant;
mod structure;
mod tables;
mod tree;
mod wavelet;

pub use structure::{WsqInfo, parse};

use crate::error::{EngineError, Result};
use crate::finger::image::{Format, GrayImage, MAX_SIDE};
use huffman::{HuffDecoder, decode_block};
use quant::unquantize;
use tables::{Frame, Reader, Tables, read_frame};
use tree::{build_q_tree, build_w_tree};
use wavelet::reconstruct;

const SOI: u16 = 0xFFA0;
const EOI: u16 = 0xFFA1;
const SOF: u16 = 0xFFA2;
const SOB: u16 = 0xFFA3;
const DTT: u16 = 0xFFA4;
const DQT: u16 = 0xFFA5;
const DHT: u16 = 0xFFA6;
const DRT: u16 = 0xFFA7;
const COM: u16 = 0xFFA8;
/// Subbands that carry coefficients (the 4 others of the 64 are never coded).
const NUM_SUBBANDS: usize = 60;
/// Subbands of the quantisation tree.
const MAX_SUBBANDS: usize = 64;
/// Nodes of the wavelet tree.
const W_TREELEN: usize = 20;

/// A structure error, as the `BadInput` a caller sees.
fn bad(msg: String) -> EngineError {
    EngineError::BadInput(format!("corrupted WSQ: {msg}"))
}

/// Decodes a WSQ file to 8-bit grey pixels: the structure is checked ([`parse`]), then the
/// coefficients are Huffman-decoded, dequantised and put back through the inverse wavelet
/// transform (see the module doc). The resolution comes from the NIST comment when present
/// and plausible.
pub fn decode(bytes: &[u8]) -> Result<GrayImage> {
    let info = parse(bytes)?;
    let (frame, pixels) = decode_pixels(bytes)?;
    Ok(GrayImage {
        width: u32::from(frame.width),
        height: u32::from(frame.height),
        pixels,
        ppi: info.ppi,
        format: Format::Wsq,
    })
}

/// Whole decode after the structure check: tables, frame, blocks, then pixels.
fn decode_pixels(bytes: &[u8]) -> Result<(Frame, Vec<u8>)> {
    let mut r = Reader { b: bytes, pos: 0, what: "file" };
    if r.u16()? != SOI {
        return Err(bad("does not start with the SOI marker FFA0".into()));
    }
    let mut t = Tables::default();
    loop {
        match r.u16()? {
            SOF => break,
            m => t.read(m, &mut r)?,
        }
    }
    let frame = read_frame(&mut r)?;
    let (width, height) = (usize::from(frame.width), usize::from(frame.height));
    if width == 0 || height == 0 || width > MAX_SIDE as usize || height > MAX_SIDE as usize {
        return Err(bad(format!("frame header says {width}x{height}: each side must be 1..={MAX_SIDE} pixels")));
    }
    let w_tree = build_w_tree(width as i32, height as i32);
    let q_tree = build_q_tree(&w_tree);
    let inside = |x: i32, y: i32, lx: i32, ly: i32| {
        x >= 0 && y >= 0 && lx >= 0 && ly >= 0 && (x + lx) as usize <= width && (y + ly) as usize <= height
    };
    if !w_tree.iter().all(|n| inside(n.x, n.y, n.lenx, n.leny))
        || !q_tree.iter().all(|n| inside(n.x, n.y, n.lenx, n.leny))
    {
        return Err(bad(format!("{width}x{height} is too small for the WSQ subband decomposition")));
    }

    // Coefficients of all blocks, in subband order; at most one per pixel of the coded
    // subbands (NBIS bounds them the same way).
    let mut coeffs: Vec<i16> = Vec::new();
    let mut cap: Option<usize> = None;
    let mut marker = r.u16()?;
    loop {
        match marker {
            EOI => break,
            SOB => {
                let dqt = t.dqt.as_ref().ok_or_else(|| bad("block before the quantisation table".into()))?;
                let cap = *cap.get_or_insert_with(|| {
                    let zeroed: usize = (0..MAX_SUBBANDS)
                        .filter(|&b| dqt.q_bin[b] == 0.0)
                        .map(|b| (q_tree[b].lenx.max(0) * q_tree[b].leny.max(0)) as usize)
                        .sum();
                    (width * height).saturating_sub(zeroed)
                });
                let at = r.pos - 2;
                let id = r.segment("block header")?.u8()?;
                let table = t
                    .dht
                    .get(id as usize)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| bad(format!("block at offset {at} uses undefined Huffman table {id}")))?;
                let h = HuffDecoder::new(table, id)?;
                marker = decode_block(&mut r, &h, &mut coeffs, cap)?;
            }
            m => {
                t.read(m, &mut r)?;
                marker = r.u16()?;
            }
        }
    }
    let dqt = t.dqt.as_ref().ok_or_else(|| bad("no quantisation table (FFA5)".into()))?;
    let dtt = t.dtt.as_ref().ok_or_else(|| bad("no transform table (FFA4)".into()))?;
    let mut img = unquantize(dqt, &q_tree, &coeffs, width, height)?;
    drop(coeffs);
    reconstruct(&mut img, width, &w_tree, dtt)?;
    let pixels = img
        .iter()
        .map(|&v| {
            let p = (f64::from(v * frame.r_scale + frame.m_shift) + 0.5) as f32;
            if p < 0.0 {
                0
            } else if p > 255.0 {
                255
            } else {
                p as u8
            }
        })
        .collect();
    Ok((frame, pixels))
}

#[cfg(test)]
mod tests;
