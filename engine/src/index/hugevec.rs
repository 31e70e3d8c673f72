//! A growable buffer for gallery codes that lives on transparent huge pages once it is
//! large.
//!
//! A single query scans every code once, so it runs at memory bandwidth; with 4 KiB pages
//! that scan also takes a TLB miss per page. Measured at 1M x 512 int8 (one query, one
//! thread, AVX2 host): ~5-9 % less latency with the codes on 2 MiB pages. Linux hands out
//! transparent huge pages to anonymous memory only where `madvise(MADV_HUGEPAGE)` asked
//! for them (the default `madvise` mode), so large buffers are their own anonymous
//! mappings with that advice. Small ones (most IVF lists) stay on the heap: a mapping
//! each would cost a VMA apiece and gain nothing below the huge-page size.

use std::fmt;
use std::ops::{Deref, DerefMut};

use bytemuck::Pod;
use memmap2::MmapMut;

/// Bytes from which a buffer moves to its own huge-page-advised mapping.
const MAP_FROM: usize = 4 << 20;

/// A `Vec`-like buffer of plain values (only what the code stores need: grow with a fill
/// value, and slice access).
pub(crate) struct HugeVec<T: Pod> {
    store: Store<T>,
}

enum Store<T> {
    Heap(Vec<T>),
    /// `len` values at the start of a mapping sized for the capacity.
    Mapped {
        map: MmapMut,
        len: usize,
    },
}

impl<T: Pod> HugeVec<T> {
    /// An empty buffer.
    pub fn new() -> Self {
        HugeVec { store: Store::Heap(Vec::new()) }
    }

    /// Appends `extra` copies of `fill`.
    pub fn grow(&mut self, extra: usize, fill: T) {
        let len = self.len() + extra;
        let bytes = len * size_of::<T>();
        match &mut self.store {
            Store::Heap(v) if bytes < MAP_FROM => v.resize(len, fill),
            Store::Mapped { map, len: l } if bytes <= map.len() => {
                bytemuck::cast_slice_mut::<u8, T>(&mut map[..bytes])[*l..].fill(fill);
                *l = len;
            }
            _ => {
                // doubling, like Vec, so appends stay amortised O(1)
                let cap = bytes.max(2 * self.capacity_bytes()).next_multiple_of(MAP_FROM);
                let mut map = huge_map(cap);
                let old: &[u8] = bytemuck::cast_slice(self.deref());
                map[..old.len()].copy_from_slice(old);
                bytemuck::cast_slice_mut::<u8, T>(&mut map[..bytes])[old.len() / size_of::<T>()..].fill(fill);
                self.store = Store::Mapped { map, len };
            }
        }
    }

    fn capacity_bytes(&self) -> usize {
        match &self.store {
            Store::Heap(v) => v.capacity() * size_of::<T>(),
            Store::Mapped { map, .. } => map.len(),
        }
    }
}

/// An anonymous mapping of `bytes` with the huge-page advice (best effort: where the
/// kernel has no transparent huge pages the mapping simply keeps 4 KiB pages).
fn huge_map(bytes: usize) -> MmapMut {
    // Like a failed Vec allocation: nothing sensible to return to the caller.
    let map = MmapMut::map_anon(bytes).unwrap_or_else(|e| panic!("mapping {bytes} bytes for gallery codes: {e}"));
    #[cfg(target_os = "linux")]
    {
        // advice only: refusal (no THP support) changes speed, not results
        let _ = map.advise(memmap2::Advice::HugePage);
    }
    map
}

impl<T: Pod> Default for HugeVec<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Pod> Deref for HugeVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match &self.store {
            Store::Heap(v) => v,
            // page-aligned mapping, so the cast cannot fail on alignment
            Store::Mapped { map, len } => &bytemuck::cast_slice(&map[..])[..*len],
        }
    }
}

impl<T: Pod> DerefMut for HugeVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match &mut self.store {
            Store::Heap(v) => v,
            Store::Mapped { map, len } => &mut bytemuck::cast_slice_mut(&mut map[..])[..*len],
        }
    }
}

impl<T: Pod> Clone for HugeVec<T> {
    fn clone(&self) -> Self {
        let mut c = HugeVec::new();
        c.grow(self.len(), T::zeroed());
        c.copy_from_slice(self);
        c
    }
}

impl<T: Pod> fmt::Debug for HugeVec<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mapped = matches!(self.store, Store::Mapped { .. });
        f.debug_struct("HugeVec").field("len", &self.len()).field("mapped", &mapped).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_across_the_mapping_threshold_keeping_contents() {
        let mut v: HugeVec<u16> = HugeVec::new();
        let mut model: Vec<u16> = Vec::new();
        let step = 300_001; // odd, so lengths do not line up with the threshold
        for i in 0..12u16 {
            v.grow(step, i);
            model.resize(model.len() + step, i);
            v[model.len() - 1] = i ^ 0x5555;
            *model.last_mut().unwrap() = i ^ 0x5555;
            assert_eq!(&v[..], &model[..]);
        }
        assert!(format!("{v:?}").contains("mapped: true"), "7 MB should be mapped: {v:?}");
        let c = v.clone();
        assert_eq!(&c[..], &model[..]);
        assert!(format!("{c:?}").contains("mapped: true"));
    }

    #[test]
    fn small_buffers_stay_on_the_heap() {
        let mut v: HugeVec<u8> = HugeVec::new();
        v.grow(1000, 7);
        assert_eq!(v.len(), 1000);
        assert!(v.iter().all(|&b| b == 7));
        assert!(format!("{v:?}").contains("mapped: false"));
        assert!(HugeVec::<u8>::new().is_empty());
    }
}
