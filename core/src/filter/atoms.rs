//! Literal atoms that any match of a regex must contain: the keys of the prefilter.
//!
//! From the regex's syntax tree, each part gives what it can: every string it matches when
//! they are few (a literal; a class of a few bytes; an alternation or a bounded repetition
//! of such parts), and atoms one of which every match of it contains. A concatenation
//! combines the strings of adjacent finite parts (`[i1]m[i1]tr` gives `imitr`, `1mitr`,
//! `im1tr`, `1m1tr`) and keeps the most selective choice; an alternation needs an atom of
//! each branch; a repetition at least once needs its body's. Atoms are compared ASCII
//! case-insensitively by the prefilter, so they are lowercased here.

use regex_syntax::hir::{Class, Hir, HirKind};

/// Shortest atom worth filtering on: shorter ones match nearly everywhere.
const MIN_ATOM: usize = 3;
/// More atoms than this for one rule make the prefilter slower than the rule.
const MAX_ATOMS: usize = 256;
/// Most strings a finite part may stand for (a class of up to `MAX_CLASS` bytes is such a
/// part; so are combinations of parts, up to this many).
const MAX_SET: usize = 256;
const MAX_CLASS: usize = 16;
/// Most atoms one window of combined parts may give: an alternation needs the atoms of
/// every branch, and past `MAX_ATOMS` in all it has none, so each branch keeps few.
const MAX_WINDOW: usize = 64;
/// Bounded repetitions of a finite part are expanded up to this many times.
const MAX_REPEAT: u32 = 8;

/// The ASCII letters and digits of `text`, in order, lowercased: a match's letters and
/// digits are a contiguous run of it.
pub fn alnum_projection(text: &[u8]) -> Vec<u8> {
    alnum_projection_at(text, false).0
}

/// [`alnum_projection`], and if `with_origin`, the offset in `text` of each of its bytes.
pub fn alnum_projection_at(text: &[u8], with_origin: bool) -> (Vec<u8>, Vec<u32>) {
    // Every byte is written and the end moves on past letters and digits only: no
    // branch per byte to mispredict. A table gives each byte's lowered letter or digit, 0
    // for the others.
    static LOWERED: [u8; 256] = {
        let mut table = [0u8; 256];
        let mut b = 0;
        while b < 256 {
            let byte = b as u8;
            if byte.is_ascii_alphanumeric() {
                table[b] = byte.to_ascii_lowercase();
            }
            b += 1;
        }
        table
    };
    let mut letters = vec![0u8; text.len()];
    let mut origin = vec![0u32; if with_origin { text.len() } else { 0 }];
    let mut n = 0;
    for (i, &b) in text.iter().enumerate() {
        let lowered = LOWERED[usize::from(b)];
        letters[n] = lowered;
        if with_origin {
            origin[n] = i as u32;
        }
        n += usize::from(lowered != 0);
    }
    letters.truncate(n);
    origin.truncate(n);
    (letters, origin)
}

/// What the text a pattern will run on may hold.
#[derive(Clone, Copy, PartialEq)]
pub enum Text {
    Any,
    /// Pure ASCII: many rules that have no atom in general (a letter may be any of dozens
    /// of look-alikes) have some there, where only the ASCII look-alikes can occur. No
    /// atom at all (an empty list): the pattern cannot match ASCII text.
    Ascii,
    /// Only ASCII letters and digits ([`alnum_projection`]): rules that spell a word with
    /// a few non-alphanumeric bytes allowed between its letters (`p[_\W]{0,3}h...`) have
    /// no atom in the text itself but do there, where those bytes are gone.
    Alnum,
}

/// The atoms of a pattern on `text` (not case-folded: the prefilter compares them
/// ASCII case-insensitively), or None if it has none; `extended`: the pattern has Perl's
/// `/x` flag. And how many of them, at distinct offsets, any match holds:
/// a pattern repeating a part at least n times (`(?:name:\s*_+\s*){5}`) whose atoms come
/// from that part holds n.
pub fn atoms_for(pattern: &str, extended: bool, text: Text) -> Option<(Vec<Vec<u8>>, u32)> {
    let relaxed = relax(pattern);
    let hir = regex_syntax::ParserBuilder::new()
        .ignore_whitespace(extended)
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&relaxed)
        .ok()?;
    // Minimizing keeps the count: a match's copies of the repeated part are disjoint,
    // so the shorter atoms inside their atoms are at distinct offsets too.
    of(&hir, text)
        .atoms()
        .map(|(atoms, times)| (minimal(atoms), times))
}

/// The pattern without what `regex-syntax` cannot read and a match does not need to
/// contain: look-around groups are dropped, back-references and atomic groups loosened.
/// Any match of the original matches the relaxed pattern, so its atoms remain required.
pub(crate) fn relax(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        if let Some(escaped) = rest.strip_prefix('\\') {
            let mut chars = escaped.chars();
            match chars.next() {
                // A back-reference: anything.
                Some(d) if d.is_ascii_digit() && d != '0' => out.push_str("(?s:.*)"),
                // Any other escape, with the whole character it escapes.
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            }
            rest = chars.as_str();
            continue;
        }
        if ["(?=", "(?!", "(?<=", "(?<!"]
            .iter()
            .any(|look| rest.starts_with(look))
        {
            // Skip the whole group, respecting nesting and escapes.
            let mut depth = 0;
            let mut chars = rest.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = chars.as_str();
            continue;
        }
        if let Some(after) = rest.strip_prefix("(?>") {
            out.push_str("(?:");
            rest = after;
            continue;
        }
        out.push(c);
        rest = rest.strip_prefix(c).unwrap_or_default();
    }
    out
}

/// How selective a set of atoms is (higher is better; 0: not worth filtering on). The
/// shortest atom counts most; sixteen alternatives cost about one byte of it.
fn quality(atoms: &[Vec<u8>]) -> f64 {
    if atoms.is_empty() {
        // Nothing can match: no need to run at all.
        return f64::INFINITY;
    }
    let shortest = atoms.iter().map(Vec::len).min().unwrap_or(0);
    if shortest < MIN_ATOM || atoms.len() > MAX_ATOMS {
        0.0
    } else {
        shortest as f64 - (atoms.len() as f64).log(16.0)
    }
}

/// What one part of a pattern gives.
struct Part {
    /// Every string the part matches, when they are few (lowercased, deduplicated).
    exact: Option<Vec<Vec<u8>>>,
    /// Atoms one of which every match of the part contains.
    required: Option<Vec<Vec<u8>>>,
    /// How many occurrences of `required` atoms, at distinct offsets, a match contains.
    times: u32,
    /// For a part with no exact strings that repeats a finite one at least n times
    /// (`d+`, `x{2,}`): the strings of n repetitions, which every match starts and ends
    /// with, so that it can end or begin a window of combined parts.
    edge: Option<Vec<Vec<u8>>>,
}

impl Part {
    fn exact(set: Vec<Vec<u8>>) -> Part {
        Part::finite(Some(set))
    }

    /// A part known only by its strings, if they are few.
    fn finite(exact: Option<Vec<Vec<u8>>>) -> Part {
        Part {
            exact,
            required: None,
            times: 1,
            edge: None,
        }
    }

    /// The better of the part's required atoms and its exact strings taken as atoms, and
    /// how many times a match contains them.
    fn atoms(&self) -> Option<(Vec<Vec<u8>>, u32)> {
        // (Sets are minimized once, at the end: choosing on their full size is cheaper.)
        let exact = self.exact.clone();
        let best = match (exact, &self.required) {
            (Some(e), Some(r)) if quality(&e) >= quality(r) => (e, 1),
            (_, Some(r)) => (r.clone(), self.times),
            (Some(e), None) => (e, 1),
            (None, None) => return None,
        };
        (quality(&best.0) > 0.0).then_some(best)
    }
}

/// The set without duplicates and without strings that contain another of its strings
/// (finding the shorter one is enough).
fn minimal(mut set: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    set.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    set.dedup();
    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(set.len());
    for s in set {
        if !kept.iter().any(|k| contains(&s, k)) {
            kept.push(s);
        }
    }
    kept
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every concatenation of a string of `a` with one of `b`, if there are at most `MAX_SET`.
fn product(a: &[Vec<u8>], b: &[Vec<u8>]) -> Option<Vec<Vec<u8>>> {
    if a.len() * b.len() > MAX_SET {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            out.push([x.as_slice(), y.as_slice()].concat());
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

/// The strings of `min` to `max` repetitions of a set, if there are at most `MAX_SET`.
fn repeat(set: &[Vec<u8>], min: u32, max: u32) -> Option<Vec<Vec<u8>>> {
    let mut power = vec![Vec::new()];
    let mut all = if min == 0 {
        vec![Vec::new()]
    } else {
        Vec::new()
    };
    for k in 1..=max {
        power = product(&power, set)?;
        if k >= min {
            all.extend(power.iter().cloned());
            all.sort();
            all.dedup();
            if all.len() > MAX_SET {
                return None;
            }
        }
    }
    Some(all)
}

/// What one byte of a class leaves in the alphanumeric projection: one of its letters
/// or digits (lowercased), or nothing if it may be another byte. None if too many.
fn projected_class(ranges: &[(u32, u32)]) -> Option<Vec<Vec<u8>>> {
    let mut seen = [false; 128];
    let mut other = false;
    for &(lo, hi) in ranges {
        for b in lo..=hi.min(0xFF) {
            let b = b as u8;
            if b.is_ascii_alphanumeric() {
                seen[b.to_ascii_lowercase() as usize] = true;
            } else {
                other = true;
            }
        }
        other |= hi > 0xFF;
    }
    let mut set: Vec<Vec<u8>> = (0..128u8)
        .filter(|&b| seen[b as usize])
        .map(|b| vec![b])
        .collect();
    if set.len() > MAX_CLASS {
        return None;
    }
    if other {
        set.push(Vec::new());
    }
    Some(set)
}

fn lowered(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

/// The bytes of a class, lowercased, if there are at most `MAX_CLASS` of them.
fn class_bytes(ranges: impl Iterator<Item = (u32, u32)>, text: Text) -> Option<Vec<Vec<u8>>> {
    let mut seen = [false; 256];
    let mut count = 0;
    for (lo, hi) in ranges {
        let hi = if text == Text::Ascii {
            hi.min(0x7F)
        } else {
            hi
        };
        if lo > hi {
            continue;
        }
        if hi > 0xFF || hi - lo >= MAX_CLASS as u32 {
            return None;
        }
        for b in lo..=hi {
            let b = (b as u8).to_ascii_lowercase();
            if !seen[b as usize] {
                seen[b as usize] = true;
                count += 1;
                if count > MAX_CLASS {
                    return None;
                }
            }
        }
    }
    Some(
        (0..=255u8)
            .filter(|&b| seen[b as usize])
            .map(|b| vec![b])
            .collect(),
    )
}

fn of(hir: &Hir, text: Text) -> Part {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => Part::exact(vec![Vec::new()]),
        // A literal with a byte ASCII text cannot hold matches nothing there.
        HirKind::Literal(lit) if text == Text::Ascii && !lit.0.is_ascii() => {
            Part::exact(Vec::new())
        }
        HirKind::Literal(lit) if text == Text::Alnum => Part::exact(vec![alnum_projection(&lit.0)]),
        HirKind::Literal(lit) => Part::exact(vec![lowered(&lit.0)]),
        HirKind::Class(c) => {
            let ranges: Vec<(u32, u32)> = match c {
                Class::Bytes(c) => c
                    .ranges()
                    .iter()
                    .map(|r| (r.start().into(), r.end().into()))
                    .collect(),
                Class::Unicode(c) => c
                    .ranges()
                    .iter()
                    .map(|r| (r.start().into(), r.end().into()))
                    .collect(),
            };
            Part::finite(if text == Text::Alnum {
                projected_class(&ranges)
            } else {
                class_bytes(ranges.into_iter(), text)
            })
        }
        HirKind::Capture(c) => of(&c.sub, text),
        HirKind::Repetition(r) => {
            let sub = of(&r.sub, text);
            let exact = match (&sub.exact, r.max) {
                (Some(e), Some(max)) if max <= MAX_REPEAT => repeat(e, r.min, max),
                _ => None,
            };
            // Each of the at least `min` copies holds the body's atoms.
            let (required, times) = match sub.atoms() {
                Some((atoms, times)) if r.min >= 1 => (Some(atoms), times.saturating_mul(r.min)),
                _ => (None, 1),
            };
            let edge = match (&exact, &sub.exact) {
                (None, Some(e)) if r.min >= 1 && r.min <= MAX_REPEAT => repeat(e, r.min, r.min),
                _ => None,
            };
            Part {
                exact,
                required,
                times,
                edge,
            }
        }
        HirKind::Concat(parts) => concat(&parts.iter().map(|p| of(p, text)).collect::<Vec<_>>()),
        HirKind::Alternation(branches) => {
            let parts: Vec<Part> = branches.iter().map(|b| of(b, text)).collect();
            let exact = parts
                .iter()
                .map(|p| p.exact.clone())
                .collect::<Option<Vec<_>>>()
                .map(|sets| {
                    let mut all: Vec<Vec<u8>> = sets.into_iter().flatten().collect();
                    all.sort();
                    all.dedup();
                    all
                })
                .filter(|a| a.len() <= MAX_SET);
            let branches = parts.iter().map(Part::atoms).collect::<Option<Vec<_>>>();
            // Whichever branch matched, its atoms are there as many times as it needs.
            let times = branches
                .as_ref()
                .and_then(|b| b.iter().map(|(_, t)| *t).min())
                .unwrap_or(1);
            let required = branches
                .map(|sets| {
                    let mut all: Vec<Vec<u8>> =
                        sets.into_iter().flat_map(|(atoms, _)| atoms).collect();
                    all.sort();
                    all.dedup();
                    all
                })
                .filter(|a| a.len() <= MAX_ATOMS);
            Part {
                exact,
                required,
                times,
                edge: None,
            }
        }
    }
}

/// A concatenation: its exact strings if few, and the best atoms among its parts' and
/// those of each window of adjacent finite parts, combined.
fn concat(parts: &[Part]) -> Part {
    let mut exact = Some(vec![Vec::new()]);
    for p in parts {
        exact = match (&exact, &p.exact) {
            (Some(a), Some(b)) => product(a, b),
            _ => None,
        };
    }
    let mut best: Option<(Vec<Vec<u8>>, u32)> = None;
    let mut consider = |cand: Option<(Vec<Vec<u8>>, u32)>| {
        if let Some(c) = cand {
            if best.as_ref().is_none_or(|b| quality(&c.0) > quality(&b.0)) {
                best = Some(c);
            }
        }
    };
    for p in parts {
        consider(p.atoms());
    }
    // The window of adjacent finite parts whose combinations look most selective: its
    // shortest string is the sum of the parts' shortest, its size their product. A
    // repetition without exact strings may begin or end a window with its edge strings.
    let strings = |k: usize, first: bool, last: bool| -> Option<&Vec<Vec<u8>>> {
        let p = &parts[k];
        p.exact
            .as_ref()
            .or(if first || last { p.edge.as_ref() } else { None })
    };
    let mut window: Option<(f64, usize, usize)> = None;
    for i in 0..parts.len() {
        let (mut shortest, mut count) = (0usize, 1usize);
        for (j, part) in parts.iter().enumerate().skip(i) {
            let Some(e) = strings(j, j == i, true) else {
                break;
            };
            count = count.saturating_mul(e.len());
            if count > MAX_WINDOW {
                break;
            }
            shortest += e.iter().map(Vec::len).min().unwrap_or(0);
            let estimate = shortest as f64 - (count as f64).log(16.0);
            if shortest >= MIN_ATOM && window.is_none_or(|(q, ..)| estimate > q) {
                window = Some((estimate, i, j));
            }
            // An edge ends the window (unless it is also its start).
            if j > i && part.exact.is_none() {
                break;
            }
        }
    }
    if let Some((_, i, j)) = window {
        let mut set = Some(vec![Vec::new()]);
        for k in i..=j {
            set = match (&set, strings(k, k == i, k == j)) {
                (Some(a), Some(b)) => product(a, b),
                _ => None,
            };
        }
        consider(set.map(|s| (s, 1)));
    }
    let (required, times) = match best {
        Some((atoms, times)) => (Some(atoms), times),
        None => (None, 1),
    };
    Part {
        exact,
        required,
        times,
        edge: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn required_atoms(pattern: &str, extended: bool) -> Option<Vec<Vec<u8>>> {
        atoms_for(pattern, extended, Text::Any).map(|(atoms, _)| atoms)
    }

    fn required_ascii_atoms(pattern: &str, extended: bool) -> Option<Vec<Vec<u8>>> {
        atoms_for(pattern, extended, Text::Ascii).map(|(atoms, _)| atoms)
    }

    fn required_alnum_atoms(pattern: &str, extended: bool) -> Option<Vec<Vec<u8>>> {
        atoms_for(pattern, extended, Text::Alnum).map(|(atoms, _)| atoms)
    }

    fn atoms(p: &str) -> Option<Vec<String>> {
        required_atoms(p, false).map(|v| {
            v.into_iter()
                .map(|a| String::from_utf8(a).unwrap())
                .collect()
        })
    }

    #[test]
    fn extraction() {
        assert_eq!(atoms(r"\bviagra\b"), Some(vec!["viagra".into()]));
        assert_eq!(
            atoms(r"click (?:here|now)"),
            Some(vec!["click now".into(), "click here".into()])
        );
        assert_eq!(
            atoms(r"(?:cheap|free) (?:meds|pills)"),
            Some(vec![
                "free meds".into(),
                "cheap meds".into(),
                "free pills".into(),
                "cheap pills".into()
            ])
        );
        // Digits around a dot: 100 combinations, too many for one window.
        assert_eq!(atoms(r"\d+\.\d+"), None);
        assert_eq!(atoms(r"a.b"), None);
        assert_eq!(atoms(r"(?:foo)?bar"), Some(vec!["bar".into()]));
        assert_eq!(atoms(r"\.biz\b"), Some(vec![".biz".into()]));
        assert_eq!(atoms(r"(?!foo)barbaz(?<=z)"), Some(vec!["barbaz".into()]));
        assert_eq!(atoms(r"(\w+) money \1"), Some(vec![" money ".into()]));
        // Under /x spaces and comments are not part of the pattern: "money" follows
        // "free" and one whitespace character, not a space after it.
        let extended = required_atoms(r"free\s money # comment", true).unwrap();
        assert_eq!(
            extended.len(),
            6,
            "one atom per whitespace byte: {extended:?}"
        );
        assert!(extended.iter().all(|a| a.len() == "free money".len()));
        let plain = required_atoms(r"free\s money", false).unwrap();
        assert!(plain.iter().all(|a| a.len() == "free  money".len()));
    }

    #[test]
    fn a_repeated_part_needs_its_atoms_as_many_times() {
        let counted = |p: &str, text| atoms_for(p, false, text).map(|(_, times)| times);
        assert_eq!(
            counted(r"(?:(?:name|phone):\s*_+\s*){5}", Text::Any),
            Some(5)
        );
        assert_eq!(
            counted(r"(?:(?:name|phone):\s*_+\s*){3,}", Text::Any),
            Some(3)
        );
        assert_eq!(counted(r"(?:name|phone):\s*_+", Text::Any), Some(1));
        // Nested: three copies of two.
        assert_eq!(counted(r"(?:(?:x\s*name\s*){2}-){3}", Text::Any), Some(6));
        // An alternation holds as many as its poorest branch.
        assert_eq!(counted(r"(?:(?:name\s*){4}|phone)", Text::Any), Some(1));
        // The atoms chosen from outside the repetition count once.
        assert_eq!(
            counted(r"application form(?:\s*[a-z]+:){3}", Text::Any),
            Some(1)
        );
        // Letters and digits of a form spelled with separators between them.
        assert_eq!(
            counted(
                r"(?:(?:n[_\W]?a[_\W]?m[_\W]?e|a[_\W]?g[_\W]?e)[\s:]{1,5}_+\s*){5}",
                Text::Alnum
            ),
            Some(5)
        );
    }

    #[test]
    fn ascii_text_has_atoms_where_look_alikes_hid_them() {
        // Each letter may be one of many bytes: no atom in general...
        let pattern = r"[p\xF0-\xFF][a\xE0-\xFF][y\xE0-\xFF]";
        assert_eq!(required_atoms(pattern, false), None);
        // ...but in ASCII text only the plain letters can occur.
        assert_eq!(
            required_ascii_atoms(pattern, false),
            Some(vec![b"pay".to_vec()])
        );
        // A pattern that needs a non-ASCII byte cannot match ASCII text at all.
        assert_eq!(required_ascii_atoms(r"caf\xE9", false), Some(vec![]));
        assert_eq!(
            required_ascii_atoms(r"(?:caf\xE9|tea)s?", false),
            Some(vec![b"tea".to_vec()])
        );
    }

    #[test]
    fn letters_spelled_apart_have_atoms_in_the_letters() {
        // A word whose letters may be split by up to three other bytes, some of them
        // look-alikes that are not letters at all (è, |): no atom in the text...
        let pattern = r"(?i)(?:\b|\s)[_\W]{0,3}p[_\W]{0,3}h[_\W]{0,3}[e3\xE8-\xEB][_\W]{0,3}n[_\W]{0,3}t[_\W]{0,3}[i1!|l]";
        assert_eq!(required_atoms(pattern, false), None);
        // ...but in its letters and digits it is one run, the look-alikes' places empty.
        let atoms = required_alnum_atoms(pattern, false).expect("atoms");
        for spelled in ["p.h-e n_t!", "ph3nt1", "ph\u{e8}nt|"] {
            let letters = alnum_projection(spelled.as_bytes());
            assert!(
                atoms
                    .iter()
                    .any(|a| letters.windows(a.len()).any(|w| w == a.as_slice())),
                "{spelled}: {atoms:?}"
            );
        }
        assert!(atoms.iter().all(|a| a.len() >= MIN_ATOM));
    }

    #[test]
    fn small_classes_and_repetitions_combine() {
        // Every spelling of the obfuscated word is an atom; case does not matter.
        let mut found = atoms(r"(?i)\b_{0,3}[i1]m[i1]tr[e3]x_{0,3}\b").unwrap();
        found.sort();
        assert_eq!(
            found,
            [
                "1m1tr3x", "1m1trex", "1mitr3x", "1mitrex", "im1tr3x", "im1trex", "imitr3x",
                "imitrex"
            ]
        );
        // An optional part adds nothing required: the shorter spelling covers the longer.
        let paypal = atoms(r"pay-?pal").unwrap();
        assert_eq!(paypal, vec!["paypal".to_string(), "pay-pal".to_string()]);
        // Bounded repetition of a class: every length of it.
        let mut digits = atoms(r"ab[xy]{1,2}c").unwrap();
        digits.sort();
        assert_eq!(digits, ["abxc", "abxxc", "abxyc", "abyc", "abyxc", "abyyc"]);
        // A repetition at least once may begin or end a combination: `d+` is followed
        // by "res" wherever it ends, `s+` starts with one "s".
        assert_eq!(atoms(r"ad+res+e?"), Some(vec!["dres".into()]));
        // A class too wide to expand leaves the literal around it.
        assert_eq!(atoms(r"\w{2}hello\w"), Some(vec!["hello".into()]));
        // Too many combinations: the best window that fits is kept.
        assert!(atoms(r"[a-p][a-p][a-p]xyz").is_some_and(|a| a.len() <= MAX_ATOMS));
    }

    /// Multi-byte characters escaped, in look-around groups and next to back-references.
    #[test]
    fn relaxes_patterns_with_multi_byte_characters() {
        assert_eq!(
            relax("é(?=é\\é)ü\\1é(?>é)\\é(?<!é(é)\\)é)ß\\"),
            "éü(?s:.*)é(?:é)\\éß\\"
        );
        assert_eq!(relax("(?!é"), "");
        assert_eq!(atoms("réduit(?=€)"), Some(vec!["réduit".into()]));
    }
}
