//! The IMAP source: connect (implicit TLS, STARTTLS or plain to loopback),
//! log in, select the folder, list and fetch messages, apply after-actions.
//!
//! Every network step runs under a timeout so that a silent server can never
//! hang a pass, and every error says what was being done ("connect to …",
//! "login failed: …", "TLS: certificate not trusted …"). The password is sent
//! once, in LOGIN, and never appears in a log line or an error.

use crate::config::{After, MailboxConfig, TlsMode};
use async_imap::types::UnsolicitedResponse;
use futures::TryStreamExt;
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

/// How long each kind of network step may take.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect plus TLS handshake plus greeting.
    pub connect: Duration,
    /// LOGIN.
    pub login: Duration,
    /// Any other command, including one FETCH batch.
    pub command: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            login: Duration::from_secs(30),
            command: Duration::from_secs(120),
        }
    }
}

/// An IMAP error, in words an operator can act on.
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
    /// The server refused the connection at once (BYE greeting: too many
    /// connections, shutting down, ...).
    #[error("server refused the connection: {0}")]
    Bye(String),
    /// A command failed.
    #[error("{what}: {source}")]
    Command {
        /// The command, in words.
        what: String,
        /// The protocol error.
        source: async_imap::error::Error,
    },
}

impl ImapError {
    /// Whether the server itself refused or failed (NO, BAD, BYE), as
    /// opposed to the network or a timeout: only such failures are held
    /// against a message.
    pub fn is_server_refusal(&self) -> bool {
        matches!(
            self,
            ImapError::Bye(_)
                | ImapError::Command {
                    source: async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_),
                    ..
                }
        )
    }

    /// Whether retrying later could help without anyone changing anything
    /// (network trouble, timeouts), as opposed to a wrong password or an
    /// untrusted certificate, which need an operator.
    pub fn is_transient(&self) -> bool {
        match self {
            ImapError::Connect { .. }
            | ImapError::Timeout { .. }
            | ImapError::Command { .. }
            | ImapError::Bye(_) => true,
            // "[UNAVAILABLE] Temporary authentication failure": the server's
            // authentication backend is down, the password may be fine.
            ImapError::Login { detail, .. } => detail.contains("UNAVAILABLE"),
            _ => false,
        }
    }
}

fn cmd_err(what: impl Into<String>) -> impl FnOnce(async_imap::error::Error) -> ImapError {
    let what = what.into();
    move |source| ImapError::Command { what, source }
}

async fn timed<T, E>(
    limit: Duration,
    what: impl FnOnce() -> String,
    fut: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, ImapError>
where
    ImapError: From<E>,
{
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(ImapError::from),
        Err(_) => Err(ImapError::Timeout {
            what: what(),
            after: limit,
        }),
    }
}

impl From<std::convert::Infallible> for ImapError {
    fn from(e: std::convert::Infallible) -> Self {
        match e {}
    }
}

/// The byte stream under the IMAP session: plain TCP or TLS over TCP.
pub enum Transport {
    /// Plaintext (loopback, or `allow_insecure`).
    Plain(TcpStream),
    /// TLS (implicit or after STARTTLS).
    Tls(Box<TlsStream<TcpStream>>),
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Transport::Plain(_) => f.write_str("Transport::Plain"),
            Transport::Tls(_) => f.write_str("Transport::Tls"),
        }
    }
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_flush(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Transport::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
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
pub struct ImapSource {
    session: Session,
    mailbox: String,
    timeouts: Timeouts,
    has_move: bool,
    has_uidplus: bool,
    has_idle: bool,
    folder: Option<String>,
    bye: Option<String>,
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
    /// The raw bytes (`BODY.PEEK[]`).
    pub body: Vec<u8>,
}

/// Read the server greeting; a BYE or garbage is an error.
async fn greeting(client: &mut async_imap::Client<Transport>) -> Result<(), ImapError> {
    match client.read_response().await {
        Ok(Some(resp)) => match resp.parsed() {
            async_imap::imap_proto::Response::Data {
                status: async_imap::imap_proto::Status::Bye,
                outcome,
                ..
            } => Err(ImapError::Bye(
                outcome.information.as_deref().unwrap_or("").to_string(),
            )),
            _ => Ok(()),
        },
        Ok(None) => Err(ImapError::Command {
            what: "greeting".into(),
            source: async_imap::error::Error::ConnectionLost,
        }),
        Err(e) => Err(ImapError::Command {
            what: "greeting".into(),
            source: e.into(),
        }),
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

impl ImapSource {
    /// Connect, secure, log in and read the capabilities.
    pub async fn connect(cfg: &MailboxConfig, timeouts: Timeouts) -> Result<Self, ImapError> {
        silence_protocol_trace();
        let addr = format!("{}:{}", cfg.host, cfg.port);
        let host = cfg.host.trim_start_matches('[').trim_end_matches(']');
        let client = timed(
            timeouts.connect,
            || format!("connect to {addr}"),
            Self::open(cfg, host, &addr),
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
                    other => ImapError::Login {
                        user: cfg.username.clone(),
                        detail: other.to_string(),
                    },
                })
        })
        .await?;
        let mut session = login;
        let caps = timed(timeouts.command, || "CAPABILITY".to_string(), async {
            session.capabilities().await.map_err(cmd_err("CAPABILITY"))
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
            bye: None,
        };
        tracing::info!(mailbox = %cfg.name, %addr, user = %cfg.username, "logged in");
        Ok(me)
    }

    async fn open(
        cfg: &MailboxConfig,
        host: &str,
        addr: &str,
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
                let mut client = async_imap::Client::new(Transport::Plain(tcp));
                greeting(&mut client).await?;
                Ok(client)
            }
            TlsMode::Implicit => {
                let tls = Self::handshake(cfg, host, tcp).await?;
                let mut client = async_imap::Client::new(Transport::Tls(Box::new(tls)));
                greeting(&mut client).await?;
                Ok(client)
            }
            TlsMode::Starttls => {
                let mut client = async_imap::Client::new(Transport::Plain(tcp));
                greeting(&mut client).await?;
                client
                    .run_command_and_check_ok("STARTTLS", None)
                    .await
                    .map_err(|e| {
                        ImapError::Unsupported(format!("STARTTLS refused by {addr}: {e}"))
                    })?;
                // The server sends nothing after its OK until the handshake,
                // so no buffered bytes are lost by unwrapping the client.
                let Transport::Plain(tcp) = client.into_inner() else {
                    return Err(ImapError::Unsupported("STARTTLS on a TLS stream".into()));
                };
                let tls = Self::handshake(cfg, host, tcp).await?;
                // No second greeting after STARTTLS.
                Ok(async_imap::Client::new(Transport::Tls(Box::new(tls))))
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

    /// SELECT a folder and read its UIDVALIDITY.
    pub async fn select(&mut self, folder: &str) -> Result<Selected, ImapError> {
        let limit = self.timeouts.command;
        let session = &mut self.session;
        let mbox = timed(limit, || format!("SELECT {folder}"), async {
            session
                .select(folder)
                .await
                .map_err(cmd_err(format!("SELECT {folder}")))
        })
        .await?;
        let uidvalidity = mbox
            .uid_validity
            .ok_or_else(|| ImapError::Unsupported(format!("folder {folder} has no UIDVALIDITY")))?;
        self.folder = Some(folder.to_string());
        self.drain();
        Ok(Selected {
            uidvalidity,
            exists: mbox.exists,
        })
    }

    /// Every UID in the selected folder, ascending.
    pub async fn uids(&mut self) -> Result<Vec<u32>, ImapError> {
        let limit = self.timeouts.command;
        let session = &mut self.session;
        let set = timed(limit, || "UID SEARCH ALL".to_string(), async {
            session
                .uid_search("ALL")
                .await
                .map_err(cmd_err("UID SEARCH ALL"))
        })
        .await?;
        self.drain();
        let mut uids: Vec<u32> = set.into_iter().collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// The RFC822.SIZE of these messages, by UID (cheap: no bodies).
    pub async fn sizes(&mut self, uids: &[u32]) -> Result<Vec<(u32, u32)>, ImapError> {
        let mut out = Vec::with_capacity(uids.len());
        for chunk in uids.chunks(1000) {
            let set = uid_set(chunk);
            let limit = self.timeouts.command;
            let session = &mut self.session;
            timed(limit, || "UID FETCH (RFC822.SIZE)".to_string(), async {
                let mut stream = session
                    .uid_fetch(&set, "(UID RFC822.SIZE)")
                    .await
                    .map_err(cmd_err("UID FETCH RFC822.SIZE"))?;
                while let Some(f) = stream
                    .try_next()
                    .await
                    .map_err(cmd_err("UID FETCH RFC822.SIZE"))?
                {
                    if let (Some(uid), Some(size)) = (f.uid, f.size) {
                        if chunk.binary_search(&uid).is_ok() {
                            out.push((uid, size));
                        }
                    }
                }
                Ok::<_, ImapError>(())
            })
            .await?;
            self.drain();
            // A BYE in the middle ends the response early and quietly: the
            // missing sizes are not "no such message", the server failed.
            if let Some(text) = self.take_bye() {
                return Err(ImapError::Bye(text));
            }
        }
        out.sort_unstable();
        out.dedup_by_key(|(uid, _)| *uid);
        Ok(out)
    }

    /// Fetch these messages (raw bytes, size, arrival time) without setting
    /// `\Seen`. With `prefix`, only the first `prefix` bytes of each (for
    /// messages too large to hold whole). Messages that vanished meanwhile
    /// are simply absent. `uids` must be sorted.
    pub async fn fetch(
        &mut self,
        uids: &[u32],
        prefix: Option<u32>,
    ) -> Result<Vec<Fetched>, ImapError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let query = match prefix {
            Some(n) => format!("(UID RFC822.SIZE INTERNALDATE BODY.PEEK[]<0.{n}>)"),
            None => "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])".to_string(),
        };
        let limit = self.timeouts.command;
        let session = &mut self.session;
        let mut out: Vec<Fetched> = Vec::with_capacity(uids.len());
        timed(
            limit,
            || format!("UID FETCH ({} messages)", uids.len()),
            async {
                let mut stream = session
                    .uid_fetch(&set, &query)
                    .await
                    .map_err(cmd_err("UID FETCH"))?;
                // One response at a time: each raw buffer is dropped as soon
                // as its bytes are copied out.
                while let Some(f) = stream.try_next().await.map_err(cmd_err("UID FETCH"))? {
                    // Unsolicited FETCH responses (flag changes) carry no body.
                    let (Some(uid), Some(body)) = (f.uid, f.body()) else {
                        continue;
                    };
                    if uids.binary_search(&uid).is_err() {
                        continue;
                    }
                    out.push(Fetched {
                        uid,
                        size: f.size,
                        internal_date: f.internal_date().map(|d| d.timestamp()),
                        body: body.to_vec(),
                    });
                }
                Ok::<_, ImapError>(())
            },
        )
        .await?;
        self.drain();
        if let Some(text) = self.take_bye() {
            return Err(ImapError::Bye(text));
        }
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
        self.drain();
        Ok(())
    }

    async fn store_flags(&mut self, set: &str, flags: &str) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        let session = &mut self.session;
        timed(limit, || format!("UID STORE {flags}"), async {
            let stream = session
                .uid_store(set, flags)
                .await
                .map_err(cmd_err("UID STORE"))?;
            let _: Vec<_> = stream.try_collect().await.map_err(cmd_err("UID STORE"))?;
            Ok::<_, ImapError>(())
        })
        .await
    }

    async fn expunge(&mut self, set: &str) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        let uidplus = self.has_uidplus;
        let session = &mut self.session;
        timed(limit, || "EXPUNGE".to_string(), async {
            if uidplus {
                let stream = session
                    .uid_expunge(set)
                    .await
                    .map_err(cmd_err("UID EXPUNGE"))?;
                let _: Vec<_> = stream.try_collect().await.map_err(cmd_err("UID EXPUNGE"))?;
            } else {
                // Without UIDPLUS only a plain EXPUNGE exists; it also removes
                // messages someone else marked \Deleted, which in a bounce
                // mailbox is what they asked for anyway.
                let stream = session.expunge().await.map_err(cmd_err("EXPUNGE"))?;
                let _: Vec<_> = stream.try_collect().await.map_err(cmd_err("EXPUNGE"))?;
            }
            Ok::<_, ImapError>(())
        })
        .await
    }

    async fn move_to(&mut self, set: &str, folder: &str) -> Result<(), ImapError> {
        match self.move_once(set, folder).await {
            // [TRYCREATE]: the folder does not exist yet; create it once.
            Err(ImapError::Command {
                source: async_imap::error::Error::No(text),
                ..
            }) if text.contains("TRYCREATE") || text.to_lowercase().contains("exist") => {
                tracing::info!(mailbox = %self.mailbox, folder, "creating folder for moved messages");
                let limit = self.timeouts.command;
                let session = &mut self.session;
                timed(limit, || format!("CREATE {folder}"), async {
                    session
                        .create(folder)
                        .await
                        .map_err(cmd_err(format!("CREATE {folder}")))
                })
                .await?;
                self.move_once(set, folder).await
            }
            other => other,
        }
    }

    async fn move_once(&mut self, set: &str, folder: &str) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        if self.has_move {
            let session = &mut self.session;
            return timed(limit, || format!("UID MOVE to {folder}"), async {
                session
                    .uid_mv(set, folder)
                    .await
                    .map_err(cmd_err(format!("UID MOVE to {folder}")))
            })
            .await;
        }
        // No MOVE: COPY, then delete the originals. A crash between the two
        // leaves a copy in both folders, never none.
        let session = &mut self.session;
        timed(limit, || format!("UID COPY to {folder}"), async {
            session
                .uid_copy(set, folder)
                .await
                .map_err(cmd_err(format!("UID COPY to {folder}")))
        })
        .await?;
        self.store_flags(set, "+FLAGS.SILENT (\\Deleted)").await?;
        self.expunge(set).await
    }

    /// Send NOOP (keeps the connection alive, collects news such as EXISTS).
    pub async fn noop(&mut self) -> Result<(), ImapError> {
        let limit = self.timeouts.command;
        let session = &mut self.session;
        timed(limit, || "NOOP".to_string(), async {
            session.noop().await.map_err(cmd_err("NOOP"))
        })
        .await
    }

    /// Empty the channel of unsolicited responses (EXISTS, EXPUNGE, flag
    /// changes); it holds 100 entries and drops the rest, so stale news
    /// must not pile up. Returns whether new messages were announced; a BYE
    /// (the server closing the connection) is kept, so that a size or
    /// message fetch it cut short fails with [`ImapError::Bye`] instead of
    /// returning a partial answer.
    pub fn drain(&mut self) -> bool {
        let mut news = false;
        while let Ok(r) = self.session.unsolicited_responses.try_recv() {
            match r {
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_) => news = true,
                UnsolicitedResponse::Other(resp) => {
                    if let async_imap::imap_proto::Response::Data {
                        status: async_imap::imap_proto::Status::Bye,
                        outcome,
                        ..
                    } = resp.parsed()
                    {
                        self.bye = Some(
                            outcome
                                .information
                                .as_deref()
                                .unwrap_or("connection closed")
                                .to_string(),
                        );
                    }
                }
                _ => {}
            }
        }
        news
    }

    /// The server's BYE text, if it said goodbye since the last call.
    fn take_bye(&mut self) -> Option<String> {
        self.bye.take()
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
        self.drain();
        let mut handle = self.session.idle();
        timed(self.timeouts.command, || "IDLE".to_string(), async {
            handle.init().await.map_err(cmd_err("IDLE"))
        })
        .await?;
        let outcome = {
            let (wait, interrupt) = handle.wait_with_timeout(limit);
            let stopped = crate::daemon::stopped(stop);
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
            Some(Err(e)) => {
                return Err(ImapError::Command {
                    what: "IDLE".into(),
                    source: e,
                })
            }
        };
        let session = timed(self.timeouts.command, || "IDLE DONE".to_string(), async {
            handle.done().await.map_err(cmd_err("IDLE DONE"))
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
