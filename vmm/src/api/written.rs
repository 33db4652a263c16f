//! The answer of `written-blocks` (see `writes.rs`): the blocks written to a disk while its
//! writes were tracked.

use serde::Serialize;

/// What `written-blocks` answers.
#[derive(Debug, Clone, Serialize)]
pub struct WrittenBlocks {
    /// The disk.
    pub drive: String,
    /// The granularity: every range starts at a multiple of it.
    pub block_bytes: u64,
    /// The ranges written, `[offset, length]` in bytes, in order, merged and cut at the
    /// disk's end.
    pub ranges: Vec<(u64, u64)>,
    /// Their total length.
    pub bytes: u64,
}
