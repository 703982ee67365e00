//! The processing loop: for each mailbox, fetch new messages, classify them,
//! store the verdicts in one transaction, then apply the after-action.
//!
//! ## One pass over a mailbox
//!
//! 1. SELECT the folder, read UIDVALIDITY, note it in `mailbox_state`.
//! 2. Apply the after-actions still owed: rows committed by an earlier run
//!    whose server-side action (move, `\Seen`, delete) did not happen or was
//!    not confirmed because the process died in between.
//! 3. `UID SEARCH ALL`, minus the UIDs the database already has for this
//!    UIDVALIDITY, gives the new messages. They are fetched in batches with
//!    `BODY.PEEK[]<0.max_message_size>` (no `\Seen` side effect, never more
//!    bytes than the cap whatever the server claims); each one is classified and
//!    recorded in its own transaction (message row + events + address
//!    verdicts); then the batch's after-actions are applied and marked done.
//!
//! ## Why a crash cannot lose or double-count a bounce
//!
//! - Before the commit, nothing on the server changed: the message is read
//!   again on restart.
//! - The commit is atomic: the message row and its events exist together or
//!   not at all, and the row makes the UID "done" for every later pass.
//! - After the commit, the owed after-action is in the row
//!   (`after_done = 0`) and is re-applied on restart; applying it twice is
//!   harmless (flags are idempotent; a moved or deleted UID is simply gone).
//! - If UIDVALIDITY changes, every message gets a new UID, so the UID check
//!   cannot help: the SHA-256 fingerprint of the bytes recognises messages
//!   already counted, which are stored as duplicates without events.
//!
//! A message the server cannot return (it answers NO or closes the
//! connection with BYE, e.g. a broken file) must not block the mailbox: a
//! batch that fails that way lists its UIDs in `fetch_failures`; the next
//! pass fetches them one at a time, and a message refused three times on its
//! own is recorded as `unparseable` and left on the server.
//!
//! ## The long-running daemon
//!
//! One task per mailbox, independent of the others. Each connects, makes a
//! pass, then waits for news with IMAP IDLE (re-issued at least every
//! `poll_interval`, at most every 25 minutes) or, without IDLE, sleeps
//! `poll_interval`; then passes again on the same connection. Errors close
//! the connection and retry with capped exponential backoff and jitter
//! (1 s doubling to 5 min; 15 min after a refused login or certificate,
//! which need an operator); each distinct error is logged once. Beside
//! them, one small task recomputes the address verdicts that time alone has
//! changed (soft bounces leaving `soft_window`): at start, then hourly.
//!
//! SIGTERM/SIGINT: each task finishes the message in hand, applies the
//! after-actions it owes, logs out; the process exits 0. SIGHUP re-reads the
//! configuration file and restarts the mailbox tasks the same way.
//! Under systemd (`Type=notify`) it reports READY=1 once the database is
//! migrated and the tasks started, a STATUS= line per mailbox state change,
//! and WATCHDOG=1 pings when `WatchdogSec=` is set.

use crate::classify::{self, ClassifyError, Kind, Verdict};
use crate::config::{After, Config, MailboxConfig, PolicyConfig};
use crate::imap::{self, ImapError, ImapSource, Timeouts};
use crate::metrics;
use crate::shutdown::{sleep_or_stop, stopped, wait_for_signal};
use crate::store::{self, NewMessage, Recorded, Store, StoreError};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How many messages one UID FETCH asks for: bounds the work redone after
/// a crash and the after-actions owed at any moment.
const FETCH_BATCH: usize = 50;

/// How many bytes one UID FETCH may bring (a batch is cut earlier when its
/// messages add up to more): keeps memory flat whatever the mailbox holds.
const FETCH_BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// A message the server failed to return this many times on its own is
/// recorded as unparseable and left in place.
const MAX_FETCH_ATTEMPTS: u32 = 3;

/// Owed after-actions are applied once this many have gathered, or
/// [`SETTLE_AFTER`] after the last time, and at the end of every pass.
const SETTLE_EVERY: usize = 500;
const SETTLE_AFTER: Duration = Duration::from_secs(5);

/// How often the running daemon recomputes the verdicts that time alone has
/// changed. Soft windows are days long, so an hour late is close enough,
/// and a review with nothing due is one indexed query.
const REVIEW_EVERY: Duration = Duration::from_secs(3600);

/// How long shutdown waits for mailbox tasks to finish the message in hand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Reconnect backoff: first delay, cap, and the delay after errors that
/// need an operator (wrong password, untrusted certificate).
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_CAP: Duration = Duration::from_secs(300);
const BACKOFF_AUTH: Duration = Duration::from_secs(900);

/// A daemon error that stops the whole run (not one mailbox).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The metrics endpoint could not listen.
    #[error("cannot listen for metrics on {0}: {1}")]
    Metrics(std::net::SocketAddr, std::io::Error),
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
}

/// What one `--once` pass achieved.
#[derive(Debug, Clone, Default)]
pub struct PassReport {
    /// Mailboxes processed without error.
    pub mailboxes_ok: usize,
    /// Mailboxes that failed, with the error in words.
    pub mailboxes_failed: Vec<(String, String)>,
    /// Messages newly processed.
    pub messages: usize,
    /// Bounce events recorded.
    pub bounces: usize,
}

/// Why a pass over one mailbox failed.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// The IMAP side failed.
    #[error(transparent)]
    Imap(#[from] ImapError),
    /// The database failed (e.g. locked longer than the busy timeout).
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PassError {
    fn is_transient(&self) -> bool {
        match self {
            PassError::Imap(e) => e.is_transient(),
            PassError::Store(_) => true,
        }
    }
}

/// A pass over one mailbox that failed, with what it committed before.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct PassFailed {
    /// Why it failed.
    pub error: PassError,
    /// What was committed before the failure (it stays committed: those
    /// messages are done, and their after-actions are owed).
    pub committed: MailboxPass,
}

/// What one pass over one mailbox did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MailboxPass {
    /// New message rows (including duplicates and unparseable ones).
    pub messages: usize,
    /// Bounce events recorded.
    pub events: usize,
    /// Messages recognised as already counted (UIDVALIDITY change).
    pub duplicates: usize,
    /// Messages that could not be parsed (left in place).
    pub unparseable: usize,
    /// Owed after-actions from an earlier run, applied now.
    pub resumed: usize,
    /// Whether the pass stopped early because shutdown was requested.
    pub interrupted: bool,
}

/// Run the daemon. With `once`, make one pass over every mailbox and return
/// its report; otherwise run until SIGTERM/SIGINT.
pub async fn run(config: &Config, once: bool) -> Result<PassReport, DaemonError> {
    let store = Store::open(&config.database).await?;
    follow_policy(&store, &config.policy).await?;
    // The endpoint's address is read once: changing it needs a restart.
    let metrics_server = match config.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| DaemonError::Metrics(addr, e))?;
            tracing::info!(%addr, "serving Prometheus metrics on /metrics");
            Some(tokio::spawn(metrics::serve(listener, metrics::global())))
        }
        None => None,
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let signals = tokio::spawn(wait_for_signal(stop_tx));
    // The watchdog pings come from the runtime that runs the mailbox tasks:
    // a wedged runtime stops them and systemd restarts the service.
    let watchdog = notify::watchdog_interval().map(|every| {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                notify::send("WATCHDOG=1");
            }
        })
    });
    let report = if once {
        review_verdicts(&store, &config.policy).await?;
        run_once(config, &store, &stop_rx).await
    } else {
        run_forever(config.clone(), &store, &stop_rx).await;
        PassReport::default()
    };
    signals.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    if let Some(m) = metrics_server {
        m.abort();
    }
    store.close().await;
    Ok(report)
}

/// Recompute the address verdicts when the configured policy is not the
/// one they were computed with. (Those that time alone has changed are
/// reviewed by [`review_loop`], or before the pass with `--once`.)
async fn follow_policy(store: &Store, policy: &PolicyConfig) -> Result<(), StoreError> {
    let n = store.apply_policy(policy, store::now()).await?;
    if n > 0 {
        tracing::info!(addresses = n, "policy changed: address verdicts recomputed");
    }
    Ok(())
}

/// Recompute the verdicts whose soft bounces left (or entered) the window
/// since they were computed: without it an address would stay `remove`
/// until its next bounce, which for a recovered mailbox never comes.
async fn review_verdicts(store: &Store, policy: &PolicyConfig) -> Result<(), StoreError> {
    let n = store.refresh_due(policy, store::now()).await?;
    if n > 0 {
        tracing::info!(
            addresses = n,
            "address verdicts recomputed: soft bounces left the window"
        );
    }
    Ok(())
}

/// Recompute the verdicts that are due now, then every [`REVIEW_EVERY`]
/// until `stop`. It runs beside the mailbox tasks, after READY=1: the first
/// review after an upgrade can find every row due, and a large table must
/// not hold the service's start-up past systemd's timeout.
async fn review_loop(store: Store, policy: PolicyConfig, stop: watch::Receiver<bool>) {
    loop {
        // A stop request drops a review in progress: its open transaction
        // rolls back and those rows stay due for the next start.
        let result = tokio::select! {
            r = review_verdicts(&store, &policy) => r,
            _ = stopped(&stop) => return,
        };
        if let Err(e) = result {
            // Nothing is lost: the rows stay due and the next review retries.
            tracing::warn!(error = %e, "cannot recompute aged address verdicts");
        }
        if sleep_or_stop(REVIEW_EVERY, &stop).await {
            return;
        }
    }
}

async fn run_once(config: &Config, store: &Store, stop: &watch::Receiver<bool>) -> PassReport {
    let passes = config.mailboxes.iter().map(|m| async move {
        let result = connect_and_pass(m, &config.policy, store, stop).await;
        (m.name.clone(), result)
    });
    let mut report = PassReport::default();
    for (name, result) in futures::future::join_all(passes).await {
        match result {
            Ok(p) => {
                report.mailboxes_ok += 1;
                report.messages += p.messages;
                report.bounces += p.events;
            }
            Err(f) => {
                // Counted also when the pass failed midway: those rows are
                // committed and will not be read again.
                report.messages += f.committed.messages;
                report.bounces += f.committed.events;
                report.mailboxes_failed.push((name, f.error.to_string()));
            }
        }
    }
    report
}

async fn connect_and_pass(
    m: &MailboxConfig,
    policy: &PolicyConfig,
    store: &Store,
    stop: &watch::Receiver<bool>,
) -> Result<MailboxPass, PassFailed> {
    let started = store::now();
    let mut source = match connect(m).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(mailbox = %m.name, error = %e, "cannot open mailbox");
            let _ = store.end_pass(&m.name, started, Err(&e.to_string())).await;
            return Err(PassFailed {
                error: e.into(),
                committed: MailboxPass::default(),
            });
        }
    };
    let result = pass(&mut source, m, policy, store, stop).await;
    source.logout().await;
    result
}

/// Open a mailbox's connection (TCP, TLS, login) and count a failure in
/// `bounced_connect_errors_total`: such a failure never reaches [`pass`],
/// which counts the failures that come after.
async fn connect(m: &MailboxConfig) -> Result<ImapSource, ImapError> {
    let metrics = metrics::global();
    metrics.connecting(&m.name);
    let result = ImapSource::connect(m, Timeouts::default()).await;
    if result.is_err() {
        metrics.connect_failed(&m.name);
    }
    result
}

async fn run_forever(mut config: Config, store: &Store, stop: &watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let status = Status::default();
    let mut hup = signal(SignalKind::hangup())
        .map_err(|e| tracing::warn!(error = %e, "no SIGHUP handler: config reload disabled"))
        .ok();
    let mut first = true;
    loop {
        // One generation of mailbox tasks per configuration; SIGHUP ends
        // the generation the way SIGTERM would, then starts the next.
        let (gen_tx, gen_rx) = watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        status.reset(config.mailboxes.iter().map(|m| m.name.clone()));
        for m in &config.mailboxes {
            let m = m.clone();
            let policy = config.policy.clone();
            let store = store.clone();
            let stop = gen_rx.clone();
            let status = status.clone();
            tasks.spawn(async move { mailbox_loop(m, policy, store, stop, status).await });
        }
        tasks.spawn(review_loop(
            store.clone(),
            config.policy.clone(),
            gen_rx.clone(),
        ));
        tracing::info!(mailboxes = config.mailboxes.len(), "bounced running");
        notify::send(if first {
            "READY=1"
        } else {
            "READY=1\nSTATUS=configuration reloaded"
        });
        first = false;
        let reload = tokio::select! {
            _ = stopped(stop) => false,
            _ = async {
                match hup.as_mut() {
                    Some(h) => { h.recv().await; }
                    None => std::future::pending::<()>().await,
                }
            } => true,
        };
        notify::send(if reload { "RELOADING=1" } else { "STOPPING=1" });
        if reload {
            tracing::info!("SIGHUP: reloading {}", config.source.display());
        }
        let _ = gen_tx.send(true);
        // Each task finishes the message in hand, applies the after-actions it
        // owes and logs out; past the grace period they are abandoned, which is
        // safe: whatever was not committed is read again next time.
        let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!("mailbox tasks did not stop within {SHUTDOWN_GRACE:?}; leaving anyway");
            tasks.abort_all();
        }
        if !reload || *stop.borrow() {
            return;
        }
        match Config::load(&config.source) {
            Ok(new) => {
                if new.database.url != config.database.url {
                    tracing::warn!(
                        "database.url changed: keeping {} until restart",
                        config.database.url
                    );
                }
                config = Config {
                    database: config.database.clone(),
                    ..new
                };
                if let Err(e) = follow_policy(store, &config.policy).await {
                    tracing::error!(error = %e, "cannot recompute verdicts for the new policy");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "reload failed: keeping the running configuration")
            }
        }
    }
}

/// What each mailbox task is doing, for systemd's STATUS= line.
#[derive(Clone, Default)]
struct Status(std::sync::Arc<std::sync::Mutex<BTreeMap<String, String>>>);

impl Status {
    fn reset(&self, names: impl Iterator<Item = String>) {
        if let Ok(mut map) = self.0.lock() {
            map.clear();
            map.extend(names.map(|n| (n, "starting".to_string())));
        }
    }

    /// Record a mailbox's state and tell systemd (when it listens).
    fn set(&self, mailbox: &str, what: impl Into<String>) {
        let line = match self.0.lock() {
            Ok(mut map) => {
                map.insert(mailbox.to_string(), what.into());
                map.iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
            Err(_) => return,
        };
        notify::send(&format!("STATUS={line}"));
    }
}

/// systemd notifications (`sd_notify`) through the sd-notify crate: one
/// datagram to `$NOTIFY_SOCKET`. Silent when not run under systemd.
pub mod notify {
    use sd_notify::NotifyState;
    use std::time::Duration;

    /// Send one notification (`READY=1`, `STATUS=…`, `WATCHDOG=1`, …; one
    /// assignment per line). Returns whether it was sent.
    pub fn send(state: &str) -> bool {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return false;
        }
        let states: Vec<NotifyState<'_>> = state.lines().map(NotifyState::Custom).collect();
        sd_notify::notify(&states).is_ok()
    }

    /// The interval at which systemd expects `WATCHDOG=1` (half of
    /// `WatchdogSec`), when the watchdog is on for this process.
    pub fn watchdog_interval() -> Option<Duration> {
        sd_notify::watchdog_enabled()
            .filter(|d| !d.is_zero())
            .map(|d| d / 2)
    }
}

/// Capped exponential backoff with full jitter in [d/2, d].
fn backoff(attempt: u32, transient: bool) -> Duration {
    let base = if transient {
        let exp = BACKOFF_FIRST.saturating_mul(2u32.saturating_pow(attempt.min(16)));
        exp.min(BACKOFF_CAP)
    } else {
        BACKOFF_AUTH
    };
    let half = base / 2;
    half + half.mul_f64(fastrand::f64())
}

/// One mailbox, forever: connect, pass, wait for news (IDLE) or the poll
/// interval, pass again; reconnect with backoff on errors.
async fn mailbox_loop(
    m: MailboxConfig,
    policy: PolicyConfig,
    store: Store,
    stop: watch::Receiver<bool>,
    status: Status,
) {
    let mut failures: u32 = 0;
    let mut last_error = String::new();
    while !*stop.borrow() {
        let started = store::now();
        let result = async {
            status.set(&m.name, "connecting");
            // A server that does not answer must not delay shutdown.
            let mut source = tokio::select! {
                r = connect(&m) => r?,
                _ = stopped(&stop) => return Ok(None),
            };
            metrics::global().connected(&m.name, true);
            loop {
                status.set(&m.name, "reading new messages");
                let p = pass(&mut source, &m, &policy, &store, &stop)
                    .await
                    .map_err(|f| f.error)?;
                // A successful pass resets the backoff and the error memory.
                failures = 0;
                if !last_error.is_empty() {
                    tracing::info!(mailbox = %m.name, "mailbox recovered");
                    last_error.clear();
                }
                if p.interrupted || *stop.borrow() {
                    return Ok::<_, PassError>(Some(source));
                }
                if m.idle && source.has_idle() {
                    status.set(
                        &m.name,
                        format!("idle (IDLE), last pass: {} new", p.messages),
                    );
                    // Renewed at least every poll_interval, at most every
                    // Timeouts::idle (imap::IDLE_RENEWAL).
                    let (s, news) = source.idle(m.poll_interval, &stop).await?;
                    source = s;
                    tracing::debug!(mailbox = %m.name, news, "IDLE ended");
                } else {
                    status.set(
                        &m.name,
                        format!(
                            "polling every {}, last pass: {} new",
                            humantime::format_duration(m.poll_interval),
                            p.messages
                        ),
                    );
                    if sleep_or_stop(m.poll_interval, &stop).await {
                        return Ok(Some(source));
                    }
                }
                if *stop.borrow() {
                    return Ok(Some(source));
                }
            }
        }
        .await;
        match result {
            Ok(source) => {
                if let Some(source) = source {
                    source.logout().await;
                }
                break;
            }
            Err(e) => {
                metrics::global().connected(&m.name, false);
                let text = e.to_string();
                let _ = store.end_pass(&m.name, started, Err(&text)).await;
                let delay = backoff(failures, e.is_transient());
                failures = failures.saturating_add(1);
                status.set(
                    &m.name,
                    format!("error: {text} (retry in {}s)", delay.as_secs()),
                );
                // Log each distinct error once, not once per retry.
                if text != last_error {
                    tracing::error!(mailbox = %m.name, error = %text, retry_in = ?delay, "mailbox failed");
                    last_error = text;
                } else {
                    tracing::debug!(mailbox = %m.name, retry_in = ?delay, "mailbox still failing");
                }
                if sleep_or_stop(delay, &stop).await {
                    break;
                }
            }
        }
    }
    metrics::global().connected(&m.name, false);
    status.set(&m.name, "stopped");
    tracing::info!(mailbox = %m.name, "mailbox task stopped");
}

/// One planned UID FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The UIDs, ascending.
    pub uids: Vec<u32>,
    /// The bytes it may bring (sizes capped at `max_message_size`), for
    /// its timeout.
    pub bytes: u64,
    /// A single message over `max_message_size`, read as its first bytes.
    pub oversized: bool,
}

/// Cut (uid, size) pairs into FETCH batches: at most 50 messages and
/// about 16 MiB each (`FETCH_BATCH`, `FETCH_BATCH_BYTES`); a message over `cap`
/// (the mailbox's `max_message_size`) goes alone. Every fetch reads at most
/// `cap` bytes of each message whatever the sizes say (they may lie); the
/// sizes only shape the batches.
pub fn plan_batches(sizes: &[(u32, u32)], cap: u32) -> Vec<Batch> {
    let mut out = Vec::new();
    let mut current: Vec<u32> = Vec::new();
    let mut bytes: u64 = 0;
    for &(uid, size) in sizes {
        if size > cap {
            out.push(Batch {
                uids: vec![uid],
                bytes: u64::from(cap),
                oversized: true,
            });
            continue;
        }
        if !current.is_empty()
            && (current.len() >= FETCH_BATCH || bytes + u64::from(size) > FETCH_BATCH_BYTES)
        {
            out.push(Batch {
                uids: std::mem::take(&mut current),
                bytes,
                oversized: false,
            });
            bytes = 0;
        }
        current.push(uid);
        bytes += u64::from(size);
    }
    if !current.is_empty() {
        out.push(Batch {
            uids: current,
            bytes,
            oversized: false,
        });
    }
    out
}

/// SHA-256 of the bytes, lower-case hex.
pub fn fingerprint(raw: &[u8]) -> String {
    let digest = Sha256::digest(raw);
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The message's Date header as Unix seconds, when plausible (after 2000,
/// not more than a day in the future). A bounce's Date is set by the
/// reporting MTA when it gave up, closer to the failure than INTERNALDATE,
/// which changes when a message is copied or imported.
pub fn date_header(raw: &[u8], now: i64) -> Option<i64> {
    let message = mail_parser::MessageParser::new().parse_headers(raw)?;
    let t = message.date()?.to_timestamp();
    (946_684_800..=now + 86_400).contains(&t).then_some(t)
}

/// Classify, turning a classifier panic (a bug, but one that must not stop
/// the daemon) into an unparseable verdict.
fn classify_guarded(raw: &[u8]) -> Result<Verdict, ClassifyError> {
    std::panic::catch_unwind(|| classify::classify(raw)).unwrap_or_else(|_| {
        Err(ClassifyError::Unparseable(
            "the classifier panicked on this message".into(),
        ))
    })
}

/// The after-action owed for a verdict.
fn after_for(m: &MailboxConfig, verdict: &Result<Verdict, ClassifyError>) -> After {
    match verdict {
        Ok(v) if v.kind == Kind::NotBounce => m.after_other.clone(),
        Ok(_) => m.after.clone(),
        // Left in place for a person (or a better classifier) to look at.
        Err(_) => After::None,
    }
}

/// Apply owed after-actions, grouped by action, and mark them done.
async fn settle(
    source: &mut ImapSource,
    store: &Store,
    owed: Vec<(After, u32, i64)>,
) -> Result<usize, PassError> {
    let mut groups: BTreeMap<String, (After, Vec<u32>, Vec<i64>)> = BTreeMap::new();
    for (after, uid, id) in owed {
        let g = groups
            .entry(after.to_string())
            .or_insert_with(|| (after, Vec::new(), Vec::new()));
        g.1.push(uid);
        g.2.push(id);
    }
    let mut n = 0;
    for (after, uids, ids) in groups.into_values() {
        source.apply(&after, &uids).await?;
        store.mark_after_done(&ids).await?;
        n += ids.len();
    }
    Ok(n)
}

/// What processing one message needs, gathered.
struct Ctx<'a> {
    m: &'a MailboxConfig,
    policy: &'a PolicyConfig,
    store: &'a Store,
    uidvalidity: u32,
    report: &'a mut MailboxPass,
    owed: &'a mut Vec<(After, u32, i64)>,
    seen: &'a mut HashSet<u32>,
}

impl Ctx<'_> {
    /// Classify and record one fetched message; note its after-action.
    async fn process(&mut self, f: imap::Fetched) -> Result<(), PassError> {
        let m = self.m;
        if !self.seen.insert(f.uid) {
            return Ok(());
        }
        let now = store::now();
        let verdict = classify_guarded(&f.body);
        let after = after_for(m, &verdict);
        let trust = match &verdict {
            Ok(v) => crate::trust::check(self.policy.verify.as_deref(), v, now),
            Err(_) => Vec::new(),
        };
        let msg = NewMessage {
            mailbox: &m.name,
            uidvalidity: self.uidvalidity,
            uid: f.uid,
            size: f.size.map(u64::from).unwrap_or(f.body.len() as u64),
            internal_date: f.internal_date,
            date: date_header(&f.body, now),
            fingerprint: fingerprint(&f.body),
            after_action: after.to_string(),
            trust,
        };
        let recorded = self.store.record(&msg, &verdict, self.policy, now).await?;
        let kind = match &verdict {
            Ok(v) => v.kind.as_str(),
            Err(_) => "unparseable",
        };
        let id = match recorded {
            Recorded::Stored { id, events, .. } => {
                self.report.messages += 1;
                self.report.events += events;
                metrics::global().message(&m.name, kind);
                if let Ok(v) = &verdict {
                    for r in &v.recipients {
                        metrics::global().recipient(&m.name, r.reason.as_str());
                    }
                }
                match &verdict {
                    Ok(v) => {
                        for (i, r) in v.recipients.iter().enumerate() {
                            let verified = msg.trust.get(i).map(|t| t.verified);
                            tracing::info!(
                                mailbox = %m.name, uid = f.uid, recipient = %r.address,
                                reason = %r.reason, severity = r.severity.as_str(),
                                verified, "bounce recorded"
                            );
                        }
                    }
                    Err(e) => {
                        self.report.unparseable += 1;
                        tracing::warn!(mailbox = %m.name, uid = f.uid, error = %e, "unparseable message left in place");
                    }
                }
                id
            }
            Recorded::Duplicate { id, of } => {
                self.report.messages += 1;
                self.report.duplicates += 1;
                tracing::info!(mailbox = %m.name, uid = f.uid, duplicate_of = of, "message already counted (same bytes)");
                id
            }
            Recorded::AlreadyDone => return Ok(()),
        };
        tracing::debug!(mailbox = %m.name, uid = f.uid, kind, after = %after, "message stored");
        if after != After::None {
            self.owed.push((after, f.uid, id));
        }
        Ok(())
    }

    /// Record a message the server failed to return `attempts` times as
    /// unparseable, so that it stops blocking the mailbox; it stays on the
    /// server (no after-action).
    async fn unreadable(&mut self, uid: u32, attempts: u32) -> Result<(), PassError> {
        let m = self.m;
        let now = store::now();
        let msg = NewMessage {
            mailbox: &m.name,
            uidvalidity: self.uidvalidity,
            uid,
            size: 0,
            internal_date: None,
            date: None,
            // Unique, so it never matches a real message's fingerprint.
            fingerprint: format!("unreadable:{}:{uid}", self.uidvalidity),
            after_action: After::None.to_string(),
            trust: Vec::new(),
        };
        let verdict = Err(ClassifyError::Unparseable(format!(
            "the IMAP server failed to return this message {attempts} times; left on the server"
        )));
        if let Recorded::Stored { .. } = self.store.record(&msg, &verdict, self.policy, now).await?
        {
            self.report.messages += 1;
            self.report.unparseable += 1;
            tracing::error!(mailbox = %m.name, uid, attempts, "message the server cannot return: recorded as unparseable, left in place");
        }
        Ok(())
    }
}

/// One pass over one mailbox on an open connection.
pub async fn pass(
    source: &mut ImapSource,
    m: &MailboxConfig,
    policy: &PolicyConfig,
    store: &Store,
    stop: &watch::Receiver<bool>,
) -> Result<MailboxPass, PassFailed> {
    let started = store::now();
    let clock = Instant::now();
    let mut report = MailboxPass::default();
    let mut result = pass_inner(source, m, policy, store, stop, started, &mut report).await;
    if result.is_ok() {
        if let Err(e) = store.end_pass(&m.name, started, Ok(report.messages)).await {
            result = Err(e.into());
        }
    }
    let p = report;
    match result {
        Ok(()) => {
            metrics::global().pass_succeeded(&m.name, store::now());
            if p.messages > 0 || p.resumed > 0 {
                let secs = clock.elapsed().as_secs_f64();
                tracing::info!(
                    mailbox = %m.name,
                    messages = p.messages,
                    events = p.events,
                    duplicates = p.duplicates,
                    unparseable = p.unparseable,
                    resumed = p.resumed,
                    seconds = secs,
                    per_second = if secs > 0.0 { p.messages as f64 / secs } else { 0.0 },
                    "pass done"
                );
            }
            Ok(p)
        }
        Err(error) => {
            metrics::global().pass_failed(&m.name);
            // No last_success: only a pass that saw every command's tagged
            // OK is a success. What it committed stays counted. (The error
            // itself is logged by the caller, once per distinct error.)
            if p.messages > 0 {
                tracing::info!(
                    mailbox = %m.name,
                    committed = p.messages,
                    events = p.events,
                    "pass failed after committing messages; they stay counted"
                );
            }
            let _ = store
                .end_pass(&m.name, started, Err(&error.to_string()))
                .await;
            Err(PassFailed {
                error,
                committed: p,
            })
        }
    }
}

async fn pass_inner(
    source: &mut ImapSource,
    m: &MailboxConfig,
    policy: &PolicyConfig,
    store: &Store,
    stop: &watch::Receiver<bool>,
    started: i64,
    report: &mut MailboxPass,
) -> Result<(), PassError> {
    let selected = source.select(&m.folder).await?;
    let uidvalidity = selected.uidvalidity;
    let previous = store.begin_pass(&m.name, uidvalidity, started).await?;
    if let Some(prev) = previous.filter(|p| *p != uidvalidity) {
        let abandoned = store.abandon_stale_after(&m.name, uidvalidity).await?;
        tracing::warn!(
            mailbox = %m.name, folder = %m.folder, old = prev, new = uidvalidity, abandoned,
            "UIDVALIDITY changed: messages will be re-read and recognised by fingerprint"
        );
    }

    // Owed after-actions from a run that died between commit and action.
    let pending = store.pending_after(&m.name, uidvalidity).await?;
    if !pending.is_empty() {
        let owed = pending
            .into_iter()
            .map(|p| {
                let after = imap::parse_after(&p.action).unwrap_or(After::None);
                (after, p.uid, p.id)
            })
            .collect();
        report.resumed = settle(source, store, owed).await?;
        tracing::info!(mailbox = %m.name, count = report.resumed, "re-applied owed after-actions");
    }

    let done = store.processed_uids(&m.name, uidvalidity).await?;
    let new: Vec<u32> = source
        .uids()
        .await?
        .into_iter()
        .filter(|u| !done.contains(u))
        .collect();
    if !new.is_empty() {
        tracing::debug!(mailbox = %m.name, count = new.len(), "new messages");
    }
    let suspects = store.suspects(&m.name, uidvalidity).await?;
    let (careful, normal): (Vec<u32>, Vec<u32>) =
        new.iter().partition(|u| suspects.contains_key(u));
    let mut seen_in_pass: HashSet<u32> = HashSet::new();
    // After-actions are applied in groups across FETCH batches: on a large
    // maildir every MOVE/EXPUNGE makes the server rewrite its index, so 20
    // commands of 500 UIDs are far cheaper than 200 of 50. What is owed is
    // in the database already (after_done = 0), so waiting risks nothing.
    let mut owed = Vec::new();
    let mut last_settle = Instant::now();
    let mut ctx = Ctx {
        m,
        policy,
        store,
        uidvalidity,
        report,
        owed: &mut owed,
        seen: &mut seen_in_pass,
    };

    // Messages the server failed to return before: one at a time, so that
    // a broken one is found and set aside instead of failing every pass.
    for uid in careful {
        if *stop.borrow() {
            ctx.report.interrupted = true;
            break;
        }
        let attempts = suspects.get(&uid).copied().unwrap_or(0);
        if attempts >= MAX_FETCH_ATTEMPTS {
            ctx.unreadable(uid, attempts).await?;
            continue;
        }
        let one = async {
            let sizes = source.sizes(&[uid]).await?;
            let bytes = sizes
                .first()
                .map_or(0, |(_, size)| u64::from((*size).min(m.max_message_size)));
            source.fetch(&[uid], m.max_message_size, bytes).await
        };
        match one.await {
            Ok(fetched) if fetched.is_empty() => {
                // Answered OK without the message. If it is still there, the
                // server failed to return it: an attempt of its own.
                let still_there = source.uids().await?.binary_search(&uid).is_ok();
                if still_there {
                    store
                        .note_fetch_failure(
                            &m.name,
                            uidvalidity,
                            &[uid],
                            true,
                            "the server answered the FETCH without the message",
                            store::now(),
                        )
                        .await?;
                    tracing::warn!(mailbox = %m.name, uid, attempts = attempts + 1, "server answered the FETCH without the message");
                }
            }
            Ok(fetched) => {
                for f in fetched {
                    ctx.process(f).await?;
                }
            }
            Err(e) => {
                let solo = e.is_server_refusal();
                store
                    .note_fetch_failure(
                        &m.name,
                        uidvalidity,
                        &[uid],
                        solo,
                        &e.to_string(),
                        store::now(),
                    )
                    .await?;
                tracing::warn!(mailbox = %m.name, uid, attempts = attempts + u32::from(solo), error = %e, "server failed to return a message");
                return Err(e.into());
            }
        }
    }

    // The rest in batches; a failed command lists its UIDs as suspects.
    let mut sizes = Vec::with_capacity(normal.len());
    for chunk in normal.chunks(1000) {
        match source.sizes(chunk).await {
            Ok(s) => sizes.extend(s),
            // Network trouble says nothing about the messages; a server
            // refusal may be one broken message among them.
            Err(e) if !e.is_server_refusal() => return Err(e.into()),
            Err(e) => {
                store
                    .note_fetch_failure(
                        &m.name,
                        uidvalidity,
                        chunk,
                        false,
                        &e.to_string(),
                        store::now(),
                    )
                    .await?;
                return Err(e.into());
            }
        }
    }
    for Batch {
        uids: batch,
        bytes,
        oversized,
    } in plan_batches(&sizes, m.max_message_size)
    {
        if *stop.borrow() {
            ctx.report.interrupted = true;
            break;
        }
        if oversized {
            tracing::warn!(
                mailbox = %m.name, uid = ?batch.first(), limit = m.max_message_size,
                "message larger than the limit: classifying its first bytes only"
            );
        }
        let t = Instant::now();
        let fetched = match source.fetch(&batch, m.max_message_size, bytes).await {
            Ok(f) => f,
            Err(e) if !e.is_server_refusal() => return Err(e.into()),
            Err(e) => {
                store
                    .note_fetch_failure(
                        &m.name,
                        uidvalidity,
                        &batch,
                        false,
                        &e.to_string(),
                        store::now(),
                    )
                    .await?;
                return Err(e.into());
            }
        };
        tracing::trace!(mailbox = %m.name, count = fetched.len(), ms = t.elapsed().as_millis() as u64, "fetched");
        if fetched.len() < batch.len() {
            // Fewer messages than asked: expunged meanwhile, or the server
            // failed to return them. Either way they are not done; listed
            // here, they are fetched one by one next pass, and one the
            // server keeps failing to return is set aside.
            let missing: Vec<u32> = batch
                .iter()
                .copied()
                .filter(|u| fetched.binary_search_by_key(u, |f| f.uid).is_err())
                .collect();
            tracing::warn!(mailbox = %m.name, missing = missing.len(), first = ?missing.first(), "the server returned fewer messages than asked");
            store
                .note_fetch_failure(
                    &m.name,
                    uidvalidity,
                    &missing,
                    false,
                    "the server answered the FETCH without the message",
                    store::now(),
                )
                .await?;
        }
        for f in fetched {
            ctx.process(f).await?;
            if *stop.borrow() {
                ctx.report.interrupted = true;
                break;
            }
        }
        tracing::trace!(mailbox = %m.name, ms = t.elapsed().as_millis() as u64, "batch stored");
        if ctx.owed.len() >= SETTLE_EVERY || last_settle.elapsed() >= SETTLE_AFTER {
            let t = Instant::now();
            settle(source, store, std::mem::take(ctx.owed)).await?;
            tracing::trace!(mailbox = %m.name, ms = t.elapsed().as_millis() as u64, "settled");
            last_settle = Instant::now();
        }
        if ctx.report.interrupted {
            break;
        }
    }
    settle(source, store, owed).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let first = backoff(0, true);
        assert!(
            first >= BACKOFF_FIRST / 2 && first <= BACKOFF_FIRST,
            "{first:?}"
        );
        let late = backoff(30, true);
        assert!(late <= BACKOFF_CAP && late >= BACKOFF_CAP / 2, "{late:?}");
        assert!(backoff(0, false) >= BACKOFF_AUTH / 2);
    }

    #[test]
    fn batches_respect_count_bytes_and_the_size_cap() {
        let cap = crate::config::MAX_MESSAGE_BYTES;
        let small: Vec<(u32, u32)> = (1..=120).map(|u| (u, 1000)).collect();
        let b = plan_batches(&small, cap);
        assert_eq!(
            b.iter()
                .map(|b| (b.uids.len(), b.bytes))
                .collect::<Vec<_>>(),
            [(50, 50_000), (50, 50_000), (20, 20_000)]
        );
        let mb = 1024 * 1024;
        let mixed = [(1, 6 * mb), (2, 6 * mb), (3, 6 * mb), (4, 50 * mb), (5, 10)];
        let b = plan_batches(&mixed, cap);
        let got: Vec<_> = b.iter().map(|b| (b.uids.clone(), b.oversized)).collect();
        assert_eq!(
            got,
            [(vec![1, 2], false), (vec![4], true), (vec![3, 5], false)]
        );
        assert_eq!(b[1].bytes, u64::from(cap));
        assert!(plan_batches(&[], cap).is_empty());
    }

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn date_header_only_when_plausible() {
        let now = 1_800_000_000;
        let raw = b"Date: Mon, 23 Nov 2026 04:00:00 +0000\r\nSubject: x\r\n\r\nbody";
        assert_eq!(date_header(raw, now), Some(1_795_406_400));
        assert_eq!(
            date_header(b"Date: Mon, 1 Jan 1990 00:00:00 +0000\r\n\r\n", now),
            None
        );
        assert_eq!(date_header(b"\x00\x01garbage", now), None);
    }
}
