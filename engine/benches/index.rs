//! Criterion benches for the gallery indexes at a size that runs in seconds
//! (100k x 128 random unit vectors). The full-size comparison with FAISS is
//! `benches/run_index_bench.sh` (`epatrol bench index`).
//!
//! `cargo bench -p epatrol-engine --bench index`

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use epatrol_engine::index::{FlatIndex, GalleryIndex, IvfIndex, QuantFlatIndex, QuantKind};
use epatrol_engine::vector::random_unit_vectors as unit_vectors;

fn indexes(c: &mut Criterion) {
    let (n, d) = (100_000, 128);
    let data = unit_vectors(n, d, 1);
    let ids: Vec<u64> = (0..n as u64).collect();
    let queries = unit_vectors(64, d, 2);
    let mut all: Vec<(&str, Box<dyn GalleryIndex>)> = vec![
        ("flat", Box::new(FlatIndex::new(d))),
        ("int8", Box::new(QuantFlatIndex::new(QuantKind::Int8, d).unwrap())),
        ("f16", Box::new(QuantFlatIndex::new(QuantKind::F16, d).unwrap())),
    ];
    let mut ivf = IvfIndex::new(QuantKind::Int8, d, 256).unwrap();
    ivf.set_nprobe(32);
    all.push(("ivf-int8-256-32", Box::new(ivf)));
    for (_, idx) in all.iter_mut() {
        idx.add(&ids, &data).unwrap();
    }
    for &nq in &[1usize, 64] {
        let mut g = c.benchmark_group(format!("search_100kx128_q{nq}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(nq as u64));
        for (name, idx) in &all {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter(|| idx.search(&queries[..nq * d], 10).unwrap())
            });
        }
        g.finish();
    }
}

criterion_group!(benches, indexes);
criterion_main!(benches);
