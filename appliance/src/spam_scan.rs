//! `gannet spam scan`: score message files with the rules, one way or the other, with one
//! output.
//!
//! * **Through the running server** (one runs on the data directory, and `--local` is not
//!   given): the files go over the control socket in batches, and the server's scan
//!   threads ([`crate::scan_service`]) score them with the rules it has loaded and its
//!   Bayes database, so the verdict is the one its delivery would give (network tests
//!   aside). The threads are kept with their regex caches warm from one run to the next;
//!   a one-shot process builds those again every time (a third of a whole run;
//!   docs/benchmarks.md).
//! * **Here** (no server, or `--local`): the rules loaded from the configuration (the
//!   compile cache makes that ~50 ms), the Bayes database when no server holds the store,
//!   on `--jobs` threads.
//!
//! A directory stands for the files in it (sorted). A message whose scan fails is reported
//! with its error (scored as no rule hit) and the others are still scanned.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Mutex, PoisonError};

use anyhow::{ensure, Context};
use base64::Engine as _;
use gannet_core::filter::{ScanInput, Verdict};
use gannet_core::store::bayes::StoreLearned;
use gannet_core::store::Store;

use crate::cli::AdminCommand;
use crate::scan_service::{ScanBatch, ScanHeader, Scored};

/// What the command line puts in one batch: this many messages, or fewer past this many
/// bytes of them.
const SEND_MESSAGES: usize = 256;
const SEND_BYTES: usize = 16 << 20;

/// Files scanned here per round (their verdicts are held until the round is written).
const LOCAL_ROUND: usize = 4096;

/// `gannet spam scan FILES`.
pub(crate) fn run(
    config: &gannet_core::config::Config,
    files: Vec<PathBuf>,
    json: bool,
    jobs: Option<usize>,
    local: bool,
) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let files = expand(files, &mut failed);
    let data_dir = &config.server.data_dir;
    let through_server = if local {
        None
    } else {
        through_server(data_dir, &files, json, &mut failed)?
    };
    let Done {
        count,
        bytes,
        seconds,
        how,
    } = match through_server {
        Some(done) => done,
        None => scan_here(config, &files, json, jobs, &mut failed)?,
    };
    eprintln!(
        "scanned {count} messages ({:.1} MB) in {seconds:.2} s: {:.0} messages/s {how}",
        bytes as f64 / 1e6,
        count as f64 / seconds.max(1e-9),
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// What a scan did, for its summary.
struct Done {
    count: usize,
    bytes: u64,
    /// From the first file read to the last verdict written (rules loaded before).
    seconds: f64,
    /// How, and with what: the summary's end.
    how: String,
}

/// One batch as the command line sends it, and what printing its answer needs: the files
/// in it with their sizes, and those that could not be read (reported once the server
/// has answered; with no server, the scan here reports them).
struct Prepared<'f> {
    command: AdminCommand,
    names: Vec<(&'f PathBuf, usize)>,
    unreadable: Vec<(&'f PathBuf, std::io::Error)>,
}

/// The next batch from the front of `files`, and the files left after it.
fn prepare(files: &[PathBuf]) -> (Prepared<'_>, &[PathBuf]) {
    let mut batch = ScanBatch::default();
    let mut names = Vec::new();
    let mut unreadable = Vec::new();
    let mut size = 0usize;
    let mut taken = 0;
    for file in files {
        if batch.messages.len() >= SEND_MESSAGES || (size >= SEND_BYTES && taken > 0) {
            break;
        }
        taken += 1;
        match std::fs::read(file) {
            Ok(raw) => {
                size += raw.len();
                batch
                    .messages
                    .push(base64::engine::general_purpose::STANDARD.encode(&raw));
                names.push((file, raw.len()));
            }
            Err(e) => unreadable.push((file, e)),
        }
    }
    let prepared = Prepared {
        command: AdminCommand::ScanBatch { batch },
        names,
        unreadable,
    };
    (prepared, files.get(taken..).unwrap_or_default())
}

/// Batches at the server at once: the next one is read, sent and decoded while the scan
/// threads score the one before, so that they do not wait between batches (the server
/// answers two at once, `control::SCAN_BATCHES_AT_ONCE`).
const BATCHES_IN_FLIGHT: usize = 2;

/// Scans through the running server; None, having scanned nothing, when none runs.
fn through_server(
    data_dir: &Path,
    files: &[PathBuf],
    json: bool,
    failed: &mut bool,
) -> anyhow::Result<Option<Done>> {
    // No socket, no server: the files are not read for batches that would go nowhere.
    // (A socket a killed server left behind is found out by the first request.)
    if !crate::control::socket_path(data_dir).exists() {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut count, mut bytes) = (0usize, 0u64);
    let header = std::thread::scope(|scope| -> anyhow::Result<Option<ScanHeader>> {
        let mut in_flight = std::collections::VecDeque::new();
        let mut rest = files;
        // An empty list still asks once, to know where the scan would have run.
        let mut asked = false;
        let mut header = None;
        loop {
            while in_flight.len() < BATCHES_IN_FLIGHT && (!rest.is_empty() || !asked) {
                let (batch, after) = prepare(rest);
                let Prepared {
                    command,
                    names,
                    unreadable,
                } = batch;
                rest = after;
                asked = true;
                let answer = scope.spawn(move || crate::control::request(data_dir, &command));
                in_flight.push_back((names, unreadable, answer));
            }
            let Some((names, unreadable, answer)) = in_flight.pop_front() else {
                return Ok(header);
            };
            let answer = answer
                .join()
                .map_err(|_| anyhow::anyhow!("sending a batch to the running server failed"))?;
            let Some(outcome) = answer? else {
                // No server: nothing was printed, the caller scans here.
                ensure!(count == 0, "the running server stopped during the scan");
                return Ok(None);
            };
            for (file, e) in unreadable {
                eprintln!("gannet: {}: {e}", file.display());
                *failed = true;
            }
            let text = String::from_utf8_lossy(&outcome.output);
            ensure!(outcome.ok, "{}", text.trim());
            let mut lines = text.lines();
            let answered: ScanHeader = serde_json::from_str(lines.next().unwrap_or_default())
                .context("bad answer from the running server")?;
            let scored: Vec<Scored> = lines
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .context("bad answer from the running server")?;
            ensure!(
                scored.len() == names.len(),
                "the running server scored {} of {} messages",
                scored.len(),
                names.len()
            );
            for ((file, size), s) in names.iter().zip(&scored) {
                count += 1;
                bytes += *size as u64;
                print_scored(&mut out, file, s, json)?;
            }
            header = Some(answered);
        }
    })?;
    let Some(header) = header else {
        return Ok(None);
    };
    out.flush()?;
    Ok(Some(Done {
        count,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        how: format!(
            "on the running server ({} scan threads); Bayes {}",
            header.threads,
            if header.bayes { "read" } else { "not ready" }
        ),
    }))
}

/// One file scanned here: its size and verdict, or why it could not be read.
type FileScan = std::io::Result<(usize, Verdict)>;

/// Scans here, with the rules loaded from the configuration.
fn scan_here(
    config: &gannet_core::config::Config,
    files: &[PathBuf],
    json: bool,
    jobs: Option<usize>,
    failed: &mut bool,
) -> anyhow::Result<Done> {
    without_huge_pages();
    let loading = std::time::Instant::now();
    let (rules, _) = crate::admin::load_rules(&config.spam, &config.server.data_dir)?;
    let load_time = loading.elapsed();
    // The Bayes database, when there is a store and no server holds it.
    let store_dir = crate::admin::store_dir(&config.server.data_dir);
    let store = match store_dir.is_dir() {
        false => None,
        true => match Store::open(&store_dir) {
            Ok(owner) => Some(owner),
            Err(e) => {
                eprintln!("gannet: scanning without the Bayes database ({e})");
                None
            }
        },
    };
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut count, mut bytes) = (0usize, 0u64);
    for round in files.chunks(LOCAL_ROUND) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<Mutex<Option<FileScan>>> = round.iter().map(|_| Mutex::new(None)).collect();
        // `jobs` threads, each taking the next file not taken.
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(round.len()) {
                scope.spawn(|| {
                    let learned = store.as_ref().map(|owner| StoreLearned {
                        store: owner.store(),
                        scope: 0,
                    });
                    let input = ScanInput {
                        bayes: learned
                            .as_ref()
                            .map(|l| l as &dyn gannet_core::filter::bayes::Learned),
                        ..Default::default()
                    };
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let (Some(file), Some(slot)) = (round.get(i), slots.get(i)) else {
                            break;
                        };
                        let scanned = std::fs::read(file)
                            .map(|raw| (raw.len(), rules.scan_message(&raw, &input)));
                        *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(scanned);
                    }
                });
            }
        });
        for (file, slot) in round.iter().zip(slots) {
            match slot.into_inner().unwrap_or_else(PoisonError::into_inner) {
                Some(Ok((size, v))) => {
                    count += 1;
                    bytes += size as u64;
                    print_scored(&mut out, file, &Scored::from(&v), json)?;
                }
                Some(Err(e)) => {
                    eprintln!("gannet: {}: {e}", file.display());
                    *failed = true;
                }
                None => *failed = true,
            }
        }
    }
    out.flush()?;
    let bayes = if store.is_some() { "read" } else { "not read" };
    if let Some(owner) = store {
        owner.close();
    }
    Ok(Done {
        count,
        bytes,
        seconds: started.elapsed().as_secs_f64(),
        how: format!(
            "on {jobs} threads; rules loaded in {:.2} s; Bayes {bayes}",
            load_time.as_secs_f64()
        ),
    })
}

/// One file's verdict: a line of JSON, or the score and the rules hit.
fn print_scored(
    out: &mut impl std::io::Write,
    file: &Path,
    s: &Scored,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let hits: Vec<serde_json::Value> = s
            .hits
            .iter()
            .map(|h| serde_json::json!({"name": h.name, "score": h.score}))
            .collect();
        let mut line =
            serde_json::json!({"file": file.display().to_string(), "score": s.score, "hits": hits});
        if let Some(b) = &s.bayes {
            line["bayes"] = serde_json::json!({"probability": b.probability, "tokens": b.tokens});
        }
        if let Some(e) = &s.error {
            line["error"] = serde_json::Value::from(e.as_str());
        }
        writeln!(out, "{line}")
    } else {
        writeln!(out, "{}: {:.1}", file.display(), s.score)?;
        if let Some(e) = &s.error {
            writeln!(out, "  error: {e}")?;
        }
        for h in &s.hits {
            writeln!(out, "  {:<24} {:>5.1}  {}", h.name, h.score, h.describe)?;
        }
        Ok(())
    }
}

/// A one-shot scan turns transparent huge pages off for itself. mimalloc asks for them
/// (`madvise`), and a first touch of a 2 MiB page costs its whole zeroing, which on this
/// kind of virtual machine is ~5 ms: a one-thread `spam scan` of 1,000 messages spent 16 %
/// of its time in `clear_page_erms` (67 huge-page faults), and whole runs without them
/// take 0.86–0.96× the time (docs/benchmarks.md, session 19). The server keeps them: it
/// pays once, and its scan is ~5 % cheaper per message with them (fewer TLB misses).
fn without_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes only this process's
    // memory policy; its failure (an old kernel) leaves the default, which is harmless.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// The files to scan: each argument, or for a directory the files in it, sorted. A
/// directory that cannot be read is reported and sets `failed`.
fn expand(args: Vec<PathBuf>, failed: &mut bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for arg in args {
        if !arg.is_dir() {
            files.push(arg);
            continue;
        }
        match std::fs::read_dir(&arg) {
            Ok(entries) => {
                let mut inside: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.is_file())
                    .collect();
                inside.sort();
                files.extend(inside);
            }
            Err(e) => {
                eprintln!("gannet: {}: {e}", arg.display());
                *failed = true;
            }
        }
    }
    files
}
