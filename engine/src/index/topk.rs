//! Bounded top-k collector: higher score first, ties broken by smaller id so results
//! are deterministic across kernels and thread counts.

use super::Hit;

/// Keeps the k best hits seen so far (a min-heap on the worst kept hit).
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    // Binary min-heap ordered by `worse_than`: heap[0] is the worst kept hit.
    heap: Vec<Hit>,
}

/// True when `a` ranks below `b`.
#[inline]
fn worse(a: &Hit, b: &Hit) -> bool {
    a.score < b.score || (a.score == b.score && a.id > b.id)
}

impl TopK {
    /// An empty collector for the best `k`.
    pub fn new(k: usize) -> Self {
        TopK { k, heap: Vec::with_capacity(k) }
    }

    /// Score a candidate must exceed to enter once full (`-inf` until then). Equal scores
    /// may still enter on a smaller id, so use `>=` against this as the fast pre-check.
    #[inline]
    pub fn threshold(&self) -> f32 {
        if self.heap.len() < self.k { f32::NEG_INFINITY } else { self.heap[0].score }
    }

    /// Offers one candidate.
    #[inline]
    pub fn push(&mut self, id: u64, score: f32) {
        let h = Hit { id, score };
        if self.heap.len() < self.k {
            self.heap.push(h);
            self.sift_up(self.heap.len() - 1);
        } else if self.k > 0 && worse(&self.heap[0], &h) {
            self.heap[0] = h;
            self.sift_down(0);
        }
    }

    /// Merges another collector into this one.
    pub fn merge(&mut self, other: TopK) {
        for h in other.heap {
            self.push(h.id, h.score);
        }
    }

    /// The kept hits, best first.
    pub fn into_sorted(mut self) -> Vec<Hit> {
        self.heap.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        self.heap
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let p = (i - 1) / 2;
            if worse(&self.heap[i], &self.heap[p]) {
                self.heap.swap(i, p);
                i = p;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < n && worse(&self.heap[l], &self.heap[m]) {
                m = l;
            }
            if r < n && worse(&self.heap[r], &self.heap[m]) {
                m = r;
            }
            if m == i {
                break;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn keeps_the_k_best(scores in prop::collection::vec(-5i32..5, 0..200), k in 0usize..20) {
            let mut t = TopK::new(k);
            for (i, s) in scores.iter().enumerate() {
                t.push(i as u64, *s as f32);
            }
            let mut want: Vec<Hit> = scores.iter().enumerate()
                .map(|(i, s)| Hit { id: i as u64, score: *s as f32 }).collect();
            want.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
            want.truncate(k);
            prop_assert_eq!(t.into_sorted(), want);
        }
    }
}
