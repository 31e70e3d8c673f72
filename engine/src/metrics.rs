//! Standard biometric accuracy metrics over genuine and impostor score sets.
//!
//! Conventions (same as `../shared/tools/face_reference.py`, so numbers compare):
//! higher score = more similar; a comparison "matches" when `score > threshold`.

use serde::Serialize;

/// Equal error rate: the point where FNMR and FMR cross, taken at the threshold that
/// minimises |FNMR − FMR| over all observed scores and reported as their mean.
pub fn eer(genuine: &[f32], impostor: &[f32]) -> Option<f64> {
    if genuine.is_empty() || impostor.is_empty() {
        return None;
    }
    // (score, is_genuine) sorted by score descending, stable on ties like mergesort.
    let mut all: Vec<(f32, bool)> =
        genuine.iter().map(|&s| (s, true)).chain(impostor.iter().map(|&s| (s, false))).collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (ng, ni) = (genuine.len() as f64, impostor.len() as f64);
    let (mut tp, mut fp) = (0f64, 0f64);
    let mut best = (f64::INFINITY, 0.0);
    for &(_, g) in &all {
        if g {
            tp += 1.0
        } else {
            fp += 1.0
        }
        let fnmr = 1.0 - tp / ng;
        let fmr = fp / ni;
        let gap = (fnmr - fmr).abs();
        if gap < best.0 {
            best = (gap, (fnmr + fmr) / 2.0);
        }
    }
    Some(best.1)
}

/// Threshold that lets at most `floor(target · n_impostor)` impostors score above it, and
/// the FNMR there (genuine scores at or below it). `None` when there are fewer than
/// `1/target` impostor comparisons: the rate cannot be measured.
pub fn fnmr_at_fmr(genuine: &[f32], impostor: &[f32], target: f64) -> Option<(f64, f32)> {
    if genuine.is_empty() || (impostor.len() as f64) < 1.0 / target {
        return None;
    }
    let thr = impostor_threshold(impostor, target);
    Some((fnmr_at(genuine, thr), thr))
}

/// FNMR at the threshold where no impostor matches (ZeroFMR, FVC protocol).
pub fn fnmr_at_zero_fmr(genuine: &[f32], impostor: &[f32]) -> Option<f64> {
    let max_imp = impostor.iter().copied().max_by(f32::total_cmp)?;
    if genuine.is_empty() {
        return None;
    }
    Some(fnmr_at(genuine, max_imp))
}

/// Score threshold for a target FMR from impostor scores (see [`fnmr_at_fmr`]).
pub fn impostor_threshold(impostor: &[f32], target: f64) -> f32 {
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a));
    let k = ((target * imp.len() as f64).floor() as usize).min(imp.len() - 1);
    imp[k]
}

fn fnmr_at(genuine: &[f32], thr: f32) -> f64 {
    genuine.iter().filter(|&&g| g <= thr).count() as f64 / genuine.len() as f64
}

/// Summary of a score distribution for reports.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreStats {
    /// Number of scores.
    pub n: usize,
    /// Mean score.
    pub mean: f64,
    /// Smallest score.
    pub min: f32,
    /// Largest score.
    pub max: f32,
}

impl ScoreStats {
    /// Stats of a non-empty slice (`None` when empty).
    pub fn of(s: &[f32]) -> Option<Self> {
        if s.is_empty() {
            return None;
        }
        Some(Self {
            n: s.len(),
            mean: s.iter().map(|&x| x as f64).sum::<f64>() / s.len() as f64,
            min: s.iter().copied().fold(f32::INFINITY, f32::min),
            max: s.iter().copied().fold(f32::NEG_INFINITY, f32::max),
        })
    }
}

/// Median and 90th percentile of timings in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Timing {
    /// Samples.
    pub n: usize,
    /// Median, ms.
    pub median_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
}

impl Timing {
    /// Summarises durations in milliseconds (`None` when empty).
    pub fn of_ms(ms: &[f64]) -> Option<Self> {
        if ms.is_empty() {
            return None;
        }
        let mut v = ms.to_vec();
        v.sort_by(f64::total_cmp);
        let pct = |p: f64| v[((p * (v.len() - 1) as f64).round() as usize).min(v.len() - 1)];
        Some(Self {
            n: v.len(),
            median_ms: pct(0.5),
            p90_ms: pct(0.9),
            mean_ms: v.iter().sum::<f64>() / v.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_scores_have_zero_eer() {
        let g = [0.9, 0.8, 0.7];
        let i = [0.1, 0.2, 0.3, 0.4];
        assert_eq!(eer(&g, &i), Some(0.0));
        assert_eq!(fnmr_at_zero_fmr(&g, &i), Some(0.0));
    }

    #[test]
    fn overlapping_scores_give_expected_rates() {
        // one genuine below one impostor: crossing at FNMR = FMR = 1/4 at best
        let g = [0.9, 0.8, 0.7, 0.2];
        let i = [0.1, 0.15, 0.3, 0.05];
        let e = eer(&g, &i).unwrap();
        assert!((e - 0.25).abs() < 1e-9, "{e}");
        // ZeroFMR threshold is 0.3 → genuine 0.2 fails
        assert_eq!(fnmr_at_zero_fmr(&g, &i), Some(0.25));
    }

    #[test]
    fn fnmr_at_fmr_needs_enough_impostors() {
        let g = [0.995, 0.5];
        let i: Vec<f32> = (0..99).map(|k| k as f32 / 100.0).collect();
        assert!(fnmr_at_fmr(&g, &i, 0.01).is_none());
        let i: Vec<f32> = (0..100).map(|k| k as f32 / 100.0).collect();
        let (f, thr) = fnmr_at_fmr(&g, &i, 0.01).unwrap();
        assert_eq!(thr, 0.98); // one impostor (0.99) may score above
        assert_eq!(f, 0.5);
    }
}
