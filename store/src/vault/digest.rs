//! BLAKE3 digests of blobs, and merging per-part chaining values into a whole-file digest.

use std::fmt;
use std::str::FromStr;

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// A BLAKE3 digest (32 bytes), shown as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Digest of `bytes` in one go.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Self {
        Self(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.len() != 64 {
            return Err(StoreError::Invalid(format!("digest must be 64 hex digits, got {:?}", s)));
        }
        let bytes = hex::decode(s).map_err(|_| StoreError::Invalid(format!("digest {s:?} is not hex")))?;
        Ok(Self(bytes.try_into().expect("64 hex digits are 32 bytes")))
    }
}

impl TryFrom<String> for Digest {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.to_hex()
    }
}

/// Chaining value of one part of a larger input. `offset` must be a multiple of
/// `part_size`, and `part_size` a power of two of at least 1024 bytes, so every part
/// except the last is a complete BLAKE3 subtree.
pub fn part_chaining_value(offset: u64, data: &[u8]) -> ChainingValue {
    let mut h = blake3::Hasher::new();
    h.set_input_offset(offset);
    h.update(data);
    h.finalize_non_root()
}

/// Whether `part_size` can be used for resumable uploads (power of two, ≥ 1 KiB chunk).
pub fn valid_part_size(part_size: u64) -> bool {
    part_size >= 1024 && part_size.is_power_of_two()
}

/// Combines the chaining values of consecutive parts (all `part_size` long except the
/// last) into the digest of the whole input, following BLAKE3's left-balanced tree.
/// `single` is the root digest when there is only one part (a lone part is hashed as a
/// root, not a subtree, so its chaining value cannot be reused).
pub fn merge_parts(part_size: u64, total_len: u64, cvs: &[ChainingValue]) -> ChainingValue {
    fn go(part_size: u64, start: usize, len: u64, cvs: &[ChainingValue], root: bool) -> ChainingValue {
        debug_assert!(len > part_size);
        let left_len = left_subtree_len(len);
        let left_parts = (left_len / part_size) as usize;
        let left = sub(part_size, start, left_len, cvs);
        let right = sub(part_size, start + left_parts, len - left_len, cvs);
        if root {
            *merge_subtrees_root(&left, &right, Mode::Hash).as_bytes()
        } else {
            merge_subtrees_non_root(&left, &right, Mode::Hash)
        }
    }
    fn sub(part_size: u64, start: usize, len: u64, cvs: &[ChainingValue]) -> ChainingValue {
        if len <= part_size { cvs[start] } else { go(part_size, start, len, cvs, false) }
    }
    assert!(total_len > part_size, "merge_parts needs at least two parts");
    go(part_size, 0, total_len, cvs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_parts_equal_whole_hash() {
        let part = 4096u64;
        for len in [4097usize, 8192, 8193, 3 * 4096 + 17, 7 * 4096, 9 * 4096 + 1] {
            let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let cvs: Vec<_> =
                data.chunks(part as usize).enumerate().map(|(i, c)| part_chaining_value(i as u64 * part, c)).collect();
            let merged = merge_parts(part, len as u64, &cvs);
            assert_eq!(merged, *blake3::hash(&data).as_bytes(), "len {len}");
        }
    }
}
