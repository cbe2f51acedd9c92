//! A message of arbitrary bytes scanned by Gannet's own rules and a few more that take
//! the scan's other paths: a bounded body rule (searched only around its atoms in a long
//! paragraph), counted rules (matches counted from their ends, one that can match empty).
#![no_main]

use std::sync::LazyLock;

use gannet_core::filter::compile::Ruleset;
use gannet_core::filter::rules::RuleSource;
use gannet_core::filter::{DEFAULT_RULES, HEURISTIC_RULES};
use libfuzzer_sys::fuzz_target;

const EXTRA_RULES: &str = r#"
body   FZ_BOUNDED   /\bcheap\s\w{1,10}\spills\b/i
score  FZ_BOUNDED   1
body   FZ_COUNTED   /(?:e|\xc3[\xa8-\xab])/
tflags FZ_COUNTED   multiple maxhits=50
body   FZ_EMPTY     /x*/
tflags FZ_EMPTY     multiple maxhits=20
meta   FZ_META      FZ_COUNTED > 3 && FZ_EMPTY > 1
score  FZ_META      1
rawbody FZ_RAW      /<a\s+href=["']?https?:\/\/[^>]{0,40}>/i
score  FZ_RAW       1
"#;

static RULES: LazyLock<Ruleset> = LazyLock::new(|| {
    let mut source = RuleSource::default();
    for text in [DEFAULT_RULES, HEURISTIC_RULES, EXTRA_RULES] {
        source.add_text(text, None);
    }
    Ruleset::compile(source)
});

fuzz_target!(|data: &[u8]| {
    let _ = RULES.scan(data);
});
