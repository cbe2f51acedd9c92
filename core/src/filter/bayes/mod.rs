//! The Bayes classifier (issue #17), after SpamAssassin's: a message is cut into tokens
//! (`tokenize`: words of the decoded body with SpamAssassin's normalisation, header
//! words under a prefix per header, URL hosts and their parent domains, attachment
//! types), each token's learned spam and ham counts give it a probability (Robinson's
//! f(w) with SpamAssassin's strength and neutral point), and the most significant ones
//! are combined with Fisher's chi-square method (`classify`). The verdict is a probability
//! of spam, and the SpamAssassin rule it hits (`BAYES_00` ... `BAYES_99`, `BAYES_999`).
//!
//! Tokens are 64-bit hashes: counts are kept per hash, never the words themselves.

pub mod auto_learn;
pub mod classify;
pub mod report;
pub mod tokenize;

pub use classify::{classify, Counts, Totals, Verdict};
pub use tokenize::tokens;

use crate::mime::view::MessageView;

/// What the classifier asks of a learned database.
pub trait Learned {
    /// How many spam and ham messages were learned.
    fn totals(&self) -> Totals;
    /// Each token's counts, in the order given.
    fn counts(&self, tokens: &[u64]) -> Vec<Counts>;
}

/// What learning a message needs: its id (a hash of its Message-ID, or of its bytes when
/// it has none: the same message learned twice is known as such) and its tokens.
pub fn learnable(raw: &[u8]) -> ([u8; 32], Vec<u64>) {
    let view = MessageView::new(raw);
    let id = view
        .headers
        .iter()
        .find(|f| f.name.eq_ignore_ascii_case("message-id"))
        .map(|f| f.raw.trim())
        .filter(|id| !id.is_empty())
        .map_or_else(|| blake3::hash(raw), |id| blake3::hash(id.as_bytes()));
    (*id.as_bytes(), tokens(&view))
}
