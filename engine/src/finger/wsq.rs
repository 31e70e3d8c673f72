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

use crate::error::{EngineError, Result};
use crate::finger::image::{Format, GrayImage, MAX_SIDE, PLAUSIBLE_PPI};

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

// ---------------------------------------------------------------------------------------
// Tables and headers (NBIS tableio.c, jpegl/huff.c)

/// Largest filter length accepted in a transform table (the standard filters have 9 and 7 taps).
const MAX_FILTER_TAPS: usize = 32;
/// Subbands that carry coefficients (the 4 others of the 64 are never coded).
const NUM_SUBBANDS: usize = 60;
const MAX_SUBBANDS: usize = 64;
const W_TREELEN: usize = 20;
const MAX_HUFFBITS: usize = 16;
/// Huffman values per table (the values array is one longer, zero-padded, as in NBIS).
const MAX_HUFFCOUNTS: usize = 256;

/// Transform table (DTT): synthesis low-pass and high-pass filters.
#[derive(Debug, Clone)]
struct Dtt {
    lo: Vec<f32>,
    hi: Vec<f32>,
}

/// Quantisation table (DQT): bin centre C and per-subband bin width Q and zero-bin width Z.
#[derive(Debug, Clone)]
struct Dqt {
    bin_center: f32,
    q_bin: [f32; MAX_SUBBANDS],
    z_bin: [f32; MAX_SUBBANDS],
}

/// One Huffman table (DHT): code counts per length and the values in code order.
#[derive(Debug, Clone)]
struct Dht {
    bits: [u8; MAX_HUFFBITS],
    values: [u8; MAX_HUFFCOUNTS + 1],
}

/// Frame header (SOF).
#[derive(Debug, Clone, Copy)]
struct Frame {
    width: u16,
    height: u16,
    m_shift: f32,
    r_scale: f32,
}

#[derive(Debug, Default)]
struct Tables {
    dtt: Option<Dtt>,
    dqt: Option<Dqt>,
    dht: [Option<Dht>; 8],
}

/// Byte reader over the whole file or one segment; every read is bounds-checked.
struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
    /// What ends when the bytes run out ("file" or the segment's name).
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> Result<u8> {
        let v = *self.b.get(self.pos).ok_or_else(|| bad(format!("{} ends at offset {}", self.what, self.pos)))?;
        self.pos += 1;
        Ok(v)
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]))
    }

    /// The body of the segment whose length field is next (the length counts itself);
    /// the reader moves past the segment.
    fn segment(&mut self, what: &'static str) -> Result<Reader<'a>> {
        let at = self.pos;
        let len = self.u16()? as usize;
        let end = at + len;
        if len < 2 || end > self.b.len() {
            return Err(bad(format!("{what} at offset {at} declares {len} bytes past the end")));
        }
        self.pos = end;
        Ok(Reader { b: &self.b[..end], pos: at + 2, what })
    }
}

/// `value / 10^scale`, divided step by step in double precision and rounded to float each
/// time, as NBIS does (so the tables give bit-identical floats).
fn scaled(value: u32, scale: u8) -> f32 {
    let mut f = value as f32;
    for _ in 0..scale {
        f = (f64::from(f) / 10.0) as f32;
    }
    f
}

impl Tables {
    fn read(&mut self, marker: u16, r: &mut Reader) -> Result<()> {
        match marker {
            DTT => self.dtt = Some(read_dtt(&mut r.segment("transform table")?)?),
            DQT => self.dqt = Some(read_dqt(&mut r.segment("quantisation table")?)?),
            DHT => read_dht(&mut r.segment("Huffman table")?, &mut self.dht)?,
            COM => {
                r.segment("comment")?;
            }
            m => return Err(bad(format!("marker {m:04X} at offset {} where a table was expected", r.pos - 2))),
        }
        Ok(())
    }
}

/// DTT: the file stores half of each analysis filter; the synthesis filters are rebuilt by
/// symmetry with alternating signs (NBIS `getc_transform_table`).
fn read_dtt(r: &mut Reader) -> Result<Dtt> {
    let at = r.pos;
    let hisz = r.u8()? as usize;
    let losz = r.u8()? as usize;
    for (n, what) in [(hisz, "high-pass"), (losz, "low-pass")] {
        if !(2..=MAX_FILTER_TAPS).contains(&n) {
            return Err(bad(format!(
                "transform table at offset {at}: {what} filter of {n} taps (2..={MAX_FILTER_TAPS})"
            )));
        }
    }
    let coef = |r: &mut Reader| -> Result<f32> {
        let (sign, scale, v) = (r.u8()?, r.u8()?, r.u32()?);
        let f = scaled(v, scale);
        Ok(if sign != 0 { -f } else { f })
    };
    // alternating sign: +1 for even powers, -1 for odd (NBIS int_sign)
    let alt = |p: usize| if p.is_multiple_of(2) { 1.0f32 } else { -1.0 };
    let mut hi = vec![0f32; hisz];
    let a_size = hisz.div_ceil(2) - 1;
    for cnt in 0..=a_size {
        let a = coef(r)?;
        if hisz % 2 == 1 {
            hi[cnt + a_size] = alt(cnt) * a;
            if cnt > 0 {
                hi[a_size - cnt] = hi[cnt + a_size];
            }
        } else {
            hi[cnt + a_size + 1] = alt(cnt) * a;
            hi[a_size - cnt] = -hi[cnt + a_size + 1];
        }
    }
    let mut lo = vec![0f32; losz];
    let a_size = losz.div_ceil(2) - 1;
    for cnt in 0..=a_size {
        let a = coef(r)?;
        if losz % 2 == 1 {
            lo[cnt + a_size] = alt(cnt) * a;
            if cnt > 0 {
                lo[a_size - cnt] = lo[cnt + a_size];
            }
        } else {
            lo[cnt + a_size + 1] = alt(cnt + 1) * a;
            lo[a_size - cnt] = lo[cnt + a_size + 1];
        }
    }
    Ok(Dtt { lo, hi })
}

fn read_dqt(r: &mut Reader) -> Result<Dqt> {
    let scale = r.u8()?;
    let bin_center = scaled(u32::from(r.u16()?), scale);
    let (mut q_bin, mut z_bin) = ([0f32; MAX_SUBBANDS], [0f32; MAX_SUBBANDS]);
    for band in 0..MAX_SUBBANDS {
        let scale = r.u8()?;
        q_bin[band] = scaled(u32::from(r.u16()?), scale);
        let scale = r.u8()?;
        z_bin[band] = scaled(u32::from(r.u16()?), scale);
    }
    Ok(Dqt { bin_center, q_bin, z_bin })
}

/// DHT: one or more tables (id, 16 code counts, values) filling the segment.
fn read_dht(r: &mut Reader, dht: &mut [Option<Dht>; 8]) -> Result<()> {
    loop {
        let at = r.pos;
        let id = r.u8()? as usize;
        if id >= dht.len() {
            return Err(bad(format!("Huffman table at offset {at} has id {id} (0..=7)")));
        }
        let mut bits = [0u8; MAX_HUFFBITS];
        for b in &mut bits {
            *b = r.u8()?;
        }
        let n: usize = bits.iter().map(|&b| b as usize).sum();
        if n > MAX_HUFFCOUNTS {
            return Err(bad(format!("Huffman table at offset {at} declares {n} codes (at most {MAX_HUFFCOUNTS})")));
        }
        let mut values = [0u8; MAX_HUFFCOUNTS + 1];
        for v in &mut values[..n] {
            *v = r.u8()?;
        }
        dht[id] = Some(Dht { bits, values });
        if r.pos >= r.b.len() {
            return Ok(());
        }
    }
}

fn read_frame(r: &mut Reader) -> Result<Frame> {
    let mut s = r.segment("frame header")?;
    let (_black, _white) = (s.u8()?, s.u8()?);
    let (height, width) = (s.u16()?, s.u16()?);
    let scale = s.u8()?;
    let m_shift = scaled(u32::from(s.u16()?), scale);
    let scale = s.u8()?;
    let r_scale = scaled(u32::from(s.u16()?), scale);
    let (_encoder, _software) = (s.u8()?, s.u16()?);
    Ok(Frame { width, height, m_shift, r_scale })
}

// ---------------------------------------------------------------------------------------
// Entropy-coded data (NBIS decoder.c: huffman_decode_data_mem, decode_data_mem,
// getc_nextbits_wsq)

/// Canonical Huffman decoding tables for one block (NBIS `gen_decode_table`).
struct HuffDecoder {
    maxcode: [i32; MAX_HUFFBITS + 1],
    mincode: [i32; MAX_HUFFBITS + 1],
    valptr: [i32; MAX_HUFFBITS + 1],
    values: [u8; MAX_HUFFCOUNTS + 1],
}

impl HuffDecoder {
    fn new(t: &Dht, id: u8) -> Result<Self> {
        // code sizes in order, then canonical codes (JPEG Annex C)
        let mut codes = Vec::with_capacity(MAX_HUFFCOUNTS);
        let mut code = 0u32;
        for (i, &count) in t.bits.iter().enumerate() {
            let size = i + 1;
            for _ in 0..count {
                if code >= 1 << size {
                    return Err(bad(format!(
                        "Huffman table {id} is over-subscribed (more codes than {size}-bit words)"
                    )));
                }
                codes.push(code as i32);
                code += 1;
            }
            code <<= 1;
        }
        let (mut maxcode, mut mincode, mut valptr) = ([0i32; 17], [0i32; 17], [0i32; 17]);
        let mut i2 = 0usize;
        for i in 1..=MAX_HUFFBITS {
            let n = t.bits[i - 1] as usize;
            if n == 0 {
                maxcode[i] = -1;
                continue;
            }
            valptr[i] = i2 as i32;
            mincode[i] = codes[i2];
            i2 += n - 1;
            maxcode[i] = codes[i2];
            i2 += 1;
        }
        Ok(HuffDecoder { maxcode, mincode, valptr, values: t.values })
    }
}

/// What the bit stream gave: a value, or a marker that ended the block's data.
enum Next {
    Value(u16),
    Marker(u16),
}

/// Bit reader over entropy-coded data with JPEG-style byte stuffing (FF 00 = data byte FF;
/// FF followed by anything else is a marker).
struct Bits<'r, 'a> {
    r: &'r mut Reader<'a>,
    cur: u8,
    left: u32,
}

impl Bits<'_, '_> {
    /// `n` bits, most significant first. A marker is reported only when it is met at the
    /// start of a one-bit read (a Huffman code boundary or inside a code); anywhere else it
    /// is corruption.
    fn take(&mut self, n: u32) -> Result<Next> {
        let mut out = 0u32;
        let mut need = n;
        while need > 0 {
            if self.left == 0 {
                let at = self.r.pos;
                let b = self.r.u8()?;
                if b == 0xFF {
                    let b2 = self.r.u8()?;
                    if b2 != 0 {
                        if n == 1 {
                            return Ok(Next::Marker(u16::from_be_bytes([b, b2])));
                        }
                        return Err(bad(format!("marker FF{b2:02X} at offset {at} inside a coded value")));
                    }
                }
                self.cur = b;
                self.left = 8;
            }
            let k = need.min(self.left);
            let bits = (u32::from(self.cur) >> (self.left - k)) & ((1 << k) - 1);
            out = (out << k) | bits;
            self.left -= k;
            need -= k;
        }
        Ok(Next::Value(out as u16))
    }

    fn value(&mut self, n: u32) -> Result<u16> {
        match self.take(n)? {
            Next::Value(v) => Ok(v),
            Next::Marker(m) => Err(bad(format!("marker {m:04X} inside a coded value"))),
        }
    }

    /// The next Huffman symbol, or the marker that ends the block.
    fn symbol(&mut self, h: &HuffDecoder) -> Result<Next> {
        let at = self.r.pos;
        let mut code = match self.take(1)? {
            Next::Value(v) => i32::from(v),
            m => return Ok(m),
        };
        let mut len = 1;
        while code > h.maxcode[len] {
            len += 1;
            if len > MAX_HUFFBITS {
                return Err(bad(format!("no Huffman code matches the bits near offset {at}")));
            }
            match self.take(1)? {
                Next::Value(v) => code = (code << 1) + i32::from(v),
                m => return Ok(m),
            }
        }
        let idx = h.valptr[len] + code - h.mincode[len];
        let v = usize::try_from(idx)
            .ok()
            .and_then(|i| h.values.get(i))
            .ok_or_else(|| bad(format!("Huffman code near offset {at} points outside its table")))?;
        Ok(Next::Value(u16::from(*v)))
    }
}

/// Decodes one block's coefficients (appended to `out`, at most `cap` in all) and returns
/// the marker that follows the data.
fn decode_block(r: &mut Reader, h: &HuffDecoder, out: &mut Vec<i16>, cap: usize) -> Result<u16> {
    let mut bits = Bits { r, cur: 0, left: 0 };
    loop {
        let at = bits.r.pos;
        let sym = match bits.symbol(h)? {
            Next::Value(v) => v,
            Next::Marker(m) => return Ok(m),
        };
        let zero_run = |out: &mut Vec<i16>, n: usize| -> Result<()> {
            if out.len() + n > cap {
                return Err(bad(format!("coefficients near offset {at} run past the {cap} the image holds")));
            }
            out.resize(out.len() + n, 0);
            Ok(())
        };
        let v: i16 = match sym {
            1..=100 => {
                zero_run(out, sym as usize)?;
                continue;
            }
            105 => {
                let n = bits.value(8)? as usize;
                zero_run(out, n)?;
                continue;
            }
            106 => {
                let n = bits.value(16)? as usize;
                zero_run(out, n)?;
                continue;
            }
            101 => bits.value(8)? as i16,
            102 => -(bits.value(8)? as i16),
            // 16-bit magnitudes are stored into a short as NBIS does (wrapping)
            103 => bits.value(16)? as i16,
            104 => (-i32::from(bits.value(16)?)) as i16,
            107..=254 => sym as i16 - 180,
            _ => return Err(bad(format!("invalid Huffman symbol {sym} near offset {at}"))),
        };
        if out.len() >= cap {
            return Err(bad(format!("coefficients near offset {at} run past the {cap} the image holds")));
        }
        out.push(v);
    }
}

// ---------------------------------------------------------------------------------------
// Subband geometry (NBIS tree.c)

#[derive(Debug, Clone, Copy, Default)]
struct WNode {
    x: i32,
    y: i32,
    lenx: i32,
    leny: i32,
    inv_rw: bool,
    inv_cl: bool,
}

#[derive(Debug, Clone, Copy, Default)]
struct QNode {
    x: i32,
    y: i32,
    lenx: i32,
    leny: i32,
}

/// The 20-node wavelet tree: where each 2-D split happens and at what size.
fn build_w_tree(width: i32, height: i32) -> [WNode; W_TREELEN] {
    let mut w = [WNode::default(); W_TREELEN];
    for n in [2, 4, 7, 9, 11, 13, 16, 18] {
        w[n].inv_rw = true;
    }
    for n in [3, 5, 8, 9, 12, 13, 17, 18] {
        w[n].inv_cl = true;
    }
    w_tree4(&mut w, 0, 1, width, height, 0, 0, true);
    let (lenx, lenx2) = if w[1].lenx % 2 == 0 {
        (w[1].lenx / 2, w[1].lenx / 2)
    } else {
        ((w[1].lenx + 1) / 2, (w[1].lenx + 1) / 2 - 1)
    };
    let (leny, leny2) = if w[1].leny % 2 == 0 {
        (w[1].leny / 2, w[1].leny / 2)
    } else {
        ((w[1].leny + 1) / 2, (w[1].leny + 1) / 2 - 1)
    };
    w_tree4(&mut w, 4, 6, lenx2, leny, lenx, 0, false);
    w_tree4(&mut w, 5, 10, lenx, leny2, 0, leny, false);
    w_tree4(&mut w, 14, 15, lenx, leny, 0, 0, false);
    w[19].x = 0;
    w[19].y = 0;
    w[19].lenx = (w[15].lenx + 1) / 2; // = lenx / 2 when even
    w[19].leny = (w[15].leny + 1) / 2;
    w
}

#[allow(clippy::too_many_arguments)]
fn w_tree4(w: &mut [WNode; W_TREELEN], p1: usize, p2: usize, lenx: i32, leny: i32, x: i32, y: i32, stop1: bool) {
    w[p1].x = x;
    w[p1].y = y;
    w[p1].lenx = lenx;
    w[p1].leny = leny;
    w[p2].x = x;
    w[p2 + 2].x = x;
    w[p2].y = y;
    w[p2 + 1].y = y;
    if lenx % 2 == 0 {
        w[p2].lenx = lenx / 2;
        w[p2 + 1].lenx = w[p2].lenx;
    } else if p1 == 4 {
        w[p2].lenx = (lenx - 1) / 2;
        w[p2 + 1].lenx = w[p2].lenx + 1;
    } else {
        w[p2].lenx = (lenx + 1) / 2;
        w[p2 + 1].lenx = w[p2].lenx - 1;
    }
    w[p2 + 1].x = w[p2].lenx + x;
    if !stop1 {
        w[p2 + 3].lenx = w[p2 + 1].lenx;
        w[p2 + 3].x = w[p2 + 1].x;
    }
    w[p2 + 2].lenx = w[p2].lenx;
    if leny % 2 == 0 {
        w[p2].leny = leny / 2;
        w[p2 + 2].leny = w[p2].leny;
    } else if p1 == 5 {
        w[p2].leny = (leny - 1) / 2;
        w[p2 + 2].leny = w[p2].leny + 1;
    } else {
        w[p2].leny = (leny + 1) / 2;
        w[p2 + 2].leny = w[p2].leny - 1;
    }
    w[p2 + 2].y = w[p2].leny + y;
    if !stop1 {
        w[p2 + 3].leny = w[p2 + 2].leny;
        w[p2 + 3].y = w[p2 + 2].y;
    }
    w[p2 + 1].leny = w[p2].leny;
}

/// The 64-node quantisation tree: position and size of each subband (60..64, the finest
/// diagonal detail, are placed but never coded).
fn build_q_tree(w: &[WNode; W_TREELEN]) -> [QNode; MAX_SUBBANDS] {
    let mut q = [QNode::default(); MAX_SUBBANDS];
    q_tree16(&mut q, 3, w[14], false, false);
    q_tree16(&mut q, 19, w[4], false, true);
    q_tree16(&mut q, 48, w[0], false, false);
    q_tree16(&mut q, 35, w[5], true, false);
    q_tree4(&mut q, 0, w[19].lenx, w[19].leny, w[19].x, w[19].y);
    q
}

fn q_tree16(q: &mut [QNode; MAX_SUBBANDS], p: usize, n: WNode, rw: bool, cl: bool) {
    let (lenx, leny, x, y) = (n.lenx, n.leny, n.x, n.y);
    let (tempx, temp2x) = if lenx % 2 == 0 {
        (lenx / 2, lenx / 2)
    } else if cl {
        ((lenx + 1) / 2 - 1, (lenx + 1) / 2)
    } else {
        ((lenx + 1) / 2, (lenx + 1) / 2 - 1)
    };
    let (tempy, temp2y) = if leny % 2 == 0 {
        (leny / 2, leny / 2)
    } else if rw {
        ((leny + 1) / 2 - 1, (leny + 1) / 2)
    } else {
        ((leny + 1) / 2, (leny + 1) / 2 - 1)
    };
    // the top-left quarter splits like q_tree4
    q_tree4(q, p, tempx, tempy, x, y);
    // top-right
    q[p + 4].x = x + tempx;
    q[p + 6].x = q[p + 4].x;
    q[p + 4].y = y;
    q[p + 5].y = y;
    q[p + 6].y = q[p + 2].y;
    q[p + 7].y = q[p + 2].y;
    q[p + 4].leny = q[p].leny;
    q[p + 5].leny = q[p].leny;
    q[p + 6].leny = q[p + 2].leny;
    q[p + 7].leny = q[p + 2].leny;
    if temp2x % 2 == 0 {
        q[p + 4].lenx = temp2x / 2;
        q[p + 5].lenx = q[p + 4].lenx;
        q[p + 6].lenx = q[p + 4].lenx;
        q[p + 7].lenx = q[p + 4].lenx;
    } else {
        q[p + 5].lenx = (temp2x + 1) / 2;
        q[p + 4].lenx = q[p + 5].lenx - 1;
        q[p + 6].lenx = q[p + 4].lenx;
        q[p + 7].lenx = q[p + 5].lenx;
    }
    q[p + 5].x = q[p + 4].x + q[p + 4].lenx;
    q[p + 7].x = q[p + 5].x;
    // bottom-left
    q[p + 8].x = x;
    q[p + 9].x = q[p + 1].x;
    q[p + 10].x = x;
    q[p + 11].x = q[p + 1].x;
    q[p + 8].y = y + tempy;
    q[p + 9].y = q[p + 8].y;
    q[p + 8].lenx = q[p].lenx;
    q[p + 9].lenx = q[p + 1].lenx;
    q[p + 10].lenx = q[p].lenx;
    q[p + 11].lenx = q[p + 1].lenx;
    if temp2y % 2 == 0 {
        q[p + 8].leny = temp2y / 2;
        q[p + 9].leny = q[p + 8].leny;
        q[p + 10].leny = q[p + 8].leny;
        q[p + 11].leny = q[p + 8].leny;
    } else {
        q[p + 10].leny = (temp2y + 1) / 2;
        q[p + 11].leny = q[p + 10].leny;
        q[p + 8].leny = q[p + 10].leny - 1;
        q[p + 9].leny = q[p + 8].leny;
    }
    q[p + 10].y = q[p + 8].y + q[p + 8].leny;
    q[p + 11].y = q[p + 10].y;
    // bottom-right
    q[p + 12].x = q[p + 4].x;
    q[p + 13].x = q[p + 5].x;
    q[p + 14].x = q[p + 4].x;
    q[p + 15].x = q[p + 5].x;
    q[p + 12].y = q[p + 8].y;
    q[p + 13].y = q[p + 8].y;
    q[p + 14].y = q[p + 10].y;
    q[p + 15].y = q[p + 10].y;
    q[p + 12].lenx = q[p + 4].lenx;
    q[p + 13].lenx = q[p + 5].lenx;
    q[p + 14].lenx = q[p + 4].lenx;
    q[p + 15].lenx = q[p + 5].lenx;
    q[p + 12].leny = q[p + 8].leny;
    q[p + 13].leny = q[p + 8].leny;
    q[p + 14].leny = q[p + 10].leny;
    q[p + 15].leny = q[p + 10].leny;
}

fn q_tree4(q: &mut [QNode; MAX_SUBBANDS], p: usize, lenx: i32, leny: i32, x: i32, y: i32) {
    q[p].x = x;
    q[p + 2].x = x;
    q[p].y = y;
    q[p + 1].y = y;
    if lenx % 2 == 0 {
        q[p].lenx = lenx / 2;
        q[p + 1].lenx = q[p].lenx;
    } else {
        q[p].lenx = (lenx + 1) / 2;
        q[p + 1].lenx = q[p].lenx - 1;
    }
    q[p + 2].lenx = q[p].lenx;
    q[p + 3].lenx = q[p + 1].lenx;
    q[p + 1].x = x + q[p].lenx;
    q[p + 3].x = q[p + 1].x;
    if leny % 2 == 0 {
        q[p].leny = leny / 2;
        q[p + 1].leny = q[p].leny;
        q[p + 2].leny = q[p].leny;
    } else {
        q[p].leny = (leny + 1) / 2;
        q[p + 1].leny = q[p].leny;
        q[p + 2].leny = q[p].leny - 1;
    }
    q[p + 3].leny = q[p + 2].leny;
    q[p + 2].y = y + q[p].leny;
    q[p + 3].y = q[p + 2].y;
}

// ---------------------------------------------------------------------------------------
// Dequantisation, inverse transform, pixels (NBIS util.c)

/// Places the quantised coefficients of the 60 coded subbands in a float image and maps
/// each back to the centre of its bin (NBIS `unquantize`).
fn unquantize(dqt: &Dqt, q: &[QNode; MAX_SUBBANDS], coeffs: &[i16], width: usize, height: usize) -> Result<Vec<f32>> {
    let expected: usize = (0..NUM_SUBBANDS)
        .filter(|&b| dqt.q_bin[b] != 0.0)
        .map(|b| q[b].lenx.max(0) as usize * q[b].leny.max(0) as usize)
        .sum();
    if coeffs.len() < expected {
        return Err(bad(format!("the data ends after {} of the {expected} coefficients", coeffs.len())));
    }
    let mut img = vec![0f32; width * height];
    let c = dqt.bin_center;
    let mut s = coeffs.iter();
    for (band, n) in q.iter().enumerate().take(NUM_SUBBANDS) {
        let (qb, zb) = (dqt.q_bin[band], dqt.z_bin[band]);
        if qb == 0.0 {
            continue;
        }
        for row in 0..n.leny.max(0) as usize {
            let start = (n.y as usize + row) * width + n.x as usize;
            let line = img
                .get_mut(start..start + n.lenx.max(0) as usize)
                .ok_or_else(|| bad(format!("subband {band} lies outside the {width}x{height} image")))?;
            for px in line {
                let v = *s.next().ok_or_else(|| bad("fewer coefficients than subband pixels".into()))?;
                *px = if v == 0 {
                    0.0
                } else if v > 0 {
                    (f64::from(qb * (f32::from(v) - c)) + f64::from(zb) / 2.0) as f32
                } else {
                    (f64::from(qb * (f32::from(v) + c)) - f64::from(zb) / 2.0) as f32
                };
            }
        }
    }
    Ok(img)
}

/// Inverse wavelet transform in place, from the smallest split to the whole image (NBIS
/// `wsq_reconstruct`): each node joins its columns, then its rows.
fn reconstruct(img: &mut [f32], width: usize, w: &[WNode; W_TREELEN], dtt: &Dtt) -> Result<()> {
    let mut tmp = vec![0f32; img.len()];
    for n in w.iter().rev() {
        let base = n.y as usize * width + n.x as usize;
        let (lenx, leny) = (n.lenx.max(0) as usize, n.leny.max(0) as usize);
        let filters = Filters { hi: &dtt.hi, lo: &dtt.lo };
        join_lets(&mut tmp, 0, img, base, (lenx, leny), (1, width), &filters, n.inv_cl)?;
        join_lets(img, base, &tmp, 0, (leny, lenx), (width, 1), &filters, n.inv_rw)?;
    }
    Ok(())
}

struct Filters<'a> {
    hi: &'a [f32],
    lo: &'a [f32],
}

fn out_of_image() -> EngineError {
    bad("a subband is too small for the wavelet filters (reconstruction would leave the image)".into())
}

fn rd(buf: &[f32], at: isize) -> Result<f32> {
    usize::try_from(at).ok().and_then(|i| buf.get(i).copied()).ok_or_else(out_of_image)
}

fn wr(buf: &mut [f32], at: isize) -> Result<&mut f32> {
    usize::try_from(at).ok().and_then(|i| buf.get_mut(i)).ok_or_else(out_of_image)
}

/// Synthesis of `len1` lines of `len2` samples each (low-pass half then high-pass half, or
/// the reverse when `inv`), with symmetric extension at both ends for odd- or even-length
/// filters: a line-by-line port of NBIS `join_lets`, positions kept as buffer indices so
/// every access is checked.
#[allow(clippy::too_many_arguments)]
fn join_lets(
    new: &mut [f32],
    new_base: usize,
    old: &[f32],
    old_base: usize,
    (len1, len2): (usize, usize),
    (pitch, stride): (usize, usize),
    f: &Filters,
    inv: bool,
) -> Result<()> {
    let lo = f.lo;
    let (lsz, hsz) = (lo.len(), f.hi.len());
    let da_ev = len2 % 2 == 1;
    let fi_ev = lsz % 2 == 1;
    let pstr = stride as isize;
    let nstr = -pstr;
    let (llen, hlen) = if da_ev { (len2.div_ceil(2), len2.div_ceil(2) - 1) } else { (len2 / 2, len2 / 2) };
    let (llen, hlen) = (llen as isize, hlen as isize);
    let (asym, ssfac, ofhre, mut loc, mut hoc, lotap, hotap);
    let (mut olle, olre, mut ohle, ohre);
    let hi: Vec<f32>;
    let (lsz_i, hsz_i) = (lsz as isize, hsz as isize);
    if fi_ev {
        asym = false;
        ssfac = 1.0f32;
        ofhre = 0i32;
        loc = (lsz_i - 1) / 4;
        hoc = (hsz_i + 1) / 4 - 1;
        lotap = ((lsz_i - 1) / 2) % 2;
        hotap = ((hsz_i + 1) / 2) % 2;
        (olle, olre, ohle, ohre) = if da_ev { (false, false, true, true) } else { (false, true, true, false) };
        hi = f.hi.to_vec();
    } else {
        asym = true;
        ssfac = -1.0;
        ofhre = 2;
        loc = lsz_i / 4 - 1;
        hoc = hsz_i / 4 - 1;
        lotap = (lsz_i / 2) % 2;
        hotap = (hsz_i / 2) % 2;
        (olle, olre, ohle, ohre) = if da_ev { (true, false, true, true) } else { (true, true, true, true) };
        if loc == -1 {
            loc = 0;
            olle = false;
        }
        if hoc == -1 {
            hoc = 0;
            ohle = false;
        }
        hi = f.hi.iter().map(|&h| -h).collect();
    }
    let mut fhre = 0i32;

    // One low-pass output: starts at lspx and walks the taps tap, tap+2, ... reflecting at
    // the line ends.
    struct Walk {
        px: isize,
        str_: isize,
        le: bool,
        re: bool,
    }
    let low = |w: Walk, tap: usize, lp0: isize, lp1: isize| -> Result<f32> {
        let Walk { mut px, str_: mut pxstr, mut le, mut re } = w;
        let mut acc = rd(old, px)? * lo[tap];
        let mut i = tap + 2;
        while i < lsz {
            if px == lp0 {
                if le {
                    pxstr = 0;
                    le = false;
                } else {
                    pxstr = pstr;
                }
            }
            if px == lp1 {
                if re {
                    pxstr = 0;
                    re = false;
                } else {
                    pxstr = nstr;
                }
            }
            px += pxstr;
            acc += rd(old, px)? * lo[i];
            i += 2;
        }
        Ok(acc)
    };
    // One high-pass contribution added to `acc`.
    let high =
        |w: Walk, tap: usize, hp0: isize, hp1: isize, mut sfac: f32, fhre: &mut i32, mut acc: f32| -> Result<f32> {
            let Walk { mut px, str_: mut pxstr, mut le, mut re } = w;
            let mut i = tap;
            while i < hsz {
                if px == hp0 {
                    if le {
                        pxstr = 0;
                        le = false;
                    } else {
                        pxstr = pstr;
                        sfac = 1.0;
                    }
                }
                if px == hp1 {
                    if re {
                        pxstr = 0;
                        re = false;
                        if asym && da_ev {
                            re = true;
                            *fhre -= 1;
                            sfac = *fhre as f32;
                            if sfac == 0.0 {
                                re = false;
                            }
                        }
                    } else {
                        pxstr = nstr;
                        if asym {
                            sfac = -1.0;
                        }
                    }
                }
                acc += rd(old, px)? * hi[i] * sfac;
                px += pxstr;
                i += 2;
            }
            Ok(acc)
        };

    for cl_rw in 0..len1 {
        let line = (new_base + cl_rw * pitch) as isize;
        let (mut limg, mut himg) = (line, line);
        *wr(new, himg)? = 0.0;
        *wr(new, himg + pstr)? = 0.0;
        let src = (old_base + cl_rw * pitch) as isize;
        let (lopass, hipass) = if inv { (src + pstr * hlen, src) } else { (src, src + pstr * llen) };

        let lp0 = lopass;
        let lp1 = lp0 + (llen - 1) * pstr;
        let mut lspx = lp0 + loc * pstr;
        let mut lspxstr = nstr;
        let mut lstap = lotap;
        let (mut lle2, lre2) = (olle, olre);

        let hp0 = hipass;
        let hp1 = hp0 + (hlen - 1) * pstr;
        let mut hspx = hp0 + hoc * pstr;
        let mut hspxstr = nstr;
        let mut hstap = hotap;
        let (mut hle2, hre2) = (ohle, ohre);
        let mut osfac = ssfac;

        for _ in 0..hlen {
            for tap in (0..=lstap).rev() {
                let w = Walk { px: lspx, str_: lspxstr, le: lle2, re: lre2 };
                *wr(new, limg)? = low(w, tap as usize, lp0, lp1)?;
                limg += pstr;
            }
            if lspx == lp0 {
                if lle2 {
                    lspxstr = 0;
                    lle2 = false;
                } else {
                    lspxstr = pstr;
                }
            }
            lspx += lspxstr;
            lstap = 1;

            for tap in (0..=hstap).rev() {
                fhre = ofhre;
                let w = Walk { px: hspx, str_: hspxstr, le: hle2, re: hre2 };
                let acc = rd(new, himg)?;
                *wr(new, himg)? = high(w, tap as usize, hp0, hp1, osfac, &mut fhre, acc)?;
                himg += pstr;
            }
            if hspx == hp0 {
                if hle2 {
                    hspxstr = 0;
                    hle2 = false;
                } else {
                    hspxstr = pstr;
                    osfac = 1.0;
                }
            }
            hspx += hspxstr;
            hstap = 1;
        }

        let lstap = match (da_ev, lotap == 1) {
            (true, true) => 1,
            (true, false) => 0,
            (false, true) => 2,
            (false, false) => 1,
        };
        for tap in (lstap..=1).rev() {
            let w = Walk { px: lspx, str_: lspxstr, le: lle2, re: lre2 };
            *wr(new, limg)? = low(w, tap as usize, lp0, lp1)?;
            limg += pstr;
        }

        let hstap = if da_ev {
            if hsz == 2 {
                hspx -= hspxstr;
                fhre = 1;
            }
            if hotap == 1 { 1 } else { 0 }
        } else if hotap == 1 {
            2
        } else {
            1
        };
        for tap in (hstap..=1).rev() {
            if hsz != 2 {
                fhre = ofhre;
            }
            let w = Walk { px: hspx, str_: hspxstr, le: hle2, re: hre2 };
            let acc = rd(new, himg)?;
            *wr(new, himg)? = high(w, tap as usize, hp0, hp1, osfac, &mut fhre, acc)?;
            himg += pstr;
        }
    }
    Ok(())
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
    fn headers_are_read_and_empty_tables_are_refused() {
        let info = parse(&skeleton()).unwrap();
        assert_eq!((info.width, info.height, info.ppi, info.blocks), (300, 400, Some(500.0), 1));
        // the skeleton's tables are zeros: a transform table with 0-tap filters
        let e = decode(&skeleton()).unwrap_err();
        assert!(matches!(e, EngineError::BadInput(_)), "{e}");
        assert!(e.to_string().contains("0 taps"), "{e}");
    }

    #[test]
    fn subbands_tile_the_image() {
        for (w, h) in [(301, 257), (160, 203), (500, 500), (97, 113), (4096, 4095)] {
            let q = build_q_tree(&build_w_tree(w, h));
            let mut cover = vec![0u8; (w * h) as usize];
            for n in &q {
                assert!(n.x >= 0 && n.y >= 0 && n.x + n.lenx <= w && n.y + n.leny <= h, "{w}x{h}: {n:?}");
                for y in n.y..n.y + n.leny {
                    for x in n.x..n.x + n.lenx {
                        cover[(y * w + x) as usize] += 1;
                    }
                }
            }
            assert!(cover.iter().all(|&c| c == 1), "{w}x{h}: the 64 subbands overlap or leave gaps");
        }
    }

    #[test]
    fn standard_filters_come_back_from_the_table() {
        let f = include_bytes!("../../tests/data/wsq/ridges_301x257_r075.wsq");
        let mut r = Reader { b: f, pos: 2, what: "file" };
        let t = loop {
            match r.u16().unwrap() {
                DTT => break read_dtt(&mut r.segment("transform table").unwrap()).unwrap(),
                _ => {
                    r.segment("other").unwrap();
                }
            }
        };
        // synthesis filters: the 7-tap low-pass and 9-tap high-pass are NBIS's analysis
        // high-pass and low-pass (globals.c) with alternating signs
        let (a_hi, a_lo) = (
            [0.064_538_88f32, -0.040_689_42, -0.418_092_27, 0.788_485_6],
            [0.037_828_46f32, -0.023_849_47, -0.110_624_4, 0.377_402_86, 0.852_698_7],
        );
        assert_eq!((t.lo.len(), t.hi.len()), (7, 9));
        for (i, a) in a_hi.iter().enumerate() {
            assert!((t.lo[i].abs() - a.abs()).abs() < 1e-6 && t.lo[i] == t.lo[6 - i], "{t:?}");
        }
        for (i, a) in a_lo.iter().enumerate() {
            assert!((t.hi[i].abs() - a.abs()).abs() < 1e-6 && t.hi[i] == t.hi[8 - i], "{t:?}");
        }
        assert!((t.lo.iter().sum::<f32>() - std::f32::consts::SQRT_2).abs() < 1e-5, "{t:?}");
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
