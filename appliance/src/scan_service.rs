//! The server's side of `gannet spam scan` ([`crate::spam_scan`]): the batches of
//! messages it sends over the control socket, the verdicts that go back (a JSON line
//! each), and the scan threads that score them, one per core, started at the first batch
//! and kept, so that their regex caches (the lazy DFA states a text visits) stay warm
//! from one run to the next, as a spam daemon's do.

use std::sync::{mpsc, Arc, Mutex, PoisonError};

use anyhow::{ensure, Context};
use base64::Engine as _;
use gannet_core::filter::{Ruleset, ScanInput, Verdict};
use gannet_core::store::bayes::StoreLearned;
use gannet_core::store::Store;
use serde::{Deserialize, Serialize};

/// Messages `gannet spam scan` sends the server to score, base64 (the control socket's
/// requests are JSON lines).
#[derive(Clone, Serialize, Deserialize, Default)]
pub(crate) struct ScanBatch {
    pub(crate) messages: Vec<String>,
}

/// The server logs each admin command: a batch is logged by its size, not its messages.
impl std::fmt::Debug for ScanBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ScanBatch {{ messages: {} }}", self.messages.len())
    }
}

/// The most messages, and base64 bytes, the server takes in one batch.
const MAX_BATCH_MESSAGES: usize = 4096;
const MAX_BATCH_BYTES: usize = 256 << 20;

/// The longest request line that can hold a batch within those limits: its base64, and
/// a quote pair and comma each, and the command around them.
pub(crate) const MAX_BATCH_REQUEST: usize = MAX_BATCH_BYTES + 4 * MAX_BATCH_MESSAGES + 4096;

/// One message's verdict, as printed, and as the server sends it back (a JSON line).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Scored {
    pub(crate) score: f64,
    pub(crate) hits: Vec<ScoredHit>,
    pub(crate) bayes: Option<ScoredBayes>,
    pub(crate) error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScoredHit {
    pub(crate) name: String,
    pub(crate) score: f64,
    pub(crate) describe: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct ScoredBayes {
    pub(crate) probability: f64,
    pub(crate) tokens: usize,
}

impl From<&Verdict> for Scored {
    fn from(v: &Verdict) -> Scored {
        Scored {
            score: v.score,
            hits: v
                .hits
                .iter()
                .map(|h| ScoredHit {
                    name: h.name.clone(),
                    score: h.score,
                    describe: h.describe.clone(),
                })
                .collect(),
            bayes: v.bayes.map(|b| ScoredBayes {
                probability: b.probability,
                tokens: b.tokens,
            }),
            error: v.error.clone(),
        }
    }
}

impl Scored {
    /// A message that could not be scanned (scored as no rule hit).
    fn failed(error: String) -> Scored {
        Scored {
            score: 0.0,
            hits: Vec::new(),
            bayes: None,
            error: Some(error),
        }
    }
}

/// The first line of the server's answer to a batch.
#[derive(Serialize, Deserialize)]
pub(crate) struct ScanHeader {
    /// Its scan threads.
    pub(crate) threads: usize,
    /// Its Bayes database has learned enough to give verdicts.
    pub(crate) bayes: bool,
}

/// One message for a scan thread, and where its verdict goes.
struct Job {
    index: usize,
    raw: Result<Vec<u8>, String>,
    rules: Arc<Ruleset>,
    /// The batch's verdicts, by index.
    verdicts: Arc<Mutex<Vec<Option<Scored>>>>,
    /// Never sent on: the batch waits until every job's sender is gone (the job done, or
    /// its thread unwound), one wake-up a batch instead of one a message (a scan thread
    /// woke the waiting batch at every verdict, which took the core from a scan).
    _done: mpsc::Sender<()>,
}

/// The server's scan threads for `gannet spam scan`, one per core, started at the first
/// batch and kept (their regex caches with them).
#[derive(Default)]
pub(crate) struct Scanners {
    /// Their queue and how many they are, once started (batches may arrive together).
    started: Mutex<Option<(mpsc::Sender<Job>, usize)>>,
}

impl Scanners {
    /// Scores a batch with the server's rules and Bayes database: the answer is a
    /// [`ScanHeader`] line, then one [`Scored`] line per message, in order.
    pub(crate) fn scan(
        &self,
        rules: Arc<Ruleset>,
        store: &Store,
        batch: &ScanBatch,
    ) -> anyhow::Result<Vec<u8>> {
        ensure!(
            batch.messages.len() <= MAX_BATCH_MESSAGES,
            "a scan batch holds at most {MAX_BATCH_MESSAGES} messages"
        );
        ensure!(
            batch.messages.iter().map(String::len).sum::<usize>() <= MAX_BATCH_BYTES,
            "a scan batch holds at most {} MiB",
            MAX_BATCH_BYTES >> 20
        );
        let (queue, threads) = self.started(store)?;
        let verdicts = Arc::new(Mutex::new(vec![None; batch.messages.len()]));
        let (done, all_done) = mpsc::channel::<()>();
        for (index, message) in batch.messages.iter().enumerate() {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(message)
                .map_err(|e| format!("not base64: {e}"));
            let job = Job {
                index,
                raw,
                rules: rules.clone(),
                verdicts: verdicts.clone(),
                _done: done.clone(),
            };
            queue
                .send(job)
                .map_err(|_| anyhow::anyhow!("the scan threads stopped"))?;
        }
        // Every job holds a sender: recv returns (an error) when the last one is gone.
        drop(done);
        let _ = all_done.recv();
        let scored = std::mem::take(&mut *verdicts.lock().unwrap_or_else(PoisonError::into_inner));
        let learned = StoreLearned { store, scope: 0 };
        let header = ScanHeader {
            threads,
            bayes: gannet_core::filter::bayes::Learned::totals(&learned).ready(),
        };
        let mut out = serde_json::to_vec(&header)?;
        out.push(b'\n');
        for s in scored {
            // A scan thread that died on a message (scan_message catches panics, so
            // only a bug outside it) leaves its slot empty.
            let s = s.unwrap_or_else(|| Scored::failed("the scan thread stopped".into()));
            serde_json::to_writer(&mut out, &s)?;
            out.push(b'\n');
        }
        Ok(out)
    }

    /// The queue of the scan threads and their number, started on first use.
    fn started(&self, store: &Store) -> anyhow::Result<(mpsc::Sender<Job>, usize)> {
        let mut started = self.started.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((queue, threads)) = started.as_ref() {
            return Ok((queue.clone(), *threads));
        }
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..threads {
            let (jobs, store) = (jobs.clone(), store.clone());
            std::thread::Builder::new()
                .name(format!("scan-{n}"))
                .spawn(move || scan_thread(&jobs, &store))
                .context("cannot start a scan thread")?;
        }
        *started = Some((queue.clone(), threads));
        Ok((queue, threads))
    }
}

/// One scan thread: scores the jobs it takes until the queue is gone.
fn scan_thread(jobs: &Mutex<mpsc::Receiver<Job>>, store: &Store) {
    let learned = StoreLearned { store, scope: 0 };
    let input = ScanInput {
        bayes: Some(&learned),
        ..Default::default()
    };
    loop {
        let job = match jobs.lock().unwrap_or_else(PoisonError::into_inner).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let scored = match &job.raw {
            Ok(raw) => Scored::from(&job.rules.scan_message(raw, &input)),
            Err(e) => Scored::failed(e.clone()),
        };
        let mut verdicts = job.verdicts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = verdicts.get_mut(job.index) {
            *slot = Some(scored);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_logged_by_its_size() {
        let batch = ScanBatch {
            messages: vec!["aGVsbG8=".into(); 3],
        };
        assert_eq!(format!("{batch:?}"), "ScanBatch { messages: 3 }");
    }

    #[test]
    fn a_verdict_travels_as_a_json_line_unchanged() {
        let s = Scored {
            score: 7.25,
            hits: vec![ScoredHit {
                name: "GANNET_LOTTERY".into(),
                score: 4.0,
                describe: "A lottery \"win\"".into(),
            }],
            bayes: Some(ScoredBayes {
                probability: 0.99,
                tokens: 15,
            }),
            error: None,
        };
        let line = serde_json::to_string(&s).expect("serializes");
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<Scored>(&line).expect("parses"), s);
    }
}
