//! The TLS driver: rustls's sans-IO connection over a tokio-uring socket, with owned
//! buffers. One ciphertext buffer goes into each kernel read and one out of each write;
//! plaintext is handed to the protocol session's own input buffer. Every protocol (SMTP
//! now, IMAP and POP3 later) uses it through [`Transport`].

use std::io::{self, Read as _, Write as _};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection};
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

/// Ciphertext read per kernel call: one full TLS record and its overhead.
const CIPHERTEXT_READ: usize = 18 * 1024;
/// Plaintext moved into the session per step.
const PLAINTEXT_CHUNK: usize = 16 * 1024;

/// A TLS session on top of a TCP stream (the stream itself is passed to each call).
pub struct TlsStream {
    conn: ServerConnection,
    incoming: Vec<u8>,
    outgoing: Vec<u8>,
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl TlsStream {
    /// Runs the server side of the handshake.
    pub async fn accept(tcp: &TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let mut conn = ServerConnection::new(config).map_err(tls_error)?;
        // Replies are small and written at once: no need to bound what rustls buffers.
        conn.set_buffer_limit(None);
        let mut tls = TlsStream {
            conn,
            incoming: Vec::with_capacity(CIPHERTEXT_READ),
            outgoing: Vec::with_capacity(4096),
        };
        while tls.conn.is_handshaking() {
            if tls.conn.wants_write() {
                tls.flush(tcp).await?;
            } else if tls.conn.wants_read() {
                if tls.read_ciphertext(tcp).await? == 0 {
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
        self.conn.protocol_version()
    }

    /// Reads ciphertext from the socket and decrypts it; returns the bytes read (0 = EOF).
    async fn read_ciphertext(&mut self, tcp: &TcpStream) -> io::Result<usize> {
        let mut buf = std::mem::take(&mut self.incoming);
        buf.clear();
        let (result, slice) = tcp.read(buf.slice(0..CIPHERTEXT_READ)).await;
        self.incoming = slice.into_inner();
        let n = result?;
        let mut data = &self.incoming[..n];
        while !data.is_empty() {
            self.conn.read_tls(&mut data)?;
            if let Err(e) = self.conn.process_new_packets() {
                // Tell the peer why (rustls queued an alert), then give up.
                let _ = self.flush(tcp).await;
                return Err(tls_error(e));
            }
        }
        Ok(n)
    }

    /// Appends decrypted bytes to `dst`; returns how many (0 = the peer closed).
    pub async fn read(
        &mut self,
        tcp: &TcpStream,
        mut dst: Vec<u8>,
    ) -> (io::Result<usize>, Vec<u8>) {
        loop {
            let start = dst.len();
            dst.resize(start + PLAINTEXT_CHUNK, 0);
            let got = self.conn.reader().read(&mut dst[start..]);
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
            match self.read_ciphertext(tcp).await {
                Ok(0) => return (Ok(0), dst),
                Ok(_) => {}
                Err(e) => return (Err(e), dst),
            }
            if self.conn.wants_write() {
                if let Err(e) = self.flush(tcp).await {
                    return (Err(e), dst);
                }
            }
        }
    }

    /// Encrypts and sends all of `data`.
    pub async fn write_all(&mut self, tcp: &TcpStream, data: &[u8]) -> io::Result<()> {
        self.conn.writer().write_all(data)?;
        self.flush(tcp).await
    }

    /// Sends everything rustls has queued.
    async fn flush(&mut self, tcp: &TcpStream) -> io::Result<()> {
        while self.conn.wants_write() {
            let mut out = std::mem::take(&mut self.outgoing);
            out.clear();
            self.conn.write_tls(&mut out)?;
            let (result, out) = tcp.write_all(out).await;
            self.outgoing = out;
            result?;
        }
        Ok(())
    }

    /// Sends close_notify (best effort).
    pub async fn close(&mut self, tcp: &TcpStream) {
        self.conn.send_close_notify();
        let _ = self.flush(tcp).await;
    }
}

/// The bytes of a connection: in the clear, or through TLS.
pub enum Transport {
    Plain,
    Tls(Box<TlsStream>),
}

impl Transport {
    /// Appends received bytes to `buf`; returns how many (0 = the peer closed).
    pub async fn read(&mut self, tcp: &TcpStream, buf: Vec<u8>) -> (io::Result<usize>, Vec<u8>) {
        match self {
            Transport::Plain => {
                let filled = buf.len();
                let (result, slice) = tcp.read(buf.slice(filled..)).await;
                (result, slice.into_inner())
            }
            Transport::Tls(tls) => tls.read(tcp, buf).await,
        }
    }

    /// Sends all of `buf` and gives it back.
    pub async fn write_all(&mut self, tcp: &TcpStream, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
        match self {
            Transport::Plain => tcp.write_all(buf).await,
            Transport::Tls(tls) => {
                let result = tls.write_all(tcp, &buf).await;
                (result, buf)
            }
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    pub async fn close(&mut self, tcp: &TcpStream) {
        if let Transport::Tls(tls) = self {
            tls.close(tcp).await;
        }
    }
}
