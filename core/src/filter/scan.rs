//! Scanning a message: every rule that applies, the total score, and the verdict headers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::actions::Actions;
use super::compile::{CompiledTest, HtmlText, Ruleset, ScoreSet};
use super::eval;
use super::rules::{HeaderSource, Kind};
use crate::mime::view::MessageView;

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub name: String,
    pub score: f64,
    pub describe: String,
}

/// The outcome of one scan: the total and the rules that fired (sub-rules excluded).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Verdict {
    pub score: f64,
    pub hits: Vec<Hit>,
    /// The ruleset's `add_header` and Subject tag settings.
    pub actions: Option<std::sync::Arc<Actions>>,
    /// Why the scan failed, if it did (a bug met on this message): it is then scored as
    /// if no rule hit.
    pub error: Option<String>,
    /// The score set the rules scored in.
    pub score_set: ScoreSet,
    /// The Bayes classifier's verdict, when it gave one.
    pub bayes: Option<super::bayes::Verdict>,
}

/// What a scan is told besides the message.
#[derive(Default, Clone, Copy)]
pub struct ScanInput<'a> {
    /// The rules that fired in the network tests answered before the scan (SPF,
    /// blocklists).
    pub facts: &'a [String],
    /// The network tests ran: the rules score in the sets with network tests.
    pub network: bool,
    /// The learned Bayes database to ask.
    pub bayes: Option<&'a dyn super::bayes::Learned>,
}

impl Verdict {
    /// `X-Spam-*` headers for a recipient whose threshold is `required` (None: the
    /// filter is off or the sender whitelisted, so the message is not spam).
    pub fn headers(&self, required: Option<f64>) -> String {
        let spam = required.is_some_and(|r| self.score >= r);
        let required_value = required;
        let stars = "*".repeat(self.score.clamp(0.0, 50.0) as usize);
        let tests: Vec<&str> = self.hits.iter().map(|h| h.name.as_str()).collect();
        // The Bayes probability, when the classifier gave one (SpamAssassin's _BAYES_).
        let bayes = self
            .bayes
            .map(|b| format!(" bayes={:.4}", b.probability))
            .unwrap_or_default();
        let mut h = String::new();
        if spam {
            h.push_str("X-Spam-Flag: YES\r\n");
        }
        h.push_str(&format!("X-Spam-Score: {:.1}\r\n", self.score));
        h.push_str(&format!("X-Spam-Level: {stars}\r\n"));
        let required = required.map_or_else(|| "none".to_string(), |r| format!("{r:.1}"));
        h.push_str(&format!(
            "X-Spam-Status: {}, score={:.1} required={required} tests={}{bayes}\r\n",
            if spam { "Yes" } else { "No" },
            self.score,
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(",")
            }
        ));
        if let Some(a) = &self.actions {
            h.push_str(&a.headers(self, required_value, spam));
        }
        h
    }

    /// Adds a hit found outside the rules (an SPF result): scored as the ruleset scores
    /// a rule of that name, 0 if it has none.
    pub fn add_hit(&mut self, rules: &Ruleset, name: &str, describe: &str) {
        let set = self.score_set.index();
        let score = rules
            .by_name
            .get(name)
            .map_or(0.0, |&i| rules.rules[i].scores[set]);
        self.add_scored_hit(name, score, describe);
    }

    /// Adds a hit with its own score (a blocklist's configured weight).
    pub fn add_scored_hit(&mut self, name: &str, score: f64, describe: &str) {
        self.score = ((self.score + score) * 1000.0).round() / 1000.0;
        self.hits.push(Hit {
            name: name.to_string(),
            score,
            describe: describe.to_string(),
        });
        self.hits.sort_by(|a, b| a.name.cmp(&b.name));
    }

    /// The Subject prefix for a recipient whose threshold is `required`, if the rules
    /// set one (`rewrite_header Subject`) and the message is spam for them.
    pub fn subject_tag(&self, required: Option<f64>) -> Option<String> {
        let spam = required.is_some_and(|r| self.score >= r);
        self.actions.as_ref()?.subject_tag(self, required, spam)
    }
}

/// The text a header rule matches, as SpamAssassin's `get`: the values of the header
/// (RFC 2047-decoded, or as written with `:raw`), one per line, in message order; with
/// `:first`/`:last` only one of them; with `:addr` or `:name` every address or display
/// name they hold, one per line. None when the message has no such header.
pub(super) fn header_text<'a>(view: &'a MessageView, source: &HeaderSource) -> Option<String> {
    let raw = source.has("raw");
    let value = |f: &'a crate::mime::view::Field| -> &'a str {
        if raw {
            &f.raw
        } else {
            &f.value
        }
    };
    // The values of the headers named, by name, each in message order.
    let of = |names: &[&str]| -> Vec<Line<'a>> {
        names
            .iter()
            .flat_map(|n| view.header_values(n).map(|f| Line::Value(value(f))))
            .collect()
    };
    let mut lines: Vec<Line<'a>> = match source.name.as_str() {
        "ALL" => view
            .headers
            .iter()
            .map(|f| Line::Named(&f.name, value(f)))
            .collect(),
        // The headers external relays may have written: from the Received header of the
        // first external relay (the last internal one's included, as SpamAssassin's) on;
        // and the internal ones: up to that header.
        name @ ("ALL-EXTERNAL" | "ALL-UNTRUSTED" | "ALL-INTERNAL" | "ALL-TRUSTED") => {
            let external = matches!(name, "ALL-EXTERNAL" | "ALL-UNTRUSTED");
            let start = view.relays.internal_received;
            let mut received = -1i64;
            let mut lines = Vec::new();
            for f in &view.headers {
                if f.name.eq_ignore_ascii_case("Received") {
                    received += 1;
                }
                let keep = if external {
                    received >= start as i64
                } else {
                    received <= start as i64
                };
                if keep {
                    lines.push(Line::Named(&f.name, value(f)));
                } else if !external {
                    break;
                }
            }
            lines
        }
        "ToCc" => of(&["To", "Cc"]),
        "MESSAGEID" => of(&[
            "X-Message-Id",
            "Resent-Message-Id",
            "X-Original-Message-ID",
            "Message-Id",
        ])
        .into_iter()
        .filter(|line| !matches!(line, Line::Value("")))
        .collect(),
        "EnvelopeFrom" => {
            let sender = envelope_from(view)?;
            return header_text_of(vec![Line::Value(&sender)], source);
        }
        name if name.len() > 14
            && name
                .as_bytes()
                .get(..14)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"X-Spam-Relays-")) =>
        {
            return view.relays.header(name);
        }
        name => of(&[name]),
    };
    if source.has("first") {
        lines.truncate(1);
    } else if source.has("last") && !lines.is_empty() {
        lines.drain(..lines.len() - 1);
    }
    header_text_of(lines, source)
}

/// One value of a header text: a header's value, or (for `ALL`) its name and value.
#[derive(Clone, Copy)]
enum Line<'a> {
    Value(&'a str),
    Named(&'a str, &'a str),
}

impl Line<'_> {
    fn push_to(self, text: &mut String) {
        match self {
            Line::Value(v) => text.push_str(v),
            Line::Named(name, v) => {
                text.push_str(name);
                text.push_str(": ");
                text.push_str(v);
            }
        }
    }

    fn len(self) -> usize {
        match self {
            Line::Value(v) => v.len(),
            Line::Named(name, v) => name.len() + 2 + v.len(),
        }
    }
}

/// The text of [`header_text`] from its chosen values: with `:addr` or `:name` the
/// addresses or display names they hold, one per line; else the values one per line.
fn header_text_of(lines: Vec<Line<'_>>, source: &HeaderSource) -> Option<String> {
    if source.has("addr") || source.has("name") {
        let read = if source.has("addr") {
            addresses
        } else {
            display_names
        };
        let values: Vec<String> = lines
            .iter()
            .flat_map(|&line| match line {
                Line::Value(v) => read(v),
                Line::Named(..) => {
                    let mut whole = String::with_capacity(line.len());
                    line.push_to(&mut whole);
                    read(&whole)
                }
            })
            .collect();
        return (!values.is_empty()).then(|| values.join("\n"));
    }
    if lines.is_empty() {
        return None;
    }
    let mut text = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for (i, line) in lines.into_iter().enumerate() {
        if i > 0 {
            text.push('\n');
        }
        line.push_to(&mut text);
    }
    Some(text)
}

/// The comma-separated entries of an address header, commas inside quotes, angle
/// brackets and comments kept.
fn address_entries(value: &str) -> Vec<&str> {
    let (mut depth, mut quoted) = (0i32, false);
    let separates = |c: char| {
        match c {
            '"' => quoted = !quoted,
            '<' | '(' if !quoted => depth += 1,
            '>' | ')' if !quoted => depth -= 1,
            ',' if !quoted && depth <= 0 => return true,
            _ => {}
        }
        false
    };
    value
        .split(separates)
        .filter(|e| !e.trim().is_empty())
        .collect()
}

/// The envelope sender, as SpamAssassin 4's `get_envelope_from` finds it: the
/// `envelope-from` the last untrusted relay's Received header recorded (else the first
/// trusted one's); none when an `X-Sender` comes with a fetchmail `Received` (the mail
/// was fetched: its envelope is the fetcher's); else `X-Envelope-From` (none if it comes
/// after a `Received`), `Envelope-Sender`, `Return-Path` (each passed over if it comes
/// after a `Received`: a relay or list added it, not this delivery).
fn envelope_from(view: &MessageView) -> Option<String> {
    let last_hop = view
        .relays
        .untrusted
        .first()
        .or_else(|| view.relays.trusted.last());
    if let Some(hop) = last_hop.filter(|h| h.envfrom.find('@').is_some_and(|at| at > 0)) {
        return Some(hop.envfrom.clone());
    }
    let fetched = view
        .header_values("X-Sender")
        .any(|f| f.value.contains('@'))
        && view
            .header_values("Received")
            .any(|f| f.raw.contains("(fetchmail"));
    if fetched {
        return None;
    }
    let first_received = view
        .headers
        .iter()
        .position(|f| f.name.eq_ignore_ascii_case("Received"));
    for name in ["X-Envelope-From", "Envelope-Sender", "Return-Path"] {
        let Some(first) = view
            .headers
            .iter()
            .position(|f| f.name.eq_ignore_ascii_case(name))
        else {
            continue;
        };
        let after_received = view.headers.iter().enumerate().any(|(i, f)| {
            f.name.eq_ignore_ascii_case(name) && first_received.is_some_and(|r| i > r)
        });
        match (after_received, name) {
            (true, "X-Envelope-From") => return None,
            (true, _) => continue,
            (false, _) => {
                return view
                    .headers
                    .get(first)
                    .and_then(|f| addresses(&f.value).into_iter().next())
            }
        }
    }
    None
}

/// The addresses of a header value: what is in angle brackets, else the bare word.
fn addresses(value: &str) -> Vec<String> {
    address_entries(value)
        .into_iter()
        .filter_map(|e| {
            // The last `<...>`, if the last '>' comes after the last '<'.
            let bracketed = e
                .rsplit_once('<')
                .and_then(|(_, inner)| inner.rsplit_once('>'));
            let a = match bracketed {
                Some((address, _)) => address.trim(),
                None => e.split('(').next().unwrap_or("").trim(),
            };
            (!a.is_empty()).then(|| a.to_string())
        })
        .collect()
}

/// The display names of a header value (the phrase before `<`, or a trailing comment).
fn display_names(value: &str) -> Vec<String> {
    address_entries(value)
        .into_iter()
        .filter_map(|e| {
            let name = match e.rsplit_once('<') {
                Some((phrase, _)) => phrase.trim(),
                None => e
                    .split_once('(')
                    .map_or("", |(_, comment)| comment.trim_end().trim_end_matches(')')),
            };
            let name = name.trim().trim_matches('"').trim();
            let name = name
                .strip_prefix('\'')
                .and_then(|n| n.strip_suffix('\''))
                .unwrap_or(name);
            (!name.is_empty()).then(|| name.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .collect()
}

/// Where a scan's time goes, summed over the messages of [`Ruleset::scan_profiled`]:
/// building the view, each kind's prefilter pass, and each rule's own test (a meta's
/// expression is not timed: its time is that of the rules it reads).
#[derive(Debug, Clone, Default)]
pub struct RuleCosts {
    pub view: Duration,
    pub prefilter: HashMap<Kind, Duration>,
    /// Per rule (by index): time spent in its test, and how many messages ran it.
    pub rule_time: Vec<Duration>,
    pub rule_runs: Vec<u32>,
    /// Per rule: how many of those runs it matched.
    pub rule_hits: Vec<u32>,
}

impl Ruleset {
    /// Scans a raw message.
    pub fn scan(&self, raw: &[u8]) -> Verdict {
        self.scan_with_facts(raw, &[])
    }

    /// Scans a raw message whose network tests were answered before: `facts` names the
    /// rules that fired there (`SPF_PASS`, a blocklist's rule), so that the metas reading
    /// them see them. Their own hits are not in the verdict: the caller adds them
    /// ([`Verdict::add_hit`]).
    pub fn scan_with_facts(&self, raw: &[u8], facts: &[String]) -> Verdict {
        self.scan_message(
            raw,
            &ScanInput {
                facts,
                ..ScanInput::default()
            },
        )
    }

    /// Scans a raw message with what is known besides it: network test results, and the
    /// Bayes database (its verdict hits the `check_bayes` rules, and the rules score in
    /// the Bayes score sets).
    pub fn scan_message(&self, raw: &[u8], input: &ScanInput<'_>) -> Verdict {
        self.guarded(|| {
            let view = MessageView::new(raw);
            self.scan_with(&view, raw, None, input)
        })
    }

    /// Scans a raw message, adding where the time went to `costs` (slower than `scan`).
    pub fn scan_profiled(&self, raw: &[u8], costs: &mut RuleCosts) -> Verdict {
        self.guarded(|| {
            let t = Instant::now();
            let view = MessageView::new(raw);
            costs.view += t.elapsed();
            costs.rule_time.resize(self.rules.len(), Duration::ZERO);
            costs.rule_runs.resize(self.rules.len(), 0);
            costs.rule_hits.resize(self.rules.len(), 0);
            self.scan_with(&view, raw, Some(costs), &ScanInput::default())
        })
    }

    /// Runs a scan; one that panics (a bug this message met in the view or a rule) gives
    /// a verdict of no hits with the error, logged, instead of taking the connection or
    /// the batch down with it. The last line of defence: the view is meant not to panic
    /// on any bytes. (A stack overflow is no panic: [`crate::mime::depth`] prevents it.)
    fn guarded(&self, scan: impl FnOnce() -> Verdict) -> Verdict {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(scan)) {
            Ok(v) => v,
            Err(payload) => {
                let why = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                tracing::error!(error = %why, "spam scan failed: message scored as no rule hit");
                Verdict {
                    actions: Some(self.actions.clone()),
                    error: Some(format!("scan failed: {why}")),
                    ..Verdict::default()
                }
            }
        }
    }

    pub fn scan_view(&self, view: &MessageView, raw: &[u8]) -> Verdict {
        self.scan_with(view, raw, None, &ScanInput::default())
    }

    fn scan_with(
        &self,
        view: &MessageView,
        raw: &[u8],
        mut costs: Option<&mut RuleCosts>,
        input: &ScanInput<'_>,
    ) -> Verdict {
        let bayes = input.bayes.and_then(|learned| {
            let totals = learned.totals();
            if !totals.ready() {
                return None;
            }
            let tokens = super::bayes::tokens(view);
            super::bayes::classify(learned.counts(&tokens), totals)
        });
        let score_set = ScoreSet {
            bayes: bayes.is_some(),
            network: input.network,
        };
        let facts = input.facts;
        let uri_text = view.uris.join("\n");
        let full = crate::mime::lossy_utf8(raw);
        // Header rules: one prefilter pass over every header (decoded and raw).
        // The relay pseudo-headers are in the block, as header rules read them too.
        let mut header_block = String::new();
        for f in &view.headers {
            for piece in [&f.name, ": ", &f.value, "\n"] {
                header_block.push_str(piece);
            }
            // The raw form only where decoding changed it: its atoms are the same.
            if f.raw != f.value {
                header_block.push_str(&f.raw);
                header_block.push('\n');
            }
        }
        for name in ["X-Spam-Relays-Trusted", "X-Spam-Relays-Untrusted"] {
            if let Some(value) = view.relays.header(name) {
                header_block.push_str(&format!("{name}: {value}\n"));
            }
        }
        let texts = [
            (Kind::Body, view.body.as_str()),
            (Kind::RawBody, view.rawbody.as_str()),
            (Kind::Uri, uri_text.as_str()),
            (Kind::Full, &*full),
            (Kind::Header, header_block.as_str()),
        ];
        // Each rule's value as far as the prefilter knows it: 0 for a rule of a prefiltered
        // kind whose atoms do not occur (most of the rules the verdict asks about: that
        // answer is then one array read), not yet computed for the others.
        let mut values: Vec<f64> = (self.prefiltered.iter())
            .map(|&prefiltered| if prefiltered { 0.0 } else { NOT_YET })
            .collect();
        let mut found = Vec::new();
        let mut spots = Vec::new();
        for (kind, text) in texts {
            found.clear();
            let t = Instant::now();
            let spots = (kind == Kind::Body).then_some(&mut spots);
            self.candidates_at(kind, text, &mut found, spots);
            if let Some(c) = costs.as_deref_mut() {
                *c.prefilter.entry(kind).or_default() += t.elapsed();
            }
            for &i in &found {
                values[i] = NOT_YET;
            }
        }
        let (paragraphs, ruled_out) = Paragraphs::new(&view.body, spots, &self.atom_times);
        for i in ruled_out {
            if self.prefiltered[i] {
                values[i] = 0.0;
            }
        }
        let mut scan = Scan {
            rules: self,
            view,
            texts,
            paragraphs,
            header_texts: vec![None; self.header_sources],
            eval_memo: eval::Memo::default(),
            values,
            costs,
            facts,
            bayes: bayes.map(|v| v.probability),
        };
        // Rules that score are evaluated; the sub-rules and metas they read only when
        // an expression needs them (`A && B` does not read B when A is 0).
        let mut verdict = Verdict {
            actions: Some(self.actions.clone()),
            score_set,
            bayes,
            ..Verdict::default()
        };
        let set = score_set.index();
        for &i in &self.scored {
            if scan.value(i) != 0.0 {
                let rule = &self.rules[i];
                verdict.score += rule.scores[set];
                verdict.hits.push(Hit {
                    name: rule.name.clone(),
                    score: rule.scores[set],
                    describe: rule.describe.clone(),
                });
            }
        }
        verdict.hits.sort_by(|a, b| a.name.cmp(&b.name));
        verdict.score = (verdict.score * 1000.0).round() / 1000.0;
        verdict
    }
}

/// The body's paragraphs (its lines) and, for each body rule found by its atoms, the
/// paragraphs they are in. SpamAssassin matches body rules one paragraph at a time, so a
/// rule with atoms runs on those paragraphs only, and only on those that hold as many of
/// them as a match needs.
struct Paragraphs<'a> {
    /// The paragraphs, each with its newline (the last one's if the body has one).
    lines: Vec<&'a str>,
    /// Where each paragraph starts in the body.
    starts: Vec<usize>,
    /// (rule, paragraph), sorted, for the rules with few enough paragraphs.
    spots: Vec<(usize, usize)>,
    /// (rule, offset in the body) of every atom found, sorted.
    atoms: Vec<(usize, usize)>,
}

/// A rule whose atoms are in more paragraphs than this runs once over the whole body.
const MAX_PARAGRAPHS_PER_RULE: usize = 16;

impl<'a> Paragraphs<'a> {
    /// From the (rule, offset) of every atom found in the body and how many atoms (at
    /// distinct offsets) a match of each rule holds ([`Ruleset::atom_times`]): the
    /// paragraphs, and the rules that no paragraph has enough atoms for.
    fn new(
        body: &'a str,
        mut atom_offsets: Vec<(usize, usize)>,
        times: &[u32],
    ) -> (Paragraphs<'a>, Vec<usize>) {
        let starts: Vec<usize> = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', body.as_bytes()).map(|i| i + 1))
            .collect();
        atom_offsets.sort_unstable();
        atom_offsets.dedup();
        let spots: Vec<(usize, usize)> = atom_offsets
            .iter()
            .map(|&(rule, at)| (rule, starts.partition_point(|&s| s <= at) - 1))
            .collect();
        let mut kept = Vec::with_capacity(spots.len());
        let mut ruled_out = Vec::new();
        let mut paragraphs = Vec::new();
        for group in spots.chunk_by(|a, b| a.0 == b.0) {
            let rule = group[0].0;
            let needed = times.get(rule).copied().unwrap_or(1) as usize;
            paragraphs.clear();
            // (The offsets were distinct and sorted: equal paragraphs are adjacent.)
            for same in group.chunk_by(|a, b| a.1 == b.1) {
                if same.len() >= needed {
                    paragraphs.push(same[0]);
                }
            }
            if paragraphs.is_empty() {
                ruled_out.push(rule);
            } else if paragraphs.len() <= MAX_PARAGRAPHS_PER_RULE {
                kept.extend_from_slice(&paragraphs);
            }
            // Else the atoms are everywhere: the whole body is cheaper than many calls.
        }
        let paragraphs = Paragraphs {
            // Each with its newline, as SpamAssassin's body array has them: a pattern that
            // needs white space before `$` matches the line's end.
            lines: body.split_inclusive('\n').collect(),
            starts,
            spots: kept,
            atoms: atom_offsets,
        };
        (paragraphs, ruled_out)
    }

    fn range(&self, rule: usize) -> std::ops::Range<usize> {
        let from = self.spots.partition_point(|s| s.0 < rule);
        let to = self.spots.partition_point(|s| s.0 <= rule);
        from..to
    }

    fn has_spots(&self, rule: usize) -> bool {
        !self.range(rule).is_empty()
    }

    /// The paragraphs where the rule's atoms are, with their newline, and their indexes.
    fn of(&self, rule: usize) -> impl Iterator<Item = (usize, &'a str)> + '_ {
        self.spots[self.range(rule)]
            .iter()
            .map(|&(_, p)| (p, self.lines.get(p).copied().unwrap_or_default()))
    }

    /// The parts of paragraph `p` (offsets in it) within `reach` bytes of the rule's atoms
    /// there, overlapping ones merged. A match holds one of the rule's atoms: if a match
    /// spans at most `reach` bytes, it lies in one of these windows.
    fn windows(&self, rule: usize, p: usize, reach: usize) -> Vec<std::ops::Range<usize>> {
        let start = self.starts.get(p).copied().unwrap_or(0);
        let len = self.lines.get(p).map_or(0, |l| l.len());
        let from = self.atoms.partition_point(|&a| a < (rule, start));
        let to = self.atoms.partition_point(|&a| a < (rule, start + len));
        let mut windows: Vec<std::ops::Range<usize>> = Vec::new();
        for &(_, at) in self.atoms.get(from..to).unwrap_or_default() {
            let at = at - start;
            let window = at.saturating_sub(reach)..(at + reach + 1).min(len);
            match windows.last_mut() {
                Some(last) if window.start <= last.end => last.end = last.end.max(window.end),
                _ => windows.push(window),
            }
        }
        windows
    }
}

/// One message being scanned: the texts rules read, the rules the prefilter named, and
/// each rule's value once it has been needed.
struct Scan<'a, 'c> {
    rules: &'a Ruleset,
    view: &'a MessageView,
    texts: [(Kind, &'a str); 5],
    /// Where in the body each body rule's atoms are.
    paragraphs: Paragraphs<'a>,
    /// The text of each header source read so far (by [`Ruleset::header_source`]):
    /// None until read, then the text or None if the message has no such header.
    header_texts: Vec<Option<Option<String>>>,
    eval_memo: eval::Memo,
    /// Hit count (a meta's value: its expression's) of each rule evaluated so far, and 0
    /// from the start for the rules the prefilter ruled out (their atoms do not occur);
    /// [`NOT_YET`] for the others.
    values: Vec<f64>,
    /// Where the time goes, when profiling.
    costs: Option<&'c mut RuleCosts>,
    /// Network tests that fired, answered before the scan.
    facts: &'c [String],
    /// The Bayes classifier's probability of spam, when it has a verdict.
    bayes: Option<f64>,
}

/// A rule's value not computed yet (a computed value is never NaN).
const NOT_YET: f64 = f64::NAN;

impl<'a> Scan<'a, '_> {
    /// Rule `i`'s value: read when known (most calls: it is small enough to inline into
    /// the meta evaluation), computed once otherwise.
    #[inline]
    fn value(&mut self, i: usize) -> f64 {
        match self.values.get(i) {
            Some(&v) if !v.is_nan() => v,
            _ => self.evaluate(i),
        }
    }

    /// [`Scan::value`] of a rule not evaluated yet.
    #[inline(never)]
    fn evaluate(&mut self, i: usize) -> f64 {
        if i >= self.values.len() {
            return 0.0;
        }
        // A meta that reaches itself through a cycle reads 0 there.
        self.values[i] = 0.0;
        let rules: &'a Ruleset = self.rules;
        let v = match rules.meta_roots[i] {
            Some(root) => rules.metas.eval(root, &mut |j| self.value(j)),
            None => {
                let started = self.costs.is_some().then(Instant::now);
                let v = self.compute(i);
                if let (Some(t), Some(c)) = (started, self.costs.as_deref_mut()) {
                    c.rule_time[i] += t.elapsed();
                    c.rule_runs[i] += 1;
                    c.rule_hits[i] += u32::from(v != 0.0);
                }
                v
            }
        };
        let v = if v.is_nan() { 0.0 } else { v };
        self.values[i] = v;
        v
    }

    fn compute(&mut self, i: usize) -> f64 {
        let rules: &'a Ruleset = self.rules;
        let view = self.view;
        let rule = &rules.rules[i];
        let hit = |b: bool| if b { 1.0 } else { 0.0 };
        match (&rule.test, rule.kind) {
            // (Metas are evaluated by `value`, as are the rules the prefilter ruled out.)
            (CompiledTest::Meta(_), _) => 0.0,
            (
                CompiledTest::Regex {
                    matcher,
                    negate,
                    source: Some(source),
                    if_unset,
                },
                Kind::Header,
            ) => {
                let slot = rules.header_source[i].map_or(usize::MAX, |s| s as usize);
                let text = match self.header_texts.get_mut(slot) {
                    Some(cached) => cached.get_or_insert_with(|| header_text(view, source)),
                    None => &header_text(view, source),
                };
                let text = match (text.as_deref(), if_unset) {
                    (Some(t), _) => t,
                    (None, Some(u)) => u.as_str(),
                    (None, None) => "",
                };
                hit(matcher.is_match(text) != *negate)
            }
            (
                CompiledTest::Regex {
                    matcher,
                    negate,
                    source: Some(HeaderSource { name, .. }),
                    ..
                },
                Kind::MimeHeader,
            ) => {
                let found = view
                    .mime_headers
                    .iter()
                    .filter(|f| f.name.eq_ignore_ascii_case(name))
                    .any(|f| matcher.is_match(&f.value));
                hit(found != *negate)
            }
            (CompiledTest::Regex { matcher, .. }, Kind::Body) if self.paragraphs.has_spots(i) => {
                // A rule whose matches are short and that is not counted is asked only
                // about the windows around its atoms in a long paragraph.
                let reach = (rule.max_hits == 1).then(|| matcher.max_len()).flatten();
                let mut hits = 0;
                for (p, text) in self.paragraphs.of(i) {
                    if let Some(reach) = reach.filter(|r| r.saturating_mul(2) < text.len()) {
                        let windows = self.paragraphs.windows(i, p, reach);
                        hits += u32::from(
                            windows
                                .into_iter()
                                .any(|w| matcher.is_match_within(text, w)),
                        );
                        if hits >= rule.max_hits {
                            break;
                        }
                        continue;
                    }
                    hits += matcher.hits(text, rule.max_hits - hits);
                    if hits >= rule.max_hits {
                        break;
                    }
                }
                f64::from(hits)
            }
            (CompiledTest::Regex { matcher, .. }, kind) => {
                match self.texts.iter().find(|(k, _)| *k == kind) {
                    Some((_, text)) => f64::from(matcher.hits(text, rule.max_hits)),
                    None => 0.0,
                }
            }
            (CompiledTest::Exists(h), _) => {
                // The pseudo-headers of header rules exist when what they stand for does.
                let exists = |n: &str| view.header_values(n).next().is_some();
                hit(match h.as_str() {
                    "ToCc" => exists("To") || exists("Cc"),
                    "MESSAGEID" => header_text(view, &HeaderSource::parse(h)).is_some(),
                    "EnvelopeFrom" => envelope_from(view).is_some(),
                    "ALL" => !view.headers.is_empty(),
                    name => exists(name),
                })
            }
            (CompiledTest::Eval { function, .. }, _) if eval::answered_by_dns_checks(function) => {
                hit(self.facts.contains(&rule.name))
            }
            (CompiledTest::Eval { function, args }, _) if function == "check_bayes" => {
                hit(self.bayes.is_some_and(|p| eval::bayes_in_range(p, args)))
            }
            (CompiledTest::HtmlText { part, matcher }, _) => {
                let texts = &view.html_texts;
                let strings = match part {
                    HtmlText::Anchor => &texts.anchors,
                    HtmlText::Title => &texts.titles,
                    HtmlText::Comment => &texts.comments,
                };
                hit(strings.iter().any(|s| matcher.is_match(s)))
            }
            (CompiledTest::Eval { function, args }, _) => {
                let memo = &mut self.eval_memo;
                hit(eval::run(function, args, view, &rules.globals, memo).unwrap_or(false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::bayes::{Counts, Learned, Totals};
    use super::super::rules::RuleSource;
    use super::*;

    /// A database that learned every token as spam only, `totals` messages of each.
    struct AllSpam(Totals);

    impl Learned for AllSpam {
        fn totals(&self) -> Totals {
            self.0
        }
        fn counts(&self, tokens: &[u64]) -> Vec<Counts> {
            vec![Counts { spam: 100, ham: 0 }; tokens.len()]
        }
    }

    #[test]
    fn the_bayes_verdict_hits_its_rules_in_the_bayes_score_sets() {
        let rules = super::super::load(&[] as &[&str]).unwrap();
        let raw = b"From: a@b.example\r\nTo: c@d.example\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: offer\r\n\r\nCheap watches and pills for everybody today\r\n";
        let learned = AllSpam(Totals {
            spam: 300,
            ham: 300,
        });
        let input = ScanInput {
            bayes: Some(&learned),
            ..ScanInput::default()
        };
        let v = rules.scan_message(raw, &input);
        let names: Vec<&str> = v.hits.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["BAYES_99", "BAYES_999"], "{v:?}");
        assert_eq!(v.score, 4.0);
        assert!(v.bayes.is_some_and(|b| b.probability > 0.999));
        assert_eq!(v.score_set.index(), 2);
        // With the network tests: the fourth column.
        let v = rules.scan_message(
            raw,
            &ScanInput {
                network: true,
                ..input
            },
        );
        assert_eq!(v.score, 3.7);
        assert_eq!(v.score_set.index(), 3);
        // Too little learned: no verdict, the first set, no Bayes rule.
        let few = AllSpam(Totals { spam: 300, ham: 10 });
        let v = rules.scan_message(
            raw,
            &ScanInput {
                bayes: Some(&few),
                ..ScanInput::default()
            },
        );
        assert!(
            v.hits.is_empty() && v.bayes.is_none() && v.score_set.index() == 0,
            "{v:?}"
        );
    }

    #[test]
    fn a_scan_that_panics_answers_with_an_error() {
        let mut src = RuleSource::default();
        src.add_text("body HELLO /hello/\nscore HELLO 2.5\n", None);
        let rules = Ruleset::compile(src);
        let v = rules.guarded(|| panic!("a bug met on this message"));
        assert!(v.hits.is_empty() && v.score == 0.0);
        assert!(v.actions.is_some(), "the headers can still be written");
        assert!(v.error.unwrap().contains("a bug met on this message"));
        let v = rules.guarded(|| panic!("{}", String::from("formatted")));
        assert!(v.error.unwrap().contains("formatted"));
        // A scan that does not panic is untouched.
        let v = rules.scan(b"Subject: x\r\n\r\nhello\r\n");
        assert_eq!((v.score, v.error), (2.5, None));
    }

    #[test]
    fn windows_around_a_rules_atoms_in_a_paragraph() {
        let body = "aaa\nxx foo yy foo zz\nbbb foo\n";
        let foo: Vec<(usize, usize)> = body.match_indices("foo").map(|(at, _)| (5, at)).collect();
        let (paragraphs, ruled_out) = Paragraphs::new(body, foo, &[1; 6]);
        assert!(ruled_out.is_empty());
        let lines: Vec<(usize, &str)> = paragraphs.of(5).collect();
        assert_eq!(lines, [(1, "xx foo yy foo zz\n"), (2, "bbb foo\n")]);
        // Each atom's window: `reach` bytes either side, within the paragraph.
        assert_eq!(paragraphs.windows(5, 1, 2), [1..6, 8..13]);
        // Overlapping windows are merged.
        assert_eq!(
            paragraphs.windows(5, 1, 4),
            vec![std::ops::Range { start: 0, end: 15 }]
        );
        assert_eq!(
            paragraphs.windows(5, 2, 100),
            vec![std::ops::Range { start: 0, end: 8 }]
        );
        // Another rule has none there.
        assert!(paragraphs.windows(4, 1, 2).is_empty());
    }

    /// A rule whose matches are bounded is asked only about the windows around its atoms
    /// in a long paragraph: it finds a match far into it, with the atom in the middle of
    /// the match, and none where its words are too far apart.
    #[test]
    fn bounded_rules_match_around_their_atoms_in_long_paragraphs() {
        let mut src = RuleSource::default();
        src.add_text(
            "body PILLS /\\bcheap\\s\\w{1,10}\\spills\\b/i\nscore PILLS 3\n",
            None,
        );
        let rules = Ruleset::compile(src);
        let filler = "lorem ipsum dolor sit amet ".repeat(100);
        let scan = |body: &str| {
            let raw = format!("Subject: x\r\n\r\n{body}\r\n");
            rules
                .scan(raw.as_bytes())
                .hits
                .iter()
                .any(|h| h.name == "PILLS")
        };
        assert!(scan(&format!("{filler} Cheap blue PILLS {filler}")));
        assert!(scan(&format!("{filler} cheap pills cheap red pills")));
        assert!(!scan(&format!("cheap {filler} pills")));
        assert!(!scan(&format!("{filler} cheap pills {filler}")));
        // The word boundary is read outside the window too.
        assert!(!scan(&format!("{filler} xcheap blue pills {filler}")));
    }

    /// Each form of a header rule's source: all headers, one header's values (first,
    /// last), their addresses and names, the Message-ID family without empty values.
    #[test]
    fn header_texts_of_each_source_form() {
        let view = MessageView::new(
            b"From: Ann <ann@a.test>\r\nTo: b@b.test, \"Cy\" <c@c.test>\r\nTo: d@d.test\r\n\
              Message-Id:\r\nX-Message-Id: <x@y>\r\nSubject: =?utf-8?q?h=C3=A9?=\r\n\r\nbody\r\n",
        );
        let text = |source: &str| header_text(&view, &HeaderSource::parse(source));
        assert_eq!(
            text("ALL").as_deref(),
            Some(
                "From: Ann <ann@a.test>\nTo: b@b.test, \"Cy\" <c@c.test>\nTo: d@d.test\n\
                 Message-Id: \nX-Message-Id: <x@y>\nSubject: h\u{e9}"
            )
        );
        assert_eq!(
            text("To").as_deref(),
            Some("b@b.test, \"Cy\" <c@c.test>\nd@d.test")
        );
        assert_eq!(text("To:first:addr").as_deref(), Some("b@b.test\nc@c.test"));
        assert_eq!(text("To:last").as_deref(), Some("d@d.test"));
        assert_eq!(
            text("ToCc:addr").as_deref(),
            Some("b@b.test\nc@c.test\nd@d.test")
        );
        assert_eq!(text("From:name").as_deref(), Some("Ann"));
        assert_eq!(text("Subject:raw").as_deref(), Some("=?utf-8?q?h=C3=A9?="));
        assert_eq!(text("MESSAGEID").as_deref(), Some("<x@y>"));
        assert_eq!(text("Cc"), None);
        assert_eq!(text("Cc:addr"), None);
    }

    /// Header values with multi-byte characters next to the delimiters of addresses and
    /// names, and a header name with one where the `X-Spam-Relays-` prefix would end.
    #[test]
    fn multi_byte_characters_in_header_values() {
        let value = "\"É, ü\" <é@é.test>, ö@ü.test (ü), é<ü@é>é, ß (Ö), <€";
        assert_eq!(
            address_entries(value),
            [
                "\"É, ü\" <é@é.test>",
                " ö@ü.test (ü)",
                " é<ü@é>é",
                " ß (Ö)",
                " <€"
            ]
        );
        assert_eq!(addresses(value), ["é@é.test", "ö@ü.test", "ü@é", "ß", "<€"]);
        assert_eq!(display_names(value), ["É, ü", "ü", "é", "Ö"]);
        let view = MessageView::new("Subject: é\r\n\r\né\r\n".as_bytes());
        let source = HeaderSource::parse("X-Spam-Relaysé-x");
        assert_eq!(header_text(&view, &source), None);
    }
}
