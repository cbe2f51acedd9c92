//! SpamAssassin rule files of arbitrary text, compiled, then one scan with them.
#![no_main]

use gannet_core::filter::compile::Ruleset;
use gannet_core::filter::rules::RuleSource;
use libfuzzer_sys::fuzz_target;

const MESSAGE: &[u8] =
    b"From: a@b.example\r\nSubject: Cheap offer\r\nContent-Type: text/plain\r\n\r\nBuy now http://x.example/ ok\r\n";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut source = RuleSource::default();
    source.add_text(text, None);
    let rules = Ruleset::compile(source);
    let _ = rules.scan(MESSAGE);
});
