use super::tables::read_dtt;
use super::*;

fn seg(marker: u16, body: &[u8]) -> Vec<u8> {
    let mut v = marker.to_be_bytes().to_vec();
    v.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// A structurally valid WSQ skeleton (tables are opaque to the parser).
fn skeleton() -> Vec<u8> {
    let mut f = SOI.to_be_bytes().to_vec();
    f.extend(seg(COM, b"NIST_COM 3\nPIX_WIDTH 300\nPIX_HEIGHT 400\nPPI 500\n"));
    f.extend(seg(DTT, &[0; 8]));
    f.extend(seg(DQT, &[0; 8]));
    f.extend(seg(DHT, &[0; 8]));
    let mut sof = vec![0, 255];
    sof.extend_from_slice(&400u16.to_be_bytes());
    sof.extend_from_slice(&300u16.to_be_bytes());
    sof.extend_from_slice(&[0; 9]);
    f.extend(seg(SOF, &sof));
    f.extend(seg(SOB, &[0]));
    f.extend_from_slice(&[0x12, 0xFF, 0x00, 0x34]); // entropy data with a stuffed FF
    f.extend_from_slice(&EOI.to_be_bytes());
    f
}

#[test]
fn headers_are_read_and_empty_tables_are_refused() {
    let info = parse(&skeleton()).unwrap();
    assert_eq!((info.width, info.height, info.ppi, info.blocks), (300, 400, Some(500.0), 1));
    // the skeleton's tables are zeros: a transform table with 0-tap filters
    let e = decode(&skeleton()).unwrap_err();
    assert!(matches!(e, EngineError::BadInput(_)), "{e}");
    assert!(e.to_string().contains("0 taps"), "{e}");
}

#[test]
fn subbands_tile_the_image() {
    for (w, h) in [(301, 257), (160, 203), (500, 500), (97, 113), (4096, 4095)] {
        let q = build_q_tree(&build_w_tree(w, h));
        let mut cover = vec![0u8; (w * h) as usize];
        for n in &q {
            assert!(n.x >= 0 && n.y >= 0 && n.x + n.lenx <= w && n.y + n.leny <= h, "{w}x{h}: {n:?}");
            for y in n.y..n.y + n.leny {
                for x in n.x..n.x + n.lenx {
                    cover[(y * w + x) as usize] += 1;
                }
            }
        }
        assert!(cover.iter().all(|&c| c == 1), "{w}x{h}: the 64 subbands overlap or leave gaps");
    }
}

#[test]
fn standard_filters_come_back_from_the_table() {
    let f = include_bytes!("../../../tests/data/wsq/ridges_301x257_r075.wsq");
    let mut r = Reader { b: f, pos: 2, what: "file" };
    let t = loop {
        match r.u16().unwrap() {
            DTT => break read_dtt(&mut r.segment("transform table").unwrap()).unwrap(),
            _ => {
                r.segment("other").unwrap();
            }
        }
    };
    // synthesis filters: the 7-tap low-pass and 9-tap high-pass are NBIS's analysis
    // high-pass and low-pass (globals.c) with alternating signs
    let (a_hi, a_lo) = (
        [0.064_538_88f32, -0.040_689_42, -0.418_092_27, 0.788_485_6],
        [0.037_828_46f32, -0.023_849_47, -0.110_624_4, 0.377_402_86, 0.852_698_7],
    );
    assert_eq!((t.lo.len(), t.hi.len()), (7, 9));
    for (i, a) in a_hi.iter().enumerate() {
        assert!((t.lo[i].abs() - a.abs()).abs() < 1e-6 && t.lo[i] == t.lo[6 - i], "{t:?}");
    }
    for (i, a) in a_lo.iter().enumerate() {
        assert!((t.hi[i].abs() - a.abs()).abs() < 1e-6 && t.hi[i] == t.hi[8 - i], "{t:?}");
    }
    assert!((t.lo.iter().sum::<f32>() - std::f32::consts::SQRT_2).abs() < 1e-5, "{t:?}");
}

#[test]
fn corrupted_files_are_refused_with_a_reason() {
    let good = skeleton();
    for cut in [1, 3, 10, good.len() / 2, good.len() - 2] {
        let e = parse(&good[..cut]).unwrap_err().to_string();
        assert!(e.contains("corrupted WSQ"), "cut {cut}: {e}");
    }
    let mut bad_marker = good.clone();
    bad_marker[2..4].copy_from_slice(&0xFFB9u16.to_be_bytes());
    assert!(parse(&bad_marker).unwrap_err().to_string().contains("unknown marker"));
    let mut huge = good.clone();
    huge[4..6].copy_from_slice(&0xFFF0u16.to_be_bytes());
    assert!(parse(&huge).unwrap_err().to_string().contains("past the end"));
}
