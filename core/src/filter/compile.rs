//! The compiled ruleset: regexes compiled once (the `regex` crate where it can, a
//! backtracking engine with a limit where a rule needs look-around or back-references),
//! and for each kind of text one `aho-corasick` automaton over the literal atoms of its
//! rules, so that one pass over the text names the few rules worth running.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::OnceLock;

use super::atom_search::AtomSearch;
use regex_automata::meta as automata;
use regex_automata::util::syntax;
use serde::{Deserialize, Serialize};

use super::atoms::{alnum_projection_at, atoms_for, Text};
use super::cache::{self, Analysis, CachedRegex};
use super::chain::{self, chain_for, ChainGate};
use super::meta::{self, Expr};
use super::rules::{HeaderSource, Kind, RuleSource, Test};

/// Machine stack a JIT-compiled backtracking regex may use on one text: past it the match
/// fails (counted as no match) instead of running on.
const JIT_STACK_LIMIT: usize = 1 << 20;

/// Lazy DFA cache of one `regex` rule, per thread that runs it.
const LAZY_DFA_CACHE: usize = 8 << 20;

/// A compiled rule regex. Both engines match octets, as Perl matches SpamAssassin's text:
/// `\w`, `\b` and `/i` are ASCII, `.` is one byte.
pub enum Matcher {
    /// The `regex` crate: linear time, no look-around or back-references.
    Fast(automata::Regex),
    /// PCRE2 with JIT for the rest; its match limit bounds the backtracking. With a gate:
    /// the pattern loosened for the `regex` crate (look-around dropped), which every match
    /// also matches; PCRE2 runs only where the gate matched.
    Backtracking {
        exact: pcre2::bytes::Regex,
        gate: Option<automata::Regex>,
    },
}

impl Matcher {
    pub fn is_match(&self, text: &str) -> bool {
        match self {
            Matcher::Fast(r) => r.is_match(text.as_bytes()),
            Matcher::Backtracking { exact, gate } => {
                gate.as_ref().is_none_or(|g| g.is_match(text.as_bytes()))
                    && exact.is_match(text.as_bytes()).unwrap_or(false)
            }
        }
    }

    /// Non-overlapping matches in `text`, counted up to `max`.
    pub fn count(&self, text: &str, max: u32) -> u32 {
        let n = match self {
            Matcher::Fast(r) => return count_ends(r, text.as_bytes(), max),
            Matcher::Backtracking { gate: Some(g), .. } if !g.is_match(text.as_bytes()) => 0,
            Matcher::Backtracking { exact, .. } => exact
                .find_iter(text.as_bytes())
                .take(max as usize)
                .take_while(Result::is_ok)
                .count(),
        };
        n as u32
    }

    /// 1 or 0 if `max_hits` is 1 (the rule is not `tflags multiple`), else the count.
    pub fn hits(&self, text: &str, max_hits: u32) -> u32 {
        if max_hits > 1 {
            self.count(text, max_hits)
        } else {
            u32::from(self.is_match(text))
        }
    }
}

/// The non-overlapping matches of `r` in `text`, counted up to `max`, from their ends
/// alone: the forward search gives the end of the leftmost-first match, and the next
/// match is looked for from there, as `find_iter` does, without the reverse search
/// `find_iter` makes for each match's start (a rule like `__E_LIKE_LETTER` counts up to
/// 320 one-letter matches a message). An empty match (an end where the search began)
/// needs `find_iter`'s handling: the count is then made by it.
fn count_ends(r: &automata::Regex, text: &[u8], max: u32) -> u32 {
    let mut input = regex_automata::Input::new(text);
    let mut n = 0;
    while n < max {
        let from = input.start();
        let Some(end) = r.search_half(&input) else {
            break;
        };
        if end.offset() == from {
            return r.find_iter(text).take(max as usize).count() as u32;
        }
        n += 1;
        input.set_start(end.offset());
    }
    n
}

/// Matches counted for a `tflags multiple` rule without `maxhits=`.
const MULTIPLE_DEFAULT_MAX: u32 = 1000;

/// How many matches of a rule count: 1 unless its tflags say `multiple`.
fn max_hits(tflags: Option<&Vec<String>>) -> u32 {
    let Some(flags) = tflags else { return 1 };
    if !flags.iter().any(|f| f == "multiple") {
        return 1;
    }
    flags
        .iter()
        .find_map(|f| f.strip_prefix("maxhits=")?.parse().ok())
        .unwrap_or(MULTIPLE_DEFAULT_MAX)
        .max(1)
}

pub enum CompiledTest {
    Regex {
        matcher: LazyMatcher,
        negate: bool,
        source: Option<HeaderSource>,
        if_unset: Option<String>,
    },
    Exists(String),
    Eval {
        function: String,
        args: Vec<String>,
    },
    /// `eval:html_text_match('anchor'|'title'|'comment', 'REGEX')`: the regex compiled
    /// once, run over those texts of the HTML parts.
    HtmlText {
        part: HtmlText,
        matcher: LazyMatcher,
    },
    Meta(Expr),
}

/// Texts of the HTML parts that `html_text_match` reads ([`crate::mime::view::HtmlTexts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HtmlText {
    Anchor,
    Title,
    Comment,
}

pub struct CompiledRule {
    pub name: String,
    pub kind: Kind,
    /// The score in each of SpamAssassin's four sets (see [`ScoreSet`]).
    pub scores: [f64; 4],
    /// Matches counted (`tflags multiple`, `maxhits=`); 1 for the rest.
    pub max_hits: u32,
    pub describe: String,
    pub test: CompiledTest,
    /// What the rule is to auto-learning (its `tflags`).
    pub autolearn: AutoLearnRole,
}

/// How a rule's hit counts when auto-learning decides (SpamAssassin's `tflags`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AutoLearnRole {
    /// Its points count (the usual case).
    #[default]
    Counts,
    /// A learner's own verdict (`tflags learn`: the `BAYES_*` rules): its points say what
    /// the classifier already thinks, and are kept apart.
    Learner,
    /// Left out (`tflags noautolearn` or `userconf`: whitelists and the like).
    Ignored,
}

/// A rule's auto-learning role from its tflags.
fn autolearn_role(tflags: Option<&Vec<String>>) -> AutoLearnRole {
    let has = |flag: &str| tflags.is_some_and(|f| f.iter().any(|f| f == flag));
    if has("noautolearn") || has("userconf") {
        AutoLearnRole::Ignored
    } else if has("learn") {
        AutoLearnRole::Learner
    } else {
        AutoLearnRole::Counts
    }
}

impl CompiledRule {
    /// Whether the rule scores in any set (a rule scored 0 everywhere that no meta needs
    /// is not run, as in SpamAssassin).
    pub fn scores_any(&self) -> bool {
        self.scores.iter().any(|s| *s != 0.0)
    }
}

/// Which of SpamAssassin's four score sets a scan uses: with the Bayes classifier's
/// verdict or not, with network tests (the DNS checks) or not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScoreSet {
    pub bayes: bool,
    pub network: bool,
}

impl ScoreSet {
    /// The column of a `score` line: 0 neither, 1 network, 2 Bayes, 3 both.
    pub fn index(self) -> usize {
        usize::from(self.bayes) * 2 + usize::from(self.network)
    }
}

/// Settings of the ruleset as a whole.
#[derive(Default)]
pub struct Globals {
    pub required_score: f64,
    pub whitelist_from: Vec<String>,
    pub blacklist_from: Vec<String>,
    /// Free mail providers' domains: exact, and those written with `*` wildcards (one
    /// label part each, as SpamAssassin reads them) as one regex.
    pub freemail: std::collections::HashSet<String>,
    pub freemail_wildcards: Option<regex::Regex>,
}

/// One automaton per kind of text: which rules each atom points to, and the rules that
/// must always run.
pub struct Prefilter {
    pub automaton: Option<AtomSearch>,
    pub atom_rules: Vec<Vec<usize>>,
    /// Per atom, the rules that have it only on ASCII text.
    pub ascii_atom_rules: Vec<Vec<usize>>,
    /// Rules without atoms in general that have some on ASCII text (or cannot match
    /// it): they run on every text that is not ASCII, on ASCII text only when named.
    pub ascii_gated: Vec<usize>,
    /// Rules with atoms only in the text's letters and digits ([`alnum_projection`]): an
    /// automaton over those atoms and the rules of each.
    pub alnum: Option<(AtomSearch, Vec<Vec<usize>>)>,
    /// Some of those rules need several atoms ([`Ruleset::atom_times`]).
    pub alnum_counted: bool,
    /// Rules without atoms that spell a word letter by letter: one pass of the gate
    /// names those that may match (on a text without `&#`; on others all run).
    pub chains: Option<ChainGate>,
    pub chained: Vec<usize>,
    pub always: Vec<usize>,
}

/// What loading found.
#[derive(Debug, Default, Clone)]
pub struct Report {
    pub loaded: usize,
    /// Scored 0 and needed by no meta: not run.
    pub inactive: usize,
    pub backtracking: usize,
    /// Rules without a prefilter atom, by kind (the ones in `ascii_atoms` run on every
    /// message that is not ASCII, the rest on every message).
    pub without_atom: BTreeMap<String, usize>,
    /// Of those, the ones that have atoms on ASCII text, by kind.
    pub ascii_atoms: BTreeMap<String, usize>,
    /// Of those, the ones that have atoms in the text's letters and digits, by kind.
    pub alnum_atoms: BTreeMap<String, usize>,
    /// Of those, the ones the look-alike chain gate follows (chain.rs), by kind.
    pub chained: BTreeMap<String, usize>,
    pub skipped: BTreeMap<String, usize>,
    /// The regexes' analysis came from the compile cache ([`super::cache`]).
    pub from_cache: bool,
}

pub struct Ruleset {
    pub rules: Vec<CompiledRule>,
    /// Rules worth running: a score of their own, or named by a meta that is worth running.
    /// As in SpamAssassin, a rule scored 0 that no meta needs is not run at all.
    pub active: Vec<bool>,
    /// The rules whose hits count in a verdict: active, scored, not sub-rules.
    pub scored: Vec<usize>,
    pub by_name: HashMap<String, usize>,
    /// The meta expressions, and the root of each rule's (None: not a meta).
    pub metas: super::meta::Compiled,
    pub meta_roots: Vec<Option<u32>>,
    pub prefilters: HashMap<Kind, Prefilter>,
    /// Per rule: a regex rule of a kind the prefilter reads (it cannot match unless the
    /// prefilter names it).
    pub prefiltered: Vec<bool>,
    /// Per rule: which of the distinct header sources its header test reads (an index
    /// into a scan's table of header texts), if it is one.
    pub header_source: Vec<Option<u32>>,
    /// How many distinct header sources the header tests read.
    pub header_sources: usize,
    /// Per rule: how many occurrences of its atoms, at distinct offsets, a match holds
    /// (more than 1 for a repeated part: `(?:name:\s*_+\s*){5}` needs 5).
    pub atom_times: Vec<u32>,
    pub globals: Globals,
    pub actions: std::sync::Arc<super::actions::Actions>,
    pub report: Report,
}

/// Perl escapes the `regex` crate lacks, rewritten: `\e` (escape), 3-digit octal `\042`,
/// and `\Z` (end, or before a final newline). Every other escape is copied with the whole
/// character it escapes, which may be more than one byte (`\é`, found by fuzzing).
pub(crate) fn translate_escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.as_str();
        let octal = escaped
            .split_at_checked(3)
            .filter(|(digits, _)| digits.bytes().all(|d| (b'0'..=b'7').contains(&d)));
        if let Some(after) = escaped.strip_prefix('e') {
            out.push_str("\\x1B");
            chars = after.chars();
        } else if let Some(after) = escaped.strip_prefix('Z') {
            out.push_str("(?:\\n?\\z)");
            chars = after.chars();
        } else if let Some((digits, after)) = octal {
            let value = digits
                .bytes()
                .fold(0u32, |value, d| value * 8 + u32::from(d - b'0'));
            out.push_str(&format!("\\x{{{value:02X}}}"));
            chars = after.chars();
        } else {
            // The escaped character, if any (a trailing backslash is copied alone).
            out.push('\\');
            if let Some(escaped) = chars.next() {
                out.push(escaped);
            }
        }
    }
    out
}

/// How a rule's regex compiles, found at the first load and kept in the rules' compile
/// cache ([`super::cache`]) so that a later load knows without trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Engine {
    /// The `regex` crate with octet semantics.
    Octets,
    /// The `regex` crate keeping Unicode classes (the pattern needs them).
    Unicode,
    /// PCRE2; `gated`: with the loosened `regex` gate of [`loosened`].
    Backtracking { gated: bool },
}

/// The flags the engines read, from a rule's `imsx…` flags.
fn engine_flags(flags: &str) -> String {
    flags.chars().filter(|c| "imsx".contains(*c)).collect()
}

/// The `regex` crate's form of a pattern: escapes translated, flags inline.
fn inline_flags(pattern: &str, flags: &str) -> String {
    let f = engine_flags(flags);
    if f.is_empty() {
        pattern.to_owned()
    } else {
        format!("(?{f}){pattern}")
    }
}

/// The pattern compiled by the `regex` crate's engine, if it can be.
fn fast_regex(pattern: &str, flags: &str, unicode: bool) -> Option<automata::Regex> {
    rule_regex(&regex_crate_pattern(pattern, flags), unicode)
}

/// A rule's pattern as the `regex` crate reads it: escapes translated, flags inline.
fn regex_crate_pattern(pattern: &str, flags: &str) -> String {
    inline_flags(&translate_escapes(pattern), flags)
}

/// How the `regex` crate parses a rule's pattern: octets (`.` one byte, `\w` ASCII)
/// unless it needs Unicode classes.
fn rule_syntax(unicode: bool) -> syntax::Config {
    syntax::Config::new().unicode(unicode).utf8(false)
}

/// A rule's regex in the `regex` crate's engine, configured as `regex::bytes::Regex`
/// (octets, leftmost-first) but without the full DFA that engine builds up front for a
/// small pattern: most rules run on a few messages, where the lazy DFA builds what they
/// visit (callgrind over a whole `spam scan` of 1,000 messages: 2.7 % fewer instructions,
/// the same on a second, warm pass).
fn rule_regex(pattern: &str, unicode: bool) -> Option<automata::Regex> {
    let config = automata::Config::new()
        .match_kind(regex_automata::MatchKind::LeftmostFirst)
        .utf8_empty(false)
        .dfa(false)
        .nfa_size_limit(Some(50 << 20))
        // A lazy DFA cache big enough that the largest rules (ReplaceTags
        // alternations) do not rebuild their states on every message.
        .hybrid_cache_capacity(LAZY_DFA_CACHE);
    automata::Builder::new()
        .configure(config)
        .syntax(rule_syntax(unicode))
        .build(pattern)
        .ok()
}

/// The pattern compiled by PCRE2 with JIT.
fn backtracking_regex(pattern: &str, flags: &str) -> Option<pcre2::bytes::Regex> {
    let f = engine_flags(flags);
    pcre2::bytes::RegexBuilder::new()
        .caseless(f.contains('i'))
        .multi_line(f.contains('m'))
        .dotall(f.contains('s'))
        .extended(f.contains('x'))
        .jit_if_available(true)
        .max_jit_stack_size(Some(JIT_STACK_LIMIT))
        .build(pattern)
        .ok()
}

/// Compiles a pattern with the first engine that takes it: octets, Unicode, PCRE2.
fn compile_regex(pattern: &str, flags: &str) -> Option<(Matcher, Engine)> {
    // Octet semantics first; a pattern that needs Unicode classes keeps them.
    for (unicode, engine) in [(false, Engine::Octets), (true, Engine::Unicode)] {
        if let Some(r) = fast_regex(pattern, flags, unicode) {
            return Some((Matcher::Fast(r), engine));
        }
    }
    let exact = backtracking_regex(pattern, flags)?;
    Some((
        Matcher::Backtracking { exact, gate: None },
        Engine::Backtracking { gated: false },
    ))
}

/// Compiles a pattern with the engine an earlier load found for it.
fn compile_with(pattern: &str, flags: &str, engine: Engine) -> Option<Matcher> {
    match engine {
        Engine::Octets => fast_regex(pattern, flags, false).map(Matcher::Fast),
        Engine::Unicode => fast_regex(pattern, flags, true).map(Matcher::Fast),
        Engine::Backtracking { gated } => Some(Matcher::Backtracking {
            exact: backtracking_regex(pattern, flags)?,
            gate: if gated {
                loosened(pattern, flags)
            } else {
                None
            },
        }),
    }
}

/// The pattern without look-around and back-references, for the `regex` crate: every
/// match of the pattern is a match of it. None if it still needs PCRE2.
fn loosened(pattern: &str, flags: &str) -> Option<automata::Regex> {
    let loose = super::atoms::relax(&translate_escapes(pattern));
    rule_regex(&inline_flags(&loose, flags), false)
}

/// A rule's regex, compiled when first used: a load that found the rules in the compile
/// cache knows each engine already and defers the compiling (most rules run on few
/// messages); a first load compiles every regex to find its engine and keeps the result.
pub struct LazyMatcher {
    pattern: String,
    flags: String,
    engine: Engine,
    compiled: OnceLock<Option<Matcher>>,
    /// The longest match in bytes, if bounded (found when first asked: [`LazyMatcher::max_len`]).
    max_len: OnceLock<Option<usize>>,
}

impl LazyMatcher {
    /// Compiles now, finding the engine. None if no engine takes the pattern.
    fn compile(pattern: String, flags: String) -> Option<LazyMatcher> {
        let (matcher, engine) = compile_regex(&pattern, &flags)?;
        Some(LazyMatcher {
            pattern,
            flags,
            engine,
            compiled: OnceLock::from(Some(matcher)),
            max_len: OnceLock::new(),
        })
    }

    /// Compiles when first used, with the engine an earlier load found.
    fn deferred(pattern: String, flags: String, engine: Engine) -> LazyMatcher {
        LazyMatcher {
            pattern,
            flags,
            engine,
            compiled: OnceLock::new(),
            max_len: OnceLock::new(),
        }
    }

    /// The pattern as compiled (ReplaceTags expanded) and its flags.
    pub fn source(&self) -> (&str, &str) {
        (&self.pattern, &self.flags)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// Adds the loosened gate of [`loosened`] (a PCRE2 body rule that runs on every text).
    fn gate_backtracking(&mut self) {
        if let Some(Some(Matcher::Backtracking {
            gate: gate @ None, ..
        })) = self.compiled.get_mut()
        {
            *gate = loosened(&self.pattern, &self.flags);
            if gate.is_some() {
                self.engine = Engine::Backtracking { gated: true };
            }
        }
    }

    /// The compiled regex; None only if the engine refuses a pattern it took before
    /// (a cache from another build of the engines), which then never matches.
    pub fn get(&self) -> Option<&Matcher> {
        self.compiled
            .get_or_init(|| compile_with(&self.pattern, &self.flags, self.engine))
            .as_ref()
    }

    pub fn is_match(&self, text: &str) -> bool {
        self.get().is_some_and(|m| m.is_match(text))
    }

    /// The most bytes a match of an octet `regex` rule spans, if that is bounded (no
    /// unbounded repetition); None for the other engines.
    pub fn max_len(&self) -> Option<usize> {
        *self.max_len.get_or_init(|| {
            if self.engine != Engine::Octets {
                return None;
            }
            let pattern = regex_crate_pattern(&self.pattern, &self.flags);
            let hir = syntax::parse_with(&pattern, &rule_syntax(false)).ok()?;
            hir.properties().maximum_len()
        })
    }

    /// Whether the regex matches within `span` of `text` (its look-around assertions
    /// still see the bytes around the span). Only the `regex` engine searches a span;
    /// the others are asked about the whole text.
    pub fn is_match_within(&self, text: &str, span: std::ops::Range<usize>) -> bool {
        match self.get() {
            Some(Matcher::Fast(r)) => {
                let end = span.end.min(text.len());
                let start = span.start.min(end);
                r.is_match(regex_automata::Input::new(text.as_bytes()).span(start..end))
            }
            Some(m) => m.is_match(text),
            None => false,
        }
    }

    pub fn hits(&self, text: &str, max_hits: u32) -> u32 {
        self.get().map_or(0, |m| m.hits(text, max_hits))
    }
}

/// The regex a rule definition compiles, if any: its pattern (tags replaced) and flags.
fn regex_input(
    def: &super::rules::RuleDef,
    replace_tags: &super::replace_tags::ReplaceTags,
) -> Option<(String, String)> {
    match &def.test {
        Test::Regex { pattern, flags, .. } => {
            let pattern = replace_tags.apply(&def.name, pattern);
            // Body, rawbody and uri rules see one line at a time in SpamAssassin: they are
            // matched once over the whole text in multi-line mode, so `^` and `$` still
            // mean a line's start and end.
            let flags = if matches!(def.kind, Kind::Body | Kind::RawBody | Kind::Uri)
                && !flags.contains('m')
            {
                format!("{flags}m")
            } else {
                flags.clone()
            };
            Some((pattern, flags))
        }
        Test::Eval { function, args } if function == "html_text_match" => {
            Some((args.get(1)?.clone(), String::new()))
        }
        _ => None,
    }
}

/// The regex of one rule definition and its prefilter gate: from the compile cache when
/// it has them, else found now (and added to `analysis` for the cache).
fn analyse_regex(
    pattern: String,
    flags: String,
    kind: Kind,
    gated: bool,
    cached: Option<Option<CachedRegex>>,
    analysis: &mut Analysis,
) -> Option<(LazyMatcher, Option<Gate>)> {
    if let Some(cached) = cached {
        let cached = cached?;
        let matcher = LazyMatcher::deferred(pattern, flags, cached.engine);
        return Some((matcher, cached.gate));
    }
    let Some(mut matcher) = LazyMatcher::compile(pattern, flags) else {
        analysis.regexes.push(None);
        return None;
    };
    let gate = gated
        .then(|| {
            Gate::of(
                &translate_escapes(&matcher.pattern),
                matcher.flags.contains('x'),
                kind,
            )
        })
        .flatten();
    // A body rule that runs on every message gets a fast gate when it needs PCRE2 (only
    // bodies: their size is bounded per part).
    if kind == Kind::Body && !matches!(gate, Some(Gate::Atoms(..))) {
        matcher.gate_backtracking();
    }
    analysis.regexes.push(Some(CachedRegex {
        engine: matcher.engine,
        gate: gate.clone(),
    }));
    Some((matcher, gate))
}

impl Ruleset {
    /// Compiles the rules, analysing every regex.
    pub fn compile(source: RuleSource) -> Ruleset {
        Ruleset::compile_cached(source, None)
    }

    /// Compiles the rules, with the compile cache in `cache_dir` when given: an analysis
    /// kept there for the same rules is used (regexes then compile when first used), else
    /// the analysis made now is kept there.
    pub fn compile_cached(source: RuleSource, cache_dir: Option<&Path>) -> Ruleset {
        let mut report = Report {
            skipped: source.skipped.clone(),
            ..Report::default()
        };
        let replace_tags = &source.replace_tags;
        let inputs: Vec<Option<(String, String)>> = source
            .rules
            .iter()
            .map(|def| regex_input(def, replace_tags))
            .collect();
        let mut key = cache::Key::for_this_build();
        for (def, input) in source.rules.iter().zip(&inputs) {
            if let Some((pattern, flags)) = input {
                key.add(&format!("{:?}", def.kind), pattern, flags);
            }
        }
        let cached = cache_dir.and_then(|dir| cache::read(dir, &key));
        let from_cache = cached.is_some();
        let mut cached = cached.map(|a| a.regexes.into_iter());
        let mut analysis = Analysis::default();
        let mut rules = Vec::new();
        // A later definition of a rule replaces an earlier one, as in SpamAssassin.
        let mut by_name: HashMap<String, usize> = HashMap::new();
        // How the prefilter names each rule (None: it runs on every message).
        let mut gate_of: Vec<Option<Gate>> = Vec::new();
        for (def, input) in source.rules.into_iter().zip(inputs) {
            let mut gate = None;
            // The cache's entry for this regex; a cache shorter than the rules (it cannot
            // be, under its key) reads as a rule no engine took.
            let mut regex = |gated: bool, report: &mut Report| {
                let (pattern, flags) = input.clone()?;
                let entry = cached.as_mut().map(|c| c.next().flatten());
                let compiled = analyse_regex(pattern, flags, def.kind, gated, entry, &mut analysis);
                if let Some((m, _)) = &compiled {
                    if matches!(m.engine, Engine::Backtracking { .. }) {
                        report.backtracking += 1;
                    }
                }
                compiled
            };
            let test = match def.test {
                Test::Regex {
                    negate,
                    source: hs,
                    if_unset,
                    ..
                } => {
                    // Header rules with an if-unset value may match that value, not the
                    // headers: they always run.
                    let prefiltered = match def.kind {
                        Kind::Body | Kind::RawBody | Kind::Uri | Kind::Full => true,
                        Kind::Header => if_unset.is_none(),
                        _ => false,
                    };
                    let Some((matcher, found)) = regex(!negate && prefiltered, &mut report) else {
                        *report
                            .skipped
                            .entry("regex: not supported".into())
                            .or_default() += 1;
                        continue;
                    };
                    gate = found;
                    CompiledTest::Regex {
                        matcher,
                        negate,
                        source: hs,
                        if_unset,
                    }
                }
                Test::Exists(h) => CompiledTest::Exists(h),
                Test::Eval { function, args } => {
                    let part = match (function.as_str(), args.first().map(String::as_str)) {
                        ("html_text_match", Some("anchor")) => Some(HtmlText::Anchor),
                        ("html_text_match", Some("title")) => Some(HtmlText::Title),
                        ("html_text_match", Some("comment")) => Some(HtmlText::Comment),
                        _ => None,
                    };
                    if function == "html_text_match" && input.is_some() {
                        // Its regex is in the cache's order even when the part is unknown.
                        match (part, regex(false, &mut report)) {
                            (Some(part), Some((matcher, _))) => {
                                CompiledTest::HtmlText { part, matcher }
                            }
                            (None, _) => CompiledTest::Eval { function, args },
                            (Some(_), None) => continue,
                        }
                    } else {
                        CompiledTest::Eval { function, args }
                    }
                }
                Test::Meta(text) => match meta::parse(&text) {
                    Some(e) => CompiledTest::Meta(e),
                    None => {
                        *report.skipped.entry("meta: unparsable".into()).or_default() += 1;
                        continue;
                    }
                },
            };
            // SpamAssassin's defaults for a rule without a score: 1 point, 0.01 for a
            // test rule (T_), negative for a `nice` one, none for a sub-rule.
            let nice = source
                .tflags
                .get(&def.name)
                .is_some_and(|f| f.iter().any(|f| f == "nice"));
            let default_score = if def.name.starts_with("__") {
                0.0
            } else if def.name.starts_with("T_") {
                0.01
            } else {
                1.0
            } * if nice { -1.0 } else { 1.0 };
            let scores = source
                .scores
                .get(&def.name)
                .copied()
                .unwrap_or([default_score; 4]);
            let rule = CompiledRule {
                max_hits: max_hits(source.tflags.get(&def.name)),
                autolearn: autolearn_role(source.tflags.get(&def.name)),
                describe: source.describes.get(&def.name).cloned().unwrap_or_default(),
                name: def.name.clone(),
                kind: def.kind,
                scores,
                test,
            };
            match by_name.get(&def.name) {
                Some(&i) => {
                    rules[i] = rule;
                    gate_of[i] = gate;
                }
                None => {
                    by_name.insert(def.name, rules.len());
                    rules.push(rule);
                    gate_of.push(gate);
                }
            }
        }
        report.loaded = rules.len();
        report.from_cache = from_cache;
        if let (Some(dir), false) = (cache_dir, from_cache) {
            if let Err(e) = cache::write(dir, &key, &analysis) {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot keep the rules' compile cache");
            }
        }
        let atom_times = gate_of
            .iter()
            .map(|g| g.as_ref().map_or(1, Gate::times))
            .collect();
        let active = active_rules(&rules, &by_name);
        report.inactive = active.iter().filter(|a| !**a).count();
        let mut prefilters = HashMap::new();
        for kind in [
            Kind::Header,
            Kind::Body,
            Kind::RawBody,
            Kind::Uri,
            Kind::Full,
        ] {
            let kind_name = format!("{kind:?}").to_lowercase();
            let mut table = AtomTable::default();
            let mut alnum_table = AtomTable::default();
            let mut ascii_gated = Vec::new();
            let mut always = Vec::new();
            let mut alnum_counted = false;
            let mut chains = Vec::new();
            for (i, rule) in rules.iter().enumerate() {
                if rule.kind != kind || !active[i] {
                    continue;
                }
                if !matches!(gate_of[i], Some(Gate::Atoms(..)))
                    && matches!(rule.test, CompiledTest::Regex { .. })
                {
                    *report.without_atom.entry(kind_name.clone()).or_default() += 1;
                }
                let count = |report: &mut BTreeMap<String, usize>| {
                    *report.entry(kind_name.clone()).or_default() += 1;
                };
                match gate_of[i].take() {
                    Some(Gate::Atoms(atoms, _)) => {
                        for a in &atoms {
                            table.add(a, i, false);
                        }
                    }
                    Some(Gate::AsciiAtoms(atoms, _)) => {
                        count(&mut report.ascii_atoms);
                        for a in &atoms {
                            table.add(a, i, true);
                        }
                        ascii_gated.push(i);
                    }
                    Some(Gate::LetterAtoms(atoms, times)) => {
                        count(&mut report.alnum_atoms);
                        alnum_counted |= times > 1;
                        for a in &atoms {
                            alnum_table.add(a, i, false);
                        }
                    }
                    Some(Gate::Chain(c)) => {
                        count(&mut report.chained);
                        chains.push((i, c));
                    }
                    None => always.push(i),
                }
            }
            prefilters.insert(
                kind,
                Prefilter {
                    automaton: table.automaton(),
                    atom_rules: table.rules,
                    ascii_atom_rules: table.ascii_rules,
                    ascii_gated,
                    alnum: alnum_table.automaton().map(|ac| (ac, alnum_table.rules)),
                    alnum_counted,
                    chained: chains.iter().map(|(i, _)| *i).collect(),
                    chains: (!chains.is_empty()).then(|| ChainGate::new(chains)),
                    always,
                },
            );
        }
        let mut metas = super::meta::Compiled::default();
        let meta_roots = rules
            .iter()
            .map(|r| match &r.test {
                CompiledTest::Meta(e) => Some(metas.add(e, &|n| by_name.get(n).copied())),
                _ => None,
            })
            .collect();
        // Network tests score through the DNS checks' own hits (Verdict::add_hit).
        let scored = (0..rules.len())
            .filter(|&i| active[i] && !rules[i].name.starts_with("__") && rules[i].scores_any())
            .filter(|&i| {
                !matches!(&rules[i].test, CompiledTest::Eval { function, .. }
                    if super::eval::answered_by_dns_checks(function))
            })
            .collect();
        let prefiltered = rules
            .iter()
            .map(|r| {
                matches!(
                    r.kind,
                    Kind::Body | Kind::RawBody | Kind::Uri | Kind::Full | Kind::Header
                ) && matches!(r.test, CompiledTest::Regex { .. })
            })
            .collect();
        // Header tests that read the same header (with the same modifiers) share its text.
        let mut sources: HashMap<&HeaderSource, u32> = HashMap::new();
        let header_source = rules
            .iter()
            .map(|r| match (&r.test, r.kind) {
                (
                    CompiledTest::Regex {
                        source: Some(s), ..
                    },
                    Kind::Header,
                ) => {
                    let next = sources.len() as u32;
                    Some(*sources.entry(s).or_insert(next))
                }
                _ => None,
            })
            .collect();
        let header_sources = sources.len();
        let mut ruleset = Ruleset {
            header_source,
            header_sources,
            prefiltered,
            rules,
            scored,
            active,
            by_name,
            metas,
            meta_roots,
            atom_times,
            prefilters,
            actions: std::sync::Arc::new(source.actions),
            globals: Globals {
                required_score: source.required_score.unwrap_or(5.0),
                whitelist_from: source.whitelist_from,
                blacklist_from: source.blacklist_from,
                freemail: source
                    .freemail_domains
                    .iter()
                    .filter(|d| !d.contains('*'))
                    .cloned()
                    .collect(),
                freemail_wildcards: freemail_wildcards(&source.freemail_domains),
            },
            report,
        };
        // A rule Gannet cannot run never counts: an eval it lacks would read as false, and
        // a meta over one (`!__MIME_BASE64`) would then fire where SpamAssassin's does not.
        let runnable = ruleset.runnable();
        ruleset.scored.retain(|&i| runnable[i]);
        ruleset
    }

    /// Compiles every active rule's regex that is not compiled yet (after a load from the
    /// compile cache), so that no scan waits for one. Run on a thread of its own.
    pub fn warm(&self) {
        for (rule, _) in self.rules.iter().zip(&self.active).filter(|(_, a)| **a) {
            if let CompiledTest::Regex { matcher, .. } | CompiledTest::HtmlText { matcher, .. } =
                &rule.test
            {
                matcher.get();
            }
        }
    }

    /// For each rule, whether Gannet can run it: not an eval it lacks, and for a meta, every
    /// rule it names exists and can run.
    pub fn runnable(&self) -> Vec<bool> {
        fn visit(rs: &Ruleset, i: usize, memo: &mut Vec<Option<bool>>, depth: usize) -> bool {
            if let Some(v) = memo[i] {
                return v;
            }
            if depth > 32 {
                return false;
            }
            memo[i] = Some(false);
            let v = match &rs.rules[i].test {
                CompiledTest::Eval { function, args } => super::eval::implemented(function, args),
                CompiledTest::HtmlText { .. } => true,
                // The pseudo-headers about relays Gannet writes (scan.rs, header_text).
                CompiledTest::Regex {
                    source: Some(HeaderSource { name, .. }),
                    ..
                } if name.starts_with("ALL-") => matches!(
                    name.as_str(),
                    "ALL-EXTERNAL" | "ALL-UNTRUSTED" | "ALL-INTERNAL" | "ALL-TRUSTED"
                ),
                CompiledTest::Meta(expr) => {
                    let mut names = Vec::new();
                    expr.names(&mut names);
                    names.iter().all(|n| {
                        rs.by_name
                            .get(n)
                            .is_some_and(|&j| visit(rs, j, memo, depth + 1))
                    })
                }
                _ => true,
            };
            memo[i] = Some(v);
            v
        }
        let mut memo = vec![None; self.rules.len()];
        (0..self.rules.len())
            .map(|i| visit(self, i, &mut memo, 0))
            .collect()
    }

    /// The rules of `kind` worth running on `text`: those whose atoms occur, and those
    /// without atoms; sorted, each once.
    pub fn candidates(&self, kind: Kind, text: &str, out: &mut Vec<usize>) {
        self.candidates_at(kind, text, out, None);
        out.sort_unstable();
        out.dedup();
    }

    /// As [`Ruleset::candidates`], in no order and maybe with repeats (the scan only
    /// marks each, and sorting them was 1.7 % of its instructions), and with `spots`,
    /// where: (rule, offset) for every occurrence of an atom of the rule.
    pub fn candidates_at(
        &self,
        kind: Kind,
        text: &str,
        out: &mut Vec<usize>,
        mut spots: Option<&mut Vec<(usize, usize)>>,
    ) {
        let Some(p) = self.prefilters.get(&kind) else {
            return;
        };
        out.extend_from_slice(&p.always);
        if let Some(gate) = &p.chains {
            if ChainGate::applies(text.as_bytes()) {
                gate.passing(text.as_bytes(), out);
            } else {
                out.extend_from_slice(&p.chained);
            }
        }
        if let Some((ac, rules)) = &p.alnum {
            // The projection, and where each of its bytes is in the text when that is
            // wanted (spots, or rules that need several atoms).
            let with_origin = spots.is_some() || p.alnum_counted;
            let (letters, origin) = alnum_projection_at(text.as_bytes(), with_origin);
            let mut seen = vec![false; rules.len()];
            // (rule, offset) for the rules that need several atoms.
            let mut counted = Vec::new();
            ac.each(&letters, |id, start| {
                let at = origin.get(start).map_or(0, |&o| o as usize);
                for &r in &rules[id] {
                    if self.atom_times[r] > 1 {
                        counted.push((r, at));
                    }
                    if let Some(spots) = spots.as_deref_mut() {
                        spots.push((r, at));
                    }
                }
                if !seen[id] {
                    seen[id] = true;
                    out.extend(rules[id].iter().filter(|&&r| self.atom_times[r] <= 1));
                }
            });
            counted.sort_unstable();
            counted.dedup();
            for group in counted.chunk_by(|a, b| a.0 == b.0) {
                if group.len() >= self.atom_times[group[0].0] as usize {
                    out.push(group[0].0);
                }
            }
        }
        let ascii = !p.ascii_gated.is_empty() && text.is_ascii();
        if !ascii {
            out.extend_from_slice(&p.ascii_gated);
        }
        if let Some(ac) = &p.automaton {
            let mut seen = vec![false; p.atom_rules.len()];
            // (Lowered, as the automaton wants it: the offsets are the text's.)
            let lowered = text.as_bytes().to_ascii_lowercase();
            ac.each(&lowered, |id, start| {
                let ascii_rules: &[usize] = if ascii { &p.ascii_atom_rules[id] } else { &[] };
                if let Some(spots) = spots.as_deref_mut() {
                    spots.extend(
                        p.atom_rules[id]
                            .iter()
                            .chain(ascii_rules)
                            .map(|&r| (r, start)),
                    );
                }
                if !seen[id] {
                    seen[id] = true;
                    out.extend_from_slice(&p.atom_rules[id]);
                    out.extend_from_slice(ascii_rules);
                }
            });
        }
    }
}

/// How the prefilter names a regex rule, the first of these it has: its atoms; atoms it has
/// on ASCII text only; atoms in the text's letters and digits; its chain of look-alike
/// letters. Atoms come with how many of them, at distinct offsets, a match holds.
#[derive(Clone, Serialize, Deserialize)]
pub enum Gate {
    Atoms(Vec<Vec<u8>>, u32),
    AsciiAtoms(Vec<Vec<u8>>, u32),
    LetterAtoms(Vec<Vec<u8>>, u32),
    Chain(Vec<chain::Position>),
}

impl Gate {
    /// The gate of a rule's pattern (escapes translated; `/x` given) for its kind.
    fn of(pattern: &str, extended: bool, kind: Kind) -> Option<Gate> {
        let atoms = |text| atoms_for(pattern, extended, text);
        atoms(Text::Any)
            .map(|(a, t)| Gate::Atoms(a, t))
            .or_else(|| atoms(Text::Ascii).map(|(a, t)| Gate::AsciiAtoms(a, t)))
            .or_else(|| {
                matches!(kind, Kind::Body | Kind::RawBody)
                    .then(|| atoms(Text::Alnum))
                    .flatten()
                    .map(|(a, t)| Gate::LetterAtoms(a, t))
            })
            .or_else(|| {
                (kind == Kind::Body)
                    .then(|| chain_for(pattern, extended))
                    .flatten()
                    .map(Gate::Chain)
            })
    }

    /// How many atoms a match holds (1 for a chain).
    fn times(&self) -> u32 {
        match self {
            Gate::Atoms(_, t) | Gate::AsciiAtoms(_, t) | Gate::LetterAtoms(_, t) => *t,
            Gate::Chain(_) => 1,
        }
    }
}

/// The atoms of one automaton, each once, and the rules each names: on any text, and
/// on ASCII text only.
#[derive(Default)]
struct AtomTable {
    patterns: Vec<Vec<u8>>,
    index: HashMap<Vec<u8>, usize>,
    rules: Vec<Vec<usize>>,
    ascii_rules: Vec<Vec<usize>>,
}

impl AtomTable {
    fn add(&mut self, atom: &[u8], rule: usize, ascii_only: bool) {
        let atom = atom.to_ascii_lowercase();
        let slot = match self.index.get(&atom) {
            Some(&slot) => slot,
            None => {
                self.index.insert(atom.clone(), self.patterns.len());
                self.patterns.push(atom);
                self.rules.push(Vec::new());
                self.ascii_rules.push(Vec::new());
                self.patterns.len() - 1
            }
        };
        if ascii_only {
            self.ascii_rules[slot].push(rule);
        } else {
            self.rules[slot].push(rule);
        }
    }

    /// The search for the atoms (None if there are none), in text in ASCII lower case.
    fn automaton(&self) -> Option<AtomSearch> {
        AtomSearch::new(&self.patterns)
    }
}

/// One regex for the `freemail_domains` written with `*` (any run of characters but a dot).
fn freemail_wildcards(domains: &[String]) -> Option<regex::Regex> {
    let parts: Vec<String> = domains
        .iter()
        .filter(|d| d.contains('*'))
        .map(|d| regex::escape(d).replace(r"\*", "[^.]*"))
        .collect();
    (!parts.is_empty())
        .then(|| regex::Regex::new(&format!("^(?:{})$", parts.join("|"))).ok())
        .flatten()
}

/// Marks the rules that must run: scored ones, and everything their metas name.
fn active_rules(rules: &[CompiledRule], by_name: &HashMap<String, usize>) -> Vec<bool> {
    let mut active = vec![false; rules.len()];
    let mut stack: Vec<usize> = (0..rules.len())
        .filter(|&i| rules[i].scores_any() && !rules[i].name.starts_with("__"))
        .collect();
    while let Some(i) = stack.pop() {
        if active[i] {
            continue;
        }
        active[i] = true;
        if let CompiledTest::Meta(expr) = &rules[i].test {
            let mut names = Vec::new();
            expr.names(&mut names);
            stack.extend(names.iter().filter_map(|n| by_name.get(n)).copied());
        }
    }
    active
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_by_match_ends_counts_as_find_iter_does() {
        let text = "eee é ë le petit e\nexpire ee xx e\n\n aaa bab abba ";
        for pattern in [
            r"e",
            r"(?:e|\xc3[\xa8-\xab])",
            r"e+",
            r"\be\w*",
            r"(?m)^\s*\S",
            r"(?m)^",
            r"a*",
            r"b?",
            r"ab|a",
            r"(?m)$",
            r"zzz",
        ] {
            let r = rule_regex(pattern, false).expect("compiles");
            for max in [1, 2, 5, 1000] {
                let expected = r.find_iter(text.as_bytes()).take(max as usize).count() as u32;
                assert_eq!(
                    count_ends(&r, text.as_bytes(), max),
                    expected,
                    "{pattern} {max}"
                );
            }
        }
    }
}
