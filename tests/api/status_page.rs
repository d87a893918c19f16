//! The status page at `/`.
