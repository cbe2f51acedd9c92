//! The prefilter's search for atoms in a text: every occurrence of every atom, overlapping
//! ones included, with where it starts.
//!
//! Two automata, by how many atoms a kind of text has. Many (the body's ~7,000, the
//! headers' ~1,900): an Aho-Corasick automaton stored as a double array (`daachorse`), where
//! a transition is two array reads; `aho-corasick`'s contiguous NFA searches a sparse list
//! per state and took about twice the instructions over the same bodies. Few (the full
//! message's 9, the raw body's 61): `aho-corasick`'s own choice, a DFA that skips ahead
//! to the bytes that can start an atom, where the double array walks every byte.
//!
//! Both search text in ASCII lower case, as the atoms are: a case-sensitive automaton
//! over lowered text finds what an ASCII case-insensitive one finds in the text, at the
//! same offsets, with half the transitions.

use aho_corasick::AhoCorasick;
use daachorse::DoubleArrayAhoCorasick;

/// Up to this many atoms, the DFA with its skipping ahead (`aho-corasick` builds a DFA up
/// to 100 patterns).
const FEW: usize = 100;

pub enum AtomSearch {
    Few(AhoCorasick),
    Many(DoubleArrayAhoCorasick<u32>),
}

impl AtomSearch {
    /// The search for `atoms` (distinct, none empty, in ASCII lower case); None if there
    /// are none or the automaton cannot be built.
    pub fn new(atoms: &[Vec<u8>]) -> Option<AtomSearch> {
        if atoms.is_empty() {
            None
        } else if atoms.len() <= FEW {
            AhoCorasick::new(atoms).ok().map(AtomSearch::Few)
        } else {
            DoubleArrayAhoCorasick::new(atoms)
                .ok()
                .map(AtomSearch::Many)
        }
    }

    /// Calls `found(atom, start)` for every occurrence of an atom in `lowered` (text in
    /// ASCII lower case), by the atom's index in the list it was built from.
    pub fn each(&self, lowered: &[u8], mut found: impl FnMut(usize, usize)) {
        match self {
            AtomSearch::Few(ac) => {
                for m in ac.find_overlapping_iter(lowered) {
                    found(m.pattern().as_usize(), m.start());
                }
            }
            AtomSearch::Many(da) => {
                for m in da.find_overlapping_iter(lowered) {
                    found(m.value() as usize, m.start());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (atom, start) the search reports, sorted.
    fn found(search: &AtomSearch, text: &str) -> Vec<(usize, usize)> {
        let mut all = Vec::new();
        search.each(text.as_bytes(), |atom, at| all.push((atom, at)));
        all.sort_unstable();
        all
    }

    #[test]
    fn both_automata_find_every_overlapping_occurrence() {
        let few: Vec<Vec<u8>> = vec![b"abc".to_vec(), b"bcd".to_vec(), b"cd".to_vec()];
        // The same three atoms among enough others to take the double array.
        let mut many = few.clone();
        many.extend((0..FEW).map(|i| format!("zz{i:03}").into_bytes()));
        let few = AtomSearch::new(&few).expect("few atoms");
        let many = AtomSearch::new(&many).expect("many atoms");
        assert!(matches!(few, AtomSearch::Few(_)));
        assert!(matches!(many, AtomSearch::Many(_)));
        let expected = vec![(0, 1), (0, 6), (1, 2), (2, 3)];
        assert_eq!(found(&few, "xabcd abc"), expected);
        assert_eq!(found(&many, "xabcd abc"), expected);
        assert_eq!(found(&many, "zz007zz099"), vec![(10, 0), (102, 5)]);
        assert!(found(&many, "").is_empty());
        assert!(AtomSearch::new(&[]).is_none());
    }
}
