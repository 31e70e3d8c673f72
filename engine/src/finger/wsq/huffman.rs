//! Entropy-coded data (NBIS decoder.c: huffman_decode_data_mem, decode_data_mem,
//! getc_nextbits_wsq): canonical Huffman decoding with JPEG-style byte stuffing.

use super::bad;
use super::tables::{Dht, MAX_HUFFBITS, MAX_HUFFCOUNTS, Reader};
use crate::error::Result;

/// Canonical Huffman decoding tables for one block (NBIS `gen_decode_table`).
pub(super) struct HuffDecoder {
    maxcode: [i32; MAX_HUFFBITS + 1],
    mincode: [i32; MAX_HUFFBITS + 1],
    valptr: [i32; MAX_HUFFBITS + 1],
    values: [u8; MAX_HUFFCOUNTS + 1],
}

impl HuffDecoder {
    pub(super) fn new(t: &Dht, id: u8) -> Result<Self> {
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
pub(super) fn decode_block(r: &mut Reader, h: &HuffDecoder, out: &mut Vec<i16>, cap: usize) -> Result<u16> {
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
