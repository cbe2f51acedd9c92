//! Sequence sets (`1:3,5,7:*`): the selected messages a set names, by sequence number or
//! by UID, and sets written back (`compress_set`) for ESEARCH and COPYUID.

use super::super::command::SeqSet;
use super::Session;

impl Session {
    /// Whether a set of message numbers names one beyond the selected mailbox. A range
    /// to `*` never does (`1:*` of an empty mailbox names nothing: clients send it
    /// before they know the count).
    pub(super) fn beyond_mailbox(&self, set: &SeqSet) -> bool {
        let count = self.selected_ref().messages.len() as u32;
        set.iter()
            .filter(|&&(a, b)| a != u32::MAX && b != u32::MAX)
            .flat_map(|&(a, b)| [a, b])
            .any(|n| n > count)
    }

    /// Indexes (0-based) of the selected messages a set names, by UID or sequence number.
    pub(super) fn resolve(&self, uid: bool, set: &SeqSet) -> Vec<usize> {
        let msgs = &self.selected_ref().messages;
        let max = if uid {
            msgs.last().map_or(0, |(u, _)| *u)
        } else {
            msgs.len() as u32
        };
        // Each range of the set as a range of positions (found, not scanned for: a large
        // mailbox costs a command naming a few messages a few lookups), merged, so that
        // a set naming the same messages many times names each once.
        let position = |n: u32| match uid {
            true => msgs.find(n).unwrap_or_else(|at| at),
            false => (n as usize).saturating_sub(1).min(msgs.len()),
        };
        let mut ranges: Vec<(usize, usize)> = set
            .iter()
            .map(|&(a, b)| {
                let a = if a == u32::MAX { max } else { a };
                let b = if b == u32::MAX { max } else { b };
                let (low, high) = (a.min(b).max(1), a.max(b));
                let end = high.checked_add(1).map_or(msgs.len(), position);
                (position(low), end)
            })
            .filter(|(from, to)| from < to)
            .collect();
        ranges.sort_unstable();
        let mut out = Vec::new();
        let mut next = 0;
        for (from, to) in ranges {
            out.extend(from.max(next)..to);
            next = next.max(to);
        }
        out
    }
}

/// Whether `n` is in the set, `*` standing for `max` (the highest number in use).
pub(super) fn in_set(n: u32, set: &SeqSet, max: u32) -> bool {
    set.iter().any(|&(a, b)| {
        let a = if a == u32::MAX { max } else { a };
        let b = if b == u32::MAX { max } else { b };
        n >= a.min(b) && n <= a.max(b)
    })
}

/// "1:3,5" for [1, 2, 3, 5] (in any order).
pub(super) fn compress_set(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Harness;
    use super::*;

    #[test]
    fn sets_are_compressed_to_ranges() {
        assert_eq!(compress_set(&[]), "");
        assert_eq!(compress_set(&[4]), "4");
        assert_eq!(compress_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
    }

    #[test]
    fn star_is_the_highest_number_in_use_and_ranges_go_either_way() {
        let set = vec![(4, u32::MAX), (2, 1)];
        let hits: Vec<u32> = (1..=7).filter(|&n| in_set(n, &set, 6)).collect();
        assert_eq!(hits, [1, 2, 4, 5, 6]);
        assert!(in_set(9, &vec![(u32::MAX, u32::MAX)], 9));
    }

    #[test]
    fn sets_resolve_by_sequence_number_or_by_uid() {
        let mut h = Harness::standard();
        h.login_select();
        // UIDs 1 and 2; after expunging 1, sequence number 1 is UID 2.
        h.run("a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\na2 EXPUNGE\r\n");
        let out = h.run("a3 FETCH 1:* UID\r\na4 UID FETCH 1 UID\r\na5 UID FETCH * UID\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (UID 2)\r\na3 OK FETCH completed\r\n\
             a4 OK FETCH completed\r\n\
             * 1 FETCH (UID 2)\r\na5 OK FETCH completed\r\n"
        );
    }
}
