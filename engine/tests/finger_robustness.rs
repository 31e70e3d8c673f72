//! Stable-toolchain stand-in for the cargo-fuzz targets in engine/fuzz: random bytes and
//! random mutations of valid files through every fingerprint parser must give `Ok` or a
//! clear `Err`, never a panic.

use epatrol_engine::finger::iso19794::{self, View};
use epatrol_engine::finger::{image, synth, wsq};
use proptest::prelude::*;

fn valid_template() -> Vec<u8> {
    let view = View { finger_position: 3, view_number: 0, impression_type: 0, quality: 70, template: synth::finger(5) };
    iso19794::encode_iso2005(&[view]).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = iso19794::decode(&data);
        let _ = wsq::parse(&data);
        let _ = image::decode(&data);
    }

    #[test]
    fn mutated_templates_never_panic(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let mut t = valid_template();
        for (i, b) in flips {
            let n = t.len();
            t[i % n] = b;
        }
        let n = t.len();
        t.truncate(cut % (n + 1));
        let _ = iso19794::decode(&t);
        let mut w = b"\xFF\xA0".to_vec();
        w.extend_from_slice(&t);
        let _ = wsq::parse(&w);
    }
}
