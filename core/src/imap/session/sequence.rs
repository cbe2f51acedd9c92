//! Sequence sets (`1:3,5,7:*`): the selected messages a set names, by sequence number or
//! by UID, and sets written back (`compress_set`) for ESEARCH and COPYUID.

use super::super::command::SeqSet;
use super::Session;

impl Session {
    /// Indexes (0-based) of the selected messages a set names, by UID or sequence number.
    pub(super) fn resolve(&self, uid: bool, set: &SeqSet) -> Vec<usize> {
        let msgs = &self.selected_ref().messages;
        let max = if uid {
            msgs.last().map_or(0, |(u, _)| *u)
        } else {
            msgs.len() as u32
        };
        msgs.iter()
            .enumerate()
            .filter(|(i, (u, _))| in_set(if uid { *u } else { *i as u32 + 1 }, set, max))
            .map(|(i, _)| i)
            .collect()
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
