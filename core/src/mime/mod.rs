//! Reading messages: header fields of a raw RFC 5322 message.

mod header;

pub use header::header_value;
