//! The TLS driver: rustls's sans-IO connection over a tokio-uring socket, with owned
//! buffers. One ciphertext buffer goes into each kernel read and one out of each write;
//! plaintext is handed to the protocol session's own input buffer. Every protocol (SMTP
//! now, IMAP and POP3 later) uses it through [`Transport`].

use std::cell::{Cell, RefCell};
use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};
use tokio_uring::net::TcpStream;

use super::conn::Pace;
use super::socket::{send_all, Readable};

/// Ciphertext read per kernel call: one full TLS record and its overhead.
const CIPHERTEXT_READ: usize = 18 * 1024;
/// Plaintext moved into the session per step.
const PLAINTEXT_CHUNK: usize = 16 * 1024;

/// A TLS session on top of a TCP stream (the stream itself is passed to each call).
///
/// Methods take `&self`: the TLS state is borrowed only between awaits, never across one,
/// so a read may stay pending while replies are written (IMAP IDLE).
pub struct TlsStream {
    conn: RefCell<ServerConnection>,
    incoming: RefCell<Vec<u8>>,
    outgoing: RefCell<Vec<u8>>,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// Runs the server side of the handshake.
    pub(super) async fn accept(
        tcp: &TcpStream,
        readable: &Readable,
        config: Arc<ServerConfig>,
    ) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config).map_err(tls_error)?;
        // Replies are small and written at once: no need to bound what rustls buffers.
        conn.set_buffer_limit(None);
        let tls = TlsStream {
            conn: RefCell::new(conn),
            incoming: RefCell::new(Vec::with_capacity(CIPHERTEXT_READ)),
            outgoing: RefCell::new(Vec::with_capacity(4096)),
        };
        loop {
            let (handshaking, wants_write, wants_read) = {
                let c = tls.conn.borrow();
                (c.is_handshaking(), c.wants_write(), c.wants_read())
            };
            if !handshaking {
                break;
            }
            if wants_write {
                tls.flush(tcp).await?;
            } else if wants_read {
                if tls.read_ciphertext(tcp, readable).await? == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
            } else {
                break;
            }
        }
        tls.flush(tcp).await?;
        Ok(tls)
    }

    /// The negotiated protocol version, for logs.
    pub fn protocol(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.borrow().protocol_version()
    }

    /// Reads ciphertext from the socket and decrypts it; returns the bytes read (0 = EOF).
    async fn read_ciphertext(&self, tcp: &TcpStream, readable: &Readable) -> io::Result<usize> {
        let mut buf = self.incoming.take();
        buf.clear();
        buf.reserve_exact(CIPHERTEXT_READ);
        let (result, buf) = readable.recv(tcp, buf).await;
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                self.incoming.replace(buf);
                return Err(e);
            }
        };
        let processed = {
            let mut conn = self.conn.borrow_mut();
            let mut data = &buf[..n];
            let mut outcome = Ok(());
            while !data.is_empty() {
                if let Err(e) = conn.read_tls(&mut data) {
                    outcome = Err(e);
                    break;
                }
                if let Err(e) = conn.process_new_packets() {
                    outcome = Err(tls_error(e));
                    break;
                }
            }
            outcome
        };
        self.incoming.replace(buf);
        if let Err(e) = processed {
            // Tell the peer why (rustls queued an alert), then give up.
            let _ = self.flush(tcp).await;
            return Err(e);
        }
        Ok(n)
    }

    /// Appends decrypted bytes to `dst`; returns how many (0 = the peer closed).
    async fn read(
        &self,
        tcp: &TcpStream,
        readable: &Readable,
        mut dst: Vec<u8>,
    ) -> (io::Result<usize>, Vec<u8>) {
        loop {
            let start = dst.len();
            dst.resize(start + PLAINTEXT_CHUNK, 0);
            let got = self.conn.borrow_mut().reader().read(&mut dst[start..]);
            match got {
                Ok(n) => {
                    dst.truncate(start + n);
                    return (Ok(n), dst);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => dst.truncate(start),
                Err(e) => {
                    dst.truncate(start);
                    return (Err(e), dst);
                }
            }
            match self.read_ciphertext(tcp, readable).await {
                Ok(0) => return (Ok(0), dst),
                Ok(_) => {}
                Err(e) => return (Err(e), dst),
            }
            let wants_write = self.conn.borrow().wants_write();
            if wants_write {
                if let Err(e) = self.flush(tcp).await {
                    return (Err(e), dst);
                }
            }
        }
    }

    /// Encrypts and sends all of `data`.
    pub async fn write_all(&self, tcp: &TcpStream, data: &[u8]) -> io::Result<()> {
        self.conn.borrow_mut().writer().write_all(data)?;
        self.flush(tcp).await
    }

    /// Sends everything rustls has queued.
    async fn flush(&self, tcp: &TcpStream) -> io::Result<()> {
        loop {
            let out = {
                let mut conn = self.conn.borrow_mut();
                if !conn.wants_write() {
                    return Ok(());
                }
                let mut out = self.outgoing.take();
                out.clear();
                conn.write_tls(&mut out)?;
                out
            };
            let (result, out) = send_all(tcp, out).await;
            self.outgoing.replace(out);
            result?;
        }
    }

    /// Sends close_notify (best effort).
    pub async fn close(&self, tcp: &TcpStream) {
        self.conn.borrow_mut().send_close_notify();
        let _ = self.flush(tcp).await;
    }
}

/// The bytes of a connection: in the clear, or through TLS; and how far the client has
/// come with its current request (kept by the connection driver, see [`super::conn::Pace`]).
pub struct Transport {
    tls: Option<Box<TlsStream>>,
    pub(super) pace: Cell<Pace>,
    readable: Readable,
}

impl Transport {
    pub(super) fn plain(readable: Readable) -> Transport {
        Transport {
            tls: None,
            pace: Cell::default(),
            readable,
        }
    }

    /// The transport of a connection whose handshake `tls` finished, waiting on input
    /// with `readable` (the one the handshake used).
    pub(super) fn tls(tls: TlsStream, readable: Readable) -> Transport {
        Transport {
            tls: Some(Box::new(tls)),
            pace: Cell::default(),
            readable,
        }
    }

    /// What the socket's input is waited on with (for a STARTTLS handshake).
    pub(super) fn readable(&self) -> &Readable {
        &self.readable
    }

    /// STARTTLS done: what follows goes through `tls`.
    pub(super) fn start_tls(&mut self, tls: TlsStream) {
        self.tls = Some(Box::new(tls));
        self.pace.set(Pace::default());
    }

    /// Appends received bytes to `buf`; returns how many (0 = the peer closed).
    pub async fn read(&self, tcp: &TcpStream, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match &self.tls {
            None => self.readable.recv(tcp, buf).await,
            Some(tls) => tls.read(tcp, &self.readable, buf).await,
        }
    }

    /// Sends all of `buf` and gives it back.
    pub async fn write_all(&self, tcp: &TcpStream, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match &self.tls {
            None => send_all(tcp, buf).await,
            Some(tls) => {
                let result = tls.write_all(tcp, &buf).await;
                (result, buf)
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub async fn close(&self, tcp: &TcpStream) {
        if let Some(tls) = &self.tls {
            tls.close(tcp).await;
        }
    }
}
