//! Reading a maildrop ahead of its client. POP3 clients download a maildrop in order, one
//! RETR at a time, waiting for each answer: the reads of the next messages can run (on a
//! reader thread) while the client takes in the current one, so an answer waits for the
//! network alone. This plans those reads: batches of messages in maildrop order, small at
//! first (the client may want one message only), doubling up to [`MAX_BATCH_BYTES`], the
//! next one asked for while at least half a batch is still ahead. The batches themselves
//! (`B`: a pending read, then its messages) are the caller's.

use std::collections::VecDeque;
use std::ops::Range;

/// The bytes of the first batch.
const FIRST_BATCH_BYTES: u64 = 8 * 1024;
/// The bytes of a batch at most (a batch holds at least one message, however large).
const MAX_BATCH_BYTES: u64 = 256 * 1024;

/// Batches read ahead of the client, by index in the maildrop.
pub struct ReadAhead<B> {
    /// In maildrop order, the messages (indexes) each holds.
    batches: VecDeque<(Range<usize>, B)>,
    /// The index after the last message asked for.
    next: usize,
    /// The bytes the next batch may hold.
    budget: u64,
}

impl<B> Default for ReadAhead<B> {
    fn default() -> Self {
        ReadAhead {
            batches: VecDeque::new(),
            next: 0,
            budget: FIRST_BATCH_BYTES,
        }
    }
}

impl<B> ReadAhead<B> {
    /// The batch holding message `index` and its place in it, if it was read ahead.
    /// Batches before it are dropped; a message not read ahead (the client went back,
    /// or skipped past what was read) drops them all, and read-ahead starts afresh.
    pub fn find(&mut self, index: usize) -> Option<(&mut B, usize)> {
        while let Some((range, _)) = self.batches.front() {
            if range.end > index {
                break;
            }
            self.batches.pop_front();
        }
        match self.batches.front() {
            Some((range, _)) if range.start <= index => {}
            _ => {
                self.batches.clear();
                self.next = index + 1;
                self.budget = FIRST_BATCH_BYTES;
                return None;
            }
        }
        let (range, batch) = self.batches.front_mut()?;
        Some((batch, index - range.start))
    }

    /// What to read next, now that message `index` is being answered: the range of
    /// messages of a new batch (to be [`pushed`](Self::push)), or None while enough is
    /// ahead. `count` messages are in the maildrop; `size` tells each one's size.
    pub fn plan(
        &mut self,
        index: usize,
        count: usize,
        size: impl Fn(usize) -> u64,
    ) -> Option<Range<usize>> {
        self.next = self.next.max(index + 1);
        let ahead: u64 = (index + 1..self.next).map(&size).sum();
        if self.next >= count || ahead >= MAX_BATCH_BYTES / 2 {
            return None;
        }
        let start = self.next;
        let mut bytes = 0;
        while self.next < count && (self.next == start || bytes < self.budget) {
            bytes += size(self.next);
            self.next += 1;
        }
        self.budget = (self.budget * 2).min(MAX_BATCH_BYTES);
        Some(start..self.next)
    }

    /// Adds the batch read for `range` (as [`plan`](Self::plan) gave it).
    pub fn push(&mut self, range: Range<usize>, batch: B) {
        self.batches.push_back((range, batch));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Downloads `sizes` in order as a client would, returning the batches asked for.
    fn download(sizes: &[u64]) -> Vec<Range<usize>> {
        let mut ahead = ReadAhead::default();
        let mut asked = Vec::new();
        for index in 0..sizes.len() {
            if index > 0 {
                let (batch, at) = ahead.find(index).expect("read ahead");
                let range: &Range<usize> = batch;
                assert_eq!(range.start + at, index);
            }
            if let Some(range) = ahead.plan(index, sizes.len(), |i| sizes[i]) {
                asked.push(range.clone());
                ahead.push(range.clone(), range);
            }
        }
        asked
    }

    #[test]
    fn batches_grow_from_small_to_the_limit_and_cover_every_message_once() {
        let sizes = vec![4096; 1000];
        let asked = download(&sizes);
        assert_eq!(asked[0], 1..3, "8 KiB first");
        assert_eq!(asked[1], 3..7, "then 16 KiB");
        let lengths: Vec<usize> = asked.iter().map(|r| r.len()).collect();
        assert_eq!(
            lengths.iter().max(),
            Some(&64),
            "256 KiB at most: {lengths:?}"
        );
        let mut covered = 1;
        for range in &asked {
            assert_eq!(range.start, covered, "in order, no gaps or repeats");
            covered = range.end;
        }
        assert_eq!(covered, 1000);
    }

    #[test]
    fn at_most_a_batch_and_a_half_is_ahead() {
        let sizes = vec![1000; 5000];
        let mut ahead = ReadAhead::default();
        for index in 0..sizes.len() {
            let _ = ahead.find(index);
            if let Some(range) = ahead.plan(index, sizes.len(), |i| sizes[i]) {
                ahead.push(range.clone(), ());
            }
            let bytes = (index + 1..ahead.next).count() as u64 * 1000;
            assert!(
                bytes <= MAX_BATCH_BYTES * 3 / 2 + 1000,
                "{bytes} ahead at {index}"
            );
        }
    }

    #[test]
    fn a_large_message_is_a_batch_of_its_own() {
        let sizes = [100, 10 << 20, 10 << 20, 100];
        let asked = download(&sizes);
        assert_eq!(asked, vec![1..2, 2..3, 3..4]);
    }

    #[test]
    fn going_back_or_skipping_starts_afresh() {
        let sizes = vec![2048; 100];
        let mut ahead: ReadAhead<()> = ReadAhead::default();
        assert!(ahead.find(0).is_none());
        let first = ahead.plan(0, 100, |i| sizes[i]).expect("a batch");
        ahead.push(first, ());
        let second = ahead.plan(1, 100, |i| sizes[i]).expect("a second");
        ahead.push(second.clone(), ());
        assert!(ahead.find(1).is_some());
        assert!(ahead.find(0).is_none(), "back: not read ahead");
        assert!(ahead.batches.is_empty());
        assert_eq!(
            ahead.plan(0, 100, |i| sizes[i]),
            Some(1..5),
            "afresh, small"
        );
        assert!(ahead.find(50).is_none(), "skipped past");
        assert_eq!(ahead.plan(50, 100, |i| sizes[i]), Some(51..55));
    }

    #[test]
    fn nothing_past_the_end() {
        let mut ahead: ReadAhead<()> = ReadAhead::default();
        assert_eq!(ahead.plan(0, 1, |_| 10), None);
        assert_eq!(ahead.plan(4, 5, |_| 10), None);
    }
}
