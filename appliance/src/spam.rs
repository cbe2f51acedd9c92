//! `gannet spam scan`: score messages with the configured rules, without a server.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context;

use crate::admin::load_config;
use crate::cli::{Global, SpamCommand};

pub fn run(global: &Global, command: SpamCommand) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    let rules =
        gannet_core::filter::load(&config.spam.rules_dirs).context("loading the spam rules")?;
    let SpamCommand::Scan { files, json } = command;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = false;
    for file in files {
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
            let line = serde_json::json!({"file": file.display().to_string(), "score": v.score, "hits": hits});
            writeln!(out, "{line}")?;
        } else {
            writeln!(out, "{}: {:.1}", file.display(), v.score)?;
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
