//! Blocked code storage with slot ids, tombstones and f32 vectors for re-ranking.
//! One `CodeStore` is a flat index's whole gallery or one IVF list.

use std::sync::Arc;

use super::hugevec::HugeVec;
use super::quant::{Int8Scales, QuantKind, put_f16, put_int8};
use super::rows::Rows;
use super::{SegmentFile, TopK};
use crate::vector::{
    self, Isa,
    blocked::{BLOCK, CODE_BIAS},
};

/// Encoded queries in the form the kernels take.
pub(crate) enum Encoded {
    /// int8 codes, `dp` per query.
    I8(Vec<i8>),
    /// f32 values, `dim` per query (for f16 galleries).
    F32(Vec<f32>),
}

/// Codes for a set of slots, in blocks of 16.
#[derive(Debug, Clone)]
pub(crate) enum Codes {
    Int8(HugeVec<u8>),
    F16(HugeVec<u16>),
}

/// One scanned partition.
#[derive(Debug, Clone)]
pub(crate) struct CodeStore {
    pub dim: usize,
    /// Padded dim of the int8 layout (= dim for f16).
    pub dp: usize,
    pub codes: Codes,
    /// Slot -> id (dead slots keep their old id).
    pub ids: Vec<u64>,
    pub live: Vec<bool>,
    pub dead: usize,
    /// The f32 row of each slot for the exact re-rank (copied or mapped).
    pub rows: Rows,
}

/// Bytes of codes scored per tile: half of a 512 KiB L2, so the tile stays there while
/// every query of the batch passes over it, with room for the scores.
const TILE_BYTES: usize = 256 * 1024;
/// Queries scored per kernel call: their scores (`QUERY_CHUNK x rows x 4 B`, 32 KiB at
/// d = 512) stay in L1/L2 between the kernel writing and the shortlist reading them;
/// scoring the whole batch at once wrote megabytes and pushed the tile out of L2.
const QUERY_CHUNK: usize = 16;

impl CodeStore {
    pub fn new(kind: QuantKind, dim: usize) -> Self {
        let (dp, codes) = match kind {
            QuantKind::Int8 => (dim.next_multiple_of(4), Codes::Int8(HugeVec::new())),
            QuantKind::F16 => (dim, Codes::F16(HugeVec::new())),
        };
        CodeStore { dim, dp, codes, ids: Vec::new(), live: Vec::new(), dead: 0, rows: Rows::new(dim) }
    }

    /// Slots in use (live + dead).
    pub fn slots(&self) -> usize {
        self.ids.len()
    }

    pub fn live_len_nonzero(&self) -> bool {
        self.ids.len() > self.dead
    }

    /// Bytes of codes a full scan reads.
    pub fn code_bytes(&self) -> usize {
        match &self.codes {
            Codes::Int8(b) => b.len(),
            Codes::F16(h) => 2 * h.len(),
        }
    }

    pub fn blocks(&self) -> usize {
        self.ids.len().div_ceil(BLOCK)
    }

    /// Appends one vector, copying it for the re-rank; returns its slot.
    pub fn push(&mut self, id: u64, v: &[f32], scales: Option<&Int8Scales>, scratch: &mut Vec<i8>) -> usize {
        self.rows.push_owned(v);
        self.push_code(id, v, scales, scratch)
    }

    /// Appends row `row` of a segment file, re-ranked from the mapping; returns its slot.
    pub fn push_mapped(
        &mut self,
        id: u64,
        file: &Arc<SegmentFile>,
        row: usize,
        scales: Option<&Int8Scales>,
        scratch: &mut Vec<i8>,
    ) -> usize {
        self.rows.push_mapped(file, row);
        self.push_code(id, &file.vectors()[row * self.dim..(row + 1) * self.dim], scales, scratch)
    }

    /// Encodes `v` into the next slot (the caller has placed its row).
    fn push_code(&mut self, id: u64, v: &[f32], scales: Option<&Int8Scales>, scratch: &mut Vec<i8>) -> usize {
        let slot = self.ids.len();
        let r = slot % BLOCK;
        match &mut self.codes {
            Codes::Int8(bytes) => {
                let bb = self.dp * BLOCK;
                if r == 0 {
                    // Empty slots hold the code of 0 so padding rows score alike.
                    bytes.grow(bb, CODE_BIAS);
                }
                scratch.resize(self.dp, 0);
                scales.expect("int8 store needs scales").encode(v, scratch);
                let start = bytes.len() - bb;
                put_int8(&mut bytes[start..], r, scratch);
            }
            Codes::F16(halves) => {
                let bh = self.dim * BLOCK;
                if r == 0 {
                    halves.grow(bh, 0);
                }
                let start = halves.len() - bh;
                put_f16(&mut halves[start..], r, v);
            }
        }
        self.ids.push(id);
        self.live.push(true);
        slot
    }

    pub fn kill(&mut self, slot: usize) {
        if std::mem::replace(&mut self.live[slot], false) {
            self.dead += 1;
        }
    }

    pub fn exact_row(&self, slot: usize) -> &[f32] {
        self.rows.get(slot)
    }

    /// Scans blocks `[b0, b1)` for all `nq` queries and offers live slots to each
    /// query's shortlist (scored by the approximate code score, slot as the "id").
    /// `tag` is OR-ed into the slot (IVF puts the list number in the high bits).
    #[allow(clippy::too_many_arguments)]
    pub fn scan(&self, isa: Isa, enc: &Encoded, nq: usize, b0: usize, b1: usize, tag: u64, short: &mut [TopK]) {
        let (row_bytes, qlen) = match &self.codes {
            Codes::Int8(_) => (self.dp, self.dp),
            Codes::F16(_) => (2 * self.dim, self.dim),
        };
        let tile_blocks = (TILE_BYTES / (row_bytes * BLOCK)).max(1);
        let mut buf = Vec::new();
        let mut t0 = b0;
        while t0 < b1 {
            let t1 = (t0 + tile_blocks).min(b1);
            let rows = (t1 - t0) * BLOCK;
            let first = t0 * BLOCK;
            let valid = (self.ids.len() - first).min(rows);
            for q0 in (0..nq).step_by(QUERY_CHUNK) {
                let q1 = (q0 + QUERY_CHUNK).min(nq);
                buf.resize((q1 - q0) * rows, 0.0);
                match (&self.codes, enc) {
                    (Codes::Int8(bytes), Encoded::I8(q)) => {
                        let bb = self.dp * BLOCK;
                        let q = &q[q0 * qlen..q1 * qlen];
                        vector::int8_block_scores(isa, &bytes[t0 * bb..t1 * bb], self.dp, q, &mut buf);
                    }
                    (Codes::F16(halves), Encoded::F32(q)) => {
                        let bh = self.dim * BLOCK;
                        let q = &q[q0 * qlen..q1 * qlen];
                        vector::f16_block_scores(isa, &halves[t0 * bh..t1 * bh], self.dim, q, &mut buf);
                    }
                    _ => unreachable!("query encoding matches the store kind"),
                }
                for (scores, top) in buf.chunks_exact(rows).zip(&mut short[q0..q1]) {
                    let scores = &scores[..valid];
                    let mut from = 0;
                    while let Some(c) = vector::next_block_reaching(isa, scores, from, top.threshold()) {
                        let end = ((c + 1) * BLOCK).min(valid);
                        for (r, &s) in scores[c * BLOCK..end].iter().enumerate() {
                            let slot = first + c * BLOCK + r;
                            if s >= top.threshold() && self.live[slot] {
                                top.push(tag | slot as u64, s);
                            }
                        }
                        from = c + 1;
                    }
                }
            }
            t0 = t1;
        }
    }

    /// Exact re-rank of a shortlist of slots into `out` (real ids, f32 scores).
    pub fn rerank(&self, q: &[f32], short: TopK, out: &mut TopK) {
        for h in short.into_sorted() {
            let slot = h.id as usize;
            out.push(self.ids[slot], vector::dot(q, self.exact_row(slot)));
        }
    }

    /// Drops dead slots, re-packing codes (rebuilds from the exact vectors; mapped rows
    /// stay mapped).
    pub fn compacted(&self, kind: QuantKind, scales: Option<&Int8Scales>) -> CodeStore {
        let mut s = CodeStore::new(kind, self.dim);
        let mut scratch = Vec::new();
        for slot in 0..self.slots() {
            if self.live[slot] {
                s.rows.push_from(&self.rows, slot);
                s.push_code(self.ids[slot], self.exact_row(slot), scales, &mut scratch);
            }
        }
        s
    }

    /// Resident bytes: codes + copied re-rank rows and the row table + ids + live flags
    /// (rows read from mapped segments are page cache, not counted).
    pub fn bytes(&self) -> usize {
        self.code_bytes() + self.rows.bytes() + 8 * self.ids.len() + self.live.len()
    }
}

/// Encodes `nq` queries for a store of this kind.
pub(crate) fn encode_queries(kind: QuantKind, dim: usize, scales: Option<&Int8Scales>, queries: &[f32]) -> Encoded {
    match kind {
        QuantKind::Int8 => {
            let dp = dim.next_multiple_of(4);
            let s = scales.expect("int8 needs scales");
            let mut out = vec![0i8; queries.len() / dim * dp];
            for (q, o) in queries.chunks_exact(dim).zip(out.chunks_exact_mut(dp)) {
                s.encode_query(q, o);
            }
            Encoded::I8(out)
        }
        QuantKind::F16 => Encoded::F32(queries.to_vec()),
    }
}
