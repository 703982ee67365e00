//! Bounce classification: raw message bytes in, a [`Verdict`] out.
//!
//! This module is pure: it never touches the network, the file system or the
//! database, so it can be tested, fuzzed and benchmarked on bytes alone. The
//! daemon, the `classify` command and the corpus tests all call [`classify`].
//!
//! The vocabulary of reasons is Sisimai's, so that operators who know that
//! library read our verdicts the same way.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

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
}

/// Why a message could not be classified at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClassifyError {
    /// The bytes are not an Internet message (empty, binary, no header).
    #[error("not a parseable message: {0}")]
    Unparseable(String),
}

/// Classify one raw message (RFC 5322 bytes, CRLF or LF line ends).
///
/// Never panics, whatever the input.
pub fn classify(raw: &[u8]) -> Result<Verdict, ClassifyError> {
    let _ = raw;
    todo!("the classifier helper fills this in")
}
