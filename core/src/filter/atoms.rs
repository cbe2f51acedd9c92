//! Literal atoms that any match of a regex must contain: the keys of the prefilter.
//!
//! From the regex's syntax tree: a literal is its own atom; a concatenation needs the atoms
//! of one of its parts (the best one is chosen); an alternation needs one atom of each
//! branch; a repetition of at least once needs its body's. Atoms are compared ASCII
//! case-insensitively by the prefilter, so case does not matter here.

use regex_syntax::hir::{Hir, HirKind};

/// Shortest atom worth filtering on: shorter ones match nearly everywhere.
const MIN_ATOM: usize = 3;
/// More atoms than this for one rule make the prefilter slower than the rule.
const MAX_ATOMS: usize = 64;

/// The atoms of a pattern (without case folding applied), or None if it has none.
/// `extended`: the pattern has Perl's `/x` flag (whitespace and `#` comments ignored).
pub fn required_atoms(pattern: &str, extended: bool) -> Option<Vec<Vec<u8>>> {
    let relaxed = relax(pattern);
    let hir = regex_syntax::ParserBuilder::new()
        .ignore_whitespace(extended)
        .unicode(false)
        .utf8(false)
        .build()
        .parse(&relaxed)
        .ok()?;
    let atoms = of(&hir)?;
    (atoms.iter().all(|a| a.len() >= MIN_ATOM) && atoms.len() <= MAX_ATOMS).then_some(atoms)
}

/// The pattern without what `regex-syntax` cannot read and a match does not need to
/// contain: look-around groups are dropped, back-references and atomic groups loosened.
/// Any match of the original matches the relaxed pattern, so its atoms remain required.
fn relax(pattern: &str) -> String {
    let b = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            if b[i + 1].is_ascii_digit() && b[i + 1] != b'0' {
                // A back-reference: anything.
                out.push_str("(?s:.*)");
            } else {
                out.push_str(&pattern[i..i + 2]);
            }
            i += 2;
            continue;
        }
        let rest = &pattern[i..];
        if rest.starts_with("(?=")
            || rest.starts_with("(?!")
            || rest.starts_with("(?<=")
            || rest.starts_with("(?<!")
        {
            // Skip the whole group, respecting nesting and escapes.
            let mut depth = 0;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'\\' => j += 1,
                    b'(' => depth += 1,
                    b')' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j + 1;
            continue;
        }
        if rest.starts_with("(?>") {
            out.push_str("(?:");
            i += 3;
            continue;
        }
        let c = rest.chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

fn quality(atoms: &[Vec<u8>]) -> usize {
    let shortest = atoms.iter().map(Vec::len).min().unwrap_or(0);
    if shortest < MIN_ATOM || atoms.len() > MAX_ATOMS {
        0
    } else {
        shortest * 100 / atoms.len().max(1)
    }
}

fn of(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Literal(lit) => Some(vec![lit.0.to_vec()]),
        HirKind::Capture(c) => of(&c.sub),
        HirKind::Repetition(r) if r.min >= 1 => of(&r.sub),
        HirKind::Concat(parts) => {
            // Adjacent literals join into one longer atom.
            let mut best: Option<Vec<Vec<u8>>> = None;
            let mut run: Vec<u8> = Vec::new();
            let consider = |cand: Option<Vec<Vec<u8>>>, best: &mut Option<Vec<Vec<u8>>>| {
                if let Some(c) = cand {
                    if best.as_ref().is_none_or(|b| quality(&c) > quality(b)) {
                        *best = Some(c);
                    }
                }
            };
            for p in parts {
                if let HirKind::Literal(lit) = p.kind() {
                    run.extend_from_slice(&lit.0);
                    continue;
                }
                if !run.is_empty() {
                    consider(Some(vec![std::mem::take(&mut run)]), &mut best);
                }
                consider(of(p), &mut best);
            }
            if !run.is_empty() {
                consider(Some(vec![run]), &mut best);
            }
            best.filter(|b| quality(b) > 0)
        }
        HirKind::Alternation(branches) => {
            let mut all = Vec::new();
            for b in branches {
                all.extend(of(b)?);
            }
            Some(all)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(atoms(r"click (?:here|now)"), Some(vec!["click ".into()]));
        assert_eq!(
            atoms(r"(?:cheap|free) (?:meds|pills)"),
            Some(vec!["cheap".into(), "free".into()])
        );
        assert_eq!(atoms(r"\d+\.\d+"), None);
        assert_eq!(atoms(r"a.b"), None);
        assert_eq!(atoms(r"(?:foo)?bar"), Some(vec!["bar".into()]));
        assert_eq!(atoms(r"\.biz\b"), Some(vec![".biz".into()]));
        assert_eq!(atoms(r"(?!foo)barbaz(?<=z)"), Some(vec!["barbaz".into()]));
        assert_eq!(atoms(r"(\w+) money \1"), Some(vec![" money ".into()]));
        // Under /x spaces and comments are not part of the pattern: "money" follows
        // "free" and a whitespace character, not a space.
        let extended = required_atoms(r"free\s money # comment", true).unwrap();
        assert!(extended.iter().all(|a| !a.contains(&b' ')), "{extended:?}");
        assert_eq!(atoms(r"free\s money"), Some(vec![" money".into()]));
    }
}
