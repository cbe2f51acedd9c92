//! What the soak reads off the machine and the server each interval besides its own
//! counters, so that a change in the SMTP latency can be put down to a stage or to the
//! machine: CPU time from /proc (the server's, the whole machine's, the time waiting on
//! the disk, and the time the hypervisor gave to someone else: steal) and the server's
//! latency histograms (the Prometheus text of its `/metrics`), each as a mean per
//! observation since the last reading; and the machine's speed: the CPU time a fixed piece
//! of arithmetic takes (a vCPU whose host is busy gets slower without reporting steal).

use std::collections::BTreeMap;

/// CPU time so far, in the kernel's clock ticks.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct CpuTicks {
    /// Every CPU's ticks of every kind: the clock the others are shares of.
    pub total: u64,
    /// Running anything (user, nice, system, irq, softirq).
    pub busy: u64,
    /// Idle with a disk request outstanding.
    pub iowait: u64,
    /// Taken by the hypervisor for other guests.
    pub steal: u64,
    /// The watched process's user and system time.
    pub process: u64,
    /// The machine's CPUs (`cpuN` lines).
    pub cpus: u64,
}

impl CpuTicks {
    /// Read now from /proc/stat and, for `pid`, /proc/PID/stat.
    pub fn read(pid: Option<u32>) -> Option<CpuTicks> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let process = match pid {
            Some(pid) => std::fs::read_to_string(format!("/proc/{pid}/stat")).ok(),
            None => None,
        };
        CpuTicks::parse(&stat, process.as_deref())
    }

    /// From the text of /proc/stat and of /proc/PID/stat.
    pub fn parse(stat: &str, process: Option<&str>) -> Option<CpuTicks> {
        let fields: Vec<u64> = stat
            .lines()
            .find_map(|l| l.strip_prefix("cpu "))?
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let field = |i: usize| fields.get(i).copied().unwrap_or(0);
        // user nice system idle iowait irq softirq steal (guest time is in user already)
        let cpus = stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count() as u64;
        let process = process.and_then(|p| {
            // The command name (field 2) may hold spaces and parentheses: count from
            // the last ')'. utime and stime are fields 14 and 15, 11 and 12 after it.
            let (_, after) = p.rsplit_once(')')?;
            let f: Vec<&str> = after.split_whitespace().collect();
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        });
        Some(CpuTicks {
            total: (0..8).map(field).sum(),
            busy: field(0) + field(1) + field(2) + field(5) + field(6),
            iowait: field(4),
            steal: field(7),
            process: process.unwrap_or(0),
            cpus: cpus.max(1),
        })
    }

    /// Cores' worth of each kind of time between `earlier` and this reading:
    /// (process, busy, iowait, steal).
    pub fn cores_since(&self, earlier: &CpuTicks) -> Option<[f64; 4]> {
        let total = self.total.checked_sub(earlier.total).filter(|&t| t > 0)?;
        let per_core = total as f64 / self.cpus as f64;
        let cores = |now: u64, then: u64| now.saturating_sub(then) as f64 / per_core;
        Some([
            cores(self.process, earlier.process),
            cores(self.busy, earlier.busy),
            cores(self.iowait, earlier.iowait),
            cores(self.steal, earlier.steal),
        ])
    }
}

/// Iterations of the fixed arithmetic [`cpu_speed_ms`] times: a few milliseconds.
const SPEED_WORK: u64 = 4_000_000;

/// Milliseconds of this thread's CPU time that a fixed chain of dependent arithmetic
/// takes now: the same work every time, so a higher number is a slower CPU (time the
/// thread was not running is not counted: a busy machine's queueing does not show).
pub fn cpu_speed_ms() -> Option<f64> {
    let before = thread_cpu_ns()?;
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..std::hint::black_box(SPEED_WORK) {
        // xorshift64: each step needs the last, so the loop cannot be vectorised away.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    let after = thread_cpu_ns()?;
    Some(after.saturating_sub(before) as f64 / 1e6)
}

/// This thread's time on a CPU so far, in nanoseconds (the first field of its schedstat).
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Each `*_seconds` histogram's (sum, count) in Prometheus text, by name without the
/// suffix.
pub fn histograms(text: &str) -> BTreeMap<String, (f64, f64)> {
    let mut out: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if let Some(base) = name.strip_suffix("_seconds_sum") {
            out.entry(base.to_owned()).or_default().0 = value;
        } else if let Some(base) = name.strip_suffix("_seconds_count") {
            out.entry(base.to_owned()).or_default().1 = value;
        }
    }
    out
}

/// The mean milliseconds per observation of histogram `name` between two readings, and
/// the observations; None when nothing was observed (or a reading is missing).
pub fn mean_ms(
    earlier: &BTreeMap<String, (f64, f64)>,
    now: &BTreeMap<String, (f64, f64)>,
    name: &str,
) -> Option<(f64, f64)> {
    let (sum0, count0) = earlier.get(name)?;
    let (sum1, count1) = now.get(name)?;
    let count = count1 - count0;
    (count > 0.0).then(|| ((sum1 - sum0) / count * 1000.0, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  100 5 50 800 20 3 2 10 0 0\n\
                        cpu0 50 2 25 400 10 1 1 5 0 0\n\
                        cpu1 50 3 25 400 10 2 1 5 0 0\n\
                        intr 12345\nctxt 99\n";

    #[test]
    fn cpu_time_is_read_as_shares_of_the_machine() {
        let process = "4242 (gannet (x) y) S 1 2 3 4 5 6 7 8 9 10 70 30 0 0 20 0 9";
        let before = CpuTicks::parse(STAT, Some(process)).expect("parsed");
        assert_eq!(before.cpus, 2);
        assert_eq!(before.total, 990);
        assert_eq!(before.busy, 160);
        assert_eq!(before.process, 100);
        let later = "cpu  200 5 150 940 60 3 2 30 0 0\ncpu0 1\ncpu1 1\n";
        let process = "4242 (gannet (x) y) S 1 2 3 4 5 6 7 8 9 10 170 80 0 0 20 0 9";
        let after = CpuTicks::parse(later, Some(process)).expect("parsed");
        // 400 ticks over 2 CPUs: 200 ticks a core.
        let [gannet, busy, iowait, steal] = after.cores_since(&before).expect("elapsed");
        assert!((gannet - 0.75).abs() < 1e-9, "{gannet}");
        assert!((busy - 1.0).abs() < 1e-9, "{busy}");
        assert!((iowait - 0.2).abs() < 1e-9, "{iowait}");
        assert!((steal - 0.1).abs() < 1e-9, "{steal}");
        assert_eq!(before.cores_since(&before), None);
    }

    #[test]
    fn the_speed_probe_times_its_work_in_cpu_time() {
        let ms = cpu_speed_ms().expect("schedstat readable");
        // Four million dependent steps: more than a microsecond, less than seconds.
        assert!(ms > 0.001 && ms < 5_000.0, "{ms}");
    }

    #[test]
    fn histogram_means_come_from_sums_and_counts() {
        let text = |sum: f64, count: u64| {
            format!(
                "# TYPE gannet_spam_scan_seconds histogram\n\
                 gannet_spam_scan_seconds_bucket{{le=\"0.001\"}} 1\n\
                 gannet_spam_scan_seconds_sum {sum}\n\
                 gannet_spam_scan_seconds_count {count}\n\
                 gannet_messages_received_total 7\n"
            )
        };
        let before = histograms(&text(1.5, 1000));
        let after = histograms(&text(2.5, 1500));
        let (ms, n) = mean_ms(&before, &after, "gannet_spam_scan").expect("observed");
        assert!((ms - 2.0).abs() < 1e-9, "{ms}");
        assert_eq!(n, 500.0);
        assert_eq!(mean_ms(&after, &after, "gannet_spam_scan"), None);
        assert_eq!(mean_ms(&before, &after, "gannet_delivery"), None);
    }
}
