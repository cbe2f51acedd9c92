//! The outbound SMTP client fed arbitrary server replies: whatever a remote server says,
//! the client answers, ends, and never buffers without bound.
#![no_main]

use gannet_core::smtp::client::{Action, Client, ClientConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let config = ClientConfig {
        helo: "mx.example.test".into(),
        tls_available: split & 1 != 0,
        auth: (split & 2 != 0).then(|| ("relay".to_string(), "s3cret".to_string())),
        keep_open: split & 4 != 0,
    };
    let mut client = Client::new(
        config,
        "a@example.test",
        vec!["b@example.org".into(), "c@example.org".into()],
        1234,
        split & 8 != 0,
    );
    let piece = usize::from(split >> 4).max(1) * 7;
    for chunk in input.chunks(piece) {
        for action in client.feed(chunk) {
            if action == Action::StartTls {
                let _ = client.tls_established();
            }
        }
        if client.is_done() {
            break;
        }
    }
    let outcomes = client.finish("end of input");
    assert_eq!(outcomes.len(), 2);
});
