//! 1:N fingerprint search: a locality-sensitive-hashing candidate stage over MCC cylinder
//! bits (after Cappelli, Ferrara, Maltoni, "Fingerprint Indexing Based on Minutia
//! Cylinder-Code", IEEE TPAMI 33(5), 2011), then full [`mcc::similarity`] of the
//! shortlist on rayon, then subject-level fusion over fingers.
//!
//! Candidate stage (defaults chosen on the real FVC probes against a 2 000-template
//! gallery at 10 % penetration: 16-bit keys kept the mate 90 % of the time, 10-bit 96.7 %,
//! 12-bit × 64 tables 98.3 %; memory ≈ 64 × 4 bytes per indexed cylinder): `L` hash functions, each the concatenation of `H` fixed cell bits of a
//! cylinder; a gallery template is voted for once per (query cylinder, table) whose hash
//! bucket holds one of its cylinders. Buckets whose key has fewer than
//! [`MIN_KEY_ONES`] ones are not indexed: nearly empty cylinder samples occur in every
//! print and only cost time. Votes are normalised by the gallery template's cylinder
//! count so that templates with many minutiae do not win by size.
//!
//! Subjects: a gallery entry is (subject, finger position, template); a subject may have
//! up to 10 fingers with several impressions each. A probe is one or more (position,
//! template); its score for a subject is the sum over probe fingers of the best score
//! among that subject's templates of the same position (any position when either side
//! says 0 = unknown).

use std::collections::HashMap;

use rayon::prelude::*;
use serde::Serialize;

use crate::compaction::Compactable;
use crate::finger::mcc::{self, CELLS, MccTemplate, WORDS};
use crate::subject::SubjectId;

/// Default number of hash tables.
pub const L: usize = 64;
/// Default bits per hash key (a table has 2^H buckets).
pub const H: usize = 12;
/// Keys with fewer ones are not indexed (uninformative, very frequent).
pub const MIN_KEY_ONES: u32 = 2;

/// One search hit at subject level.
#[derive(Debug, Clone, Serialize)]
pub struct Hit {
    /// Subject id as enrolled.
    pub subject: SubjectId,
    /// Fused score: sum over probe fingers of the best MCC score.
    pub score: f32,
    /// Per probe finger: the finger position of the best gallery template and its score.
    pub fingers: Vec<(u8, f32)>,
}

/// Timings and sizes of one search.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchStats {
    /// Gallery templates voted for by the candidate stage.
    pub voted: usize,
    /// Templates fully matched.
    pub matched: usize,
}

#[derive(Clone)]
struct Entry {
    subject: u32,
    finger: u8,
    /// Removed with its subject: never a candidate again (dropped at the next rebuild).
    removed: bool,
}

/// A gallery of finger templates with an LSH candidate index.
pub struct FingerIndex {
    templates: Vec<MccTemplate>,
    entries: Vec<Entry>,
    subjects: Vec<SubjectId>,
    subject_ids: HashMap<SubjectId, u32>,
    /// One hash function per table: the cell indices whose bits form the key.
    hashes: Vec<Vec<u16>>,
    /// Key bits per table.
    bits: usize,
    /// `tables * 2^bits` posting lists of template numbers.
    buckets: Vec<Vec<u32>>,
    /// Templates marked removed.
    removed: usize,
    /// Bumped by every change, so a compacted copy built meanwhile is known to be stale.
    generation: u64,
}

impl Default for FingerIndex {
    fn default() -> Self {
        Self::new()
    }
}

#[inline]
fn cell_bit(cyl: &[u64], cell: u16) -> u32 {
    ((cyl[cell as usize / 64] >> (cell % 64)) & 1) as u32
}

fn key(cyl: &[u64], hash: &[u16]) -> u32 {
    hash.iter().fold(0u32, |k, &c| (k << 1) | cell_bit(cyl, c))
}

impl FingerIndex {
    /// An empty index with the default [`L`] tables of [`H`]-bit keys.
    pub fn new() -> Self {
        Self::with_params(L, H)
    }

    /// An empty index with `tables` hash tables of `bits`-bit keys (deterministic).
    pub fn with_params(tables: usize, bits: usize) -> Self {
        assert!((1..=24).contains(&bits), "key bits must be 1..=24");
        // Each table samples H distinct cells (xorshift, fixed seed: enrolled indexes stay
        // valid across runs).
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let hashes = (0..tables)
            .map(|_| {
                let mut h = vec![0u16; bits];
                let mut n = 0;
                while n < bits {
                    let c = (next() % CELLS as u64) as u16;
                    // corner cells are always 0: a key bit there would be wasted
                    if mcc::cell_in_radius(c as usize) && !h[..n].contains(&c) {
                        h[n] = c;
                        n += 1;
                    }
                }
                h
            })
            .collect();
        const { assert!(WORDS * 64 == CELLS) };
        Self {
            templates: Vec::new(),
            entries: Vec::new(),
            subjects: Vec::new(),
            subject_ids: HashMap::new(),
            hashes,
            bits,
            buckets: vec![Vec::new(); tables << bits],
            removed: 0,
            generation: 0,
        }
    }

    /// Number of (live) templates.
    pub fn len(&self) -> usize {
        self.templates.len() - self.removed
    }

    /// True when nothing is enrolled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of subjects.
    pub fn subjects(&self) -> usize {
        self.subject_ids.len()
    }

    /// Removes every template of `subject`; returns how many. A later `add` under the
    /// same id starts a new subject.
    pub fn remove_subject(&mut self, subject: SubjectId) -> usize {
        let Some(sid) = self.subject_ids.remove(&subject) else { return 0 };
        let mut n = 0;
        for (e, t) in self.entries.iter_mut().zip(&mut self.templates) {
            if e.subject == sid && !e.removed {
                e.removed = true;
                // the biometric data leaves memory now, not at the next compaction
                *t = MccTemplate::default();
                n += 1;
            }
        }
        self.removed += n;
        self.generation += (n > 0) as u64;
        // past half dead, compact now: nobody is building a copy off the search path
        if self.removed * 2 > self.templates.len() {
            // in place: the live templates move into the rebuilt index, none is cloned
            let templates = std::mem::take(&mut self.templates);
            let live = templates.into_iter().zip(&self.entries).filter(|(_, e)| !e.removed).map(|(t, _)| t);
            *self = self.without_removed(live.collect());
        }
        n
    }

    /// Number of changes so far (see [`Compactable::install_compaction`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The same index without removed templates and their posting-list entries, the rest
    /// renumbered in order (the live templates cloned: `self` stays searchable).
    fn compacted(&self) -> FingerIndex {
        let live = self.templates.iter().zip(&self.entries).filter(|(_, e)| !e.removed).map(|(t, _)| t.clone());
        self.without_removed(live.collect())
    }

    /// [`Self::compacted`] given its live templates, in order.
    fn without_removed(&self, templates: Vec<MccTemplate>) -> FingerIndex {
        let mut renumber = vec![u32::MAX; self.entries.len()];
        let mut next = 0u32;
        for (old, e) in self.entries.iter().enumerate() {
            if !e.removed {
                renumber[old] = next;
                next += 1;
            }
        }
        FingerIndex {
            templates,
            entries: self.entries.iter().filter(|e| !e.removed).cloned().collect(),
            subjects: self.subjects.clone(),
            subject_ids: self.subject_ids.clone(),
            hashes: self.hashes.clone(),
            bits: self.bits,
            buckets: self
                .buckets
                .iter()
                .map(|b| b.iter().map(|&t| renumber[t as usize]).filter(|&t| t != u32::MAX).collect())
                .collect(),
            removed: 0,
            generation: self.generation,
        }
    }

    /// Subject id of template number `t` (as returned by [`FingerIndex::candidates`]).
    pub fn subject_of(&self, t: u32) -> SubjectId {
        self.subjects[self.entries[t as usize].subject as usize]
    }

    /// Enrols one template of `subject`'s finger `finger` (ISO position, 0 = unknown).
    pub fn add(&mut self, subject: SubjectId, finger: u8, template: MccTemplate) {
        let sid = *self.subject_ids.entry(subject).or_insert_with(|| {
            self.subjects.push(subject);
            (self.subjects.len() - 1) as u32
        });
        let id = self.templates.len() as u32;
        let cyls: Vec<_> = (0..template.len()).map(|k| template.cyl(k)).collect();
        for (l, h) in self.hashes.iter().enumerate() {
            let mut keys: Vec<u32> =
                cyls.iter().map(|c| key(c, h)).filter(|k| k.count_ones() >= MIN_KEY_ONES).collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                self.buckets[(l << self.bits) | k as usize].push(id);
            }
        }
        self.templates.push(template);
        self.entries.push(Entry { subject: sid, finger, removed: false });
        self.generation += 1;
    }

    /// Candidate stage: the `k` templates with the most normalised LSH votes.
    pub fn candidates(&self, probe: &MccTemplate, k: usize) -> (Vec<u32>, usize) {
        let mut votes = vec![0f32; self.templates.len()];
        let n = self.templates.len().max(1) as f32;
        let cyls: Vec<_> = (0..probe.len()).map(|k| probe.cyl(k)).collect();
        for (l, h) in self.hashes.iter().enumerate() {
            for c in &cyls {
                let kk = key(c, h);
                if kk.count_ones() < MIN_KEY_ONES {
                    continue;
                }
                let bucket = &self.buckets[(l << self.bits) | kk as usize];
                // inverse document frequency: a key shared by half the gallery says little
                let w = (n / bucket.len().max(1) as f32).ln().max(0.0);
                for &t in bucket {
                    votes[t as usize] += w;
                }
            }
        }
        let mut scored: Vec<(f32, u32)> = votes
            .iter()
            .enumerate()
            .filter(|(t, v)| **v > 0.0 && !self.entries[*t].removed)
            .map(|(t, &v)| (v / (self.templates[t].len().max(1) as f32).sqrt(), t as u32))
            .collect();
        let voted = scored.len();
        if scored.len() > k {
            scored.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
            scored.truncate(k);
        }
        (scored.into_iter().map(|(_, t)| t).collect(), voted)
    }

    /// Searches with one or more probe fingers `(position, template)`; returns the best
    /// `top` subjects. `shortlist` templates per probe finger are fully matched.
    pub fn search(&self, probe: &[(u8, MccTemplate)], shortlist: usize, top: usize) -> (Vec<Hit>, SearchStats) {
        let mut stats = SearchStats::default();
        // subject -> per probe finger best (score, gallery finger)
        let mut best: HashMap<u32, Vec<(u8, f32)>> = HashMap::new();
        for (pi, (pos, tpl)) in probe.iter().enumerate() {
            let (cands, voted) = self.candidates(tpl, shortlist);
            stats.voted += voted;
            let cands: Vec<u32> = cands
                .into_iter()
                .filter(|&t| {
                    let f = self.entries[t as usize].finger;
                    *pos == 0 || f == 0 || f == *pos
                })
                .collect();
            stats.matched += cands.len();
            let scores: Vec<(u32, f32)> =
                cands.par_iter().map(|&t| (t, mcc::similarity(tpl, &self.templates[t as usize]))).collect();
            for (t, s) in scores {
                let e = &self.entries[t as usize];
                let slot = best.entry(e.subject).or_insert_with(|| vec![(0, 0.0); probe.len()]);
                if s > slot[pi].1 {
                    slot[pi] = (e.finger, s);
                }
            }
        }
        let mut hits: Vec<Hit> = best
            .into_iter()
            .map(|(sid, fingers)| Hit {
                subject: self.subjects[sid as usize],
                score: fingers.iter().map(|f| f.1).sum(),
                fingers,
            })
            .collect();
        // ties: ids in the order of their decimal text, as when subjects were keyed by it
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.subject.cmp_as_text(b.subject)));
        hits.truncate(top);
        (hits, stats)
    }

    /// Exhaustive search (every template fully matched): the reference the candidate
    /// stage is tested against.
    pub fn search_exhaustive(&self, probe: &MccTemplate, top: usize) -> Vec<(SubjectId, f32)> {
        let mut best: HashMap<u32, f32> = HashMap::new();
        let scores: Vec<f32> = self.templates.par_iter().map(|t| mcc::similarity(probe, t)).collect();
        for (t, s) in scores.into_iter().enumerate().filter(|(t, _)| !self.entries[*t].removed) {
            let b = best.entry(self.entries[t].subject).or_insert(0.0);
            *b = b.max(s);
        }
        let mut v: Vec<(SubjectId, f32)> = best.into_iter().map(|(s, v)| (self.subjects[s as usize], v)).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp_as_text(b.0)));
        v.truncate(top);
        v
    }
}

/// The copy is built once more than a quarter of the templates are removed (past half,
/// `remove` compacts inline).
impl Compactable for FingerIndex {
    type Copy = FingerIndex;

    fn compaction(&self) -> Option<(u64, FingerIndex)> {
        (self.removed * 4 > self.templates.len()).then(|| (self.generation, self.compacted()))
    }

    fn install_compaction(&mut self, generation: u64, copy: FingerIndex) -> bool {
        let fresh = self.generation == generation;
        if fresh {
            *self = copy;
        }
        fresh
    }

    fn slots(&self) -> usize {
        self.templates.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finger::synth;

    fn gallery(n: u64) -> FingerIndex {
        let mut idx = FingerIndex::new();
        for f in 0..n {
            let finger = synth::finger(f);
            idx.add(SubjectId(f as i64), 2, MccTemplate::new(&synth::impression(&finger, 1000 + f)));
        }
        idx
    }

    #[test]
    fn shortlist_keeps_the_exhaustive_winner() {
        let idx = gallery(300);
        let (mut agree, mut mated_top) = (0, 0);
        for f in 0..40u64 {
            let probe = MccTemplate::new(&synth::impression(&synth::finger(f), 5000 + f));
            let exact = idx.search_exhaustive(&probe, 1);
            let (hits, stats) = idx.search(&[(2, probe)], 30, 1);
            assert!(stats.matched <= 30);
            agree += (hits[0].subject == exact[0].0) as usize;
            mated_top += (hits[0].subject == SubjectId(f as i64)) as usize;
        }
        assert!(agree >= 38, "candidate stage lost the exhaustive winner in {} of 40 searches", 40 - agree);
        assert!(mated_top >= 36, "mated rank-1 only {mated_top}/40");
    }

    #[test]
    fn removed_subjects_are_never_found_again() {
        let mut idx = gallery(50);
        let probe = || MccTemplate::new(&synth::impression(&synth::finger(7), 4242));
        assert_eq!(idx.search(&[(2, probe())], 20, 1).0[0].subject, SubjectId(7));
        assert_eq!(idx.remove_subject(SubjectId(7)), 1);
        assert_eq!(idx.remove_subject(SubjectId(7)), 0);
        assert_eq!((idx.len(), idx.subjects()), (49, 49));
        let (hits, _) = idx.search(&[(2, probe())], 50, 50);
        assert!(hits.iter().all(|h| h.subject != SubjectId(7)));
        assert!(idx.search_exhaustive(&probe(), 50).iter().all(|h| h.0 != SubjectId(7)));
        // others are still found
        let p3 = MccTemplate::new(&synth::impression(&synth::finger(3), 4243));
        assert_eq!(idx.search(&[(2, p3)], 20, 1).0[0].subject, SubjectId(3));
        // past a quarter removed a compacted copy is offered; a removal while it was being
        // built makes it stale; past half removed the index compacts inline
        for f in 10..22 {
            idx.remove_subject(SubjectId(f));
        }
        assert_eq!((idx.len(), idx.removed, idx.slots()), (37, 13, 50));
        let (generation, copy) = idx.compaction().expect("13 of 50 removed");
        assert_eq!((copy.len(), copy.slots()), (37, 37));
        assert!(copy.buckets.iter().flatten().all(|&t| (t as usize) < 37));
        idx.remove_subject(SubjectId(22));
        assert!(!idx.install_compaction(generation, copy));
        let (generation, copy) = idx.compaction().expect("14 of 50 removed");
        assert!(idx.install_compaction(generation, copy));
        assert_eq!((idx.len(), idx.removed, idx.slots()), (36, 0, 36));
        assert!(idx.compaction().is_none());
        for f in 23..42 {
            idx.remove_subject(SubjectId(f));
        }
        assert_eq!((idx.len(), idx.slots()), (17, 17), "the 19th removal of 36 compacted inline");
        for f in [3i64, 42, 49] {
            let p = MccTemplate::new(&synth::impression(&synth::finger(f as u64), 4243));
            assert_eq!(idx.search(&[(2, p)], 20, 1).0[0].subject, SubjectId(f));
        }
        // the same name enrolled again is a new subject
        idx.add(SubjectId(7), 2, MccTemplate::new(&synth::finger(7)));
        assert_eq!(idx.search(&[(2, probe())], 20, 1).0[0].subject, SubjectId(7));
    }

    #[test]
    fn fingers_are_fused_per_subject_and_positions_respected() {
        const A: SubjectId = SubjectId(1);
        const B: SubjectId = SubjectId(2);
        let mut idx = FingerIndex::new();
        // subject a: right thumb (1) and right index (2); subject b: right index only
        let (a1, a2, b2) = (synth::finger(1), synth::finger(2), synth::finger(3));
        idx.add(A, 1, MccTemplate::new(&a1));
        idx.add(A, 2, MccTemplate::new(&a2));
        idx.add(B, 2, MccTemplate::new(&b2));
        let probe =
            [(1, MccTemplate::new(&synth::impression(&a1, 7))), (2, MccTemplate::new(&synth::impression(&a2, 8)))];
        let (hits, _) = idx.search(&probe, 10, 5);
        assert_eq!(hits[0].subject, A);
        assert_eq!(hits[0].fingers.iter().map(|f| f.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!(hits[0].score > hits.get(1).map_or(0.0, |h| h.score));
        // a probe labelled as thumb is never compared with index fingers
        let (hits, stats) = idx.search(&[(1, MccTemplate::new(&synth::impression(&a2, 9)))], 10, 5);
        assert_eq!(stats.matched, 1);
        assert!(hits.iter().all(|h| h.subject == A));
    }
}
