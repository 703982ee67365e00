//! The address verdict: when does a bouncing address get removed?
//!
//! Pure rules over an address's bounce history, so they can be tested without
//! a database. The store gathers the history and calls [`decide_history`].
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
//! - An ARF complaint marks it `complained` and, by default, `remove`; a
//!   successful-delivery report makes the soft bounces before it stop
//!   counting; `[policy.reason.<reason>]` overrides what a reason does
//!   ([`rule_for`]). A forgiven address with nothing since is `forgiven` /
//!   `keep` ([`forgiven`]).

use crate::classify::Reason;
use crate::config::{PolicyConfig, ReasonAction};
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
    /// An ARF complaint (feedback report) decided the verdict.
    Complained,
    /// `bounced forgive` reset it, and nothing counted since.
    Forgiven,
}

impl AddressStatus {
    /// The stable name used in the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            AddressStatus::HardFail => "hard_fail",
            AddressStatus::SoftFail => "soft_fail",
            AddressStatus::Complained => "complained",
            AddressStatus::Forgiven => "forgiven",
        }
    }

    /// Parse the database name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hard_fail" => Some(AddressStatus::HardFail),
            "soft_fail" => Some(AddressStatus::SoftFail),
            "complained" => Some(AddressStatus::Complained),
            "forgiven" => Some(AddressStatus::Forgiven),
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

/// What a bounce with this reason does under `policy`: its
/// `[policy.reason]` override, else remove for a hard bounce, count for a
/// reason in `soft_reasons`, ignore for the rest.
pub fn rule_for(policy: &PolicyConfig, reason: Reason, hard: bool) -> ReasonAction {
    match policy.reasons.get(&reason) {
        Some(rule) => rule.action,
        None if hard => ReasonAction::Remove,
        None if policy.soft_reasons.contains(&reason) => ReasonAction::Count,
        None => ReasonAction::Ignore,
    }
}

/// Whether a soft bounce with this reason counts toward `soft_limit`.
fn counts(policy: &PolicyConfig, reason: Reason) -> bool {
    rule_for(policy, reason, false) == ReasonAction::Count
}

/// The verdict of an address `bounced forgive` reset at `at`, with no
/// bounce counted since: keep.
pub fn forgiven(at: i64, earlier: usize, note: Option<&str>) -> Decision {
    let note = note.map(|n| format!(" ({n})")).unwrap_or_default();
    Decision {
        status: AddressStatus::Forgiven,
        action: Action::Keep,
        reason: None,
        why: format!(
            "forgiven on {}{note}: {earlier} earlier bounce{} no longer count",
            date_text(at),
            if earlier == 1 { "" } else { "s" }
        ),
        review_at: None,
    }
}

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
        .filter(|b| b.at >= since && counts(policy, b.reason))
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
        .filter(|b| b.at >= since && b.at <= now && counts(policy, b.reason))
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
    // A reason with its own `remove_after` removes on its own count,
    // without the day spread.
    for (reason, rule) in &policy.reasons {
        let Some(after) = rule.remove_after else {
            continue;
        };
        let mine: Vec<i64> = counted
            .iter()
            .filter(|b| b.reason == *reason)
            .map(|b| b.at)
            .collect();
        if mine.len() >= usize::try_from(after).unwrap_or(usize::MAX) {
            let span = mine.last().unwrap_or(&0) - mine.first().unwrap_or(&0);
            return Decision {
                status: AddressStatus::SoftFail,
                action: Action::Remove,
                reason: Some(*reason),
                why: format!(
                    "{} soft bounce{} ({reason}) over {}, limit {after} in {window_text} \
                     ([policy.reason.{reason}] remove_after)",
                    mine.len(),
                    if mine.len() == 1 { "" } else { "s" },
                    days_text(span / DAY)
                ),
                review_at,
            };
        }
    }
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
    /// For an ARF complaint (reason `feedback`): its Feedback-Type.
    pub feedback_type: Option<String>,
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
/// `history` holds its hard and soft bounces and its complaints (reason
/// `feedback`); `delivered` is the time of the latest successful-delivery
/// report, if any: soft bounces up to it stop counting.
///
/// A bounce whose rule ([`rule_for`]) is remove decides at once (the
/// latest such one is named: a hard bounce, a complaint, or a reason set to
/// `action = "remove"`); else the counted soft bounces decide.
///
/// With `require_verified`, only verified bounces decide the action:
/// unverified ones are on record (and in the status) but never remove. Without
/// it, every bounce counts, and the explanation says so when none that
/// decided was verified (and verification is configured at all).
pub fn decide_history(
    policy: &PolicyConfig,
    require_verified: bool,
    history: &[Bounce],
    delivered: Option<i64>,
    now: i64,
) -> TrustedDecision {
    let trusted = |b: &&Bounce| !require_verified || b.verified == Some(true);
    // A delivery proves the mailbox works again: soft failures before it
    // say nothing any more. Hard bounces and complaints stay.
    let live =
        |b: &&&Bounce| b.hard || b.reason == Reason::Feedback || delivered.is_none_or(|d| b.at > d);
    let deciding: Vec<&Bounce> = history.iter().filter(trusted).collect();
    let remover = deciding
        .iter()
        .filter(live)
        .filter(|b| rule_for(policy, b.reason, b.hard) == ReasonAction::Remove)
        .max_by_key(|b| b.at);
    let mut decision = match remover {
        Some(b) if b.hard => decide(
            policy,
            Some(&HardBounce {
                at: b.at,
                reason: b.reason,
                status: b.status.clone(),
            }),
            &[],
            now,
        ),
        Some(b) => {
            let (status, why) = if b.reason == Reason::Feedback {
                let kind = b
                    .feedback_type
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                (
                    AddressStatus::Complained,
                    format!("complaint: feedback{kind} on {}", date_text(b.at)),
                )
            } else {
                (
                    AddressStatus::SoftFail,
                    format!(
                        "{} bounce on {}: [policy.reason.{}] action = \"remove\"",
                        b.reason,
                        date_text(b.at),
                        b.reason
                    ),
                )
            };
            Decision {
                status,
                action: Action::Remove,
                reason: Some(b.reason),
                why,
                review_at: None,
            }
        }
        None => {
            let soft: Vec<SoftBounce> = deciding
                .iter()
                .filter(live)
                .filter(|b| b.reason != Reason::Feedback)
                .map(|b| SoftBounce {
                    at: b.at,
                    reason: b.reason,
                })
                .collect();
            let mut d = decide(policy, None, &soft, now);
            // The status says what was seen, trusted or not.
            if history.iter().any(|b| b.hard) {
                d.status = AddressStatus::HardFail;
            } else if soft.is_empty() && history.iter().any(|b| b.reason == Reason::Feedback) {
                d.status = AddressStatus::Complained;
            }
            d
        }
    };
    if remover.is_some() && history.iter().any(|b| b.hard) {
        decision.status = AddressStatus::HardFail;
    }
    let verified = match remover {
        Some(_) => deciding.iter().any(|b| {
            rule_for(policy, b.reason, b.hard) == ReasonAction::Remove && b.verified == Some(true)
        }),
        None => deciding.iter().any(|b| b.verified == Some(true)),
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
        let d = decide_history(&p, false, &history, None, NOW).decision;
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
            feedback_type: None,
            verified,
        }
    }

    #[test]
    fn required_verification_keeps_addresses_with_forged_bounces() {
        let p = PolicyConfig::default();
        let forged = [bounce(0, true, Some(false))];
        let d = decide_history(&p, true, &forged, None, NOW);
        assert_eq!(d.decision.action, Action::Keep);
        assert_eq!(d.decision.status, AddressStatus::HardFail);
        assert!(!d.verified);
        assert!(
            d.decision.why.contains("1 unverified bounce not counted"),
            "{}",
            d.decision.why
        );

        let real = [bounce(0, true, Some(false)), bounce(0, true, Some(true))];
        let d = decide_history(&p, true, &real, None, NOW);
        assert_eq!(d.decision.action, Action::Remove);
        assert!(d.verified);
    }

    #[test]
    fn without_require_unverified_bounces_count_and_say_so() {
        let p = PolicyConfig::default();
        let d = decide_history(&p, false, &[bounce(0, true, Some(false))], None, NOW);
        assert_eq!(d.decision.action, Action::Remove);
        assert!(!d.verified);
        assert!(
            d.decision.why.ends_with("(unverified)"),
            "{}",
            d.decision.why
        );
        // With no [verify] at all nothing is said about trust.
        let d = decide_history(&p, false, &[bounce(0, true, None)], None, NOW);
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
            decide_history(&p, true, &history, None, NOW)
                .decision
                .action,
            Action::Keep
        );
        assert_eq!(
            decide_history(&p, false, &history, None, NOW)
                .decision
                .action,
            Action::Remove
        );
        for b in history.iter_mut() {
            b.verified = Some(true);
        }
        let d = decide_history(&p, true, &history, None, NOW);
        assert_eq!(d.decision.action, Action::Remove);
        assert!(d.verified);
    }

    fn with_rule(reason: Reason, action: ReasonAction, remove_after: Option<u32>) -> PolicyConfig {
        let mut p = PolicyConfig::default();
        p.reasons.insert(
            reason,
            crate::config::ReasonRule {
                action,
                remove_after,
            },
        );
        p
    }

    fn complaint(days_ago: i64) -> Bounce {
        Bounce {
            at: NOW - days_ago * DAY,
            reason: Reason::Feedback,
            hard: false,
            status: None,
            feedback_type: Some("abuse".into()),
            verified: None,
        }
    }

    fn soft_b(days_ago: i64, reason: Reason) -> Bounce {
        Bounce {
            reason,
            ..bounce(days_ago, false, None)
        }
    }

    #[test]
    fn a_complaint_removes_at_once_by_default_and_as_configured() {
        let p = PolicyConfig::default();
        let d = decide_history(&p, false, &[complaint(1)], None, NOW).decision;
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::Complained, Action::Remove)
        );
        assert_eq!(d.reason, Some(Reason::Feedback));
        assert_eq!(
            d.why,
            format!("complaint: feedback (abuse) on {}", date_text(NOW - DAY))
        );
        let ignore = with_rule(Reason::Feedback, ReasonAction::Ignore, None);
        let d = decide_history(&ignore, false, &[complaint(1)], None, NOW).decision;
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::Complained, Action::Keep)
        );
        // A complaint is not reset by a later delivery.
        let d = decide_history(&p, false, &[complaint(3)], Some(NOW - DAY), NOW).decision;
        assert_eq!(d.action, Action::Remove);
    }

    #[test]
    fn per_reason_overrides() {
        // suspend removes after 2, without the day spread.
        let p = with_rule(Reason::Suspend, ReasonAction::Count, Some(2));
        let two = [soft_b(2, Reason::Suspend), soft_b(1, Reason::Suspend)];
        let d = decide_history(&p, false, &two, None, NOW).decision;
        assert_eq!(d.action, Action::Remove, "{}", d.why);
        assert_eq!(
            d.why,
            "2 soft bounces (suspend) over 1 day, limit 2 in 30 days ([policy.reason.suspend] remove_after)"
        );
        assert_eq!(
            decide_history(&PolicyConfig::default(), false, &two, None, NOW)
                .decision
                .action,
            Action::Keep
        );
        // blocked is never counted by default; "count" makes it count.
        let many: Vec<_> = [0, 3, 6, 9, 12]
            .iter()
            .map(|d| soft_b(*d, Reason::Blocked))
            .collect();
        let count = with_rule(Reason::Blocked, ReasonAction::Count, None);
        assert_eq!(
            decide_history(&count, false, &many, None, NOW)
                .decision
                .action,
            Action::Remove
        );
        // mailboxfull set to ignore: five of them keep.
        let full: Vec<_> = [0, 3, 6, 9, 12]
            .iter()
            .map(|d| soft_b(*d, Reason::MailboxFull))
            .collect();
        let ignore = with_rule(Reason::MailboxFull, ReasonAction::Ignore, None);
        let d = decide_history(&ignore, false, &full, None, NOW).decision;
        assert_eq!(d.action, Action::Keep);
        assert!(d.why.starts_with("no counted soft bounce"), "{}", d.why);
        // One suspend bounce set to remove removes.
        let now = with_rule(Reason::Suspend, ReasonAction::Remove, None);
        let d = decide_history(&now, false, &[soft_b(1, Reason::Suspend)], None, NOW).decision;
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::SoftFail, Action::Remove)
        );
        assert!(
            d.why
                .contains("[policy.reason.suspend] action = \"remove\""),
            "{}",
            d.why
        );
        // A hard reason set to ignore no longer removes; the status still
        // says what was seen.
        let lenient = with_rule(Reason::UserUnknown, ReasonAction::Ignore, None);
        let d = decide_history(&lenient, false, &[bounce(1, true, None)], None, NOW).decision;
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::HardFail, Action::Keep)
        );
    }

    #[test]
    fn a_delivery_resets_soft_counts_but_not_hard_bounces() {
        let p = PolicyConfig::default();
        let full: Vec<_> = [1, 4, 8, 12, 16]
            .iter()
            .map(|d| soft_b(*d, Reason::MailboxFull))
            .collect();
        assert_eq!(
            decide_history(&p, false, &full, None, NOW).decision.action,
            Action::Remove
        );
        let d = decide_history(&p, false, &full, Some(NOW - 2 * DAY), NOW).decision;
        assert_eq!(d.action, Action::Keep);
        assert!(d.why.starts_with("1 soft bounce "), "{}", d.why);
        let hard = [bounce(5, true, None)];
        assert_eq!(
            decide_history(&p, false, &hard, Some(NOW - DAY), NOW)
                .decision
                .action,
            Action::Remove
        );
    }

    #[test]
    fn a_forgiven_address_keeps() {
        let d = forgiven(NOW, 3, Some("asked nicely"));
        assert_eq!(
            (d.status, d.action),
            (AddressStatus::Forgiven, Action::Keep)
        );
        assert_eq!(
            d.why,
            format!(
                "forgiven on {} (asked nicely): 3 earlier bounces no longer count",
                date_text(NOW)
            )
        );
    }

    #[test]
    fn names_round_trip() {
        for s in [
            AddressStatus::HardFail,
            AddressStatus::SoftFail,
            AddressStatus::Complained,
            AddressStatus::Forgiven,
        ] {
            assert_eq!(AddressStatus::parse(s.as_str()), Some(s));
        }
        for a in [Action::Remove, Action::Keep] {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
    }
}
