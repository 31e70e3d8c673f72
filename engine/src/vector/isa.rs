//! Runtime CPU feature detection, done once and cached.

use std::sync::OnceLock;

/// Proof that the running CPU supports a SIMD level. Values can only be obtained from
/// [`Isa::best`], [`Isa::available`] or [`Isa::scalar`] (fields are private), so the kernels
/// can rely on it for their `unsafe` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Isa(Level);

/// The instruction-set levels the kernels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Level {
    /// Portable Rust; always available, the reference every kernel is tested against.
    Scalar,
    /// x86-64 AVX2 + FMA (+ F16C for half-precision conversion, + POPCNT).
    Avx2,
    /// x86-64 AVX-512 F/BW/VL (+ F16C).
    Avx512,
    /// AVX-512 plus VNNI (`vpdpbusd`, int8 dot products).
    Avx512Vnni,
    /// AArch64 Advanced SIMD.
    Neon,
}

impl Isa {
    /// The portable level, supported everywhere.
    pub const fn scalar() -> Isa {
        Isa(Level::Scalar)
    }

    /// Which level this is.
    pub fn level(self) -> Level {
        self.0
    }

    /// The best level this CPU supports (detected once). Set `EPATROL_ISA=scalar|avx2|avx512`
    /// to force a lower level, e.g. to compare kernels end to end; unsupported requests
    /// are ignored. Every kernel dispatches on this: the distance kernels, the MCC
    /// matcher and the LEADER stem.
    pub fn best() -> Isa {
        static BEST: OnceLock<Isa> = OnceLock::new();
        *BEST.get_or_init(|| Isa::choose(&Isa::available(), std::env::var("EPATROL_ISA").ok().as_deref()))
    }

    /// The level `EPATROL_ISA=wanted` selects among `all` (lowest first): the requested one
    /// when `all` has it, else the highest.
    fn choose(all: &[Isa], wanted: Option<&str>) -> Isa {
        let best = *all.last().unwrap_or(&Isa::scalar());
        match wanted.and_then(Isa::parse) {
            Some(w) => all.iter().copied().find(|i| i.0 == w).unwrap_or(best),
            None => best,
        }
    }

    /// Every level this CPU supports, lowest first (always starts with `Scalar`).
    pub fn available() -> Vec<Isa> {
        static ALL: OnceLock<Vec<Isa>> = OnceLock::new();
        ALL.get_or_init(detect).clone()
    }

    /// Whether this CPU has POPCNT (detected once), so scalar code may be compiled with
    /// it; every x86-64 level above `Scalar` implies it. False off x86-64.
    pub fn popcnt(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            static POPCNT: OnceLock<bool> = OnceLock::new();
            self.0 != Level::Scalar || *POPCNT.get_or_init(|| is_x86_feature_detected!("popcnt"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = self;
            false
        }
    }

    /// Short lower-case name (`scalar`, `avx2`, `avx512`, `avx512vnni`, `neon`).
    pub fn name(self) -> &'static str {
        match self.0 {
            Level::Scalar => "scalar",
            Level::Avx2 => "avx2",
            Level::Avx512 => "avx512",
            Level::Avx512Vnni => "avx512vnni",
            Level::Neon => "neon",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [Level::Scalar, Level::Avx2, Level::Avx512, Level::Avx512Vnni, Level::Neon]
            .into_iter()
            .find(|l| Isa(*l).name().eq_ignore_ascii_case(s.trim()))
    }
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Vec<Isa> {
    let mut v = vec![Isa(Level::Scalar)];
    // POPCNT comes with every AVX2 CPU; the MCC kernels need it beside AVX2
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
        && is_x86_feature_detected!("popcnt");
    if avx2 {
        v.push(Isa(Level::Avx2));
        let avx512 = is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl");
        if avx512 {
            v.push(Isa(Level::Avx512));
            if is_x86_feature_detected!("avx512vnni") {
                v.push(Isa(Level::Avx512Vnni));
            }
        }
    }
    v
}

#[cfg(target_arch = "aarch64")]
fn detect() -> Vec<Isa> {
    let mut v = vec![Isa(Level::Scalar)];
    if std::arch::is_aarch64_feature_detected!("neon") {
        v.push(Isa(Level::Neon));
    }
    v
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn detect() -> Vec<Isa> {
    vec![Isa(Level::Scalar)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_variable_picks_a_supported_level() {
        let all = Isa::available();
        let best = *all.last().expect("scalar at least");
        assert_eq!(Isa::choose(&all, None), best);
        assert_eq!(Isa::choose(&all, Some("scalar")), Isa::scalar());
        assert_eq!(Isa::choose(&all, Some(" SCALAR ")), Isa::scalar());
        assert_eq!(Isa::choose(&all, Some("no-such-level")), best);
        for isa in &all {
            assert_eq!(Isa::choose(&all, Some(isa.name())), *isa);
        }
        // a level this CPU lacks is ignored
        assert_eq!(Isa::choose(&[Isa::scalar()], Some("avx2")), Isa::scalar());
    }

    #[test]
    fn simd_levels_imply_popcnt_on_x86() {
        for isa in Isa::available() {
            if cfg!(target_arch = "x86_64") && isa.level() != Level::Scalar {
                assert!(isa.popcnt(), "{}", isa.name());
            }
        }
    }
}
