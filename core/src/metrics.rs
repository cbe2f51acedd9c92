//! Latency histograms the admin console's `/metrics` exposes: process-wide, lock-free
//! (one atomic add per bucket and observation), kept from the start of the process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the buckets, in seconds (Prometheus' `le`), from 0.5 ms to 10 s.
pub const BOUNDS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 10.0,
];

/// A histogram of durations.
pub struct Histogram {
    pub name: &'static str,
    pub help: &'static str,
    /// Observations at or below each bound (not cumulative; the exposition sums them).
    buckets: [AtomicU64; BOUNDS.len()],
    /// Observations above the last bound.
    over: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub const fn new(name: &'static str, help: &'static str) -> Histogram {
        Histogram {
            name,
            help,
            buckets: [const { AtomicU64::new(0) }; BOUNDS.len()],
            over: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        match BOUNDS.iter().position(|b| secs <= *b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.over.fetch_add(1, Ordering::Relaxed),
        };
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The Prometheus text exposition: cumulative buckets, `+Inf`, sum and count.
    pub fn exposition(&self) -> String {
        let mut out = format!(
            "# HELP {name} {help}\n# TYPE {name} histogram\n",
            name = self.name,
            help = self.help
        );
        let mut cumulative = 0;
        for (bound, bucket) in BOUNDS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            out.push_str(&format!(
                "{}_bucket{{le=\"{bound}\"}} {cumulative}\n",
                self.name
            ));
        }
        cumulative += self.over.load(Ordering::Relaxed);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        out.push_str(&format!(
            "{name}_bucket{{le=\"+Inf\"}} {cumulative}\n{name}_sum {sum}\n{name}_count {cumulative}\n",
            name = self.name
        ));
        out
    }
}

/// One group commit: resolving its changes and writing them, the sync included.
pub static STORE_COMMIT: Histogram = Histogram::new(
    "gannet_store_commit_seconds",
    "Group commits: resolving the changes and writing them, fsync included.",
);

/// Inbound delivery of one message: from the end of its data to stored (or refused).
pub static DELIVERY: Histogram = Histogram::new(
    "gannet_delivery_seconds",
    "Inbound messages: from the end of DATA to stored (screening, spam scan, commit).",
);

/// One spam scan.
pub static SPAM_SCAN: Histogram = Histogram::new(
    "gannet_spam_scan_seconds",
    "Spam scans of inbound messages (rules and Bayes).",
);

/// One group commit's write to the engine, its fsync included (the rest of
/// [`STORE_COMMIT`] is resolving the changes).
pub static STORE_WRITE: Histogram = Histogram::new(
    "gannet_store_write_seconds",
    "Group commits: the write to the engine alone, fsync included.",
);

/// An inbound message's wait for its commit: from handing its changes to the commit
/// thread to hearing they are durable (the group before it, its own group's resolving,
/// write and fsync).
pub static DELIVERY_COMMIT: Histogram = Histogram::new(
    "gannet_delivery_commit_seconds",
    "Inbound messages: from handing the changes to the commit thread to durable.",
);

/// Every histogram, for the exposition.
pub fn all() -> [&'static Histogram; 5] {
    [
        &STORE_COMMIT,
        &STORE_WRITE,
        &DELIVERY,
        &DELIVERY_COMMIT,
        &SPAM_SCAN,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_in_the_exposition() {
        let h = Histogram::new("t_seconds", "test");
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let text = h.exposition();
        assert!(
            text.contains("t_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("t_seconds_bucket{le=\"0.005\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("t_seconds_bucket{le=\"10\"} 2\n"), "{text}");
        assert!(text.contains("t_seconds_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("t_seconds_count 3\n"), "{text}");
        assert!(text.contains("t_seconds_sum 20.0033\n"), "{text}");
    }
}
