//! The SMTP server session fed arbitrary bytes, in arbitrary pieces, with every step the
//! runtime would take answered (deliveries stored, logins alternately accepted).
#![no_main]

use std::sync::Arc;

use gannet_core::auth::service::AuthOutcome;
use gannet_core::policy::RateKey;
use gannet_core::protocol::Protocol;
use gannet_core::smtp::{
    ConnectionPolicy, DeliveryOutcome, Environment, RcptRoute, Request, Session, SessionConfig,
    Step,
};
use libfuzzer_sys::fuzz_target;

struct Env(u64);

impl Environment for Env {
    fn now(&self) -> i64 {
        1_795_962_630
    }
    fn next_message_id(&mut self) -> u64 {
        self.0 += 1;
        self.0
    }
    fn route(&self, address: &str) -> RcptRoute {
        match address.as_bytes().first() {
            Some(b'a') => RcptRoute::Local { account: 1 },
            Some(b'f') => RcptRoute::Forward { scan: true },
            Some(b'u') => RcptRoute::UnknownUser,
            _ => RcptRoute::Remote,
        }
    }
    fn admit_message(&mut self, _: RateKey) -> bool {
        self.0 % 7 != 0
    }
    fn quota_allows(&self, _: u32, bytes: u64) -> bool {
        bytes < 100_000
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, input)) = data.split_first() else {
        return;
    };
    let config = Arc::new(SessionConfig {
        max_message_size: 100_000,
        ..SessionConfig::default()
    });
    let mut policy = ConnectionPolicy::plain([127, 0, 0, 2].into());
    policy.starttls = split & 1 != 0;
    policy.auth_without_tls = split & 2 != 0;
    policy.submission = split & 4 != 0;
    let mut session = Session::new(config, policy, Vec::new());
    let mut env = Env(0);
    let piece = usize::from(split >> 3).max(1);
    let mut logins = 0u32;
    for chunk in input.chunks(piece) {
        session.feed(chunk);
        loop {
            match session.step(&mut env) {
                Step::NeedInput | Step::Close | Step::Idle => break,
                Step::Request(Request::Deliver) => {
                    let _ = session.take_delivery(Vec::new());
                    session.delivered(DeliveryOutcome::Stored);
                }
                Step::StartTls => session.tls_started(),
                Step::Authenticate(_) => {
                    logins += 1;
                    session.auth_result(if logins % 2 == 0 {
                        AuthOutcome::Success { account: 1 }
                    } else {
                        AuthOutcome::Failure
                    });
                }
            }
            let out = session.take_output();
            session.buffers().output_written(out);
        }
    }
});
