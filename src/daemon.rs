//! The processing loop: for each mailbox, fetch new messages, classify them,
//! store the verdicts in one transaction, then apply the after-action.
//!
//! (The daemon branch fills in the bodies; the signature below is the contract
//! the command line relies on.)

use crate::config::Config;

/// A daemon error that stops the whole run (not one mailbox).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
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

/// Run the daemon. With `once`, make one pass over every mailbox and return
/// its report; otherwise run until SIGTERM/SIGINT.
pub async fn run(config: &Config, once: bool) -> Result<PassReport, DaemonError> {
    let _ = (config, once);
    todo!()
}
