//! Minimal `.npy` reader (format 1.0-3.0, little-endian `<f4` / `<i8`, C order), enough
//! for gen_vectors.py output without another dependency, and the matching writer
//! (format 1.0, as `numpy.save` writes it).

use std::path::Path;

use anyhow::{Context, bail, ensure};

/// A loaded array.
pub struct Array<T> {
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements in C order.
    pub data: Vec<T>,
}

/// Parses the header; returns (descr, shape, data offset).
fn header(bytes: &[u8]) -> anyhow::Result<(String, Vec<usize>, usize)> {
    ensure!(bytes.len() >= 10 && &bytes[..6] == b"\x93NUMPY", "not a .npy file");
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            ensure!(bytes.len() >= 12, "truncated .npy header");
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => bail!("unsupported .npy version {v}"),
    };
    ensure!(bytes.len() >= start + len, "truncated .npy header");
    let h = std::str::from_utf8(&bytes[start..start + len]).context("non-UTF-8 .npy header")?;
    let value = |key: &str| -> anyhow::Result<&str> {
        let i = h.find(&format!("'{key}'")).with_context(|| format!(".npy header lacks {key}"))?;
        Ok(h[i + key.len() + 2..].trim_start().trim_start_matches(':').trim_start())
    };
    ensure!(value("fortran_order")?.starts_with("False"), "Fortran-order .npy is not supported");
    let descr = value("descr")?;
    let descr = descr.trim_start_matches('\'').split('\'').next().unwrap_or("").to_string();
    let shape_s = value("shape")?;
    let shape_s = &shape_s[1..shape_s.find(')').context("bad .npy shape")?];
    let shape = shape_s
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().context("bad .npy shape"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((descr, shape, start + len))
}

fn read<T, const W: usize>(path: &Path, want: &str, conv: fn([u8; W]) -> T) -> anyhow::Result<Array<T>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (descr, shape, off) = header(&bytes).with_context(|| path.display().to_string())?;
    ensure!(descr == want, "{}: dtype {descr}, expected {want}", path.display());
    let count: usize = shape.iter().product();
    ensure!(bytes.len() - off == count * W, "{}: {} data bytes for shape {shape:?}", path.display(), bytes.len() - off);
    let data = bytes[off..].chunks_exact(W).map(|c| conv(c.try_into().expect("chunk of W bytes"))).collect();
    Ok(Array { shape, data })
}

/// Reads a `<f4` array.
pub fn read_f32(path: &Path) -> anyhow::Result<Array<f32>> {
    read(path, "<f4", f32::from_le_bytes)
}

/// Reads a `<i8` array.
pub fn read_i64(path: &Path) -> anyhow::Result<Array<i64>> {
    read(path, "<i8", i64::from_le_bytes)
}

fn write<const W: usize>(path: &Path, descr: &str, shape: &[usize], data: Vec<[u8; W]>) -> anyhow::Result<()> {
    ensure!(
        shape.iter().product::<usize>() == data.len(),
        "{}: shape {shape:?} != {} items",
        path.display(),
        data.len()
    );
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}");
    // numpy pads with spaces so the data starts on a 64-byte boundary, then '\n'.
    h.push_str(&" ".repeat(63 - (10 + h.len()) % 64));
    h.push('\n');
    let mut out = Vec::with_capacity(10 + h.len() + W * data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&u16::try_from(h.len()).context("npy header too long")?.to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend(data.into_iter().flatten());
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// Writes a `<f4` array of `shape` (C order).
pub fn write_f32(path: &Path, shape: &[usize], data: &[f32]) -> anyhow::Result<()> {
    write(path, "<f4", shape, data.iter().map(|x| x.to_le_bytes()).collect())
}

/// Writes a `<i8` array of `shape` (C order).
pub fn write_i64(path: &Path, shape: &[usize], data: &[i64]) -> anyhow::Result<()> {
    write(path, "<i8", shape, data.iter().map(|x| x.to_le_bytes()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn reads_f4_and_i8_and_rejects_mismatches() {
        let dir = tempfile::tempdir().unwrap();
        let f: Vec<u8> = [1.5f32, -2.0, 3.0, 4.0, 5.0, 6.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        let p = dir.path().join("a.npy");
        std::fs::write(&p, npy("<f4", "(2, 3)", &f)).unwrap();
        let a = read_f32(&p).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.data[0], 1.5);
        assert_eq!(a.data[5], 6.0);
        assert!(read_i64(&p).is_err(), "dtype mismatch must fail");
        let i: Vec<u8> = [-1i64, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        std::fs::write(&p, npy("<i8", "(2,)", &i)).unwrap();
        assert_eq!(read_i64(&p).unwrap().data, vec![-1, 7]);
        std::fs::write(&p, npy("<i8", "(3,)", &i)).unwrap();
        assert!(read_i64(&p).is_err(), "short data must fail");
        std::fs::write(&p, b"hello").unwrap();
        assert!(read_f32(&p).is_err());
    }

    #[test]
    fn writes_what_numpy_writes_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("w.npy");
        let f = [1.5f32, -2.0, 3.0, 4.0, 5.0, 6.0];
        write_f32(&p, &[2, 3], &f).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let fb: Vec<u8> = f.iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(bytes, npy("<f4", "(2, 3)", &fb), "byte-identical to numpy.save");
        assert_eq!(bytes.len() - fb.len(), 128, "data starts at byte 128");
        let a = read_f32(&p).unwrap();
        assert_eq!((a.shape, a.data), (vec![2, 3], f.to_vec()));
        write_i64(&p, &[3], &[-1, 0, 7]).unwrap();
        let ib: Vec<u8> = [-1i64, 0, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(std::fs::read(&p).unwrap(), npy("<i8", "(3,)", &ib));
        assert!(write_f32(&p, &[2, 2], &f).is_err(), "shape mismatch must fail");
    }
}
