//! Tables and headers (NBIS tableio.c, jpegl/huff.c): transform, quantisation and
//! Huffman tables, the frame header, and the bounds-checked byte reader under them.

use super::{COM, DHT, DQT, DTT, MAX_SUBBANDS, bad};
use crate::error::Result;

/// Largest filter length accepted in a transform table (the standard filters have 9 and 7 taps).
const MAX_FILTER_TAPS: usize = 32;
pub(super) const MAX_HUFFBITS: usize = 16;
/// Huffman values per table (the values array is one longer, zero-padded, as in NBIS).
pub(super) const MAX_HUFFCOUNTS: usize = 256;

/// Transform table (DTT): synthesis low-pass and high-pass filters.
#[derive(Debug, Clone)]
pub(super) struct Dtt {
    pub(super) lo: Vec<f32>,
    pub(super) hi: Vec<f32>,
}

/// Quantisation table (DQT): bin centre C and per-subband bin width Q and zero-bin width Z.
#[derive(Debug, Clone)]
pub(super) struct Dqt {
    pub(super) bin_center: f32,
    pub(super) q_bin: [f32; MAX_SUBBANDS],
    pub(super) z_bin: [f32; MAX_SUBBANDS],
}

/// One Huffman table (DHT): code counts per length and the values in code order.
#[derive(Debug, Clone)]
pub(super) struct Dht {
    pub(super) bits: [u8; MAX_HUFFBITS],
    pub(super) values: [u8; MAX_HUFFCOUNTS + 1],
}

/// Frame header (SOF).
#[derive(Debug, Clone, Copy)]
pub(super) struct Frame {
    pub(super) width: u16,
    pub(super) height: u16,
    pub(super) m_shift: f32,
    pub(super) r_scale: f32,
}

#[derive(Debug, Default)]
pub(super) struct Tables {
    pub(super) dtt: Option<Dtt>,
    pub(super) dqt: Option<Dqt>,
    pub(super) dht: [Option<Dht>; 8],
}

/// Byte reader over the whole file or one segment; every read is bounds-checked.
pub(super) struct Reader<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
    /// What ends when the bytes run out ("file" or the segment's name).
    pub(super) what: &'static str,
}

impl<'a> Reader<'a> {
    pub(super) fn u8(&mut self) -> Result<u8> {
        let v = *self.b.get(self.pos).ok_or_else(|| bad(format!("{} ends at offset {}", self.what, self.pos)))?;
        self.pos += 1;
        Ok(v)
    }

    pub(super) fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }

    pub(super) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes([self.u8()?, self.u8()?, self.u8()?, self.u8()?]))
    }

    /// The body of the segment whose length field is next (the length counts itself);
    /// the reader moves past the segment.
    pub(super) fn segment(&mut self, what: &'static str) -> Result<Reader<'a>> {
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
    pub(super) fn read(&mut self, marker: u16, r: &mut Reader) -> Result<()> {
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
pub(super) fn read_dtt(r: &mut Reader) -> Result<Dtt> {
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

pub(super) fn read_frame(r: &mut Reader) -> Result<Frame> {
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
