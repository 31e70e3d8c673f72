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
    assert!(matches!(e, EngineError::Invalid(ref m) if m.contains("2 x 4")), "{e}");
    let e = idx.search(&[0.0; 5], 1).unwrap_err();
    assert!(matches!(e, EngineError::Invalid(_)), "{e}");
    assert!(matches!(FlatIndex::try_new(0), Err(EngineError::Invalid(_))));
    let e = idx.add(&[1], &[f32::NAN, 0.0, 0.0, 0.0]).unwrap_err();
    assert!(matches!(e, EngineError::Invalid(_)));
    assert!(idx.is_empty());
}

#[test]
fn add_replace_remove() {
    let mut idx = FlatIndex::new(2);
    idx.add(&[10, 20, 30], &[1.0, 0.0, 0.0, 1.0, -1.0, 0.0]).unwrap();
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
    assert_eq!(hits[0].iter().map(|h| h.id).collect::<Vec<_>>(), vec![30, 10]);
    assert_eq!(hits[1].iter().map(|h| h.id).collect::<Vec<_>>(), vec![10, 30]);
    assert_eq!(idx.get(10), Some(&[1.0, 0.0][..]));
    assert_eq!(idx.get(20), None);
}

#[test]
fn empty_and_zero_k() {
    let idx = FlatIndex::new(3);
    assert_eq!(idx.search(&[1.0, 0.0, 0.0], 5).unwrap(), vec![Vec::<Hit>::new()]);
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
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), want.iter().map(|h| h.id).collect::<Vec<_>>());
    }
}

#[test]
fn batches_split_by_queries_answer_as_single_queries() {
    // 40 queries: split by queries on 2 threads (>= 16 each), by gallery shards on 3
    // (< 16 each), neither on 1; every way must give what each query gets alone.
    let (n, dim) = (5_000, 64);
    let data = unit_vectors(n, dim, 11);
    let ids = ids(n);
    let qs = unit_vectors(40, dim, 12);
    for kind in [QuantKind::Int8, QuantKind::F16] {
        let mut idx = QuantFlatIndex::new(kind, dim).unwrap();
        idx.add(&ids, &data).unwrap();
        let alone: Vec<Vec<Hit>> = qs.chunks_exact(dim).map(|q| idx.search(q, 7).unwrap().remove(0)).collect();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let batch = pool.install(|| idx.search(&qs, 7)).unwrap();
            assert_eq!(batch, alone, "{kind:?} on {threads} threads");
        }
    }
}

/// Every index kind under test, freshly built.
fn all_kinds(dim: usize) -> Vec<(&'static str, Box<dyn GalleryIndex>)> {
    vec![
        ("flat", Box::new(FlatIndex::new(dim))),
        ("int8", Box::new(QuantFlatIndex::new(QuantKind::Int8, dim).unwrap())),
        ("f16", Box::new(QuantFlatIndex::new(QuantKind::F16, dim).unwrap())),
    ]
}

/// Stated recall@k of the quantized indexes against exact search on random unit vectors.
const QUANT_RECALL: f64 = 0.99;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn quantized_indexes_return_exact_top_k(n in 1usize..1500, dim in prop::sample::select(vec![3usize, 16, 61, 128]), nq in 1usize..12, k in 1usize..12, seed in any::<u64>()) {
        let data = unit_vectors(n, dim, seed);
        let qs = unit_vectors(nq, dim, seed ^ 0x5555);
        let ids = ids(n);
        for (name, mut idx) in all_kinds(dim) {
            idx.add(&ids, &data).unwrap();
            prop_assert_eq!(idx.len(), n);
            let got = idx.search(&qs, k).unwrap();
            let (mut found, mut total) = (0usize, 0usize);
            for (q, hits) in qs.chunks_exact(dim).zip(&got) {
                let want = brute_force(&ids, &data, dim, q, k);
                prop_assert_eq!(hits.len(), want.len());
                // Returned scores are exact inner products, best first.
                for h in hits {
                    let i = ids.iter().position(|&x| x == h.id).unwrap();
                    let exact = crate::vector::scalar::dot(q, &data[i * dim..(i + 1) * dim]);
                    prop_assert!((h.score - exact).abs() < 1e-5, "{name}: score {} vs {}", h.score, exact);
                }
                prop_assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
                let kth = want.last().unwrap().score;
                for w in &want {
                    total += 1;
                    // A tie with the k-th exact score counts as found.
                    if hits.iter().any(|h| h.id == w.id) || (w.score - kth).abs() < 1e-6 {
                        found += 1;
                    }
                }
            }
            let recall = found as f64 / total as f64;
            prop_assert!(recall >= QUANT_RECALL, "{name}: recall {recall}");
        }
    }
}

#[test]
fn quantized_add_replace_remove_and_compact() {
    let dim = 24;
    let data = unit_vectors(3000, dim, 11);
    let ids: Vec<u64> = (0..3000).collect();
    for kind in [QuantKind::Int8, QuantKind::F16] {
        let mut idx = QuantFlatIndex::new(kind, dim).unwrap();
        idx.add(&ids, &data).unwrap();
        // Replace id 5 with the vector of id 6, remove ids 0..2000 (forces compaction).
        idx.add(&[5], &data[6 * dim..7 * dim]).unwrap();
        assert_eq!(idx.len(), 3000);
        let removed: Vec<u64> = (0..2000).filter(|&i| i != 5).collect();
        assert_eq!(idx.remove(&removed).unwrap(), 1999);
        assert_eq!(idx.remove(&removed).unwrap(), 0);
        assert_eq!(idx.len(), 1001);
        let q = &data[6 * dim..7 * dim];
        let hits = idx.search(q, 3).unwrap();
        // id 6 is gone; id 5 now carries its vector and must be the exact match.
        assert_eq!(hits[0][0].id, 5, "{kind:?}");
        assert!((hits[0][0].score - 1.0).abs() < 1e-5);
        assert!(hits[0].iter().all(|h| h.id == 5 || h.id >= 2000));
    }
}

#[test]
fn ivf_with_all_lists_probed_is_exact_and_supports_remove() {
    let (n, dim) = (4000, 32);
    let data = unit_vectors(n, dim, 21);
    let ids: Vec<u64> = (0..n as u64).collect();
    for kind in [QuantKind::Int8, QuantKind::F16] {
        let mut idx = IvfIndex::new(kind, dim, 16).unwrap();
        idx.add(&ids, &data).unwrap();
        assert!(idx.is_trained());
        idx.set_nprobe(idx.nlist());
        let qs = unit_vectors(20, dim, 22);
        let got = idx.search(&qs, 5).unwrap();
        for (q, hits) in qs.chunks_exact(dim).zip(&got) {
            let want = brute_force(&ids, &data, dim, q, 5);
            let g: Vec<u64> = hits.iter().map(|h| h.id).collect();
            let w: Vec<u64> = want.iter().map(|h| h.id).collect();
            assert_eq!(g, w, "{kind:?}");
        }
        // Removing the top hit of the first query promotes the runner-up.
        let first = got[0][0].id;
        assert_eq!(idx.remove(&[first]).unwrap(), 1);
        let again = idx.search(&qs[..dim], 1).unwrap();
        assert_eq!(again[0][0].id, got[0][1].id);
        assert_eq!(idx.len(), n - 1);
    }
}

#[test]
fn ivf_partial_probe_finds_self_matches() {
    // A stored vector queried as itself lies in its own (nearest) list: recall 1.
    let (n, dim) = (3000, 16);
    let data = unit_vectors(n, dim, 31);
    let ids: Vec<u64> = (0..n as u64).collect();
    let mut idx = IvfIndex::new(QuantKind::Int8, dim, 32).unwrap();
    idx.add(&ids, &data).unwrap();
    idx.set_nprobe(2);
    let qs = &data[..100 * dim];
    let got = idx.search(qs, 1).unwrap();
    let found = got.iter().enumerate().filter(|(i, h)| h[0].id == *i as u64).count();
    assert!(found >= 99, "self-match recall {found}/100");
}

#[test]
fn ivf_scanned_fraction_counts_the_probed_lists() {
    let (n, dim) = (2000, 16);
    let data = unit_vectors(n, dim, 41);
    let ids: Vec<u64> = (0..n as u64).collect();
    let mut idx = IvfIndex::new(QuantKind::Int8, dim, 20).unwrap();
    idx.add(&ids, &data).unwrap();
    let qs = unit_vectors(50, dim, 42);
    idx.set_nprobe(idx.nlist());
    assert!((idx.scanned_fraction(&qs).unwrap() - 1.0).abs() < 1e-12, "all lists = whole gallery");
    idx.set_nprobe(1);
    let one = idx.scanned_fraction(&qs).unwrap();
    idx.set_nprobe(5);
    let five = idx.scanned_fraction(&qs).unwrap();
    assert!(one > 0.0 && one < five && five < 1.0, "1 list {one}, 5 lists {five}");
    // Removed vectors are not counted as scanned work.
    idx.set_nprobe(idx.nlist());
    idx.remove(&ids[..1000]).unwrap();
    assert!((idx.scanned_fraction(&qs).unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(IvfIndex::new(QuantKind::Int8, dim, 4).unwrap().scanned_fraction(&qs).unwrap(), 0.0);
}
