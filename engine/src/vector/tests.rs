use super::*;
use proptest::prelude::*;

fn close(a: f32, b: f32, scale: f32) -> bool {
    // f32 sums in different orders differ by a few ulps of the magnitude summed.
    (a - b).abs() <= 1e-5 * scale.max(1.0)
}

proptest! {
    #[test]
    fn every_kernel_matches_scalar(
        (a, b) in (0usize..300).prop_flat_map(|n| (
            prop::collection::vec(-10.0f32..10.0, n),
            prop::collection::vec(-10.0f32..10.0, n),
        ))
    ) {
        let want = scalar::dot(&a, &b);
        let scale: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        for isa in Isa::available() {
            let got = dot_with(isa, &a, &b);
            prop_assert!(close(got, want, scale), "{}: {} vs {}", isa.name(), got, want);
        }
    }
}

#[test]
fn scalar_is_correct_on_known_values() {
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let b = [1.0; 9];
    assert_eq!(scalar::dot(&a, &b), 45.0);
    assert_eq!(dot(&a, &b), 45.0);
    assert_eq!(dot(&[], &[]), 0.0);
}

#[test]
#[should_panic(expected = "length mismatch")]
fn mismatched_lengths_panic() {
    dot(&[1.0, 2.0], &[1.0]);
}

#[test]
fn normalize_gives_unit_norm() {
    let mut v = vec![3.0, 4.0];
    normalize(&mut v);
    assert!((norm_sq(&v) - 1.0).abs() < 1e-6);
    let mut z = vec![0.0; 4];
    normalize(&mut z);
    assert_eq!(z, vec![0.0; 4]);
}

#[test]
fn scalar_is_always_available() {
    assert_eq!(Isa::available()[0], Isa::scalar());
    assert!(Isa::available().contains(&Isa::best()));
}

fn int8_case() -> impl Strategy<Value = (usize, Vec<u8>, Vec<i8>)> {
    (1usize..40, 1usize..6, 1usize..12).prop_flat_map(|(g, nb, nq)| {
        let dp = g * 4;
        (
            Just(dp),
            prop::collection::vec(0..=blocked::CODE_U8_MAX, dp * blocked::BLOCK * nb),
            prop::collection::vec(-blocked::QUERY_MAX..=blocked::QUERY_MAX, dp * nq),
        )
    })
}

proptest! {
    #[test]
    fn int8_kernels_match_scalar_exactly((dp, blocks, qs) in int8_case()) {
        let n = qs.len() / dp * blocks.len() / dp;
        let mut want = vec![0.0; n];
        blocked::int8_scores(&blocks, dp, &qs, &mut want);
        for isa in Isa::available() {
            let mut got = vec![f32::NAN; n];
            int8_block_scores(isa, &blocks, dp, &qs, &mut got);
            prop_assert_eq!(&got, &want, "{}", isa.name());
        }
    }

    #[test]
    fn f16_kernels_match_scalar(
        (dim, blocks, qs) in (1usize..70, 1usize..6, 1usize..12).prop_flat_map(|(dim, nb, nq)| (
            Just(dim),
            prop::collection::vec(-1.0f32..1.0, dim * blocked::BLOCK * nb),
            prop::collection::vec(-1.0f32..1.0, dim * nq),
        ))
    ) {
        let blocks: Vec<u16> = blocks.iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
        let n = qs.len() / dim * blocks.len() / dim;
        let mut want = vec![0.0; n];
        blocked::f16_scores(&blocks, dim, &qs, &mut want);
        for isa in Isa::available() {
            let mut got = vec![f32::NAN; n];
            f16_block_scores(isa, &blocks, dim, &qs, &mut got);
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((g - w).abs() <= 1e-4 * dim as f32, "{}: {} vs {}", isa.name(), g, w);
            }
        }
    }
}

/// The extremes: every code 0 or `CODE_U8_MAX` against queries at ±QUERY_MAX, where a
/// kernel that saturates its i16 pair sums would differ from the scalar sum.
#[test]
fn int8_kernels_do_not_saturate_at_the_bounds() {
    let dp = 64;
    let q = blocked::QUERY_MAX;
    let c = blocked::CODE_U8_MAX;
    for (code, qv) in [(c, q), (c, -q), (0, q), (0, -q)] {
        let blocks = vec![code; dp * blocked::BLOCK * 2];
        let qs: Vec<i8> = (0..dp * 5).map(|i| if i % 7 == 3 { -qv } else { qv }).collect();
        let n = 5 * 2 * blocked::BLOCK;
        let mut want = vec![0.0; n];
        blocked::int8_scores(&blocks, dp, &qs, &mut want);
        for isa in Isa::available() {
            let mut got = vec![f32::NAN; n];
            int8_block_scores(isa, &blocks, dp, &qs, &mut got);
            assert_eq!(got, want, "{}", isa.name());
        }
    }
}

#[test]
fn int8_scalar_known_value() {
    // One block, dp = 4: row r has codes [r, 0, 0, 255]; query [1, 0, 0, -1].
    let mut blk = vec![0u8; 64];
    for r in 0..16 {
        blk[4 * r] = r as u8;
        blk[4 * r + 3] = 255;
    }
    let mut out = vec![0.0; 16];
    blocked::int8_scores(&blk, 4, &[1, 0, 0, -1], &mut out);
    assert_eq!(out[0], -255.0);
    assert_eq!(out[5], 5.0 - 255.0);
}

proptest! {
    #[test]
    fn f32_block_kernels_match_row_dot(
        (dim, rows, qs) in (1usize..70, 1usize..50, 1usize..12).prop_flat_map(|(dim, n, nq)| (
            Just(dim),
            prop::collection::vec(-1.0f32..1.0, dim * n),
            prop::collection::vec(-1.0f32..1.0, dim * nq),
        ))
    ) {
        let n = rows.len() / dim;
        let mut packed = Vec::new();
        blocked::pack_f32(&rows, dim, &mut packed);
        let padded = n.next_multiple_of(blocked::BLOCK);
        for isa in Isa::available() {
            let mut got = vec![f32::NAN; qs.len() / dim * padded];
            f32_block_scores(isa, &packed, dim, &qs, &mut got);
            for (qi, q) in qs.chunks_exact(dim).enumerate() {
                for (r, row) in rows.chunks_exact(dim).enumerate() {
                    let want = scalar::dot(q, row);
                    let g = got[qi * padded + r];
                    prop_assert!((g - want).abs() <= 1e-5 * dim as f32, "{}: {} vs {}", isa.name(), g, want);
                }
                // Padding rows score exactly zero.
                for r in n..padded {
                    prop_assert_eq!(got[qi * padded + r], 0.0);
                }
            }
        }
    }
}

proptest! {
    /// Every block-skip kernel finds the same next block as the scalar scan, partial last
    /// block and thresholds on, between and outside the scores included.
    #[test]
    fn next_block_reaching_matches_scalar(
        scores in prop::collection::vec(-50i32..50, 0..120),
        from in 0usize..10,
        thr in -60i32..60,
    ) {
        let scores: Vec<f32> = scores.into_iter().map(|s| s as f32).collect();
        for thr in [thr as f32, f32::NEG_INFINITY] {
            let want = blocked::next_block_reaching(&scores, from, thr);
            if let Some(b) = want {
                prop_assert!(b >= from && scores[b * blocked::BLOCK..].iter().take(blocked::BLOCK).any(|&s| s >= thr));
            }
            for isa in Isa::available() {
                prop_assert_eq!(next_block_reaching(isa, &scores, from, thr), want, "{}", isa.name());
            }
        }
    }
}
