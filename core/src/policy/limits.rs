//! Limits shared by all workers: concurrent connections per client (an IPv4 address or an
//! IPv6 /64), per listener and per process; messages per hour per sender (a sliding
//! window); failed logins per client and per account.
//!
//! These are touched once per connection, per message on the submission/relay path, and
//! per login, never per command or per byte, so a sharded mutex is cheap enough and gives
//! every core the same view.

use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sharded::Sharded;

/// What one client is counted as: its IPv4 address, or the /64 of its IPv6 address (one
/// host is routinely given a whole /64, so single v6 addresses cost an attacker nothing).
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// How many listeners the per-listener cap can tell apart (Gannet has seven).
pub const LISTENER_SLOTS: usize = 8;

/// Concurrent connections: per client, and in total per listener and per process.
pub struct ConnectionLimiter {
    /// Per client; the admin console may change it while connections are open.
    max: AtomicUsize,
    open: Sharded<IpAddr, usize>,
    max_total: usize,
    total: AtomicUsize,
    max_per_listener: usize,
    per_listener: [AtomicUsize; LISTENER_SLOTS],
}

/// Holds one connection slot of its client; released when dropped.
pub struct ConnectionPermit {
    limiter: Arc<ConnectionLimiter>,
    ip: IpAddr,
}

/// Holds one connection's place in its listener's and the process's totals; released
/// when dropped.
pub struct ListenerSlot {
    limiter: Arc<ConnectionLimiter>,
    listener: usize,
}

impl ConnectionLimiter {
    /// `max` connections per client, and no cap on the totals.
    pub fn new(max: usize) -> Arc<Self> {
        Self::with_totals(max, usize::MAX, usize::MAX)
    }

    /// `max` per client, `max_total` in the whole process, `max_per_listener` on each
    /// listener.
    pub fn with_totals(max: usize, max_total: usize, max_per_listener: usize) -> Arc<Self> {
        Arc::new(ConnectionLimiter {
            max: AtomicUsize::new(max),
            open: Sharded::new(),
            max_total,
            total: AtomicUsize::new(0),
            max_per_listener,
            per_listener: Default::default(),
        })
    }

    /// A place for a new connection on `listener` (an index below [`LISTENER_SLOTS`]),
    /// or None when that listener or the process is full. Taken for every connection,
    /// trusted or not, before anything else is done with it.
    pub fn slot(self: &Arc<Self>, listener: usize) -> Option<ListenerSlot> {
        let listener = listener.min(LISTENER_SLOTS - 1);
        let take = |counter: &AtomicUsize, max: usize| {
            counter
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max).then_some(n + 1)
                })
                .is_ok()
        };
        if !take(&self.total, self.max_total) {
            return None;
        }
        if !take(&self.per_listener[listener], self.max_per_listener) {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(ListenerSlot {
            limiter: self.clone(),
            listener,
        })
    }

    /// Changes the limit per client; connections already open stay open.
    pub fn set_max_per_client(&self, max: usize) {
        self.max.store(max, Ordering::Release);
    }

    /// Connections open in the whole process.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// A permit, or None when `ip`'s client (see [`client_key`]) already has the maximum
    /// number of connections.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let ip = client_key(ip);
        let max = self.max.load(Ordering::Acquire);
        let admitted = self.open.with(&ip, |m| {
            let n = m.entry(ip).or_insert(0);
            if *n >= max {
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

impl Drop for ListenerSlot {
    fn drop(&mut self) {
        self.limiter.per_listener[self.listener].fetch_sub(1, Ordering::AcqRel);
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
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
    /// The limit; the admin console may change it while the server runs.
    per_hour: AtomicU64,
    epoch: Instant,
    windows: Sharded<RateKey, Window>,
}

impl RateLimiter {
    pub fn new(per_hour: u32) -> Arc<Self> {
        Arc::new(RateLimiter {
            per_hour: AtomicU64::new(u64::from(per_hour)),
            epoch: Instant::now(),
            windows: Sharded::new(),
        })
    }

    /// Changes the limit; the counts so far are kept.
    pub fn set_per_hour(&self, per_hour: u32) {
        self.per_hour.store(u64::from(per_hour), Ordering::Release);
    }

    /// Counts one message for `key` if it is within the limit; false if it is over.
    pub fn admit(&self, key: RateKey) -> bool {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: RateKey, now: Instant) -> bool {
        let minute = now.duration_since(self.epoch).as_secs() / 60;
        let per_hour = self.per_hour.load(Ordering::Acquire);
        self.windows.with(&key, |m| {
            let w = m.entry(key).or_insert(Window {
                counts: [0; WINDOW_MINUTES],
                newest: minute,
            });
            w.advance(minute);
            if w.total() >= per_hour {
                return false;
            }
            w.counts[(minute % WINDOW_MINUTES as u64) as usize] += 1;
            true
        })
    }
}

/// Entries in one shard of the failure table before old ones are swept out.
const SWEEP_AT: usize = 1024;

/// What failed logins are counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// A client (see [`client_key`]).
    Client(IpAddr),
    /// A login name, lower-cased, whether or not such an account exists (so that a
    /// lockout tells nothing about which names exist).
    Account(String),
}

/// Failed logins: after `max` failures from one client within `window`, that client is
/// refused for `cool_off`; after `max_per_account` failures for one login name (from any
/// number of clients: a distributed guess), that name is refused for `cool_off`.
pub struct FailureTracker {
    max: usize,
    max_per_account: usize,
    window: Duration,
    cool_off: Duration,
    failures: Sharded<Target, Vec<Instant>>,
}

impl FailureTracker {
    pub fn new(max: usize, window: Duration, cool_off: Duration) -> Arc<Self> {
        Self::with_account_limit(max, usize::MAX, window, cool_off)
    }

    pub fn with_account_limit(
        max: usize,
        max_per_account: usize,
        window: Duration,
        cool_off: Duration,
    ) -> Arc<Self> {
        Arc::new(FailureTracker {
            max,
            max_per_account,
            window,
            cool_off,
            failures: Sharded::new(),
        })
    }

    /// True while `ip`'s client is locked out.
    pub fn locked(&self, ip: IpAddr) -> bool {
        self.locked_at(&Target::Client(client_key(ip)), self.max, Instant::now())
    }

    /// True while the login name `user` is locked out.
    pub fn account_locked(&self, user: &str) -> bool {
        let target = Target::Account(user.trim().to_lowercase());
        self.locked_at(&target, self.max_per_account, Instant::now())
    }

    fn locked_at(&self, target: &Target, max: usize, now: Instant) -> bool {
        self.failures.with(target, |m| {
            let Some(times) = m.get_mut(target) else {
                return false;
            };
            let horizon = self.window.max(self.cool_off);
            times.retain(|t| now.duration_since(*t) < horizon);
            let recent = times
                .iter()
                .filter(|t| now.duration_since(**t) < self.window)
                .count();
            let cooling = times.len() >= max
                && times
                    .last()
                    .is_some_and(|l| now.duration_since(*l) < self.cool_off);
            if times.is_empty() {
                m.remove(target);
            }
            recent >= max || cooling
        })
    }

    /// Counts a failed login from `ip` (its client) for the name `user`.
    pub fn record_failure(&self, ip: IpAddr, user: &str) {
        let now = Instant::now();
        self.record_failure_at(Target::Client(client_key(ip)), self.max, now);
        self.record_failure_at(
            Target::Account(user.trim().to_lowercase()),
            self.max_per_account,
            now,
        );
    }

    fn record_failure_at(&self, target: Target, max: usize, now: Instant) {
        let horizon = self.window.max(self.cool_off);
        self.failures.with(&target, |m| {
            if m.len() >= SWEEP_AT {
                // Names and clients that failed once and never came back are only
                // forgotten when looked at: sweep the old ones, so that guesses at many
                // names cannot grow the table without bound.
                m.retain(|_, times| {
                    times
                        .last()
                        .is_some_and(|l| now.duration_since(*l) < horizon)
                });
            }
            let times = m.entry(target.clone()).or_default();
            times.push(now);
            // Only the newest `max` failures decide anything: a client hammering away
            // does not grow the list without bound.
            if times.len() > max.saturating_mul(2).max(16) {
                let excess = times.len() - max.max(8);
                times.drain(..excess);
            }
        });
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

    /// The console changes the limit while clients are connected: open connections
    /// stay, new ones count against the new limit.
    #[test]
    fn per_client_limit_changes_live() {
        let l = ConnectionLimiter::new(3);
        let ip: IpAddr = "127.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| l.acquire(ip).unwrap()).collect();
        l.set_max_per_client(1);
        assert!(l.acquire(ip).is_none());
        drop(held);
        let one = l.acquire(ip).unwrap();
        assert!(l.acquire(ip).is_none(), "one is the new limit");
        l.set_max_per_client(2);
        assert!(l.acquire(ip).is_some());
        drop(one);
    }

    #[test]
    fn hourly_rate_changes_live() {
        let r = RateLimiter::new(1);
        let k = RateKey::Account(1);
        let t0 = r.epoch;
        assert!(r.admit_at(k, t0));
        assert!(!r.admit_at(k, t0));
        r.set_per_hour(3);
        assert!(r.admit_at(k, t0) && r.admit_at(k, t0));
        assert!(!r.admit_at(k, t0), "three in the hour, counting the first");
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
        f.record_failure(a("2001:db8:1:2::1"), "alice");
        f.record_failure(a("2001:db8:1:2::2"), "bob");
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
        let ip = Target::Client("127.0.0.2".parse().unwrap());
        let t0 = Instant::now();
        for i in 0..4 {
            f.record_failure_at(ip.clone(), 5, t0 + Duration::from_secs(i));
        }
        assert!(!f.locked_at(&ip, 5, t0 + Duration::from_secs(5)));
        f.record_failure_at(ip.clone(), 5, t0 + Duration::from_secs(5));
        assert!(f.locked_at(&ip, 5, t0 + Duration::from_secs(6)));
        let other = Target::Client("127.0.0.3".parse().unwrap());
        assert!(!f.locked_at(&other, 5, t0));
        // Still cooling off after the 10-minute window, free after the cool-off.
        assert!(f.locked_at(&ip, 5, t0 + Duration::from_secs(700)));
        assert!(!f.locked_at(&ip, 5, t0 + Duration::from_secs(1000)));
    }

    /// Guesses at one account from many clients lock the account (and only it), even
    /// though no single client reaches its own limit.
    #[test]
    fn distributed_guessing_locks_the_account() {
        let f = FailureTracker::with_account_limit(
            5,
            10,
            Duration::from_secs(600),
            Duration::from_secs(900),
        );
        for i in 0..10u8 {
            let ip = IpAddr::from([192, 0, 2, i]);
            assert!(!f.account_locked("Alice@Example.test"));
            f.record_failure(ip, "alice@example.test");
            assert!(!f.locked(ip));
        }
        assert!(f.account_locked(" ALICE@example.test"));
        assert!(!f.account_locked("bob@example.test"));
    }

    /// Failures at ever new names do not grow the table without bound.
    #[test]
    fn the_failure_table_is_swept() {
        let f = FailureTracker::with_account_limit(
            5,
            10,
            Duration::from_secs(1),
            Duration::from_secs(1),
        );
        let then = Instant::now();
        for i in 0..20_000 {
            f.record_failure_at(Target::Account(format!("n{i}")), 10, then);
        }
        let later = then + Duration::from_secs(5);
        for i in 0..20_000 {
            f.record_failure_at(Target::Account(format!("m{i}")), 10, later);
        }
        let mut kept = 0;
        for i in 0..20_000 {
            let t = Target::Account(format!("n{i}"));
            kept += f.failures.with(&t, |m| usize::from(m.contains_key(&t)));
        }
        assert!(kept < 20_000 / 2, "{kept} stale entries kept");
    }

    /// The process and listener caps hold for every connection, trusted or not, and free
    /// their places when the connections end.
    #[test]
    fn caps_per_listener_and_process() {
        let l = ConnectionLimiter::with_totals(5, 3, 2);
        let a = l.slot(0).unwrap();
        let _b = l.slot(0).unwrap();
        assert!(l.slot(0).is_none(), "listener 0 is full");
        let c = l.slot(1).unwrap();
        assert!(l.slot(2).is_none(), "the process is full");
        assert_eq!(l.total(), 3);
        drop(a);
        assert!(l.slot(2).is_some());
        drop(c);
        assert_eq!(l.total(), 1);
    }
}
