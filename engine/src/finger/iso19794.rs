//! Minutiae templates in ISO/IEC 19794-2:2005 (and ANSI INCITS 378-2004, read only)
//! record format.
//!
//! Layout (big-endian). ISO 2005 header, 24 bytes: `"FMR\0"`, `" 20\0"`, record length
//! (u32), capture equipment (u16), width, height (u16), x/y resolution in pixels per
//! centimetre (u16), finger views (u8), reserved (u8). ANSI 378 header, 26 bytes: the same
//! with a u16 length (or 0 + u32), a 4-byte CBEFF product id before the equipment field.
//! Each view: finger position (u8), view number << 4 | impression type (u8), finger
//! quality 0..100 (u8), minutiae count (u8); 6 bytes per minutia: type (2 bits: 01 ending,
//! 10 bifurcation, 00 other) + x (14 bits), 2 reserved bits + y (14 bits), angle in units
//! of 360/256 degrees counter-clockwise from the x axis, quality (u8); then a u16 extended
//! data length and that many bytes.
//!
//! Angle convention: [`Minutia::angle`] is counter-clockwise on screen like the ISO angle
//! (checked on FVC data, see [`Template`]), so it is stored as is, quantised to 1/256 of
//! a turn; round-trip error ≤ half a unit (0.7°).
//!
//! Files from other producers deviate in small ways. Accepted with a warning (the
//! meaning is unambiguous): zero padding after the stated record length; an extended
//! data length one byte longer than what is left when that byte is the record's end;
//! a reserved header byte that is not zero. Rejected: a stated length longer than the
//! file, truncated views, reserved minutia type 11, coordinates outside the stated
//! image, zero resolution, finger position > 10.

use std::f32::consts::PI;

use serde::Serialize;

use crate::error::{EngineError, Result};
use crate::finger::template::{Minutia, MinutiaKind, Template};

/// Which standard a record follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Standard {
    /// ISO/IEC 19794-2:2005.
    #[serde(rename = "ISO/IEC 19794-2:2005")]
    Iso2005,
    /// ANSI INCITS 378-2004.
    #[serde(rename = "ANSI INCITS 378-2004")]
    Ansi378,
}

/// One finger view of a record.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Finger position code (0 unknown, 1 right thumb … 10 left little).
    pub finger_position: u8,
    /// View number (several impressions of one finger).
    pub view_number: u8,
    /// Impression type (0 live-scan plain, 1 live-scan rolled, …).
    pub impression_type: u8,
    /// Finger quality 0..100.
    pub quality: u8,
    /// Minutiae, in pixels of the stated image, at the stated resolution.
    pub template: Template,
}

/// A decoded minutiae record.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The standard the bytes follow.
    pub standard: Standard,
    /// Image width, pixels.
    pub width: u16,
    /// Image height, pixels.
    pub height: u16,
    /// Horizontal resolution, pixels per inch (converted from pixels per cm).
    pub ppi: f32,
    /// The finger views.
    pub views: Vec<View>,
    /// Deviations from the standard that were tolerated.
    pub warnings: Vec<String>,
}

const MAGIC: &[u8; 8] = b"FMR\0 20\0";
const ISO_HEADER: usize = 24;
const ANSI_HEADER: usize = 26;

/// True when the bytes start like a 19794-2 / INCITS 378 minutiae record.
pub fn looks_like_template(bytes: &[u8]) -> bool {
    bytes.starts_with(b"FMR\0")
}

fn bad(msg: impl Into<String>) -> EngineError {
    EngineError::BadInput(format!("minutiae template: {}", msg.into()))
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let s = self
            .b
            .get(self.pos..self.pos + n)
            .ok_or_else(|| bad(format!("truncated: {what} needs {n} bytes at offset {}", self.pos)))?;
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        let s = self.take(2, what)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        let s = self.take(4, what)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
}

/// Decodes an ISO/IEC 19794-2:2005 or ANSI INCITS 378-2004 minutiae record.
pub fn decode(bytes: &[u8]) -> Result<Record> {
    if !bytes.starts_with(MAGIC) {
        if bytes.starts_with(b"FMR\0") {
            let v = String::from_utf8_lossy(&bytes[4..bytes.len().min(8)]).into_owned();
            return Err(EngineError::Unsupported(format!(
                "minutiae template version {v:?}: only \" 20\" (2005/2004) is read"
            )));
        }
        return Err(bad("does not start with \"FMR\\0 20\\0\""));
    }
    let mut warnings = Vec::new();
    let n = bytes.len();
    // Tell ISO (u32 length) from ANSI (u16 length, or 0 then u32) by which length field
    // is consistent with the byte count.
    let len32 =
        u32::from_be_bytes(bytes.get(8..12).ok_or_else(|| bad("truncated header"))?.try_into().unwrap()) as usize;
    let len16 = u16::from_be_bytes([bytes[8], bytes[9]]) as usize;
    let (standard, stated) = if len32 >= ISO_HEADER && len32 <= n {
        (Standard::Iso2005, len32)
    } else if len16 == 0 && n >= 14 {
        let l = u32::from_be_bytes(bytes[10..14].try_into().unwrap()) as usize;
        (Standard::Ansi378, l)
    } else if len16 >= ANSI_HEADER && len16 <= n {
        (Standard::Ansi378, len16)
    } else {
        return Err(bad(format!(
            "stated record length ({len32} as ISO, {len16} as ANSI) does not fit the {n} bytes given"
        )));
    };
    if stated > n {
        return Err(bad(format!("stated record length {stated} is longer than the {n} bytes given")));
    }
    if stated < n {
        if bytes[stated..].iter().all(|&b| b == 0) {
            warnings.push(format!("{} zero bytes of padding after the record ignored", n - stated));
        } else {
            return Err(bad(format!("{} unexplained bytes after the stated record length {stated}", n - stated)));
        }
    }
    let body = &bytes[..stated];
    let mut r = Reader { b: body, pos: 8 };
    match standard {
        Standard::Iso2005 => {
            r.u32("length")?;
        }
        Standard::Ansi378 => {
            if r.u16("length")? == 0 {
                r.u32("long length")?;
            }
            r.u32("CBEFF product id")?;
        }
    }
    r.u16("capture equipment")?;
    let width = r.u16("width")?;
    let height = r.u16("height")?;
    let rx = r.u16("x resolution")?;
    let ry = r.u16("y resolution")?;
    if rx == 0 || ry == 0 {
        return Err(bad("resolution is 0 pixels/cm"));
    }
    if rx != ry {
        warnings.push(format!("x/y resolutions differ ({rx}, {ry} px/cm); x is used"));
    }
    let nviews = r.u8("view count")?;
    if r.u8("reserved")? != 0 {
        warnings.push("reserved header byte is not 0".into());
    }
    let ppi = rx as f32 * 2.54;
    let mut views = Vec::with_capacity(nviews as usize);
    for v in 0..nviews {
        let finger_position = r.u8("finger position")?;
        if finger_position > 10 {
            return Err(bad(format!("view {v}: finger position {finger_position} is out of range 0..=10")));
        }
        let vi = r.u8("view/impression")?;
        let quality = r.u8("finger quality")?;
        if quality > 100 {
            return Err(bad(format!("view {v}: finger quality {quality} is out of range 0..=100")));
        }
        let count = r.u8("minutiae count")?;
        let mut minutiae = Vec::with_capacity(count as usize);
        for i in 0..count {
            let m = r.take(6, "minutia")?;
            let tx = u16::from_be_bytes([m[0], m[1]]);
            let ty = u16::from_be_bytes([m[2], m[3]]);
            let kind = match tx >> 14 {
                0 => MinutiaKind::Other,
                1 => MinutiaKind::Ending,
                2 => MinutiaKind::Bifurcation,
                _ => return Err(bad(format!("view {v} minutia {i}: reserved type 11"))),
            };
            let (x, y) = (tx & 0x3FFF, ty & 0x3FFF);
            if (width > 0 && x >= width) || (height > 0 && y >= height) {
                return Err(bad(format!("view {v} minutia {i}: ({x}, {y}) is outside the {width}x{height} image")));
            }
            if m[5] > 100 {
                return Err(bad(format!("view {v} minutia {i}: quality {} is out of range 0..=100", m[5])));
            }
            let iso = m[4] as f32 * (2.0 * PI / 256.0);
            let mut angle = iso;
            if angle > PI {
                angle -= 2.0 * PI;
            }
            minutiae.push(Minutia { x: x as f32, y: y as f32, angle, kind, quality: m[5] as f32 / 100.0 });
        }
        let ext = r.u16("extended data length")? as usize;
        let left = body.len() - r.pos;
        if ext > left {
            if ext == left + 1 && v + 1 == nviews {
                warnings.push(format!(
                    "view {v}: extended data length {ext} is one byte longer than the record; read {left}"
                ));
                r.pos = body.len();
            } else {
                return Err(bad(format!("view {v}: extended data length {ext} exceeds the {left} bytes left")));
            }
        } else {
            r.take(ext, "extended data")?;
        }
        views.push(View {
            finger_position,
            view_number: vi >> 4,
            impression_type: vi & 0x0F,
            quality,
            template: Template { width: width as u32, height: height as u32, ppi, quality, minutiae },
        });
    }
    if r.pos != body.len() {
        return Err(bad(format!("{} bytes left inside the stated record after the last view", body.len() - r.pos)));
    }
    Ok(Record { standard, width, height, ppi, views, warnings })
}

/// Encodes views as an ISO/IEC 19794-2:2005 record. All views must share the image size
/// and resolution of the first; minutiae beyond 255 per view are dropped (lowest quality
/// first) because the count field is one byte.
pub fn encode_iso2005(views: &[View]) -> Result<Vec<u8>> {
    let first = views.first().ok_or_else(|| EngineError::Invalid("no finger view to encode".into()))?;
    let t0 = &first.template;
    if t0.width > 0x3FFF || t0.height > 0x3FFF || views.len() > 255 {
        return Err(EngineError::Invalid("image larger than 16383 pixels or more than 255 views".into()));
    }
    let res = (t0.ppi / 2.54).round() as u16;
    if res == 0 {
        return Err(EngineError::Invalid(format!("resolution {} ppi cannot be encoded", t0.ppi)));
    }
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[0; 4]); // length, patched below
    out.extend_from_slice(&0u16.to_be_bytes());
    out.extend_from_slice(&(t0.width as u16).to_be_bytes());
    out.extend_from_slice(&(t0.height as u16).to_be_bytes());
    out.extend_from_slice(&res.to_be_bytes());
    out.extend_from_slice(&res.to_be_bytes());
    out.push(views.len() as u8);
    out.push(0);
    for v in views {
        let t = &v.template;
        if t.width != t0.width || t.height != t0.height || (t.ppi - t0.ppi).abs() > 0.5 {
            return Err(EngineError::Invalid("all views of a record must share image size and resolution".into()));
        }
        if v.finger_position > 10 || v.view_number > 15 || v.impression_type > 15 || v.quality > 100 {
            return Err(EngineError::Invalid("finger position, view, impression or quality out of range".into()));
        }
        let mut ms: Vec<&Minutia> = t.minutiae.iter().collect();
        if ms.len() > 255 {
            ms.sort_by(|a, b| b.quality.total_cmp(&a.quality));
            ms.truncate(255);
        }
        out.extend_from_slice(&[
            v.finger_position,
            (v.view_number << 4) | v.impression_type,
            v.quality,
            ms.len() as u8,
        ]);
        for m in ms {
            let x = m.x.round().clamp(0.0, (t.width.max(1) - 1) as f32) as u16;
            let y = m.y.round().clamp(0.0, (t.height.max(1) - 1) as f32) as u16;
            let ty: u16 = match m.kind {
                MinutiaKind::Other => 0,
                MinutiaKind::Ending => 1,
                MinutiaKind::Bifurcation => 2,
            };
            let units = (m.angle.rem_euclid(2.0 * PI) * 256.0 / (2.0 * PI)).round() as u32 % 256;
            out.extend_from_slice(&((ty << 14) | x).to_be_bytes());
            out.extend_from_slice(&y.to_be_bytes());
            out.push(units as u8);
            out.push((m.quality * 100.0).round().clamp(0.0, 100.0) as u8);
        }
        out.extend_from_slice(&0u16.to_be_bytes());
    }
    let len = out.len() as u32;
    out[8..12].copy_from_slice(&len.to_be_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(n: usize) -> View {
        let minutiae = (0..n)
            .map(|i| Minutia {
                x: (i * 7 % 300) as f32,
                y: (i * 13 % 400) as f32,
                angle: -PI + 0.01 + i as f32 * 0.37 % (2.0 * PI - 0.02),
                kind: if i % 3 == 0 { MinutiaKind::Bifurcation } else { MinutiaKind::Ending },
                quality: (i % 100) as f32 / 100.0,
            })
            .collect();
        View {
            finger_position: 2,
            view_number: 1,
            impression_type: 0,
            quality: 60,
            template: Template { width: 300, height: 400, ppi: 500.38, quality: 60, minutiae },
        }
    }

    #[test]
    fn iso2005_round_trip_keeps_every_field() {
        let v = view(40);
        let bytes = encode_iso2005(std::slice::from_ref(&v)).unwrap();
        assert_eq!(bytes.len(), 24 + 4 + 40 * 6 + 2);
        let rec = decode(&bytes).unwrap();
        assert_eq!(rec.standard, Standard::Iso2005);
        assert!(rec.warnings.is_empty());
        let back = &rec.views[0];
        assert_eq!((back.finger_position, back.view_number, back.quality), (2, 1, 60));
        for (a, b) in v.template.minutiae.iter().zip(&back.template.minutiae) {
            assert_eq!((a.x, a.y, a.kind), (b.x, b.y, b.kind));
            let d = crate::finger::mcc::dphi(a.angle, b.angle).abs();
            assert!(d <= PI / 256.0 + 1e-4, "angle {} vs {}", a.angle, b.angle);
        }
        // encode → decode → encode is byte-identical
        assert_eq!(encode_iso2005(&rec.views).unwrap(), bytes);
    }

    #[test]
    fn tolerated_deviations_warn_and_bad_fields_fail_clearly() {
        let mut padded = encode_iso2005(&[view(5)]).unwrap();
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(decode(&padded).unwrap().warnings[0].contains("padding"));

        let mut off_by_one = encode_iso2005(&[view(5)]).unwrap();
        let n = off_by_one.len();
        off_by_one[n - 1] = 1; // extended data length 1, nothing follows
        assert!(decode(&off_by_one).unwrap().warnings[0].contains("one byte longer"));

        let good = encode_iso2005(&[view(5)]).unwrap();
        let mut bad_type = good.clone();
        bad_type[28] |= 0xC0;
        assert!(decode(&bad_type).unwrap_err().to_string().contains("reserved type"));
        let mut outside = good.clone();
        outside[28..30].copy_from_slice(&(0x4000u16 | 1000).to_be_bytes());
        assert!(decode(&outside).unwrap_err().to_string().contains("outside"));
        let mut finger = good.clone();
        finger[24] = 11;
        assert!(decode(&finger).unwrap_err().to_string().contains("finger position"));
        assert!(decode(&good[..30]).is_err());
        let mut garbage = good.clone();
        garbage.extend_from_slice(b"xyz");
        assert!(decode(&garbage).unwrap_err().to_string().contains("unexplained"));
        assert!(decode(b"FMR\0 30\0").unwrap_err().to_string().contains("version"));
    }

    #[test]
    fn ansi378_header_is_read() {
        let iso = encode_iso2005(&[view(3)]).unwrap();
        // ANSI: u16 length + CBEFF id instead of the u32 length.
        let mut ansi = Vec::from(&iso[..8]);
        let len = (iso.len() + 2) as u16;
        ansi.extend_from_slice(&len.to_be_bytes());
        ansi.extend_from_slice(&[0, 0x1B, 0, 1]);
        ansi.extend_from_slice(&iso[12..]);
        let rec = decode(&ansi).unwrap();
        assert_eq!(rec.standard, Standard::Ansi378);
        assert_eq!(rec.views[0].template.minutiae.len(), 3);
    }
}
