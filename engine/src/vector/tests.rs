use super::*;
use proptest::prelude::*;

fn close(a: f32, b: f32, scale: f32) -> bool {
    // f32 sums in different orders differ by a few ulps of the magnitude summed.
    (a - b).abs() <= 1e-5 * scale.max(1.0)
}

proptest! {
    #[test]
    fn every_kernel_matches_scalar(
        (a, b) in (0usize..300).prop_flat_map(|n| (
            prop::collection::vec(-10.0f32..10.0, n),
            prop::collection::vec(-10.0f32..10.0, n),
        ))
    ) {
        let want = scalar::dot(&a, &b);
        let scale: f32 = a.iter().zip(&b).map(|(x, y)| (x * y).abs()).sum();
        for isa in Isa::available() {
            let got = dot_with(isa, &a, &b);
            prop_assert!(close(got, want, scale), "{}: {} vs {}", isa.name(), got, want);
        }
    }
}

#[test]
fn scalar_is_correct_on_known_values() {
    let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0];
    let b = [1.0; 9];
    assert_eq!(scalar::dot(&a, &b), 45.0);
    assert_eq!(dot(&a, &b), 45.0);
    assert_eq!(dot(&[], &[]), 0.0);
}

#[test]
#[should_panic(expected = "length mismatch")]
fn mismatched_lengths_panic() {
    dot(&[1.0, 2.0], &[1.0]);
}

#[test]
fn normalize_gives_unit_norm() {
    let mut v = vec![3.0, 4.0];
    normalize(&mut v);
    assert!((norm_sq(&v) - 1.0).abs() < 1e-6);
    let mut z = vec![0.0; 4];
    normalize(&mut z);
    assert_eq!(z, vec![0.0; 4]);
}

#[test]
fn scalar_is_always_available() {
    assert_eq!(Isa::available()[0], Isa::scalar());
    assert!(Isa::available().contains(&Isa::best()));
}
