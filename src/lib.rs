//! bounced: reads a bounce mailbox so that mailing-list operators never again
//! hand-read "Undelivered Mail Returned to Sender".
//!
//! The library is organised one concern per module:
//!
//! - [`config`]: the TOML configuration, validated with errors that name the
//!   file and the key;
//! - [`parse`] and [`dsn`]: turning raw bytes into the parts a classifier
//!   reads (RFC 3464 delivery-status fields, text bodies, the returned
//!   original);
//! - [`classify`]: pure classification of a message into a [`classify::Verdict`];
//! - [`policy`]: the pure rules that turn a history of bounces into an
//!   address verdict (hard-fail → remove, soft-fail → keep until a threshold);
//! - [`store`]: the SQLite database (sqlx, migrations in `migrations/`);
//! - [`imap`]: the IMAP source (TLS, login, fetch, after-actions), strict
//!   about completions, timeouts and literal sizes;
//! - [`shutdown`]: the stop signal every task waits on;
//! - [`daemon`]: the processing loop that ties them together, and
//!   [`metrics`]: its Prometheus endpoint;
//! - [`verp`] and [`trust`]: signed return paths and their verification, so
//!   forged bounces unsubscribe no one;
//! - [`commands`]: the implementations behind the command line.
//!
//! `src/main.rs` only parses the command line and calls [`commands`].

pub mod classify;
pub mod commands;
pub mod config;
pub mod daemon;
pub mod dsn;
pub mod imap;
pub mod metrics;
pub mod parse;
pub mod policy;
pub mod shutdown;
pub mod store;
pub mod trust;
pub mod verp;
