//! Reads that may touch the disk (message bodies from blob files, whole mailbox listings),
//! run on reader threads so that no io_uring worker ever waits on a page fault or a file
//! read inside RocksDB. A worker sends a closure and awaits its result.

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use super::Store;

type Job = Box<dyn FnOnce(&Store) + Send>;

/// Handle on the reader threads.
#[derive(Clone)]
pub struct Readers {
    jobs: Sender<Job>,
}

impl Readers {
    pub fn start(store: Store, threads: usize) -> std::io::Result<Readers> {
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            std::thread::Builder::new()
                .name(format!("reader-{i}"))
                .spawn(move || {
                    for job in rx {
                        job(&store);
                    }
                })?;
        }
        Ok(Readers { jobs: tx })
    }

    /// Runs `read` on a reader thread; None if the readers are gone.
    pub async fn run<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> Option<T> {
        self.submit(read).await.ok()
    }

    /// Queues `read` on a reader thread now (not when first awaited, as [`Readers::run`]
    /// does): a read ahead of need. The receiver fails if the readers are gone.
    pub fn submit<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Store) -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |store| {
            let _ = tx.send(read(store));
        });
        // A closed channel drops the job, and with it the sender: the receiver fails.
        let _ = self.jobs.send(job);
        rx
    }
}
