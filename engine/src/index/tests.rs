use super::testutil::{brute_force, unit_vectors};
use super::*;
use crate::EngineError;
use proptest::prelude::*;

fn ids(n: usize) -> Vec<u64> {
    (0..n as u64).map(|i| i * 7 + 3).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn flat_returns_exact_top_k(n in 0usize..400, dim in 1usize..70, nq in 1usize..6, k in 0usize..15, seed in any::<u64>()) {
        let data = unit_vectors(n, dim, seed);
        let qs = unit_vectors(nq, dim, seed ^ 0xABCD);
        let ids = ids(n);
        let mut idx = FlatIndex::new(dim);
        idx.add(&ids, &data).unwrap();
        let got = idx.search(&qs, k).unwrap();
        prop_assert_eq!(got.len(), nq);
        for (q, hits) in qs.chunks_exact(dim).zip(&got) {
            let want = brute_force(&ids, &data, dim, q, k);
            prop_assert_eq!(hits.len(), want.len());
            for (g, w) in hits.iter().zip(&want) {
                // Same ranking; scores agree up to summation-order rounding.
                prop_assert!((g.score - w.score).abs() < 1e-5, "{:?} vs {:?}", g, w);
            }
            let g_ids: Vec<u64> = hits.iter().map(|h| h.id).collect();
            let w_ids: Vec<u64> = want.iter().map(|h| h.id).collect();
            if g_ids != w_ids {
                // Only allowed when scores are tied within rounding.
                for (g, w) in hits.iter().zip(&want) {
                    prop_assert!((g.score - w.score).abs() < 1e-5);
                }
            }
        }
    }
}

#[test]
fn wrong_dimensions_are_invalid() {
    let mut idx = FlatIndex::new(4);
    let e = idx.add(&[1, 2], &[0.0; 7]).unwrap_err();
    assert!(
        matches!(e, EngineError::Invalid(ref m) if m.contains("2 x 4")),
        "{e}"
    );
    let e = idx.search(&[0.0; 5], 1).unwrap_err();
    assert!(matches!(e, EngineError::Invalid(_)), "{e}");
    assert!(matches!(
        FlatIndex::try_new(0),
        Err(EngineError::Invalid(_))
    ));
    let e = idx.add(&[1], &[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(matches!(e, EngineError::Invalid(_)));
    assert!(idx.is_empty());
}

#[test]
fn add_replace_remove() {
    let mut idx = FlatIndex::new(2);
    idx.add(&[10, 20, 30], &[1.0, 0.0, 0.0, 1.0, -1.0, 0.0])
        .unwrap();
    assert_eq!(idx.len(), 3);
    // Re-adding id 30 replaces its vector.
    idx.add(&[30], &[0.6, 0.8]).unwrap();
    assert_eq!(idx.len(), 3);
    let hits = idx.search(&[0.0, 1.0], 2).unwrap();
    assert_eq!(hits[0][0].id, 20);
    assert_eq!(hits[0][1], Hit { id: 30, score: 0.8 });
    assert_eq!(idx.remove(&[20, 99, 20]).unwrap(), 1);
    assert_eq!(idx.len(), 2);
    let hits = idx.search(&[0.0, 1.0, 1.0, 0.0], 5).unwrap();
    assert_eq!(
        hits[0].iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![30, 10]
    );
    assert_eq!(
        hits[1].iter().map(|h| h.id).collect::<Vec<_>>(),
        vec![10, 30]
    );
    assert_eq!(idx.get(10), Some(&[1.0, 0.0][..]));
    assert_eq!(idx.get(20), None);
}

#[test]
fn empty_and_zero_k() {
    let idx = FlatIndex::new(3);
    assert_eq!(
        idx.search(&[1.0, 0.0, 0.0], 5).unwrap(),
        vec![Vec::<Hit>::new()]
    );
    assert!(idx.search(&[], 5).unwrap().is_empty());
}

#[test]
fn large_gallery_uses_shards_and_stays_exact() {
    // Enough rows for several shards and tiles.
    let (n, dim) = (20_000, 32);
    let data = unit_vectors(n, dim, 7);
    let ids: Vec<u64> = (0..n as u64).collect();
    let mut idx = FlatIndex::new(dim);
    idx.add(&ids, &data).unwrap();
    let qs = unit_vectors(3, dim, 8);
    let got = idx.search(&qs, 10).unwrap();
    for (q, hits) in qs.chunks_exact(dim).zip(&got) {
        let want = brute_force(&ids, &data, dim, q, 10);
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            want.iter().map(|h| h.id).collect::<Vec<_>>()
        );
    }
}
