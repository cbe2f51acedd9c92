//! `gannet spam …`: `scan` is [`crate::spam_scan`]; `status`, `expire` and `reports` are
//! admin commands.
//!
//! `gannet spam learn` and `forget`: the Bayes database. Messages are read and cut into
//! tokens here; batches of tokens go to the running server (or to the store, when none
//! runs), which counts them.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::admin::load_config;
use crate::cli::{AdminCommand, Global, LearnBatch, MailCommand, ReportsCommand, SpamCommand};
use crate::command_line::{run_and_print, AdminLink};

pub(crate) fn run(global: &Global, command: SpamCommand) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    match command {
        SpamCommand::Scan {
            files,
            json,
            jobs,
            local,
        } => crate::spam_scan::run(&config, files, json, jobs, local),
        SpamCommand::Learn { spam, ham, account } => {
            let sets = [(Some(true), spam), (Some(false), ham)];
            learn(&config, &sets, account)
        }
        SpamCommand::Forget { paths, account } => learn(&config, &[(None, paths)], account),
        SpamCommand::Status { account } => {
            run_and_print(&config, &AdminCommand::BayesStatus { account })
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
            run_and_print(&config, &command)
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
            run_and_print(&config, &command)
        }
    }
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
