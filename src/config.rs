//! The TOML configuration: what to watch, where to store, how to decide.
//!
//! Loading happens in two steps. The file is first read into "raw" structs
//! that mirror the TOML exactly (unknown keys are rejected), then validated
//! into [`Config`], where defaults are applied, durations parsed and secrets
//! resolved. Every error names the file and the key, so an operator never has
//! to guess which line is wrong.

use crate::classify::Reason;
use serde::Deserialize;
use std::collections::HashSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Where the daemon looks for its configuration when `--config` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/bounced/config.toml";

/// The default of `max_message_size`: messages larger than this are read
/// only up to this many bytes. A bounce says what it has to say (headers,
/// the report, the diagnostic) near its start; what makes one huge is the
/// returned original, which classification does not need whole. The stored
/// size stays the real one.
pub const MAX_MESSAGE_BYTES: u32 = 8 * 1024 * 1024;

/// Where the database lives when `[database] url` is not given and systemd
/// did not pass a `STATE_DIRECTORY`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/bounced";

/// A configuration error, naming the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a key is unknown or of the wrong type.
    #[error("config file {path}: key `{key}`: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The dotted key (`mailbox[0].tls`), or `(top level)`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A key has a value that is well-typed but not acceptable.
    #[error("config file {path}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A secret string (a password) that never shows in logs or `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it (IMAP LOGIN).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"********\"")
    }
}

/// How the IMAP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// TLS from the first byte (IMAPS, port 993).
    Implicit,
    /// Plain connection upgraded with STARTTLS (port 143).
    Starttls,
    /// No TLS: only to loopback, or with `allow_insecure = true`.
    None,
}

impl TlsMode {
    /// The usual port for this mode.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::Implicit => 993,
            TlsMode::Starttls | TlsMode::None => 143,
        }
    }
}

/// What to do with a message on the server once its verdict is committed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum After {
    /// Set `\Seen`.
    Seen,
    /// Move it to another folder (UID MOVE, or COPY + delete where MOVE is missing).
    Move(String),
    /// Mark it `\Deleted` and expunge it.
    Delete,
    /// Leave it exactly as it is.
    None,
}

impl After {
    fn parse(s: &str) -> Result<After, String> {
        match s {
            "seen" => Ok(After::Seen),
            "delete" => Ok(After::Delete),
            "none" => Ok(After::None),
            _ => match s.strip_prefix("move:") {
                Some(folder) if !folder.trim().is_empty() => Ok(After::Move(folder.to_string())),
                Some(_) => Err("`move:` needs a folder name, e.g. \"move:Processed\"".into()),
                None => Err(format!(
                    "unknown action {s:?}; expected \"seen\", \"move:FOLDER\", \"delete\" or \"none\""
                )),
            },
        }
    }
}

impl fmt::Display for After {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            After::Seen => f.write_str("seen"),
            After::Move(folder) => write!(f, "move:{folder}"),
            After::Delete => f.write_str("delete"),
            After::None => f.write_str("none"),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages).
    pub source: PathBuf,
    /// Where verdicts are stored.
    pub database: DatabaseConfig,
    /// The mailboxes to watch, in file order.
    pub mailboxes: Vec<MailboxConfig>,
    /// The address verdict rules.
    pub policy: PolicyConfig,
    /// Logging.
    pub log: LogConfig,
    /// Where to serve Prometheus metrics (`[metrics] listen`); `None`: off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Things that are allowed but unwise (a secret file readable by others):
    /// printed by `check-config` and logged at start.
    pub warnings: Vec<String>,
}

/// `[verify]`: signed return paths (see [`crate::verp`]).
#[derive(Debug, Clone)]
pub struct VerifyConfig {
    /// Unverified bounces are stored but never move an address to `remove`.
    pub require: bool,
    /// The base return path that `bounced verp` signs, e.g. `bounces@example.org`.
    pub return_path: Option<String>,
    /// How many days after signing a token is accepted.
    pub max_age_days: i64,
    /// The keys: the first signs, all verify.
    pub keyring: crate::verp::Keyring,
}

/// `[database]`.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// An sqlx URL such as `sqlite:///var/lib/bounced/bounced.db`.
    pub url: String,
    /// How long to wait for another process's write lock before giving up on
    /// one attempt (SQLite busy timeout).
    pub busy_timeout: Duration,
}

/// One `[[mailbox]]`.
#[derive(Debug, Clone)]
pub struct MailboxConfig {
    /// A short name, unique in the file, used in logs and the database.
    pub name: String,
    /// The IMAP server's host name (also the TLS server name).
    pub host: String,
    /// The IMAP port.
    pub port: u16,
    /// Implicit TLS, STARTTLS or none.
    pub tls: TlsMode,
    /// A PEM file of extra trusted CA certificates (private CAs).
    pub ca_file: Option<PathBuf>,
    /// Allow plaintext login to a non-loopback host.
    pub allow_insecure: bool,
    /// The login name.
    pub username: String,
    /// The password, already read from `password`, `password_file`,
    /// `password_env` or `password_credential`.
    pub password: Secret,
    /// The folder to read (default `INBOX`).
    pub folder: String,
    /// How often to poll when IDLE is not used.
    pub poll_interval: Duration,
    /// Use IMAP IDLE when the server offers it.
    pub idle: bool,
    /// What to do with a message once its bounce verdict is stored.
    pub after: After,
    /// What to do with a message that is not a bounce (human reply, spam).
    pub after_other: After,
    /// Messages larger than this many bytes are read only up to it (the
    /// report is near the start; the returned original makes a bounce big).
    pub max_message_size: u32,
}

/// `[policy]`: when a soft-failing address becomes removable.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// How many counted soft bounces within `soft_window` mark an address for removal.
    pub soft_limit: u32,
    /// The sliding window the soft bounces must fall in.
    pub soft_window: Duration,
    /// The first and last of those soft bounces must be at least this many days apart,
    /// so that one burst (a full mailbox on one afternoon) does not remove anyone.
    pub soft_min_days: u32,
    /// The reasons that count toward `soft_limit`. Reasons that speak of the
    /// sender (blocked, spam, policy, …) do not count by default: they say
    /// nothing about whether the address is alive.
    pub soft_reasons: HashSet<Reason>,
    /// Signed-bounce verification (`[verify]`; `None` when absent): which
    /// bounces are proven to be about mail we sent, and whether only those
    /// may remove an address.
    pub verify: Option<Arc<VerifyConfig>>,
    /// Per-reason overrides (`[policy.reason.<reason>]`); a reason absent
    /// here follows the rules above. Default: `feedback` (an ARF complaint)
    /// removes at once.
    pub reasons: std::collections::BTreeMap<Reason, ReasonRule>,
}

/// `[policy.reason.<reason>]`: what bounces with this reason do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReasonRule {
    /// `action`.
    pub action: ReasonAction,
    /// `remove_after = N`: N bounces of this reason within `soft_window`
    /// remove (no day spread needed); they also count toward `soft_limit`.
    pub remove_after: Option<u32>,
}

/// `[policy.reason.<reason>] action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasonAction {
    /// One such bounce (or complaint) removes the address at once.
    Remove,
    /// Counts toward `soft_limit` like a reason in `soft_reasons`.
    Count,
    /// Never counts: stored, shown, but never changes a verdict.
    Ignore,
}

impl ReasonAction {
    /// The config name.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonAction::Remove => "remove",
            ReasonAction::Count => "count",
            ReasonAction::Ignore => "ignore",
        }
    }
}

impl PolicyConfig {
    /// Whether only verified bounces may remove an address (`[verify] require`).
    pub fn require_verified(&self) -> bool {
        self.verify.as_ref().is_some_and(|v| v.require)
    }
}

/// The soft reasons that count toward the threshold when `soft_reasons` is not set:
/// the ones that describe the recipient's mailbox, not the sender or the message.
pub const DEFAULT_SOFT_REASONS: &[Reason] = &[
    Reason::MailboxFull,
    Reason::Suspend,
    Reason::Expired,
    Reason::ExceedLimit,
    Reason::SystemFull,
    Reason::MailerError,
    Reason::SystemError,
    Reason::NetworkError,
    Reason::NotAccept,
    Reason::Filtered,
    Reason::OnHold,
    Reason::Undefined,
];

/// The per-reason rules when `[policy.reason]` does not say otherwise: an
/// ARF complaint (`feedback`) removes at once.
pub fn default_reason_rules() -> std::collections::BTreeMap<Reason, ReasonRule> {
    [(
        Reason::Feedback,
        ReasonRule {
            action: ReasonAction::Remove,
            remove_after: None,
        },
    )]
    .into_iter()
    .collect()
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            soft_limit: 5,
            soft_window: Duration::from_secs(30 * 86_400),
            soft_min_days: 7,
            soft_reasons: DEFAULT_SOFT_REASONS.iter().copied().collect(),
            verify: None,
            reasons: default_reason_rules(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `text` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter such as `info` or `bounced=debug` (`RUST_LOG` wins).
    pub level: String,
}

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

// ---- raw TOML shape -------------------------------------------------------

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    database: RawDatabase,
    #[serde(default)]
    mailbox: Vec<RawMailbox>,
    #[serde(default)]
    policy: RawPolicy,
    #[serde(default)]
    log: RawLog,
    verify: Option<RawVerify>,
    #[serde(default)]
    metrics: RawMetrics,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    #[serde(default)]
    require: bool,
    return_path: Option<String>,
    max_age: Option<String>,
    #[serde(default)]
    key: Vec<RawKey>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    secret_file: Option<PathBuf>,
    secret_credential: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<String>,
    busy_timeout: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMailbox {
    name: String,
    host: String,
    port: Option<u16>,
    tls: Option<TlsMode>,
    ca_file: Option<PathBuf>,
    #[serde(default)]
    allow_insecure: bool,
    username: String,
    password: Option<String>,
    password_file: Option<PathBuf>,
    password_env: Option<String>,
    password_credential: Option<String>,
    folder: Option<String>,
    poll_interval: Option<String>,
    idle: Option<bool>,
    after: Option<String>,
    after_other: Option<String>,
    max_message_size: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    soft_limit: Option<u32>,
    soft_window: Option<String>,
    soft_min_days: Option<u32>,
    soft_reasons: Option<Vec<String>>,
    #[serde(default)]
    reason: std::collections::BTreeMap<String, RawReasonRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReasonRule {
    action: Option<ReasonAction>,
    remove_after: Option<u32>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

// ---- loading ----------------------------------------------------------------

impl Config {
    /// Read and validate a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_toml(&text, path)
    }

    /// Validate configuration text; `path` is only used in messages and to
    /// resolve relative file names.
    pub fn from_toml(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let syntax = |key: String, message: String| ConfigError::Syntax {
            path: path.to_path_buf(),
            key,
            message,
        };
        let de = toml::Deserializer::parse(text)
            .map_err(|e| syntax("(top level)".into(), one_line(e.message(), text, e.span())))?;
        let raw: RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let key = e.path().to_string();
            let key = if key == "." {
                "(top level)".to_string()
            } else {
                key
            };
            let inner = e.into_inner();
            syntax(key, one_line(inner.message(), text, inner.span()))
        })?;
        let validator = Validator {
            path,
            warnings: Default::default(),
        };
        let mut config = validator.config(raw)?;
        config.warnings = validator.warnings.take();
        config.warnings.dedup();
        Ok(config)
    }

    /// The mailbox with this name.
    pub fn mailbox(&self, name: &str) -> Option<&MailboxConfig> {
        self.mailboxes.iter().find(|m| m.name == name)
    }
}

/// A toml message with the line number, on one line.
fn one_line(message: &str, text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let message = message.trim().replace('\n', " ");
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{message} (line {line})")
        }
        None => message,
    }
}

/// Parse a size such as `"8MiB"`, `"512KiB"`, `"1GiB"` or a plain byte
/// count, between 64 KiB and 4 GiB - 1.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" | "kb" => 1024,
        "m" | "mib" | "mb" => 1024 * 1024,
        "g" | "gib" | "gb" => 1024 * 1024 * 1024,
        _ => {
            return Err(format!(
                "{s:?} is not a size; write it like \"8MiB\" or \"512KiB\""
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{s:?} is not a size; write it like \"8MiB\" or \"512KiB\""))?;
    let bytes = n.saturating_mul(unit_bytes);
    if !(64 * 1024..=u64::from(u32::MAX)).contains(&bytes) {
        return Err(format!("{s:?} must be between 64KiB and 4GiB"));
    }
    u32::try_from(bytes).map_err(|_| format!("{s:?} must be between 64KiB and 4GiB"))
}

/// Parse a duration such as `90s`, `5m`, `12h`, `30d`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| {
        format!("{s:?} is not a duration ({e}); write it like \"90s\", \"5m\", \"12h\" or \"30d\"")
    })
}

struct Validator<'a> {
    path: &'a Path,
    warnings: std::cell::RefCell<Vec<String>>,
}

impl Validator<'_> {
    /// Warn when a file holding a secret is readable by group or others.
    fn check_private(&self, file: &Path, what: &str) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(meta) = std::fs::metadata(file) {
                let mode = meta.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    self.warnings.borrow_mut().push(format!(
                        "{} is readable by group or others (mode {mode:04o}) and {what}; chmod 600 it",
                        file.display()
                    ));
                }
            }
        }
    }

    fn invalid(&self, key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn duration(
        &self,
        key: &str,
        value: Option<&str>,
        default: Duration,
    ) -> Result<Duration, ConfigError> {
        match value {
            None => Ok(default),
            Some(s) => parse_duration(s).map_err(|m| self.invalid(key, m)),
        }
    }

    /// A relative file name in the config is relative to the config file.
    fn relative(&self, file: &Path) -> PathBuf {
        if file.is_absolute() {
            return file.to_path_buf();
        }
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.join(file),
            _ => file.to_path_buf(),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let database = DatabaseConfig {
            url: match raw.database.url {
                Some(url) if url.trim().is_empty() => {
                    return Err(self.invalid("database.url", "must not be empty"))
                }
                Some(url) => url,
                None => default_database_url(),
            },
            busy_timeout: self.duration(
                "database.busy_timeout",
                raw.database.busy_timeout.as_deref(),
                Duration::from_secs(30),
            )?,
        };
        if !database.url.starts_with("sqlite:") {
            return Err(self.invalid(
                "database.url",
                format!(
                    "{:?}: only sqlite: URLs are supported in this version",
                    database.url
                ),
            ));
        }

        let mut names = HashSet::new();
        let mut mailboxes = Vec::with_capacity(raw.mailbox.len());
        for (i, m) in raw.mailbox.into_iter().enumerate() {
            let mb = self.mailbox(i, m)?;
            if !names.insert(mb.name.clone()) {
                return Err(self.invalid(
                    format!("mailbox[{i}].name"),
                    format!(
                        "{:?} is used by an earlier mailbox; names must be unique",
                        mb.name
                    ),
                ));
            }
            mailboxes.push(mb);
        }

        let verify = raw
            .verify
            .map(|v| self.verify(v))
            .transpose()?
            .map(Arc::new);
        let mut policy = self.policy(raw.policy)?;
        policy.verify = verify;
        Ok(Config {
            source: self.path.to_path_buf(),
            database,
            mailboxes,
            policy,
            log: LogConfig {
                format: raw.log.format.unwrap_or(LogFormat::Text),
                level: raw.log.level.unwrap_or_else(|| "info".into()),
            },
            metrics_listen: match raw.metrics.listen {
                None => None,
                Some(l) => Some(l.parse().map_err(|_| {
                    self.invalid(
                        "metrics.listen",
                        format!("{l:?} is not an address:port such as \"127.0.0.1:9187\""),
                    )
                })?),
            },
            warnings: Vec::new(),
        })
    }

    fn mailbox(&self, i: usize, m: RawMailbox) -> Result<MailboxConfig, ConfigError> {
        let key = |k: &str| format!("mailbox[{i}].{k}");
        if m.name.trim().is_empty() {
            return Err(self.invalid(key("name"), "must not be empty"));
        }
        if m.host.trim().is_empty() {
            return Err(self.invalid(key("host"), "must not be empty"));
        }
        if m.username.is_empty() {
            return Err(self.invalid(key("username"), "must not be empty"));
        }
        let tls = m.tls.unwrap_or(TlsMode::Implicit);
        if tls == TlsMode::None && !m.allow_insecure && !is_loopback(&m.host) {
            return Err(self.invalid(
                key("tls"),
                format!(
                    "\"none\" would send the password in clear text to {}; use \"implicit\" or \"starttls\", \
                     or set allow_insecure = true if you really mean it",
                    m.host
                ),
            ));
        }
        let port = match m.port {
            Some(0) => return Err(self.invalid(key("port"), "must be between 1 and 65535")),
            Some(p) => p,
            None => tls.default_port(),
        };
        let ca_file = m.ca_file.as_deref().map(|f| self.relative(f));
        if let Some(f) = &ca_file {
            if !f.is_file() {
                return Err(self.invalid(
                    key("ca_file"),
                    format!("{} is not a readable file", f.display()),
                ));
            }
        }

        let password = self.password(i, &m)?;
        let poll_interval = self.duration(
            &key("poll_interval"),
            m.poll_interval.as_deref(),
            Duration::from_secs(60),
        )?;
        if poll_interval < Duration::from_secs(1) {
            return Err(self.invalid(key("poll_interval"), "must be at least 1s"));
        }
        let after = match m.after.as_deref() {
            None => After::Seen,
            Some(s) => After::parse(s).map_err(|e| self.invalid(key("after"), e))?,
        };
        let after_other = match m.after_other.as_deref() {
            None => After::None,
            Some(s) => After::parse(s).map_err(|e| self.invalid(key("after_other"), e))?,
        };
        let folder = m.folder.unwrap_or_else(|| "INBOX".into());
        if folder.is_empty() {
            return Err(self.invalid(key("folder"), "must not be empty"));
        }
        let max_message_size = match m.max_message_size.as_deref() {
            None => MAX_MESSAGE_BYTES,
            Some(text) => parse_size(text).map_err(|e| self.invalid(key("max_message_size"), e))?,
        };
        Ok(MailboxConfig {
            max_message_size,
            name: m.name,
            host: m.host,
            port,
            tls,
            ca_file,
            allow_insecure: m.allow_insecure,
            username: m.username,
            password,
            folder,
            poll_interval,
            idle: m.idle.unwrap_or(true),
            after,
            after_other,
        })
    }

    fn password(&self, i: usize, m: &RawMailbox) -> Result<Secret, ConfigError> {
        let key = |k: &str| format!("mailbox[{i}].{k}");
        let given = [
            m.password.is_some(),
            m.password_file.is_some(),
            m.password_env.is_some(),
            m.password_credential.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(self.invalid(
                key("password"),
                "give exactly one of password, password_file, password_env, password_credential",
            ));
        }
        if let Some(p) = &m.password {
            self.check_private(self.path, "holds a password");
            return Ok(Secret::new(p.clone()));
        }
        if let Some(name) = &m.password_env {
            return std::env::var(name).map(Secret::new).map_err(|_| {
                self.invalid(
                    key("password_env"),
                    format!("environment variable {name} is not set"),
                )
            });
        }
        let (file, k) = if let Some(f) = &m.password_file {
            (self.relative(f), "password_file")
        } else {
            // systemd's LoadCredential= puts secrets in $CREDENTIALS_DIRECTORY,
            // out of the environment and readable only by the service.
            let name = m.password_credential.as_deref().unwrap_or_default();
            if name.is_empty() || name.contains('/') {
                return Err(self.invalid(
                    key("password_credential"),
                    "must be a plain credential name",
                ));
            }
            let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                self.invalid(
                    key("password_credential"),
                    "CREDENTIALS_DIRECTORY is not set (use LoadCredential= in the systemd unit)",
                )
            })?;
            (PathBuf::from(dir).join(name), "password_credential")
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| self.invalid(key(k), format!("cannot read {}: {e}", file.display())))?;
        self.check_private(&file, "holds a password");
        // A trailing newline is an editor's, not part of the password.
        let pw = text.strip_suffix('\n').unwrap_or(&text);
        let pw = pw.strip_suffix('\r').unwrap_or(pw);
        if pw.is_empty() {
            return Err(self.invalid(key(k), format!("{} is empty", file.display())));
        }
        Ok(Secret::new(pw))
    }

    fn verify(&self, v: RawVerify) -> Result<VerifyConfig, ConfigError> {
        use crate::verp::{Key, Keyring};
        let max_age = self.duration(
            "verify.max_age",
            v.max_age.as_deref(),
            Duration::from_secs(60 * 86_400),
        )?;
        let max_age_days = i64::try_from(max_age.as_secs() / 86_400).unwrap_or(i64::MAX);
        if max_age_days < 1 {
            return Err(self.invalid("verify.max_age", "must be at least 1d"));
        }
        if v.key.is_empty() {
            return Err(self.invalid(
                "verify.key",
                "[verify] needs at least one [[verify.key]] (id and secret_file or secret_credential)",
            ));
        }
        let mut keys = Vec::with_capacity(v.key.len());
        for (i, k) in v.key.iter().enumerate() {
            let kk = |name: &str| format!("verify.key[{i}].{name}");
            let (file, name) = match (&k.secret_file, &k.secret_credential) {
                (Some(f), None) => (self.relative(f), "secret_file"),
                (None, Some(c)) if !c.is_empty() && !c.contains('/') => {
                    let dir = std::env::var_os("CREDENTIALS_DIRECTORY").ok_or_else(|| {
                        self.invalid(kk("secret_credential"), "CREDENTIALS_DIRECTORY is not set")
                    })?;
                    (PathBuf::from(dir).join(c), "secret_credential")
                }
                _ => {
                    return Err(self.invalid(
                        kk("secret_file"),
                        "give exactly one of secret_file, secret_credential (a plain name)",
                    ))
                }
            };
            let secret = std::fs::read(&file).map_err(|e| {
                self.invalid(kk(name), format!("cannot read {}: {e}", file.display()))
            })?;
            self.check_private(&file, "holds a signing key");
            let secret = secret.strip_suffix(b"\n").unwrap_or(&secret);
            keys.push(Key::new(&k.id, secret).map_err(|e| self.invalid(kk("id"), e.to_string()))?);
        }
        let keyring = Keyring::new(keys).map_err(|e| self.invalid("verify.key", e.to_string()))?;
        if let Some(rp) = &v.return_path {
            // Signing a dummy address checks the base's shape once, here.
            keyring
                .return_path(rp, "check@example.org", "", 0)
                .map_err(|e| self.invalid("verify.return_path", e.to_string()))?;
        }
        Ok(VerifyConfig {
            require: v.require,
            return_path: v.return_path,
            max_age_days,
            keyring,
        })
    }

    fn policy(&self, p: RawPolicy) -> Result<PolicyConfig, ConfigError> {
        let d = PolicyConfig::default();
        let soft_limit = p.soft_limit.unwrap_or(d.soft_limit);
        if soft_limit == 0 {
            return Err(self.invalid("policy.soft_limit", "must be at least 1"));
        }
        let soft_window = self.duration(
            "policy.soft_window",
            p.soft_window.as_deref(),
            d.soft_window,
        )?;
        let soft_min_days = p.soft_min_days.unwrap_or(d.soft_min_days);
        if u64::from(soft_min_days) * 86_400 > soft_window.as_secs() {
            return Err(self.invalid(
                "policy.soft_min_days",
                format!(
                    "{soft_min_days} days is longer than soft_window ({}); no address could ever reach the limit",
                    humantime::format_duration(soft_window)
                ),
            ));
        }
        let soft_reasons = match p.soft_reasons {
            None => d.soft_reasons,
            Some(list) => {
                let mut set = HashSet::new();
                for (j, name) in list.iter().enumerate() {
                    let reason: Reason = name.parse().map_err(|e| {
                        self.invalid(format!("policy.soft_reasons[{j}]"), format!("{e}"))
                    })?;
                    set.insert(reason);
                }
                set
            }
        };
        let mut reasons = d.reasons;
        for (name, rule) in p.reason {
            let key = format!("policy.reason.{name}");
            let reason: Reason = name
                .parse()
                .map_err(|e| self.invalid(key.clone(), format!("{e}")))?;
            if rule.remove_after == Some(0) {
                return Err(self.invalid(format!("{key}.remove_after"), "must be at least 1"));
            }
            let action = match (rule.action, rule.remove_after) {
                (Some(ReasonAction::Count) | None, Some(_)) => ReasonAction::Count,
                (Some(a), None) => a,
                (None, None) => {
                    return Err(self.invalid(key, "give action or remove_after"));
                }
                (Some(a), Some(_)) => {
                    return Err(self.invalid(
                        format!("{key}.remove_after"),
                        format!("does not go with action = \"{}\"", a.as_str()),
                    ));
                }
            };
            reasons.insert(
                reason,
                ReasonRule {
                    action,
                    remove_after: rule.remove_after,
                },
            );
        }
        Ok(PolicyConfig {
            soft_limit,
            soft_window,
            soft_min_days,
            soft_reasons,
            verify: None,
            reasons,
        })
    }
}

fn default_database_url() -> String {
    let dir = std::env::var_os("STATE_DIRECTORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
    format!("sqlite://{}", dir.join("bounced.db").display())
}

/// Whether a host name is the loopback interface, where plaintext is harmless.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("/etc/bounced/test.toml"))
    }

    const MINIMAL: &str = r#"
        [database]
        url = "sqlite:///tmp/x.db"
        [[mailbox]]
        name = "bounces"
        host = "imap.example.org"
        username = "bounces@example.org"
        password = "hunter2"
    "#;

    fn policy_fields(p: &PolicyConfig) -> (u32, Duration, u32, Vec<Reason>, bool) {
        let mut reasons: Vec<_> = p.soft_reasons.iter().copied().collect();
        reasons.sort();
        (
            p.soft_limit,
            p.soft_window,
            p.soft_min_days,
            reasons,
            p.verify.is_some(),
        )
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = load(MINIMAL).unwrap();
        let m = &c.mailboxes[0];
        assert_eq!(m.tls, TlsMode::Implicit);
        assert_eq!(m.port, 993);
        assert_eq!(m.folder, "INBOX");
        assert_eq!(m.after, After::Seen);
        assert_eq!(m.after_other, After::None);
        assert_eq!(m.poll_interval, Duration::from_secs(60));
        assert!(m.idle);
        assert_eq!(
            policy_fields(&c.policy),
            policy_fields(&PolicyConfig::default())
        );
        assert_eq!(c.database.busy_timeout, Duration::from_secs(30));
    }

    #[test]
    fn unknown_key_is_named_with_its_path() {
        let e = load(&MINIMAL.replace("password =", "tlss = \"none\"\npassword =")).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/etc/bounced/test.toml"), "{s}");
        assert!(s.contains("mailbox[0]"), "{s}");
        assert!(s.contains("tlss"), "{s}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = load(&MINIMAL.replace("[database]", "[database]\nbusy_timeout = 5")).unwrap_err();
        assert!(e.to_string().contains("database.busy_timeout"), "{e}");
    }

    #[test]
    fn bad_duration_names_the_key() {
        let e = load(&format!("{MINIMAL}\npoll_interval = \"soon\"")).unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("mailbox[0].poll_interval") && s.contains("soon"),
            "{s}"
        );
    }

    #[test]
    fn plaintext_to_remote_host_is_refused() {
        let e = load(&format!("{MINIMAL}\ntls = \"none\"")).unwrap_err();
        assert!(e.to_string().contains("mailbox[0].tls"), "{e}");
        let ok = load(&format!("{MINIMAL}\ntls = \"none\"\nallow_insecure = true")).unwrap();
        assert_eq!(ok.mailboxes[0].port, 143);
        let local = load(
            &MINIMAL
                .replace("imap.example.org", "127.0.0.1")
                .replace("password =", "tls = \"none\"\npassword ="),
        )
        .unwrap();
        assert_eq!(local.mailboxes[0].tls, TlsMode::None);
    }

    #[test]
    fn exactly_one_password_source() {
        let e = load(&MINIMAL.replace("password = \"hunter2\"", "")).unwrap_err();
        assert!(e.to_string().contains("mailbox[0].password"), "{e}");
        let e = load(&format!("{MINIMAL}\npassword_env = \"X\"")).unwrap_err();
        assert!(e.to_string().contains("exactly one"), "{e}");
    }

    #[test]
    fn password_file_is_read_and_trimmed_of_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret\n").unwrap();
        let text = MINIMAL.replace("password = \"hunter2\"", "password_file = \"pw\"");
        let c = Config::from_toml(&text, &dir.path().join("config.toml")).unwrap();
        assert_eq!(c.mailboxes[0].password.expose(), "s3cret");
        let e = Config::from_toml(
            &text.replace("\"pw\"", "\"missing\""),
            &dir.path().join("c.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("password_file"), "{e}");
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let c = load(MINIMAL).unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn after_actions_parse() {
        assert_eq!(
            After::parse("move:Done").unwrap(),
            After::Move("Done".into())
        );
        assert!(After::parse("move:").is_err());
        assert!(After::parse("archive").is_err());
        let e = load(&format!("{MINIMAL}\nafter = \"archive\"")).unwrap_err();
        assert!(e.to_string().contains("mailbox[0].after"), "{e}");
    }

    #[test]
    fn duplicate_mailbox_names_are_refused() {
        let text = format!("{MINIMAL}\n[[mailbox]]\nname = \"bounces\"\nhost = \"h\"\nusername = \"u\"\npassword = \"p\"\n");
        let e = load(&text).unwrap_err();
        assert!(e.to_string().contains("mailbox[1].name"), "{e}");
    }

    #[test]
    fn policy_values_are_checked() {
        let e = load(&format!("{MINIMAL}\n[policy]\nsoft_limit = 0\n")).unwrap_err();
        assert!(e.to_string().contains("policy.soft_limit"), "{e}");
        let e = load(&format!(
            "{MINIMAL}\n[policy]\nsoft_window = \"3d\"\nsoft_min_days = 7\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("policy.soft_min_days"), "{e}");
        let e = load(&format!(
            "{MINIMAL}\n[policy]\nsoft_reasons = [\"mailboxfull\", \"nosuch\"]\n"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("policy.soft_reasons[1]"), "{e}");
        let c = load(&format!(
            "{MINIMAL}\n[policy]\nsoft_reasons = [\"mailboxfull\"]\n"
        ))
        .unwrap();
        assert_eq!(c.policy.soft_reasons.len(), 1);
    }

    #[test]
    fn non_sqlite_urls_are_refused_for_now() {
        let e = load(&MINIMAL.replace("sqlite:///tmp/x.db", "mysql://x")).unwrap_err();
        assert!(e.to_string().contains("database.url"), "{e}");
    }

    #[test]
    fn invalid_toml_names_the_line() {
        let e = load("[database\nurl=1").unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
    }

    #[test]
    fn example_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
        // The example reads its password from a systemd credential.
        let creds = tempfile::tempdir().unwrap();
        std::fs::write(creds.path().join("imap-password"), "example\n").unwrap();
        std::env::set_var("CREDENTIALS_DIRECTORY", creds.path());
        let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.mailboxes[0].password.expose(), "example");
        assert_eq!(
            policy_fields(&c.policy),
            policy_fields(&PolicyConfig::default()),
            "the example documents the defaults"
        );
        assert!(!c.mailboxes.is_empty());
    }

    #[test]
    fn verify_section_reads_keys_and_warns_on_loose_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("k1");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let text = format!(
            "{MINIMAL}\n[verify]\nrequire = true\nreturn_path = \"bounces@example.org\"\n\
             [[verify.key]]\nid = \"k1\"\nsecret_file = \"k1\"\n"
        );
        let c = Config::from_toml(&text, &dir.path().join("c.toml")).unwrap();
        let v = c.policy.verify.as_ref().unwrap();
        assert!(v.require);
        assert!(
            c.policy.require_verified(),
            "[verify] require reaches the policy"
        );
        assert_eq!(v.max_age_days, 60);
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("k1") && w.contains("0644")),
            "{:?}",
            c.warnings
        );
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = Config::from_toml(&text, &dir.path().join("c.toml")).unwrap();
        assert!(
            !c.warnings.iter().any(|w| w.contains("k1")),
            "{:?}",
            c.warnings
        );

        std::fs::write(&key, "short").unwrap();
        let e = Config::from_toml(&text, &dir.path().join("c.toml")).unwrap_err();
        assert!(e.to_string().contains("verify.key[0]"), "{e}");
        let e = Config::from_toml(
            &text.replace("bounces@", "b+x@"),
            &dir.path().join("c.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("verify"), "{e}");
        let e = Config::from_toml(
            &format!("{MINIMAL}\n[verify]\n"),
            &dir.path().join("c.toml"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("verify.key"), "{e}");
    }

    #[test]
    fn metrics_listen_is_an_address() {
        let c = load(&format!(
            "{MINIMAL}\n[metrics]\nlisten = \"127.0.0.1:9187\"\n"
        ))
        .unwrap();
        assert_eq!(c.metrics_listen.unwrap().port(), 9187);
        let e = load(&format!("{MINIMAL}\n[metrics]\nlisten = \"localhost\"\n")).unwrap_err();
        assert!(e.to_string().contains("metrics.listen"), "{e}");
        assert!(load(MINIMAL).unwrap().metrics_listen.is_none());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("8MiB").unwrap(), 8 * 1024 * 1024);
        assert_eq!(parse_size("512k").unwrap(), 512 * 1024);
        assert_eq!(parse_size("100000").unwrap(), 100_000);
        assert!(parse_size("1KiB").is_err());
        assert!(parse_size("8 parsecs").is_err());
        assert!(parse_size("99GiB").is_err());
        let c = load(&format!("{MINIMAL}\nmax_message_size = \"2MiB\"\n")).unwrap();
        assert_eq!(c.mailboxes[0].max_message_size, 2 * 1024 * 1024);
        let e = load(&format!("{MINIMAL}\nmax_message_size = \"huge\"\n")).unwrap_err();
        assert!(e.to_string().contains("mailbox[0].max_message_size"), "{e}");
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("imap.example.org"));
        assert!(!is_loopback("10.0.0.1"));
    }

    #[test]
    fn per_reason_rules() {
        let c = load(&format!(
            "{MINIMAL}\n[policy.reason.suspend]\nremove_after = 2\n\
             [policy.reason.blocked]\naction = \"ignore\"\n"
        ))
        .unwrap();
        let r = &c.policy.reasons;
        assert_eq!(r[&Reason::Suspend].remove_after, Some(2));
        assert_eq!(r[&Reason::Blocked].action, ReasonAction::Ignore);
        assert_eq!(
            r[&Reason::Feedback].action,
            ReasonAction::Remove,
            "default kept"
        );
        let e = load(&format!(
            "{MINIMAL}\n[policy.reason.nonsense]\naction = \"remove\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("policy.reason.nonsense"), "{e}");
        let e = load(&format!(
            "{MINIMAL}\n[policy.reason.suspend]\naction = \"remove\"\nremove_after = 2\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("policy.reason.suspend.remove_after"), "{e}");
        let e = load(&format!(
            "{MINIMAL}\n[policy.reason.suspend]\naction = \"sometimes\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("policy.reason.suspend.action"), "{e}");
    }
}
