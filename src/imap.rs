//! The IMAP source: connect (implicit TLS, STARTTLS or plain to loopback),
//! log in, select the folder, list and fetch messages, apply after-actions.
//!
//! Every network step runs under a timeout so that a silent server can never
//! hang a pass, and every error says what was being done ("connect to …",
//! "login failed: …", "TLS: certificate not trusted …"). The password is sent
//! once, in LOGIN, and never appears in a log line or an error.

use crate::config::{After, MailboxConfig, TlsMode};
use async_imap::imap_proto::{AttributeValue, MailboxDatum, Response, ResponseCode, Status};
use async_imap::types::UnsolicitedResponse;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// How long each kind of network step may take. A step that takes longer
/// fails the pass with [`ImapError::Timeout`] (naming the step), the
/// connection is dropped, and the daemon reconnects with backoff: a silent
/// server is an error, never an empty mailbox.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake plus greeting ([`CONNECT_TIMEOUT`]).
    pub connect: Duration,
    /// LOGIN and the CAPABILITY that follows ([`LOGIN_TIMEOUT`]).
    pub login: Duration,
    /// SELECT ([`SELECT_TIMEOUT`]).
    pub select: Duration,
    /// One FETCH batch: this much plus one second per [`FETCH_MIN_RATE`]
    /// bytes the batch may bring ([`FETCH_TIMEOUT`]).
    pub fetch: Duration,
    /// One after-action command: STORE, EXPUNGE, MOVE, COPY, CREATE
    /// ([`AFTER_TIMEOUT`]).
    pub after: Duration,
    /// Any other command: UID SEARCH, the size listing, NOOP, IDLE start
    /// and DONE ([`COMMAND_TIMEOUT`]).
    pub command: Duration,
    /// Longest IDLE before it is renewed ([`IDLE_RENEWAL`]).
    pub idle: Duration,
}

/// Default [`Timeouts::connect`].
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Timeouts::login`].
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Timeouts::select`]: a large folder's first SELECT can make the
/// server build its index.
pub const SELECT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Timeouts::fetch`] (the fixed part of a FETCH batch's limit).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The slowest transfer rate a FETCH batch is allowed, bytes per second:
/// each batch gets one more second per this many bytes it may bring.
pub const FETCH_MIN_RATE: u64 = 1024 * 1024;
/// Default [`Timeouts::after`]: a MOVE or EXPUNGE of 500 UIDs rewrites the
/// server's index.
pub const AFTER_TIMEOUT: Duration = Duration::from_secs(120);
/// Default [`Timeouts::command`].
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Timeouts::idle`]: RFC 2177 servers may drop an IDLE after 30
/// minutes, so it is renewed before.
pub const IDLE_RENEWAL: Duration = Duration::from_secs(25 * 60);

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: CONNECT_TIMEOUT,
            login: LOGIN_TIMEOUT,
            select: SELECT_TIMEOUT,
            fetch: FETCH_TIMEOUT,
            after: AFTER_TIMEOUT,
            command: COMMAND_TIMEOUT,
            idle: IDLE_RENEWAL,
        }
    }
}

impl Timeouts {
    /// The limit for a FETCH batch that may bring `bytes` bytes.
    pub fn fetch_for(&self, bytes: u64) -> Duration {
        self.fetch + Duration::from_secs(bytes / FETCH_MIN_RATE)
    }
}

/// The largest literal (a counted string: a message body, a long header)
/// accepted from the server for a mailbox whose `max_message_size` is `max`.
/// Bodies are always fetched as a partial `BODY.PEEK[]<0.max>`, so an honest
/// server never sends more; whatever RFC822.SIZE claims, a longer literal is
/// refused as soon as it is announced, before its bytes are read.
pub fn literal_cap(max: u32) -> u64 {
    u64::from(max).max(64 * 1024) + 64 * 1024
}

/// An IMAP error, in words an operator can act on. Every error of a command
/// names the command (and the folder, once one is selected); none prints
/// the library's internal structures.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// host:port.
        addr: String,
        /// The I/O error.
        source: io::Error,
    },
    /// The server's TLS certificate was refused.
    #[error("TLS: certificate not trusted for {host}: {detail} (for a private CA, set ca_file)")]
    Certificate {
        /// The host name checked.
        host: String,
        /// What rustls said.
        detail: String,
    },
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake with {host} failed: {detail}")]
    Tls {
        /// The host.
        host: String,
        /// What went wrong.
        detail: String,
    },
    /// The `ca_file` could not be used.
    #[error("ca_file {path}: {detail}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The server refused the login.
    #[error("login failed for user {user}: {detail}")]
    Login {
        /// The login name (never the password).
        user: String,
        /// What the server said.
        detail: String,
    },
    /// A step took longer than its timeout.
    #[error("timeout: {what} took longer than {after:?}")]
    Timeout {
        /// The step.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// The server does not offer what is needed.
    #[error("server: {0}")]
    Unsupported(String),
    /// The server said BYE: at once (too many connections, shutting down)
    /// or in the middle of a command.
    #[error("{what}: the server closed the connection (BYE): {text}")]
    Bye {
        /// The command (or "greeting").
        what: String,
        /// The server's text.
        text: String,
    },
    /// The connection ended before the command's tagged completion.
    #[error("{what}: the connection was closed before the command completed")]
    Closed {
        /// The command.
        what: String,
    },
    /// The server answered the command with a tagged NO or BAD.
    #[error("{what}: the server answered {status}: {text}")]
    Refused {
        /// The command.
        what: String,
        /// `NO` or `BAD`.
        status: &'static str,
        /// The server's text.
        text: String,
    },
    /// The server sent something that is not IMAP.
    #[error("{what}: unreadable response from the server: {excerpt}")]
    Protocol {
        /// The command.
        what: String,
        /// A short, escaped excerpt of what was received.
        excerpt: String,
    },
    /// The server announced a literal larger than the client-side cap.
    #[error("{what}: the server announced a literal of {size} bytes, over the cap of {cap} bytes (max_message_size); refused unread")]
    LiteralTooLarge {
        /// The command.
        what: String,
        /// The announced size.
        size: u64,
        /// The cap ([`literal_cap`]).
        cap: u64,
    },
    /// Reading or writing the connection failed.
    #[error("{what}: {source}")]
    Io {
        /// The command.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ImapError {
    /// Whether the server itself refused or failed while answering (NO,
    /// BAD, BYE, an oversized literal), as opposed to the network or a
    /// timeout: only such failures are held against a message.
    pub fn is_server_refusal(&self) -> bool {
        matches!(
            self,
            ImapError::Bye { .. } | ImapError::Refused { .. } | ImapError::LiteralTooLarge { .. }
        )
    }

    /// Whether retrying later could help without anyone changing anything
    /// (network trouble, timeouts, a server having a bad day), as opposed
    /// to a wrong password or an untrusted certificate, which need an
    /// operator.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect { .. }
            | ImapError::Timeout { .. }
            | ImapError::Bye { .. }
            | ImapError::Closed { .. }
            | ImapError::Refused { .. }
            | ImapError::Protocol { .. }
            | ImapError::LiteralTooLarge { .. }
            | ImapError::Io { .. } => true,
            // "[UNAVAILABLE] Temporary authentication failure": the server's
            // authentication backend is down, the password may be fine.
            ImapError::Login { detail, .. } => detail.contains("UNAVAILABLE"),
            _ => false,
        }
    }

    /// The error of command `what` from an I/O error of the connection:
    /// an oversized literal and a response that does not parse get their own
    /// readable variants.
    fn io(what: &str, e: io::Error) -> ImapError {
        let what = what.to_string();
        if let Some(big) = e.get_ref().and_then(|i| i.downcast_ref::<LiteralRefused>()) {
            return ImapError::LiteralTooLarge {
                what,
                size: big.size,
                cap: big.cap,
            };
        }
        let text = e.to_string();
        // async-imap words a parser failure as "<nom error as Debug> during
        // parsing of <the input as Debug>": keep only a short excerpt of
        // the input, which is already escaped.
        if let Some((_, input)) = text.split_once(" during parsing of ") {
            return ImapError::Protocol {
                what,
                excerpt: shorten(input, 80),
            };
        }
        if e.kind() == io::ErrorKind::UnexpectedEof {
            return ImapError::Closed { what };
        }
        ImapError::Io { what, source: e }
    }

    /// The error of command `what` from an async-imap error.
    fn lib(what: &str, e: async_imap::error::Error) -> ImapError {
        use async_imap::error::Error as E;
        match e {
            E::Io(e) => ImapError::io(what, e),
            E::ConnectionLost => ImapError::Closed { what: what.into() },
            E::No(text) => ImapError::Refused {
                what: what.into(),
                status: "NO",
                text: text.trim().to_string(),
            },
            E::Bad(text) => ImapError::Refused {
                what: what.into(),
                status: "BAD",
                text: text.trim().to_string(),
            },
            E::Parse(p) => ImapError::Protocol {
                what: what.into(),
                excerpt: shorten(&escape(p.to_string().as_bytes()), 80),
            },
            other => ImapError::Protocol {
                what: what.into(),
                excerpt: shorten(&other.to_string(), 80),
            },
        }
    }
}

/// `bytes` with everything but printable ASCII escaped (`\r`, `\n`, `\0`,
/// `\xff`), for showing what a server sent.
pub fn escape(bytes: &[u8]) -> String {
    bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect()
}

/// At most `max` characters of `s`, with "…" when cut.
fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

async fn timed<T>(
    limit: Duration,
    what: impl FnOnce() -> String,
    fut: impl std::future::Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ImapError::Timeout {
            what: what(),
            after: limit,
        }),
    }
}

/// The I/O error a [`Transport`] returns when the server announces a
/// literal over the cap; [`ImapError`] turns it into
/// [`ImapError::LiteralTooLarge`].
#[derive(Debug, thiserror::Error)]
#[error("the server announced a literal of {size} bytes, over the cap of {cap} bytes")]
struct LiteralRefused {
    size: u64,
    cap: u64,
}

/// Watches the bytes the server sends for literal announcements
/// (`{N}` CRLF) and refuses one over the cap before its bytes arrive, so
/// that no claim of the server (RFC822.SIZE, a partial fetch ignored) can
/// make the client buffer more than the cap. The literal's own bytes are
/// skipped, so a `{N}` inside a message body is not mistaken for one.
#[derive(Debug, Clone, Copy)]
struct LiteralScan {
    cap: u64,
    state: Scan,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Outside any literal.
    Text,
    /// After `{`, with the digits so far.
    Digits(u64, bool),
    /// After `{N}` (or `{N+}`).
    Closed(u64),
    /// After `{N}\r`.
    Cr(u64),
    /// Inside a literal, with this many bytes left.
    Skip(u64),
}

impl LiteralScan {
    fn new(cap: u64) -> Self {
        LiteralScan {
            cap,
            state: Scan::Text,
        }
    }

    /// Look at bytes just read; an error when one announces a literal over the cap.
    fn feed(&mut self, mut bytes: &[u8]) -> Result<(), LiteralRefused> {
        while let Some((&b, rest)) = bytes.split_first() {
            if let Scan::Skip(left) = self.state {
                let n = usize::try_from(left).unwrap_or(usize::MAX).min(bytes.len());
                bytes = &bytes[n..];
                let left = left - n as u64;
                self.state = if left == 0 {
                    Scan::Text
                } else {
                    Scan::Skip(left)
                };
                continue;
            }
            bytes = rest;
            self.state = match (self.state, b) {
                (Scan::Digits(n, _), b'0'..=b'9') => Scan::Digits(
                    n.saturating_mul(10).saturating_add(u64::from(b - b'0')),
                    true,
                ),
                (Scan::Digits(n, true), b'}') => Scan::Closed(n),
                (Scan::Digits(n, true), b'+') => Scan::Digits(n, true),
                (Scan::Closed(n), b'\r') => Scan::Cr(n),
                (Scan::Closed(n) | Scan::Cr(n), b'\n') => {
                    if n > self.cap {
                        return Err(LiteralRefused {
                            size: n,
                            cap: self.cap,
                        });
                    }
                    if n == 0 {
                        Scan::Text
                    } else {
                        Scan::Skip(n)
                    }
                }
                (_, b'{') => Scan::Digits(0, false),
                _ => Scan::Text,
            };
        }
        Ok(())
    }
}

impl From<std::convert::Infallible> for ImapError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// The byte stream under the IMAP session: plain TCP or TLS over TCP, with
/// the literal cap ([`literal_cap`]) watched on everything read.
pub struct Transport {
    link: Link,
    scan: LiteralScan,
}

enum Link {
    /// Plaintext (loopback, or `allow_insecure`).
    Plain(TcpStream),
    /// TLS (implicit or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
}

impl Transport {
    fn plain(tcp: TcpStream, cap: u64) -> Self {
        Transport {
            link: Link::Plain(tcp),
            scan: LiteralScan::new(cap),
        }
    }

    fn tls(tls: TlsStream<TcpStream>, cap: u64) -> Self {
        Transport {
            link: Link::Tls(Box::new(tls)),
            scan: LiteralScan::new(cap),
        }
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.link {
            Link::Plain(_) => f.write_str("Transport::Plain"),
            Link::Tls(_) => f.write_str("Transport::Tls"),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        let start = buf.filled().len();
        let r = match &mut me.link {
            Link::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        };
        if let Poll::Ready(Ok(())) = r {
            if let Err(refused) = me.scan.feed(&buf.filled()[start..]) {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, refused)));
            }
        }
        r
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().link {
            Link::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().link {
            Link::Plain(s) => Pin::new(s).poll_flush(cx),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().link {
            Link::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Link::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An authenticated IMAP session.
pub type Session = async_imap::Session<Transport>;

/// Build the TLS client configuration: the public web roots plus every
/// certificate in `ca_file`.
pub fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ImapError> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let ca_err = |detail: String| ImapError::CaFile {
            path: path.to_path_buf(),
            detail,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_err(format!("cannot read: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ca_err(format!("not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ca_err("contains no PEM certificate".into()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| ca_err(format!("unusable certificate: {e}")))?;
        }
    }
    // Name the provider explicitly: with two rustls crypto backends in the
    // dependency graph, the implicit `builder()` panics.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ImapError::Tls {
            host: String::new(),
            detail: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Turn a handshake error into one that says what was wrong with the certificate.
fn tls_error(host: &str, e: io::Error) -> ImapError {
    if let Some(inner) = e.get_ref() {
        if let Some(rustls::Error::InvalidCertificate(cert)) = inner.downcast_ref::<rustls::Error>()
        {
            let detail = match cert {
                rustls::CertificateError::UnknownIssuer => {
                    "issued by an unknown certificate authority (UnknownIssuer)".to_string()
                }
                rustls::CertificateError::NotValidForName => {
                    format!("not valid for the name {host} (NotValidForName)")
                }
                rustls::CertificateError::Expired => "expired".to_string(),
                other => format!("{other:?}"),
            };
            return ImapError::Certificate {
                host: host.to_string(),
                detail,
            };
        }
    }
    ImapError::Tls {
        host: host.to_string(),
        detail: e.to_string(),
    }
}

/// A connected, logged-in IMAP source for one mailbox.
///
/// Every command goes through one loop (`run_command`) that reads
/// responses until the command's own tagged completion: an end of stream, a
/// `BYE`, a tagged `NO`/`BAD` or a timeout before it is an error, so a
/// dropped connection can never pass for an empty answer.
pub struct ImapSource {
    session: Session,
    mailbox: String,
    timeouts: Timeouts,
    has_move: bool,
    has_uidplus: bool,
    has_idle: bool,
    folder: Option<String>,
    /// New messages announced (EXISTS/RECENT) since the last [`ImapSource::drain`].
    news: bool,
}

impl fmt::Debug for ImapSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapSource")
            .field("mailbox", &self.mailbox)
            .field("folder", &self.folder)
            .field("move", &self.has_move)
            .field("idle", &self.has_idle)
            .finish()
    }
}

/// The folder as SELECT reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selected {
    /// UIDVALIDITY.
    pub uidvalidity: u32,
    /// Messages in the folder.
    pub exists: u32,
}

/// One fetched message.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its UID.
    pub uid: u32,
    /// RFC822.SIZE.
    pub size: Option<u32>,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: Option<i64>,
    /// The raw bytes (`BODY.PEEK[]<0.N>`: at most N of them).
    pub body: Vec<u8>,
}

/// Read the server greeting; a BYE or garbage is an error.
async fn greeting(client: &mut async_imap::Client<Transport>) -> Result<(), ImapError> {
    match client.read_response().await {
        Ok(Some(resp)) => match resp.parsed() {
            Response::Data {
                status: Status::Bye,
                outcome,
                ..
            } => Err(ImapError::Bye {
                what: "greeting".into(),
                text: outcome.information.as_deref().unwrap_or("").to_string(),
            }),
            _ => Ok(()),
        },
        Ok(None) => Err(ImapError::Closed {
            what: "greeting".into(),
        }),
        Err(e) => Err(ImapError::io("greeting", e)),
    }
}

/// Keep async-imap's protocol trace out of the logs.
///
/// async-imap logs every command and response at `log` trace level, LOGIN
/// with its password and FETCH with whole messages; tracing-subscriber
/// forwards `log` records, so `RUST_LOG=trace` would print them. Capping the
/// `log` facade at debug drops those records before they are formatted.
pub fn silence_protocol_trace() {
    if log::max_level() > log::LevelFilter::Debug {
        log::set_max_level(log::LevelFilter::Debug);
    }
}

/// Send `command` and read its responses until its tagged completion,
/// giving each untagged response other than BYE to `each`. Anything but a
/// tagged OK is an error of the command named `what`.
async fn run_command(
    session: &mut Session,
    news: &mut bool,
    command: &str,
    what: &str,
    mut each: impl FnMut(&Response<'_>),
) -> Result<(), ImapError> {
    let tag = session
        .run_command(command)
        .await
        .map_err(|e| ImapError::lib(what, e))?;
    loop {
        let Some(resp) = session
            .read_response()
            .await
            .map_err(|e| ImapError::io(what, e))?
        else {
            return Err(ImapError::Closed { what: what.into() });
        };
        match resp.parsed() {
            Response::Done {
                tag: done,
                status,
                outcome,
            } if *done == tag => {
                let text = || {
                    outcome
                        .information
                        .as_deref()
                        .unwrap_or("")
                        .trim()
                        .to_string()
                };
                return match status {
                    Status::Ok => Ok(()),
                    Status::No => Err(ImapError::Refused {
                        what: what.into(),
                        status: "NO",
                        text: text(),
                    }),
                    Status::Bad => Err(ImapError::Refused {
                        what: what.into(),
                        status: "BAD",
                        text: text(),
                    }),
                    _ => Err(ImapError::Protocol {
                        what: what.into(),
                        excerpt: format!("tagged {status:?} {}", shorten(&text(), 60)),
                    }),
                };
            }
            Response::Data {
                status: Status::Bye,
                outcome,
            } => {
                return Err(ImapError::Bye {
                    what: what.into(),
                    text: outcome
                        .information
                        .as_deref()
                        .unwrap_or("connection closed")
                        .trim()
                        .to_string(),
                })
            }
            Response::MailboxData(MailboxDatum::Exists(_) | MailboxDatum::Recent(_)) => {
                *news = true;
                each(resp.parsed());
            }
            other => each(other),
        }
    }
}

/// INTERNALDATE as Unix seconds (`17-Jul-1996 02:44:25 -0700`).
fn internal_date(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_str(text.trim(), "%d-%b-%Y %H:%M:%S %z")
        .ok()
        .map(|d| d.timestamp())
}

impl ImapSource {
    /// Connect, secure, log in and read the capabilities.
    pub async fn connect(cfg: &MailboxConfig, timeouts: Timeouts) -> Result<Self, ImapError> {
        silence_protocol_trace();
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let host = cfg.host.trim_start_matches('[').trim_end_matches(']');
        let cap = literal_cap(cfg.max_message_size);
        let client = timed(
            timeouts.connect,
            || format!("connect to {addr}"),
            Self::open(cfg, host, &addr, cap),
        )
        .await?;
        tracing::debug!(mailbox = %cfg.name, %addr, tls = ?cfg.tls, "connected");
        let login = timed(timeouts.login, || "login".to_string(), async {
            client
                .login(&cfg.username, cfg.password.expose())
                .await
                .map_err(|(e, _client)| match e {
                    async_imap::error::Error::No(detail)
                    | async_imap::error::Error::Bad(detail) => ImapError::Login {
                        user: cfg.username.clone(),
                        detail: detail.trim().to_string(),
                    },
                    // A dropped connection or garbage is the server's bad
                    // day, not a wrong password.
                    other => ImapError::lib("LOGIN", other),
                })
        })
        .await?;
        let mut session = login;
        let caps = timed(timeouts.login, || "CAPABILITY".to_string(), async {
            session
                .capabilities()
                .await
                .map_err(|e| ImapError::lib("CAPABILITY", e))
        })
        .await?;
        let me = ImapSource {
            has_move: caps.has_str("MOVE"),
            has_uidplus: caps.has_str("UIDPLUS"),
            has_idle: caps.has_str("IDLE"),
            session,
            mailbox: cfg.name.clone(),
            timeouts,
            folder: None,
            news: false,
        };
        tracing::info!(mailbox = %cfg.name, %addr, user = %cfg.username, "logged in");
        Ok(me)
    }

    async fn open(
        cfg: &MailboxConfig,
        host: &str,
        addr: &str,
        cap: u64,
    ) -> Result<async_imap::Client<Transport>, ImapError> {
        let tcp = TcpStream::connect((host, cfg.port))
            .await
            .map_err(|source| ImapError::Connect {
                addr: addr.to_string(),
                source,
            })?;
        // Small commands and their answers: no Nagle delay.
        let _ = tcp.set_nodelay(true);
        match cfg.tls {
            TlsMode::None => {
                let mut client = async_imap::Client::new(Transport::plain(tcp, cap));
                greeting(&mut client).await?;
                Ok(client)
            }
            TlsMode::Implicit => {
                let tls = Self::handshake(cfg, host, tcp).await?;
                let mut client = async_imap::Client::new(Transport::tls(tls, cap));
                greeting(&mut client).await?;
                Ok(client)
            }
            TlsMode::Starttls => {
                let mut client = async_imap::Client::new(Transport::plain(tcp, cap));
                greeting(&mut client).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| {
                        ImapError::Unsupported(format!(
                            "STARTTLS refused by {addr}: {}",
                            ImapError::lib("STARTTLS", e)
                        ))
                    })?;
                // The server sends nothing after its OK until the handshake,
                // so no buffered bytes are lost by unwrapping the client.
                let Link::Plain(tcp) = client.into_inner().link else {
                    return Err(ImapError::Unsupported("STARTTLS on a TLS stream".into()));
                };
                let tls = Self::handshake(cfg, host, tcp).await?;
                // No second greeting after STARTTLS.
                Ok(async_imap::Client::new(Transport::tls(tls, cap)))
            }
        }
    }

    async fn handshake(
        cfg: &MailboxConfig,
        host: &str,
        tcp: TcpStream,
    ) -> Result<TlsStream<TcpStream>, ImapError> {
        let config = tls_config(cfg.ca_file.as_deref())?;
        let name = ServerName::try_from(host.to_string()).map_err(|e| ImapError::Tls {
            host: host.to_string(),
            detail: format!("not a valid TLS server name: {e}"),
        })?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| tls_error(host, e))
    }

    /// Whether the server offers IDLE.
    pub fn has_idle(&self) -> bool {
        self.has_idle
    }

    /// Whether the server offers MOVE.
    pub fn has_move(&self) -> bool {
        self.has_move
    }

    /// The timeouts this source runs under.
    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// A command's name for errors: the command and the selected folder.
    fn what(&self, command: &str) -> String {
        match &self.folder {
            Some(folder) => format!("{command} in {folder}"),
            None => command.to_string(),
        }
    }

    /// Run one command under `limit`; see [`run_command`].
    async fn command(
        &mut self,
        limit: Duration,
        command: &str,
        what: &str,
        each: impl FnMut(&Response<'_>),
    ) -> Result<(), ImapError> {
        let session = &mut self.session;
        let news = &mut self.news;
        timed(
            limit,
            || what.to_string(),
            run_command(session, news, command, what, each),
        )
        .await
    }

    /// SELECT a folder and read its UIDVALIDITY.
    pub async fn select(&mut self, folder: &str) -> Result<Selected, ImapError> {
        let what = format!("SELECT {folder}");
        let command = format!("SELECT {}", quote(folder));
        let (mut uidvalidity, mut exists) = (None, 0);
        self.folder = None;
        self.command(self.timeouts.select, &command, &what, |r| match r {
            Response::MailboxData(MailboxDatum::Exists(n)) => exists = *n,
            Response::Data { outcome, .. } => {
                if let Some(ResponseCode::UidValidity(v)) = outcome.code {
                    uidvalidity = Some(v);
                }
            }
            _ => {}
        })
        .await?;
        // The EXISTS of a SELECT is the folder's state, not news.
        self.news = false;
        let uidvalidity = uidvalidity
            .ok_or_else(|| ImapError::Unsupported(format!("folder {folder} has no UIDVALIDITY")))?;
        self.folder = Some(folder.to_string());
        Ok(Selected {
            uidvalidity,
            exists,
        })
    }

    /// Every UID in the selected folder, ascending.
    pub async fn uids(&mut self) -> Result<Vec<u32>, ImapError> {
        let what = self.what("UID SEARCH ALL");
        let mut uids = Vec::new();
        self.command(self.timeouts.command, "UID SEARCH ALL", &what, |r| {
            if let Response::MailboxData(MailboxDatum::Search(found)) = r {
                uids.extend_from_slice(found);
            }
        })
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// The RFC822.SIZE of these messages, by UID (cheap: no bodies). A
    /// message absent from the answer (expunged meanwhile) is absent here.
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(1000) {
            let command = format!("UID FETCH {} (UID RFC822.SIZE)", uid_set(chunk));
            let what = self.what("UID FETCH (RFC822.SIZE)");
            self.command(self.timeouts.command, &command, &what, |r| {
                let Response::Fetch(_, attrs) = r else { return };
                let (mut uid, mut size) = (None, None);
                for a in attrs {
                    match a {
                        AttributeValue::Uid(u) => uid = Some(*u),
                        AttributeValue::Rfc822Size(s) => size = Some(*s),
                        _ => {}
                    }
                }
                if let (Some(uid), Some(size)) = (uid, size) {
                    if chunk.binary_search(&uid).is_ok() {
                        out.push((uid, size));
                    }
                }
            })
            .await?;
        }
        out.sort_unstable();
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// Fetch these messages (at most `cap` bytes of each, size, arrival
    /// time) without setting `\Seen`, as one `UID FETCH` of
    /// `BODY.PEEK[]<0.cap>`: the bytes are bounded whatever the server
    /// claims, and a literal over [`literal_cap`] is refused unread.
    /// `bytes` is what the batch may bring, for its timeout. Messages that
    /// vanished meanwhile are simply absent. `uids` must be sorted.
    pub async fn fetch(
        &mut self,
        uids: &[u32],
        cap: u32,
        bytes: u64,
    ) -> Result<Vec<Fetched>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let command = format!(
            "UID FETCH {} (UID RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.{cap}>)",
            uid_set(uids)
        );
        let what = self.what(&format!("UID FETCH ({} messages)", uids.len()));
        let limit = self.timeouts.fetch_for(bytes);
        let mut out: Vec<Fetched> = Vec::with_capacity(uids.len());
        // One response at a time: each raw buffer is dropped as soon as its
        // bytes are copied out.
        self.command(limit, &command, &what, |r| {
            let Response::Fetch(_, attrs) = r else { return };
            let mut f = Fetched {
                uid: 0,
                size: None,
                internal_date: None,
                body: Vec::new(),
            };
            let mut has_body = false;
            for a in attrs {
                match a {
                    AttributeValue::Uid(u) => f.uid = *u,
                    AttributeValue::Rfc822Size(s) => f.size = Some(*s),
                    AttributeValue::InternalDate(d) => f.internal_date = internal_date(d),
                    AttributeValue::BodySection {
                        section: None,
                        data,
                        ..
                    } => {
                        has_body = true;
                        f.body = data.as_deref().unwrap_or_default().to_vec();
                    }
                    AttributeValue::Rfc822(data) => {
                        has_body = true;
                        f.body = data.as_deref().unwrap_or_default().to_vec();
                    }
                    _ => {}
                }
            }
            // Unsolicited FETCH responses (flag changes) carry no body.
            if has_body && uids.binary_search(&f.uid).is_ok() {
                out.push(f);
            }
        })
        .await?;
        out.sort_by_key(|f| f.uid);
        out.dedup_by_key(|f| f.uid);
        Ok(out)
    }

    /// Apply an after-action to these UIDs in the selected folder.
    ///
    /// Idempotent: UIDs that are already gone (moved or deleted by an
    /// earlier, interrupted attempt) are ignored by the server.
    pub async fn apply(&mut self, action: &After, uids: &[u32]) -> Result<(), ImapError> {
        if uids.is_empty() {
            return Ok(());
        }
        // Keep command lines short on sparse sets.
        for chunk in uids.chunks(500) {
            let set = uid_set(chunk);
            match action {
                After::None => {}
                After::Seen => self.store_flags(&set, "+FLAGS.SILENT (\\Seen)").await?,
                After::Delete => {
                    self.store_flags(&set, "+FLAGS.SILENT (\\Deleted)").await?;
                    self.expunge(&set).await?;
                }
                After::Move(folder) => self.move_to(&set, folder).await?,
            }
        }
        Ok(())
    }

    /// An after-action command: its untagged answers are not needed.
    async fn after_command(&mut self, command: &str, what: &str) -> Result<(), ImapError> {
        let what = self.what(what);
        self.command(self.timeouts.after, command, &what, |_| {})
            .await
    }

    async fn store_flags(&mut self, set: &str, flags: &str) -> Result<(), ImapError> {
        self.after_command(
            &format!("UID STORE {set} {flags}"),
            &format!("UID STORE {flags}"),
        )
        .await
    }

    async fn expunge(&mut self, set: &str) -> Result<(), ImapError> {
        if self.has_uidplus {
            self.after_command(&format!("UID EXPUNGE {set}"), "UID EXPUNGE")
                .await
        } else {
            // Without UIDPLUS only a plain EXPUNGE exists; it also removes
            // messages someone else marked \Deleted, which in a bounce
            // mailbox is what they asked for anyway.
            self.after_command("EXPUNGE", "EXPUNGE").await
        }
    }

    async fn move_to(&mut self, set: &str, folder: &str) -> Result<(), ImapError> {
        match self.move_once(set, folder).await {
            // [TRYCREATE]: the folder does not exist yet; create it once.
            Err(ImapError::Refused {
                status: "NO", text, ..
            }) if text.contains("TRYCREATE") || text.to_lowercase().contains("exist") => {
                tracing::info!(mailbox = %self.mailbox, folder, "creating folder for moved messages");
                self.after_command(
                    &format!("CREATE {}", quote(folder)),
                    &format!("CREATE {folder}"),
                )
                .await?;
                self.move_once(set, folder).await
            }
            other => other,
        }
    }

    async fn move_once(&mut self, set: &str, folder: &str) -> Result<(), ImapError> {
        if self.has_move {
            return self
                .after_command(
                    &format!("UID MOVE {set} {}", quote(folder)),
                    &format!("UID MOVE to {folder}"),
                )
                .await;
        }
        // No MOVE: COPY, then delete the originals. A crash between the two
        // leaves a copy in both folders, never none.
        self.after_command(
            &format!("UID COPY {set} {}", quote(folder)),
            &format!("UID COPY to {folder}"),
        )
        .await?;
        self.store_flags(set, "+FLAGS.SILENT (\\Deleted)").await?;
        self.expunge(set).await
    }

    /// Send NOOP (keeps the connection alive, collects news such as EXISTS).
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let what = self.what("NOOP");
        self.command(self.timeouts.command, "NOOP", &what, |_| {})
            .await
    }

    /// Whether new messages were announced (EXISTS, RECENT) since the last
    /// call; also empties async-imap's channel of unsolicited responses (it
    /// holds 100 entries and drops the rest, so stale news must not pile up).
    pub fn drain(&mut self) -> bool {
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            if matches!(
                r,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            ) {
                self.news = true;
            }
        }
        std::mem::take(&mut self.news)
    }

    /// Wait on IDLE until the server announces news, `limit` passes, or
    /// `stop` fires. Returns the source (IDLE takes the session by value)
    /// and whether the wait ended because of news.
    pub async fn idle(
        mut self,
        limit: Duration,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<(ImapSource, bool), ImapError> {
        use async_imap::extensions::idle::IdleResponse;
        let pending = self.drain();
        if pending {
            // News arrived during the last command: no need to wait.
            return Ok((self, true));
        }
        let what = self.what("IDLE");
        let mut handle = self.session.idle();
        timed(self.timeouts.command, || what.clone(), async {
            handle.init().await.map_err(|e| ImapError::lib(&what, e))
        })
        .await?;
        let outcome = {
            let (wait, interrupt) = handle.wait_with_timeout(limit.min(self.timeouts.idle));
            let stopped = crate::shutdown::stopped(stop);
            tokio::pin!(wait);
            tokio::pin!(stopped);
            let outcome = tokio::select! {
                r = &mut wait => Some(r),
                _ = &mut stopped => None,
            };
            // Keep the interrupt handle until here: dropping it ends the wait.
            drop(interrupt);
            outcome
        };
        let news = match outcome {
            Some(Ok(IdleResponse::NewData(_))) => true,
            Some(Ok(IdleResponse::Timeout | IdleResponse::ManualInterrupt)) | None => false,
            Some(Err(e)) => return Err(ImapError::lib(&what, e)),
        };
        let done = format!("{what} DONE");
        let session = timed(self.timeouts.command, || done.clone(), async {
            handle.done().await.map_err(|e| ImapError::lib(&done, e))
        })
        .await?;
        self.session = session;
        self.drain();
        Ok((self, news))
    }

    /// Log out politely; errors are irrelevant at this point.
    pub async fn logout(mut self) {
        let limit = Duration::from_secs(5);
        let _ = tokio::time::timeout(limit, self.session.logout()).await;
    }
}

/// A folder name as an IMAP quoted string.
fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Parse an after-action as stored in `messages.after_action`.
pub fn parse_after(s: &str) -> Option<After> {
    match s {
        "seen" => Some(After::Seen),
        "delete" => Some(After::Delete),
        "none" => Some(After::None),
        _ => s
            .strip_prefix("move:")
            .filter(|f| !f.is_empty())
            .map(|f| After::Move(f.to_string())),
    }
}

/// Format UIDs as a compact IMAP sequence set: `1:3,7,9:10`.
pub fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end.wrapping_add(1) {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_are_compact() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[3, 1, 2, 2]), "1:3");
        assert_eq!(uid_set(&[]), "");
    }

    #[test]
    fn the_literal_scan_refuses_only_announcements_over_the_cap() {
        let mut scan = LiteralScan::new(100);
        // A literal within the cap, whose bytes hold a huge-looking "{N}":
        // skipped as data, not read as an announcement.
        let ok = b"* 1 FETCH (UID 1 BODY[]<0> {20}\r\nxx{99999999}\r\nxxxxxxxx)\r\n";
        assert!(scan.feed(ok).is_ok());
        assert_eq!(scan.state, Scan::Text);
        // Split across reads.
        assert!(scan.feed(b"* 2 FETCH (BODY[] {10").is_ok());
        let big = scan.feed(b"1}\r\n").unwrap_err();
        assert_eq!((big.size, big.cap), (101, 100));
        // Not literals: braces in text, a quoted "{5}".
        let mut scan = LiteralScan::new(1);
        assert!(scan.feed(b"* OK {garbage} \"{5}\" {}\r\n").is_ok());
        assert!(LiteralScan::new(1).feed(b"{3000000000}\r\n").is_err());
    }

    #[test]
    fn parser_errors_become_short_readable_text() {
        let e = io::Error::other(
            "Error(Error { input: [42, 32, 0, 255], code: Tag }) during parsing of \"* 42 \\0\\u{fffd} garbage and a great deal more text that goes on and on past any useful length\"",
        );
        let text = ImapError::io("SELECT INBOX", e).to_string();
        assert!(
            text.starts_with("SELECT INBOX: unreadable response from the server: \"* 42"),
            "{text}"
        );
        assert!(!text.contains("[42, 32"), "{text}");
        assert!(text.ends_with('…'), "{text}");
        assert_eq!(escape(b"a\r\n\0\xff"), "a\\r\\n\\x00\\xff");
    }

    #[test]
    fn after_actions_round_trip() {
        for a in [
            After::Seen,
            After::Delete,
            After::None,
            After::Move("X/Y".into()),
        ] {
            assert_eq!(parse_after(&a.to_string()), Some(a));
        }
        assert_eq!(parse_after("move:"), None);
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ca.pem");
        std::fs::write(&f, "not a pem").unwrap();
        let e = tls_config(Some(&f)).unwrap_err().to_string();
        assert!(
            e.contains("ca.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = tls_config(Some(&dir.path().join("missing.pem")))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.pem"), "{e}");
        assert!(tls_config(None).is_ok());
    }
}
