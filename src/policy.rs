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

/// The hard bounce a verdict rests on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HardBounce {
    /// When it bounced (Unix seconds).
    pub at: i64,
    /// Why.
    pub reason: Reason,
    /// The enhanced status code, e.g. `5.1.1`, when the report gave one.
    pub status: Option<String>,
}

/// The verdict for one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Hard or soft failure.
    pub status: AddressStatus,
    /// Remove or keep.
    pub action: Action,
    /// The reason the verdict rests on: the hard bounce's, else the most
    /// frequent counted soft reason; `None` when no bounce counts.
    pub reason: Option<Reason>,
    /// One sentence an operator can read: why this action, e.g. "3 soft
    /// bounces (mailboxfull) over 9 days, limit 3 in 14 days" or "hard
    /// bounce: userunknown (status 5.1.1) on 2026-12-01".
    pub why: String,
    /// When this verdict may next change without a new bounce (Unix
    /// seconds): the second a counted soft bounce leaves `soft_window`, or a
    /// future-dated one enters it. `None` when only a new bounce can change
    /// it (a hard bounce decided it, or no soft bounce counts).
    pub review_at: Option<i64>,
}

const DAY: i64 = 86_400;

/// A duration in words: whole days as "14 days", else humantime's form.
fn duration_text(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    if secs > 0 && secs % 86_400 == 0 {
        days_text(i64::try_from(secs / 86_400).unwrap_or(i64::MAX))
    } else {
        humantime::format_duration(d).to_string()
    }
}

fn days_text(n: i64) -> String {
    if n == 1 {
        "1 day".into()
    } else {
        format!("{n} days")
    }
}

/// The date part of Unix seconds, `2026-12-01`.
fn date_text(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string()
}

/// Decide an address's verdict from its history.
///
/// `hard` is the hard bounce the verdict rests on, if any was ever recorded
/// for it (the latest); `soft` lists its soft bounces (any order, any age);
/// `now` is the time of the decision.
pub fn decide(
    policy: &PolicyConfig,
    hard: Option<&HardBounce>,
    soft: &[SoftBounce],
    now: i64,
) -> Decision {
    if let Some(h) = hard {
        let status = h
            .status
            .as_deref()
            .map(|s| format!(" (status {s})"))
            .unwrap_or_default();
        return Decision {
            status: AddressStatus::HardFail,
            action: Action::Remove,
            reason: Some(h.reason),
            why: format!("hard bounce: {}{status} on {}", h.reason, date_text(h.at)),
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
    let mut counted: Vec<&SoftBounce> = soft
        .iter()
        .filter(|b| b.at >= since && b.at <= now && policy.soft_reasons.contains(&b.reason))
        .collect();
    counted.sort_unstable_by_key(|b| b.at);
    let n = counted.len();
    let span_days = match (counted.first(), counted.last()) {
        (Some(first), Some(last)) => (last.at - first.at) / DAY,
        _ => 0,
    };
    // The counted reasons, most frequent first (ties: the later one first).
    let mut reasons: Vec<(Reason, usize, i64)> = Vec::new();
    for b in &counted {
        match reasons.iter_mut().find(|(r, ..)| *r == b.reason) {
            Some(entry) => {
                entry.1 += 1;
                entry.2 = b.at;
            }
            None => reasons.push((b.reason, 1, b.at)),
        }
    }
    reasons.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)));
    let window_text = duration_text(policy.soft_window);
    let limit = usize::try_from(policy.soft_limit).unwrap_or(usize::MAX);
    let spread = if policy.soft_min_days > 0 {
        format!(
            ", at least {} apart",
            days_text(i64::from(policy.soft_min_days))
        )
    } else {
        String::new()
    };
    let why = if n == 0 {
        format!(
            "no counted soft bounce in the last {window_text}, limit {} in {window_text}{spread}",
            policy.soft_limit
        )
    } else {
        let names: Vec<&str> = reasons.iter().map(|(r, ..)| r.as_str()).collect();
        format!(
            "{n} soft bounce{} ({}) over {}, limit {} in {window_text}{spread}",
            if n == 1 { "" } else { "s" },
            names.join(", "),
            days_text(span_days),
            policy.soft_limit
        )
    };
    let action = if n >= limit && span_days >= i64::from(policy.soft_min_days) {
        Action::Remove
    } else {
        Action::Keep
    };
    Decision {
        status: AddressStatus::SoftFail,
        action,
        reason: reasons.first().map(|(r, ..)| *r),
        why,
        review_at,
    }
}

/// One hard or soft bounce in an address's history, with its trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounce {
    /// When it bounced (Unix seconds).
    pub at: i64,
    /// Why.
    pub reason: Reason,
    /// A hard bounce (the address cannot exist), else soft.
    pub hard: bool,
    /// The enhanced status code, when the report gave one.
    pub status: Option<String>,
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
    // The latest counted hard bounce is the one the verdict names.
    let hard = deciding
        .iter()
        .filter(|b| b.hard)
        .max_by_key(|b| b.at)
        .map(|b| HardBounce {
            at: b.at,
            reason: b.reason,
            status: b.status.clone(),
        });
    let soft: Vec<SoftBounce> = deciding
        .iter()
        .filter(|b| !b.hard)
        .map(|b| SoftBounce {
            at: b.at,
            reason: b.reason,
        })
        .collect();
    let mut decision = decide(policy, hard.as_ref(), &soft, now);
    // The status says what was seen, trusted or not.
    if history.iter().any(|b| b.hard) {
        decision.status = AddressStatus::HardFail;
    }
    let verified = if hard.is_some() {
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

    fn gone() -> HardBounce {
        HardBounce {
            at: NOW,
            reason: Reason::UserUnknown,
            status: Some("5.1.1".into()),
        }
    }

    fn soft(days_ago: i64, reason: Reason) -> SoftBounce {
        SoftBounce {
            at: NOW - days_ago * DAY,
            reason,
        }
    }

    #[test]
    fn hard_bounce_removes_at_once() {
        let d = decide(&PolicyConfig::default(), Some(&gone()), &[], NOW);
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::HardFail, Action::Remove)
        );
        assert_eq!(d.reason, Some(Reason::UserUnknown));
        assert_eq!(
            d.why,
            format!(
                "hard bounce: userunknown (status 5.1.1) on {}",
                date_text(NOW)
            )
        );
    }

    #[test]
    fn one_soft_bounce_keeps() {
        let d = decide(
            &PolicyConfig::default(),
            None,
            &[soft(0, Reason::MailboxFull)],
            NOW,
        );
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::SoftFail, Action::Keep)
        );
        assert_eq!(
            d.why,
            "1 soft bounce (mailboxfull) over 0 days, limit 5 in 30 days, at least 7 days apart"
        );
        assert_eq!(d.reason, Some(Reason::MailboxFull));
    }

    #[test]
    fn enough_soft_bounces_spread_out_remove() {
        let history: Vec<_> = [0, 3, 6, 9, 12]
            .iter()
            .map(|d| soft(*d, Reason::MailboxFull))
            .collect();
        let d = decide(&PolicyConfig::default(), None, &history, NOW);
        assert_eq!(d.action, Action::Remove, "{}", d.why);
        assert_eq!(d.status, AddressStatus::SoftFail);
    }

    #[test]
    fn the_why_reads_like_the_rule() {
        let p = PolicyConfig {
            soft_limit: 3,
            soft_window: std::time::Duration::from_secs(14 * DAY as u64),
            soft_min_days: 0,
            ..PolicyConfig::default()
        };
        let history = [
            soft(9, Reason::MailboxFull),
            soft(4, Reason::MailboxFull),
            soft(0, Reason::MailboxFull),
        ];
        let d = decide(&p, None, &history, NOW);
        assert_eq!(d.action, Action::Remove);
        assert_eq!(
            d.why,
            "3 soft bounces (mailboxfull) over 9 days, limit 3 in 14 days"
        );
        // The most frequent counted reason is the one the verdict rests on;
        // an uncounted one (blocked) is not named.
        let mixed = [
            soft(5, Reason::Suspend),
            soft(3, Reason::MailboxFull),
            soft(2, Reason::Suspend),
            soft(1, Reason::Blocked),
        ];
        let d = decide(&p, None, &mixed, NOW);
        assert_eq!(d.reason, Some(Reason::Suspend));
        assert!(
            d.why
                .starts_with("3 soft bounces (suspend, mailboxfull) over 3 days"),
            "{}",
            d.why
        );
        let d = decide(&p, None, &[soft(1, Reason::Blocked)], NOW);
        assert_eq!(d.reason, None);
        assert!(d.why.starts_with("no counted soft bounce"), "{}", d.why);
    }

    #[test]
    fn a_later_soft_bounce_does_not_hide_the_hard_one() {
        let p = PolicyConfig::default();
        let mut history = vec![bounce(10, true, None), bounce(1, false, None)];
        history[0].status = Some("5.1.1".into());
        let d = decide_history(&p, false, &history, NOW).decision;
        assert_eq!(d.reason, Some(Reason::UserUnknown));
        assert_eq!(
            d.why,
            format!(
                "hard bounce: userunknown (status 5.1.1) on {}",
                date_text(NOW - 10 * DAY)
            )
        );
    }

    #[test]
    fn a_burst_on_one_day_does_not_remove() {
        let history: Vec<_> = (0..20).map(|_| soft(1, Reason::MailboxFull)).collect();
        let d = decide(&PolicyConfig::default(), None, &history, NOW);
        assert_eq!(d.action, Action::Keep, "{}", d.why);
    }

    #[test]
    fn old_bounces_fall_out_of_the_window() {
        let history: Vec<_> = [0, 3, 40, 50, 60]
            .iter()
            .map(|d| soft(*d, Reason::MailboxFull))
            .collect();
        let d = decide(&PolicyConfig::default(), None, &history, NOW);
        assert_eq!(d.action, Action::Keep, "{}", d.why);
        assert!(d.why.starts_with("2 soft bounces"), "{}", d.why);
    }

    #[test]
    fn sender_side_reasons_never_count() {
        // A blocklisted sending IP bounces everything; the subscribers are alive.
        let history: Vec<_> = (0..30).map(|d| soft(d, Reason::Blocked)).collect();
        let d = decide(&PolicyConfig::default(), None, &history, NOW);
        assert_eq!(d.action, Action::Keep, "{}", d.why);
        let history: Vec<_> = (0..30).map(|d| soft(d, Reason::SpamDetected)).collect();
        assert_eq!(
            decide(&PolicyConfig::default(), None, &history, NOW).action,
            Action::Keep
        );
    }

    #[test]
    fn future_dated_bounces_are_ignored() {
        let history: Vec<_> = (0..10)
            .map(|d| soft(-d * 3 - 1, Reason::MailboxFull))
            .collect();
        assert_eq!(
            decide(&PolicyConfig::default(), None, &history, NOW).action,
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
        let d = decide(&p, None, &history, NOW);
        assert_eq!(d.action, Action::Remove, "{}", d.why);
        // Neither the bounce already out of the window nor the reason that
        // does not count decides when the verdict changes.
        let due = NOW - 12 * DAY + 30 * DAY + 1;
        assert_eq!(d.review_at, Some(due));
        assert_eq!(decide(&p, None, &history, due - 1).action, Action::Remove);
        let later = decide(&p, None, &history, due);
        assert_eq!(later.action, Action::Keep, "{}", later.why);
        assert!(later.why.starts_with("4 soft bounces"), "{}", later.why);

        let ahead = decide(&p, None, &[soft(-2, Reason::MailboxFull)], NOW);
        assert_eq!(ahead.review_at, Some(NOW + 2 * DAY), "enters the window");
        assert_eq!(
            decide(&p, Some(&gone()), &history, NOW).review_at,
            None,
            "hard"
        );
        let uncounted = decide(&p, None, &[soft(0, Reason::Blocked)], NOW);
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
            status: None,
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
        for b in history.iter_mut() {
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
