//! Criterion micro-benches for the distance kernels: every available ISA, side by side.
//!
//! `cargo bench -p epatrol-engine --bench kernels`

#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, black_box, criterion_group, criterion_main};
use epatrol_engine::vector::{self, Isa, blocked};

fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        })
        .collect()
}

fn dot(c: &mut Criterion) {
    let mut g = c.benchmark_group("dot_f32");
    for &d in &[128usize, 512] {
        let (a, b) = (data(d, 1), data(d, 2));
        g.throughput(Throughput::Bytes((8 * d) as u64));
        for isa in Isa::available() {
            g.bench_with_input(BenchmarkId::new(isa.name(), d), &d, |bch, _| {
                bch.iter(|| vector::dot_with(isa, black_box(&a), black_box(&b)))
            });
        }
    }
    g.finish();
}

/// One L2-resident tile (64 blocks = 1024 rows) against 1 and 8 queries.
fn blocked_scans(c: &mut Criterion) {
    let d = 512;
    let rows = 1024;
    let codes: Vec<u8> = data(rows * d, 3).iter().map(|x| (x * 126.0 + 64.0) as u8).collect();
    let halves: Vec<u16> = data(rows * d, 4).iter().map(|&x| half::f16::from_f32(x).to_bits()).collect();
    let mut packed = Vec::new();
    blocked::pack_f32(&data(rows * d, 5), d, &mut packed);
    for &nq in &[1usize, 8] {
        let qmax = blocked::QUERY_MAX;
        let qi8: Vec<i8> = data(nq * d, 6).iter().map(|x| ((x * 250.0) as i8).clamp(-qmax, qmax)).collect();
        let qf: Vec<f32> = data(nq * d, 7);
        let mut out = vec![0f32; nq * rows];
        let mut g = c.benchmark_group(format!("scan_1024x512_q{nq}"));
        // Pairs scored per iteration (rows x queries), so "elements/s" = scores/s.
        g.throughput(Throughput::Elements((rows * nq) as u64));
        for isa in Isa::available() {
            g.bench_function(BenchmarkId::new("int8", isa.name()), |b| {
                b.iter(|| vector::int8_block_scores(isa, black_box(&codes), d, &qi8, &mut out))
            });
            g.bench_function(BenchmarkId::new("f16", isa.name()), |b| {
                b.iter(|| vector::f16_block_scores(isa, black_box(&halves), d, &qf, &mut out))
            });
            g.bench_function(BenchmarkId::new("f32", isa.name()), |b| {
                b.iter(|| vector::f32_block_scores(isa, black_box(&packed), d, &qf, &mut out))
            });
        }
        g.finish();
    }
}

criterion_group!(benches, dot, blocked_scans);
criterion_main!(benches);
