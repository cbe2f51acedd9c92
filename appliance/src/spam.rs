//! `gannet spam scan`: score messages with the configured rules, without a server. A
//! directory stands for the files in it (sorted). A message whose scan fails is reported
//! with its error (scored as no rule hit) and the others are still scanned.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::admin::load_config;
use crate::cli::{Global, SpamCommand};

pub(crate) fn run(global: &Global, command: SpamCommand) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    let rules =
        gannet_core::filter::load(&config.spam.rules_dirs).context("loading the spam rules")?;
    let SpamCommand::Scan { files, json } = command;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = false;
    for file in expand(files, &mut failed) {
        let raw = match std::fs::read(&file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("gannet: {}: {e}", file.display());
                failed = true;
                continue;
            }
        };
        let v = rules.scan(&raw);
        if json {
            let hits: Vec<serde_json::Value> = v
                .hits
                .iter()
                .map(|h| serde_json::json!({"name": h.name, "score": h.score}))
                .collect();
            let mut line = serde_json::json!({"file": file.display().to_string(), "score": v.score, "hits": hits});
            if let Some(e) = &v.error {
                line["error"] = serde_json::Value::from(e.as_str());
            }
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}: {:.1}", file.display(), v.score)?;
            if let Some(e) = &v.error {
                writeln!(out, "  error: {e}")?;
            }
            for h in &v.hits {
                writeln!(out, "  {:<24} {:>5.1}  {}", h.name, h.score, h.describe)?;
            }
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
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
