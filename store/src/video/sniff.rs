//! Container recognition by magic bytes: the file extension is never trusted.

use std::io::Read;
use std::path::Path;

use super::Rejection;

/// Reads the first bytes of `path` and names the container family, or says why the file
/// is not a video container.
pub fn sniff(path: &Path) -> Result<&'static str, Rejection> {
    let mut f = std::fs::File::open(path).map_err(|e| Rejection(format!("cannot open: {e}")))?;
    let mut head = [0u8; 189];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(Rejection(format!("cannot read: {e}"))),
        }
    }
    sniff_bytes(&head[..n])
}

/// [`sniff`] on bytes already read.
pub fn sniff_bytes(h: &[u8]) -> Result<&'static str, Rejection> {
    if h.is_empty() {
        return Err(Rejection("empty file (0 bytes)".into()));
    }
    let at = |i: usize, m: &[u8]| h.len() >= i + m.len() && &h[i..i + m.len()] == m;
    let iso_box = [b"ftyp", b"moov", b"mdat", b"free", b"wide", b"skip"].iter().any(|b| at(4, *b));
    if iso_box {
        Ok("isobmff")
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Ok("matroska")
    } else if at(0, b"RIFF") && at(8, b"AVI ") {
        Ok("avi")
    } else if h.len() > 188 && h[0] == 0x47 && h[188] == 0x47 {
        Ok("mpegts")
    } else if at(0, &[0, 0, 1, 0xBA]) {
        Ok("mpegps")
    } else if at(0, b"FLV") {
        Ok("flv")
    } else if at(0, &[0x30, 0x26, 0xB2, 0x75, 0x8E, 0x66, 0xCF, 0x11]) {
        Ok("asf")
    } else if h.iter().take(64).all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()) {
        Err(Rejection("not a video container: the file starts with text".into()))
    } else {
        Err(Rejection(format!("not a video container: unknown magic bytes {}", hex::encode(&h[..h.len().min(8)]))))
    }
}

#[cfg(test)]
mod tests {
    use super::sniff_bytes;

    #[test]
    fn recognises_and_refuses() {
        assert_eq!(sniff_bytes(b"\0\0\0\x20ftypisom....").unwrap(), "isobmff");
        assert_eq!(sniff_bytes(&[0x1A, 0x45, 0xDF, 0xA3, 1]).unwrap(), "matroska");
        assert_eq!(sniff_bytes(b"RIFF\0\0\0\0AVI LIST").unwrap(), "avi");
        assert!(sniff_bytes(b"").unwrap_err().0.contains("empty"));
        assert!(sniff_bytes(b"hello, this is text\n").unwrap_err().0.contains("text"));
    }
}
