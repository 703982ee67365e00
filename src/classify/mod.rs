//! Bounce classification: raw message bytes in, a [`Verdict`] out.
//!
//! This module is pure: it never touches the network, the file system or the
//! database, so it can be tested, fuzzed and benchmarked on bytes alone. The
//! daemon, the `classify` command and the corpus tests all call [`classify`].
//!
//! The vocabulary of reasons is Sisimai's, so that operators who know that
//! library read our verdicts the same way.
//!
//! # How a message is read: a pure pipeline
//!
//! 1. [`crate::parse`] takes the message apart (MIME, charsets, the
//!    delivery-status and feedback-report parts, the returned original).
//! 2. [`mta::identify`] names the software that wrote the bounce from the
//!    fingerprint table (`data/mta.tsv`), with its evidence.
//! 3. Readers turn what they find into one [`Finding`] (observation) per
//!    recipient: RFC 3464 fields ([`crate::dsn`]), SES JSON notifications
//!    ([`notification`]) and the human-readable layouts of MTAs
//!    ([`layouts::READERS`]). A recipient keeps only its own text: a block
//!    of the report is attached to a DSN recipient only when it names that
//!    recipient (or both are the only one), and the report as a whole is
//!    read only for a single-recipient report.
//! 4. [`decide`] runs each observation down the decision [`ladder`]: scoped
//!    facts (reader, provider code tables in [`rhost`], phrase rows scoped
//!    to the MTA family), the status code ([`ladder::prefer`] picks the
//!    more specific of the DSN field and the remote reply; meanings in
//!    `data/status.tsv`), phrase families (`data/phrases.tsv`, one
//!    [`automaton`] over the recipient's text) under stage conditions, the
//!    conflict table (`data/vetoes.tsv`), then fallbacks. Every verdict's
//!    evidence lists the ids of the rows that decided it (`rule …`).
//! 5. Severity is anchored: a reason that removes an address is hard only
//!    when a status code naming it, the RCPT TO stage, a 553 reply or a
//!    scoped fact stands behind it; on a phrase alone it is soft.
//! 6. Messages without a failed recipient may still be feedback reports
//!    (ARF, Apple unsubscribe, SES complaints) or auto-replies; anything else
//!    is `not_bounce`. Text layouts are believed only on a message that
//!    presents itself as a delivery report (sender, subject, wording), so a
//!    person quoting "user unknown" is not a bounce.
//!
//! The knowledge lives in `src/classify/data/` ([`knowledge`]): tables with
//! ids and sources, not branches of code. Rows that follow Sisimai's
//! published phrase, status and MTA tables say so, with its licence notice
//! (`data/LICENSE-sisimai`, BSD 2-Clause).

pub mod address;
pub mod automaton;
pub mod knowledge;
pub mod ladder;
pub mod layouts;
pub mod mta;
pub mod notification;
pub mod rhost;
pub mod status;

use crate::{dsn, parse};
use regex::Regex;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

/// What a message is, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A non-delivery report: at least one recipient failed for good.
    Bounce,
    /// A delay warning: the sending MTA is still retrying.
    Delay,
    /// An automatic reply (RFC 3834, vacation, out of office).
    Autoreply,
    /// An ARF (RFC 5965) feedback report, such as a spam complaint.
    Feedback,
    /// A successful-delivery or relayed DSN.
    Delivered,
    /// Anything else: a human reply, spam, a newsletter.
    NotBounce,
}

impl Kind {
    /// The stable lower-case name used in JSON, the database and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Delay => "delay",
            Kind::Autoreply => "autoreply",
            Kind::Feedback => "feedback",
            Kind::Delivered => "delivered",
            Kind::NotBounce => "not_bounce",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($($variant:ident => $name:literal, $doc:literal;)*) => {
        /// Why a recipient failed, in Sisimai's vocabulary.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $(#[doc = $doc] $variant,)*
        }

        impl Reason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The Sisimai name of the reason (`userunknown`, `mailboxfull`, …).
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }
        }

        impl FromStr for Reason {
            type Err = UnknownReason;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($name => Ok(Reason::$variant),)* other => Err(UnknownReason(other.to_string())) }
            }
        }
    };
}

reasons! {
    UserUnknown => "userunknown", "The mailbox does not exist at the destination.";
    HostUnknown => "hostunknown", "The destination domain does not exist or has no mail host.";
    HasMoved => "hasmoved", "The address has moved and no longer receives mail (551).";
    NotAccept => "notaccept", "The destination accepts no mail at all (null MX, 521/556).";
    MailboxFull => "mailboxfull", "The mailbox is over quota.";
    MesgTooBig => "mesgtoobig", "The message is larger than the destination accepts.";
    ExceedLimit => "exceedlimit", "The message exceeds a recipient-specific size limit.";
    Suspend => "suspend", "The mailbox exists but is disabled or suspended.";
    Expired => "expired", "Delivery was retried until the queue lifetime ran out.";
    Filtered => "filtered", "The recipient's own filter or settings refused the message.";
    Rejected => "rejected", "The envelope sender was refused.";
    Blocked => "blocked", "The sending host (IP address) was refused.";
    AuthFailure => "authfailure", "SPF, DKIM or DMARC authentication failed.";
    RequirePtr => "requireptr", "The sending host has no valid reverse DNS.";
    BadReputation => "badreputation", "The sending host's reputation is too low.";
    NotCompliantRfc => "notcompliantrfc", "The message does not comply with the RFCs.";
    Speeding => "speeding", "Rate limiting: too many messages too fast.";
    TooManyConn => "toomanyconn", "Too many connections from the sending host.";
    SpamDetected => "spamdetected", "The content was judged to be spam.";
    VirusDetected => "virusdetected", "The content carried a virus.";
    PolicyViolation => "policyviolation", "A content or site policy refused the message.";
    ContentError => "contenterror", "The content (headers, encoding) was invalid.";
    SecurityError => "securityerror", "A security or authentication requirement was not met.";
    NoRelaying => "norelaying", "Relaying was denied.";
    NetworkError => "networkerror", "A network or DNS problem prevented delivery.";
    SystemError => "systemerror", "The destination system failed.";
    SystemFull => "systemfull", "The destination system's disk is full.";
    MailerError => "mailererror", "The local delivery program failed.";
    SyntaxError => "syntaxerror", "An SMTP syntax error.";
    OnHold => "onhold", "The failure could not be decided yet.";
    Undefined => "undefined", "No reason could be found.";
    Delivered => "delivered", "The message was delivered (success DSN).";
    Feedback => "feedback", "An ARF feedback report.";
    Vacation => "vacation", "An automatic vacation reply.";
}

impl Reason {
    /// Whether a failure for this reason means the address cannot exist.
    ///
    /// This is Sisimai's hard rule: only unknown users, unknown hosts, moved
    /// addresses and "accepts no mail" are hard, and `notaccept` only when the
    /// reply is permanent. A 5xx code alone never makes a bounce hard: a full
    /// mailbox behind a 550 is still a full mailbox.
    pub fn is_hard(self, permanent: bool) -> bool {
        match self {
            Reason::UserUnknown | Reason::HostUnknown | Reason::HasMoved => true,
            Reason::NotAccept => permanent,
            _ => false,
        }
    }

    /// Whether this reason is a delivery failure at all (as opposed to a
    /// success report, a complaint or an auto-reply).
    pub fn is_failure(self) -> bool {
        !matches!(
            self,
            Reason::Delivered | Reason::Feedback | Reason::Vacation
        )
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The error of parsing a reason name that is not in the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown bounce reason {0:?}")]
pub struct UnknownReason(pub String);

/// What the verdict means for the address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The address cannot exist: remove it.
    Hard,
    /// A failure that may pass: keep the address (subject to the policy's
    /// soft-bounce threshold).
    Soft,
    /// Not a failure (delivered, delayed, auto-reply, feedback).
    None,
}

impl Severity {
    /// The stable lower-case name used in JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Hard => "hard",
            Severity::Soft => "soft",
            Severity::None => "none",
        }
    }
}

/// The verdict for one recipient named in a bounce.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipient {
    /// The failed address, lower-cased domain, no angle brackets.
    pub address: String,
    /// The original or expanded address the report also gives, if different.
    pub alias: Option<String>,
    /// Why delivery failed.
    pub reason: Reason,
    /// Hard (remove), soft (keep) or none (not a failure).
    pub severity: Severity,
    /// The enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// The SMTP reply code, e.g. `550`.
    pub reply_code: Option<u16>,
    /// The SMTP command in reply to which the failure came (`RCPT`, `DATA`, …).
    pub command: Option<String>,
    /// The DSN `Action` (`failed`, `delayed`, `delivered`, `relayed`, `expanded`).
    pub action: Option<String>,
    /// The remote MTA that gave the answer, if known.
    pub remote_mta: Option<String>,
    /// The diagnostic text, unfolded and trimmed.
    pub diagnostic: Option<String>,
    /// For ARF reports: the Feedback-Type (`abuse`, `opt-out`, …).
    pub feedback_type: Option<String>,
    /// Which signals decided this verdict, most decisive first.
    pub evidence: Vec<String>,
}

/// The verdict for one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// What the message is.
    pub kind: Kind,
    /// Every recipient the message reports on (empty for `not_bounce`).
    pub recipients: Vec<Recipient>,
    /// The bounce's own Message-ID.
    pub message_id: Option<String>,
    /// The Message-ID of the returned original message, if it came back.
    pub original_message_id: Option<String>,
    /// Message-level signals (layout recognised, report type, …).
    pub evidence: Vec<String>,
    /// Where the message could carry signed-bounce tokens, for
    /// `crate::trust::check` (not part of the printed verdict).
    #[serde(skip)]
    pub token_sources: parse::TokenSources,
}

/// Why a message could not be classified at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// The bytes are not an Internet message (empty, binary, no header).
    #[error("not a parseable message: {0}")]
    Unparseable(String),
}

/// One recipient's evidence, as every reader (DSN fields, MTA layouts,
/// headers) produces it; [`decide`] turns it into a [`Recipient`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Finding {
    /// The failed address, normalised.
    pub address: String,
    /// The original or expanded address, if the report gives one.
    pub alias: Option<String>,
    /// Enhanced status code from a report field.
    pub status: Option<String>,
    /// SMTP reply code from a report field.
    pub reply_code: Option<u16>,
    /// DSN Action, lower case.
    pub action: Option<String>,
    /// Remote MTA.
    pub remote_mta: Option<String>,
    /// The DSN's Reporting-MTA: the host that wrote the report.
    pub reporting_mta: Option<String>,
    /// The diagnostic text, unfolded.
    pub diagnostic: String,
    /// `Diagnostic-Code` type (`smtp`, `x-unix`, …), lower case.
    pub diagnostic_type: Option<String>,
    /// Which reader produced this record.
    pub source: &'static str,
    /// The SMTP command the refusal answered, when the layout shows it.
    pub command: Option<String>,
    /// Text around this recipient in the human-readable part (for DSN
    /// findings) or of the whole report: read only when the diagnostic
    /// itself names no reason.
    pub context: String,
    /// The diagnostic was found near the address but not tied to it by the
    /// layout (an envelope summary beside an error text): never enough on
    /// its own to call the address unknown.
    pub loose: bool,
    /// Whether `context` is this recipient's own block of the report (not
    /// the whole report shared by every recipient).
    pub context_is_own: bool,
    /// A reason the layout itself states (a carrier's fixed wording).
    pub reason_hint: Option<Reason>,
    /// The MTA family that wrote the report ([`mta::identify`]).
    pub family: Option<String>,
}

/// Where Sisimai puts a feedback report's recipient when the report names
/// none; keeping the same placeholder keeps our output comparable.
pub const UNDISCLOSED_RECIPIENT: &str = "undisclosed-recipient-in-headers@libsisimai.org.invalid";

/// Classify one raw message (RFC 5322 bytes, CRLF or LF line ends).
///
/// Never panics, whatever the input.
pub fn classify(raw: &[u8]) -> Result<Verdict, ClassifyError> {
    let mail = parse::parse(raw).map_err(|e| {
        ClassifyError::Unparseable(
            match e {
                parse::ParseError::Empty => "empty input",
                parse::ParseError::NoHeader => "no header field at the start",
            }
            .to_string(),
        )
    })?;
    Ok(classify_mail(&mail))
}

/// Classify an already parsed message.
pub fn classify_mail(mail: &parse::Mail) -> Verdict {
    let mut v = classify_one(mail);
    if v.recipients.is_empty() {
        if let Some(inner) = forwarded_bounce(mail) {
            v = inner;
        }
    }
    // Tokens ride on the message as delivered to us, even when the report
    // read was one forwarded inside it.
    v.token_sources = mail.token_sources.clone();
    v
}

static FORWARD_MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^[ \t]*-*[ \t]*(?:begin forwarded message|forwarded message|original message)[ \t]*-*:?[ \t]*$")
        .expect("static regex")
});

/// A bounce that a person forwarded ("Fwd: Returned mail"): the bounce is
/// quoted after a forward marker. Read it as a message of its own, once.
fn forwarded_bounce(mail: &parse::Mail) -> Option<Verdict> {
    let m = FORWARD_MARKER.find(&mail.text)?;
    let rest = mail.text.get(m.end()..)?;
    let quoted = rest.lines().filter(|l| l.starts_with('>')).count();
    let total = rest.lines().filter(|l| !l.trim().is_empty()).count().max(1);
    let inner = if quoted * 2 > total {
        layouts::unquote(rest)
    } else {
        rest.to_string()
    };
    let inner = inner.trim_start_matches(['\r', '\n', ' ']);
    let parsed = parse::parse(inner.as_bytes()).ok()?;
    let mut v = classify_one(&parsed);
    if v.kind != Kind::Bounce || v.recipients.is_empty() {
        return None;
    }
    v.evidence
        .insert(0, "bounce forwarded inside a message".to_string());
    v.message_id = mail.message_id.clone();
    Some(v)
}

/// Classify one message, without looking into forwarded content.
fn classify_one(mail: &parse::Mail) -> Verdict {
    let mut evidence: Vec<String> = Vec::new();
    let original_message_id = mail
        .original
        .as_ref()
        .and_then(|o| o.get("message-id"))
        .map(|s| s.trim().trim_matches(|c| c == '<' || c == '>').to_string());
    let mut verdict = Verdict {
        kind: Kind::NotBounce,
        recipients: Vec::new(),
        message_id: mail.message_id.clone(),
        original_message_id,
        evidence: Vec::new(),
        token_sources: parse::TokenSources::default(),
    };

    if let Some(recipients) = feedback(mail, &mut evidence) {
        verdict.kind = Kind::Feedback;
        verdict.recipients = recipients;
        verdict.evidence = evidence;
        return verdict;
    }

    match notification::read(&mail.text) {
        Some(notification::Notification::Complaint(addrs, ftype)) => {
            evidence.push("SES complaint notification".to_string());
            verdict.kind = Kind::Feedback;
            verdict.recipients = feedback_recipients(addrs, ftype);
            verdict.evidence = evidence;
            return verdict;
        }
        Some(notification::Notification::Recipients(found)) if !found.is_empty() => {
            evidence.push("SES notification (JSON)".to_string());
            return finish(verdict, found, "", None, evidence);
        }
        _ => {}
    }

    let report_text = layouts::report_part(&mail.text);
    let bounce_like = looks_like_bounce(mail, report_text);
    let identity = mta::identify(mail, report_text);
    if let Some(f) = &identity.family {
        evidence.push(format!("mta {f} ({})", identity.evidence.join(", ")));
    }
    let family = identity.family;
    let mut findings = dsn_findings(mail, &mut evidence);
    if !findings.is_empty() {
        evidence.push("RFC 3464 delivery-status report".to_string());
    }

    let to: Vec<String> = mail
        .header("to")
        .map(|v| {
            address::find_all(v)
                .into_iter()
                .map(|f| f.address)
                .collect()
        })
        .unwrap_or_default();
    let input = layouts::LayoutInput {
        text: report_text,
        from: mail.from_address.as_deref(),
        to: &to,
    };
    let mut layout_findings =
        run_readers(&input, &mut evidence, findings.is_empty() && bounce_like);
    if layout_findings.is_empty() && findings.is_empty() && report_text.contains("\n>") {
        // A bounce forwarded by a person: read it without the quoting.
        let unquoted = layouts::unquote(report_text);
        let inner = layouts::report_part(&unquoted);
        let input = layouts::LayoutInput {
            text: inner,
            ..input
        };
        layout_findings = run_readers(&input, &mut evidence, bounce_like);
        if !layout_findings.is_empty() {
            evidence.push("quoted (forwarded) bounce".to_string());
        }
    }

    if findings.is_empty() {
        if bounce_like {
            findings = layout_findings;
        }
    } else {
        merge_layout(&mut findings, &layout_findings);
    }

    if bounce_like {
        // Exim (and MTAs that copy it) lists every failed recipient in
        // X-Failed-Recipients: one the readers missed is still a recipient,
        // with no text of its own.
        if let Some(v) = mail.header("x-failed-recipients") {
            let before = findings.len();
            for a in address::find_all(v) {
                let known = findings.iter().any(|f| {
                    f.address.eq_ignore_ascii_case(&a.address)
                        || f.alias
                            .as_deref()
                            .is_some_and(|x| x.eq_ignore_ascii_case(&a.address))
                });
                if !known && findings.len() < MAX_RECIPIENTS {
                    findings.push(Finding {
                        address: a.address,
                        source: "X-Failed-Recipients header",
                        ..Finding::default()
                    });
                }
            }
            if findings.len() > before {
                evidence.push("X-Failed-Recipients header".to_string());
            }
        }
    }

    if findings.is_empty() && bounce_like {
        // Nothing in the report names the recipient, but the returned
        // message does: a single To of the original is the recipient.
        if let Some(f) = original_recipient(mail, report_text) {
            evidence.push("recipient from the returned message's To".to_string());
            findings.push(f);
        }
    }

    if findings.is_empty() {
        if let Some(f) = list_server_notice(mail, report_text) {
            evidence.push("fml list-server notice".to_string());
            findings.push(f);
        }
    }

    if findings.is_empty() {
        if let Some(r) = autoreply(mail, &mut evidence) {
            verdict.kind = Kind::Autoreply;
            verdict.recipients = vec![r];
        } else {
            evidence.push("no failed recipient found".to_string());
        }
        verdict.evidence = evidence;
        return verdict;
    }

    finish(verdict, findings, report_text, family.as_deref(), evidence)
}

/// Decide every finding and set the verdict's kind.
fn finish(
    mut verdict: Verdict,
    findings: Vec<Finding>,
    shared: &str,
    family: Option<&str>,
    evidence: Vec<String>,
) -> Verdict {
    // Text shared by all recipients (for reports that put the reason once,
    // above the list), used only when a recipient's own text says nothing.
    let mut recipients: Vec<Recipient> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // A report without DSN actions that calls itself a warning is a delay
    // notice: the sending MTA is still trying.
    let head = shared.get(..shared.len().min(8192)).unwrap_or("");
    let warning_only = DELAY_WARNING.is_match(head) && !PERMANENT_WORDS.is_match(head);
    for f in findings.iter().take(MAX_RECIPIENTS) {
        let mut f = f.clone();
        if f.action.is_none() && warning_only {
            f.action = Some("delayed".to_string());
        }
        if f.context.is_empty() && findings.len() == 1 {
            // With one recipient, the whole report is about it; with
            // several, a recipient never borrows another's text.
            f.context = shared
                .get(..shared.len().min(4096))
                .unwrap_or("")
                .to_string();
            f.context_is_own = true;
        }
        if f.family.is_none() {
            f.family = family.map(str::to_string);
        }
        let r = decide(&f);
        if seen.insert(r.address.to_ascii_lowercase()) {
            recipients.push(r);
        }
    }
    verdict.kind = if recipients
        .iter()
        .any(|r| r.reason.is_failure() && r.severity != Severity::None)
    {
        Kind::Bounce
    } else if recipients
        .iter()
        .any(|r| r.action.as_deref() == Some("delayed"))
    {
        Kind::Delay
    } else if recipients.iter().all(|r| r.reason == Reason::Delivered) {
        Kind::Delivered
    } else {
        Kind::Bounce
    };
    verdict.recipients = recipients;
    verdict.evidence = evidence;
    verdict
}

/// The single To of the returned original (a MIME part, or pasted after an
/// "unsent message follows" marker), with the report text as diagnostic.
fn original_recipient(mail: &parse::Mail, report_text: &str) -> Option<Finding> {
    let pasted;
    let original = match &mail.original {
        Some(o) => o,
        None => {
            let rest = mail.text.get(report_text.len()..)?;
            // Skip the marker line itself.
            let rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or(rest);
            pasted = parse::original_from_text(rest.trim_start_matches(['\r', '\n']));
            &pasted
        }
    };
    let to = original.get("to")?;
    let addrs = address::find_all(to);
    if addrs.len() != 1 {
        return None;
    }
    let a = addrs.into_iter().next()?.address;
    if address::is_system_address(&a) || mail.from_address.as_deref() == Some(a.as_str()) {
        return None;
    }
    let text: String = report_text.split_whitespace().collect::<Vec<_>>().join(" ");
    Some(Finding {
        address: a,
        // The report text is about this recipient alone, but it is prose
        // around no diagnostic of its own: read it as context.
        context: text.chars().take(4000).collect(),
        context_is_own: true,
        source: "returned message",
        ..Finding::default()
    })
}

/// Run the layout readers in order; the first that finds recipients wins.
/// The bounce's own To (the original sender) is dropped from the result
/// unless it is all there is (anonymised samples reuse one address).
fn run_readers(
    input: &layouts::LayoutInput<'_>,
    evidence: &mut Vec<String>,
    note: bool,
) -> Vec<Finding> {
    for (name, reader) in layouts::READERS {
        let mut found = reader(input);
        if found.is_empty() {
            continue;
        }
        let not_sender: Vec<Finding> = found
            .iter()
            .filter(|f| !input.to.iter().any(|t| t.eq_ignore_ascii_case(&f.address)))
            .cloned()
            .collect();
        if !not_sender.is_empty() {
            found = not_sender;
        }
        if note {
            evidence.push((*name).to_string());
        }
        return found;
    }
    Vec::new()
}

/// Subjects and senders that bounces use; a text layout is trusted only on
/// a message that looks like a bounce, so that a human reply quoting
/// "user unknown" is not read as one.
static BOUNCE_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)undeliver|undelivered|delivery (?:status notification|failure|failed|has failed|problem|report|notification)|returned mail|returned to sender|mail delivery (?:failed|failure|system|subsystem)|could not send|failure notice|non[- ]?delivery|could not (?:be )?deliver|nicht zustellbar|unzustellbar|unable to deliver|delivery error|mail error|rejected|bounce|warning: (?:could not|message)|delayed mail|delivery delayed|mail system error|message not delivered|not delivered|delivery notification|permanent error|error sending|(?-u:\b)error(?-u:\b)|failed|returned|エラー|不達|配信(?:不能|失敗|エラー)|送信できませんでした|できませんでした|未配達|エラー通知|non remis|non distribu|no entregad|no se (?:ha )?podido entregar|onbestelbaar|non recapitabil|não entregue|nedoručiteln|недостав|退信|无法投递|無法傳遞|電子郵件傳遞失敗").expect("static regex")
});

static BOUNCE_SENDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)mailer-daemon|postmaster|mail[ -]?delivery|mail ?administrator|mail ?system|^(?:bounce|bounces|noreply|no-reply|daemon|mdaemon|mailer|smtp|mta)[@+.-]|system administrator|administrator@|undeliver|returned|mailerdaemon|post_master|interscan").expect("static regex")
});

/// Phrases that only a delivery report writes.
static BOUNCE_BODY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)this is the mail system at host|could not be delivered to one or more|delivery to the following recipients? (?:failed|has failed|was unsuccessful)|the following addresses? had (?:permanent|transient|delivery)|this is the qmail-send program|i'm afraid i wasn't able to deliver|message could not be delivered|delivery has failed to these recipients|your message (?:could not|cannot|was not|wasn't|did not) (?:be )?(?:delivered|reach)|undeliverable|permanent error|unable to deliver|failed to deliver|delivery (?:failed|failure)|was not delivered|could not deliver|not be delivered|returned to sender|transcript of session follows|remote host said|said: [245][0-9][0-9]|in reply to (?:rcpt to|end of data|mail from|data)|smtp error from remote|送信できませんでした|配信できませんでした|届きませんでした|配送できませんでした|requested action not taken|rcpt to:|did not reach the following recipient|could not be reached|<<< [245][0-9][0-9]|error message below").expect("static regex")
});

/// Whether the message presents itself as a delivery report.
fn looks_like_bounce(mail: &parse::Mail, report_text: &str) -> bool {
    if mail.report_type.as_deref() == Some("delivery-status") || !mail.delivery_status.is_empty() {
        return true;
    }
    let sender = format!(
        "{} {}",
        mail.from_address.as_deref().unwrap_or(""),
        mail.from_name.as_deref().unwrap_or("")
    );
    let sender_like = BOUNCE_SENDER.is_match(&sender)
        || mail.header("return-path").is_some_and(|r| r.trim() == "<>");
    let subject_like = BOUNCE_SUBJECT.is_match(&mail.subject);
    let head = report_text
        .get(..report_text.len().min(8192))
        .unwrap_or(report_text);
    let body_like = BOUNCE_BODY.is_match(head);
    // A reply to a person ("Re: …") is a conversation, not a report.
    let is_reply = mail
        .subject
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("re:");
    (sender_like && (subject_like || body_like)) || (subject_like && body_like && !is_reply)
}

/// Turn delivery-status parts (and DSN fields pasted into text) into findings.
fn dsn_findings(mail: &parse::Mail, evidence: &mut Vec<String>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    // Index by lower-cased address: reports can repeat a recipient, and a
    // hostile one can list a hundred thousand.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut sources: Vec<(&str, &'static str)> = mail
        .delivery_status
        .iter()
        .map(|s| (s.as_str(), "DSN"))
        .collect();
    if sources.is_empty() && DSN_IN_TEXT.is_match(&mail.text) {
        sources.push((mail.text.as_str(), "DSN fields in text"));
        evidence.push("delivery-status fields in the text part".to_string());
    }
    for (text, source) in sources {
        let report = dsn::parse(text);
        for r in report.recipients {
            let final_r = r.final_recipient.as_deref().and_then(address::normalize);
            let orig_r = r.original_recipient.as_deref().and_then(address::normalize);
            let actual = r.actual_recipient.as_deref().and_then(address::normalize);
            let Some(addr) = final_r
                .clone()
                .or_else(|| orig_r.clone())
                .or_else(|| actual.clone())
            else {
                continue;
            };
            let alias = [orig_r, actual]
                .into_iter()
                .flatten()
                .find(|a| !a.eq_ignore_ascii_case(&addr));
            let f = Finding {
                address: addr,
                alias,
                status: r.status.clone(),
                reply_code: None,
                action: r.action.clone(),
                remote_mta: r.remote_mta.clone(),
                reporting_mta: report.reporting_mta.clone(),
                diagnostic: r.diagnostic.clone().unwrap_or_default(),
                // Delivery into a program (`|procmail …`) that failed is the
                // local mailer's failure, as an x-unix diagnostic says.
                diagnostic_type: r.diagnostic_type.clone().or_else(|| {
                    r.actual_recipient
                        .as_deref()
                        .or(r.final_recipient.as_deref())
                        .filter(|a| a.trim_start().starts_with('|'))
                        .map(|_| "x-unix".to_string())
                }),
                reason_hint: r
                    .bounce_category
                    .as_deref()
                    .and_then(bounce_category_reason),
                source,
                ..Finding::default()
            };
            let key = f.address.to_ascii_lowercase();
            if let Some(e) = seen.get(&key).and_then(|i| out.get_mut(*i)) {
                if e.diagnostic.is_empty() {
                    e.diagnostic = f.diagnostic;
                }
                continue;
            }
            if out.len() >= MAX_RECIPIENTS {
                evidence.push(format!(
                    "more than {MAX_RECIPIENTS} recipients: the rest ignored"
                ));
                return out;
            }
            seen.insert(key, out.len());
            out.push(f);
        }
    }
    out
}

/// Recipients reported per message at most. Real bounces name a handful;
/// the cap bounds time and memory for hostile ones.
pub const MAX_RECIPIENTS: usize = 1000;

/// PowerMTA's bounce categories, a documented taxonomy it writes into the
/// DSN beside the status.
fn bounce_category_reason(category: &str) -> Option<Reason> {
    Some(match category.trim() {
        "bad-mailbox" => Reason::UserUnknown,
        "bad-domain" => Reason::HostUnknown,
        "inactive-mailbox" => Reason::Suspend,
        "quota-issues" => Reason::MailboxFull,
        "message-expired" => Reason::Expired,
        "no-answer-from-host" | "bad-connection" => Reason::NetworkError,
        "relaying-issues" => Reason::NoRelaying,
        "spam-related" => Reason::SpamDetected,
        "virus-related" => Reason::VirusDetected,
        "content-related" => Reason::ContentError,
        "policy-related" => Reason::PolicyViolation,
        "invalid-sender" => Reason::Rejected,
        "routing-errors" | "protocol-errors" => Reason::SystemError,
        _ => return None,
    })
}

static DSN_IN_TEXT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^(?:final|original)-recipient:[ \t]*(?:rfc822|rfc-822|<|[^\s@]+@)")
        .expect("static regex")
});

/// Add the human-readable diagnostic to DSN findings that lack one (or
/// whose DSN diagnostic is only a code).
fn merge_layout(findings: &mut [Finding], layout: &[Finding]) {
    let single = findings.len() == 1;
    for f in findings.iter_mut() {
        let matched = layout.iter().find(|l| {
            l.address.eq_ignore_ascii_case(&f.address)
                || f.alias
                    .as_deref()
                    .is_some_and(|a| l.address.eq_ignore_ascii_case(a))
                || l.alias
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&f.address))
        });
        // One layout block and one DSN recipient: the block is its own,
        // whatever address the text wrote (an alias, a truncated one).
        let matched = matched.or(if layout.len() == 1 && single {
            layout.first()
        } else {
            None
        });
        if let Some(l) = matched {
            f.context = l.diagnostic.clone();
            f.context_is_own = true;
            if f.diagnostic.is_empty() {
                // The DSN gave no diagnostic; the recipient's own block in
                // the text is the next best.
                f.diagnostic = l.diagnostic.clone();
            }
            if f.command.is_none() {
                f.command = l.command.clone();
            }
            if f.reason_hint.is_none() {
                f.reason_hint = l.reason_hint;
            }
        }
    }
}

static DELAY_WARNING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)this is a warning (?:message )?only|you do not need to resend|will (?:continue to )?(?:be )?retr(?:y|ied)|still (?:being )?(?:trying|retried)|transient non-fatal errors|delivery (?:has been|is) delayed|message (?:is|has been) delayed|no action is required on your part|delivery attempts will continue")
        .expect("static regex")
});

static PERMANENT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)permanent fatal|permanent error|failed permanently|permanent failure|could not be delivered").expect("static regex")
});

/// Words that make an otherwise permanent-looking failure temporary.
static TEMPORARY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)temporar(?:y|ily)(?-u:\b)|try (?:again )?later|not found, try again|(?-u:\b)deferred(?-u:\b)|will (?:be )?retr|still trying").expect("static regex")
});

/// Decide one recipient's reason and severity from its own evidence, by
/// the decision ladder ([`ladder`]).
pub fn decide(f: &Finding) -> Recipient {
    let mut ev: Vec<String> = Vec::new();
    let cleaned = clean_multiline_reply(f.diagnostic.trim());
    let full_diag = cleaned.as_str();
    // What the remote server said, without a relay's label in front of it.
    let reply_text = remote_reply(full_diag);
    let diag = reply_text.as_ref();
    let context_text = remote_reply(f.context.trim());
    let context = context_text.as_ref();
    let field = f.status.as_deref().and_then(status::Status::parse);
    let in_reply = status::find_status(diag).and_then(|s| status::Status::parse(&s));
    let reply = f.reply_code.or_else(|| status::find_reply_code(diag));
    let mut chosen = ladder::prefer(field, in_reply, reply);
    if let Some(s) = chosen {
        let from = if Some(s) == field {
            f.source
        } else {
            "diagnostic"
        };
        ev.push(format!("status {} from {from}", s.code()));
    } else if f.context_is_own {
        // A report about this recipient alone may give the code once,
        // away from the address.
        chosen = status::find_status(context).and_then(|s| status::Status::parse(&s));
        if let Some(s) = chosen {
            ev.push(format!("status {} in report text", s.code()));
        }
    }
    if let Some(c) = reply {
        ev.push(format!("reply code {c}"));
    }
    let command = status::find_command(diag)
        .or_else(|| f.command.clone())
        .or_else(|| status::find_command(context));
    if let Some(c) = &command {
        ev.push(format!("SMTP stage {c}"));
    }
    let action = f.action.clone();
    let delivered = matches!(
        action.as_deref(),
        Some("delivered" | "relayed" | "expanded")
    ) || chosen.is_some_and(|s| s.class == 2);
    let delayed = action.as_deref() == Some("delayed");

    let mut anchor = None;
    let reason = if delivered {
        ev.push("delivered".to_string());
        Reason::Delivered
    } else {
        let st_text = chosen.map(|s| s.code());
        let any_code = chosen.is_some() || reply.is_some();
        let scoped = f
            .reason_hint
            .map(|r| (r, format!("reader:{}", f.source)))
            .or_else(|| {
                rhost::lookup(
                    &f.address,
                    f.remote_mta.as_deref(),
                    if diag.is_empty() { context } else { diag },
                    any_code,
                    command.as_deref(),
                    st_text.as_deref(),
                )
                .map(|r| (r, "rhost".to_string()))
            });
        let d = ladder::decide(&ladder::Facts {
            diag,
            context: if f.context_is_own { context } else { "" },
            status: chosen,
            reply,
            command: command.as_deref(),
            action: action.as_deref(),
            diagnostic_type: f.diagnostic_type.as_deref(),
            family: f.family.as_deref(),
            scoped,
        });
        for id in &d.rules {
            ev.push(format!("rule {id}"));
        }
        anchor = d.anchor;
        d.reason
    };

    // Without a diagnostic of its own, the recipient's report text says
    // whether the failure was temporary.
    let basis = if diag.is_empty() && f.context_is_own {
        context
    } else {
        diag
    };
    let temporary = delayed
        || chosen.is_some_and(|s| s.class == 4)
        || reply.is_some_and(|c| (400..500).contains(&c))
        || TEMPORARY.is_match(basis)
        || (diag.is_empty()
            && status::find_reply_code(basis).is_some_and(|c| (400..500).contains(&c)));
    let mut reason = adjust_for_transience(reason, temporary, basis, &mut ev);
    if reason.is_hard(true) && rhost::configured_bounce(f.reporting_mta.as_deref()) {
        // The code and text were chosen by the domain's own rule, not
        // found by looking the mailbox up: proof of nothing but the rule.
        ev.push(format!(
            "rule rhost:configured-bounce ({}): {reason} claimed, read as filtered",
            f.reporting_mta.as_deref().unwrap_or("")
        ));
        reason = Reason::Filtered;
    }
    let severity = if !reason.is_failure() || delayed {
        Severity::None
    } else if reason.is_hard(!temporary) && !(temporary && reason == Reason::NotAccept) {
        match anchor {
            Some(a) => {
                ev.push(format!("hard: {reason} anchored by the {a}"));
                Severity::Hard
            }
            None => {
                ev.push(format!(
                    "soft: {reason} rests on a phrase alone (no status code, stage or MTA fact names it)"
                ));
                Severity::Soft
            }
        }
    } else {
        Severity::Soft
    };
    ev.push(format!("reason {reason} → {}", severity.as_str()));

    Recipient {
        address: f.address.clone(),
        alias: f.alias.clone(),
        reason,
        severity,
        status: chosen.map(|s| s.code()),
        reply_code: reply,
        command,
        action,
        remote_mta: f.remote_mta.clone(),
        diagnostic: if full_diag.is_empty() {
            None
        } else {
            Some(truncate(full_diag, 2000))
        },
        feedback_type: None,
        evidence: ev,
    }
}

/// A relay's label before the remote server's own reply: an enhanced code,
/// a dash and the relay's name for that code's category
/// (`5.1.0 - Unknown address error 550-'5.7.1 … Access denied'`).
static STATUS_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(^|\s)[245]\.[0-9]{1,3}\.[0-9]{1,3} - [A-Za-z][A-Za-z ()]{2,60}? ([245][0-9][0-9][ -])",
    )
    .expect("static regex")
});

/// The text with such labels removed: a label only names the relay's
/// category for the code and is no evidence of its own; the reply after it
/// is. Text without a label is returned as it is.
fn remote_reply(text: &str) -> std::borrow::Cow<'_, str> {
    STATUS_LABEL.replace_all(text, "${1}${2}")
}

static CONNECT_FAILURE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)timed? ?out|timeout|host not reachable").expect("static regex")
});

/// A temporary failure changes what some reasons mean: a DNS miss that says
/// "try again" is a network problem, not a missing domain; a connection
/// that kept failing until the message was returned is an expiry.
fn adjust_for_transience(
    reason: Reason,
    temporary: bool,
    diag: &str,
    ev: &mut Vec<String>,
) -> Reason {
    if !temporary {
        return reason;
    }
    match reason {
        Reason::HostUnknown => {
            ev.push("temporary DNS failure".to_string());
            Reason::NetworkError
        }
        Reason::NetworkError if CONNECT_FAILURE.is_match(diag) => {
            ev.push("temporary connection failure until expiry".to_string());
            Reason::Expired
        }
        r => r,
    }
}

static REPLY_CONTINUATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\s[245][0-9][0-9][ -](?:[245]\.[0-9]{1,3}\.[0-9]{1,3}\s)?").expect("static regex")
});

/// A multi-line SMTP reply, unfolded, repeats its code on every line
/// (`550-5.7.1 … multiple\n550 5.7.1 addresses in From:`); keep the first
/// code and drop the repeats so that phrases read whole.
fn clean_multiline_reply(diag: &str) -> String {
    let Some(first) = status::find_reply_code(diag) else {
        return diag.to_string();
    };
    let code = first.to_string();
    let mut out = String::with_capacity(diag.len());
    let mut last = 0usize;
    let mut seen_first = false;
    for m in REPLY_CONTINUATION.find_iter(diag) {
        if !m.as_str().trim_start().starts_with(&code) {
            continue;
        }
        if !seen_first && diag.get(..m.start()).is_some_and(|p| !p.contains(&code)) {
            seen_first = true;
            continue;
        }
        seen_first = true;
        out.push_str(diag.get(last..m.start()).unwrap_or(""));
        out.push(' ');
        last = m.end();
    }
    out.push_str(diag.get(last..).unwrap_or(""));
    out
}

/// Cut a string to at most `max` bytes at a character boundary.
fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut cut = max;
    while cut > 0 && !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.get(..cut).unwrap_or("").to_string()
}

/// An ARF (RFC 5965) feedback report, if this is one.
fn feedback(mail: &parse::Mail, evidence: &mut Vec<String>) -> Option<Vec<Recipient>> {
    let is_arf =
        mail.report_type.as_deref() == Some("feedback-report") || !mail.feedback_report.is_empty();
    if !is_arf {
        // Apple Mail's one-click unsubscribe is a complaint of the opt-out
        // kind, sent by the recipient themself.
        if mail
            .header("x-apple-unsubscribe")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            evidence.push("X-Apple-Unsubscribe request".to_string());
            let addrs = mail.from_address.iter().cloned().collect();
            return Some(feedback_recipients(addrs, Some("opt-out".to_string())));
        }
        return None;
    }
    evidence.push("ARF feedback report (RFC 5965)".to_string());
    let fields = mail
        .feedback_report
        .first()
        .map(|t| dsn::fields(t))
        .unwrap_or_default();
    let get = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let ftype = get("feedback-type").map(|s| s.to_ascii_lowercase());
    let mut addrs: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k == "original-rcpt-to")
        .filter_map(|(_, v)| address::find_first(v))
        .collect();
    if addrs.is_empty() {
        if let Some(to) = mail.original.as_ref().and_then(|o| o.get("to")) {
            addrs.extend(address::find_all(to).into_iter().map(|f| f.address));
        }
    }
    Some(feedback_recipients(addrs, ftype))
}

/// Feedback recipients, or Sisimai's placeholder when the report names none.
fn feedback_recipients(mut addrs: Vec<String>, ftype: Option<String>) -> Vec<Recipient> {
    if addrs.is_empty() {
        addrs.push(UNDISCLOSED_RECIPIENT.to_string());
    }
    addrs.dedup();
    addrs
        .into_iter()
        .map(|a| Recipient {
            address: a,
            alias: None,
            reason: Reason::Feedback,
            severity: Severity::None,
            status: None,
            reply_code: None,
            command: None,
            action: None,
            remote_mta: None,
            diagnostic: None,
            feedback_type: ftype.clone(),
            evidence: vec![format!(
                "Feedback-Type {}",
                ftype.as_deref().unwrap_or("(none)")
            )],
        })
        .collect()
}

static AUTOREPLY_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)auto(?:matic)?[ -]?(?:reply|response|antwort|respon)|out of (?:the )?office|vacation|away from (?:my|the) (?:office|desk)|abwesen|absence|absent|congés|(?-u:\b)OOO(?-u:\b)|不在|自動応答|自動返信").expect("static regex")
});

/// fml's refusal notices: "Duplicated Message-ID in <list@…>" is its loop
/// detector declining to distribute a post it has seen before.
static FML_LOOP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^\s*(duplicated message-id|looped message|mail loop(?: detected)?) in <([^<>\s]+@[^<>\s]+)>")
        .expect("static regex")
});

/// A notice from the fml list server (which marks everything it sends with
/// `X-MLServer: fml`) that it refused a post: the list address failed, for
/// a reason of the list system's own.
fn list_server_notice(mail: &parse::Mail, report_text: &str) -> Option<Finding> {
    let server = mail
        .header("x-mlserver")
        .or_else(|| mail.header("x-ml-server"))?;
    if !server.trim_start().to_ascii_lowercase().starts_with("fml") {
        return None;
    }
    let c = FML_LOOP.captures(report_text)?;
    let address = address::normalize(c.get(2)?.as_str())?;
    Some(Finding {
        address,
        diagnostic: c.get(0)?.as_str().trim().to_string(),
        source: "fml notice",
        reason_hint: Some(Reason::SystemError),
        ..Finding::default()
    })
}

/// An automatic reply (RFC 3834 or a vacation subject): not a bounce; the
/// replying address is reported with reason `vacation`.
fn autoreply(mail: &parse::Mail, evidence: &mut Vec<String>) -> Option<Recipient> {
    let auto = mail
        .header("auto-submitted")
        .map(|v| v.to_ascii_lowercase())
        .filter(|v| v.starts_with("auto-replied"));
    let x_auto = mail.header("x-autoreply").is_some()
        || mail.header("x-autorespond").is_some()
        || mail
            .header("precedence")
            .is_some_and(|p| p.eq_ignore_ascii_case("auto_reply"));
    let subject = AUTOREPLY_SUBJECT.is_match(&mail.subject);
    if auto.is_none() && !x_auto && !subject {
        return None;
    }
    let from = mail.from_address.clone()?;
    if address::is_system_address(&from) {
        return None;
    }
    evidence.push(if auto.is_some() {
        "Auto-Submitted: auto-replied (RFC 3834)".to_string()
    } else if x_auto {
        "auto-reply header".to_string()
    } else {
        "auto-reply subject".to_string()
    });
    Some(Recipient {
        address: from,
        alias: None,
        reason: Reason::Vacation,
        severity: Severity::None,
        status: None,
        reply_code: None,
        command: None,
        action: None,
        remote_mta: None,
        diagnostic: None,
        feedback_type: None,
        evidence: vec!["auto-reply".to_string()],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_unparseable() {
        assert!(classify(b"").is_err());
        assert!(classify(b"\x00\xff\xfe").is_err());
    }

    #[test]
    fn postfix_user_unknown_is_hard() {
        let raw = b"From: MAILER-DAEMON@mx.test (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender\nTo: s@src.test\n\nThis is the mail system at host mx.test.\n\n<u@dest.test>: host mx.dest.test[192.0.2.1] said: 550 5.1.1 <u@dest.test>:\n    Recipient address rejected: User unknown in local recipient table (in reply\n    to RCPT TO command)\n";
        let v = classify(raw).unwrap();
        assert_eq!(v.kind, Kind::Bounce);
        assert_eq!(v.recipients.len(), 1);
        assert_eq!(v.recipients[0].reason, Reason::UserUnknown);
        assert_eq!(v.recipients[0].severity, Severity::Hard);
        assert_eq!(v.recipients[0].command.as_deref(), Some("RCPT"));
    }

    #[test]
    fn human_reply_is_not_bounce() {
        let raw = b"From: Alice <alice@friend.test>\nSubject: Re: lunch\nTo: s@src.test\n\nI tried bob@x.test but got 550 user unknown, odd.\n";
        let v = classify(raw).unwrap();
        assert_eq!(v.kind, Kind::NotBounce);
        assert!(v.recipients.is_empty());
    }

    #[test]
    fn full_mailbox_behind_550_is_soft() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.test>\nSubject: Returned mail: see transcript for details\n\n   ----- The following addresses had permanent fatal errors -----\n<u@dest.test>\n    (reason: Can't create output)\n\n   ----- Transcript of session follows -----\nprocmail: Quota exceeded while writing \"/var/mail/u\"\n550 5.0.0 <u@dest.test>... Can't create output\n";
        let v = classify(raw).unwrap();
        assert_eq!(v.recipients.len(), 1);
        assert_eq!(v.recipients[0].reason, Reason::MailboxFull);
        assert_eq!(v.recipients[0].severity, Severity::Soft);
    }

    /// A minimal RFC 3464 report about `u@dest.test`.
    fn dsn(reporting: &str, status: &str, diag: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.test\nSubject: Delivery Status Notification (Failure)\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\nThis message could not be delivered.\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; {reporting}\n\nFinal-Recipient: rfc822; u@dest.test\nAction: failed\nStatus: {status}\nDiagnostic-Code: smtp; {diag}\n--b--\n"
        )
        .into_bytes()
    }

    #[test]
    fn rule_configured_bounce_never_removes() {
        let v = classify(&dsn(
            "inbound-smtp.eu-west-1.amazonaws.com",
            "5.1.1",
            "550 5.1.1 Mailbox does not exist",
        ))
        .unwrap();
        assert_eq!(v.recipients[0].reason, Reason::Filtered);
        assert_eq!(v.recipients[0].severity, Severity::Soft);
        // A soft claim is taken at its word.
        let v = classify(&dsn(
            "inbound-smtp.eu-west-1.amazonaws.com",
            "5.2.2",
            "552 5.2.2 Mailbox full",
        ))
        .unwrap();
        assert_eq!(v.recipients[0].reason, Reason::MailboxFull);
        // The same words from an ordinary MTA are a mailbox lookup.
        let v = classify(&dsn(
            "mx.dest.test",
            "5.1.1",
            "550 5.1.1 Mailbox does not exist",
        ))
        .unwrap();
        assert_eq!(v.recipients[0].severity, Severity::Hard);
    }

    #[test]
    fn reply_553_names_the_mailbox() {
        let v = classify(&dsn(
            "mx.dest.test",
            "5.7.1",
            "553 Invalid recipient u@dest.test",
        ))
        .unwrap();
        assert_eq!(v.recipients[0].reason, Reason::UserUnknown);
        assert_eq!(v.recipients[0].severity, Severity::Hard);
    }

    #[test]
    fn user_unknown_without_stage_or_code_is_a_filter() {
        // 5.7.1 names no mailbox, and no stage says the lookup happened:
        // the words alone are what filters also write.
        let v = classify(&dsn("mx.dest.test", "5.7.1", "550 5.7.1 User Unknown")).unwrap();
        assert_eq!(v.recipients[0].reason, Reason::Filtered);
        assert_eq!(v.recipients[0].severity, Severity::Soft);
    }

    #[test]
    fn relay_label_is_not_evidence() {
        assert_eq!(
            remote_reply("5.1.0 - Unknown address error 550-'5.7.1 <b@src.test>... Access denied'"),
            "550-'5.7.1 <b@src.test>... Access denied'"
        );
        assert_eq!(
            remote_reply("550 5.1.1 user unknown"),
            "550 5.1.1 user unknown"
        );
        let v = classify(&dsn(
            "out.relay.test",
            "5.0.0",
            "5.1.0 - Unknown address error 550-'5.7.1 <b@src.test>... Access denied' (delivery attempts: 0)",
        ))
        .unwrap();
        assert_eq!(v.recipients[0].reason, Reason::SecurityError);
        assert_eq!(v.recipients[0].severity, Severity::Soft);
    }

    #[test]
    fn fml_loop_alert_names_the_list() {
        let raw = b"From: ml-admin@list.test\nSubject: Loop Alert: Duplicated Message-ID (ml)\nX-MLServer: fml [fml 4.0.3 release]\n\nDuplicated Message-ID in <ml@list.test>.\n";
        let v = classify(raw).unwrap();
        assert_eq!(v.recipients.len(), 1);
        assert_eq!(v.recipients[0].address, "ml@list.test");
        assert_eq!(v.recipients[0].reason, Reason::SystemError);
        assert_eq!(v.recipients[0].severity, Severity::Soft);
        // Without fml's mark the same words are nobody's bounce.
        let raw =
            b"From: a@list.test\nSubject: hello\n\nDuplicated Message-ID in <ml@list.test>.\n";
        assert!(classify(raw).unwrap().recipients.is_empty());
    }

    #[test]
    fn sender_side_refusals_are_never_hard() {
        // Each names the sender's host, domain or quota, not the recipient.
        for (diag, want) in [
            (
                "550 5.7.1 <mta.src.test>: Helo command rejected: Host not found",
                Reason::Blocked,
            ),
            (
                "550 Recipient rejected: mailbox would exceed maximum allowed storage",
                Reason::MailboxFull,
            ),
            (
                "550 From: domain is invalid. Please provide a valid From:",
                Reason::Rejected,
            ),
            (
                "550 5.4.5 Daily user sending quota exceeded",
                Reason::Speeding,
            ),
            (
                "550 Error: no valid recipients from 192.0.2.9",
                Reason::Blocked,
            ),
        ] {
            let v = classify(&dsn("mx.dest.test", "5.0.0", diag)).unwrap();
            assert_eq!(v.recipients[0].reason, want, "{diag}");
            assert_eq!(v.recipients[0].severity, Severity::Soft, "{diag}");
        }
    }

    #[test]
    fn local_program_over_quota_is_a_full_mailbox() {
        let raw = b"From: Mail Delivery Subsystem <MAILER-DAEMON@mx.test>\nSubject: Returned mail: see transcript for details\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\n\n--b\nContent-Type: text/plain\n\n   ----- The following addresses had permanent fatal errors -----\n<u@dest.test>\n    (reason: Insufficient permission)\n\n   ----- Transcript of session follows -----\nmaildrop: maildir over quota.\n550 5.0.0 <u@dest.test>... Insufficient permission\n--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.test\n\nFinal-Recipient: RFC822; u@dest.test\nAction: failed\nStatus: 5.3.0\nDiagnostic-Code: X-Unix; 77\n--b--\n";
        let v = classify(raw).unwrap();
        assert_eq!(v.recipients[0].reason, Reason::MailboxFull);
        assert_eq!(v.recipients[0].severity, Severity::Soft);
    }

    #[test]
    fn look_alike_wordings_are_never_hard() {
        for (status, diag) in [
            // A word between "recipient" and "unknown" that is no address.
            (
                "4.3.0",
                "451 4.3.0 recipient status unknown (directory lookup failed), try again later (in reply to RCPT TO command)",
            ),
            ("5.7.1", "550 5.7.1 recipient policy unknown"),
            // 553 after DATA: the recipient had been accepted.
            (
                "5.7.1",
                "553 5.7.1 Message refused: no such user here (in reply to end of DATA command)",
            ),
            // Advice to check the address, beside another explanation.
            (
                "5.0.0",
                "550 The remote server timed out. Please check that the address is correct.",
            ),
        ] {
            let v = classify(&dsn("mx.dest.test", status, diag)).unwrap();
            assert_ne!(v.recipients[0].severity, Severity::Hard, "{diag}");
        }
    }
}
