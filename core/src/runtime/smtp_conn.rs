//! Drives one SMTP session over a tokio-uring TCP stream: reads into the session's own
//! buffer, writes its replies, and commits finished messages through the store.

use std::net::{Shutdown, SocketAddr};

use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

use super::worker::{unix_now, WorkerContext};
use crate::delivery::local::delivery_batch;
use crate::smtp::{Delivery, DeliveryOutcome, Environment, RcptRoute, Session, Step};

/// The session's view of the world, backed by the worker.
struct WorkerEnv<'a>(&'a WorkerContext);

impl Environment for WorkerEnv<'_> {
    fn now(&self) -> i64 {
        unix_now()
    }
    fn next_message_id(&mut self) -> u64 {
        self.0.next_message_id()
    }
    fn route(&self, address: &str) -> RcptRoute {
        self.0.server.directory.load().route(address)
    }
}

pub async fn serve(ctx: &WorkerContext, stream: TcpStream, peer: SocketAddr) {
    // Without TCP_NODELAY, pipelined replies stall on delayed ACKs.
    let _ = stream.set_nodelay(true);
    let mut session = Session::new(ctx.server.smtp.clone(), peer.ip(), ctx.buffers.take());
    let mut stop = ctx.stop.clone();
    loop {
        match session.step(&mut WorkerEnv(ctx)) {
            Step::Deliver => {
                if let Some(delivery) = session.take_delivery(ctx.buffers.take()) {
                    let outcome = store(ctx, delivery).await;
                    session.delivered(outcome);
                }
            }
            Step::Close => {
                flush(ctx, &stream, &mut session).await;
                break;
            }
            Step::NeedInput => {
                if !flush(ctx, &stream, &mut session).await {
                    break;
                }
                let idle = session.is_idle();
                let buf = session.take_input();
                let filled = buf.len();
                tokio::select! {
                    (result, slice) = stream.read(buf.slice(filled..)) => {
                        match result {
                            Ok(n) if n > 0 => session.input_filled(slice.into_inner()),
                            _ => break,
                        }
                    }
                    _ = tokio::time::sleep(ctx.server.idle_timeout) => {
                        session.close_with(Session::idle_timeout_reply());
                    }
                    _ = stop.wait_for(|stop| *stop), if idle => {
                        session.close_with(Session::shutdown_reply());
                    }
                }
            }
        }
    }
    // A read may still be in flight: shutting the socket down ends it and tells the client.
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_input_buffer());
}

/// Writes pending replies; false if the client is gone or stopped reading.
async fn flush(ctx: &WorkerContext, stream: &TcpStream, session: &mut Session) -> bool {
    if !session.has_output() {
        return true;
    }
    let out = session.take_output();
    match tokio::time::timeout(ctx.server.idle_timeout, stream.write_all(out)).await {
        Ok((Ok(()), out)) => {
            session.output_written(out);
            true
        }
        _ => false,
    }
}

/// Makes the message durable; only then may the session say 250.
async fn store(ctx: &WorkerContext, delivery: Delivery) -> DeliveryOutcome {
    let Delivery {
        envelope,
        mut buffer,
        message_len,
    } = delivery;
    buffer.truncate(message_len);
    let size = buffer.len();
    let batch = delivery_batch(&envelope, buffer);
    match ctx.server.store.commit(batch).await {
        Ok(()) => {
            tracing::info!(
                id = format_args!("{:016x}", envelope.id),
                from = %envelope.reverse_path,
                recipients = envelope.recipients.len(),
                size,
                "accepted"
            );
            DeliveryOutcome::Stored
        }
        Err(e) => {
            tracing::error!(id = format_args!("{:016x}", envelope.id), error = %e, "store failed");
            DeliveryOutcome::Failed
        }
    }
}
