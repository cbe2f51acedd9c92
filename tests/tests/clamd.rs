//! Virus scanning against a real ClamAV `clamd` (`gannet_tests::Clamd`: its own config and
//! a one-line signature database for EICAR), through gannet-core's client and antivirus
//! service directly (no gannet server): EICAR as a plain attachment, in a ZIP, in base64
//! and quoted-printable, inside a nested message/rfc822; a clean message; clamd gone; a
//! clamd that never answers. Prints clamd's load time and the scan latency of a 10 KiB
//! and a 1 MB message (not asserted).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use base64::Engine;
use gannet_core::antivirus::{Antivirus, Clamd, ClamdAddress, ClamdError, Scan, Verdict};
use gannet_tests::{python, Clamd as RealClamd, EICAR};

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

fn client(socket: PathBuf, timeout: Duration) -> Clamd {
    Clamd::new(ClamdAddress::Unix(socket), timeout)
}

/// base64 in lines of 76, as mail has it.
fn base64_lines(data: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(data);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(76)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    lines.join("\r\n")
}

/// Quoted-printable with every byte escaped (`=58=35=4F...`), so that the encoded text
/// does not contain the file itself (plain QP would leave EICAR's printable ASCII as is).
fn quoted_printable_escaped(data: &[u8]) -> String {
    let escaped: String = data.iter().map(|b| format!("={b:02X}")).collect();
    let lines: Vec<&str> = escaped
        .as_bytes()
        .chunks(72)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    lines.join("=\r\n")
}

/// A ZIP (deflated) holding `eicar.com`, made by Python's zipfile, in base64 lines.
fn zipped_eicar_base64() -> String {
    let script = "import base64, io, sys, zipfile\n\
                  b = io.BytesIO()\n\
                  with zipfile.ZipFile(b, 'w', zipfile.ZIP_DEFLATED) as z:\n\
                  \x20   z.writestr('eicar.com', sys.argv[1].encode())\n\
                  sys.stdout.write(base64.encodebytes(b.getvalue()).decode())\n";
    let text = python(script, &[std::str::from_utf8(EICAR).unwrap()]);
    let zip = base64::engine::general_purpose::STANDARD
        .decode(text.replace('\n', ""))
        .unwrap();
    assert!(zip.starts_with(b"PK\x03\x04"));
    assert!(
        !zip.windows(EICAR.len()).any(|w| w == EICAR),
        "deflated: the ZIP does not hold the file as is"
    );
    base64_lines(&zip)
}

/// A multipart/mixed message: a text part, then `part` (its headers, a blank line, its
/// body).
fn message_with(part: &str) -> Vec<u8> {
    format!(
        "From: a@example.test\r\nTo: b@example.test\r\nSubject: test\r\n\
         Message-ID: <t@example.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n\
         --b1\r\n{part}\r\n--b1--\r\n"
    )
    .into_bytes()
}

fn base64_attachment(name: &str, content_type: &str, body: &str) -> String {
    format!(
        "Content-Type: {content_type}; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\n{body}"
    )
}

/// The messages that carry EICAR, by name.
fn infected_messages() -> Vec<(&'static str, Vec<u8>)> {
    let eicar = std::str::from_utf8(EICAR).unwrap();
    let base64_eicar = base64_lines(EICAR);
    let in_base64 = base64_attachment("eicar.com", "application/octet-stream", &base64_eicar);
    let nested = message_with(&in_base64);
    vec![
        (
            "plain text attachment",
            message_with(&format!(
                "Content-Type: text/plain; name=\"eicar.txt\"\r\n\
                 Content-Disposition: attachment; filename=\"eicar.txt\"\r\n\r\n{eicar}"
            )),
        ),
        (
            "ZIP attachment",
            message_with(&base64_attachment(
                "eicar.zip",
                "application/zip",
                &zipped_eicar_base64(),
            )),
        ),
        ("base64 attachment", message_with(&in_base64)),
        (
            "quoted-printable part",
            message_with(&format!(
                "Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n{}",
                quoted_printable_escaped(EICAR)
            )),
        ),
        (
            "nested message/rfc822",
            message_with(&format!(
                "Content-Type: message/rfc822\r\n\r\n{}",
                String::from_utf8(nested).unwrap()
            )),
        ),
    ]
}

fn clean_message(size: usize) -> Vec<u8> {
    // Pseudo-random bytes (xorshift) in a base64 attachment: clamd decodes it as it would
    // a real one.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..size * 3 / 4)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    message_with(&base64_attachment(
        "data.bin",
        "application/octet-stream",
        &base64_lines(&data),
    ))
}

#[test]
fn eicar_is_found_in_every_encoding_and_a_clean_message_is_clean() {
    let clamd = RealClamd::start();
    eprintln!(
        "clamd: loaded and answering PING after {:?}",
        clamd.load_time
    );
    let client = client(clamd.socket.clone(), Duration::from_secs(30));
    block_on(async {
        for (name, message) in infected_messages() {
            // The encodings really hide the file: only clamd's decoding finds it (except
            // in the plain attachment).
            let raw = message.windows(EICAR.len()).any(|w| w == EICAR);
            assert_eq!(raw, name.starts_with("plain"), "{name}");
            match client.try_scan(&message).await {
                Ok(Verdict::Infected(virus)) => {
                    assert!(virus.starts_with("Eicar-Test-Signature"), "{name}: {virus}")
                }
                other => panic!("{name}: {other:?}\n{}", clamd.log()),
            }
        }
        assert_eq!(client.scan(&clean_message(10_000)).await, Verdict::Clean);
        assert_eq!(client.scan(b"").await, Verdict::Clean);
        assert!(client.ping().await.unwrap());
        // Past clamd's StreamMaxLength (30M here): no verdict, whether its reply got
        // through before it closed or the write broke first.
        let start = Instant::now();
        match client.scan(&vec![b'a'; 32 << 20]).await {
            Verdict::Error(why) => eprintln!("32 MiB message: {why} ({:?})", start.elapsed()),
            other => panic!("{other:?}"),
        }

        // The same through the antivirus service (its own thread), with a size limit.
        let config = gannet_core::config::Config::from_toml(&format!(
            "[antivirus]\nclamd = \"unix:{}\"\nmax_size = \"100kB\"\n",
            clamd.socket.display()
        ))
        .unwrap();
        let antivirus = Antivirus::start(&config.antivirus).unwrap();
        let (_, infected) = infected_messages().remove(1);
        let (scan, back) = antivirus.scan(infected.clone()).await.unwrap();
        assert_eq!(back, infected, "the message comes back as it went");
        assert!(
            matches!(&scan, Scan::Scanned(Verdict::Infected(v)) if v.starts_with("Eicar-Test-Signature")),
            "{scan:?}"
        );
        let (scan, _) = antivirus.scan(clean_message(10_000)).await.unwrap();
        assert_eq!(scan, Scan::Scanned(Verdict::Clean));
        let (scan, _) = antivirus.scan(clean_message(200_000)).await.unwrap();
        assert_eq!(scan, Scan::TooLarge);
    });
}

#[test]
fn scan_latency() {
    let clamd = RealClamd::start();
    let client = client(clamd.socket.clone(), Duration::from_secs(30));
    block_on(async {
        for (label, size) in [("10 KiB", 10 * 1024), ("1 MB", 1_000_000)] {
            let message = clean_message(size);
            let mut times = Vec::new();
            for _ in 0..20 {
                let start = Instant::now();
                assert_eq!(client.scan(&message).await, Verdict::Clean);
                times.push(start.elapsed());
            }
            times.sort();
            eprintln!(
                "clamd scan of a {label} message ({} bytes): median {:?}, min {:?}, max {:?} (20 scans)",
                message.len(),
                times[times.len() / 2],
                times[0],
                times[times.len() - 1]
            );
        }
    });
}

#[test]
fn a_stopped_clamd_is_an_error_at_once() {
    let mut clamd = RealClamd::start();
    let socket = clamd.socket.clone();
    let client = client(socket.clone(), Duration::from_secs(30));
    block_on(async {
        assert_eq!(client.scan(b"hello").await, Verdict::Clean);
        clamd.kill();
        // The socket file is still there, nobody listens on it.
        let start = Instant::now();
        let error = client.try_scan(b"hello").await.unwrap_err();
        assert!(matches!(error, ClamdError::Connect { .. }), "{error}");
        // Then the socket is gone too.
        std::fs::remove_file(&socket).unwrap();
        match client.scan(b"hello").await {
            Verdict::Error(why) => assert!(why.contains("cannot connect"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    });
}

#[test]
fn a_clamd_that_never_answers_is_an_error_within_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("silent.sock");
    // Listening, never accepting: connect succeeds (the backlog), nothing is read.
    let _unix = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let timeout = Duration::from_secs(1);
    let clients = [
        client(socket, timeout),
        Clamd::new(
            ClamdAddress::Tcp(tcp.local_addr().unwrap().to_string()),
            timeout,
        ),
    ];
    block_on(async {
        for client in &clients {
            // A small message waits for the reply; a large one cannot even be written.
            for size in [100, 4_000_000] {
                let start = Instant::now();
                let result = client.try_scan(&vec![b'a'; size]).await;
                let took = start.elapsed();
                assert!(
                    matches!(result, Err(ClamdError::Timeout { .. })),
                    "{}: {result:?}",
                    client.address()
                );
                assert!(
                    took >= timeout && took < timeout + Duration::from_secs(1),
                    "{}, {size} bytes: {took:?}",
                    client.address()
                );
            }
        }
    });
}
