//! The configuration file parser on arbitrary text.
#![no_main]

use gannet_core::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(config) = Config::from_toml(text) {
            let _ = config.worker_count();
        }
    }
});
