//! The client's reverse DNS name in the `Received:` header, as Postfix writes it: a real
//! DNS server (dnsmasq) with PTR and address records, and swaks connecting from public
//! addresses. Public addresses need a network of their own: the test runs in a new
//! network namespace (its loopback carries the test addresses), so nothing touches the
//! machine's own interfaces.

use std::process::Command;

use gannet_tests::{require_tool, Dns, Server};

/// Runs `body` on a thread of its own in a new network namespace with loopback up and
/// `addresses` on it; the processes the thread starts (dnsmasq, gannet, swaks) live there.
fn in_network_namespace(addresses: &[&str], body: impl FnOnce() + Send + 'static) {
    let addresses: Vec<String> = addresses.iter().map(|a| a.to_string()).collect();
    let thread = std::thread::spawn(move || {
        // SAFETY: unshare changes only this thread's namespaces; it touches no memory.
        let status = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            status,
            0,
            "unshare(CLONE_NEWNET) needs root: {}",
            std::io::Error::last_os_error()
        );
        let ip = |args: &[&str]| {
            let out = Command::new("ip")
                .args(args)
                .output()
                .expect("ip (iproute2)");
            assert!(out.status.success(), "ip {args:?}: {out:?}");
        };
        ip(&["link", "set", "lo", "up"]);
        for address in &addresses {
            ip(&["addr", "add", &format!("{address}/32"), "dev", "lo"]);
        }
        body();
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// Sends one message from `source` with swaks; panics unless it is accepted.
fn send_from(server: &Server, source: &str, subject: &str) {
    let out = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(server.smtp.port().to_string())
        .args(["--local-interface", source])
        .args(["--helo", "mail.sender.test"])
        .args([
            "--from",
            "someone@sender.test",
            "--to",
            "alice@example.test",
        ])
        .args(["--header", &format!("Subject: {subject}")])
        .args(["--timeout", "20"])
        .output()
        .expect("swaks");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("<-  250"),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A client whose PTR and address records agree is named; one whose PTR name does not
/// resolve back to it, and one with no PTR at all, are `unknown` (which spam rules
/// read as "no reverse DNS"); a loopback client is not looked up.
#[test]
fn received_names_the_forward_confirmed_reverse_name() {
    require_tool("swaks");
    require_tool("dnsmasq");
    in_network_namespace(&["192.0.2.10", "192.0.2.11", "192.0.2.12"], || {
        let dns = Dns::start(&[
            // A and PTR records both: forward-confirmed.
            "--host-record=out.sender.test,192.0.2.10".to_string(),
            // A PTR whose name has no address record: a forged name.
            "--ptr-record=11.2.0.192.in-addr.arpa,forged.sender.test".to_string(),
        ]);
        let mut server = Server::new(&format!("[dns]\nnameservers = [\"{}\"]\n", dns.addr));
        server.start();
        server.with_example_accounts();
        send_from(&server, "192.0.2.10", "confirmed");
        send_from(&server, "192.0.2.11", "forged");
        send_from(&server, "192.0.2.12", "no-ptr");
        send_from(&server, "127.0.0.1", "loopback");
        let received = |subject: &str| -> String {
            let (uid, _, _) = server
                .mail_list("alice@example.test")
                .into_iter()
                .find(|(_, _, s)| s == subject)
                .unwrap_or_else(|| panic!("{subject} not delivered"));
            let message = String::from_utf8(server.mail_get("alice@example.test", uid)).unwrap();
            let start = message.find("Received: from").expect("a Received header");
            message[start..]
                .lines()
                .next()
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(
            received("confirmed"),
            "Received: from mail.sender.test (out.sender.test [192.0.2.10])"
        );
        assert_eq!(
            received("forged"),
            "Received: from mail.sender.test (unknown [192.0.2.11])"
        );
        assert_eq!(
            received("no-ptr"),
            "Received: from mail.sender.test (unknown [192.0.2.12])"
        );
        assert_eq!(
            received("loopback"),
            "Received: from mail.sender.test ([127.0.0.1])"
        );
    });
}
