//! What a background compactor needs from an in-memory gallery: a copy without the
//! removed entries, built from `&self` (so under a read lock, while searches go on), and
//! installed under the write lock only if the gallery has not changed since.

/// A gallery that can build a compacted copy of itself from `&self`.
pub trait Compactable: Send + Sync + 'static {
    /// The compacted copy.
    type Copy: Send;
    /// The copy and the generation it was built at, when one is due.
    fn compaction(&self) -> Option<(u64, Self::Copy)>;
    /// Installs a copy built at `generation` unless the gallery changed since (then the
    /// copy is stale and dropped). Returns whether it was installed.
    fn install_compaction(&mut self, generation: u64, copy: Self::Copy) -> bool;
    /// Rows a search visits: live entries plus removed ones not yet compacted away.
    fn slots(&self) -> usize;
}
