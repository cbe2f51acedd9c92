//! FETCH and SEARCH over many messages, a batch at a time: a command over a whole mailbox
//! holds one batch of bodies, never the mailbox. Between batches the runtime reads the
//! next batch's bodies (and writes out what the last one produced). A command that needs
//! only the messages' headers asks for their header blocks (`Request::Headers`: the
//! store's summaries, or the whole message where there is none), more to a batch.

use std::collections::HashMap;
use std::sync::Arc;

use super::{Answer, Flow, InProgress, Request, Session};
use crate::imap::thread::Summary;
use crate::store::schema::BlobId;

/// How many messages, and how many bytes of them, a FETCH or SEARCH reads at a time.
const BATCH_MESSAGES: usize = 64;
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// How many messages a batch of header blocks holds (bounded in bytes as bodies are:
/// a message without a summary comes whole).
const HEADER_BATCH_MESSAGES: usize = 1024;

/// What of each message a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Needs {
    /// Only what the mailbox listing has (flags, sizes, dates).
    Nothing,
    /// The header block: every answer is the same from it as from the whole message.
    Headers,
    /// The whole message.
    Bodies,
}

/// Message bodies by blob, as the runtime reads them.
pub(super) type Bodies = HashMap<BlobId, Arc<Vec<u8>>>;

/// A FETCH or SEARCH going through its messages a batch at a time.
pub(super) struct Progress {
    /// The messages (indexes into the selected mailbox) the command works on.
    pub(super) indexes: Vec<usize>,
    /// How many of them are done.
    pub(super) done: usize,
    /// SEARCH: the numbers found so far.
    pub(super) hits: Vec<u32>,
    /// FETCH: the UIDs whose \Seen flag it sets, committed once after the last batch.
    pub(super) seen: Vec<u32>,
    /// SORT and THREAD: what they order the messages found by.
    pub(super) summaries: Vec<Summary>,
}

impl Progress {
    pub(super) fn new(indexes: Vec<usize>) -> Progress {
        Progress {
            indexes,
            done: 0,
            hits: Vec::new(),
            seen: Vec::new(),
            summaries: Vec::new(),
        }
    }

    pub(super) fn finished(&self) -> bool {
        self.done >= self.indexes.len()
    }
}

impl Session {
    /// Runs `work` over the messages of `p`: all at once when no message bytes are
    /// needed, else a batch at a time, each with its bodies (or header blocks, by blob).
    /// `Err(flow)`: the runtime must read the next batch's bodies first (the command runs
    /// again then, from where it stopped).
    pub(super) fn in_batches(
        &mut self,
        mut p: Progress,
        needs: Needs,
        mut work: impl FnMut(&mut Session, &mut Progress, usize, &Bodies),
    ) -> Result<Progress, Flow> {
        if needs == Needs::Nothing {
            let end = p.indexes.len();
            work(self, &mut p, end, &Bodies::new());
            return Ok(p);
        }
        while !p.finished() {
            let end = self.batch_end(&p, needs);
            let (q, bodies) = self.batch_bodies(p, end, needs)?;
            p = q;
            work(self, &mut p, end, &bodies);
        }
        Ok(p)
    }

    /// The batches of the FETCH or SEARCH being run, if it has started.
    pub(super) fn take_progress(&mut self) -> Option<Progress> {
        match self.in_progress.take() {
            Some(InProgress::Batches(p)) => Some(p),
            _ => None,
        }
    }

    /// The end (an index into `p.indexes`) of the batch that starts at `p.done`: at most
    /// [`BATCH_MESSAGES`] messages ([`HEADER_BATCH_MESSAGES`] for headers) and
    /// [`BATCH_BYTES`] bytes of whole messages, and at least one message.
    pub(super) fn batch_end(&self, p: &Progress, needs: Needs) -> usize {
        let msgs = &self.selected_ref().messages;
        let mut bytes = 0u64;
        let mut end = p.done;
        let rest = p.indexes.get(p.done..).unwrap_or_default();
        let most = match needs {
            Needs::Headers => HEADER_BATCH_MESSAGES,
            _ => BATCH_MESSAGES,
        };
        for &i in rest.iter().take(most) {
            let size = msgs.get(i).map_or(0, |(_, e)| e.size);
            if end > p.done && bytes.saturating_add(size) > BATCH_BYTES {
                break;
            }
            bytes = bytes.saturating_add(size);
            end += 1;
        }
        end
    }

    /// The bodies of the batch `p.done..end`, or a request for them (keeping `p` until
    /// they come: the command is run again then).
    pub(super) fn batch_bodies(
        &mut self,
        p: Progress,
        end: usize,
        needs: Needs,
    ) -> Result<(Progress, Bodies), Flow> {
        match self.answer.take() {
            Some(Answer::Blobs(map)) => Ok((p, map)),
            other => {
                self.answer = other;
                let msgs = &self.selected_ref().messages;
                let batch = p.indexes.get(p.done..end).unwrap_or_default();
                let mut blobs: Vec<BlobId> = batch
                    .iter()
                    .filter_map(|&i| msgs.get(i).map(|(_, e)| e.blob))
                    .collect();
                blobs.sort_unstable();
                blobs.dedup();
                self.in_progress = Some(InProgress::Batches(p));
                Err(Flow::Need(match needs {
                    Needs::Headers => Request::Headers(blobs),
                    _ => Request::Blobs(blobs),
                }))
            }
        }
    }
}
