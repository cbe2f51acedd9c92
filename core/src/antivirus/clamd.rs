//! The clamd client: one connection per scan (clamd closes it after `INSTREAM`'s reply),
//! over a Unix socket or TCP, the message streamed once in chunks, the whole exchange
//! bounded by a timeout. Plain tokio I/O: it runs on any tokio runtime (the antivirus
//! thread's, a test's). Nothing here panics: a failure is a [`ClamdError`], and
//! [`Clamd::scan`] turns it into [`Verdict::Error`].

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::instream::{self, Verdict};
pub use crate::config::ClamdAddress;

/// Why a scan got no verdict from clamd.
#[derive(Debug, thiserror::Error)]
pub enum ClamdError {
    #[error("cannot connect to clamd at {address}: {source}")]
    Connect {
        address: ClamdAddress,
        source: std::io::Error,
    },
    #[error("clamd at {address} did not answer within {timeout:?}")]
    Timeout {
        address: ClamdAddress,
        timeout: Duration,
    },
    #[error("talking to clamd at {address}: {source}")]
    Io {
        address: ClamdAddress,
        source: std::io::Error,
    },
    #[error("clamd at {address} closed the connection without a reply")]
    NoReply { address: ClamdAddress },
    #[error(
        "clamd at {address} sent a reply longer than {} bytes",
        instream::MAX_REPLY
    )]
    ReplyTooLong { address: ClamdAddress },
}

/// A clamd to scan with.
#[derive(Debug, Clone)]
pub struct Clamd {
    address: ClamdAddress,
    timeout: Duration,
}

/// Either kind of connection; both are plain tokio streams.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Clamd {
    /// `timeout` bounds each scan: connecting, sending the message and waiting for the
    /// verdict.
    pub fn new(address: ClamdAddress, timeout: Duration) -> Clamd {
        Clamd { address, timeout }
    }

    pub fn address(&self) -> &ClamdAddress {
        &self.address
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Scans `message`; a failure to get a verdict is [`Verdict::Error`].
    pub async fn scan(&self, message: &[u8]) -> Verdict {
        match self.try_scan(message).await {
            Ok(verdict) => verdict,
            Err(e) => Verdict::Error(e.to_string()),
        }
    }

    /// Scans `message`. `Ok` is clamd's verdict, which may be its own error
    /// ([`Verdict::Error`], such as `INSTREAM size limit exceeded. ERROR`); `Err` is a
    /// failure to get any reply in time.
    pub async fn try_scan(&self, message: &[u8]) -> Result<Verdict, ClamdError> {
        self.bounded(self.exchange(message)).await
    }

    /// Whether clamd answers `PING` with `PONG` (within the timeout).
    pub async fn ping(&self) -> Result<bool, ClamdError> {
        self.bounded(async {
            let mut stream = self.connect().await?;
            stream.write_all(b"zPING\0").await.map_err(|e| self.io(e))?;
            let reply = self.read_reply(&mut stream).await?;
            Ok(reply.strip_suffix(b"\0").unwrap_or(&reply) == b"PONG")
        })
        .await
    }

    /// `exchange` within the timeout.
    async fn bounded<T>(
        &self,
        exchange: impl std::future::Future<Output = Result<T, ClamdError>>,
    ) -> Result<T, ClamdError> {
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ClamdError::Timeout {
                address: self.address.clone(),
                timeout: self.timeout,
            }),
        }
    }

    /// One `INSTREAM` exchange, without a time limit (the callers set one; dropping the
    /// future closes the connection).
    pub(crate) async fn exchange(&self, message: &[u8]) -> Result<Verdict, ClamdError> {
        let mut stream = self.connect().await?;
        if let Err(e) = self.send(&mut stream, message).await {
            // clamd may have stopped reading to say why (past its StreamMaxLength it
            // answers `INSTREAM size limit exceeded. ERROR` and closes): its reply, if it
            // got through, says more than the broken pipe.
            return match self.read_reply(&mut stream).await {
                Ok(reply) if !reply.is_empty() => Ok(instream::parse_reply(&reply)),
                _ => Err(self.io(e)),
            };
        }
        let reply = self.read_reply(&mut stream).await?;
        Ok(instream::parse_reply(&reply))
    }

    async fn connect(&self) -> Result<Box<dyn Stream>, ClamdError> {
        let connected: std::io::Result<Box<dyn Stream>> = match &self.address {
            ClamdAddress::Unix(path) => tokio::net::UnixStream::connect(path)
                .await
                .map(|s| Box::new(s) as Box<dyn Stream>),
            ClamdAddress::Tcp(host_port) => {
                tokio::net::TcpStream::connect(host_port.as_str())
                    .await
                    .and_then(|s| {
                        // The last piece of each chunk must not wait for an ACK.
                        s.set_nodelay(true)?;
                        Ok(Box::new(s) as Box<dyn Stream>)
                    })
            }
        };
        connected.map_err(|source| ClamdError::Connect {
            address: self.address.clone(),
            source,
        })
    }

    /// The command, the message in chunks, the end: each byte of the message once, with
    /// no copy of it.
    async fn send(&self, stream: &mut Box<dyn Stream>, message: &[u8]) -> std::io::Result<()> {
        stream.write_all(instream::COMMAND).await?;
        for (header, chunk) in instream::chunks(message) {
            stream.write_all(&header).await?;
            stream.write_all(chunk).await?;
        }
        stream.write_all(&instream::END).await?;
        stream.flush().await
    }

    /// Reads up to the reply's `\0` (or the end of the connection).
    async fn read_reply(&self, stream: &mut Box<dyn Stream>) -> Result<Vec<u8>, ClamdError> {
        let mut reply = Vec::with_capacity(128);
        let mut buf = [0u8; 512];
        loop {
            let n = stream.read(&mut buf).await.map_err(|e| self.io(e))?;
            if n == 0 {
                if reply.is_empty() {
                    return Err(ClamdError::NoReply {
                        address: self.address.clone(),
                    });
                }
                return Ok(reply);
            }
            reply.extend_from_slice(buf.get(..n).unwrap_or_default());
            if let Some(end) = instream::reply_end(&reply) {
                reply.truncate(end + 1);
                return Ok(reply);
            }
            if reply.len() > instream::MAX_REPLY {
                return Err(ClamdError::ReplyTooLong {
                    address: self.address.clone(),
                });
            }
        }
    }

    fn io(&self, source: std::io::Error) -> ClamdError {
        ClamdError::Io {
            address: self.address.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::UnixListener;

    /// A one-connection fake clamd on a Unix socket: reads the whole request, answers
    /// `reply` (nothing when empty), closes, and gives the request it read.
    fn fake(
        dir: &tempfile::TempDir,
        reply: &'static [u8],
    ) -> (Clamd, tokio::task::JoinHandle<Vec<u8>>) {
        let path = dir.path().join("clamd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let request = stream_request(&mut stream).await;
            stream.write_all(reply).await.unwrap();
            stream.shutdown().await.unwrap();
            request
        });
        let clamd = Clamd::new(ClamdAddress::Unix(path), Duration::from_secs(5));
        (clamd, server)
    }

    /// Reads a request up to its zero length.
    async fn stream_request(stream: &mut tokio::net::UnixStream) -> Vec<u8> {
        let mut request = vec![0u8; instream::COMMAND.len()];
        stream.read_exact(&mut request).await.unwrap();
        loop {
            let mut len = [0u8; 4];
            stream.read_exact(&mut len).await.unwrap();
            request.extend_from_slice(&len);
            let len = u32::from_be_bytes(len) as usize;
            if len == 0 {
                return request;
            }
            let start = request.len();
            request.resize(start + len, 0);
            stream.read_exact(&mut request[start..]).await.unwrap();
        }
    }

    #[tokio::test]
    async fn streams_the_message_and_reads_the_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let message: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();
        let (clamd, server) = fake(&dir, b"stream: Test.Sig FOUND\0");
        assert_eq!(
            clamd.scan(&message).await,
            Verdict::Infected("Test.Sig".into())
        );
        assert_eq!(server.await.unwrap(), instream::request(&message));
    }

    #[tokio::test]
    async fn clean_and_clamd_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (clamd, _server) = fake(&dir, b"stream: OK\0");
        assert_eq!(clamd.try_scan(b"hello").await.unwrap(), Verdict::Clean);
        let dir = tempfile::tempdir().unwrap();
        let (clamd, _server) = fake(&dir, b"INSTREAM size limit exceeded. ERROR\0");
        assert!(matches!(
            clamd.try_scan(b"hello").await,
            Ok(Verdict::Error(why)) if why.contains("size limit")
        ));
    }

    #[tokio::test]
    async fn no_reply_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (clamd, _server) = fake(&dir, b"");
        assert!(matches!(
            clamd.try_scan(b"hello").await,
            Err(ClamdError::NoReply { .. })
        ));
        assert!(matches!(clamd.scan(b"hello").await, Verdict::Error(_)));
    }

    #[tokio::test]
    async fn an_endless_reply_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (clamd, _server) = fake(&dir, &[b'x'; 10_000]);
        assert!(matches!(
            clamd.try_scan(b"hello").await,
            Err(ClamdError::ReplyTooLong { .. })
        ));
    }

    #[tokio::test]
    async fn nobody_listening_is_a_connect_error() {
        let dir = tempfile::tempdir().unwrap();
        let clamd = Clamd::new(
            ClamdAddress::Unix(dir.path().join("none.sock")),
            Duration::from_secs(5),
        );
        assert!(matches!(
            clamd.try_scan(b"hello").await,
            Err(ClamdError::Connect { .. })
        ));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let clamd = Clamd::new(
            ClamdAddress::Tcp(format!("127.0.0.1:{port}")),
            Duration::from_secs(5),
        );
        let error = clamd.try_scan(b"hello").await.unwrap_err();
        assert!(matches!(error, ClamdError::Connect { .. }), "{error}");
        assert!(error.to_string().contains("tcp:127.0.0.1:"), "{error}");
    }

    #[tokio::test]
    async fn silence_is_a_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = ClamdAddress::Tcp(listener.local_addr().unwrap().to_string());
        let clamd = Clamd::new(address, Duration::from_millis(200));
        let start = std::time::Instant::now();
        assert!(matches!(
            clamd.try_scan(b"hello").await,
            Err(ClamdError::Timeout { .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(2));
        drop(listener);
    }

    #[tokio::test]
    async fn ping() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clamd.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut command = [0u8; 6];
            stream.read_exact(&mut command).await.unwrap();
            assert_eq!(&command, b"zPING\0");
            stream.write_all(b"PONG\0").await.unwrap();
        });
        let clamd = Clamd::new(ClamdAddress::Unix(path), Duration::from_secs(5));
        assert!(clamd.ping().await.unwrap());
    }
}
