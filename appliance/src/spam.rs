//! `gannet spam scan`: score messages with the configured rules (and the Bayes database,
//! when a store is there and no server holds it), without a server. A
//! directory stands for the files in it (sorted). A message whose scan fails is reported
//! with its error (scored as no rule hit) and the others are still scanned.
//!
//! `gannet spam learn` and `forget`: the Bayes database. Messages are read and cut into
//! tokens here; batches of tokens go to the running server (or to the store, when none
//! runs), which counts them.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::admin::load_config;
use crate::cli::{AdminCommand, Global, LearnBatch, MailCommand, ReportsCommand, SpamCommand};
use crate::command_line::{run_and_print, AdminLink};

pub(crate) fn run(global: &Global, command: SpamCommand) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    let (files, json, jobs) = match command {
        SpamCommand::Scan { files, json, jobs } => (files, json, jobs),
        SpamCommand::Learn { spam, ham, account } => {
            let sets = [(Some(true), spam), (Some(false), ham)];
            return learn(&config, &sets, account);
        }
        SpamCommand::Forget { paths, account } => {
            return learn(&config, &[(None, paths)], account);
        }
        SpamCommand::Status { account } => {
            return run_and_print(&config, &AdminCommand::BayesStatus { account });
        }
        SpamCommand::Expire {
            account,
            max_tokens,
        } => {
            let max_tokens = max_tokens.unwrap_or(config.spam.bayes_max_tokens);
            if max_tokens == 0 {
                anyhow::bail!("spam.bayes_max_tokens is 0 (never expire): give --max-tokens");
            }
            let command = AdminCommand::BayesExpire {
                account,
                max_tokens,
            };
            return run_and_print(&config, &command);
        }
        SpamCommand::Reports(command) => {
            let address = config.spam.report_address.trim().to_string();
            if address.is_empty() {
                anyhow::bail!("no spam.report_address is configured");
            }
            let command = match command {
                ReportsCommand::List => AdminCommand::SpamReports { address },
                ReportsCommand::Show { uid } => AdminCommand::Mail(MailCommand::Get {
                    address,
                    uid,
                    mailbox: "INBOX".into(),
                }),
            };
            return run_and_print(&config, &command);
        }
    };
    without_huge_pages();
    let loading = std::time::Instant::now();
    let (rules, _) = crate::admin::load_rules(&config.spam, &config.server.data_dir)?;
    let load_time = loading.elapsed();
    // The Bayes database, when there is a store and no server holds it.
    let store_dir = crate::admin::store_dir(&config.server.data_dir);
    let store = match store_dir.is_dir() {
        false => None,
        true => match gannet_core::store::Store::open(&store_dir) {
            Ok(owner) => Some(owner),
            Err(e) => {
                eprintln!("gannet: scanning without the Bayes database ({e})");
                None
            }
        },
    };
    let mut failed = false;
    let files = expand(files, &mut failed);
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, 256);
    let started = std::time::Instant::now();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut count, mut bytes) = (0usize, 0u64);
    // A batch of files at a time, scanned on `jobs` threads (each takes the next file
    // not taken), then written in the files' order.
    for batch in files.chunks(SCAN_BATCH) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<Scanned>>> =
            batch.iter().map(|_| std::sync::Mutex::new(None)).collect();
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(batch.len()) {
                scope.spawn(|| {
                    let learned =
                        store
                            .as_ref()
                            .map(|owner| gannet_core::store::bayes::StoreLearned {
                                store: owner.store(),
                                scope: 0,
                            });
                    let input = gannet_core::filter::ScanInput {
                        bayes: learned
                            .as_ref()
                            .map(|l| l as &dyn gannet_core::filter::bayes::Learned),
                        ..Default::default()
                    };
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let (Some(file), Some(slot)) = (batch.get(i), slots.get(i)) else {
                            break;
                        };
                        let scanned = match std::fs::read(file) {
                            Ok(raw) => {
                                Scanned::Verdict(raw.len(), rules.scan_message(&raw, &input))
                            }
                            Err(e) => Scanned::Unreadable(e),
                        };
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(scanned);
                    }
                });
            }
        });
        for (file, slot) in batch.iter().zip(slots) {
            let scanned = slot.into_inner().unwrap_or_else(|p| p.into_inner());
            match scanned {
                Some(Scanned::Verdict(size, v)) => {
                    count += 1;
                    bytes += size as u64;
                    print_verdict(&mut out, file, &v, json)?;
                }
                Some(Scanned::Unreadable(e)) => {
                    eprintln!("gannet: {}: {e}", file.display());
                    failed = true;
                }
                None => failed = true,
            }
        }
    }
    out.flush()?;
    drop(out);
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "scanned {count} messages ({:.1} MB) in {seconds:.2} s: {:.0} messages/s on {jobs} \
         threads; rules loaded in {:.2} s; Bayes {}",
        bytes as f64 / 1e6,
        count as f64 / seconds.max(1e-9),
        load_time.as_secs_f64(),
        if store.is_some() { "read" } else { "not read" },
    );
    if let Some(owner) = store {
        owner.close();
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Files scanned per batch (their verdicts are held until the batch is written).
const SCAN_BATCH: usize = 4096;

/// One file's scan.
enum Scanned {
    /// Its size and verdict.
    Verdict(usize, gannet_core::filter::Verdict),
    Unreadable(std::io::Error),
}

/// One file's verdict: a line of JSON, or the score and the rules hit.
fn print_verdict(
    out: &mut impl std::io::Write,
    file: &std::path::Path,
    v: &gannet_core::filter::Verdict,
    json: bool,
) -> std::io::Result<()> {
    if json {
        let hits: Vec<serde_json::Value> = v
            .hits
            .iter()
            .map(|h| serde_json::json!({"name": h.name, "score": h.score}))
            .collect();
        let mut line =
            serde_json::json!({"file": file.display().to_string(), "score": v.score, "hits": hits});
        if let Some(b) = &v.bayes {
            line["bayes"] = serde_json::json!({"probability": b.probability, "tokens": b.tokens});
        }
        if let Some(e) = &v.error {
            line["error"] = serde_json::Value::from(e.as_str());
        }
        writeln!(out, "{line}")
    } else {
        writeln!(out, "{}: {:.1}", file.display(), v.score)?;
        if let Some(e) = &v.error {
            writeln!(out, "  error: {e}")?;
        }
        for h in &v.hits {
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

/// Messages sent to be counted at a time.
const LEARN_BATCH: usize = 256;

/// Learns (or forgets: `None`) the messages of each set of paths; a progress line on
/// standard error, a summary on standard output.
fn learn(
    config: &gannet_core::config::Config,
    sets: &[(Option<bool>, Vec<PathBuf>)],
    account: Option<String>,
) -> anyhow::Result<ExitCode> {
    let started = std::time::Instant::now();
    let mut link = AdminLink::new(&config.server.data_dir);
    let mut totals = [0usize; 5];
    let mut failed = false;
    let mut done = 0usize;
    for (spam, paths) in sets {
        let files = messages_in(paths, &mut failed);
        let count = files.len();
        for chunk in files.chunks(LEARN_BATCH) {
            let mut batch = LearnBatch {
                account: account.clone(),
                spam: *spam,
                messages: Vec::with_capacity(chunk.len()),
            };
            for message in chunk {
                match message.read() {
                    Ok(raw) => batch
                        .messages
                        .push(gannet_core::filter::bayes::learnable(&raw)),
                    Err(e) => {
                        eprintln!("gannet: {}: {e}", message.name());
                        failed = true;
                    }
                }
            }
            let outcome = link.run(&AdminCommand::Learn { batch })?;
            if !outcome.ok {
                link.close();
                anyhow::bail!("{}", String::from_utf8_lossy(&outcome.output).trim());
            }
            let text = String::from_utf8_lossy(&outcome.output);
            for (total, n) in totals.iter_mut().zip(text.split_whitespace()) {
                *total += n.parse::<usize>().unwrap_or(0);
            }
            done += chunk.len();
            let what = match spam {
                Some(true) => "spam",
                Some(false) => "ham",
                None => "forgotten",
            };
            eprint!("\r{what}: {done} of {count} messages");
        }
        if count > 0 {
            eprintln!();
        }
        done = 0;
    }
    link.close();
    let [learned, known, moved, forgotten, unknown] = totals;
    let seconds = started.elapsed().as_secs_f64();
    let all = learned + known + moved + forgotten + unknown;
    println!(
        "learned {learned}, already known {known}, moved {moved}, forgotten {forgotten}, \
         not known {unknown}: {all} messages in {seconds:.1} s ({:.0}/s)",
        all as f64 / seconds.max(1e-9)
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// One message to learn: a file, or one message of an mbox file.
enum Message {
    File(PathBuf),
    Mbox {
        path: PathBuf,
        index: usize,
        bytes: Vec<u8>,
    },
}

impl Message {
    fn name(&self) -> String {
        match self {
            Message::File(p) => p.display().to_string(),
            Message::Mbox { path, index, .. } => {
                format!("{} (message {})", path.display(), index + 1)
            }
        }
    }

    fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Message::File(p) => std::fs::read(p),
            Message::Mbox { bytes, .. } => Ok(bytes.clone()),
        }
    }
}

/// The messages under `paths`: files; directories, Maildirs included, searched
/// (sorted, at most 8 levels down); mbox files (that begin with "From ") split into their
/// messages.
fn messages_in(paths: &[PathBuf], failed: &mut bool) -> Vec<Message> {
    let mut out = Vec::new();
    for path in paths {
        collect(path, 0, &mut out, failed);
    }
    out
}

fn collect(path: &std::path::Path, depth: usize, out: &mut Vec<Message>, failed: &mut bool) {
    if path.is_dir() {
        if depth >= 8 {
            return;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut inside: Vec<PathBuf> =
                    entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
                inside.sort();
                for p in inside {
                    // A Maildir's tmp/ holds messages still being written.
                    if p.file_name().is_some_and(|n| n == "tmp") && path.join("cur").is_dir() {
                        continue;
                    }
                    collect(&p, depth + 1, out, failed);
                }
            }
            Err(e) => {
                eprintln!("gannet: {}: {e}", path.display());
                *failed = true;
            }
        }
        return;
    }
    let mut head = [0u8; 5];
    let is_mbox = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == b"From ");
    if !is_mbox {
        out.push(Message::File(path.to_path_buf()));
        return;
    }
    match std::fs::read(path) {
        Ok(bytes) => {
            for (index, message) in split_mbox(&bytes).into_iter().enumerate() {
                out.push(Message::Mbox {
                    path: path.to_path_buf(),
                    index,
                    bytes: message,
                });
            }
        }
        Err(e) => {
            eprintln!("gannet: {}: {e}", path.display());
            *failed = true;
        }
    }
}

/// The messages of an mbox file: each starts after a "From " line (at the start of the
/// file or after an empty line); ">From " quoting is undone.
fn split_mbox(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current: Option<Vec<u8>> = None;
    let mut previous_blank = true;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if previous_blank && line.starts_with(b"From ") {
            messages.extend(current.take());
            current = Some(Vec::new());
            previous_blank = false;
            continue;
        }
        previous_blank = line == b"\n" || line == b"\r\n";
        if let Some(m) = &mut current {
            let unquoted = match line.strip_prefix(b">") {
                Some(rest)
                    if rest
                        .iter()
                        .skip_while(|&&b| b == b'>')
                        .take(5)
                        .eq(b"From ".iter()) =>
                {
                    rest
                }
                _ => line,
            };
            m.extend_from_slice(unquoted);
        }
    }
    messages.extend(current);
    messages
}

#[cfg(test)]
mod tests {
    use super::split_mbox;

    #[test]
    fn mbox_files_split_into_messages() {
        let mbox = b"From a@b Mon Jan  1 00:00:00 2026\nSubject: one\n\nbody\n>From here\n\nFrom c@d Tue Jan  2 00:00:00 2026\nSubject: two\n\ntext\nFrom inside a line\n";
        let messages = split_mbox(mbox);
        assert_eq!(messages.len(), 2, "{messages:?}");
        assert_eq!(messages[0], b"Subject: one\n\nbody\nFrom here\n\n");
        // "From " after a line that is not blank stays in the message.
        assert_eq!(messages[1], b"Subject: two\n\ntext\nFrom inside a line\n");
    }
}
