//! IMAP's view of a stored message: ENVELOPE, BODYSTRUCTURE and sections of arbitrary
//! bytes.
#![no_main]

use gannet_core::imap::structure;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(msg) = structure::parse(data) else {
        return;
    };
    let mut out = Vec::new();
    structure::envelope(&mut out, &msg);
    structure::bodystructure(&mut out, &msg, true);
    structure::bodystructure(&mut out, &msg, false);
    for path in [&[][..], &[1], &[1, 1], &[2, 1, 3]] {
        let _ = structure::binary_section(data, &msg, path);
    }
});
