//! A bit-parallel gate for the rules that spell a word letter by letter, each letter any
//! of its look-alikes (`FUZZY_CREDIT`: `c`, `k`, `@`, `ç`... then `r`... with an optional
//! non-word byte between letters). Such rules have no atom, so without a gate each is a
//! pass of its own over every body. Here every such rule is a chain of positions, each a
//! set of bytes (all the bytes its part of the pattern can match), and one shift-and pass
//! over the text follows all chains at once, 64 positions to a machine word.
//!
//! A chain matches a superset of what its rule matches: a part that cannot be empty is
//! matched as one or more bytes of its set, a part that can be empty as any run of its
//! bytes, assertions and look-around are dropped. So a rule whose chain does not match
//! cannot match; one whose chain matches runs as before.
//!
//! Look-alike tags also spell letters as HTML character references (`&#1010;`); taking
//! those bytes into the sets would make them match most words, so the chains leave out
//! every branch that starts with `&#`, and a text holding `&#` does not use the gate.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Chains with fewer selective positions than this match too much text to be worth a
/// gate.
const MIN_POSITIONS: usize = 4;
/// A position is selective if it matches at most this many ASCII bytes (both cases
/// counted; bytes above 0x7F, from look-alikes spelled in UTF-8, are not counted: only
/// text that is not ASCII holds them). Broader ones (white space in its many spellings)
/// may sit between selective ones.
const MAX_SET: usize = 24;

/// One position of a chain: the bytes that enter it (from the position before, or
/// anywhere for the first) and the bytes that keep it (its own, and those of an optional
/// part after it).
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(into = "PositionBits", from = "PositionBits")]
pub struct Position {
    enter: [bool; 256],
    stay: [bool; 256],
}

/// A [`Position`] as bits, as the rules' compile cache keeps it.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub struct PositionBits {
    enter: [u64; 4],
    stay: [u64; 4],
}

fn to_bits(set: &[bool; 256]) -> [u64; 4] {
    let mut bits = [0u64; 4];
    for (byte, _) in set.iter().enumerate().filter(|(_, on)| **on) {
        bits[byte / 64] |= 1 << (byte % 64);
    }
    bits
}

fn from_bits(bits: &[u64; 4]) -> [bool; 256] {
    std::array::from_fn(|byte| bits[byte / 64] & (1 << (byte % 64)) != 0)
}

impl From<Position> for PositionBits {
    fn from(p: Position) -> PositionBits {
        PositionBits {
            enter: to_bits(&p.enter),
            stay: to_bits(&p.stay),
        }
    }
}

impl From<PositionBits> for Position {
    fn from(p: PositionBits) -> Position {
        Position {
            enter: from_bits(&p.enter),
            stay: from_bits(&p.stay),
        }
    }
}

/// The chain of a pattern (its `/x` flag given), if it has one worth a gate.
pub fn chain_for(pattern: &str, extended: bool) -> Option<Vec<Position>> {
    let hir = regex_syntax::ParserBuilder::new()
        .ignore_whitespace(extended)
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&super::atoms::relax(pattern))
        .ok()?;
    let parts: Vec<&Hir> = match unwrap_captures(&hir).kind() {
        HirKind::Concat(parts) => parts.iter().collect(),
        _ => vec![&hir],
    };
    let mut chain: Vec<Position> = Vec::new();
    let mut selective = 0;
    for part in parts {
        if matches!(part.kind(), HirKind::Look(_)) {
            continue;
        }
        let mut bytes = [false; 256];
        bytes_of(part, &mut bytes)?;
        if part.properties().minimum_len() == Some(0) {
            // Optional: a run of its bytes keeps the position before it (none before
            // the first position: the search is unanchored anyway).
            if let Some(last) = chain.last_mut() {
                for (s, b) in last.stay.iter_mut().zip(bytes) {
                    *s |= b;
                }
            }
            continue;
        }
        if bytes[..0x80].iter().filter(|b| **b).count() <= MAX_SET {
            selective += 1;
        }
        chain.push(Position {
            enter: bytes,
            stay: bytes,
        });
    }
    (selective >= MIN_POSITIONS && chain.len() <= 64).then_some(chain)
}

fn unwrap_captures(hir: &Hir) -> &Hir {
    match hir.kind() {
        HirKind::Capture(c) => unwrap_captures(&c.sub),
        _ => hir,
    }
}

/// Marks every byte `hir` can match (both cases of ASCII letters); alternation branches
/// that start with `&#` are left out (see the module's note). None for a class beyond
/// bytes.
fn bytes_of(hir: &Hir, out: &mut [bool; 256]) -> Option<()> {
    let mut mark = |b: u8| {
        out[b.to_ascii_lowercase() as usize] = true;
        out[b.to_ascii_uppercase() as usize] = true;
    };
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(lit) => lit.0.iter().for_each(|&b| mark(b)),
        HirKind::Class(Class::Bytes(c)) => {
            for r in c.ranges() {
                (r.start()..=r.end()).for_each(&mut mark);
            }
        }
        HirKind::Class(Class::Unicode(c)) => {
            for r in c.ranges() {
                let (lo, hi) = (u32::from(r.start()), u32::from(r.end()));
                if hi > 0xFF {
                    return None;
                }
                (lo as u8..=hi as u8).for_each(&mut mark);
            }
        }
        HirKind::Repetition(r) => bytes_of(&r.sub, out)?,
        HirKind::Capture(c) => bytes_of(&c.sub, out)?,
        HirKind::Concat(parts) => {
            for p in parts {
                bytes_of(p, out)?;
            }
        }
        HirKind::Alternation(branches) => {
            for b in branches.iter().filter(|b| !starts_with_char_ref(b)) {
                bytes_of(b, out)?;
            }
        }
    }
    Some(())
}

/// Whether every match of `hir` starts with `&#` (a numeric character reference).
fn starts_with_char_ref(hir: &Hir) -> bool {
    let prefixes = regex_syntax::hir::literal::Extractor::new().extract(hir);
    prefixes
        .literals()
        .is_some_and(|l| !l.is_empty() && l.iter().all(|l| l.as_bytes().starts_with(b"&#")))
}

/// Words followed together in one pass over the text: the chains fill whole groups of
/// this many words, so that each byte's step is a fixed run of word operations the
/// compiler unrolls (and vectorises), with no bounds check per word.
const GROUP: usize = 4;

/// The chains of many rules, packed into machine words, followed in one pass per group
/// of [`GROUP`] words.
pub struct ChainGate {
    /// Per group, per byte, three runs of [`GROUP`] words: the positions the byte enters
    /// from the position before (first positions left out, so that a chain's last bit
    /// does not run into the next chain's first), the first positions it enters, and the
    /// positions it keeps. One byte's step reads one short run.
    steps: Vec<u64>,
    /// Per word: its chains' last positions, with the rule each stands for.
    last: Vec<Vec<(u64, usize)>>,
}

/// The words of one group's step for one byte.
const STEP: usize = 3 * GROUP;

impl ChainGate {
    /// A gate over `(rule, chain)` pairs.
    pub fn new(chains: Vec<(usize, Vec<Position>)>) -> ChainGate {
        // Chains to words, first fit in order: (word, first bit) of each; then the words
        // rounded up to whole groups.
        let mut placed = Vec::with_capacity(chains.len());
        let (mut words, mut used) = (0usize, 64usize);
        for (_, chain) in &chains {
            if used + chain.len() > 64 {
                words += 1;
                used = 0;
            }
            placed.push((words - 1, used));
            used += chain.len();
        }
        let words = words.div_ceil(GROUP) * GROUP;
        let mut enter = vec![0u64; 256 * words];
        let mut stay = vec![0u64; 256 * words];
        let mut first = vec![0u64; words];
        let mut last = vec![Vec::new(); words];
        for ((rule, chain), (word, at)) in chains.into_iter().zip(placed) {
            for (k, p) in chain.iter().enumerate() {
                let bit = 1u64 << (at + k);
                for b in 0..256 {
                    if p.enter[b] {
                        enter[b * words + word] |= bit;
                    }
                    if p.stay[b] {
                        stay[b * words + word] |= bit;
                    }
                }
            }
            first[word] |= 1 << at;
            last[word].push((1u64 << (at + chain.len() - 1), rule));
        }
        let mut steps = Vec::with_capacity(3 * 256 * words);
        for group in (0..words).step_by(GROUP) {
            for b in 0..256 {
                let row = b * words + group;
                let run = row..row + GROUP;
                let firsts = &first[group..group + GROUP];
                let entered = enter[run.clone()].iter().zip(firsts);
                steps.extend(entered.clone().map(|(e, f)| e & !f));
                steps.extend(entered.map(|(e, f)| e & f));
                steps.extend_from_slice(&stay[run]);
            }
        }
        ChainGate { steps, last }
    }

    /// Whether the gate may be used on `text` (it holds no `&#`).
    pub fn applies(text: &[u8]) -> bool {
        memchr::memmem::find(text, b"&#").is_none()
    }

    /// Adds to `out` the rules whose chain matches somewhere in `text`.
    pub fn passing(&self, text: &[u8], out: &mut Vec<usize>) {
        for (group, table) in self.steps.chunks_exact(256 * STEP).enumerate() {
            let reached = follow(table, text);
            for (k, reached) in reached.iter().enumerate() {
                let last = self
                    .last
                    .get(group * GROUP + k)
                    .map_or(&[][..], Vec::as_slice);
                out.extend(
                    last.iter()
                        .filter(|(bit, _)| reached & bit != 0)
                        .map(|&(_, rule)| rule),
                );
            }
        }
    }
}

/// One group's chains followed over `text` (`table`: its steps, [`STEP`] words a byte):
/// every position each word was in at some byte.
fn follow(table: &[u64], text: &[u8]) -> [u64; GROUP] {
    let mut state = [0u64; GROUP];
    let mut reached = [0u64; GROUP];
    for &c in text {
        let Some(step) = table.get(c as usize * STEP..(c as usize + 1) * STEP) else {
            continue;
        };
        let (shifted, rest) = step.split_at(GROUP);
        let (fresh, stay) = rest.split_at(GROUP);
        // Each word's step is independent of the others': they overlap in the CPU.
        for k in 0..GROUP {
            state[k] = ((state[k] << 1) & shifted[k]) | fresh[k] | (state[k] & stay[k]);
            reached[k] |= state[k];
        }
    }
    reached
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(patterns: &[&str]) -> ChainGate {
        let chains = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| (i, chain_for(p, false).expect("a chain")))
            .collect();
        ChainGate::new(chains)
    }

    fn passing(g: &ChainGate, text: &str) -> Vec<usize> {
        let mut out = Vec::new();
        g.passing(text.as_bytes(), &mut out);
        out
    }

    #[test]
    fn chains_match_what_their_rules_match() {
        let credit = r"\b(?!credit)[ck@][\W_]?[r\xAE][\W_]?(?:[e3]|\xC3\xA9)[\W_]?[d][\W_]?[i1!|l][\W_]?[t7]\b";
        let pill = r"(?:p|&#112;)[\W_]{0,3}i[\W_]{0,3}l{1,2}[\W_]{0,3}s";
        let g = gate(&[credit, pill]);
        assert_eq!(passing(&g, "get your k.r.3.d.1.t here"), [0]);
        assert_eq!(passing(&g, "cr\u{e9}d!t and p-i-l-l-s"), [0, 1]);
        // The plain word passes the gate (the rule's look-ahead is its regex's job).
        assert_eq!(passing(&g, "credit"), [0]);
        assert!(passing(&g, "nothing to see here, decide quickly").is_empty());
        assert!(ChainGate::applies(b"AT&T, Q & A"));
        assert!(!ChainGate::applies(b"&#112;ills"));
        // A regex match is always a chain match.
        let re = regex::bytes::Regex::new(&format!("(?i){pill}")).unwrap();
        for text in ["P__I__LL__S", "pills", "p i l s", "pill s"] {
            assert!(re.is_match(text.as_bytes()), "{text}");
            assert_eq!(passing(&g, text), [1], "{text}");
        }
    }

    #[test]
    fn chains_fill_words_and_cross_word_boundaries() {
        // 20 chains of 5 positions: two words, the second partly filled.
        let patterns: Vec<String> = (0..20)
            .map(|i| {
                format!(
                    "a[\\W_]?b[\\W_]?c[\\W_]?d[\\W_]?{}",
                    (b'e' + i as u8) as char
                )
            })
            .collect();
        let refs: Vec<&str> = patterns.iter().map(String::as_str).collect();
        let g = gate(&refs);
        assert_eq!(g.steps.len(), 256 * STEP, "two words, one group");
        assert_eq!(g.last.iter().filter(|l| !l.is_empty()).count(), 2);
        assert_eq!(passing(&g, "a-b-c-d-q"), [12]);
        assert_eq!(passing(&g, "abcdx abcde"), [0, 19]);
        assert!(passing(&g, "abcx").is_empty());
    }

    #[test]
    fn patterns_without_a_selective_chain_have_none() {
        assert!(chain_for(r"(?:foo|barbaz)", false).is_none(), "too short");
        assert!(
            chain_for(r"[a-z]+\s\w+\s\w+", false).is_none(),
            "two selective"
        );
        assert!(
            chain_for(r"\w+\W+\w+\W+\w+", false).is_none(),
            "none selective"
        );
        // Broad positions between selective ones are kept.
        assert_eq!(
            chain_for(r"c\s*l\s*i\W+c\s*k", false).map(|c| c.len()),
            Some(6)
        );
    }
}
