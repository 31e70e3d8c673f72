//! WSQ pixel decoding against NBIS: the fixtures in tests/data/wsq were encoded by NBIS
//! (`wsq_encode_mem`) and decoded by NBIS (`wsq_decode_mem`); see make_fixtures.py there.
//! Our decode must give NBIS's pixels, and damaged files must give `BadInput`, never a panic.

use std::path::PathBuf;

use epatrol_engine::error::EngineError;
use epatrol_engine::finger::image::{self, Format};
use epatrol_engine::finger::wsq;
use proptest::prelude::*;

fn data(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/wsq").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// (fixture, width, height, ppi)
const FIXTURES: [(&str, u32, u32, f32); 3] = [
    ("ridges_301x257_r075", 301, 257, 500.0),
    ("ridges_301x257_r225", 301, 257, 500.0),
    ("ridges_160x203_r225_1000ppi", 160, 203, 1000.0),
];

/// Largest grey-level difference from NBIS seen on any fixture, and how many pixels differ.
fn diff_vs_nbis(name: &str) -> (u8, usize) {
    let ours = wsq::decode(&data(&format!("{name}.wsq"))).unwrap();
    let nbis = image::decode(&data(&format!("{name}.png"))).unwrap();
    assert_eq!((ours.width, ours.height), (nbis.width, nbis.height), "{name}");
    let max = ours.pixels.iter().zip(&nbis.pixels).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    let n = ours.pixels.iter().zip(&nbis.pixels).filter(|(a, b)| a != b).count();
    (max, n)
}

#[test]
fn pixels_equal_nbis_decoder() {
    for (name, w, h, ppi) in FIXTURES {
        let img = image::decode(&data(&format!("{name}.wsq"))).unwrap();
        assert_eq!((img.width, img.height, img.ppi, img.format), (w, h, Some(ppi), Format::Wsq), "{name}");
        let (max, n) = diff_vs_nbis(name);
        eprintln!("{name}: max |ours - NBIS| = {max}, {n} pixel(s) differ");
        assert_eq!((max, n), (0, 0), "{name}: decode differs from NBIS");
    }
}

/// Offset of the first segment with this marker in the header part (before the first block).
fn segment(bytes: &[u8], marker: u16) -> usize {
    let mut pos = 2;
    loop {
        let m = u16::from_be_bytes([bytes[pos], bytes[pos + 1]]);
        if m == marker {
            return pos;
        }
        assert_ne!(m, 0xFFA3, "marker {marker:04X} not found before the first block");
        pos += 2 + u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize;
    }
}

/// Byte range of the first block's entropy-coded data.
fn first_block_data(bytes: &[u8]) -> std::ops::Range<usize> {
    let sob = segment(bytes, 0xFFA3);
    let start = sob + 2 + u16::from_be_bytes([bytes[sob + 2], bytes[sob + 3]]) as usize;
    let mut end = start;
    while !(bytes[end] == 0xFF && bytes[end + 1] != 0) {
        end += 1;
    }
    start..end
}

fn bad_input(bytes: &[u8], what: &str) -> String {
    match wsq::decode(bytes) {
        Err(EngineError::BadInput(m)) => m,
        Err(e) => panic!("{what}: expected BadInput, got {e:?}"),
        Ok(img) => panic!("{what}: decoded to {img:?}"),
    }
}

#[test]
fn damaged_files_give_bad_input_with_a_reason() {
    let good = data("ridges_301x257_r075.wsq");

    // truncated anywhere: refused (the structure walk already sees the missing EOI)
    for cut in (0..good.len()).step_by(97).chain([good.len() - 1]) {
        bad_input(&good[..cut], &format!("cut at {cut}"));
    }
    // truncated inside the Huffman data but closed with EOI: the decoder runs out of coefficients
    let data1 = first_block_data(&good);
    let mut short = good[..data1.start + data1.len() / 2].to_vec();
    short.extend_from_slice(&[0xFF, 0xA1]);
    let m = bad_input(&short, "short data");
    assert!(m.contains("coefficients"), "{m}");

    // Huffman data replaced by all-ones bits (stuffed FF 00): no code matches
    let mut ones = good.clone();
    let pairs = data1.start..data1.start + data1.len() / 2 * 2;
    for (i, b) in ones[pairs].iter_mut().enumerate() {
        *b = if i % 2 == 0 { 0xFF } else { 0x00 };
    }
    let m = bad_input(&ones, "all-ones data");
    assert!(m.contains("Huffman"), "{m}");

    // Huffman table: three 1-bit codes cannot exist
    let dht = segment(&good, 0xFFA6);
    let mut t = good.clone();
    // same number of values, but three of them 1 bit long
    let mut surplus = 3 - t[dht + 5];
    t[dht + 5] = 3;
    for count in &mut t[dht + 6..dht + 21] {
        let k = (*count).min(surplus);
        *count -= k;
        surplus -= k;
    }
    assert_eq!(surplus, 0);
    let m = bad_input(&t, "over-subscribed table");
    assert!(m.contains("over-subscribed"), "{m}");
    // Huffman table id out of range
    let mut t = good.clone();
    t[dht + 4] = 9;
    let m = bad_input(&t, "table id 9");
    assert!(m.contains("id 9"), "{m}");
    // a block using a table that was never defined
    let sob = segment(&good, 0xFFA3);
    let mut t = good.clone();
    t[sob + 4] = 5;
    let m = bad_input(&t, "undefined table");
    assert!(m.contains("undefined Huffman table 5"), "{m}");

    // transform table with an empty filter
    let dtt = segment(&good, 0xFFA4);
    let mut t = good.clone();
    t[dtt + 5] = 0;
    let m = bad_input(&t, "0-tap filter");
    assert!(m.contains("taps"), "{m}");

    // absurd and tiny frame sizes
    let sof = segment(&good, 0xFFA2);
    for (w, h) in [(60000u16, 60000u16), (5000, 300), (301, 4097), (8, 8), (1, 257), (0, 257)] {
        let mut t = good.clone();
        t[sof + 6..sof + 8].copy_from_slice(&h.to_be_bytes());
        t[sof + 8..sof + 10].copy_from_slice(&w.to_be_bytes());
        bad_input(&t, &format!("{w}x{h}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random byte changes and truncations of a real WSQ file: pixels or `BadInput`, never
    /// a panic, never another error kind.
    #[test]
    fn mutated_wsq_never_panics(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        data_flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        cut in proptest::option::weighted(0.2, any::<usize>()),
        fixture in 0..3usize,
    ) {
        let mut w = data(&format!("{}.wsq", FIXTURES[fixture].0));
        // anywhere in the file, and inside the first block's Huffman-coded data
        let coded = first_block_data(&w);
        for (i, b) in data_flips {
            w[coded.start + i % coded.len()] = b;
        }
        for (i, b) in flips {
            let n = w.len();
            w[i % n] = b;
        }
        if let Some(c) = cut {
            let n = w.len();
            w.truncate(c % (n + 1));
        }
        match wsq::decode(&w) {
            Ok(img) => prop_assert_eq!(img.pixels.len(), (img.width * img.height) as usize),
            Err(EngineError::BadInput(_)) => {}
            Err(e) => prop_assert!(false, "unexpected error kind: {e:?}"),
        }
    }
}
