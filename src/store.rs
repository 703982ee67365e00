//! The SQLite store: processed messages, bounce events, address verdicts.
//!
//! The schema lives in `migrations/` (every table and column is documented
//! there) and is applied by [`Store::open`]. The one write that matters is
//! [`Store::record`]: a message row, its bounce events and the verdicts of the
//! addresses they touch are written in one `BEGIN IMMEDIATE` transaction, so
//! after a crash a message is either fully accounted for or not at all.

use crate::classify::{ClassifyError, Severity, Verdict};
use crate::config::{DatabaseConfig, PolicyConfig, ReasonAction, ReasonRule};
use crate::policy::{self, Action, AddressStatus};
use serde::Serialize;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, Sqlite, Transaction};
use std::collections::HashSet;
use std::path::Path;
use std::str::FromStr;

/// A store error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// `bounced forgive` named an address with no verdict.
    #[error("{0} has no bounce on record")]
    UnknownAddress(String),
    /// The database directory could not be created.
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
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
    /// Only addresses whose verdict rests (or does not rest) on a verified bounce.
    pub verified: Option<bool>,
    /// Only addresses whose action or status changed at or after this time
    /// (Unix seconds).
    pub since: Option<i64>,
    /// Only addresses at this domain (compared lower-case).
    pub domain: Option<String>,
    /// Only addresses whose verdict rests on this reason.
    pub reason: Option<String>,
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
    /// The reason the verdict rests on (the hard bounce's, else the most
    /// frequent counted soft reason); may differ from `last_reason`.
    pub reason: String,
    /// Why the action, in words.
    pub why: String,
    /// Whether a verified (signed) bounce is among those that decided the action.
    pub verified: bool,
    /// When the action or status last changed, RFC 3339 UTC.
    pub changed_at: String,
}

/// What changed a verdict (`verdict_changes.cause`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// A new bounce was stored.
    Bounce,
    /// A successful-delivery report was stored.
    Delivery,
    /// Counted soft bounces left the window.
    Ageing,
    /// The quiet period passed with no new bounce.
    Quiet,
    /// The policy changed, or `bounced reevaluate`.
    Policy,
    /// `bounced forgive`.
    Forgive,
    /// `bounced reclassify`.
    Reclassify,
}

impl Cause {
    /// The stable name used in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Bounce => "bounce",
            Cause::Delivery => "delivery",
            Cause::Ageing => "ageing",
            Cause::Quiet => "quiet",
            Cause::Policy => "policy",
            Cause::Forgive => "forgive",
            Cause::Reclassify => "reclassify",
        }
    }
}

/// One change of an address's verdict, about to be recorded.
#[derive(Debug, Clone)]
pub struct NewChange<'a> {
    /// The address.
    pub address: &'a str,
    /// The verdict before, `None` for a first verdict.
    pub old: Option<(Action, AddressStatus)>,
    /// The verdict after.
    pub new: (Action, AddressStatus),
    /// The reason the new verdict rests on.
    pub reason: &'a str,
    /// The new verdict's explanation.
    pub why: &'a str,
    /// What changed it.
    pub cause: Cause,
    /// When (Unix seconds).
    pub at: i64,
    /// Free text (`forgive --note`).
    pub note: Option<&'a str>,
}

/// One row of `verdict_changes`, as `bounced changes` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChangeRow {
    /// Strictly increasing, without gaps; the sync key.
    pub seq: i64,
    /// The address.
    pub address: String,
    /// The action before (`None` for a first verdict).
    pub old_action: Option<String>,
    /// The action after.
    pub new_action: String,
    /// The status before (`None` for a first verdict).
    pub old_status: Option<String>,
    /// The status after.
    pub new_status: String,
    /// The reason the new verdict rests on.
    pub reason: String,
    /// The new verdict's explanation.
    pub why: String,
    /// What changed it (`bounce`, `delivery`, `ageing`, `quiet`, `policy`,
    /// `forgive`, `reclassify`).
    pub cause: String,
    /// When, RFC 3339 UTC.
    pub changed_at: String,
    /// Free text given with the change.
    pub note: Option<String>,
}

/// Record one verdict change inside the caller's transaction, taking the
/// next `seq` from the counter row. Because the counter is updated in the
/// same transaction, seqs become visible in commit order with no gaps, also
/// with several writers; returns the seq.
pub async fn record_change(
    tx: &mut Transaction<'static, Sqlite>,
    change: &NewChange<'_>,
) -> Result<i64, StoreError> {
    let seq: i64 = sqlx::query_scalar(
        "UPDATE change_counter SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq",
    )
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO verdict_changes (seq, address, old_action, old_status, new_action, \
             new_status, reason, why, cause, changed_at, note) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )
    .bind(seq)
    .bind(change.address)
    .bind(change.old.map(|(a, _)| a.as_str()))
    .bind(change.old.map(|(_, s)| s.as_str()))
    .bind(change.new.0.as_str())
    .bind(change.new.1.as_str())
    .bind(change.reason)
    .bind(change.why)
    .bind(change.cause.as_str())
    .bind(rfc3339(change.at))
    .bind(change.note)
    .execute(&mut **tx)
    .await?;
    Ok(seq)
}

/// A message as read from the server, ready to be recorded.
#[derive(Debug, Clone)]
pub struct NewMessage<'a> {
    /// The `[[mailbox]]` name.
    pub mailbox: &'a str,
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// The message's UID.
    pub uid: u32,
    /// RFC822.SIZE (or the length of the bytes when the server gave none).
    pub size: u64,
    /// The server's INTERNALDATE, Unix seconds.
    pub internal_date: Option<i64>,
    /// The message's Date header, Unix seconds, when it has a plausible one.
    pub date: Option<i64>,
    /// SHA-256 of the raw bytes, lower-case hex.
    pub fingerprint: String,
    /// The after-action owed for this message (`seen`, `move:F`, `delete`, `none`).
    pub after_action: String,
    /// Signed-bounce verification of each recipient of the verdict, in
    /// order ([`crate::trust::check`]); empty when `[verify]` is off.
    pub trust: Vec<crate::trust::Verification>,
}

/// What [`Store::record`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// A new message row was stored with this many events.
    Stored {
        /// The message row's id.
        id: i64,
        /// Bounce events written.
        events: usize,
        /// Addresses whose verdict was recomputed.
        addresses: usize,
    },
    /// The same bytes were already counted in this mailbox (a UIDVALIDITY
    /// change, or a copy): a row was stored, without events.
    Duplicate {
        /// The message row's id.
        id: i64,
        /// The row of the first copy.
        of: i64,
    },
    /// This mailbox/UIDVALIDITY/UID already has a row (another process, or
    /// an earlier pass): nothing was written.
    AlreadyDone,
}

/// A stored message whose after-action has not been applied yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAfter {
    /// The message row's id.
    pub id: i64,
    /// The UID on the server.
    pub uid: u32,
    /// The action owed (`seen`, `move:F`, `delete`, `none`).
    pub action: String,
}

/// Per-mailbox figures for `bounced stats` and the README.
#[derive(Debug, Clone, Serialize)]
pub struct MailboxState {
    /// The `[[mailbox]]` name.
    pub mailbox: String,
    /// The UIDVALIDITY last seen.
    pub uidvalidity: Option<i64>,
    /// Start of the last successful pass.
    pub last_success: Option<String>,
    /// Start of the last attempted pass.
    pub last_attempt: Option<String>,
    /// The last pass's error, if it failed.
    pub last_error: Option<String>,
    /// Messages newly stored by the last pass.
    pub last_messages: i64,
}

/// Format Unix seconds as RFC 3339 UTC (`2026-11-23T04:30:00Z`).
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Parse an RFC 3339 time back to Unix seconds.
fn parse_rfc3339(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp())
}

/// The current time, Unix seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Open (creating if needed) the database, set WAL mode and the busy
    /// timeout, and apply the migrations.
    pub async fn open(config: &DatabaseConfig) -> Result<Store, StoreError> {
        let options = SqliteConnectOptions::from_str(&config.url)?;
        let file = options.get_filename().to_path_buf();
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() && !is_memory(&file) {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
        }
        let options = options
            .create_if_missing(true)
            // WAL: readers (`bounced addresses`, an operator's query) never
            // block the daemon's writes, and a crash never corrupts.
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL is durable against process crashes in WAL mode; only a
            // power cut can lose the last transactions, and then the
            // message is simply read again (it is still on the server,
            // because after-actions run only after the commit).
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(config.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        sqlx::migrate!().run(&pool).await?;
        Ok(Store { pool })
    }

    /// The underlying pool, for tests and ad-hoc queries.
    pub fn pool(&self) -> &sqlx::SqlitePool {
        &self.pool
    }

    /// Close the pool (checkpoints the WAL).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The address verdicts as of now, filtered, ordered by address: what
    /// `bounced addresses` prints. See [`Store::addresses_at`].
    pub async fn addresses(&self, filter: &AddressFilter) -> Result<Vec<AddressRow>, StoreError> {
        self.addresses_at(filter, now()).await
    }

    /// The address verdicts as of `now`, filtered, ordered by address.
    ///
    /// Verdicts that time alone has changed since they were stored (soft
    /// bounces that left the window) are recomputed first, with the policy
    /// recorded by [`Store::apply_policy`], so that the answer does not
    /// depend on whether the daemon ran lately. Without a recorded policy
    /// (no daemon ever opened this database) the rows are read as stored.
    pub async fn addresses_at(
        &self,
        filter: &AddressFilter,
        now: i64,
    ) -> Result<Vec<AddressRow>, StoreError> {
        match self.recorded_policy().await? {
            Some((policy, require_verified)) => {
                self.refresh_due_with(&policy, require_verified, now)
                    .await?;
            }
            None => tracing::debug!("no recorded policy: address verdicts read as stored"),
        }
        let domain = filter
            .domain
            .as_deref()
            .map(|d| format!("@{}", d.trim_start_matches('@').to_lowercase()));
        let rows = sqlx::query(
            "SELECT address, status, action, hard_count, soft_count, first_bounce, last_bounce, \
                    last_reason, coalesce(reason, last_reason) AS reason, why, verified, \
                    coalesce(changed_at, updated_at) AS changed_at \
             FROM addresses \
             WHERE (?1 IS NULL OR action = ?1) AND (?2 IS NULL OR status = ?2) \
               AND (?3 IS NULL OR verified = ?3) \
               AND (?4 IS NULL OR coalesce(changed_at, updated_at) >= ?4) \
               AND (?5 IS NULL OR substr(address, -length(?5)) = ?5) \
               AND (?6 IS NULL OR coalesce(reason, last_reason) = ?6) \
             ORDER BY address",
        )
        .bind(filter.action.map(|a| a.as_str()))
        .bind(filter.status.map(|s| s.as_str()))
        .bind(filter.verified.map(i64::from))
        .bind(filter.since.map(rfc3339))
        .bind(domain)
        .bind(filter.reason.as_deref())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AddressRow {
                    address: r.try_get("address")?,
                    status: r.try_get("status")?,
                    action: r.try_get("action")?,
                    hard_count: r.try_get("hard_count")?,
                    soft_count: r.try_get("soft_count")?,
                    first_bounce: r.try_get("first_bounce")?,
                    last_bounce: r.try_get("last_bounce")?,
                    last_reason: r.try_get("last_reason")?,
                    reason: r.try_get("reason")?,
                    why: r.try_get("why")?,
                    verified: r.try_get::<i64, _>("verified")? != 0,
                    changed_at: r.try_get("changed_at")?,
                })
            })
            .collect()
    }

    /// The UIDs already recorded for this mailbox and UIDVALIDITY.
    pub async fn processed_uids(
        &self,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<HashSet<u32>, StoreError> {
        let uids: Vec<i64> =
            sqlx::query_scalar("SELECT uid FROM messages WHERE mailbox = ?1 AND uidvalidity = ?2")
                .bind(mailbox)
                .bind(i64::from(uidvalidity))
                .fetch_all(&self.pool)
                .await?;
        Ok(uids
            .into_iter()
            .filter_map(|u| u32::try_from(u).ok())
            .collect())
    }

    /// Messages of this mailbox and UIDVALIDITY whose after-action is still
    /// owed (committed, but the server command did not happen or was not
    /// confirmed), oldest first.
    pub async fn pending_after(
        &self,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<Vec<PendingAfter>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, uid, after_action FROM messages \
             WHERE mailbox = ?1 AND uidvalidity = ?2 AND after_done = 0 ORDER BY uid",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let uid: i64 = r.try_get("uid")?;
            out.push(PendingAfter {
                id: r.try_get("id")?,
                uid: u32::try_from(uid).unwrap_or(0),
                action: r.try_get("after_action")?,
            });
        }
        Ok(out)
    }

    /// Mark after-actions as applied.
    pub async fn mark_after_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_immediate().await?;
        for id in ids {
            sqlx::query("UPDATE messages SET after_done = 1 WHERE id = ?1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Messages of a mailbox whose UIDVALIDITY is not the current one and
    /// whose after-action is still owed: they can never be applied (the
    /// UIDs mean nothing any more), so they are closed. The messages
    /// themselves are re-read under the new UIDVALIDITY and recognised as
    /// duplicates by their fingerprint.
    pub async fn abandon_stale_after(
        &self,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE messages SET after_done = 1 \
             WHERE mailbox = ?1 AND uidvalidity <> ?2 AND after_done = 0",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Record the start of a pass: returns the UIDVALIDITY seen last time
    /// (None on the first pass) and stores the current one.
    pub async fn begin_pass(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        started: i64,
    ) -> Result<Option<u32>, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let previous: Option<Option<i64>> =
            sqlx::query_scalar("SELECT uidvalidity FROM mailbox_state WHERE mailbox = ?1")
                .bind(mailbox)
                .fetch_optional(&mut *tx)
                .await?;
        sqlx::query(
            "INSERT INTO mailbox_state (mailbox, uidvalidity, last_attempt) VALUES (?1, ?2, ?3) \
             ON CONFLICT (mailbox) DO UPDATE SET uidvalidity = ?2, last_attempt = ?3",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .bind(rfc3339(started))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(previous.flatten().and_then(|v| u32::try_from(v).ok()))
    }

    /// Record the end of a pass: success with the number of messages stored,
    /// or the error in words.
    pub async fn end_pass(
        &self,
        mailbox: &str,
        started: i64,
        outcome: Result<usize, &str>,
    ) -> Result<(), StoreError> {
        match outcome {
            Ok(n) => {
                sqlx::query(
                    "INSERT INTO mailbox_state (mailbox, last_attempt, last_success, last_error, last_messages) \
                     VALUES (?1, ?2, ?2, NULL, ?3) \
                     ON CONFLICT (mailbox) DO UPDATE SET last_attempt = ?2, last_success = ?2, \
                     last_error = NULL, last_messages = ?3",
                )
                .bind(mailbox)
                .bind(rfc3339(started))
                .bind(i64::try_from(n).unwrap_or(i64::MAX))
                .execute(&self.pool)
                .await?;
            }
            Err(error) => {
                sqlx::query(
                    "INSERT INTO mailbox_state (mailbox, last_attempt, last_error) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (mailbox) DO UPDATE SET last_attempt = ?2, last_error = ?3",
                )
                .bind(mailbox)
                .bind(rfc3339(started))
                .bind(error)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    /// Every mailbox's state, by name.
    pub async fn mailbox_states(&self) -> Result<Vec<MailboxState>, StoreError> {
        let rows = sqlx::query(
            "SELECT mailbox, uidvalidity, last_success, last_attempt, last_error, last_messages \
             FROM mailbox_state ORDER BY mailbox",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(MailboxState {
                    mailbox: r.try_get("mailbox")?,
                    uidvalidity: r.try_get("uidvalidity")?,
                    last_success: r.try_get("last_success")?,
                    last_attempt: r.try_get("last_attempt")?,
                    last_error: r.try_get("last_error")?,
                    last_messages: r.try_get("last_messages")?,
                })
            })
            .collect()
    }

    /// UIDs of this mailbox and UIDVALIDITY the server failed to return
    /// before, with their failed solo attempts.
    pub async fn suspects(
        &self,
        mailbox: &str,
        uidvalidity: u32,
    ) -> Result<std::collections::HashMap<u32, u32>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT uid, attempts FROM fetch_failures WHERE mailbox = ?1 AND uidvalidity = ?2",
        )
        .bind(mailbox)
        .bind(i64::from(uidvalidity))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(u, a)| Some((u32::try_from(u).ok()?, u32::try_from(a).unwrap_or(0))))
            .collect())
    }

    /// Note that fetching these UIDs failed. `solo` says the command was
    /// for this one message alone (and the error the server's), so the
    /// failure is its own and counts as an attempt; otherwise the UIDs are
    /// only listed, to be fetched one by one next time.
    pub async fn note_fetch_failure(
        &self,
        mailbox: &str,
        uidvalidity: u32,
        uids: &[u32],
        solo: bool,
        error: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_immediate().await?;
        for uid in uids {
            sqlx::query(
                "INSERT INTO fetch_failures (mailbox, uidvalidity, uid, attempts, last_error, last_attempt) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (mailbox, uidvalidity, uid) DO UPDATE SET \
                 attempts = attempts + ?4, last_error = ?5, last_attempt = ?6",
            )
            .bind(mailbox)
            .bind(i64::from(uidvalidity))
            .bind(i64::from(*uid))
            .bind(i64::from(solo))
            .bind(error)
            .bind(rfc3339(now))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Make the address verdicts follow `policy`: when it differs from the
    /// policy they were computed with (or that is unknown), recompute every
    /// address from its history. Returns how many addresses were recomputed.
    pub async fn apply_policy(&self, policy: &PolicyConfig, now: i64) -> Result<usize, StoreError> {
        let wanted = policy_text(policy);
        let current = self.recorded_policy_text().await?;
        if current.as_deref() == Some(wanted.as_str()) {
            return Ok(0);
        }
        // Complaints recorded before they reached verdicts get theirs now.
        let addresses: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM addresses UNION \
             SELECT address FROM bounce_events WHERE reason = 'feedback' ORDER BY 1",
        )
        .fetch_all(&self.pool)
        .await?;
        self.recompute(
            &addresses,
            policy,
            policy.require_verified(),
            now,
            Cause::Policy,
        )
        .await?;
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ('policy', ?1) \
             ON CONFLICT (key) DO UPDATE SET value = ?1",
        )
        .bind(&wanted)
        .execute(&self.pool)
        .await?;
        Ok(addresses.len())
    }

    /// Recompute the verdicts that time alone may have changed by `now`
    /// (`review_at` passed: a counted soft bounce left `soft_window`, or a
    /// future-dated one entered it), with `policy`, the one the verdicts
    /// follow (call [`Store::apply_policy`] first). Returns how many were
    /// recomputed; when none is due it costs one indexed query.
    pub async fn refresh_due(&self, policy: &PolicyConfig, now: i64) -> Result<usize, StoreError> {
        self.refresh_due_with(policy, policy.require_verified(), now)
            .await
    }

    async fn refresh_due_with(
        &self,
        policy: &PolicyConfig,
        require_verified: bool,
        now: i64,
    ) -> Result<usize, StoreError> {
        let due: Vec<String> = sqlx::query_scalar(
            "SELECT address FROM addresses WHERE review_at <= ?1 ORDER BY address",
        )
        .bind(rfc3339(now))
        .fetch_all(&self.pool)
        .await?;
        self.recompute(&due, policy, require_verified, now, Cause::Ageing)
            .await?;
        Ok(due.len())
    }

    /// Recompute these addresses' verdicts from their histories; a change
    /// is recorded with `cause`.
    async fn recompute(
        &self,
        addresses: &[String],
        policy: &PolicyConfig,
        require_verified: bool,
        now: i64,
        cause: Cause,
    ) -> Result<(), StoreError> {
        // Short transactions, so that a big table does not hold the write
        // lock against other writers for long.
        for chunk in addresses.chunks(500) {
            let mut tx = self.begin_immediate().await?;
            for address in chunk {
                reverdict(&mut tx, address, policy, require_verified, now, cause).await?;
            }
            tx.commit().await?;
        }
        Ok(())
    }

    async fn recorded_policy_text(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = 'policy'")
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The policy the verdicts were computed with, and whether it requires
    /// verified bounces; `None` when none is recorded, or when the text is
    /// not understood (written by another version: then the next daemon
    /// start recomputes everything anyway).
    async fn recorded_policy(&self) -> Result<Option<(PolicyConfig, bool)>, StoreError> {
        let text = self.recorded_policy_text().await?;
        let parsed = text.as_deref().and_then(parse_policy_text);
        if let (Some(text), None) = (&text, &parsed) {
            tracing::warn!(policy = %text, "recorded policy not understood: verdicts read as stored");
        }
        Ok(parsed)
    }

    /// Per-mailbox counts for `bounced stats`: messages by kind and bounce
    /// events by reason, as (mailbox, what, name, count) rows where `what`
    /// is `kind` or `reason`, ordered by mailbox, what, count descending.
    pub async fn counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT mailbox, 'kind' AS what, kind AS name, count(*) AS n FROM messages \
             WHERE duplicate_of IS NULL GROUP BY mailbox, kind \
             UNION ALL \
             SELECT m.mailbox, 'reason', e.reason, count(*) FROM bounce_events e \
             JOIN messages m ON m.id = e.message GROUP BY m.mailbox, e.reason \
             ORDER BY 1, 2, 4 DESC, 3",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }

    /// `bounced forgive`: the address's bounces so far stop counting (a
    /// later one counts afresh); its verdict becomes keep, and the change is
    /// recorded with cause `forgive` and the note. Uses the policy recorded
    /// by the daemon (the default when none is). Returns the seq of the
    /// change, `None` when the verdict did not change (already keep and
    /// forgiven), or [`StoreError::UnknownAddress`].
    pub async fn forgive(
        &self,
        address: &str,
        note: Option<&str>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let (policy, require_verified) = self
            .recorded_policy()
            .await?
            .unwrap_or_else(|| (PolicyConfig::default(), false));
        let address = normalize_address(address);
        let mut tx = self.begin_immediate().await?;
        let last_event: Option<i64> =
            sqlx::query_scalar("SELECT max(id) FROM bounce_events WHERE address = ?1")
                .bind(&address)
                .fetch_one(&mut *tx)
                .await?;
        let done = sqlx::query(
            "UPDATE addresses SET forgive_event = ?2, forgiven_at = ?3, forgive_note = ?4 \
             WHERE address = ?1",
        )
        .bind(&address)
        .bind(last_event.unwrap_or(0))
        .bind(rfc3339(now))
        .bind(note)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownAddress(address));
        }
        let before: i64 = sqlx::query_scalar("SELECT last_seq FROM change_counter")
            .fetch_one(&mut *tx)
            .await?;
        reverdict_noted(
            &mut tx,
            &address,
            &policy,
            require_verified,
            now,
            Cause::Forgive,
            note,
        )
        .await?;
        let after: i64 = sqlx::query_scalar("SELECT last_seq FROM change_counter")
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((after > before).then_some(after))
    }

    /// The verdict changes after `since` (a seq), oldest first, at most
    /// `limit` of them: what `bounced changes` prints. Verdicts that time
    /// alone has changed by now are recomputed first (as
    /// [`Store::addresses`] does), so ageing shows up without the daemon.
    pub async fn changes(&self, since: i64, limit: i64) -> Result<Vec<ChangeRow>, StoreError> {
        self.changes_at(since, limit, now()).await
    }

    /// [`Store::changes`] as of `now`.
    pub async fn changes_at(
        &self,
        since: i64,
        limit: i64,
        now: i64,
    ) -> Result<Vec<ChangeRow>, StoreError> {
        if let Some((policy, require_verified)) = self.recorded_policy().await? {
            self.refresh_due_with(&policy, require_verified, now)
                .await?;
        }
        let rows = sqlx::query(
            "SELECT seq, address, old_action, new_action, old_status, new_status, reason, why, \
                    cause, changed_at, note \
             FROM verdict_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )
        .bind(since)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ChangeRow {
                    seq: r.try_get("seq")?,
                    address: r.try_get("address")?,
                    old_action: r.try_get("old_action")?,
                    new_action: r.try_get("new_action")?,
                    old_status: r.try_get("old_status")?,
                    new_status: r.try_get("new_status")?,
                    reason: r.try_get("reason")?,
                    why: r.try_get("why")?,
                    cause: r.try_get("cause")?,
                    changed_at: r.try_get("changed_at")?,
                    note: r.try_get("note")?,
                })
            })
            .collect()
    }

    async fn begin_immediate(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        // IMMEDIATE takes the write lock up front, so the busy timeout
        // applies to it; a deferred transaction that reads and then writes
        // can fail at once with SQLITE_BUSY instead of waiting.
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    /// Store one message with its verdict, in one transaction: the message
    /// row, one event per recipient, and the recomputed verdict of every
    /// address with a hard or soft bounce in it.
    ///
    /// Idempotent: a message already recorded under the same mailbox,
    /// UIDVALIDITY and UID is not written again ([`Recorded::AlreadyDone`]);
    /// a message whose bytes were already counted in this mailbox is written
    /// as a duplicate without events.
    pub async fn record(
        &self,
        msg: &NewMessage<'_>,
        verdict: &Result<Verdict, ClassifyError>,
        policy: &PolicyConfig,
        now: i64,
    ) -> Result<Recorded, StoreError> {
        let mut tx = self.begin_immediate().await?;
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM messages WHERE mailbox = ?1 AND uidvalidity = ?2 AND uid = ?3",
        )
        .bind(msg.mailbox)
        .bind(i64::from(msg.uidvalidity))
        .bind(i64::from(msg.uid))
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_some() {
            return Ok(Recorded::AlreadyDone);
        }
        let first_copy: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM messages WHERE mailbox = ?1 AND fingerprint = ?2 \
             AND duplicate_of IS NULL ORDER BY id LIMIT 1",
        )
        .bind(msg.mailbox)
        .bind(&msg.fingerprint)
        .fetch_optional(&mut *tx)
        .await?;
        let (kind, error, message_id, original_message_id) = match verdict {
            Ok(v) => (
                v.kind.as_str(),
                None,
                v.message_id.clone(),
                v.original_message_id.clone(),
            ),
            Err(e) => ("unparseable", Some(e.to_string()), None, None),
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO messages (mailbox, uidvalidity, uid, message_id, kind, size, \
                 internal_date, error, fingerprint, duplicate_of, original_message_id, \
                 processed_at, after_action, after_done) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) RETURNING id",
        )
        .bind(msg.mailbox)
        .bind(i64::from(msg.uidvalidity))
        .bind(i64::from(msg.uid))
        .bind(message_id)
        .bind(kind)
        .bind(i64::try_from(msg.size).unwrap_or(i64::MAX))
        .bind(msg.internal_date.map(rfc3339))
        .bind(error)
        .bind(&msg.fingerprint)
        .bind(first_copy)
        .bind(original_message_id)
        .bind(rfc3339(now))
        .bind(&msg.after_action)
        // "none" is done by doing nothing.
        .bind(i64::from(msg.after_action == "none"))
        .fetch_one(&mut *tx)
        .await?;
        // Whatever the outcome, the UID is accounted for now.
        sqlx::query(
            "DELETE FROM fetch_failures WHERE mailbox = ?1 AND uidvalidity = ?2 AND uid = ?3",
        )
        .bind(msg.mailbox)
        .bind(i64::from(msg.uidvalidity))
        .bind(i64::from(msg.uid))
        .execute(&mut *tx)
        .await?;
        if let Some(of) = first_copy {
            tx.commit().await?;
            return Ok(Recorded::Duplicate { id, of });
        }
        let Ok(verdict) = verdict else {
            tx.commit().await?;
            return Ok(Recorded::Stored {
                id,
                events: 0,
                addresses: 0,
            });
        };
        let occurred = rfc3339(msg.date.or(msg.internal_date).unwrap_or(now));
        let mut touched: Vec<(&str, Cause)> = Vec::new();
        for (i, r) in verdict.recipients.iter().enumerate() {
            let trust = msg.trust.get(i);
            let evidence = serde_json::json!({
                "recipient": r.evidence,
                "message": verdict.evidence,
            })
            .to_string();
            sqlx::query(
                "INSERT INTO bounce_events (message, address, alias, reason, severity, status, \
                     reply_code, command, action, remote_mta, diagnostic, feedback_type, evidence, \
                     occurred_at, verified, verify_note) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .bind(id)
            .bind(&r.address)
            .bind(&r.alias)
            .bind(r.reason.as_str())
            .bind(r.severity.as_str())
            .bind(&r.status)
            .bind(r.reply_code.map(i64::from))
            .bind(&r.command)
            .bind(&r.action)
            .bind(&r.remote_mta)
            .bind(&r.diagnostic)
            .bind(&r.feedback_type)
            .bind(evidence)
            .bind(&occurred)
            .bind(trust.map(|t| i64::from(t.verified)))
            .bind(trust.map(|t| t.why.as_str()))
            .execute(&mut *tx)
            .await?;
            // Delays and auto-replies are kept as events but never change
            // a verdict; failures, complaints and delivery reports do.
            if let Some(cause) = verdict_cause(r) {
                if !touched.iter().any(|(a, _)| *a == r.address.as_str()) {
                    touched.push((&r.address, cause));
                }
            }
        }
        for (address, cause) in &touched {
            reverdict(
                &mut tx,
                address,
                policy,
                policy.require_verified(),
                now,
                *cause,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Recorded::Stored {
            id,
            events: verdict.recipients.len(),
            addresses: touched.len(),
        })
    }
}

/// Whether a stored event can change its address's verdict, and as what
/// cause: a hard or soft bounce or a complaint (`bounce`), a
/// successful-delivery report (`delivery`, it resets soft counts). Delays
/// and auto-replies never do.
pub fn verdict_cause(r: &crate::classify::Recipient) -> Option<Cause> {
    match (r.severity, r.reason) {
        (Severity::Hard | Severity::Soft, _) => Some(Cause::Bounce),
        (_, crate::classify::Reason::Feedback) => Some(Cause::Bounce),
        (_, crate::classify::Reason::Delivered) => Some(Cause::Delivery),
        _ => None,
    }
}

/// Recompute one address's verdict from its whole failure history, as of
/// `now`, inside the caller's transaction; when its action or status
/// changes (or it gets its first verdict) the change is recorded there too
/// with `cause`. `require_verified` is passed apart from `policy` because a
/// policy read back from the database has no `[verify]` keys.
pub async fn reverdict(
    tx: &mut Transaction<'static, Sqlite>,
    address: &str,
    policy: &PolicyConfig,
    require_verified: bool,
    now: i64,
    cause: Cause,
) -> Result<(), StoreError> {
    reverdict_noted(tx, address, policy, require_verified, now, cause, None).await
}

/// [`reverdict`], with a note for the change it may record.
async fn reverdict_noted(
    tx: &mut Transaction<'static, Sqlite>,
    address: &str,
    policy: &PolicyConfig,
    require_verified: bool,
    now: i64,
    cause: Cause,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let forgive: Option<(Option<i64>, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT forgive_event, forgiven_at, forgive_note FROM addresses WHERE address = ?1",
    )
    .bind(address)
    .fetch_optional(&mut **tx)
    .await?;
    let (forgive_event, forgiven_at, forgive_note) = forgive.unwrap_or((None, None, None));
    // Failures and complaints make the verdict; the latest delivery report
    // resets soft counts.
    let rows = sqlx::query(
        "SELECT id, severity, reason, status, feedback_type, occurred_at, verified \
         FROM bounce_events \
         WHERE address = ?1 AND (severity IN ('hard', 'soft') OR reason IN ('feedback', 'delivered')) \
         ORDER BY occurred_at, id",
    )
    .bind(address)
    .fetch_all(&mut **tx)
    .await?;
    let (mut hard_count, mut soft_count, mut complaint_count) = (0i64, 0i64, 0i64);
    let mut history = Vec::new();
    let (mut delivered, mut forgotten) = (None::<i64>, 0usize);
    let (mut first, mut last) = (None::<String>, None::<String>);
    let (mut last_reason, mut last_status) = (String::new(), None::<String>);
    for r in &rows {
        let id: i64 = r.try_get("id")?;
        let severity: String = r.try_get("severity")?;
        let reason: String = r.try_get("reason")?;
        let occurred: String = r.try_get("occurred_at")?;
        // Events up to a forgive no longer count (but stay on record).
        let counts = forgive_event.is_none_or(|f| id > f);
        if reason == "delivered" {
            if counts {
                delivered = delivered.max(parse_rfc3339(&occurred));
            }
            continue;
        }
        let hard = severity == "hard";
        match (hard, reason.as_str()) {
            (true, _) => hard_count += 1,
            (false, "feedback") => complaint_count += 1,
            (false, _) => soft_count += 1,
        }
        let verified: Option<i64> = r.try_get("verified")?;
        let status: Option<String> = r.try_get("status")?;
        if !counts {
            forgotten += 1;
        } else if let (Ok(reason), Some(at)) = (
            reason.parse::<crate::classify::Reason>(),
            parse_rfc3339(&occurred),
        ) {
            history.push(policy::Bounce {
                at,
                reason,
                hard,
                status: status.clone(),
                feedback_type: r.try_get("feedback_type")?,
                verified: verified.map(|v| v != 0),
            });
        }
        if first.is_none() {
            first = Some(occurred.clone());
        }
        last = Some(occurred);
        last_reason = reason;
        last_status = status;
    }
    let (Some(first), Some(last)) = (first, last) else {
        // No failure on record (cannot happen while events are never
        // deleted): nothing to decide, and nothing for time to change.
        sqlx::query("UPDATE addresses SET review_at = NULL WHERE address = ?1")
            .bind(address)
            .execute(&mut **tx)
            .await?;
        return Ok(());
    };
    let trusted = match (&forgiven_at, history.is_empty()) {
        (Some(at), true) => policy::TrustedDecision {
            decision: policy::forgiven(
                parse_rfc3339(at).unwrap_or(now),
                forgotten,
                forgive_note.as_deref(),
            ),
            verified: false,
        },
        _ => policy::decide_history(policy, require_verified, &history, delivered, now),
    };
    let decision = trusted.decision;
    let old: Option<(String, String)> =
        sqlx::query_as("SELECT action, status FROM addresses WHERE address = ?1")
            .bind(address)
            .fetch_optional(&mut **tx)
            .await?;
    let old = old.and_then(|(a, s)| Some((Action::parse(&a)?, AddressStatus::parse(&s)?)));
    let changed = old != Some((decision.action, decision.status));
    // With nothing counted, the verdict rests on the last bounce's reason.
    let reason = decision
        .reason
        .map(|r| r.as_str().to_string())
        .unwrap_or_else(|| last_reason.clone());
    if changed {
        record_change(
            tx,
            &NewChange {
                address,
                old,
                new: (decision.action, decision.status),
                reason: &reason,
                why: &decision.why,
                cause,
                at: now,
                note,
            },
        )
        .await?;
    }
    // Beyond year 9999 RFC 3339 text no longer sorts as text: that far
    // away is never.
    let review_at = decision.review_at.filter(|t| *t < YEAR_10000).map(rfc3339);
    sqlx::query(
        "INSERT INTO addresses (address, status, action, hard_count, soft_count, first_bounce, \
             last_bounce, last_reason, last_status, why, updated_at, verified, review_at, \
             reason, changed_at, complaint_count) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?11, ?16) \
         ON CONFLICT (address) DO UPDATE SET status = ?2, action = ?3, hard_count = ?4, \
             soft_count = ?5, first_bounce = ?6, last_bounce = ?7, last_reason = ?8, \
             last_status = ?9, why = ?10, updated_at = ?11, verified = ?12, review_at = ?13, \
             reason = ?14, changed_at = CASE WHEN ?15 THEN ?11 ELSE changed_at END, \
             complaint_count = ?16",
    )
    .bind(address)
    .bind(decision.status.as_str())
    .bind(decision.action.as_str())
    .bind(hard_count)
    .bind(soft_count)
    .bind(first)
    .bind(last)
    .bind(last_reason)
    .bind(last_status)
    .bind(decision.why)
    .bind(rfc3339(now))
    .bind(i64::from(trusted.verified))
    .bind(review_at)
    .bind(reason)
    .bind(changed)
    .bind(complaint_count)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// 10000-01-01T00:00:00Z, Unix seconds.
const YEAR_10000: i64 = 253_402_300_800;

/// A canonical text form of a policy, to notice when it changes.
fn policy_text(p: &PolicyConfig) -> String {
    let mut reasons: Vec<&str> = p.soft_reasons.iter().map(|r| r.as_str()).collect();
    reasons.sort_unstable();
    let rules: Vec<String> = p
        .reasons
        .iter()
        .map(|(reason, rule)| match rule.remove_after {
            Some(n) => format!("{reason}:after{n}"),
            None => format!("{reason}:{}", rule.action.as_str()),
        })
        .collect();
    format!(
        "soft_limit={} soft_window={}s soft_min_days={} soft_reasons={} reason_rules={} \
         require_verified={}",
        p.soft_limit,
        p.soft_window.as_secs(),
        p.soft_min_days,
        reasons.join(","),
        rules.join(","),
        p.require_verified()
    )
}

/// Read back [`policy_text`]: the policy (without `[verify]` keys, which the
/// verdicts do not need) and `require_verified`. `None` unless every field
/// is there and understood.
fn parse_policy_text(text: &str) -> Option<(PolicyConfig, bool)> {
    let (mut limit, mut window, mut min_days, mut reasons, mut require, mut rules) =
        (None, None, None, None, None, None);
    for field in text.split_whitespace() {
        let (key, value) = field.split_once('=')?;
        match key {
            "soft_limit" => limit = Some(value.parse().ok()?),
            "soft_window" => {
                let secs = value.strip_suffix('s')?.parse().ok()?;
                window = Some(std::time::Duration::from_secs(secs));
            }
            "soft_min_days" => min_days = Some(value.parse().ok()?),
            "soft_reasons" => {
                reasons = Some(
                    value
                        .split(',')
                        .filter(|r| !r.is_empty())
                        .map(|r| r.parse().ok())
                        .collect::<Option<_>>()?,
                )
            }
            "require_verified" => require = Some(value.parse().ok()?),
            "reason_rules" => {
                let mut map = std::collections::BTreeMap::new();
                for item in value.split(',').filter(|r| !r.is_empty()) {
                    let (reason, rule) = item.split_once(':')?;
                    let (action, remove_after) = match rule {
                        "remove" => (ReasonAction::Remove, None),
                        "count" => (ReasonAction::Count, None),
                        "ignore" => (ReasonAction::Ignore, None),
                        n => (
                            ReasonAction::Count,
                            Some(n.strip_prefix("after")?.parse().ok()?),
                        ),
                    };
                    map.insert(
                        reason.parse().ok()?,
                        ReasonRule {
                            action,
                            remove_after,
                        },
                    );
                }
                rules = Some(map);
            }
            _ => return None,
        }
    }
    let policy = PolicyConfig {
        soft_limit: limit?,
        soft_window: window?,
        soft_min_days: min_days?,
        soft_reasons: reasons?,
        verify: None,
        reasons: rules?,
    };
    Some((policy, require?))
}

/// An address as the classifier stores it: the domain lower-cased.
fn normalize_address(address: &str) -> String {
    let address = address.trim();
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => address.to_string(),
    }
}

fn is_memory(file: &Path) -> bool {
    let s = file.as_os_str();
    s.is_empty() || s == ":memory:"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Kind, Reason, Recipient};
    use std::time::Duration;

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/sub/b.db", dir.path().display());
        let store = Store::open(&DatabaseConfig {
            url,
            busy_timeout: Duration::from_secs(5),
        })
        .await
        .unwrap();
        (dir, store)
    }

    fn recipient(address: &str, reason: Reason, severity: Severity) -> Recipient {
        Recipient {
            address: address.into(),
            alias: None,
            reason,
            severity,
            status: Some("5.1.1".into()),
            reply_code: Some(550),
            command: Some("RCPT".into()),
            action: Some("failed".into()),
            remote_mta: None,
            diagnostic: Some("550 5.1.1 no such user".into()),
            feedback_type: None,
            evidence: vec!["dsn".into()],
        }
    }

    fn verdict(kind: Kind, recipients: Vec<Recipient>) -> Verdict {
        Verdict {
            kind,
            recipients,
            message_id: Some("<b@x>".into()),
            original_message_id: None,
            evidence: vec![],
            token_sources: Default::default(),
        }
    }

    fn msg(uid: u32, fp: &str) -> NewMessage<'static> {
        NewMessage {
            mailbox: "m",
            uidvalidity: 7,
            uid,
            size: 100,
            internal_date: Some(1_800_000_000),
            date: None,
            fingerprint: fp.into(),
            after_action: "seen".into(),
            trust: Vec::new(),
        }
    }

    #[tokio::test]
    async fn record_is_idempotent_and_dedups_by_fingerprint() {
        let (_d, store) = temp_store().await;
        let p = PolicyConfig::default();
        let v = Ok(verdict(
            Kind::Bounce,
            vec![
                recipient("a@x.org", Reason::UserUnknown, Severity::Hard),
                recipient("b@x.org", Reason::MailboxFull, Severity::Soft),
                recipient("c@x.org", Reason::Delivered, Severity::None),
            ],
        ));
        let r = store
            .record(&msg(1, "f1"), &v, &p, 1_800_000_000)
            .await
            .unwrap();
        assert!(
            matches!(
                r,
                // The delivery report for c@ is looked at too (it resets
                // soft counts), but gives c@ no verdict.
                Recorded::Stored {
                    events: 3,
                    addresses: 3,
                    ..
                }
            ),
            "{r:?}"
        );
        let again = store
            .record(&msg(1, "f1"), &v, &p, 1_800_000_000)
            .await
            .unwrap();
        assert_eq!(again, Recorded::AlreadyDone);
        let dup = store
            .record(&msg(2, "f1"), &v, &p, 1_800_000_000)
            .await
            .unwrap();
        assert!(matches!(dup, Recorded::Duplicate { .. }), "{dup:?}");
        let rows = store.addresses(&AddressFilter::default()).await.unwrap();
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.address.as_str(),
                    r.action.as_str(),
                    r.hard_count,
                    r.soft_count,
                )
            })
            .collect();
        assert_eq!(
            got,
            [("a@x.org", "remove", 1, 0), ("b@x.org", "keep", 0, 1)]
        );
        assert_eq!(rows[0].first_bounce, "2027-01-15T08:00:00Z");
        let removes = store
            .addresses(&AddressFilter {
                action: Some(Action::Remove),
                status: None,
                ..AddressFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(removes.len(), 1);
        assert_eq!(store.processed_uids("m", 7).await.unwrap().len(), 2);
        let pending = store.pending_after("m", 7).await.unwrap();
        assert_eq!(pending.len(), 2);
        store
            .mark_after_done(&pending.iter().map(|p| p.id).collect::<Vec<_>>())
            .await
            .unwrap();
        assert!(store.pending_after("m", 7).await.unwrap().is_empty());
        let counts = store.counts().await.unwrap();
        assert!(counts.contains(&("m".into(), "kind".into(), "bounce".into(), 1)));
        assert!(counts.contains(&("m".into(), "reason".into(), "userunknown".into(), 1)));
    }

    #[tokio::test]
    async fn unparseable_is_recorded_without_events() {
        let (_d, store) = temp_store().await;
        let mut m = msg(3, "f3");
        m.after_action = "none".into();
        let r = store
            .record(
                &m,
                &Err(ClassifyError::Unparseable("binary".into())),
                &PolicyConfig::default(),
                1,
            )
            .await
            .unwrap();
        assert!(matches!(r, Recorded::Stored { events: 0, .. }));
        let (kind, error, done): (String, String, i64) =
            sqlx::query_as("SELECT kind, error, after_done FROM messages")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!((kind.as_str(), done), ("unparseable", 1));
        assert!(error.contains("binary"));
    }

    #[tokio::test]
    async fn fetch_failures_count_only_solo_attempts_and_clear_on_record() {
        let (_d, store) = temp_store().await;
        store
            .note_fetch_failure("m", 7, &[4, 5], false, "BYE", 1)
            .await
            .unwrap();
        store
            .note_fetch_failure("m", 7, &[5], true, "BYE", 2)
            .await
            .unwrap();
        let s = store.suspects("m", 7).await.unwrap();
        assert_eq!((s[&4], s[&5]), (0, 1));
        store
            .record(
                &msg(5, "f5"),
                &Err(ClassifyError::Unparseable("x".into())),
                &PolicyConfig::default(),
                3,
            )
            .await
            .unwrap();
        assert_eq!(store.suspects("m", 7).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_policy_change_recomputes_verdicts_once() {
        let (_d, store) = temp_store().await;
        let lenient = PolicyConfig::default();
        assert_eq!(store.apply_policy(&lenient, 0).await.unwrap(), 0);
        let day = 86_400;
        let now = 1_800_000_000;
        for (i, days_ago) in [20, 10, 1].iter().enumerate() {
            let mut m = msg(10 + i as u32, &format!("fs{i}"));
            m.date = Some(now - days_ago * day);
            let v = Ok(verdict(
                Kind::Bounce,
                vec![recipient("full@x.org", Reason::MailboxFull, Severity::Soft)],
            ));
            store.record(&m, &v, &lenient, now).await.unwrap();
        }
        let action = |rows: Vec<AddressRow>| rows[0].action.clone();
        let all = AddressFilter::default();
        assert_eq!(action(store.addresses_at(&all, now).await.unwrap()), "keep");
        let strict = PolicyConfig {
            soft_limit: 3,
            soft_min_days: 7,
            ..PolicyConfig::default()
        };
        assert_eq!(store.apply_policy(&strict, now).await.unwrap(), 1);
        assert_eq!(
            action(store.addresses_at(&all, now).await.unwrap()),
            "remove"
        );
        assert_eq!(
            store.apply_policy(&strict, now).await.unwrap(),
            0,
            "unchanged policy"
        );
        assert_eq!(store.apply_policy(&lenient, now).await.unwrap(), 1);
        assert_eq!(action(store.addresses_at(&all, now).await.unwrap()), "keep");
    }

    /// Record one bounce for `address`, `days_ago` days before `now`.
    async fn bounce_at(
        store: &Store,
        uid: u32,
        address: &str,
        reason: Reason,
        days_ago: i64,
        now: i64,
    ) {
        let severity = if reason == Reason::UserUnknown {
            Severity::Hard
        } else {
            Severity::Soft
        };
        let mut m = msg(uid, &format!("age{uid}"));
        m.date = Some(now - days_ago * 86_400);
        let v = Ok(verdict(
            Kind::Bounce,
            vec![recipient(address, reason, severity)],
        ));
        store
            .record(&m, &v, &PolicyConfig::default(), now)
            .await
            .unwrap();
    }

    /// Enough soft bounces, spread out enough, for the default policy to
    /// remove `address` at `now` (UIDs 1 to 5).
    async fn five_soft_bounces_over_20_days(store: &Store, address: &str, now: i64) {
        for (i, days_ago) in [20, 15, 10, 5, 0].into_iter().enumerate() {
            let uid = i as u32 + 1;
            bounce_at(store, uid, address, Reason::MailboxFull, days_ago, now).await;
        }
    }

    #[tokio::test]
    async fn soft_verdicts_age_out_of_the_window_by_time_alone() {
        let (_d, store) = temp_store().await;
        let p = PolicyConfig::default();
        let day = 86_400;
        let now = 1_800_000_000;
        // Five counted soft bounces over 20 days: remove. One 25 days ago:
        // keep. A hard bounce 40 days ago: remove, whatever the time.
        five_soft_bounces_over_20_days(&store, "full@x.org", now).await;
        bounce_at(&store, 10, "once@x.org", Reason::MailboxFull, 25, now).await;
        bounce_at(&store, 11, "gone@x.org", Reason::UserUnknown, 40, now).await;
        assert_eq!(store.apply_policy(&p, now).await.unwrap(), 3);
        let verdicts = |rows: Vec<AddressRow>| {
            rows.into_iter()
                .map(|r| (r.address, r.action, r.why))
                .collect::<Vec<_>>()
        };
        let all = AddressFilter::default();
        let before = verdicts(store.addresses_at(&all, now).await.unwrap());
        assert_eq!(before[0].0, "full@x.org");
        assert_eq!(before[0].1, "remove", "{}", before[0].2);
        assert!(before[2].2.starts_with("1 soft bounce "), "{}", before[2].2);
        assert_eq!(
            store.refresh_due(&p, now).await.unwrap(),
            0,
            "nothing due yet"
        );

        // Eleven days later, with no new bounce, the oldest of full@'s five
        // and once@'s only one have left the 30-day window.
        let later = now + 11 * day;
        assert_eq!(store.refresh_due(&p, later).await.unwrap(), 2);
        let after = verdicts(store.addresses_at(&all, later).await.unwrap());
        let got: Vec<_> = after
            .iter()
            .map(|(a, action, _)| (a.as_str(), action.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("full@x.org", "keep"),
                ("gone@x.org", "remove"),
                ("once@x.org", "keep")
            ]
        );
        assert!(after[0].2.starts_with("4 soft bounces"), "{}", after[0].2);
        assert!(
            after[2].2.starts_with("no counted soft bounce"),
            "{}",
            after[2].2
        );
        let status: String =
            sqlx::query_scalar("SELECT status FROM addresses WHERE address = 'full@x.org'")
                .fetch_one(store.pool())
                .await
                .unwrap();
        assert_eq!(status, "soft_fail");
        // Only full@ can still change (its four counted bounces will leave);
        // its next review is when the bounce of 15 days ago leaves.
        assert_eq!(store.refresh_due(&p, later).await.unwrap(), 0);
        let due: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT address, review_at FROM addresses ORDER BY address")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            due,
            [
                ("full@x.org".into(), Some(rfc3339(now + 15 * day + 1))),
                ("gone@x.org".into(), None),
                ("once@x.org".into(), None),
            ]
        );
    }

    #[tokio::test]
    async fn reading_addresses_brings_due_verdicts_up_to_date() {
        // What `bounced addresses` sees when the daemon has not run since
        // the bounces aged: the answer for the time of reading.
        let (_d, store) = temp_store().await;
        let p = PolicyConfig::default();
        let now = 1_800_000_000;
        five_soft_bounces_over_20_days(&store, "full@x.org", now).await;
        let all = AddressFilter::default();
        let remove = AddressFilter {
            action: Some(Action::Remove),
            ..AddressFilter::default()
        };
        // No recorded policy yet: read as stored.
        assert_eq!(
            store
                .addresses_at(&remove, now + 40 * 86_400)
                .await
                .unwrap()
                .len(),
            1
        );
        store.apply_policy(&p, now).await.unwrap();
        assert_eq!(store.addresses_at(&remove, now).await.unwrap().len(), 1);
        let later = now + 11 * 86_400;
        assert!(store.addresses_at(&remove, later).await.unwrap().is_empty());
        assert_eq!(
            store.addresses_at(&all, later).await.unwrap()[0].action,
            "keep"
        );
        assert_eq!(
            store.refresh_due(&p, later).await.unwrap(),
            0,
            "already done"
        );
    }

    /// A sync job: asks for the changes after the last seq it saw, a few at
    /// a time, and remembers the last one.
    async fn poll(store: &Store, last: &mut i64, seen: &mut Vec<ChangeRow>, now: i64) {
        loop {
            let page = store.changes_at(*last, 3, now).await.unwrap();
            let Some(end) = page.last() else { return };
            *last = end.seq;
            seen.extend(page);
        }
    }

    /// Every change once, in order: seqs 1..=N without gaps, each change's
    /// old verdict is the previous change's new one for that address, and
    /// replaying them gives the `addresses` table.
    async fn assert_consistent(store: &Store, seen: &[ChangeRow]) {
        let seqs: Vec<i64> = seen.iter().map(|c| c.seq).collect();
        let expected: Vec<i64> = (1..=seen.len() as i64).collect();
        assert_eq!(seqs, expected, "seqs in order, none missed or repeated");
        let mut state: std::collections::BTreeMap<&str, (&str, &str)> = Default::default();
        for c in seen {
            let before = state.get(c.address.as_str()).copied();
            assert_eq!(
                before,
                c.old_action.as_deref().zip(c.old_status.as_deref()),
                "change {} of {} follows the previous one",
                c.seq,
                c.address
            );
            assert_ne!(
                before,
                Some((c.new_action.as_str(), c.new_status.as_str())),
                "a recorded change changes something"
            );
            state.insert(&c.address, (&c.new_action, &c.new_status));
        }
        let table: Vec<(String, String, String)> =
            sqlx::query_as("SELECT address, action, status FROM addresses ORDER BY address")
                .fetch_all(store.pool())
                .await
                .unwrap();
        let replayed: Vec<(String, String, String)> = state
            .into_iter()
            .map(|(a, (act, st))| (a.to_string(), act.to_string(), st.to_string()))
            .collect();
        assert_eq!(replayed, table);
    }

    #[tokio::test]
    async fn a_consumer_polling_changes_sees_every_change_once_in_order() {
        let (dir, store) = temp_store().await;
        let p = PolicyConfig::default();
        let day = 86_400;
        let now = 1_800_000_000;
        store.apply_policy(&p, now).await.unwrap();
        let (mut last, mut seen) = (0, Vec::new());

        bounce_at(&store, 100, "gone@x.org", Reason::UserUnknown, 3, now).await;
        poll(&store, &mut last, &mut seen, now).await;
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].cause, "bounce");
        assert_eq!(seen[0].reason, "userunknown");
        assert!(seen[0]
            .why
            .starts_with("hard bounce: userunknown (status 5.1.1) on "));

        // Soft bounces: a first verdict (keep), then remove at the fifth.
        // A soft bounce after the hard one changes nothing.
        five_soft_bounces_over_20_days(&store, "full@x.org", now).await;
        bounce_at(&store, 101, "gone@x.org", Reason::MailboxFull, 0, now).await;
        poll(&store, &mut last, &mut seen, now).await;
        let full: Vec<_> = seen.iter().filter(|c| c.address == "full@x.org").collect();
        assert_eq!(full.len(), 2, "{full:?}");
        assert_eq!(
            (full[0].new_action.as_str(), full[1].new_action.as_str()),
            ("keep", "remove")
        );
        assert_eq!(seen.iter().filter(|c| c.address == "gone@x.org").count(), 1);
        let gone = store
            .addresses_at(
                &AddressFilter {
                    domain: Some("X.org".into()),
                    reason: Some("userunknown".into()),
                    ..AddressFilter::default()
                },
                now,
            )
            .await
            .unwrap();
        assert_eq!(gone.len(), 1);
        assert_eq!(
            (gone[0].last_reason.as_str(), gone[0].reason.as_str()),
            ("mailboxfull", "userunknown")
        );

        // Several writers at once (other processes), while the consumer polls.
        let url = format!("sqlite://{}/sub/b.db", dir.path().display());
        let mut writers = Vec::new();
        for w in 0..3u32 {
            let url = url.clone();
            writers.push(tokio::spawn(async move {
                let other = Store::open(&DatabaseConfig {
                    url,
                    busy_timeout: Duration::from_secs(30),
                })
                .await
                .unwrap();
                for i in 0..8u32 {
                    let uid = 1000 + w * 100 + i;
                    let address = format!("w{w}-{}@y.org", i % 4);
                    let reason = if i % 3 == 0 {
                        Reason::UserUnknown
                    } else {
                        Reason::MailboxFull
                    };
                    bounce_at(&other, uid, &address, reason, i64::from(i), now).await;
                }
                other.close().await;
            }));
        }
        while !writers.iter().all(|w| w.is_finished()) {
            poll(&store, &mut last, &mut seen, now).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for w in writers {
            w.await.unwrap();
        }
        poll(&store, &mut last, &mut seen, now).await;

        // Ageing: eleven days on, full@ goes back to keep with no new bounce;
        // the consumer sees it without anyone running the daemon.
        let later = now + 11 * day;
        poll(&store, &mut last, &mut seen, later).await;
        let aged = seen.last().unwrap();
        assert_eq!(
            (aged.address.as_str(), aged.cause.as_str()),
            ("full@x.org", "ageing")
        );
        assert_eq!(
            (aged.old_action.as_deref(), aged.new_action.as_str()),
            (Some("remove"), "keep")
        );

        // Forgive: gone@ goes to keep (cause forgive, with the note); a
        // later hard bounce counts afresh.
        let seq = store
            .forgive("gone@X.ORG", Some("re-subscribed by phone"), later)
            .await
            .unwrap();
        poll(&store, &mut last, &mut seen, later).await;
        let f = seen.last().unwrap();
        assert_eq!(Some(f.seq), seq);
        assert_eq!(
            (
                f.address.as_str(),
                f.cause.as_str(),
                f.new_action.as_str(),
                f.new_status.as_str()
            ),
            ("gone@x.org", "forgive", "keep", "forgiven")
        );
        assert_eq!(f.note.as_deref(), Some("re-subscribed by phone"));
        assert!(
            f.why.contains("2 earlier bounces no longer count"),
            "{}",
            f.why
        );
        assert!(matches!(
            store.forgive("nobody@x.org", None, later).await,
            Err(StoreError::UnknownAddress(_))
        ));
        bounce_at(&store, 102, "gone@x.org", Reason::MailboxFull, 0, later).await;
        bounce_at(&store, 103, "gone@x.org", Reason::UserUnknown, 0, later).await;
        poll(&store, &mut last, &mut seen, later).await;
        let back: Vec<_> = seen.iter().rev().take(2).collect();
        assert_eq!(
            (back[1].new_action.as_str(), back[0].new_action.as_str()),
            ("keep", "remove"),
            "after a forgive a soft bounce keeps, a hard one removes again"
        );

        // A policy change re-evaluates: only the real changes are recorded.
        let before = seen.len();
        let strict = PolicyConfig {
            soft_limit: 2,
            soft_min_days: 1,
            ..PolicyConfig::default()
        };
        store.apply_policy(&strict, later).await.unwrap();
        poll(&store, &mut last, &mut seen, later).await;
        assert!(seen.len() > before);
        assert!(seen[before..].iter().all(|c| c.cause == "policy"));
        assert!(seen[before..]
            .iter()
            .any(|c| c.address == "full@x.org" && c.new_action == "remove"));
        // The same policy again: nothing to record.
        store
            .apply_policy(&PolicyConfig::default(), later)
            .await
            .unwrap();
        store
            .apply_policy(&PolicyConfig::default(), later)
            .await
            .unwrap();
        poll(&store, &mut last, &mut seen, later).await;
        let n = seen.len();
        store
            .refresh_due(&PolicyConfig::default(), later)
            .await
            .unwrap();
        poll(&store, &mut last, &mut seen, later).await;
        assert_eq!(
            seen.len(),
            n,
            "a recomputation without change records nothing"
        );

        assert_consistent(&store, &seen).await;
        let since = store
            .addresses_at(
                &AddressFilter {
                    since: Some(later),
                    ..AddressFilter::default()
                },
                later,
            )
            .await
            .unwrap();
        assert!(since.iter().any(|r| r.address == "full@x.org"), "{since:?}");
        assert!(since.iter().all(|r| r.changed_at >= rfc3339(later)));
    }

    /// Record one report of `reason` (severity none) for `address`.
    async fn report_at(store: &Store, uid: u32, address: &str, reason: Reason, at: i64) {
        let mut m = msg(uid, &format!("rep{uid}"));
        m.date = Some(at);
        let mut r = recipient(address, reason, Severity::None);
        r.status = None;
        if reason == Reason::Feedback {
            r.feedback_type = Some("abuse".into());
        }
        let kind = if reason == Reason::Feedback {
            Kind::Feedback
        } else {
            Kind::Delivered
        };
        store
            .record(
                &m,
                &Ok(verdict(kind, vec![r])),
                &PolicyConfig::default(),
                at,
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn complaints_remove_and_deliveries_reset_soft_counts() {
        let (_d, store) = temp_store().await;
        let now = 1_800_000_000;
        let day = 86_400;
        store
            .apply_policy(&PolicyConfig::default(), now)
            .await
            .unwrap();
        report_at(&store, 1, "angry@x.org", Reason::Feedback, now).await;
        // A delivery report for an address that never failed adds nothing.
        report_at(&store, 2, "fine@x.org", Reason::Delivered, now).await;
        let rows = store
            .addresses_at(&AddressFilter::default(), now)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(
            (
                rows[0].status.as_str(),
                rows[0].action.as_str(),
                rows[0].reason.as_str()
            ),
            ("complained", "remove", "feedback")
        );
        assert!(
            rows[0].why.starts_with("complaint: feedback (abuse) on "),
            "{}",
            rows[0].why
        );

        // Four soft bounces, then the mailbox works again: a fifth does not
        // remove, because the delivery reset the count.
        for (i, days_ago) in [20, 15, 10, 5].into_iter().enumerate() {
            bounce_at(
                &store,
                10 + i as u32,
                "full@x.org",
                Reason::MailboxFull,
                days_ago,
                now,
            )
            .await;
        }
        report_at(&store, 20, "full@x.org", Reason::Delivered, now - 2 * day).await;
        bounce_at(&store, 21, "full@x.org", Reason::MailboxFull, 0, now).await;
        let full = store
            .addresses_at(
                &AddressFilter {
                    domain: Some("x.org".into()),
                    ..Default::default()
                },
                now,
            )
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.address == "full@x.org")
            .unwrap();
        assert_eq!(full.action, "keep", "{}", full.why);
        assert!(full.why.starts_with("1 soft bounce "), "{}", full.why);
        assert_eq!(full.soft_count, 5, "every bounce stays on record");

        // The complaint action is a policy setting.
        let keep_complaints = PolicyConfig {
            reasons: [(
                Reason::Feedback,
                crate::config::ReasonRule {
                    action: ReasonAction::Ignore,
                    remove_after: None,
                },
            )]
            .into_iter()
            .collect(),
            ..PolicyConfig::default()
        };
        store.apply_policy(&keep_complaints, now).await.unwrap();
        let angry = &store
            .addresses_at(&AddressFilter::default(), now)
            .await
            .unwrap()[0];
        assert_eq!(
            (angry.status.as_str(), angry.action.as_str()),
            ("complained", "keep")
        );
        let causes: Vec<(String, String)> =
            sqlx::query_as("SELECT address, cause FROM verdict_changes ORDER BY seq")
                .fetch_all(store.pool())
                .await
                .unwrap();
        assert_eq!(
            causes.first().unwrap(),
            &("angry@x.org".into(), "bounce".into())
        );
        assert_eq!(
            causes.last().unwrap(),
            &("angry@x.org".into(), "policy".into())
        );
    }

    #[test]
    fn the_recorded_policy_reads_back() {
        let p = PolicyConfig {
            soft_limit: 3,
            soft_window: Duration::from_secs(10 * 86_400),
            soft_min_days: 2,
            ..PolicyConfig::default()
        };
        let (back, require) = parse_policy_text(&policy_text(&p)).unwrap();
        assert_eq!(policy_text(&back), policy_text(&p));
        assert_eq!(back.soft_reasons, p.soft_reasons);
        assert!(!require);
        let required = policy_text(&p).replace("require_verified=false", "require_verified=true");
        assert_eq!(parse_policy_text(&required).map(|(_, r)| r), Some(true));
        let none = PolicyConfig {
            soft_reasons: Default::default(),
            ..p.clone()
        };
        assert_eq!(
            parse_policy_text(&policy_text(&none)).map(|(b, _)| b.soft_reasons.len()),
            Some(0)
        );
        assert!(
            parse_policy_text("soft_limit=3").is_none(),
            "fields missing"
        );
        assert!(parse_policy_text(&policy_text(&p).replace("mailboxfull", "bogus")).is_none());
        assert!(parse_policy_text(&format!("{} future=1", policy_text(&p))).is_none());
        let mut rules = PolicyConfig::default();
        rules.reasons.insert(
            Reason::Suspend,
            ReasonRule {
                action: ReasonAction::Count,
                remove_after: Some(2),
            },
        );
        rules.reasons.insert(
            Reason::Blocked,
            ReasonRule {
                action: ReasonAction::Ignore,
                remove_after: None,
            },
        );
        let (back, _) = parse_policy_text(&policy_text(&rules)).unwrap();
        assert_eq!(back.reasons, rules.reasons);
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_rfc3339(&rfc3339(1_800_000_000)), Some(1_800_000_000));
    }
}
