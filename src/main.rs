//! The `bounced` command line: parses arguments and calls the library.

use bounced::commands::{self, AddressesArgs, ChangesArgs, OutputFormat};
use bounced::policy::{Action, AddressStatus};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Reads a bounce mailbox over IMAP, classifies every failed recipient and
/// keeps a removal list in SQLite.
#[derive(Parser)]
#[command(name = "bounced", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: watch every configured mailbox.
    Run {
        /// The configuration file.
        #[arg(long, default_value = bounced::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
        /// Make one pass over every mailbox and exit (0 when all went well).
        #[arg(long)]
        once: bool,
    },
    /// Classify message files offline and print one JSON object per message.
    Classify {
        /// Message files, directories (maildirs included) or `-` for stdin.
        #[arg(default_value = "-")]
        paths: Vec<PathBuf>,
        /// Print a human-readable explanation instead of JSON.
        #[arg(long)]
        explain: bool,
    },
    /// Print the addresses that bounced, for list cleanup.
    Addresses {
        /// The configuration file (its database is read).
        #[arg(long, conflicts_with = "db")]
        config: Option<PathBuf>,
        /// The SQLite database file to read, instead of a config.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Only addresses with this action.
        #[arg(long, value_enum)]
        action: Option<ActionArg>,
        /// Only addresses with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only addresses whose verdict rests on a verified (signed) bounce
        /// (`yes`), or on unverified ones only (`no`).
        #[arg(long, value_enum)]
        verified: Option<YesNo>,
        /// Only addresses whose action or status changed at or after TIME
        /// (RFC 3339, a date such as 2026-12-01, or a duration ago: 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only addresses at this domain.
        #[arg(long)]
        domain: Option<String>,
        /// Only addresses whose verdict rests on this reason (userunknown, mailboxfull, ...).
        #[arg(long)]
        reason: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
    },
    /// Print the verdict changes after a seq, oldest first, for a sync job
    /// that remembers the last seq it saw.
    Changes {
        /// The configuration file (its database is read).
        #[arg(long, conflicts_with = "db")]
        config: Option<PathBuf>,
        /// The SQLite database file to read, instead of a config.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Only the changes after this seq (0: all).
        #[arg(long, value_name = "SEQ", default_value_t = 0)]
        since: i64,
        /// Output format (json: JSON Lines, each with its seq).
        #[arg(long, value_enum, default_value = "text")]
        format: FormatArg,
    },
    /// Forgive an address: its bounces so far stop counting (a later one
    /// counts afresh) and its verdict becomes keep, recorded as a change.
    Forgive {
        /// The address.
        address: String,
        /// Why, kept with the change (e.g. "re-subscribed by phone").
        #[arg(long)]
        note: Option<String>,
        /// The configuration file (its database is written).
        #[arg(long, conflicts_with = "db")]
        config: Option<PathBuf>,
        /// The SQLite database file to write, instead of a config.
        #[arg(long)]
        db: Option<PathBuf>,
    },
    /// Print the signed return path (VERP) to use when sending to ADDRESS.
    Verp {
        /// The recipient the message is sent to.
        address: String,
        /// The list the message belongs to (a-z, 0-9, - and _).
        #[arg(long, default_value = "")]
        list: String,
        /// Print an `X-Bounced-Token:` header line instead, for senders that
        /// cannot set the envelope sender.
        #[arg(long)]
        header: bool,
        /// The configuration file (its `[verify]` section holds the keys).
        #[arg(long, default_value = bounced::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Per-mailbox figures from the database: last success, messages by
    /// kind, bounces by reason, errors.
    Stats {
        /// The configuration file (its database is read).
        #[arg(long, conflicts_with = "db")]
        config: Option<PathBuf>,
        /// The SQLite database file to read, instead of a config.
        #[arg(long)]
        db: Option<PathBuf>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate a configuration file and print it resolved, secrets masked.
    CheckConfig {
        /// The configuration file.
        #[arg(long, default_value = bounced::config::DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ActionArg {
    Remove,
    Keep,
}

#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
enum StatusArg {
    HardFail,
    SoftFail,
    Complained,
    Forgiven,
}

#[derive(Clone, Copy, ValueEnum)]
enum YesNo {
    Yes,
    No,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Text,
    Csv,
    Json,
}

impl From<FormatArg> for OutputFormat {
    fn from(f: FormatArg) -> OutputFormat {
        match f {
            FormatArg::Text => OutputFormat::Text,
            FormatArg::Csv => OutputFormat::Csv,
            FormatArg::Json => OutputFormat::Json,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { config, once } => commands::run(&config, once),
        Command::Classify { paths, explain } => commands::classify(&paths, explain),
        Command::Addresses {
            config,
            db,
            action,
            status,
            verified,
            since,
            domain,
            reason,
            format,
        } => commands::addresses(&AddressesArgs {
            config,
            db,
            action: action.map(|a| match a {
                ActionArg::Remove => Action::Remove,
                ActionArg::Keep => Action::Keep,
            }),
            status: status.map(|s| match s {
                StatusArg::HardFail => AddressStatus::HardFail,
                StatusArg::SoftFail => AddressStatus::SoftFail,
                StatusArg::Complained => AddressStatus::Complained,
                StatusArg::Forgiven => AddressStatus::Forgiven,
            }),
            verified: verified.map(|v| matches!(v, YesNo::Yes)),
            since,
            domain,
            reason,
            format: format.into(),
        }),
        Command::Changes {
            config,
            db,
            since,
            format,
        } => commands::changes(&ChangesArgs {
            config,
            db,
            since,
            format: format.into(),
        }),
        Command::Forgive {
            address,
            note,
            config,
            db,
        } => commands::forgive(config.as_deref(), db.as_deref(), &address, note.as_deref()),
        Command::Verp {
            address,
            list,
            header,
            config,
        } => commands::verp(&config, &address, &list, header),
        Command::Stats { config, db, json } => {
            commands::stats(config.as_deref(), db.as_deref(), json)
        }
        Command::CheckConfig { config } => commands::check_config(&config),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("bounced: {e:#}");
            ExitCode::FAILURE
        }
    }
}
