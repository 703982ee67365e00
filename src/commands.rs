//! The implementations behind the command line.
//!
//! Each function returns the process exit code, or an error that `main`
//! prints with its context chain. They are in the library so that they can
//! be tested and reused; `main.rs` only maps arguments onto them.

use crate::classify::{self, Verdict};
use crate::config::{Config, DatabaseConfig, LogConfig, LogFormat};
use crate::parse;
use crate::policy::{Action, AddressStatus};
use crate::store::{AddressFilter, AddressRow, ChangeRow, Store};
use anyhow::{bail, Context};
use serde::Serialize;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `bounced run`: load the config, start logging, run the daemon.
pub fn run(config_path: &Path, once: bool) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    init_logging(&config.log);
    for warning in &config.warnings {
        tracing::warn!(config = %config.source.display(), "{warning}");
    }
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let report = runtime.block_on(crate::daemon::run(&config, once))?;
    if !once {
        return Ok(ExitCode::SUCCESS);
    }
    for (mailbox, error) in &report.mailboxes_failed {
        eprintln!("bounced: mailbox {mailbox}: {error}");
    }
    println!(
        "bounced: pass done: {} of {} mailboxes ok, {} new messages, {} recipient events",
        report.mailboxes_ok,
        report.mailboxes_ok + report.mailboxes_failed.len(),
        report.messages,
        report.bounces
    );
    Ok(if report.mailboxes_failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Start `tracing` output on stderr, text or JSON; `RUST_LOG` overrides the level.
pub fn init_logging(log: &LogConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    // A second call (tests) keeps the first subscriber.
    let _ = match log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// One line of `bounced classify` output.
#[derive(Debug, Serialize)]
pub struct ClassifyLine<'a> {
    /// The file the message came from (`-` for stdin).
    pub source: String,
    /// The verdict's fields, flattened; absent when the message was unparseable.
    #[serde(flatten)]
    pub verdict: Option<&'a Verdict>,
    /// Why the message could not be classified, if it could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `bounced classify`: classify files, directories (maildirs) or stdin.
///
/// Prints one JSON object per message (or an explanation with `explain`).
/// A path that cannot be read is reported on stderr, the rest still printed,
/// and the exit code is then non-zero.
pub fn classify(paths: &[PathBuf], explain: bool) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut failed = false;
    let mut files = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            files.push(path.clone());
        } else if path.is_dir() {
            if let Err(e) = collect_messages(path, &mut files) {
                eprintln!("bounced: cannot read directory {}: {e}", path.display());
                failed = true;
            }
        } else {
            files.push(path.clone());
        }
    }
    for file in &files {
        let bytes = if file.as_os_str() == "-" {
            let mut buf = Vec::new();
            io::stdin().read_to_end(&mut buf).map(|_| buf)
        } else {
            std::fs::read(file)
        };
        let bytes = match bytes {
            Ok(b) => b,
            Err(e) => {
                eprintln!("bounced: cannot read {}: {e}", file.display());
                failed = true;
                continue;
            }
        };
        let messages = parse::split_mbox(&bytes);
        let several = messages.len() > 1;
        for (n, message) in messages.into_iter().enumerate() {
            // Messages of an mbox file are told apart by their position.
            let source = if several {
                format!("{}#{}", file.display(), n + 1)
            } else {
                file.display().to_string()
            };
            write_verdict(&mut out, source, message, explain)?;
        }
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Classify one message and print its verdict (JSON line or explanation).
fn write_verdict(
    out: &mut impl Write,
    source: String,
    message: &[u8],
    explain: bool,
) -> anyhow::Result<()> {
    let result = classify::classify(message);
    if explain {
        write_explanation(out, &source, &result)?;
    } else {
        let line = match &result {
            Ok(v) => ClassifyLine {
                source,
                verdict: Some(v),
                error: None,
            },
            Err(e) => ClassifyLine {
                source,
                verdict: None,
                error: Some(e.to_string()),
            },
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn write_explanation(
    out: &mut impl Write,
    source: &str,
    result: &Result<Verdict, classify::ClassifyError>,
) -> io::Result<()> {
    writeln!(out, "{source}")?;
    let v = match result {
        Ok(v) => v,
        Err(e) => return writeln!(out, "  error: {e}\n"),
    };
    writeln!(out, "  kind: {}", v.kind)?;
    if let Some(id) = &v.original_message_id {
        writeln!(out, "  original message: {id}")?;
    }
    for e in &v.evidence {
        writeln!(out, "  because: {e}")?;
    }
    for r in &v.recipients {
        writeln!(
            out,
            "  {} -> {} ({})",
            r.address,
            r.reason,
            r.severity.as_str()
        )?;
        let fields = [
            ("status", r.status.clone()),
            ("reply", r.reply_code.map(|c| c.to_string())),
            ("command", r.command.clone()),
            ("action", r.action.clone()),
            ("remote mta", r.remote_mta.clone()),
            ("diagnostic", r.diagnostic.clone()),
            ("feedback type", r.feedback_type.clone()),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                writeln!(out, "    {name}: {value}")?;
            }
        }
        for e in &r.evidence {
            writeln!(out, "    because: {e}")?;
        }
    }
    writeln!(out)
}

/// Every message file below `dir`, sorted. In a maildir only `cur/` and
/// `new/` hold messages (`tmp/` is mail still being written, and the server's
/// index files are not mail).
pub fn collect_messages(dir: &Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    let is_maildir = dir.join("cur").is_dir() && dir.join("new").is_dir();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            if is_maildir && name == "tmp" {
                continue;
            }
            collect_messages(&path, files)?;
        } else if meta.is_file() && !is_maildir && !name.starts_with('.') {
            // Files directly inside a maildir root are the server's, not mail.
            files.push(path);
        }
    }
    Ok(())
}

/// The output format of `bounced addresses`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Text,
    /// RFC 4180 CSV with a header line.
    Csv,
    /// JSON Lines, one object per address.
    Json,
}

/// The arguments of `bounced addresses`.
#[derive(Debug, Clone)]
pub struct AddressesArgs {
    /// A config file whose database to read.
    pub config: Option<PathBuf>,
    /// A database file to read instead.
    pub db: Option<PathBuf>,
    /// Only this action.
    pub action: Option<Action>,
    /// Only this status.
    pub status: Option<AddressStatus>,
    /// Only addresses whose verdict rests (or not) on a verified bounce.
    pub verified: Option<bool>,
    /// Only addresses whose action or status changed at or after this time
    /// (`--since`: RFC 3339, `YYYY-MM-DD` or a duration ago such as `7d`).
    pub since: Option<String>,
    /// Only addresses at this domain.
    pub domain: Option<String>,
    /// Only addresses whose verdict rests on this reason.
    pub reason: Option<String>,
    /// How to print.
    pub format: OutputFormat,
}

/// The arguments of `bounced changes`.
#[derive(Debug, Clone)]
pub struct ChangesArgs {
    /// A config file whose database to read.
    pub config: Option<PathBuf>,
    /// A database file to read instead.
    pub db: Option<PathBuf>,
    /// Print the changes after this seq (the last one a sync job saw).
    pub since: i64,
    /// How to print.
    pub format: OutputFormat,
}

/// Read a time given on the command line: RFC 3339 (`2026-12-01T00:00:00Z`),
/// a date (`2026-12-01`, midnight UTC) or a duration before `now` (`7d`).
pub fn parse_time(text: &str, now: i64) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        if let Some(t) = d.and_hms_opt(0, 0, 0) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(d) = humantime::parse_duration(text) {
        return Ok(now.saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    }
    bail!("{text:?} is not a time: give RFC 3339 (2026-12-01T00:00:00Z), a date (2026-12-01) or a duration ago (7d)")
}

/// The database a read-only command uses: `--db FILE`, else the config's.
fn database_of(db: Option<&Path>, config: Option<&Path>) -> anyhow::Result<DatabaseConfig> {
    Ok(match (db, config) {
        (Some(db), _) => {
            if !db.is_file() {
                bail!("database {} does not exist", db.display());
            }
            DatabaseConfig {
                url: format!("sqlite://{}", db.display()),
                busy_timeout: Duration::from_secs(30),
            }
        }
        (None, config) => {
            let path = config.unwrap_or(Path::new(crate::config::DEFAULT_CONFIG_PATH));
            Config::load(path)?.database
        }
    })
}

/// `bounced addresses`: print the address verdicts.
pub fn addresses(args: &AddressesArgs) -> anyhow::Result<ExitCode> {
    let database = database_of(args.db.as_deref(), args.config.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    if let Some(reason) = &args.reason {
        reason
            .parse::<classify::Reason>()
            .map_err(|e| anyhow::anyhow!("--reason: {e}"))?;
    }
    let since = match &args.since {
        Some(text) => Some(parse_time(text, crate::store::now()).context("--since")?),
        None => None,
    };
    let filter = AddressFilter {
        action: args.action,
        status: args.status,
        verified: args.verified,
        since,
        domain: args.domain.clone(),
        reason: args.reason.clone(),
    };
    let rows = runtime
        .block_on(async {
            let store = Store::open(&database).await?;
            store.addresses(&filter).await
        })
        .with_context(|| format!("cannot read addresses from {}", database.url))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    write_addresses(&mut out, &rows, args.format)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Print address rows in a format.
pub fn write_addresses(
    out: &mut impl Write,
    rows: &[AddressRow],
    format: OutputFormat,
) -> io::Result<()> {
    match format {
        OutputFormat::Json => {
            for row in rows {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Csv => {
            writeln!(
                out,
                "address,status,action,hard_count,soft_count,first_bounce,last_bounce,last_reason,verified,why,reason,changed_at"
            )?;
            for r in rows {
                let fields = [
                    csv_field(&r.address),
                    csv_field(&r.status),
                    csv_field(&r.action),
                    r.hard_count.to_string(),
                    r.soft_count.to_string(),
                    csv_field(&r.first_bounce),
                    csv_field(&r.last_bounce),
                    csv_field(&r.last_reason),
                    r.verified.to_string(),
                    csv_field(&r.why),
                    csv_field(&r.reason),
                    csv_field(&r.changed_at),
                ];
                writeln!(out, "{}", fields.join(","))?;
            }
        }
        OutputFormat::Text => {
            if rows.is_empty() {
                return writeln!(out, "(no bounced addresses)");
            }
            let width = rows
                .iter()
                .map(|r| r.address.chars().count())
                .max()
                .unwrap_or(7)
                .max(7);
            writeln!(
                out,
                "{:<width$}  {:<9}  {:<6}  {:>4}  {:>4}  {:<15}  {:<20}  WHY",
                "ADDRESS", "STATUS", "ACTION", "HARD", "SOFT", "REASON", "LAST BOUNCE"
            )?;
            for r in rows {
                writeln!(
                    out,
                    "{:<width$}  {:<9}  {:<6}  {:>4}  {:>4}  {:<15}  {:<20}  {}",
                    r.address,
                    r.status,
                    r.action,
                    r.hard_count,
                    r.soft_count,
                    r.reason,
                    r.last_bounce,
                    r.why
                )?;
            }
        }
    }
    Ok(())
}

/// `bounced changes`: print the verdict changes after `--since SEQ`.
pub fn changes(args: &ChangesArgs) -> anyhow::Result<ExitCode> {
    let database = database_of(args.db.as_deref(), args.config.as_deref())?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let rows = runtime
        .block_on(async {
            let store = Store::open(&database).await?;
            store.changes(args.since, i64::MAX).await
        })
        .with_context(|| format!("cannot read verdict changes from {}", database.url))?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    write_changes(&mut out, &rows, args.format)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `bounced forgive`: reset an address's verdict to keep.
pub fn forgive(
    config: Option<&Path>,
    db: Option<&Path>,
    address: &str,
    note: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let database = database_of(db, config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let seq = runtime
        .block_on(async {
            let store = Store::open(&database).await?;
            store.forgive(address, note, crate::store::now()).await
        })
        .with_context(|| format!("cannot forgive {address} in {}", database.url))?;
    match seq {
        Some(seq) => println!("bounced: forgave {address} (change {seq})"),
        None => println!("bounced: {address} was already forgiven; earlier bounces reset again"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Print verdict changes in a format.
pub fn write_changes(
    out: &mut impl Write,
    rows: &[ChangeRow],
    format: OutputFormat,
) -> io::Result<()> {
    let none = String::new();
    match format {
        OutputFormat::Json => {
            for row in rows {
                serde_json::to_writer(&mut *out, row)?;
                out.write_all(b"\n")?;
            }
        }
        OutputFormat::Csv => {
            writeln!(
                out,
                "seq,changed_at,address,old_action,new_action,old_status,new_status,reason,cause,why,note"
            )?;
            for r in rows {
                let fields = [
                    r.seq.to_string(),
                    csv_field(&r.changed_at),
                    csv_field(&r.address),
                    csv_field(r.old_action.as_ref().unwrap_or(&none)),
                    csv_field(&r.new_action),
                    csv_field(r.old_status.as_ref().unwrap_or(&none)),
                    csv_field(&r.new_status),
                    csv_field(&r.reason),
                    csv_field(&r.cause),
                    csv_field(&r.why),
                    csv_field(r.note.as_ref().unwrap_or(&none)),
                ];
                writeln!(out, "{}", fields.join(","))?;
            }
        }
        OutputFormat::Text => {
            if rows.is_empty() {
                return writeln!(out, "(no verdict changes)");
            }
            let width = rows
                .iter()
                .map(|r| r.address.chars().count())
                .max()
                .unwrap_or(7)
                .max(7);
            writeln!(
                out,
                "{:>6}  {:<20}  {:<width$}  {:<14}  {:<10}  WHY",
                "SEQ", "TIME", "ADDRESS", "ACTION", "CAUSE"
            )?;
            for r in rows {
                let action = format!(
                    "{} -> {}",
                    r.old_action.as_deref().unwrap_or("new"),
                    r.new_action
                );
                writeln!(
                    out,
                    "{:>6}  {:<20}  {:<width$}  {:<14}  {:<10}  {}",
                    r.seq, r.changed_at, r.address, action, r.cause, r.why
                )?;
            }
        }
    }
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `bounced verp`: print the signed return path (or token header) for a recipient.
pub fn verp(
    config_path: &Path,
    address: &str,
    list: &str,
    header: bool,
) -> anyhow::Result<ExitCode> {
    let config = Config::load(config_path)?;
    let verify = config.policy.verify.as_ref().with_context(|| {
        format!(
            "config file {}: key `verify`: no [verify] section, so there is no signing key",
            config.source.display()
        )
    })?;
    let now = crate::store::now();
    let line = if header {
        let token = verify.keyring.token(address, list, now)?;
        format!("{}: {token}", crate::verp::TOKEN_HEADER)
    } else {
        let base = verify.return_path.as_deref().with_context(|| {
            format!(
                "config file {}: key `verify.return_path`: not set (e.g. \"bounces@example.org\")",
                config.source.display()
            )
        })?;
        verify.keyring.return_path(base, address, list, now)?
    };
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// `bounced stats`: per-mailbox figures from the database.
pub fn stats(config: Option<&Path>, db: Option<&Path>, json: bool) -> anyhow::Result<ExitCode> {
    let database = database_of(db, config)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let (states, counts) = runtime
        .block_on(async {
            let store = Store::open(&database).await?;
            Ok::<_, crate::store::StoreError>((
                store.mailbox_states().await?,
                store.counts().await?,
            ))
        })
        .with_context(|| format!("cannot read stats from {}", database.url))?;
    let mut mailboxes: Vec<String> = states.iter().map(|s| s.mailbox.clone()).collect();
    for (mailbox, ..) in &counts {
        if !mailboxes.contains(mailbox) {
            mailboxes.push(mailbox.clone());
        }
    }
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    if json {
        let list: Vec<_> = mailboxes
            .iter()
            .map(|m| {
                let state = states.iter().find(|s| &s.mailbox == m);
                let pick = |what: &str| -> serde_json::Map<String, serde_json::Value> {
                    counts
                        .iter()
                        .filter(|(mb, w, ..)| mb == m && w == what)
                        .map(|(_, _, name, n)| (name.clone(), (*n).into()))
                        .collect()
                };
                serde_json::json!({
                    "mailbox": m,
                    "state": state,
                    "messages_by_kind": pick("kind"),
                    "events_by_reason": pick("reason"),
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &list)?;
        writeln!(out)?;
    } else if mailboxes.is_empty() {
        writeln!(out, "(no mailbox has been processed yet)")?;
    } else {
        for m in &mailboxes {
            writeln!(out, "mailbox {m}")?;
            if let Some(s) = states.iter().find(|s| &s.mailbox == m) {
                let or_never = |v: &Option<String>| v.clone().unwrap_or_else(|| "never".into());
                writeln!(out, "  last success: {}", or_never(&s.last_success))?;
                writeln!(out, "  last attempt: {}", or_never(&s.last_attempt))?;
                if let Some(e) = &s.last_error {
                    writeln!(out, "  last error:   {e}")?;
                }
                writeln!(out, "  last pass:    {} new messages", s.last_messages)?;
            }
            for (what, title) in [
                ("kind", "messages by kind"),
                ("reason", "recipients by reason"),
            ] {
                let rows: Vec<_> = counts
                    .iter()
                    .filter(|(mb, w, ..)| mb == m && w == what)
                    .collect();
                if rows.is_empty() {
                    continue;
                }
                writeln!(out, "  {title}:")?;
                for (_, _, name, n) in rows {
                    writeln!(out, "    {name:<16} {n:>7}")?;
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `bounced check-config`: validate and print the resolved configuration.
pub fn check_config(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let stdout = io::stdout();
    let mut out = stdout.lock();
    write_resolved(&mut out, &config)?;
    Ok(ExitCode::SUCCESS)
}

/// Print a resolved config as TOML-like text, passwords masked.
pub fn write_resolved(out: &mut impl Write, c: &Config) -> io::Result<()> {
    writeln!(out, "# {} is valid", c.source.display())?;
    for w in &c.warnings {
        writeln!(out, "# warning: {w}")?;
    }
    writeln!(out, "[database]")?;
    writeln!(out, "url = {:?}", c.database.url)?;
    writeln!(
        out,
        "busy_timeout = {:?}",
        humantime::format_duration(c.database.busy_timeout).to_string()
    )?;
    for m in &c.mailboxes {
        writeln!(out, "\n[[mailbox]]")?;
        writeln!(out, "name = {:?}", m.name)?;
        writeln!(out, "host = {:?}", m.host)?;
        writeln!(out, "port = {}", m.port)?;
        writeln!(out, "tls = {:?}", format!("{:?}", m.tls).to_lowercase())?;
        if let Some(ca) = &m.ca_file {
            writeln!(out, "ca_file = {:?}", ca.display().to_string())?;
        }
        writeln!(out, "allow_insecure = {}", m.allow_insecure)?;
        writeln!(out, "username = {:?}", m.username)?;
        writeln!(out, "password = \"********\"  # masked")?;
        writeln!(out, "folder = {:?}", m.folder)?;
        writeln!(
            out,
            "poll_interval = {:?}",
            humantime::format_duration(m.poll_interval).to_string()
        )?;
        writeln!(out, "idle = {}", m.idle)?;
        writeln!(out, "after = {:?}", m.after.to_string())?;
        writeln!(out, "after_other = {:?}", m.after_other.to_string())?;
        writeln!(
            out,
            "max_message_size = \"{}KiB\"",
            m.max_message_size / 1024
        )?;
    }
    let p = &c.policy;
    writeln!(out, "\n[policy]")?;
    writeln!(out, "soft_limit = {}", p.soft_limit)?;
    writeln!(
        out,
        "soft_window = {:?}",
        humantime::format_duration(p.soft_window).to_string()
    )?;
    writeln!(out, "soft_min_days = {}", p.soft_min_days)?;
    let mut reasons: Vec<_> = p.soft_reasons.iter().map(|r| r.as_str()).collect();
    reasons.sort_unstable();
    writeln!(out, "soft_reasons = {reasons:?}")?;
    for (reason, rule) in &p.reasons {
        writeln!(out, "\n[policy.reason.{reason}]")?;
        match rule.remove_after {
            Some(n) => writeln!(out, "remove_after = {n}")?,
            None => writeln!(out, "action = {:?}", rule.action.as_str())?,
        }
    }
    if let Some(listen) = &c.metrics_listen {
        writeln!(out, "\n[metrics]\nlisten = \"{listen}\"")?;
    }
    if let Some(v) = &c.policy.verify {
        writeln!(out, "\n[verify]")?;
        writeln!(out, "require = {}", v.require)?;
        if let Some(rp) = &v.return_path {
            writeln!(out, "return_path = {rp:?}")?;
        }
        writeln!(out, "max_age = \"{}d\"", v.max_age_days)?;
        writeln!(
            out,
            "# keys: {:?} (the first signs; secrets not shown)",
            v.keyring.key_ids()
        )?;
    }
    writeln!(out, "\n[log]")?;
    writeln!(
        out,
        "format = {:?}",
        format!("{:?}", c.log.format).to_lowercase()
    )?;
    writeln!(out, "level = {:?}", c.log.level)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_on_the_command_line() {
        let now = 1_800_000_000;
        assert_eq!(
            parse_time("2027-01-15T08:00:00Z", now).unwrap(),
            1_800_000_000
        );
        assert_eq!(
            parse_time("2027-01-15", now).unwrap(),
            1_800_000_000 - 8 * 3600
        );
        assert_eq!(parse_time("7d", now).unwrap(), now - 7 * 86_400);
        let e = parse_time("last tuesday", now).unwrap_err().to_string();
        assert!(e.contains("last tuesday") && e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("a@b.c"), "a@b.c");
        assert_eq!(csv_field("x, \"y\""), "\"x, \"\"y\"\"\"");
    }

    #[test]
    fn maildir_files_are_collected_but_not_server_files() {
        let d = tempfile::tempdir().unwrap();
        let m = d.path().join("box");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(m.join(sub)).unwrap();
        }
        std::fs::write(m.join("cur/1"), "a").unwrap();
        std::fs::write(m.join("new/2"), "b").unwrap();
        std::fs::write(m.join("tmp/3"), "c").unwrap();
        std::fs::write(m.join("dovecot-uidlist"), "x").unwrap();
        std::fs::write(d.path().join("loose.eml"), "y").unwrap();
        let mut files = Vec::new();
        collect_messages(d.path(), &mut files).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["box/cur/1", "box/new/2", "loose.eml"]);
    }
}
