//! Typed configuration with embedded defaults.
//!
//! One TOML file; every key has a default, so `Config::default()` is a complete, working
//! configuration (loopback high ports, data in `./data`). Key names are agreed in DESIGN.md.

mod units;

use std::path::{Path, PathBuf};

use serde::Deserialize;

pub use units::{parse_duration, parse_size, Duration, Size};

/// Errors while reading the configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid configuration in {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: Server,
    pub listen: Listen,
    pub tls: Tls,
    pub auth: Auth,
    pub relay: Relay,
    pub limits: Limits,
    pub spam: Spam,
    pub spf: Spf,
    pub delivery: Delivery,
    pub dns: Dns,
    pub dnsbl: Vec<Dnsbl>,
    pub quarantine: Quarantine,
    pub trace: Trace,
    pub web: Web,
    pub antivirus: Antivirus,
    pub attachments: Attachments,
}

impl Config {
    /// Reads `path`, or returns the embedded defaults when no file is given.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let Some(path) = path else {
            return Ok(Config::default());
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// Number of worker threads: the configured number, or one per core.
    pub fn worker_count(&self) -> usize {
        match self.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Server {
    pub hostname: String,
    pub data_dir: PathBuf,
    /// 0 = one worker per core.
    pub workers: usize,
    /// How long a shutdown waits for sessions in the middle of a transaction.
    pub shutdown_grace: Duration,
}

impl Default for Server {
    fn default() -> Self {
        Server {
            hostname: "localhost".into(),
            data_dir: PathBuf::from("./data"),
            workers: 0,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Listen {
    pub smtp: String,
    pub submission: String,
    pub submissions: String,
    pub pop3: String,
    pub pop3s: String,
    pub imap: String,
    pub imaps: String,
    pub admin: String,
    /// HTTPS: the quarantine's release pages (and webmail, later).
    pub web: String,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            smtp: "127.0.0.1:2525".into(),
            submission: "127.0.0.1:2587".into(),
            submissions: "127.0.0.1:2465".into(),
            pop3: "127.0.0.1:2110".into(),
            pop3s: "127.0.0.1:2995".into(),
            imap: "127.0.0.1:2143".into(),
            imaps: "127.0.0.1:2993".into(),
            admin: "127.0.0.1:8080".into(),
            web: "127.0.0.1:8443".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Tls {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// AUTH without TLS is allowed to loopback clients on every listener (tests).
    pub plaintext_on_loopback: bool,
    /// Listeners on which passwords are accepted without TLS from any client (legacy
    /// devices that cannot do TLS): `false` (the default), `true` (every listener that
    /// has a plain port), or a list of `[listen]` names (`["pop3", "smtp"]`).
    pub allow_plaintext: AllowPlaintext,
    /// An authenticated user may send only from their own addresses and aliases.
    pub restrict_sender: bool,
    /// Failed logins from one IP within `failure_window` that lock it out.
    pub max_failures: usize,
    pub failure_window: Duration,
    /// Failed logins for one login name (from any clients) within `failure_window` that
    /// lock that name out: guessing spread over many addresses.
    pub max_account_failures: usize,
    /// How long a locked-out client or name is refused.
    pub lockout: Duration,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            plaintext_on_loopback: false,
            allow_plaintext: AllowPlaintext::default(),
            restrict_sender: true,
            max_failures: 5,
            failure_window: Duration::from_secs(600),
            max_account_failures: 20,
            lockout: Duration::from_secs(900),
        }
    }
}

impl Auth {
    /// Whether a client at `ip` may send a password without TLS on `listener`.
    pub fn plaintext_allowed(&self, listener: PlainListener, ip: std::net::IpAddr) -> bool {
        self.allow_plaintext.allows(listener) || (self.plaintext_on_loopback && ip.is_loopback())
    }
}

/// A listener with a plain (not implicit-TLS) port, where a password could be sent in
/// the clear: the names of `[listen]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlainListener {
    Smtp,
    Submission,
    Pop3,
    Imap,
}

impl PlainListener {
    pub const ALL: [PlainListener; 4] = [
        PlainListener::Smtp,
        PlainListener::Submission,
        PlainListener::Pop3,
        PlainListener::Imap,
    ];

    /// Its key in `[listen]`.
    pub fn name(self) -> &'static str {
        match self {
            PlainListener::Smtp => "smtp",
            PlainListener::Submission => "submission",
            PlainListener::Pop3 => "pop3",
            PlainListener::Imap => "imap",
        }
    }
}

/// `auth.allow_plaintext`: the listeners where passwords are accepted without TLS from
/// any address. In the file: `false`, `true` (all four plain listeners), or a list of
/// their names; an implicit-TLS listener's name (`pop3s`, ...) or an unknown one is an
/// error, so a typo does not pass silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "AllowPlaintextToml")]
pub struct AllowPlaintext {
    on: [bool; 4],
}

#[derive(Deserialize)]
#[serde(untagged)]
enum AllowPlaintextToml {
    All(bool),
    Some(Vec<String>),
}

impl TryFrom<AllowPlaintextToml> for AllowPlaintext {
    type Error = String;

    fn try_from(value: AllowPlaintextToml) -> Result<Self, String> {
        match value {
            AllowPlaintextToml::All(all) => Ok(AllowPlaintext { on: [all; 4] }),
            AllowPlaintextToml::Some(names) => {
                let mut on = [false; 4];
                for name in &names {
                    let i = PlainListener::ALL
                        .iter()
                        .position(|l| l.name().eq_ignore_ascii_case(name.trim()))
                        .ok_or_else(|| {
                            format!(
                                "auth.allow_plaintext: {name:?} is not a listener with a plain \
                                 port (smtp, submission, pop3, imap)"
                            )
                        })?;
                    on[i] = true;
                }
                Ok(AllowPlaintext { on })
            }
        }
    }
}

impl AllowPlaintext {
    pub fn allows(&self, listener: PlainListener) -> bool {
        PlainListener::ALL
            .iter()
            .zip(self.on)
            .any(|(l, on)| on && *l == listener)
    }

    /// The listeners it is on for (empty: off everywhere).
    pub fn listeners(&self) -> Vec<PlainListener> {
        PlainListener::ALL
            .into_iter()
            .filter(|l| self.allows(*l))
            .collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Relay {
    pub trusted_networks: Vec<String>,
}

impl Default for Relay {
    fn default() -> Self {
        Relay {
            trusted_networks: vec!["127.0.0.1/32".into(), "::1/128".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    pub max_recipients: usize,
    pub max_message_size: Size,
    pub max_connections_per_ip: usize,
    pub messages_per_hour: u32,
    /// Longest SMTP command line, CRLF included.
    pub max_command_line: usize,
    /// Errors in one SMTP session before it is closed with 421.
    pub max_bad_commands: u32,
    /// A client silent this long is disconnected.
    pub idle_timeout: Duration,
    /// Connections open at once in the whole process (trusted clients included); more are
    /// refused at accept.
    pub max_connections: usize,
    /// Connections open at once on any one listener.
    pub max_connections_per_listener: usize,
    /// How long a session may last before it authenticates (IMAP, POP3, submission); on
    /// the MX port, how long it may go without a message accepted. Then it is closed.
    pub unauthenticated_lifetime: Duration,
    /// A full mailbox is refused with 552 5.2.2 instead of 452 4.2.2.
    pub over_quota_permanent: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_recipients: 50,
            max_message_size: Size(50 * 1000 * 1000),
            max_connections_per_ip: 5,
            messages_per_hour: 500,
            max_command_line: 512,
            max_bad_commands: 20,
            idle_timeout: Duration::from_secs(300),
            max_connections: 20_000,
            max_connections_per_listener: 10_000,
            unauthenticated_lifetime: Duration::from_secs(300),
            over_quota_permanent: false,
        }
    }
}

/// SPF checks of mail from the outside.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Spf {
    /// Refuse a message whose sender's SPF record says `-all` for the client (550 5.7.23)
    /// instead of only recording the result.
    pub reject_fail: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Spam {
    pub default_level: String,
    /// Rule directories loaded after the built-in rules. Unset: SpamAssassin's stock
    /// rules where they are installed ([`crate::filter::stock`]); `[]`: built-in only.
    pub rules_dirs: Option<Vec<PathBuf>>,
    /// Where users send spam to teach the filter (an address of an account here, e.g.
    /// `spam@example.test`; empty: no report address). Accepted from authenticated users
    /// only; kept in that account's INBOX.
    pub report_address: String,
    /// Learn delivered mail by its rules' score, as SpamAssassin's `bayes_auto_learn`
    /// does: below `bayes_auto_learn_threshold_nonspam` as ham, at or above
    /// `bayes_auto_learn_threshold_spam` as spam ([`crate::filter::bayes::auto_learn`]).
    /// Off by default: a wrong verdict learned teaches the filter its own mistake.
    pub bayes_auto_learn: bool,
    pub bayes_auto_learn_threshold_nonspam: f64,
    pub bayes_auto_learn_threshold_spam: f64,
    /// The most tokens a Bayes database keeps: past it, the daily purge drops the least
    /// recently learned rare ones down to three quarters (SpamAssassin's
    /// `bayes_expiry_max_db_size`); 0 never expires.
    pub bayes_max_tokens: usize,
    /// Each account learns into a database of its own (its Junk moves; `gannet spam learn
    /// --account`), used for its mail once it has learned 200 spam and 200 ham; until
    /// then, and for accounts without one, the site-wide database.
    pub bayes_per_account: bool,
}

impl Default for Spam {
    fn default() -> Self {
        Spam {
            default_level: "medium".into(),
            rules_dirs: None,
            report_address: String::new(),
            bayes_auto_learn: false,
            bayes_auto_learn_threshold_nonspam: 0.1,
            bayes_auto_learn_threshold_spam: 12.0,
            bayes_max_tokens: crate::store::bayes::DEFAULT_MAX_TOKENS,
            bayes_per_account: false,
        }
    }
}

impl Spam {
    /// The rule directories to load and where they come from.
    pub fn rules(&self) -> (Vec<PathBuf>, crate::filter::stock::RulesOrigin) {
        crate::filter::stock::rules_dirs(self.rules_dirs.as_deref(), &Default::default())
    }

    /// The auto-learning thresholds, when auto-learning is on.
    pub fn auto_learn(&self) -> Option<crate::filter::bayes::auto_learn::Thresholds> {
        self.bayes_auto_learn
            .then_some(crate::filter::bayes::auto_learn::Thresholds {
                ham_below: self.bayes_auto_learn_threshold_nonspam,
                spam_at: self.bayes_auto_learn_threshold_spam,
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Delivery {
    pub relay_host: String,
    /// AUTH PLAIN credentials for the smart host (empty: no AUTH).
    pub relay_user: String,
    pub relay_password: String,
    /// PEM file of the CA certificates that the smart host's certificate must chain to
    /// when credentials are sent (empty: the system's roots).
    pub relay_ca: String,
    pub remote_port: u16,
    pub max_queue_age: Duration,
    pub retry_schedule: Vec<Duration>,
    /// How long to wait for each reply of a remote server (and for a connection).
    pub reply_timeout: Duration,
    /// Messages delivered at once to one destination.
    pub destination_concurrency: usize,
}

impl Default for Delivery {
    fn default() -> Self {
        let minutes = |m: u64| Duration::from_secs(m * 60);
        Delivery {
            relay_host: String::new(),
            relay_user: String::new(),
            relay_password: String::new(),
            relay_ca: String::new(),
            remote_port: 25,
            max_queue_age: Duration::from_secs(5 * 86400),
            retry_schedule: vec![
                minutes(5),
                minutes(10),
                minutes(20),
                minutes(40),
                minutes(60),
            ],
            reply_timeout: Duration(std::time::Duration::from_secs(300)),
            destination_concurrency: 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Dns {
    pub nameservers: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dnsbl {
    pub zone: String,
    #[serde(default = "Dnsbl::default_action")]
    pub action: String,
    #[serde(default = "Dnsbl::default_score")]
    pub score: f64,
    /// The answers that count as listed (e.g. `["127.0.0.2", "127.0.0.4"]`); empty: any
    /// address in 127.0.0.0/8.
    #[serde(default)]
    pub answers: Vec<std::net::Ipv4Addr>,
}

impl Dnsbl {
    fn default_action() -> String {
        "reject".into()
    }
    fn default_score() -> f64 {
        3.0
    }
}

/// `[trace]`: the message trace the admin console searches.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trace {
    /// Record what happens to each message (arrival, verdict, folder, queue, hold).
    pub enabled: bool,
    /// How long a message's trace is kept (purged daily with the quarantine).
    pub retention: Duration,
}

impl Default for Trace {
    fn default() -> Self {
        Trace {
            enabled: true,
            retention: Duration::from_secs(30 * 86400),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quarantine {
    pub retention: Duration,
    /// When the daily purge runs, "HH:MM" (UTC); it also runs at start.
    pub purge_at: String,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine {
            retention: Duration::from_secs(7 * 86400),
            purge_at: "03:00".into(),
        }
    }
}

impl Quarantine {
    /// `purge_at` as seconds after midnight UTC.
    pub fn purge_second_of_day(&self) -> Result<u32, String> {
        let bad = || format!("quarantine.purge_at: {:?} is not HH:MM", self.purge_at);
        let (h, m) = self.purge_at.split_once(':').ok_or_else(bad)?;
        let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 23 || m > 59 {
            return Err(bad());
        }
        Ok(h * 3600 + m * 60)
    }
}

/// The web pages (quarantine release now; webmail later).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Web {
    /// The address users reach the pages at, for links in mail (`https://host[:port]`);
    /// empty: `https://` + `server.hostname` + the port of `listen.web`.
    pub public_url: String,
}

/// Virus scanning of incoming mail by ClamAV's `clamd` (`crate::antivirus`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Antivirus {
    /// Where clamd listens: `"unix:/run/clamav/clamd.ctl"` or `"tcp:127.0.0.1:3310"`;
    /// empty (the default): no virus scanning.
    #[serde(deserialize_with = "clamd_address")]
    pub clamd: Option<ClamdAddress>,
    /// Longest a scan may take, connecting and waiting for a free scan included.
    pub timeout: Duration,
    /// What becomes of a message that could not be scanned.
    pub on_failure: OnFailure,
    /// Larger messages are not scanned (keep it at most clamd's `StreamMaxLength`).
    pub max_size: Size,
}

impl Default for Antivirus {
    fn default() -> Self {
        Antivirus {
            clamd: None,
            timeout: Duration::from_secs(30),
            on_failure: OnFailure::Tempfail,
            max_size: Size(25 * 1000 * 1000),
        }
    }
}

/// The attachment policy (`policy::attachments`): which attachments make a message held
/// because they are, or hide, a program or a script.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Attachments {
    /// Whether the policy looks at attachments at all.
    pub enabled: bool,
    /// File name extensions held (without the dot, any case): Windows programs and
    /// scripts, and a few others that run on a double click.
    pub blocked_extensions: Vec<String>,
    /// Name a blocked extension hidden behind a document's (`holiday.jpg.pif`) as such.
    pub double_extensions: bool,
    /// Hold programs recognised by their content (PE, ELF, Mach-O, and `#!` scripts named
    /// as documents) whatever their name.
    pub content: bool,
    /// Look inside ZIP archives, one level deep.
    pub zip: bool,
    /// Also apply the policy to mail from authenticated users and trusted networks
    /// (refused at the end of data, `554 5.7.1`); off by default.
    pub outbound: bool,
}

/// The default of `attachments.blocked_extensions`.
pub const DEFAULT_BLOCKED_EXTENSIONS: &[&str] = &[
    // Windows programs, installers and packages.
    "exe",
    "pif",
    "scr",
    "com",
    "cpl",
    "msi",
    "msp",
    "mst",
    "msix",
    "msixbundle",
    "appx",
    "appxbundle",
    "application",
    "gadget",
    "msc",
    "dll",
    "sys",
    "drv",
    "ocx",
    "xll",
    // Scripts and files that run commands when opened.
    "bat",
    "cmd",
    "js",
    "jse",
    "vb",
    "vbs",
    "vbe",
    "wsf",
    "wsh",
    "wsc",
    "sct",
    "hta",
    "ps1",
    "psm1",
    "reg",
    "inf",
    "scf",
    "lnk",
    // Compiled help, which can run scripts.
    "hlp",
    "chm",
    // Java and Android.
    "jar",
    "jnlp",
    "apk",
];

impl Default for Attachments {
    fn default() -> Self {
        Attachments {
            enabled: true,
            blocked_extensions: DEFAULT_BLOCKED_EXTENSIONS
                .iter()
                .map(|e| e.to_string())
                .collect(),
            double_extensions: true,
            content: true,
            zip: true,
            outbound: false,
        }
    }
}

/// What becomes of a message whose scan failed (clamd down, too slow, or in error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Refused for now (`451 4.7.1`): the client tries again later.
    #[default]
    Tempfail,
    /// Accepted, with an `X-Virus-Scan: failed` header.
    Accept,
}

/// Where clamd listens: a Unix socket or a TCP `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClamdAddress {
    Unix(PathBuf),
    /// `host:port` (a name, an IPv4 address, or `[IPv6]`), resolved at each connection.
    Tcp(String),
}

/// The forms [`ClamdAddress`] parses from.
const CLAMD_FORMS: &str = "expected \"unix:PATH\" or \"tcp:HOST:PORT\"";

impl std::str::FromStr for ClamdAddress {
    type Err = String;

    /// `"unix:/run/clamav/clamd.ctl"`, `"tcp:127.0.0.1:3310"`, `"tcp:clamd.lan:3310"`.
    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("not a clamd address: {text:?} ({CLAMD_FORMS})");
        if let Some(path) = text.strip_prefix("unix:") {
            return match path.trim() {
                "" => Err(bad()),
                path => Ok(ClamdAddress::Unix(PathBuf::from(path))),
            };
        }
        let Some(host_port) = text.strip_prefix("tcp:") else {
            return Err(bad());
        };
        let host_port = host_port.trim();
        match host_port.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0) => {
                Ok(ClamdAddress::Tcp(host_port.to_string()))
            }
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for ClamdAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClamdAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            ClamdAddress::Tcp(host_port) => write!(f, "tcp:{host_port}"),
        }
    }
}

/// `antivirus.clamd`: empty is off, anything else must be a [`ClamdAddress`].
fn clamd_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<ClamdAddress>, D::Error> {
    let text = String::deserialize(d)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_design() {
        let c = Config::default();
        assert_eq!(c.listen.smtp, "127.0.0.1:2525");
        assert_eq!(c.limits.max_recipients, 50);
        assert_eq!(c.limits.max_message_size.0, 50_000_000);
        assert_eq!(c.delivery.retry_schedule.len(), 5);
        assert!(!c.auth.plaintext_on_loopback);
    }

    #[test]
    fn file_overrides_some_keys_and_keeps_other_defaults() {
        let c = Config::from_toml(
            "[server]\nhostname = \"mx.example.test\"\n[limits]\nmax_message_size = \"1MB\"\nidle_timeout = \"30s\"\n[[dnsbl]]\nzone = \"bl.example\"\n",
        )
        .unwrap();
        assert_eq!(c.server.hostname, "mx.example.test");
        assert_eq!(c.limits.max_message_size.0, 1_000_000);
        assert_eq!(c.limits.idle_timeout.0.as_secs(), 30);
        assert_eq!(c.limits.max_recipients, 50);
        assert_eq!(c.dnsbl[0].action, "reject");
    }

    #[test]
    fn antivirus_is_off_unless_an_address_is_given() {
        let c = Config::default();
        assert_eq!(c.antivirus.clamd, None);
        assert_eq!(c.antivirus.timeout.0.as_secs(), 30);
        assert_eq!(c.antivirus.on_failure, OnFailure::Tempfail);
        assert_eq!(c.antivirus.max_size.0, 25_000_000);
        let c = Config::from_toml("[antivirus]\nclamd = \"\"\n").unwrap();
        assert_eq!(c.antivirus.clamd, None);
        let c = Config::from_toml(
            "[antivirus]\nclamd = \"unix:/run/clamav/clamd.ctl\"\ntimeout = \"5s\"\non_failure = \"accept\"\nmax_size = \"10MB\"\n",
        )
        .unwrap();
        assert_eq!(
            c.antivirus.clamd,
            Some(ClamdAddress::Unix("/run/clamav/clamd.ctl".into()))
        );
        assert_eq!(c.antivirus.timeout.0.as_secs(), 5);
        assert_eq!(c.antivirus.on_failure, OnFailure::Accept);
        assert_eq!(c.antivirus.max_size.0, 10_000_000);
    }

    #[test]
    fn clamd_addresses() {
        let parse = |s: &str| s.parse::<ClamdAddress>();
        assert_eq!(
            parse("tcp:127.0.0.1:3310"),
            Ok(ClamdAddress::Tcp("127.0.0.1:3310".into()))
        );
        assert_eq!(
            parse("tcp:[::1]:3310"),
            Ok(ClamdAddress::Tcp("[::1]:3310".into()))
        );
        assert_eq!(
            parse("tcp:clamd.lan:3310"),
            Ok(ClamdAddress::Tcp("clamd.lan:3310".into()))
        );
        assert_eq!(
            parse("unix:/tmp/c.sock").map(|a| a.to_string()),
            Ok("unix:/tmp/c.sock".to_string())
        );
        for bad in [
            "/run/clamd.ctl",
            "unix:",
            "tcp:127.0.0.1",
            "tcp::3310",
            "tcp:h:0",
            "tcp:h:x",
            "udp:h:1",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(Config::from_toml("[antivirus]\nclamd = \"127.0.0.1:3310\"\n").is_err());
        assert!(Config::from_toml("[antivirus]\non_failure = \"reject\"\n").is_err());
        assert!(Config::from_toml("[antivirus]\nmax_sise = 1\n").is_err());
    }

    #[test]
    fn plaintext_logins() {
        let loopback: std::net::IpAddr = "127.0.0.1".parse().unwrap();
        let outside: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let c = Config::default();
        assert!(c.auth.allow_plaintext.listeners().is_empty());
        for l in PlainListener::ALL {
            assert!(!c.auth.plaintext_allowed(l, loopback));
            assert!(!c.auth.plaintext_allowed(l, outside));
        }
        let c = Config::from_toml("[auth]\nplaintext_on_loopback = true\n").unwrap();
        assert!(c.auth.plaintext_allowed(PlainListener::Imap, loopback));
        assert!(!c.auth.plaintext_allowed(PlainListener::Imap, outside));
        let c = Config::from_toml("[auth]\nallow_plaintext = true\n").unwrap();
        assert_eq!(c.auth.allow_plaintext.listeners(), PlainListener::ALL);
        assert!(c.auth.plaintext_allowed(PlainListener::Smtp, outside));
        let c = Config::from_toml("[auth]\nallow_plaintext = false\n").unwrap();
        assert!(c.auth.allow_plaintext.listeners().is_empty());
        let c = Config::from_toml("[auth]\nallow_plaintext = [\"pop3\", \"SMTP\"]\n").unwrap();
        assert_eq!(
            c.auth.allow_plaintext.listeners(),
            [PlainListener::Smtp, PlainListener::Pop3]
        );
        assert!(c.auth.plaintext_allowed(PlainListener::Pop3, outside));
        assert!(!c.auth.plaintext_allowed(PlainListener::Imap, outside));
        assert!(!c
            .auth
            .plaintext_allowed(PlainListener::Submission, loopback));
        let c = Config::from_toml("[auth]\nallow_plaintext = []\n").unwrap();
        assert!(c.auth.allow_plaintext.listeners().is_empty());
        for bad in ["[\"pop3s\"]", "[\"pop\"]", "\"pop3\"", "1"] {
            let text = format!("[auth]\nallow_plaintext = {bad}\n");
            assert!(Config::from_toml(&text).is_err(), "{bad}");
        }
        let err = Config::from_toml("[auth]\nallow_plaintext = [\"imaps\"]\n").unwrap_err();
        assert!(err.to_string().contains("imaps"), "{err}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(Config::from_toml("[server]\nhostnam = \"x\"\n").is_err());
        assert!(Config::from_toml("[attachments]\nzips = false\n").is_err());
    }

    #[test]
    fn attachments_section() {
        let c = Config::default();
        assert!(c.attachments.enabled && c.attachments.double_extensions);
        assert!(c.attachments.content && c.attachments.zip);
        assert!(c.attachments.blocked_extensions.iter().any(|e| e == "exe"));
        let c = Config::from_toml(
            "[attachments]\nblocked_extensions = [\"exe\", \".SCR\"]\nzip = false\n",
        )
        .unwrap();
        assert_eq!(c.attachments.blocked_extensions, ["exe", ".SCR"]);
        assert!(!c.attachments.zip && c.attachments.content && c.attachments.enabled);
    }
}
