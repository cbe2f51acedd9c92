//! Virus scanning of incoming mail by ClamAV's `clamd`, over its socket (`INSTREAM`).
//!
//! * [`instream`]: the protocol without I/O (framing the message, reading the verdict).
//! * [`clamd`]: the client, one connection per scan, on any tokio runtime.
//! * [`Antivirus`]: the service the inbound path calls: a thread of its own (`antivirus`,
//!   a current-thread tokio runtime) that runs the scans, at most [`MAX_SCANS`] at once.
//!
//! Why a thread of its own rather than the worker's runtime (where tokio's sockets would
//! work too): the worker only hands the message over and awaits the verdict, so streaming
//! up to `max_size` bytes into clamd's socket costs it nothing; one place bounds how many
//! scans reach clamd at once whatever the number of workers (clamd runs `MaxThreads`
//! scans, 10 by default, and queues the rest); the io_uring workers keep to io_uring
//! sockets; and it is the shape of the other services that wait on the outside
//! (`dns-checks`, `delivery`). The message moves to the thread and back, not copied.

pub mod clamd;
pub mod instream;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, Semaphore};

pub use self::clamd::{Clamd, ClamdAddress, ClamdError};
pub use self::instream::Verdict;
pub use crate::config::OnFailure;

/// Scans sent to clamd at once; more wait (within the timeout) for one to finish.
pub const MAX_SCANS: usize = 8;

/// The header added to a message accepted unscanned after a failure
/// (`antivirus.on_failure = "accept"`).
pub const FAILED_HEADER: &str = "X-Virus-Scan: failed\r\n";

/// What became of a message given to [`Antivirus::scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// No clamd configured.
    Off,
    /// Larger than `antivirus.max_size`: not scanned.
    TooLarge,
    /// clamd's verdict, or why there is none.
    Scanned(Verdict),
}

/// What the inbound path is to do with a scanned message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go on (clean, not scanned by configuration).
    Accept,
    /// A virus: the name clamd gave it.
    Infected(String),
    /// The scan failed and `on_failure` is `tempfail`: `451 4.7.1`, try again later.
    Tempfail,
    /// The scan failed and `on_failure` is `accept`: accept with [`FAILED_HEADER`].
    AcceptTagged,
}

impl Scan {
    /// What to do, given the site's `on_failure`.
    pub fn action(&self, on_failure: OnFailure) -> Action {
        match self {
            Scan::Off | Scan::TooLarge | Scan::Scanned(Verdict::Clean) => Action::Accept,
            Scan::Scanned(Verdict::Infected(name)) => Action::Infected(name.clone()),
            Scan::Scanned(Verdict::Error(_)) => match on_failure {
                OnFailure::Tempfail => Action::Tempfail,
                OnFailure::Accept => Action::AcceptTagged,
            },
        }
    }
}

struct Request {
    message: Vec<u8>,
    answer: oneshot::Sender<(Verdict, Vec<u8>)>,
}

/// Handle to the antivirus thread; cheap to clone. [`Antivirus::off`] when no clamd is
/// configured.
#[derive(Clone)]
pub struct Antivirus {
    on: Option<Arc<On>>,
}

struct On {
    address: ClamdAddress,
    max_size: u64,
    on_failure: OnFailure,
    requests: mpsc::UnboundedSender<Request>,
}

impl Antivirus {
    /// No scanning: every message is [`Scan::Off`].
    pub fn off() -> Antivirus {
        Antivirus { on: None }
    }

    /// Starts the antivirus thread for `config.clamd`, or [`Antivirus::off`] when none is
    /// configured. clamd need not be up yet: each scan connects anew.
    pub fn start(config: &crate::config::Antivirus) -> std::io::Result<Antivirus> {
        let Some(address) = config.clamd.clone() else {
            return Ok(Antivirus::off());
        };
        let clamd = Clamd::new(address.clone(), config.timeout.0);
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        crate::process::spawn_service("antivirus", move || async move {
            let clamd = Arc::new(clamd);
            let slots = Arc::new(Semaphore::new(MAX_SCANS));
            while let Some(Request { message, answer }) = rx.recv().await {
                let clamd = clamd.clone();
                let slots = slots.clone();
                tokio::spawn(async move {
                    let verdict = scan_in_turn(&clamd, &slots, &message).await;
                    let _ = answer.send((verdict, message));
                });
            }
        })?;
        Ok(Antivirus {
            on: Some(Arc::new(On {
                address,
                max_size: config.max_size.0,
                on_failure: config.on_failure,
                requests: tx,
            })),
        })
    }

    pub fn is_on(&self) -> bool {
        self.on.is_some()
    }

    /// `antivirus.on_failure` (`tempfail` when off).
    pub fn on_failure(&self) -> OnFailure {
        self.on
            .as_ref()
            .map_or(OnFailure::Tempfail, |on| on.on_failure)
    }

    /// Scans `message` on the antivirus thread and hands it back with the result, within
    /// `antivirus.timeout` (waiting for a free scan included). None only if the thread
    /// went away during the scan, the message with it (like `Readers::run`).
    pub async fn scan(&self, message: Vec<u8>) -> Option<(Scan, Vec<u8>)> {
        let Some(on) = &self.on else {
            return Some((Scan::Off, message));
        };
        if message.len() as u64 > on.max_size {
            return Some((Scan::TooLarge, message));
        }
        let (answer, verdict) = oneshot::channel();
        if let Err(mpsc::error::SendError(request)) = on.requests.send(Request { message, answer })
        {
            let why = format!("antivirus thread not running: {} not asked", on.address);
            return Some((Scan::Scanned(Verdict::Error(why)), request.message));
        }
        let (verdict, message) = verdict.await.ok()?;
        if let Verdict::Error(why) = &verdict {
            tracing::warn!(clamd = %on.address, error = %why, "virus scan failed");
        }
        Some((Scan::Scanned(verdict), message))
    }
}

/// One scan, after waiting for a free slot, all within the client's timeout.
async fn scan_in_turn(clamd: &Clamd, slots: &Semaphore, message: &[u8]) -> Verdict {
    let scan = async {
        let _slot = slots.acquire().await;
        clamd.exchange(message).await
    };
    match tokio::time::timeout(clamd.timeout(), scan).await {
        Ok(Ok(verdict)) => verdict,
        Ok(Err(e)) => Verdict::Error(e.to_string()),
        Err(_) => Verdict::Error(
            ClamdError::Timeout {
                address: clamd.address().clone(),
                timeout: clamd.timeout(),
            }
            .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions() {
        let error = Scan::Scanned(Verdict::Error("down".into()));
        assert_eq!(error.action(OnFailure::Tempfail), Action::Tempfail);
        assert_eq!(error.action(OnFailure::Accept), Action::AcceptTagged);
        let virus = Scan::Scanned(Verdict::Infected("Eicar".into()));
        for on_failure in [OnFailure::Tempfail, OnFailure::Accept] {
            assert_eq!(virus.action(on_failure), Action::Infected("Eicar".into()));
            assert_eq!(Scan::Off.action(on_failure), Action::Accept);
            assert_eq!(Scan::TooLarge.action(on_failure), Action::Accept);
            assert_eq!(
                Scan::Scanned(Verdict::Clean).action(on_failure),
                Action::Accept
            );
        }
    }

    #[tokio::test]
    async fn off_and_too_large_messages_are_not_sent() {
        let (scan, message) = Antivirus::off().scan(b"x".to_vec()).await.unwrap();
        assert_eq!((scan, message), (Scan::Off, b"x".to_vec()));
        // Nothing listens there: a message that were sent would be an error.
        let config = crate::config::Antivirus {
            clamd: Some(ClamdAddress::Unix("/nonexistent/clamd.sock".into())),
            max_size: crate::config::Size(10),
            ..Default::default()
        };
        let antivirus = Antivirus::start(&config).unwrap();
        assert!(antivirus.is_on());
        let (scan, message) = antivirus.scan(vec![b'a'; 11]).await.unwrap();
        assert_eq!((scan, message.len()), (Scan::TooLarge, 11));
        let (scan, message) = antivirus.scan(vec![b'a'; 10]).await.unwrap();
        assert_eq!(message.len(), 10);
        match scan {
            Scan::Scanned(Verdict::Error(why)) => {
                assert!(why.contains("cannot connect"), "{why}")
            }
            other => panic!("{other:?}"),
        }
    }
}
