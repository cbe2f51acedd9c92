//! A per-worker pool of read buffers, so that a new connection does not allocate one.

use std::cell::RefCell;

/// Size of a pooled buffer: enough for any command line and most pipelined groups.
pub(super) const BUFFER_SIZE: usize = 4096;
/// Buffers kept per worker; beyond that, returned buffers are freed.
const MAX_POOLED: usize = 1024;

#[derive(Default)]
pub(super) struct BufferPool {
    free: RefCell<Vec<Vec<u8>>>,
}

impl BufferPool {
    pub(super) fn take(&self) -> Vec<u8> {
        self.free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BUFFER_SIZE))
    }

    /// Returns a buffer; buffers grown for a large message are freed instead of kept.
    pub(super) fn give(&self, mut buf: Vec<u8>) {
        let mut free = self.free.borrow_mut();
        if buf.capacity() <= 4 * BUFFER_SIZE && free.len() < MAX_POOLED {
            buf.clear();
            free.push(buf);
        }
    }
}
