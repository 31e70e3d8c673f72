//! Minutia Cylinder-Code matcher (Cappelli, Ferrara, Maltoni, "Minutia Cylinder-Code: a
//! new representation and matching technique for fingerprint recognition", IEEE TPAMI
//! 32(12), 2010), bit-based cylinders, Local Similarity Sort with Relaxation (LSS-R).
//!
//! Why MCC and not a Bozorth-style pair table: (1) it is the best-documented local
//! matcher on FVC data (the paper and FVC-onGoing report it ahead of Bozorth3 on every
//! FVC DB, and the NBIS row of `../shared/datasets/fingerprints/README.md` shows Bozorth3
//! weak on FVC2004 DB1); (2) cylinders are fixed-length bit vectors, so the local
//! similarity is AND/XOR/popcount (eight pairs per step with AVX2) — and the
//! same bits feed the 1:N candidate stage (locality-sensitive hashing, Cappelli 2011,
//! see [`crate::finger::index`]); (3) it tolerates the missing/spurious minutiae and the
//! skin distortion of small plain impressions better than global alignment, because it
//! never commits to one rigid alignment, and relaxation then rewards pairs whose
//! *mutual* geometry agrees.
//!
//! Parameters are the paper's (Table 1/2) unless noted, in pixels at 500 ppi.
//!
//! Modules: [`cylinder`] builds a template's cylinders, `local` scores one cylinder
//! pair, `compare` runs one comparison (pairing, relaxation, consolidation), `avx2` holds
//! its AVX2 kernels; [`similarity`] picks the kernel through [`Isa`].

mod compare;
mod cylinder;
mod geometry;
mod local;

#[cfg(target_arch = "x86_64")]
mod avx2;

pub use cylinder::cell_in_radius;
pub use geometry::{dphi, fast_atan2};

use std::f32::consts::PI;

use crate::vector::Isa;
#[cfg(target_arch = "x86_64")]
use crate::vector::Level;
use compare::{SCRATCH, compare};

/// Cylinder radius R, pixels.
const R: f32 = 70.0;
/// Spatial cells per side. The paper's default is 16; 8 (its compact "MCC8b" variant)
/// makes a direction plane exactly one u64, cuts memory and time by 4x, and on the FVC
/// B sets here loses nothing measurable (see `docs` in the eval report of the commit).
pub const NS: usize = 8;
/// 64-bit words of one direction plane (and of the spatial validity mask).
pub const PLANE_WORDS: usize = NS * NS / 64;
/// Directional cells.
pub const ND: usize = 6;
/// Cells of one cylinder.
pub const CELLS: usize = NS * NS * ND;
/// 64-bit words of one cylinder.
pub const WORDS: usize = CELLS / 64;
const SIGMA_S: f32 = 28.0 / 3.0;
const SIGMA_D: f32 = 2.0 * PI / 9.0;
const MU_PSI: f32 = 0.01;
/// Convex-hull enlargement Ω for cell validity.
const OMEGA: f32 = 50.0;
/// A cylinder needs this share of valid cells (minVC) …
const MIN_VC: f32 = 0.75;
/// … and at least this many other minutiae within R + 3σS (minM).
const MIN_M: usize = 2;
/// Two cylinders are comparable when this share of cells is valid in both (minME).
const MIN_ME: f32 = 0.60;
/// Largest direction difference between comparable cylinders (δθ).
const DELTA_THETA: f32 = PI / 2.0;
const MIN_NP: f32 = 4.0;
const MAX_NP: f32 = 12.0;
const MU_P: f32 = 20.0;
const TAU_P: f32 = 2.0 / 5.0;
const W_R: f32 = 0.5;
const N_REL: usize = 5;
const MU1: f32 = 5.0;
const TAU1: f32 = -8.0 / 5.0;
const MU2: f32 = PI / 12.0;
const TAU2: f32 = -30.0;
const MU3: f32 = PI / 12.0;
const TAU3: f32 = -30.0;
/// Relaxation considers at most this many pairs (cost is quadratic in it).
const MAX_NR: usize = 64;
/// Spare zero entries after a template's `planes`, `dir_cos`, `dir_sin` and `by_dir`, and
/// spare columns in each row of the comparison's key matrix: the AVX2 kernel's last group
/// of eight cylinders reads and writes up to seven past the end, its extra lanes masked.
const PAD: usize = 7;

/// A template prepared for MCC matching: valid cylinders and their minutiae.
///
/// Per-minutia geometry (`x`, `y`, `theta`) is in minutia order; the cylinders themselves
/// are kept in *direction order* (ascending `theta`, see `by_dir`), so the cylinders of
/// `b` within δθ of a direction are one contiguous (circular) run, and word-major planes,
/// so four neighbouring cylinders' word `w` is one 256-bit load. Only the geometry is
/// public: the layout fields carry the [`PAD`] spare entries the AVX2 kernel reads, so
/// templates come from [`MccTemplate::new`] (or `default()`, empty, never compared).
#[derive(Debug, Clone, Default)]
pub struct MccTemplate {
    /// x of each kept minutia (500 ppi pixels).
    pub x: Vec<f32>,
    /// y of each kept minutia.
    pub y: Vec<f32>,
    /// Direction of each kept minutia, radians.
    pub theta: Vec<f32>,
    /// Cylinder words, direction order, word-major: word `w` of the cylinder of direction
    /// rank `k` is `planes[w * len + k]`; words `0..WORDS` are the cell bits, words
    /// `WORDS..WORDS + PLANE_WORDS` the spatial cell validity (the same for every
    /// direction plane); then [`PAD`] zero words.
    planes: Vec<u64>,
    /// cos of each direction, direction order: the δθ gate is a branch-free dot product
    /// (then [`PAD`] zeros, as `dir_sin` and `by_dir`).
    dir_cos: Vec<f32>,
    /// sin of each direction, direction order.
    dir_sin: Vec<f32>,
    /// Minutia number of each direction rank.
    by_dir: Vec<u16>,
    /// Direction rank of each minutia (the inverse of `by_dir`): the comparison's key
    /// matrix has its columns in direction order, so a run of ranks is one vector store.
    dir_rank: Vec<u16>,
    /// `theta` in direction order (ascending).
    sorted_theta: Vec<f32>,
}

/// The comparison code a SIMD level runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// The portable Rust comparison.
    Portable,
    /// The portable comparison compiled with POPCNT (the baseline x86-64 target has none,
    /// and `count_ones` then becomes a ~12-instruction bit trick per word).
    #[cfg(target_arch = "x86_64")]
    Popcnt,
    /// The AVX2 kernels (needs AVX2, FMA and POPCNT).
    #[cfg(target_arch = "x86_64")]
    Avx2,
}

impl Kernel {
    /// The fastest comparison `isa` allows.
    fn of(isa: Isa) -> Kernel {
        #[cfg(target_arch = "x86_64")]
        {
            if matches!(isa.level(), Level::Avx2 | Level::Avx512 | Level::Avx512Vnni) {
                return Kernel::Avx2;
            }
            if isa.popcnt() {
                return Kernel::Popcnt;
            }
        }
        let _ = isa;
        Kernel::Portable
    }
}

/// Similarity of two MCC templates in 0..1 (LSS-R), with the best kernel of this CPU
/// ([`Isa::best`], so `EPATROL_ISA` can force a lower one).
pub fn similarity(a: &MccTemplate, b: &MccTemplate) -> f32 {
    similarity_with(Isa::best(), a, b)
}

/// [`similarity`] with an explicitly chosen SIMD level (tests and benches compare them):
/// every level gives the same bits.
pub fn similarity_with(isa: Isa, a: &MccTemplate, b: &MccTemplate) -> f32 {
    let kernel = Kernel::of(isa);
    // The scratch buffers are borrowed here, outside the feature-specific function: the
    // closure of `LocalKey::with` is compiled without the caller's target features.
    SCRATCH.with(|sc| {
        let sc = &mut sc.borrow_mut();
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => avx2::similarity(isa, a, b, sc),
            #[cfg(target_arch = "x86_64")]
            Kernel::Popcnt => avx2::similarity_popcnt(isa, a, b, sc),
            Kernel::Portable => compare::<true, false>(a, b, sc),
        }
    })
}

#[cfg(test)]
mod tests;
