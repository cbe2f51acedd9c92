//! IMAP framing and command parsing of arbitrary bytes: frames found, each command parsed.
#![no_main]

use gannet_core::imap::command;
use gannet_core::imap::parse::{frame, Frame, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while !rest.is_empty() {
        let len = match frame(rest, 8192, 100_000, 0) {
            Frame::Complete { len } => len,
            _ => break,
        };
        let Some((one, next)) = rest.split_at_checked(len) else {
            break;
        };
        let mut r = Reader::new(one);
        if r.atom().is_ok() && r.space().is_ok() {
            let _ = command::parse(&mut r);
        }
        rest = next;
    }
});
