//! The face pipeline on real photos through the real models: the probe path's coarse
//! detection finds the same face as the reference's full-scale detection, and the
//! embeddings of the two alignments agree.

use std::path::PathBuf;

use epatrol_engine::face::{FacePipeline, align, image};

fn photo(rel: &str) -> image::Bgr {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets/faces").join(rel);
    image::decode(&std::fs::read(&p).expect("../shared datasets")).unwrap()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn coarse_probe_detection_agrees_with_full_scale() {
    let pipe = FacePipeline::open(None, 1).expect("face models: run `python3 models/fetch.py`");
    for rel in ["face_recognition_examples/obama.jpg", "deepface_tests/img1.jpg", "deepface_tests/img47.jpg"] {
        let img = photo(rel);
        let full = pipe.detector().detect(&img).unwrap();
        let coarse = pipe.detector().detect_probe(&img).unwrap();
        let (f, c) = (full[0], coarse[0]);
        let eye = f.eye_distance();
        for (a, b) in f.landmarks.iter().zip(&c.landmarks) {
            let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
            assert!(d < 0.15 * eye, "{rel}: landmark moved {d:.1} px (eye distance {eye:.1})");
        }
        let ef = pipe.embedder().embed(&align::align(&img, &f.landmarks)).unwrap();
        let ec = pipe.embedder().embed(&align::align(&img, &c.landmarks)).unwrap();
        assert!(dot(&ef, &ec) > 0.9, "{rel}: cosine {}", dot(&ef, &ec));
    }
}

#[test]
fn same_person_outscores_different_people() {
    let pipe = FacePipeline::open(None, 1).unwrap();
    let emb = |rel: &str| pipe.reference_template(&photo(rel), false).unwrap().embedding;
    let (a1, a2, b) = (emb("orl/s1/1.pgm"), emb("orl/s1/2.pgm"), emb("orl/s2/1.pgm"));
    assert!((dot(&a1, &a1) - 1.0).abs() < 1e-4, "unit length");
    assert!(dot(&a1, &a2) > dot(&a1, &b) + 0.2, "genuine {} impostor {}", dot(&a1, &a2), dot(&a1, &b));
}
