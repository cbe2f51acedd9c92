//! The POP3 session fed arbitrary bytes, with a maildrop of three messages behind it.
#![no_main]

use std::sync::Arc;

use gannet_core::auth::service::AuthOutcome;
use gannet_core::pop3::{Answer, DropMessage, Pop3Config, Pop3Policy, Request, Session, Step};
use gannet_core::protocol::Protocol;
use libfuzzer_sys::fuzz_target;

const MESSAGE: &[u8] = b"Subject: hi\r\nFrom: a@b.example\r\n\r\nline one\r\n.dot\r\nline three\r\n";

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let policy = Pop3Policy {
        tls: split & 1 != 0,
        stls: split & 2 != 0,
        auth_without_tls: split & 4 != 0,
    };
    let mut session = Session::new(Arc::new(Pop3Config::default()), policy, Vec::new());
    let piece = usize::from(split >> 3).max(1);
    for chunk in input.chunks(piece) {
        session.feed(chunk);
        loop {
            match session.step() {
                Step::NeedInput | Step::Close | Step::Idle => break,
                Step::StartTls => session.tls_started(),
                Step::Authenticate(_) => {
                    session.auth_result(AuthOutcome::Success { account: 1 });
                }
                Step::Request(Request::OpenMaildrop { .. }) => {
                    let drop = (1..=3)
                        .map(|uid| DropMessage {
                            uid,
                            size: MESSAGE.len() as u64,
                            uidl: format!("u{uid}"),
                        })
                        .collect();
                    session.answer(Answer::Maildrop(Ok(drop)));
                }
                Step::Request(Request::Retrieve { uid, top }) => session.answer(Answer::Message {
                    message: (uid != 2).then(|| MESSAGE.to_vec()),
                    top,
                }),
                Step::Request(Request::Commit { .. }) => session.answer(Answer::Committed(true)),
            }
            let out = session.take_output();
            session.buffers().output_written(out);
        }
    }
});
