//! The exact f32 rows a quantized index re-ranks its shortlist with: copied into the
//! index, or read in place from memory-mapped segment files.
//!
//! A query re-ranks ~40 rows, so the rows need not be resident: read from a mapping they
//! cost page-cache (evictable, shared with the file) instead of 4·dim bytes of anonymous
//! memory per template, which is 80 % of a d = 512 int8 index. A mapping outlives the
//! file's deletion (segment compaction), so rows stay valid until the index drops them.

use std::sync::Arc;

use super::SegmentFile;

/// Marks a row copied into `owned` (its `file` field).
const OWNED: u32 = u32::MAX;

/// Where one slot's row is: `row` of `files[file]`, or of `owned` when `file == OWNED`.
#[derive(Debug, Clone, Copy)]
struct At {
    file: u32,
    row: u32,
}

/// Exact rows by slot.
#[derive(Debug, Clone)]
pub(crate) struct Rows {
    dim: usize,
    owned: Vec<f32>,
    files: Vec<Arc<SegmentFile>>,
    at: Vec<At>,
}

impl Rows {
    pub fn new(dim: usize) -> Self {
        Rows { dim, owned: Vec::new(), files: Vec::new(), at: Vec::new() }
    }

    /// Appends a copy of `v`.
    pub fn push_owned(&mut self, v: &[f32]) {
        let row = (self.owned.len() / self.dim) as u32;
        self.owned.extend_from_slice(v);
        self.at.push(At { file: OWNED, row });
    }

    /// Appends row `row` of a segment file, read in place.
    pub fn push_mapped(&mut self, file: &Arc<SegmentFile>, row: usize) {
        if !self.files.last().is_some_and(|f| Arc::ptr_eq(f, file)) {
            self.files.push(Arc::clone(file));
        }
        self.at.push(At { file: (self.files.len() - 1) as u32, row: row as u32 });
    }

    /// Appends `other`'s row of `slot` from the same place (a copy stays a copy, a mapped
    /// row stays mapped): what compaction does.
    pub fn push_from(&mut self, other: &Rows, slot: usize) {
        let at = other.at[slot];
        if at.file == OWNED {
            self.push_owned(other.get(slot));
        } else {
            self.push_mapped(&other.files[at.file as usize], at.row as usize);
        }
    }

    /// The row of `slot`.
    pub fn get(&self, slot: usize) -> &[f32] {
        let at = self.at[slot];
        let (src, r) = if at.file == OWNED {
            (&self.owned[..], at.row as usize)
        } else {
            (self.files[at.file as usize].vectors(), at.row as usize)
        };
        &src[r * self.dim..(r + 1) * self.dim]
    }

    /// Resident bytes: copied rows and the slot table (mapped rows are page cache).
    pub fn bytes(&self) -> usize {
        4 * self.owned.len() + size_of::<At>() * self.at.len()
    }
}
