//! `finger::eval` over a dataset whose manifest points at ISO/IEC 19794-2 template files
//! (third-party templates evaluated with our matcher). Synthetic fingers: no model needed.

use epatrol_engine::finger::eval::{self, EvalConfig};
use epatrol_engine::finger::iso19794::{View, encode_iso2005};
use epatrol_engine::finger::synth;

#[test]
fn fvc_protocol_over_iso_templates() {
    let dir = tempfile::tempdir().unwrap();
    let mut manifest = String::from("path,finger_id,impression\n");
    for f in 0..6u64 {
        let finger = synth::finger(40 + f);
        for i in 1..=4u64 {
            let view = View {
                finger_position: 1,
                view_number: i as u8,
                impression_type: 0,
                quality: 80,
                template: synth::impression(&finger, f * 10 + i),
            };
            let name = format!("{f}_{i}.iso");
            std::fs::write(dir.path().join(&name), encode_iso2005(&[view]).unwrap()).unwrap();
            manifest.push_str(&format!("{name},{f},{i}\n"));
        }
    }
    std::fs::write(dir.path().join("manifest.csv"), manifest).unwrap();
    let r = eval::run(dir.path(), &EvalConfig::default()).unwrap();
    assert_eq!((r.genuine_pairs, r.impostor_pairs), (6 * 6, 15));
    assert!(r.fmr_resolution_limited);
    assert_eq!(r.cached_templates, 24, "templates are read, never extracted");
    assert!(r.eer < 0.05, "EER {}", r.eer);
    assert!(r.genuine.as_ref().unwrap().mean > 3.0 * r.impostor.as_ref().unwrap().mean);
}

#[test]
fn a_bad_template_in_the_manifest_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.iso"), b"FMR\0 20\0\0\0\0\x05garbage").unwrap();
    std::fs::write(dir.path().join("manifest.csv"), "path,finger_id,impression\na.iso,1,1\n").unwrap();
    let e = eval::run(dir.path(), &EvalConfig::default()).unwrap_err().to_string();
    assert!(e.contains("minutiae template") && e.contains("a.iso"), "{e}");
}

#[test]
fn an_unknown_model_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.png");
    image_blank(&img);
    std::fs::write(dir.path().join("manifest.csv"), "path,finger_id,impression\na.png,1,1\n").unwrap();
    let cfg = EvalConfig { model: Some("leader-nope".into()), ..Default::default() };
    let e = eval::run(dir.path(), &cfg).unwrap_err().to_string();
    assert!(e.contains("leader-nope") && e.contains("leader-fp32"), "{e}");
}

/// A small grey PNG (never reaches the network: the model lookup fails first).
fn image_blank(path: &std::path::Path) {
    let img = image::GrayImage::from_pixel(64, 64, image::Luma([200u8]));
    img.save(path).unwrap();
}
