//! Reading messages: header fields of a raw message, and the decoded view the spam rules see.

mod header;
pub mod html_style;
pub mod relays;
pub mod view;

pub use header::{header_value, header_values};
