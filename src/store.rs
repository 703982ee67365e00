//! The SQLite store: processed messages, bounce events, address verdicts.
//!
//! (The daemon branch fills in the bodies; the signatures below are the
//! contract the command line relies on.)

use crate::config::DatabaseConfig;
use crate::policy::{Action, AddressStatus};
use serde::Serialize;

/// A store error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// The database handle.
#[derive(Debug, Clone)]
pub struct Store {
    pool: sqlx::SqlitePool,
}

/// Which addresses `addresses` returns.
#[derive(Debug, Clone, Default)]
pub struct AddressFilter {
    /// Only this action.
    pub action: Option<Action>,
    /// Only this status.
    pub status: Option<AddressStatus>,
}

/// One row of the `addresses` table, as the CLI prints it.
#[derive(Debug, Clone, Serialize)]
pub struct AddressRow {
    /// The address (lower-case domain).
    pub address: String,
    /// `hard_fail` or `soft_fail`.
    pub status: String,
    /// `remove` or `keep`.
    pub action: String,
    /// Hard bounces recorded.
    pub hard_count: i64,
    /// Soft bounces recorded.
    pub soft_count: i64,
    /// First bounce, RFC 3339 UTC.
    pub first_bounce: String,
    /// Last bounce, RFC 3339 UTC.
    pub last_bounce: String,
    /// The reason of the last bounce.
    pub last_reason: String,
    /// Why the action, in words.
    pub why: String,
}

impl Store {
    /// Open (creating if needed) the database, set WAL mode and the busy
    /// timeout, and apply the migrations.
    pub async fn open(config: &DatabaseConfig) -> Result<Store, StoreError> {
        let _ = config;
        todo!()
    }

    /// The address verdicts, filtered, ordered by address.
    pub async fn addresses(&self, filter: &AddressFilter) -> Result<Vec<AddressRow>, StoreError> {
        let _ = (filter, &self.pool);
        todo!()
    }
}
