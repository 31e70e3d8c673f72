//! Background compaction of an in-memory gallery: a copy without removed entries is built
//! under the read lock (identifications go on), then swapped in under the write lock
//! unless the gallery changed meanwhile, in which case it is built again. Compacting
//! inline would stall every search for the whole rebuild.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use epatrol_engine::compaction::Compactable;

/// One gallery behind its lock, with the flag that keeps a single compaction running.
pub struct Compactor<G> {
    gallery: Arc<RwLock<G>>,
    busy: Arc<AtomicBool>,
    name: &'static str,
}

/// Clears the busy flag when the compaction thread ends, panics included, so a failed
/// build does not turn background compaction off for good.
struct Idle(Arc<AtomicBool>);

impl Drop for Idle {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl<G: Compactable> Compactor<G> {
    /// Compaction for `gallery`; `name` labels the thread and the log line.
    pub fn new(gallery: Arc<RwLock<G>>, name: &'static str) -> Self {
        Self { gallery, busy: Arc::new(AtomicBool::new(false)), name }
    }

    /// Starts a compaction thread unless one is running; it does nothing when no copy
    /// is due.
    pub fn start(&self) {
        if self.busy.swap(true, Ordering::AcqRel) {
            return;
        }
        let idle = Idle(Arc::clone(&self.busy));
        let (gallery, name) = (Arc::clone(&self.gallery), self.name);
        let job = move || {
            let _idle = idle;
            // a copy made stale by changes during the build is rebuilt until one lands or
            // none is needed (deletions come in bursts, then stop)
            loop {
                // (the read guard must end here: a `while let` scrutinee's would live
                // through the body and deadlock the write below)
                let built = gallery.read().unwrap_or_else(|p| p.into_inner()).compaction();
                let Some((generation, copy)) = built else { break };
                let mut g = gallery.write().unwrap_or_else(|p| p.into_inner());
                if g.install_compaction(generation, copy) {
                    tracing::info!(gallery = name, slots = g.slots(), "gallery compacted");
                    break;
                }
            }
        };
        // on a spawn failure the closure, and with it the guard, is dropped: not busy
        if let Err(e) = std::thread::Builder::new().name(format!("{name}-compaction")).spawn(job) {
            tracing::warn!(gallery = name, error = %e, "could not start the compaction thread");
        }
    }
}
