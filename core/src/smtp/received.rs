//! Trace headers added to accepted mail: `Return-Path:` and `Received:` (RFC 5321 4.4).

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::policy::dns_checks::ReverseDns;

/// What the `Received:` header records about one transaction.
pub struct TraceInfo<'a> {
    pub helo: &'a str,
    pub client_ip: IpAddr,
    pub reverse_dns: &'a ReverseDns,
    pub hostname: &'a str,
    /// "SMTP", "ESMTP", "UTF8SMTP" (RFC 3848 / RFC 6531 "with" keywords).
    pub protocol: &'a str,
    pub id: u64,
    /// The single recipient, named only when there is exactly one (privacy).
    pub single_recipient: Option<&'a str>,
    pub reverse_path: &'a str,
    pub unix_time: i64,
}

/// The `Return-Path:` and `Received:` lines, in the order they go on top of the message.
pub fn trace_headers(t: &TraceInfo<'_>) -> String {
    let mut h = String::with_capacity(256);
    let _ = write!(h, "Return-Path: <{}>\r\n", t.reverse_path);
    let ip = match t.client_ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("IPv6:{v6}"),
    };
    // "(name [ip])" as Postfix writes it, which SpamAssassin's relay parser reads.
    let name = match t.reverse_dns {
        ReverseDns::NotLookedUp => String::new(),
        ReverseDns::Unknown => "unknown ".to_string(),
        ReverseDns::Verified(name) => format!("{} ", sanitize(name)),
    };
    let _ = write!(
        h,
        "Received: from {} ({}[{}])\r\n\tby {} (Gannet) with {} id {:016x}",
        sanitize(t.helo),
        name,
        ip,
        t.hostname,
        t.protocol,
        t.id
    );
    if let Some(rcpt) = t.single_recipient {
        let _ = write!(h, "\r\n\tfor <{}>", sanitize(rcpt));
    }
    let _ = write!(h, ";\r\n\t{}\r\n", format_rfc5322_date(t.unix_time));
    h
}

/// Keeps client-supplied words from breaking the header: no controls, no parentheses.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '(' || c == ')' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// "Sun, 29 Nov 2026 14:30:30 +0000" for a Unix time (UTC).
pub fn format_rfc5322_date(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86400);
    let secs = unix.rem_euclid(86400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            format_rfc5322_date(1_795_962_630),
            "Sun, 29 Nov 2026 14:30:30 +0000"
        );
        assert_eq!(
            format_rfc5322_date(951_782_400),
            "Tue, 29 Feb 2000 00:00:00 +0000"
        );
    }

    #[test]
    fn received_header_is_folded_and_sanitized() {
        let h = trace_headers(&TraceInfo {
            helo: "evil)\r\nX-Injected: 1",
            client_ip: "127.0.0.2".parse().unwrap(),
            reverse_dns: &ReverseDns::NotLookedUp,
            hostname: "mx.example.test",
            protocol: "ESMTP",
            id: 0xabc,
            single_recipient: Some("alice@example.test"),
            reverse_path: "bob@example.org",
            unix_time: 0,
        });
        assert!(h.starts_with("Return-Path: <bob@example.org>\r\nReceived: from evil???X-Injected: 1 ([127.0.0.2])\r\n\tby mx.example.test (Gannet) with ESMTP id 0000000000000abc\r\n\tfor <alice@example.test>;\r\n\tThu, 01 Jan 1970"));
        assert!(h.ends_with("+0000\r\n"));
        assert_eq!(h.matches("\r\n").count(), 5);
    }

    #[test]
    fn received_header_names_the_reverse_dns_as_postfix_does() {
        let header = |reverse_dns: &ReverseDns| {
            trace_headers(&TraceInfo {
                helo: "mail.example.net",
                client_ip: "192.0.2.10".parse().unwrap(),
                reverse_dns,
                hostname: "mx.example.test",
                protocol: "ESMTP",
                id: 1,
                single_recipient: None,
                reverse_path: "",
                unix_time: 0,
            })
        };
        let verified = header(&ReverseDns::Verified("out.example.net".into()));
        assert!(verified.contains("from mail.example.net (out.example.net [192.0.2.10])"));
        let unknown = header(&ReverseDns::Unknown);
        assert!(unknown.contains("from mail.example.net (unknown [192.0.2.10])"));
        let not_asked = header(&ReverseDns::NotLookedUp);
        assert!(not_asked.contains("from mail.example.net ([192.0.2.10])"));
    }
}
