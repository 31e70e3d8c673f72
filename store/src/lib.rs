//! E-patrol storage.
