//! Where the model phase runs: the HTTP server's bounded gate (a blocking-pool thread
//! per job, 503 when full) or, for the command line, inline.

use std::future::Future;

use crate::error::Result;

/// Runs CPU-bound model work (extraction, search) for a service call; the service keeps
/// its catalog I/O out of the job, so a job never holds a model slot while it waits on
/// the database.
pub trait ModelRunner: Sync {
    /// Runs `job` and returns its result.
    fn run<T, F>(&self, job: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static;
}

/// Runs the job on the calling task, as a command-line tool does with one request at a
/// time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Inline;

impl ModelRunner for Inline {
    async fn run<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        job()
    }
}
