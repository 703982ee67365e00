//! The address verdict: when does a bouncing address get removed?
//!
//! Pure rules over an address's bounce history, so they can be tested without
//! a database. The store gathers the history and calls [`decide`].
//!
//! - A hard bounce (the address cannot exist) marks it `hard_fail` and
//!   `remove` at once, and that sticks.
//! - Soft bounces mark it `soft_fail` and `keep`, until `soft_limit` counted
//!   soft bounces fall within `soft_window`, their first and last at least
//!   `soft_min_days` apart: then `remove`. Only reasons in `soft_reasons`
//!   count, so a blocklisted sending IP never removes a subscriber.
//! - A soft verdict therefore ages: when counted bounces leave the window it
//!   can go back from `remove` to `keep` with no new bounce. Each decision
//!   says when that can next happen ([`Decision::review_at`]), so the store
//!   recomputes only the verdicts that are due.

use crate::classify::Reason;
use crate::config::PolicyConfig;
use serde::Serialize;
use std::fmt;

/// The failure state of an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddressStatus {
    /// At least one hard bounce: the address cannot exist.
    HardFail,
    /// Only soft bounces so far.
    SoftFail,
}

impl AddressStatus {
    /// The stable name used in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressStatus::HardFail => "hard_fail",
            AddressStatus::SoftFail => "soft_fail",
        }
    }

    /// Parse the database name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard_fail" => Some(AddressStatus::HardFail),
            "soft_fail" => Some(AddressStatus::SoftFail),
            _ => None,
        }
    }
}

impl fmt::Display for AddressStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What list cleanup should do with the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Unsubscribe it.
    Remove,
    /// Keep sending.
    Keep,
}

impl Action {
    /// The stable name used in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Keep => "keep",
        }
    }

    /// Parse the database name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "remove" => Some(Action::Remove),
            "keep" => Some(Action::Keep),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One soft bounce in an address's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SoftBounce {
    /// When it bounced (Unix seconds).
    pub at: i64,
    /// Why.
    pub reason: Reason,
}

/// The verdict for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Hard or soft failure.
    pub status: AddressStatus,
    /// Remove or keep.
    pub action: Action,
    /// One sentence an operator can read: why this action.
    pub why: String,
    /// When this verdict may next change without a new bounce (Unix
    /// seconds): the second a counted soft bounce leaves `soft_window`, or a
    /// future-dated one enters it. `None` when only a new bounce can change
    /// it (a hard bounce decided it, or no soft bounce counts).
    pub review_at: Option<i64>,
}

const DAY: i64 = 86_400;

/// Decide an address's verdict from its history.
///
/// `hard` says whether any hard bounce was ever recorded for it; `soft` lists
/// its soft bounces (any order, any age); `now` is the time of the decision.
pub fn decide(policy: &PolicyConfig, hard: bool, soft: &[SoftBounce], now: i64) -> Decision {
    if hard {
        return Decision {
            status: AddressStatus::HardFail,
            action: Action::Remove,
            why: "hard bounce: the address cannot exist".into(),
            review_at: None,
        };
    }
    let window = i64::try_from(policy.soft_window.as_secs()).unwrap_or(i64::MAX);
    let since = now.saturating_sub(window);
    // A bounce counts while `since <= at <= now`: one in the window stops
    // counting the second after `at + window`, a future-dated one starts at `at`.
    let review_at = soft
        .iter()
        .filter(|b| b.at >= since && policy.soft_reasons.contains(&b.reason))
        .map(|b| {
            if b.at > now {
                b.at
            } else {
                b.at.saturating_add(window).saturating_add(1)
            }
        })
        .min();
    let mut counted: Vec<i64> = soft
        .iter()
        .filter(|b| b.at >= since && b.at <= now && policy.soft_reasons.contains(&b.reason))
        .map(|b| b.at)
        .collect();
    counted.sort_unstable();
    let n = counted.len();
    let span_days = match (counted.first(), counted.last()) {
        (Some(first), Some(last)) => (last - first) / DAY,
        _ => 0,
    };
    let window_text = humantime::format_duration(policy.soft_window);
    let limit = usize::try_from(policy.soft_limit).unwrap_or(usize::MAX);
    if n >= limit && span_days >= i64::from(policy.soft_min_days) {
        Decision {
            status: AddressStatus::SoftFail,
            action: Action::Remove,
            why: format!(
                "{n} counted soft bounces within {window_text}, spread over {span_days} days \
                 (limit {}, at least {} days)",
                policy.soft_limit, policy.soft_min_days
            ),
            review_at,
        }
    } else {
        Decision {
            status: AddressStatus::SoftFail,
            action: Action::Keep,
            why: format!(
                "{n} of {} counted soft bounces within {window_text}, spread over {span_days} of {} days",
                policy.soft_limit, policy.soft_min_days
            ),
            review_at,
        }
    }
}

/// One hard or soft bounce in an address's history, with its trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounce {
    /// When it bounced (Unix seconds).
    pub at: i64,
    /// Why.
    pub reason: Reason,
    /// A hard bounce (the address cannot exist), else soft.
    pub hard: bool,
    /// `Some(true)` when a signed token proved the bounce is about mail we
    /// sent to this address, `Some(false)` when checking failed, `None` when
    /// no `[verify]` is configured.
    pub verified: Option<bool>,
}

/// The verdict for one address, with whether it rests on verified bounces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDecision {
    /// The verdict.
    pub decision: Decision,
    /// Whether a verified bounce is among those that decided the action.
    pub verified: bool,
}

/// Decide an address's verdict from its whole history, minding trust.
///
/// With `require_verified`, only verified bounces decide the action:
/// unverified ones are on record (and in the status) but never remove. Without
/// it, every bounce counts, and the explanation says so when none that
/// decided was verified (and verification is configured at all).
pub fn decide_history(
    policy: &PolicyConfig,
    require_verified: bool,
    history: &[Bounce],
    now: i64,
) -> TrustedDecision {
    let counts = |b: &&Bounce| !require_verified || b.verified == Some(true);
    let deciding: Vec<&Bounce> = history.iter().filter(counts).collect();
    let hard = deciding.iter().any(|b| b.hard);
    let soft: Vec<SoftBounce> = deciding
        .iter()
        .filter(|b| !b.hard)
        .map(|b| SoftBounce {
            at: b.at,
            reason: b.reason,
        })
        .collect();
    let mut decision = decide(policy, hard, &soft, now);
    // The status says what was seen, trusted or not.
    if history.iter().any(|b| b.hard) {
        decision.status = AddressStatus::HardFail;
    }
    let verified = if hard {
        deciding.iter().any(|b| b.hard && b.verified == Some(true))
    } else {
        deciding.iter().any(|b| b.verified == Some(true))
    };
    let ignored = history.len() - deciding.len();
    if ignored > 0 {
        decision.why = format!(
            "{}; {ignored} unverified bounce{} not counted (verify.require)",
            decision.why,
            if ignored == 1 { "" } else { "s" }
        );
    } else if !verified && history.iter().any(|b| b.verified.is_some()) {
        decision.why = format!("{} (unverified)", decision.why);
    }
    TrustedDecision { decision, verified }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn soft(days_ago: i64, reason: Reason) -> SoftBounce {
        SoftBounce {
            at: NOW - days_ago * DAY,
            reason,
        }
    }

    #[test]
    fn hard_bounce_removes_at_once() {
        let d = decide(&PolicyConfig::default(), true, &[], NOW);
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::HardFail, Action::Remove)
        );
    }

    #[test]
    fn one_soft_bounce_keeps() {
        let d = decide(
            &PolicyConfig::default(),
            false,
            &[soft(0, Reason::MailboxFull)],
            NOW,
        );
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::SoftFail, Action::Keep)
        );
        assert!(d.why.contains("1 of 5"), "{}", d.why);
    }

    #[test]
    fn enough_soft_bounces_spread_out_remove() {
        let history: Vec<_> = [0, 3, 6, 9, 12]
            .iter()
            .map(|d| soft(*d, Reason::MailboxFull))
            .collect();
        let d = decide(&PolicyConfig::default(), false, &history, NOW);
        assert_eq!(d.action, Action::Remove, "{}", d.why);
        assert_eq!(d.status, AddressStatus::SoftFail);
    }

    #[test]
    fn a_burst_on_one_day_does_not_remove() {
        let history: Vec<_> = (0..20).map(|_| soft(1, Reason::MailboxFull)).collect();
        let d = decide(&PolicyConfig::default(), false, &history, NOW);
        assert_eq!(d.action, Action::Keep, "{}", d.why);
    }

    #[test]
    fn old_bounces_fall_out_of_the_window() {
        let history: Vec<_> = [0, 3, 40, 50, 60]
            .iter()
            .map(|d| soft(*d, Reason::MailboxFull))
            .collect();
        let d = decide(&PolicyConfig::default(), false, &history, NOW);
        assert_eq!(d.action, Action::Keep, "{}", d.why);
        assert!(d.why.starts_with("2 of 5"), "{}", d.why);
    }

    #[test]
    fn sender_side_reasons_never_count() {
        // A blocklisted sending IP bounces everything; the subscribers are alive.
        let history: Vec<_> = (0..30).map(|d| soft(d, Reason::Blocked)).collect();
        let d = decide(&PolicyConfig::default(), false, &history, NOW);
        assert_eq!(d.action, Action::Keep, "{}", d.why);
        let history: Vec<_> = (0..30).map(|d| soft(d, Reason::SpamDetected)).collect();
        assert_eq!(
            decide(&PolicyConfig::default(), false, &history, NOW).action,
            Action::Keep
        );
    }

    #[test]
    fn future_dated_bounces_are_ignored() {
        let history: Vec<_> = (0..10)
            .map(|d| soft(-d * 3 - 1, Reason::MailboxFull))
            .collect();
        assert_eq!(
            decide(&PolicyConfig::default(), false, &history, NOW).action,
            Action::Keep
        );
    }

    #[test]
    fn a_soft_verdict_is_due_when_its_oldest_counted_bounce_leaves_the_window() {
        let p = PolicyConfig::default();
        let history: Vec<_> = [0, 3, 6, 9, 12]
            .iter()
            .map(|d| soft(*d, Reason::MailboxFull))
            .chain([soft(45, Reason::MailboxFull), soft(1, Reason::Blocked)])
            .collect();
        let d = decide(&p, false, &history, NOW);
        assert_eq!(d.action, Action::Remove, "{}", d.why);
        // Neither the bounce already out of the window nor the reason that
        // does not count decides when the verdict changes.
        let due = NOW - 12 * DAY + 30 * DAY + 1;
        assert_eq!(d.review_at, Some(due));
        assert_eq!(decide(&p, false, &history, due - 1).action, Action::Remove);
        let later = decide(&p, false, &history, due);
        assert_eq!(later.action, Action::Keep, "{}", later.why);
        assert!(later.why.starts_with("4 of 5"), "{}", later.why);

        let ahead = decide(&p, false, &[soft(-2, Reason::MailboxFull)], NOW);
        assert_eq!(ahead.review_at, Some(NOW + 2 * DAY), "enters the window");
        assert_eq!(decide(&p, true, &history, NOW).review_at, None, "hard");
        let uncounted = decide(&p, false, &[soft(0, Reason::Blocked)], NOW);
        assert_eq!(uncounted.review_at, None);
    }

    fn bounce(days_ago: i64, hard: bool, verified: Option<bool>) -> Bounce {
        Bounce {
            at: NOW - days_ago * DAY,
            reason: if hard {
                Reason::UserUnknown
            } else {
                Reason::MailboxFull
            },
            hard,
            verified,
        }
    }

    #[test]
    fn required_verification_keeps_addresses_with_forged_bounces() {
        let p = PolicyConfig::default();
        let forged = [bounce(0, true, Some(false))];
        let d = decide_history(&p, true, &forged, NOW);
        assert_eq!(d.decision.action, Action::Keep);
        assert_eq!(d.decision.status, AddressStatus::HardFail);
        assert!(!d.verified);
        assert!(
            d.decision.why.contains("1 unverified bounce not counted"),
            "{}",
            d.decision.why
        );

        let real = [bounce(0, true, Some(false)), bounce(0, true, Some(true))];
        let d = decide_history(&p, true, &real, NOW);
        assert_eq!(d.decision.action, Action::Remove);
        assert!(d.verified);
    }

    #[test]
    fn without_require_unverified_bounces_count_and_say_so() {
        let p = PolicyConfig::default();
        let d = decide_history(&p, false, &[bounce(0, true, Some(false))], NOW);
        assert_eq!(d.decision.action, Action::Remove);
        assert!(!d.verified);
        assert!(
            d.decision.why.ends_with("(unverified)"),
            "{}",
            d.decision.why
        );
        // With no [verify] at all nothing is said about trust.
        let d = decide_history(&p, false, &[bounce(0, true, None)], NOW);
        assert!(!d.decision.why.contains("unverified"), "{}", d.decision.why);
    }

    #[test]
    fn required_verification_counts_only_verified_soft_bounces() {
        let p = PolicyConfig::default();
        let mut history: Vec<_> = [0, 3, 6, 9, 12]
            .iter()
            .map(|d| bounce(*d, false, Some(false)))
            .collect();
        assert_eq!(
            decide_history(&p, true, &history, NOW).decision.action,
            Action::Keep
        );
        assert_eq!(
            decide_history(&p, false, &history, NOW).decision.action,
            Action::Remove
        );
        for b in &mut history {
            b.verified = Some(true);
        }
        let d = decide_history(&p, true, &history, NOW);
        assert_eq!(d.decision.action, Action::Remove);
        assert!(d.verified);
    }

    #[test]
    fn names_round_trip() {
        for s in [AddressStatus::HardFail, AddressStatus::SoftFail] {
            assert_eq!(AddressStatus::parse(s.as_str()), Some(s));
        }
        for a in [Action::Remove, Action::Keep] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
    }
}
