//! Limits shared by all workers: concurrent connections per client IP, messages per hour
//! per sender (a sliding window), and failed logins per IP.
//!
//! These are touched once per connection, per message on the submission/relay path, and
//! per login, never per command or per byte, so a sharded mutex is cheap enough and gives
//! every core the same view.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sharded::Sharded;

/// Concurrent connections per client IP.
pub struct ConnectionLimiter {
    max: usize,
    open: Sharded<IpAddr, usize>,
}

/// Holds one connection slot; released when dropped.
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

impl ConnectionLimiter {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            max,
            open: Sharded::new(),
        })
    }

    /// A permit, or None when `ip` already has the maximum number of connections.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let admitted = self.open.with(&ip, |m| {
            let n = m.entry(ip).or_insert(0);
            if *n >= self.max {
                return false;
            }
            *n += 1;
            true
        });
        admitted.then(|| ConnectionPermit {
            limiter: self.clone(),
            ip,
        })
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        self.limiter.open.with(&self.ip, |m| {
            if let Some(n) = m.get_mut(&self.ip) {
                *n -= 1;
                if *n == 0 {
                    m.remove(&self.ip);
                }
            }
        });
    }
}

/// Whose messages a rate limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RateKey {
    Account(u32),
    Ip(IpAddr),
}

/// Minutes in the sliding window (one hour) and the slots that hold them.
const WINDOW_MINUTES: usize = 60;

/// Per-minute counts over the last hour.
struct Window {
    counts: [u32; WINDOW_MINUTES],
    /// The minute (since the limiter's epoch) of the newest slot.
    newest: u64,
}

impl Window {
    fn advance(&mut self, minute: u64) {
        let gap = minute.saturating_sub(self.newest);
        for m in 1..=gap.min(WINDOW_MINUTES as u64) {
            self.counts[((self.newest + m) % WINDOW_MINUTES as u64) as usize] = 0;
        }
        self.newest = self.newest.max(minute);
    }

    fn total(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }
}

/// Messages per hour per sender, as a sliding window of one-minute slots.
pub struct RateLimiter {
    per_hour: u64,
    epoch: Instant,
    windows: Sharded<RateKey, Window>,
}

impl RateLimiter {
    pub fn new(per_hour: u32) -> Arc<Self> {
        Arc::new(RateLimiter {
            per_hour: u64::from(per_hour),
            epoch: Instant::now(),
            windows: Sharded::new(),
        })
    }

    /// Counts one message for `key` if it is within the limit; false if it is over.
    pub fn admit(&self, key: RateKey) -> bool {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: RateKey, now: Instant) -> bool {
        let minute = now.duration_since(self.epoch).as_secs() / 60;
        self.windows.with(&key, |m| {
            let w = m.entry(key).or_insert(Window {
                counts: [0; WINDOW_MINUTES],
                newest: minute,
            });
            w.advance(minute);
            if w.total() >= self.per_hour {
                return false;
            }
            w.counts[(minute % WINDOW_MINUTES as u64) as usize] += 1;
            true
        })
    }
}

/// Failed logins per client IP: after `max` failures within `window`, the IP is refused
/// for `cool_off`.
pub struct FailureTracker {
    max: usize,
    window: Duration,
    cool_off: Duration,
    failures: Sharded<IpAddr, Vec<Instant>>,
}

impl FailureTracker {
    pub fn new(max: usize, window: Duration, cool_off: Duration) -> Arc<Self> {
        Arc::new(FailureTracker {
            max,
            window,
            cool_off,
            failures: Sharded::new(),
        })
    }

    /// True while `ip` is locked out.
    pub fn locked(&self, ip: IpAddr) -> bool {
        self.locked_at(ip, Instant::now())
    }

    fn locked_at(&self, ip: IpAddr, now: Instant) -> bool {
        self.failures.with(&ip, |m| {
            let Some(times) = m.get_mut(&ip) else {
                return false;
            };
            let horizon = self.window.max(self.cool_off);
            times.retain(|t| now.duration_since(*t) < horizon);
            let recent = times
                .iter()
                .filter(|t| now.duration_since(**t) < self.window)
                .count();
            let cooling = times.len() >= self.max
                && times
                    .last()
                    .is_some_and(|l| now.duration_since(*l) < self.cool_off);
            if times.is_empty() {
                m.remove(&ip);
            }
            recent >= self.max || cooling
        })
    }

    pub fn record_failure(&self, ip: IpAddr) {
        self.record_failure_at(ip, Instant::now());
    }

    fn record_failure_at(&self, ip: IpAddr, now: Instant) {
        self.failures
            .with(&ip, |m| m.entry(ip).or_default().push(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_per_ip() {
        let l = ConnectionLimiter::new(2);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let a = l.acquire(ip).unwrap();
        let _b = l.acquire(ip).unwrap();
        assert!(l.acquire(ip).is_none());
        assert!(l.acquire("127.0.0.3".parse().unwrap()).is_some());
        drop(a);
        assert!(l.acquire(ip).is_some());
    }

    /// An IPv6 client holds a /64 at least (often far more): counting single addresses
    /// would let one client open a connection from each of 2^64 of them.
    #[test]
    fn ipv6_clients_count_per_slash_64() {
        let l = ConnectionLimiter::new(2);
        let a = |s: &str| -> IpAddr { s.parse().unwrap() };
        let _one = l.acquire(a("2001:db8:1:2::1")).unwrap();
        let _two = l.acquire(a("2001:db8:1:2:ffff::9")).unwrap();
        assert!(l.acquire(a("2001:db8:1:2:abcd::1")).is_none());
        assert!(l.acquire(a("2001:db8:1:3::1")).is_some(), "another /64");
        let f = FailureTracker::new(2, Duration::from_secs(600), Duration::from_secs(900));
        f.record_failure(a("2001:db8:1:2::1"));
        f.record_failure(a("2001:db8:1:2::2"));
        assert!(f.locked(a("2001:db8:1:2::3")));
        assert!(!f.locked(a("2001:db8:1:3::3")));
    }

    #[test]
    fn sliding_hour() {
        let r = RateLimiter::new(3);
        let k = RateKey::Account(1);
        let t0 = r.epoch;
        assert!(r.admit_at(k, t0));
        assert!(r.admit_at(k, t0 + Duration::from_secs(600)));
        assert!(r.admit_at(k, t0 + Duration::from_secs(1200)));
        assert!(
            !r.admit_at(k, t0 + Duration::from_secs(1800)),
            "4th within the hour"
        );
        assert!(r.admit_at(RateKey::Account(2), t0 + Duration::from_secs(1800)));
        // 61 minutes after the first, its slot has left the window.
        assert!(r.admit_at(k, t0 + Duration::from_secs(3660)));
        assert!(!r.admit_at(k, t0 + Duration::from_secs(3670)));
        // Long idle: everything expired.
        assert!(r.admit_at(k, t0 + Duration::from_secs(100_000)));
    }

    #[test]
    fn lockout_after_failures_then_cool_off() {
        let f = FailureTracker::new(5, Duration::from_secs(600), Duration::from_secs(900));
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let t0 = Instant::now();
        for i in 0..4 {
            f.record_failure_at(ip, t0 + Duration::from_secs(i));
        }
        assert!(!f.locked_at(ip, t0 + Duration::from_secs(5)));
        f.record_failure_at(ip, t0 + Duration::from_secs(5));
        assert!(f.locked_at(ip, t0 + Duration::from_secs(6)));
        assert!(!f.locked_at("127.0.0.3".parse().unwrap(), t0));
        // Still cooling off after the 10-minute window, free after the cool-off.
        assert!(f.locked_at(ip, t0 + Duration::from_secs(700)));
        assert!(!f.locked_at(ip, t0 + Duration::from_secs(1000)));
    }
}
