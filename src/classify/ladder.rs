//! The decision ladder: one recipient's observation in, a reason, a
//! severity and the ids of the rows that decided out.
//!
//! Most specific evidence first:
//!
//! 1. **scoped facts**: a reason the reader itself states (a provider's
//!    documented category, a configured-rule service), a receiving host's
//!    code table ([`super::rhost`]), or a phrase row scoped to the MTA
//!    family that wrote the bounce (`mta:<family>` in `data/phrases.tsv`);
//! 2. **the first pass**, in [`FIRST_PASS`] order: each reason holds when
//!    its status code names it (the more specific of the DSN field and the
//!    code in the remote reply, [`prefer`]) or its phrase family matches,
//!    under the stage conditions of its [`Test`];
//! 3. **the conflict table** (`data/vetoes.tsv`): a reason the text names
//!    beats the one a status code named, where the table says so;
//! 4. **the second pass** ([`SECOND_PASS`]): phrase families that only
//!    count when the status said nothing usable;
//! 5. **fallbacks** by status class, diagnostic type, action, reply code
//!    and stage; then `onhold` (a diagnostic we cannot read) or `undefined`.
//!
//! The order and the stage conditions follow what the reply codes and
//! stages mean (RFC 5321 §3.3, §4.2; RFC 3463) and match the order in which
//! Sisimai tests its reason classes, so that our reasons mean what
//! Sisimai's users expect.
//!
//! **Severity is anchored**: a reason that removes an address (user or
//! domain unknown, moved, no mail accepted) is hard only when a status code
//! that names it, the RCPT TO stage, or a scoped fact stands behind it. A
//! hard reason resting on a phrase alone is soft, and the evidence says
//! so: the soft threshold still removes an address that keeps bouncing.

use super::knowledge::{phrase_hits, PhraseHits, VetoWhen, KNOWLEDGE};
use super::status::Status;
use super::Reason;

/// What the ladder reads about one recipient.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// The recipient's own diagnostic (cleaned).
    pub diag: &'a str,
    /// The recipient's own block of the report, read only when the
    /// diagnostic names no reason.
    pub context: &'a str,
    /// The status chosen by [`prefer`].
    pub status: Option<Status>,
    /// The SMTP reply code.
    pub reply: Option<u16>,
    /// The SMTP stage (`RCPT`, `MAIL`, `DATA`, `HELO`, `EHLO`, `CONN`).
    pub command: Option<&'a str>,
    /// DSN Action.
    pub action: Option<&'a str>,
    /// The Diagnostic-Code type (`smtp`, `x-unix`, …), lower case.
    pub diagnostic_type: Option<&'a str>,
    /// The MTA family that wrote the bounce.
    pub family: Option<&'a str>,
    /// A reason a reader or provider table states, with its rule id.
    pub scoped: Option<(Reason, String)>,
}

/// What was decided, and by which rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The reason.
    pub reason: Reason,
    /// Rule ids, most decisive first (`status:5.1.1`, `s-uu-012`,
    /// `v-full`, `pass1:mailboxfull`, …).
    pub rules: Vec<String>,
    /// What anchors a hard reason, if anything does.
    pub anchor: Option<&'static str>,
}

/// How a first-pass reason is tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Test {
    /// Its status code, or its phrase.
    StatusOrPhrase,
    /// Its phrase only.
    Phrase,
    /// Its status or phrase, unless the status says the limit is the
    /// recipient's own (X.2.3, exceedlimit).
    SizeNotPerRecipient,
    /// Its phrase, not when refused at the connection or greeting (a relay
    /// refusal needs an envelope).
    PhraseNotGreeting,
    /// Its status or phrase; phrase only after DATA or at an unstated
    /// stage (content is judged once it has been sent).
    ContentAfterData,
    /// Its status, or its phrase when the stage is MAIL FROM, DATA or
    /// unknown (Sisimai's Rejected.true).
    Sender,
    /// The status names a filter and the text a filter or unknown user, or
    /// the text does after DATA (or at an unstated stage).
    Filter,
}

/// The first pass, in order (reason, test, citation).
pub const FIRST_PASS: &[(Reason, Test, &str)] = &[
    (Reason::MailboxFull, Test::StatusOrPhrase, "RFC 3463 X.2.2"),
    (
        Reason::MesgTooBig,
        Test::SizeNotPerRecipient,
        "RFC 3463 X.3.4",
    ),
    (Reason::ExceedLimit, Test::StatusOrPhrase, "RFC 3463 X.2.3"),
    (Reason::Suspend, Test::StatusOrPhrase, "RFC 3463 X.2.1; 525"),
    (
        Reason::HasMoved,
        Test::StatusOrPhrase,
        "RFC 5321 551; X.1.6",
    ),
    (
        Reason::NoRelaying,
        Test::PhraseNotGreeting,
        "RFC 5321 3.6.2",
    ),
    (
        Reason::AuthFailure,
        Test::StatusOrPhrase,
        "RFC 7372 X.7.20-X.7.26",
    ),
    (Reason::UserUnknown, Test::StatusOrPhrase, "RFC 3463 X.1.1"),
    (Reason::Filtered, Test::Filter, "RFC 3463 X.2.0/X.2.1"),
    (Reason::RequirePtr, Test::StatusOrPhrase, "RFC 7372 X.7.25"),
    (Reason::NotCompliantRfc, Test::Phrase, "RFC 5322"),
    (Reason::Rejected, Test::Sender, "RFC 3463 X.1.7/X.1.8"),
    (Reason::HostUnknown, Test::StatusOrPhrase, "RFC 3463 X.1.2"),
    (
        Reason::SpamDetected,
        Test::ContentAfterData,
        "RFC 7372 X.7.28",
    ),
    (Reason::Speeding, Test::Phrase, "rate limits"),
    (Reason::TooManyConn, Test::StatusOrPhrase, "RFC 3463 X.5.3"),
    (Reason::Blocked, Test::StatusOrPhrase, "RFC 3463 X.7.1"),
];

/// The second pass: phrase families tried when the status said nothing
/// usable (no code, a code of a vague reason, or the code of an unknown
/// user vetoed above).
pub const SECOND_PASS: &[Reason] = &[
    Reason::MailboxFull,
    Reason::SpamDetected,
    Reason::PolicyViolation,
    Reason::VirusDetected,
    Reason::NoRelaying,
    Reason::AuthFailure,
    Reason::BadReputation,
    Reason::SecurityError,
    Reason::SystemError,
    Reason::NetworkError,
    Reason::Speeding,
    Reason::Suspend,
    Reason::Expired,
    Reason::ContentError,
    Reason::SystemFull,
    Reason::NotAccept,
    Reason::MailerError,
];

/// Reasons too vague to stop looking: a scoped fact naming one is held
/// for the first pass to refine (Sisimai re-examines the same set when its
/// MTA module set it), and a status code naming one lets the second pass's
/// phrase families speak.
const REFINABLE: &[Reason] = &[
    Reason::Undefined,
    Reason::OnHold,
    Reason::SystemError,
    Reason::SecurityError,
    Reason::Expired,
    Reason::Suspend,
    Reason::NetworkError,
    Reason::HostUnknown,
    Reason::UserUnknown,
];

/// The status to believe: the DSN's `Status:` field or the code the remote
/// server wrote in its reply. A field that gives only its class (x.0.0),
/// or a sending MTA's own summary ("gave up": 4.4.7; "mail system": 5.3.x)
/// gives way to the remote server's specific code; where the reply code's
/// class agrees with only one of them, that one.
pub fn prefer(
    field: Option<Status>,
    in_reply: Option<Status>,
    reply: Option<u16>,
) -> Option<Status> {
    let (f, m) = match (field, in_reply) {
        (None, m) => return m,
        (f, None) => return f,
        (Some(f), Some(m)) => (f, m),
    };
    if let Some(c) = reply.map(|c| (c / 100) as u8) {
        if f.class != m.class {
            if m.class == c {
                return Some(m);
            }
            if f.class == c {
                return Some(f);
            }
        }
    }
    if f == m {
        return Some(f);
    }
    let zero = |s: Status| s.subject == 0 && s.detail == 0;
    let has_zero = |s: Status| s.subject == 0 || s.detail == 0;
    if zero(f) {
        return Some(if zero(m) { f } else { m });
    }
    if has_zero(f) && !has_zero(m) {
        return Some(m);
    }
    if zero(m) {
        return Some(f);
    }
    if (f.class == 4 && f.subject == 4 && f.detail == 7) || (f.class == 5 && f.subject == 3) {
        return Some(m);
    }
    if f.class == 5 && f.subject == 1 && f.detail == 3 && m.class == 5 && m.subject == 7 {
        return Some(m);
    }
    Some(f)
}

/// The reason a status code names, from `data/status.tsv`, with whether
/// the code alone anchors a hard verdict.
fn status_reason(s: Option<Status>) -> Option<(Reason, bool, String)> {
    let s = s?;
    let code = format!("{}.{}.{}", s.class, s.subject, s.detail);
    let row = KNOWLEDGE.status(&code)?;
    Some((row.reason, row.anchor, format!("status:{code}")))
}

/// Stages at which nothing but the sending host has been seen.
fn greeting(command: Option<&str>) -> bool {
    matches!(command, Some("CONN" | "HELO" | "EHLO"))
}

/// Stages before the message content was sent.
fn before_data(command: Option<&str>) -> bool {
    matches!(command, Some("CONN" | "HELO" | "EHLO" | "MAIL" | "RCPT"))
}

/// The text with every address replaced by a neutral token: a local part
/// is a name, not a statement ("userunknown@…" says nothing of the
/// mailbox), but the sentence around it still reads ("user `<x>` unknown").
pub fn mask_addresses(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('@') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        match word.find('@') {
            Some(at) if at > 0 && at + 1 < word.len() => {
                // Keep the brackets and punctuation around the address.
                let lead: String = word
                    .chars()
                    .take_while(|c| matches!(c, '<' | '(' | '[' | '"' | '\''))
                    .collect();
                let trail: String = {
                    let mut t: Vec<char> = word
                        .chars()
                        .rev()
                        .take_while(|c| {
                            matches!(c, '>' | ')' | ']' | '"' | '\'' | ',' | ';' | ':' | '.')
                        })
                        .collect();
                    t.reverse();
                    t.into_iter().collect()
                };
                out.push_str(&lead);
                out.push_str("addr@host");
                out.push_str(&trail);
            }
            _ => out.push_str(word),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How the candidate came about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Basis {
    Scoped,
    Status,
    Phrase,
    Fallback,
}

/// Decide one recipient.
pub fn decide(f: &Facts<'_>) -> Decision {
    let mut rules: Vec<String> = Vec::new();
    let smtp_like = f.diagnostic_type.is_none_or(|t| !t.starts_with("x-unix"));
    // The recipient's own words; its block of the report only when they
    // name nothing.
    // The own block is matched once: it serves both as the fallback text
    // and as the veto table's "own-report" evidence.
    let own = if f.context.is_empty() {
        PhraseHits::default()
    } else {
        phrase_hits(&mask_addresses(f.context), f.family)
    };
    let diag = mask_addresses(f.diag);
    let mut hits = phrase_hits(&diag, f.family);
    if hits.reasons.is_empty() && hits.scoped.is_empty() && !f.context.is_empty() {
        hits = own.clone();
        if !hits.reasons.is_empty() || !hits.scoped.is_empty() {
            rules.push("text:report".to_string());
        }
    }
    let by_status = status_reason(f.status);
    let (reason, basis) = pick(f, &hits, by_status.as_ref(), smtp_like, &mut rules);
    let reason = apply_vetoes(
        f,
        &hits,
        &own,
        by_status.as_ref(),
        reason,
        basis,
        &mut rules,
    );
    let anchor = anchor_of(f, reason, basis, by_status.as_ref());
    Decision {
        reason,
        rules,
        anchor,
    }
}

fn pick(
    f: &Facts<'_>,
    hits: &PhraseHits,
    by_status: Option<&(Reason, bool, String)>,
    smtp_like: bool,
    rules: &mut Vec<String>,
) -> (Reason, Basis) {
    // 1. Scoped facts. One that names a vague reason (or one the text can
    // still refine: an unknown user, a missing domain) is held back and
    // used only when the first pass finds nothing more specific.
    let mut held: Option<(Reason, String)> = None;
    for (r, id) in f.scoped.iter().chain(hits.scoped.iter()) {
        if REFINABLE.contains(r) {
            held.get_or_insert((*r, id.clone()));
            continue;
        }
        rules.push(id.clone());
        return (*r, Basis::Scoped);
    }
    let phrase = |r: Reason| hits.has(r);
    let note_status = |rules: &mut Vec<String>| {
        if let Some((_, _, id)) = by_status {
            rules.push(id.clone());
        }
    };
    let note_phrase = |r: Reason, rules: &mut Vec<String>| {
        if let Some(id) = hits.id(r) {
            rules.push(id.to_string());
        }
    };
    // 2. The first pass, for SMTP diagnostics.
    if smtp_like {
        for (r, test, _) in FIRST_PASS {
            let r = *r;
            let (by_code, by_words) = holds(r, *test, f, hits, by_status);
            // A held scoped fact holds at its own place in the order.
            if held.as_ref().is_some_and(|(h, _)| *h == r) {
                if let Some((_, id)) = held.take() {
                    rules.push(id);
                }
                rules.push(format!("pass1:{r}"));
                return (r, Basis::Scoped);
            }
            // A status naming an unknown user gives way to a text that
            // names something the veto table lets win; that is the veto
            // step's job, so here the code holds as it stands.
            if by_code {
                note_status(rules);
                rules.push(format!("pass1:{r}"));
                return (r, Basis::Status);
            }
            if by_words {
                note_phrase(r, rules);
                if r == Reason::Filtered && !phrase(Reason::Filtered) {
                    note_phrase(Reason::UserUnknown, rules);
                }
                rules.push(format!("pass1:{r}"));
                return (r, Basis::Phrase);
            }
        }
    }
    if let Some((r, id)) = held {
        rules.push(id);
        rules.push("scoped-after-pass1".to_string());
        return (r, Basis::Scoped);
    }
    // 3. The second pass, when the status said nothing usable.
    let name = by_status.map(|(r, _, _)| *r);
    if name.is_none_or(|n| REFINABLE.contains(&n)) || !smtp_like {
        for r in SECOND_PASS {
            if phrase(*r) {
                note_phrase(*r, rules);
                rules.push(format!("pass2:{r}"));
                return (*r, Basis::Phrase);
            }
        }
    }
    if let Some(n) = name {
        note_status(rules);
        rules.push("status-name".to_string());
        return (n, Basis::Status);
    }
    // 4. Fallbacks.
    let fallback = |r: Reason, id: &str, rules: &mut Vec<String>| {
        rules.push(id.to_string());
        (r, Basis::Fallback)
    };
    if let Some(s) = f.status {
        if s.subject == 6 {
            return fallback(Reason::ContentError, "class:x.6", rules);
        }
        if s.subject == 7 {
            return fallback(Reason::SecurityError, "class:x.7", rules);
        }
    }
    if !smtp_like {
        return fallback(Reason::MailerError, "type:x-unix", rules);
    }
    if let Some(c) = f.reply {
        if (401..=407).contains(&c) || (501..=507).contains(&c) {
            return fallback(Reason::SyntaxError, "reply:50x", rules);
        }
        if c == 551 {
            return fallback(Reason::HasMoved, "reply:551", rules);
        }
        if c == 521 || c == 556 {
            return fallback(Reason::NotAccept, "reply:521/556", rules);
        }
    }
    if matches!(f.action, Some("delayed" | "expired")) {
        return fallback(Reason::Expired, "action:delayed", rules);
    }
    if matches!(f.command, Some("HELO" | "EHLO" | "CONN")) {
        return fallback(Reason::Blocked, "stage:greeting", rules);
    }
    if f.diag.trim().is_empty() {
        fallback(Reason::Undefined, "empty", rules)
    } else {
        fallback(Reason::OnHold, "unread", rules)
    }
}

/// Whether reason `r` holds under its first-pass test: by its status
/// code, and by its words (with the stage conditions of the test).
fn holds(
    r: Reason,
    test: Test,
    f: &Facts<'_>,
    hits: &PhraseHits,
    by_status: Option<&(Reason, bool, String)>,
) -> (bool, bool) {
    let status_is = |x: Reason| by_status.is_some_and(|(y, _, _)| *y == x);
    let phrase = |x: Reason| hits.has(x);
    match test {
        Test::StatusOrPhrase => (status_is(r), phrase(r)),
        Test::Phrase => (false, phrase(r)),
        Test::SizeNotPerRecipient => (status_is(r), phrase(r) && !status_is(Reason::ExceedLimit)),
        Test::PhraseNotGreeting => (false, phrase(r) && !greeting(f.command)),
        Test::ContentAfterData => (status_is(r), phrase(r) && !before_data(f.command)),
        Test::Sender => {
            let vague = by_status.is_none_or(|(x, _, _)| {
                matches!(
                    x,
                    Reason::OnHold
                        | Reason::Undefined
                        | Reason::SecurityError
                        | Reason::SystemError
                )
            });
            let stage_ok = match f.command {
                Some("MAIL") => true,
                Some("DATA") => !status_is(Reason::UserUnknown),
                _ => vague,
            };
            (status_is(r), phrase(r) && stage_ok)
        }
        Test::Filter => {
            let words = phrase(Reason::Filtered) || phrase(Reason::UserUnknown);
            if status_is(Reason::Suspend) {
                (false, false)
            } else if status_is(r) {
                (words, false)
            } else {
                (
                    false,
                    words && !before_data(f.command) && !status_is(Reason::UserUnknown),
                )
            }
        }
    }
}

/// Whether the words of `r` hold by its own test (reasons outside the
/// first pass: their phrase alone).
fn words_hold(
    r: Reason,
    f: &Facts<'_>,
    hits: &PhraseHits,
    by_status: Option<&(Reason, bool, String)>,
) -> bool {
    match FIRST_PASS.iter().find(|(x, _, _)| *x == r) {
        Some((_, t, _)) => holds(r, *t, f, hits, by_status).1,
        None => hits.has(r),
    }
}

/// Apply the conflict table once: the first veto whose loser is the
/// candidate, whose winner the text names and whose condition holds.
fn apply_vetoes(
    f: &Facts<'_>,
    hits: &PhraseHits,
    own: &PhraseHits,
    by_status: Option<&(Reason, bool, String)>,
    reason: Reason,
    basis: Basis,
    rules: &mut Vec<String>,
) -> Reason {
    // A scoped fact of a specific reason is final; one the first pass was
    // asked to refine still meets the conflict table.
    if basis == Basis::Scoped && !REFINABLE.contains(&reason) {
        return reason;
    }
    for v in &KNOWLEDGE.vetoes {
        // A veto on how the loser was found needs no words of the winner.
        // A winner must hold by its own test (its stage conditions too);
        // a veto on how the loser was found needs no words of the winner.
        let implied = v.when == VetoWhen::LoserNotAnchored;
        let in_report = v.when == VetoWhen::OwnReport;
        let named = if in_report {
            own.has(v.winner)
        } else {
            implied || words_hold(v.winner, f, hits, by_status)
        };
        if v.loser != reason || !named {
            continue;
        }
        let holds = match v.when {
            VetoWhen::Always => true,
            VetoWhen::StageData => f.command == Some("DATA"),
            VetoWhen::NotStageRcpt => f.command != Some("RCPT"),
            VetoWhen::StagedNotRcpt => f.command.is_some_and(|c| c != "RCPT"),
            VetoWhen::OwnReport => true,
            VetoWhen::LoserNotAnchored => {
                basis == Basis::Phrase && f.command != Some("RCPT") && !mailbox_name_reply(f)
            }
        };
        if holds {
            if let Some(id) = if in_report {
                own.id(v.winner)
            } else {
                hits.id(v.winner)
            } {
                rules.push(id.to_string());
            }
            rules.push(v.id.clone());
            return v.winner;
        }
    }
    reason
}

/// A 553 reply ("mailbox name not allowed", RFC 5321 §4.2.2) that did not
/// come after DATA: a reply about the mailbox name itself.
fn mailbox_name_reply(f: &Facts<'_>) -> bool {
    f.reply == Some(553) && f.command != Some("DATA")
}

/// What makes a hard reason trustworthy, if anything.
fn anchor_of(
    f: &Facts<'_>,
    reason: Reason,
    basis: Basis,
    by_status: Option<&(Reason, bool, String)>,
) -> Option<&'static str> {
    if basis == Basis::Scoped {
        return Some("scoped fact");
    }
    if by_status.is_some_and(|(r, anchor, _)| *r == reason && *anchor) {
        return Some("status code");
    }
    if f.command == Some("RCPT") {
        return Some("RCPT TO stage");
    }
    match (reason, f.reply) {
        (Reason::HasMoved, Some(551)) | (Reason::NotAccept, Some(521 | 556)) => Some("reply code"),
        (Reason::UserUnknown, _) if mailbox_name_reply(f) => Some("553 reply (mailbox name)"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(s: &str) -> Option<Status> {
        Status::parse(s)
    }

    fn facts<'a>(diag: &'a str, status: &str, command: Option<&'a str>) -> Facts<'a> {
        Facts {
            diag,
            status: st(status),
            command,
            ..Facts::default()
        }
    }

    #[test]
    fn prefer_takes_the_remote_code_over_a_summary() {
        assert_eq!(prefer(st("5.0.0"), st("5.1.1"), Some(550)), st("5.1.1"));
        assert_eq!(prefer(st("4.4.7"), st("4.2.2"), Some(452)), st("4.2.2"));
        assert_eq!(prefer(st("5.1.1"), st("5.0.0"), Some(550)), st("5.1.1"));
        assert_eq!(prefer(st("5.1.1"), st("4.2.2"), Some(452)), st("4.2.2"));
        assert_eq!(prefer(None, st("5.2.2"), None), st("5.2.2"));
    }

    #[test]
    fn status_and_phrase_and_vetoes() {
        let d = decide(&facts(
            "550 5.1.1 <a@b.test>... User unknown",
            "5.1.1",
            None,
        ));
        assert_eq!(d.reason, Reason::UserUnknown);
        assert_eq!(d.anchor, Some("status code"));
        // A full mailbox behind a 5.1.1 is a full mailbox.
        let d = decide(&facts(
            "procmail: Quota exceeded while writing; 550 5.1.1 Can't create output",
            "5.1.1",
            None,
        ));
        assert_eq!(d.reason, Reason::MailboxFull);
        // "user unknown" after DATA is a filter's pretext.
        let d = decide(&facts("550 User unknown", "5.0.0", Some("DATA")));
        assert_eq!(d.reason, Reason::Filtered);
        // At RCPT TO the words are the lookup.
        let d = decide(&facts("550 User unknown", "5.0.0", Some("RCPT")));
        assert_eq!(d.reason, Reason::UserUnknown);
        assert_eq!(d.anchor, Some("RCPT TO stage"));
    }

    #[test]
    fn an_address_is_not_a_statement() {
        assert_eq!(
            mask_addresses("550 <userunknown@x.test>... Mailbox full"),
            "550 <addr@host>... Mailbox full"
        );
        let d = decide(&facts("550 <userunknown@x.test>... Mailbox full", "", None));
        assert_eq!(d.reason, Reason::MailboxFull);
    }

    #[test]
    fn phrase_alone_is_not_an_anchor() {
        let d = decide(&facts("No such user here", "", None));
        assert!(d.anchor.is_none(), "{d:?}");
    }

    #[test]
    fn dns_failure_is_not_a_missing_domain() {
        let d = decide(&facts(
            "Host or domain name not found. Name service error for name=x.test type=MX: Malformed or unexpected name server reply",
            "5.4.4",
            None,
        ));
        assert_ne!(d.reason, Reason::HostUnknown, "{d:?}");
        assert_ne!(d.reason, Reason::NotAccept, "{d:?}");
    }

    /// Wordings from several families, statuses and stages to combine.
    const WORDINGS: &[&str] = &[
        "550 5.1.1 <a@b.test>: Recipient address rejected: User unknown in local recipient table",
        "550 No such user here",
        "552 5.2.2 Mailbox full",
        "550 Requested action not taken: mailbox unavailable",
        "554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org",
        "550 Host unknown",
        "Host or domain name not found. Name service error for name=b.test type=A: Host not found",
        "552 Message size exceeds fixed maximum message size",
        "451 4.3.0 Temporary local problem - try later",
        "550 5.7.1 Message rejected as spam",
        "553 sorry, that domain isn't in my list of allowed rcpthosts",
        "550 Relay access denied",
        "421 connection timed out",
        "",
    ];
    const STATUSES: &[&str] = &[
        "", "5.0.0", "5.1.1", "5.1.2", "5.2.2", "5.7.1", "4.4.7", "5.4.4",
    ];
    const STAGES: &[Option<&str>] = &[None, Some("RCPT"), Some("DATA"), Some("MAIL"), Some("CONN")];

    fn hard(d: &Decision) -> bool {
        d.reason.is_hard(true) && d.anchor.is_some()
    }

    proptest::proptest! {
        /// Removing the stage, the status code or the MTA family from a
        /// bounce may weaken a verdict, never turn it hard. (A status code
        /// that names a soft reason the text contradicts is evidence
        /// against the text: removing it may of course leave the text's
        /// hard reading, so that one case is not a weakening.)
        #[test]
        fn less_evidence_is_never_harder(w in 0..WORDINGS.len(), s in 0..STATUSES.len(), c in 0..STAGES.len(), fam in proptest::bool::ANY) {
            let diag = WORDINGS[w];
            let full = Facts {
                diag,
                status: st(STATUSES[s]),
                command: STAGES[c],
                family: fam.then_some("postfix"),
                ..Facts::default()
            };
            let whole = hard(&decide(&full));
            let contradicting = status_reason(full.status).is_some_and(|(r, _, _)| !r.is_hard(true))
                && decide(&Facts { status: None, ..full.clone() }).reason.is_hard(true);
            for (i, weaker) in [
                Facts { command: None, ..full.clone() },
                Facts { status: None, ..full.clone() },
                Facts { family: None, ..full.clone() },
            ]
            .into_iter()
            .enumerate()
            {
                if i == 1 && contradicting {
                    continue;
                }
                let d = decide(&weaker);
                proptest::prop_assert!(whole || !hard(&d), "{diag:?} {:?}: {d:?}", STATUSES[s]);
            }
        }

        /// Paraphrases within a family give the same reason.
        #[test]
        fn paraphrases_keep_their_reason(s in 0..STATUSES.len(), c in 0..STAGES.len()) {
            let families: &[&[&str]] = &[
                &["User unknown", "user unknown", "USER UNKNOWN", "Unknown user", "No such user", "no such mailbox"],
                &["Mailbox full", "mailbox is full", "Quota exceeded", "user is over quota", "mailbox size limit exceeded"],
                &["Relay access denied", "relaying denied", "we do not relay", "Relaying not permitted"],
                &["Message size exceeds fixed maximum message size", "message too large", "Message is too big"],
            ];
            for family in families {
                let reasons: Vec<Reason> = family
                    .iter()
                    .map(|w| {
                        let text = format!("550 {w}");
                        decide(&Facts { diag: &text, status: st(STATUSES[s]), command: STAGES[c], ..Facts::default() }).reason
                    })
                    .collect();
                proptest::prop_assert!(reasons.windows(2).all(|p| p[0] == p[1]), "{family:?} {:?} {:?}: {reasons:?}", STATUSES[s], STAGES[c]);
            }
        }
    }
}
