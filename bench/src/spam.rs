//! The `spam` load: the spam engine alone, on one core, over a labelled corpus
//! (`DIR/ham`, `DIR/spam`), with the rules a server would load (the built-in ones plus
//! `--rules-dir`, for example `/usr/share/spamassassin`). Messages are read into memory
//! first; one untimed pass warms the regex caches, then each run scans every message
//! once. Prints messages/s and MB/s per run and their median, and the verdicts at the
//! thresholds asked for (spam caught, ham wrongly flagged).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;

#[derive(clap::Args)]
pub struct Options {
    /// A directory with `ham/` and `spam/` subdirectories of messages.
    corpus: PathBuf,
    /// Directories of `.cf` rule files loaded after the built-in rules.
    #[arg(long = "rules-dir")]
    rules_dirs: Vec<PathBuf>,
    /// Timed runs over the whole corpus.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Scores at or above which a message counts as spam, comma-separated
    /// (Gannet's levels: high 5, medium 10, low 15).
    #[arg(long, default_value = "5,10")]
    thresholds: String,
    /// Stop a run after this many seconds (the run's count is then partial).
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// After the runs, one profiled pass: where the time goes (view, prefilter per kind,
    /// rules by engine and kind) and the N costliest rules.
    #[arg(long, value_name = "N")]
    rule_costs: Option<usize>,
    /// Profiles the first, untimed pass instead (regexes compiled and lazy DFA states
    /// built on first use: what a one-shot `gannet spam scan` pays) and prints it as
    /// `--rule-costs` does, with the N costliest rules.
    #[arg(long, value_name = "N", conflicts_with = "bayes_data")]
    cold_costs: Option<usize>,
    /// Writes every regex rule to FILE, one a line: kind, engine, name, flags and the
    /// pattern as compiled (ReplaceTags expanded; newlines as `\n`), tab-separated (for
    /// other engines' probes, such as bench/hyperscan-probe.c).
    #[arg(long, value_name = "FILE")]
    dump_regexes: Option<PathBuf>,
    /// A gannet data directory whose Bayes database (trained with `gannet spam learn`)
    /// the scans read, as delivery does once it is ready. Each run then scans every
    /// message twice, without and with Bayes, and the two rates are printed side by side.
    #[arg(long, value_name = "DATA_DIR")]
    bayes_data: Option<PathBuf>,
}

/// One scan: the rules alone, or with the Bayes database as delivery reads it.
fn scan_one(
    rules: &gannet_core::filter::Ruleset,
    learned: Option<&gannet_core::store::bayes::StoreLearned<'_>>,
    raw: &[u8],
) -> gannet_core::filter::Verdict {
    let input = gannet_core::filter::ScanInput {
        facts: &[],
        network: false,
        bayes: learned.map(|l| l as &dyn gannet_core::filter::bayes::Learned),
    };
    rules.scan_message(raw, &input)
}

/// Runs without and with Bayes, alternating so that both see the same machine: each
/// rate, and the median cost of Bayes.
fn bayes_runs(
    opts: &Options,
    rules: &gannet_core::filter::Ruleset,
    learned: &gannet_core::store::bayes::StoreLearned<'_>,
    messages: &[(PathBuf, bool, Vec<u8>)],
) {
    let mut costs = Vec::new();
    for run in 1..=opts.runs {
        let mut rates = [0.0f64; 2];
        for (i, with) in [None, Some(learned)].into_iter().enumerate() {
            let t = Instant::now();
            for m in messages {
                std::hint::black_box(scan_one(rules, with, &m.2));
            }
            rates[i] = messages.len() as f64 / t.elapsed().as_secs_f64();
        }
        let cost = rates[0] / rates[1] - 1.0;
        println!(
            "bayes run {run}: without {:.0} msgs/s, with {:.0} msgs/s: Bayes costs {:+.1}%",
            rates[0],
            rates[1],
            100.0 * cost
        );
        costs.push(cost);
    }
    costs.sort_by(f64::total_cmp);
    if let Some(c) = costs.get(costs.len() / 2) {
        println!("bayes median cost: {:+.1}% time per message", 100.0 * c);
    }
}

fn read_dir(dir: &Path, spam: bool, out: &mut Vec<(PathBuf, bool, Vec<u8>)>) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        out.push((f, spam, bytes));
    }
    Ok(())
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    let mut messages = Vec::new();
    read_dir(&opts.corpus.join("ham"), false, &mut messages)?;
    read_dir(&opts.corpus.join("spam"), true, &mut messages)?;
    anyhow::ensure!(
        !messages.is_empty(),
        "no messages under {}",
        opts.corpus.display()
    );
    let bytes: usize = messages.iter().map(|m| m.2.len()).sum();
    let t = Instant::now();
    let rules = gannet_core::filter::load(&opts.rules_dirs).context("loading rules")?;
    println!(
        "rules: {} loaded in {:.2} s; {} messages, {:.1} MB",
        rules.report.loaded,
        t.elapsed().as_secs_f64(),
        messages.len(),
        bytes as f64 / 1e6
    );
    let owner = match &opts.bayes_data {
        Some(dir) => Some(
            gannet_core::store::Store::open(&dir.join("store"))
                .with_context(|| format!("opening the store in {}", dir.display()))?,
        ),
        None => None,
    };
    let learned = owner
        .as_ref()
        .map(|o| gannet_core::store::bayes::StoreLearned {
            store: o.store(),
            scope: 0,
        });
    if let Some(l) = &learned {
        use gannet_core::filter::bayes::Learned;
        let t = l.totals();
        println!("bayes: {} spam, {} ham learned", t.spam, t.ham);
        anyhow::ensure!(t.ready(), "the Bayes database is not ready (200 of each)");
    }
    if let Some(path) = &opts.dump_regexes {
        dump_regexes(&rules, path)?;
    }
    // Untimed pass: per-regex caches are built on first use. Its scores are the verdicts
    // (with Bayes when it is given).
    let mut cold = gannet_core::filter::RuleCosts::default();
    let scores: Vec<f64> = messages
        .iter()
        .map(|m| match opts.cold_costs {
            Some(_) => rules.scan_profiled(&m.2, &mut cold).score,
            None => scan_one(&rules, learned.as_ref(), &m.2).score,
        })
        .collect();
    if let Some(top) = opts.cold_costs {
        println!("the first (cold) pass:");
        print_costs(&rules, &cold, top, messages.len());
    }
    if let Some(l) = &learned {
        bayes_runs(&opts, &rules, l, &messages);
    }
    let mut rates = Vec::new();
    let mut cpu_rates = Vec::new();
    for run in 1..=opts.runs {
        let t = Instant::now();
        let cpu = thread_cpu_seconds();
        let mut done = 0usize;
        let mut done_bytes = 0usize;
        for m in &messages {
            std::hint::black_box(rules.scan(&m.2));
            done += 1;
            done_bytes += m.2.len();
            if t.elapsed().as_secs() >= opts.max_seconds {
                break;
            }
        }
        let secs = t.elapsed().as_secs_f64();
        let rate = done as f64 / secs;
        let cpu = match (cpu, thread_cpu_seconds()) {
            (Some(a), Some(b)) if b > a => {
                cpu_rates.push(done as f64 / (b - a));
                format!(", {:.0} msgs per CPU-second", done as f64 / (b - a))
            }
            _ => String::new(),
        };
        println!(
            "run {run}: {done} messages in {secs:.2} s: {rate:.0} msgs/s, {:.2} MB/s, {:.2} ms/msg{cpu}",
            done_bytes as f64 / 1e6 / secs,
            1000.0 * secs / done as f64
        );
        rates.push((rate, done_bytes as f64 / 1e6 / secs));
    }
    rates.sort_by(|a, b| a.0.total_cmp(&b.0));
    cpu_rates.sort_by(f64::total_cmp);
    if let Some((rate, mbs)) = rates.get(rates.len() / 2) {
        println!("median: {rate:.0} msgs/s, {mbs:.2} MB/s (one core)");
    }
    if let Some(rate) = cpu_rates.get(cpu_rates.len() / 2) {
        println!("median: {rate:.0} msgs per CPU-second (time this thread was on a CPU)");
    }
    if let Some(o) = owner {
        o.close();
    }
    if let Some(top) = opts.rule_costs {
        let mut costs = gannet_core::filter::RuleCosts::default();
        for m in &messages {
            std::hint::black_box(rules.scan_profiled(&m.2, &mut costs));
        }
        print_costs(&rules, &costs, top, messages.len());
    }
    let spam_total = messages.iter().filter(|m| m.1).count();
    let ham_total = messages.len() - spam_total;
    for th in opts
        .thresholds
        .split(',')
        .filter_map(|t| t.trim().parse::<f64>().ok())
    {
        let caught = messages
            .iter()
            .zip(&scores)
            .filter(|(m, s)| m.1 && **s >= th)
            .count();
        let flagged = messages
            .iter()
            .zip(&scores)
            .filter(|(m, s)| !m.1 && **s >= th)
            .count();
        println!(
            "threshold {th}: spam caught {caught}/{spam_total} = {:.1}%, ham flagged {flagged}/{ham_total} = {:.1}%",
            100.0 * caught as f64 / spam_total.max(1) as f64,
            100.0 * flagged as f64 / ham_total.max(1) as f64
        );
    }
    Ok(())
}

/// The regex rules, one a line, for `--dump-regexes`.
fn dump_regexes(rules: &gannet_core::filter::Ruleset, path: &Path) -> anyhow::Result<()> {
    use gannet_core::filter::compile::CompiledTest;
    let mut out = String::new();
    for rule in &rules.rules {
        if let CompiledTest::Regex { matcher, .. } = &rule.test {
            let (pattern, flags) = matcher.source();
            out.push_str(&format!(
                "{:?}\t{:?}\t{}\t{flags}\t{}\n",
                rule.kind,
                matcher.engine(),
                rule.name,
                pattern.replace('\n', "\\n")
            ));
        }
    }
    std::fs::write(path, out).with_context(|| format!("writing {}", path.display()))
}

/// The profile of one pass: totals per stage, per (kind, engine), then the costliest rules.
fn print_costs(
    rules: &gannet_core::filter::Ruleset,
    costs: &gannet_core::filter::RuleCosts,
    top: usize,
    messages: usize,
) {
    use gannet_core::filter::compile::{CompiledTest, Engine};
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    let engine = |i: usize| match &rules.rules[i].test {
        CompiledTest::Regex { matcher, .. } => match matcher.engine() {
            Engine::Octets | Engine::Unicode => "regex",
            Engine::Backtracking { gated: true } => "pcre2+gate",
            Engine::Backtracking { gated: false } => "pcre2",
        },
        CompiledTest::Eval { .. } | CompiledTest::HtmlText { .. } => "eval",
        CompiledTest::Exists(_) => "exists",
        CompiledTest::Meta(_) => "meta",
    };
    let atomless: std::collections::HashSet<usize> = rules
        .prefilters
        .values()
        .flat_map(|p| p.always.iter().chain(&p.chained).copied())
        .collect();
    println!("profile over {messages} messages (ms in all):");
    println!("  view {:.1}", ms(costs.view));
    let mut pre: Vec<_> = costs.prefilter.iter().collect();
    pre.sort_by_key(|(k, _)| **k);
    for (kind, d) in pre {
        println!("  prefilter {kind:?} {:.1}", ms(*d));
    }
    let mut groups: std::collections::BTreeMap<(String, &str, bool), (f64, usize)> =
        Default::default();
    for (i, d) in costs.rule_time.iter().enumerate() {
        if costs.rule_runs[i] == 0 {
            continue;
        }
        let g = groups
            .entry((
                format!("{:?}", rules.rules[i].kind),
                engine(i),
                atomless.contains(&i),
            ))
            .or_default();
        g.0 += ms(*d);
        g.1 += 1;
    }
    for ((kind, engine, atomless), (t, n)) in groups {
        let atoms = if atomless { "no atom" } else { "atoms" };
        println!("  rules {kind} {engine} ({atoms}): {n} rules, {t:.1}");
    }
    let mut order: Vec<usize> = (0..costs.rule_time.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(costs.rule_time[i]));
    println!("costliest rules: ms in all, messages that ran it (that it matched), µs per run");
    for &i in order.iter().take(top) {
        let runs = costs.rule_runs[i].max(1);
        println!(
            "  {:<32} {:?} {} {}: {:.1} ms, {} runs ({} hits), {:.1} µs",
            rules.rules[i].name,
            rules.rules[i].kind,
            engine(i),
            if atomless.contains(&i) {
                "no-atom"
            } else {
                "atoms"
            },
            ms(costs.rule_time[i]),
            costs.rule_runs[i],
            costs.rule_hits[i],
            ms(costs.rule_time[i]) * 1000.0 / runs as f64
        );
    }
}

/// Time the calling thread has spent on a CPU (Linux's schedstat, in nanoseconds): on a
/// shared machine a steadier measure of work than the wall clock, which also counts the
/// time other processes held the core.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}
