//! IMAP framing and command parsing of arbitrary bytes: frames found, each command parsed.
#![no_main]

use gannet_core::imap::command;
use gannet_core::imap::parse::{frame, Frame, Limits, Reader};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line: 8192,
        max_literal: 100_000,
        max_command: 200_000,
    };
    let mut rest = data;
    while !rest.is_empty() {
        let len = match frame(rest, &limits, 0) {
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
