//! The control socket: how admin commands reach a running server.
//!
//! A Unix socket `control.sock` in the data directory, readable by its owner only. One
//! request per connection: the command as a JSON line; the answer is a JSON line
//! `{"ok":..,"len":N}` followed by N bytes of output (raw, so message bytes pass as they are).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;
use gannet_core::store::Store;
use serde::{Deserialize, Serialize};

use crate::admin::{execute, LiveState, Outcome};
use crate::cli::AdminCommand;

#[derive(Serialize, Deserialize)]
struct Header {
    ok: bool,
    len: usize,
}

pub(crate) fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("control.sock")
}

/// Sends `command` to the server running on `data_dir`; None when no server runs there.
pub(crate) fn request(data_dir: &Path, command: &AdminCommand) -> anyhow::Result<Option<Outcome>> {
    let mut stream = match UnixStream::connect(socket_path(data_dir)) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e).context("cannot reach the running server's control socket"),
    };
    let mut line = serde_json::to_vec(command)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut header = String::new();
    reader.read_line(&mut header)?;
    let header: Header =
        serde_json::from_str(&header).context("bad answer from the running server")?;
    let mut output = vec![0; header.len];
    reader.read_exact(&mut output)?;
    Ok(Some(Outcome {
        ok: header.ok,
        output,
    }))
}

/// Listens for admin commands on a thread of its own; commands run one at a time, but
/// for `gannet spam scan`'s batches: up to [`SCAN_BATCHES_AT_ONCE`] of those are answered
/// on threads of their own.
pub(crate) fn spawn(data_dir: &Path, store: Store, live: LiveState) -> anyhow::Result<()> {
    let path = socket_path(data_dir);
    // A socket left by a server that was killed; the store's lock already proved that no
    // other server runs on this data directory.
    let _ = std::fs::remove_file(&path);
    // The process's umask (0077, set in main before anything is created) makes the
    // socket the server user's alone from the moment it exists.
    let listener =
        UnixListener::bind(&path).with_context(|| format!("cannot bind {}", path.display()))?;
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || {
            let scans = Arc::new(AtomicUsize::new(0));
            for stream in listener.incoming().flatten() {
                if let Err(e) = take(stream, &store, &live, &scans) {
                    tracing::warn!(error = %e, "control request failed");
                }
            }
        })?;
    Ok(())
}

/// Scan batches answered at once beside the control thread. `gannet spam scan` keeps two
/// in flight, so that the next batch is read and decoded while the scan threads score
/// this one and they never wait between batches. (Batches scan no state that commands
/// change; a third waits its turn on the control thread, which bounds the memory they
/// hold.)
const SCAN_BATCHES_AT_ONCE: usize = 2;

/// Reads one request and answers it, a scan batch on a thread of its own while fewer than
/// [`SCAN_BATCHES_AT_ONCE`] are.
fn take(
    stream: UnixStream,
    store: &Store,
    live: &LiveState,
    scans: &Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let command = read_request(&mut reader, MAX_REQUEST)?;
    let slot = matches!(command, Ok(AdminCommand::ScanBatch { .. }))
        .then(|| ScanSlot::take(scans))
        .flatten();
    let Some(slot) = slot else {
        return answer(stream, command, store, live);
    };
    let (store, live) = (store.clone(), live.clone());
    std::thread::Builder::new()
        .name("control-scan".into())
        .spawn(move || {
            let _slot = slot;
            if let Err(e) = answer(stream, command, &store, &live) {
                tracing::warn!(error = %e, "control request failed");
            }
        })
        .context("cannot start a thread for a scan batch")?;
    Ok(())
}

/// The longest request line read: the largest scan batch the server takes
/// ([`crate::scan_service::MAX_BATCH_REQUEST`]); every other command is far shorter.
const MAX_REQUEST: usize = crate::scan_service::MAX_BATCH_REQUEST;

/// Reads one request line of at most `limit` bytes and parses its command; a longer line
/// is refused once `limit` bytes have been read (the rest is not read), as is one that is
/// not a command.
fn read_request(
    reader: &mut impl BufRead,
    limit: usize,
) -> std::io::Result<Result<AdminCommand, String>> {
    let mut line = String::new();
    reader
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_line(&mut line)?;
    if line.len() > limit {
        return Ok(Err(format!("the request is longer than {limit} bytes")));
    }
    Ok(serde_json::from_str(&line).map_err(|e| e.to_string()))
}

/// One of the [`SCAN_BATCHES_AT_ONCE`] places, given back when dropped (the batch
/// answered, or its thread never started).
struct ScanSlot(Arc<AtomicUsize>);

impl ScanSlot {
    fn take(scans: &Arc<AtomicUsize>) -> Option<ScanSlot> {
        // Counted first; when all places are held, dropping it counts it back out.
        let slot = ScanSlot(scans.clone());
        (scans.fetch_add(1, Ordering::AcqRel) < SCAN_BATCHES_AT_ONCE).then_some(slot)
    }
}

impl Drop for ScanSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn answer(
    stream: UnixStream,
    command: Result<AdminCommand, String>,
    store: &Store,
    live: &LiveState,
) -> anyhow::Result<()> {
    let outcome = match command {
        Ok(command) => {
            tracing::info!(?command, "admin command");
            execute(store, Some(live), &command)
        }
        Err(e) => Outcome {
            ok: false,
            output: format!("gannet: bad control request: {e}\n").into_bytes(),
        },
    };
    let mut writer = stream;
    let mut header = serde_json::to_vec(&Header {
        ok: outcome.ok,
        len: outcome.output.len(),
    })?;
    header.push(b'\n');
    writer.write_all(&header)?;
    writer.write_all(&outcome.output)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_line_is_read_up_to_its_limit() {
        let line = b"{\"ScanBatch\":{\"batch\":{\"messages\":[\"aGVsbG8=\"]}}}\n";
        let command = read_request(&mut &line[..], line.len()).expect("reads");
        assert!(
            matches!(command, Ok(AdminCommand::ScanBatch { .. })),
            "{command:?}"
        );
        // One byte over the limit: refused, without reading the rest.
        let mut long = &line[..];
        let refused = read_request(&mut long, line.len() - 2).expect("reads");
        assert!(refused.is_err_and(|e| e.contains("longer than")));
        assert_eq!(long.len(), 1, "the limit and one byte were read");
        let bad = read_request(&mut &b"not json\n"[..], 100).expect("reads");
        assert!(bad.is_err());
    }
}
