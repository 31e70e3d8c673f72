use super::compare::{Scratch, compare, greedy_pairs};
use super::geometry::norm_angle;
use super::local::{SQRT_TABLE, boundary_from, dir_window};
use super::*;
use crate::finger::template::{Minutia, MinutiaKind, Template};

/// A level that runs the AVX2 kernels, if this CPU has one.
fn avx2() -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    return Isa::available().into_iter().find(|&i| Kernel::of(i) == Kernel::Avx2);
    #[cfg(not(target_arch = "x86_64"))]
    None
}

/// A pseudo-random template (xorshift, deterministic).
fn random_template(seed: u64, n: usize) -> Template {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s % 10_000) as f32 / 10_000.0
    };
    let minutiae = (0..n)
        .map(|_| Minutia {
            x: 40.0 + next() * 220.0,
            y: 40.0 + next() * 320.0,
            angle: (next() * 2.0 - 1.0) * PI,
            kind: MinutiaKind::Ending,
            quality: 0.8,
        })
        .collect();
    Template { width: 300, height: 400, ppi: 500.0, quality: 0, minutiae }
}

/// The same print rotated by `phi` (counter-clockwise on screen) about (150, 200) and shifted.
fn rotated(t: &Template, phi: f32, dx: f32, dy: f32) -> Template {
    let mut r = t.clone();
    for m in &mut r.minutiae {
        let (x, y) = (m.x - 150.0, m.y - 200.0);
        // counter-clockwise on screen = clockwise in y-down coordinates
        m.x = 150.0 + x * phi.cos() + y * phi.sin() + dx;
        m.y = 200.0 - x * phi.sin() + y * phi.cos() + dy;
        m.angle = norm_angle(m.angle + phi);
    }
    r
}

#[test]
fn rotation_and_translation_do_not_change_the_score_much() {
    let a = random_template(7, 40);
    let same = similarity(&MccTemplate::new(&a), &MccTemplate::new(&rotated(&a, 0.5, 12.0, -9.0)));
    let other = similarity(&MccTemplate::new(&a), &MccTemplate::new(&random_template(99, 40)));
    assert!(same > 0.5, "rotated copy scored {same}");
    assert!(other < 0.1, "unrelated template scored {other}");
}

#[test]
fn resolution_is_normalised_before_matching() {
    let a = random_template(3, 35);
    let mut b = a.clone();
    b.ppi = 1000.0;
    for m in &mut b.minutiae {
        m.x *= 2.0;
        m.y *= 2.0;
    }
    let s = similarity(&MccTemplate::new(&a), &MccTemplate::new(&b));
    assert!(s > 0.9, "{s}");
}

#[test]
fn fast_atan2_is_close_to_libm() {
    for i in 0..3600 {
        let t = i as f32 / 10.0f32.to_degrees().recip() / 10.0;
        let (y, x) = (t.sin() * 3.7, t.cos() * 3.7);
        assert!(dphi(fast_atan2(y, x), y.atan2(x)).abs() < 0.0015, "{t}");
    }
    assert_eq!(fast_atan2(0.0, 0.0), 0.0);
}

#[test]
fn sqrt_table_is_exact() {
    for (i, &v) in SQRT_TABLE.0.iter().enumerate() {
        assert_eq!(v.to_bits(), (i as f32).sqrt().to_bits(), "{i}");
    }
}

#[test]
fn direction_window_gives_the_exhaustive_scores() {
    let mut sc = Scratch::default();
    for seed in 0..60u64 {
        let a = MccTemplate::new(&random_template(seed, 20 + (seed as usize % 40)));
        let b = MccTemplate::new(&rotated(
            &random_template(seed / 2, 25 + (seed as usize % 30)),
            seed as f32 * 0.37,
            5.0,
            -3.0,
        ));
        let fast = compare::<true, false>(&a, &b, &mut sc);
        let exhaustive = compare::<false, false>(&a, &b, &mut sc);
        assert_eq!(fast.to_bits(), exhaustive.to_bits(), "seed {seed}: {fast} vs {exhaustive}");
        assert_eq!(similarity(&a, &b).to_bits(), fast.to_bits());
    }
    // directions at the window's edges and the ±π seam
    let edge = |angles: &[f32]| {
        let minutiae = angles
            .iter()
            .enumerate()
            .map(|(k, &angle)| Minutia {
                x: 100.0 + 13.0 * (k % 6) as f32,
                y: 100.0 + 17.0 * (k / 6) as f32,
                angle,
                kind: MinutiaKind::Ending,
                quality: 0.8,
            })
            .collect();
        MccTemplate::new(&Template { width: 300, height: 400, ppi: 500.0, quality: 0, minutiae })
    };
    let h = PI / 2.0;
    let angles: Vec<f32> = [-PI + 1e-6, PI, 0.0, h, -h, h + 1e-4, -h - 1e-4, PI - h, -PI + h, 1.0, -2.5, 3.0]
        .iter()
        .cycle()
        .take(24)
        .enumerate()
        .map(|(k, &t)| if k < 12 { t } else { norm_angle(t + 0.0005) })
        .collect();
    let (a, b) = (edge(&angles), edge(&angles.iter().rev().copied().collect::<Vec<_>>()));
    for ka in 0..a.len() {
        let (start, end) = dir_window(&b, a.sorted_theta[ka], &mut [0; 3]);
        for kb in 0..b.len() {
            let pass = a.dir_cos[ka] * b.dir_cos[kb] + a.dir_sin[ka] * b.dir_sin[kb] >= 0.0;
            let inside = (start..end).any(|k| k % b.len() == kb);
            assert!(!pass || inside, "cylinder {kb} passes the gate for {ka} but is outside the window");
        }
    }
    assert_eq!(compare::<true, false>(&a, &b, &mut sc).to_bits(), compare::<false, false>(&a, &b, &mut sc).to_bits());
}

#[test]
fn walked_boundary_is_the_partition_point_from_any_hint() {
    let mut r = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        r
    };
    for case in 0..500 {
        let n = rnd() as usize % 40;
        // few distinct values: ties at the bound are common
        let mut s: Vec<f32> = (0..n).map(|_| (rnd() % 9) as f32 * 0.5 - 2.0).collect();
        s.sort_by(f32::total_cmp);
        let bound = (rnd() % 11) as f32 * 0.5 - 2.5;
        let hint = rnd() as usize % (n + 3);
        assert_eq!(boundary_from(&s, hint, |t| t < bound), s.partition_point(|&t| t < bound), "case {case}");
        assert_eq!(boundary_from(&s, hint, |t| t <= bound), s.partition_point(|&t| t <= bound), "case {case}");
    }
}

#[test]
fn greedy_pairing_is_the_scan_of_the_sorted_keys() {
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for case in 0..300 {
        let (na, nb) = (1 + rnd() as usize % 70, 1 + rnd() as usize % 70);
        let nr = na.min(nb).min(MAX_NR);
        // sparse positives with many equal λ, as the local similarities have
        let gamma: Vec<u64> = (0..na * nb)
            .map(|c| {
                let l = if rnd() % 3 == 0 { (rnd() % 40) as f32 / 40.0 } else { 0.0 };
                (((l.to_bits() as u64) << 32) | (((c / nb) as u64) << 16) | (c % nb) as u64)
                    & ((l > 0.0) as u64).wrapping_neg()
            })
            .collect();
        let mut sorted: Vec<u64> = gamma.iter().copied().filter(|&g| g != 0).collect();
        sorted.sort_unstable_by(|x, y| y.cmp(x));
        let (mut used_a, mut used_b, mut want) = (vec![false; na], vec![false; nb], Vec::new());
        for g in sorted {
            let (i, j) = (((g >> 16) & 0xFFFF) as usize, (g & 0xFFFF) as usize);
            if !used_a[i] && !used_b[j] && want.len() < nr {
                (used_a[i], used_b[j]) = (true, true);
                want.push((f32::from_bits((g >> 32) as u32), i, j));
            }
        }
        let mut row_max: Vec<u64> = gamma.chunks(nb).map(|r| r.iter().copied().max().unwrap()).collect();
        let mut got = Vec::new();
        let col: Vec<u16> = (0..nb as u16).collect();
        greedy_pairs::<false>(&gamma, &mut row_max, nb, &col, nr, &mut Vec::new(), &mut got);
        if avx2().is_some() {
            let mut row_max: Vec<u64> = gamma.chunks(nb).map(|r| r.iter().copied().max().unwrap()).collect();
            let mut simd = Vec::new();
            greedy_pairs::<true>(&gamma, &mut row_max, nb, &col, nr, &mut Vec::new(), &mut simd);
            assert_eq!(simd, want, "case {case}: {na} x {nb}, AVX2");
        }
        assert_eq!(got, want, "case {case}: {na} x {nb}");
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn avx2_kernel_gives_the_scalar_scores() {
    let Some(isa) = avx2() else {
        eprintln!("no AVX2 + FMA + POPCNT here: nothing to compare");
        return;
    };
    let mut sc = Scratch::default();
    for seed in 0..80u64 {
        // sizes around the 4-wide groups and the wrap of the direction window
        let a = MccTemplate::new(&random_template(seed, 3 + (seed as usize % 61)));
        let b = MccTemplate::new(&rotated(&random_template(seed / 3, 5 + (seed as usize * 7 % 53)), 0.2, 4.0, 1.0));
        let scalar = compare::<true, false>(&a, &b, &mut sc);
        let simd = super::avx2::similarity(isa, &a, &b, &mut sc);
        assert_eq!(scalar.to_bits(), simd.to_bits(), "seed {seed}: {scalar} vs {simd}");
        let (gs, gv) = (sc.gamma.clone(), sc.row_max.clone());
        let _ = compare::<true, false>(&a, &b, &mut sc);
        assert_eq!(sc.gamma.len(), gs.len());
        assert_eq!(sc.row_max, gv, "seed {seed}: row maxima differ");
    }
}

#[test]
fn every_level_gives_the_scores_of_the_scalar_level() {
    let mut sc = Scratch::default();
    for seed in 0..40u64 {
        let a = MccTemplate::new(&random_template(seed, 10 + (seed as usize % 50)));
        let b = MccTemplate::new(&rotated(&random_template(seed / 2, 12 + (seed as usize % 41)), -0.3, 2.0, 6.0));
        let want = similarity_with(Isa::scalar(), &a, &b);
        assert_eq!(want.to_bits(), compare::<true, false>(&a, &b, &mut sc).to_bits(), "seed {seed}");
        for isa in Isa::available() {
            assert_eq!(similarity_with(isa, &a, &b).to_bits(), want.to_bits(), "seed {seed}, {}", isa.name());
        }
    }
}

#[test]
fn the_level_picks_the_kernel() {
    // `similarity` runs `Kernel::of(Isa::best())`: with EPATROL_ISA=scalar no SIMD kernel
    assert_ne!(format!("{:?}", Kernel::of(Isa::scalar())), "Avx2");
    #[cfg(target_arch = "x86_64")]
    for isa in Isa::available() {
        let simd = isa.level() != crate::vector::Level::Scalar;
        assert_eq!(Kernel::of(isa) == Kernel::Avx2, simd, "{}", isa.name());
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn vector_expf_is_libm_expf_bit_for_bit() {
    if avx2().is_none() {
        eprintln!("no AVX2 + FMA here: nothing to compare");
        return;
    }
    use super::avx2::expf4;
    use std::arch::x86_64::*;
    // a fine grid over the arguments the sigmoids produce, then every f32 pattern in
    // a few narrow ranges (rounding boundaries of the table index)
    let grid = (0..400_000).map(|i| -87.5 + i as f32 * 175.0 / 400_000.0);
    let dense = [0.0f32, 1.0, -8.0, 30.0, 86.0].into_iter().flat_map(|c| {
        let b = c.to_bits();
        (b.saturating_sub(3000)..b + 3000).map(f32::from_bits)
    });
    let xs: Vec<f32> = grid.chain(dense).filter(|x| x.abs() < 87.9).collect();
    for x in xs.chunks_exact(4) {
        // SAFETY: an AVX2 level exists, so the CPU has AVX2 and FMA; 4 floats read, 4 written
        let got = unsafe {
            let mut out = [0f32; 4];
            _mm_storeu_ps(out.as_mut_ptr(), expf4(_mm_loadu_ps(x.as_ptr())));
            out
        };
        for (v, g) in x.iter().zip(got) {
            assert_eq!(g.to_bits(), v.exp().to_bits(), "expf({v})");
        }
    }
}

#[test]
fn empty_templates_score_zero() {
    let e = Template { width: 10, height: 10, ppi: 500.0, quality: 0, minutiae: vec![] };
    assert_eq!(similarity(&MccTemplate::new(&e), &MccTemplate::new(&random_template(1, 30))), 0.0);
}
