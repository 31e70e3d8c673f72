//! Gallery search indexes (batch-first).
