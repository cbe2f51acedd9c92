//! The message view the spam engine reads (headers, Received, MIME parts, HTML as text,
//! URIs) built from arbitrary bytes.
#![no_main]

use gannet_core::mime::view::MessageView;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let view = MessageView::new(data);
    let _ = view.header_values("received").count();
});
