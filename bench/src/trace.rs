//! `gannet-bench trace`: the message trace's searches over a store holding N traced
//! messages (a day of traffic: arrival, verdict and folder events each), written through
//! the store's own API into a fresh store in a temporary directory.

use std::time::Instant;

use clap::Args;
use gannet_core::store::trace::{self, Event, EventKind, Query};
use gannet_core::store::{Changes, Store};

#[derive(Args)]
pub struct Options {
    /// Messages traced (spread over one day).
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Repetitions of each search.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Where the store goes (default: a temporary directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

/// 1,000 senders, 500 recipients, 2,000 client addresses: each message is "the n-th".
fn events(n: u64, day_start: i64, messages: u64) -> [Event; 3] {
    let at = day_start + (n * 86_400 / messages.max(1)) as i64;
    let recipient = format!("user{}@hosted.test", n % 500);
    let kinds = [
        EventKind::Received {
            client: Some(format!("198.51.{}.{}", (n % 2000) / 250, n % 250)),
            sender: format!("sender{}@outside{}.test", n % 1000, n % 7),
            recipients: vec![recipient.clone()],
            message_id: format!("<{n}.bench@outside.test>"),
            subject: format!("message number {n}"),
            size: 10_240,
        },
        EventKind::Scored {
            score: (n % 20) as f64 / 2.0,
            rules: vec!["HTML_MESSAGE=0.0".into(), "BAYES_50=0.8".into()],
        },
        EventKind::Filed {
            recipient,
            folder: if n.is_multiple_of(5) { "Junk" } else { "INBOX" }.into(),
        },
    ];
    kinds.map(|kind| Event {
        at,
        message: n + 1,
        kind,
    })
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    let temp = tempfile_dir()?;
    let dir = opts.dir.clone().unwrap_or_else(|| temp.clone());
    let owner = Store::open(&dir)?;
    let store = owner.store();
    let day_start = 1_800_000_000;
    let started = Instant::now();
    for chunk in (0..opts.messages).collect::<Vec<_>>().chunks(1000) {
        let mut changes = Changes::new();
        for &n in chunk {
            for e in events(n, day_start, opts.messages) {
                trace::record(&mut changes, &e);
            }
        }
        store.commit_blocking(changes)?;
    }
    println!(
        "wrote {} traced messages in {:.1} s",
        opts.messages,
        started.elapsed().as_secs_f64()
    );
    let searches: [(&str, Query); 6] = [
        (
            "by_sender",
            Query {
                sender: Some("sender17@outside3.test".into()),
                ..Query::default()
            },
        ),
        (
            "by_recipient",
            Query {
                recipient: Some("user42@hosted.test".into()),
                ..Query::default()
            },
        ),
        (
            "by_message_id",
            Query {
                message_id: Some(format!("<{}.bench@outside.test>", opts.messages / 2)),
                ..Query::default()
            },
        ),
        (
            "by_client",
            Query {
                client: Some("198.51.3.17".into()),
                ..Query::default()
            },
        ),
        (
            "last_hour",
            Query {
                since: Some(day_start + 23 * 3600),
                ..Query::default()
            },
        ),
        (
            "whole_day",
            Query {
                since: Some(day_start),
                until: Some(day_start + 86_400),
                ..Query::default()
            },
        ),
    ];
    println!(
        "{} messages; min / median / max of {} runs",
        opts.messages, opts.runs
    );
    for (label, query) in &searches {
        let mut times = Vec::with_capacity(opts.runs);
        let mut found = 0;
        for _ in 0..opts.runs.max(1) {
            let t = Instant::now();
            found = trace::search(store, query)?.len();
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{label:<14} {:>8.2} / {:>8.2} / {:>8.2} ms  ({found} messages answered)",
            times[0],
            median,
            times[times.len() - 1]
        );
        println!("result {label}={median:.3}");
    }
    owner.close();
    if opts.dir.is_none() {
        let _ = std::fs::remove_dir_all(&temp);
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("gannet-bench-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
