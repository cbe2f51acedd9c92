//! The attachment policy (names, content sniffing, ZIP archives) on arbitrary bytes.
#![no_main]

use gannet_core::policy::attachments::{findings, AttachmentPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let policy = AttachmentPolicy::default();
    for held in findings(&policy, data) {
        let _ = held.to_string();
    }
});
