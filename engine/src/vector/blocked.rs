//! Blocked layouts for quantized gallery scans, and their scalar reference kernels.
//!
//! Rows are stored in blocks of [`BLOCK`] = 16 so one 512-bit register holds one value
//! per row, and a query value is broadcast against it: no horizontal sums, and a block
//! of queries shares every load of the gallery (the point of batch search).
//!
//! * int8: `dp = dim` rounded up to a multiple of 4. A block is `dp / 4` groups of
//!   64 bytes; group `g` holds, for rows `r = 0..16`, the 4 codes of dims `4g..4g+4`
//!   at bytes `64g + 4r .. 64g + 4r + 4`. Gallery codes are 7-bit (`±CODE_MAX`) stored
//!   biased (`u8 = i8 + CODE_BIAS`, so at most [`CODE_U8_MAX`]) and queries as `i8`
//!   within `±QUERY_MAX`, the operand types of `vpdpbusd` and `vpmaddubsw`. The kernels
//!   return `sum(u8 * i8)`, which equals the signed dot product plus
//!   `CODE_BIAS * sum(query)`, the same for every row of one query, so rankings are
//!   unaffected.
//! * f16: a block is `dim` groups of 16 half floats (32 bytes), dim-major.
//! * f32: as f16 with 4-byte floats (the exact flat index packs row tiles into this
//!   layout on the fly for batch search).

/// Rows per block.
pub const BLOCK: usize = 16;

/// Largest magnitude of an int8 query code.
pub const QUERY_MAX: i8 = 63;

/// Largest magnitude of an int8 gallery code. Gallery and queries both use 7 bits so
/// that on AVX2 two `vpmaddubsw` pair sums (each at most 2 * 127 * 63 = 16002) add up in
/// i16 without saturating before one widening `vpmaddwd`: 3 multiply uops per 8 products
/// per row instead of 4 (~1.3x). The exact re-rank absorbs the coarser codes. The same
/// bounds on every ISA keep the shortlists identical across machines.
pub const CODE_MAX: i8 = 63;

/// Offset that turns a signed gallery code into the unsigned operand.
pub const CODE_BIAS: u8 = 64;

/// Largest stored gallery byte (`CODE_MAX + CODE_BIAS`); kernels may saturate above it.
pub const CODE_U8_MAX: u8 = CODE_MAX as u8 + CODE_BIAS;

/// int8 block size in bytes for padded dimension `dp`.
pub const fn int8_block_bytes(dp: usize) -> usize {
    dp * BLOCK
}

/// Reference int8 kernel: `out[q * nb * 16 + b * 16 + r] = sum(u8 * i8)` as f32.
pub(crate) fn int8_scores(blocks: &[u8], dp: usize, queries: &[i8], out: &mut [f32]) {
    let bb = int8_block_bytes(dp);
    let nb = blocks.len() / bb;
    let rows = nb * BLOCK;
    for (qi, q) in queries.chunks_exact(dp).enumerate() {
        for (b, blk) in blocks.chunks_exact(bb).enumerate() {
            let mut acc = [0i32; BLOCK];
            for (g, grp) in blk.chunks_exact(4 * BLOCK).enumerate() {
                let qv = &q[4 * g..4 * g + 4];
                for (r, a) in acc.iter_mut().enumerate() {
                    for j in 0..4 {
                        *a += grp[4 * r + j] as i32 * qv[j] as i32;
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                out[qi * rows + b * BLOCK + r] = *a as f32;
            }
        }
    }
}

/// Reference for [`super::next_block_reaching`].
pub(crate) fn next_block_reaching(scores: &[f32], from: usize, thr: f32) -> Option<usize> {
    let start = (from * BLOCK).min(scores.len());
    scores[start..].chunks(BLOCK).position(|c| c.iter().any(|&s| s >= thr)).map(|i| from + i)
}

/// Reference f16 kernel: `out[q * nb * 16 + b * 16 + r] = sum(f16 * f32)`.
pub(crate) fn f16_scores(blocks: &[u16], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * BLOCK;
    let nb = blocks.len() / bh;
    let rows = nb * BLOCK;
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        for (b, blk) in blocks.chunks_exact(bh).enumerate() {
            let mut acc = [0f32; BLOCK];
            for (k, grp) in blk.chunks_exact(BLOCK).enumerate() {
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = half::f16::from_bits(grp[r]).to_f32().mul_add(q[k], *a);
                }
            }
            out[qi * rows + b * BLOCK..qi * rows + (b + 1) * BLOCK].copy_from_slice(&acc);
        }
    }
}

/// Reference f32 kernel (blocked layout as f16): `out[q * rows + r] = sum(g * q)`.
pub(crate) fn f32_scores(blocks: &[f32], dim: usize, queries: &[f32], out: &mut [f32]) {
    let bh = dim * BLOCK;
    let nb = blocks.len() / bh;
    let rows = nb * BLOCK;
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        for (b, blk) in blocks.chunks_exact(bh).enumerate() {
            let mut acc = [0f32; BLOCK];
            for (k, grp) in blk.chunks_exact(BLOCK).enumerate() {
                for (r, a) in acc.iter_mut().enumerate() {
                    *a = grp[r].mul_add(q[k], *a);
                }
            }
            out[qi * rows + b * BLOCK..qi * rows + (b + 1) * BLOCK].copy_from_slice(&acc);
        }
    }
}

/// Packs row-major rows (`rows.len() / dim` of them, zero-padded to whole blocks) into
/// the blocked f32 layout.
pub fn pack_f32(rows: &[f32], dim: usize, out: &mut Vec<f32>) {
    let n = rows.len() / dim;
    let nb = n.div_ceil(BLOCK);
    out.clear();
    out.resize(nb * dim * BLOCK, 0.0);
    for (i, row) in rows.chunks_exact(dim).enumerate() {
        let base = (i / BLOCK) * dim * BLOCK + i % BLOCK;
        for (k, x) in row.iter().enumerate() {
            out[base + k * BLOCK] = *x;
        }
    }
}
