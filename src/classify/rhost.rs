//! Receiving-host conventions: a few large providers answer with fixed
//! wording whose meaning differs from the words. Japanese mobile carriers
//! (au/KDDI, NTT docomo) answer "user unknown" when the recipient's own
//! reception filter refused the sender, so that wording from them is a
//! filter verdict, not a missing address.
//!
//! Each rule is one table entry: domain suffixes of the recipient or the
//! remote MTA, a pattern over the diagnostic, and the reason it means.

use super::Reason;
use regex::Regex;
use std::sync::LazyLock;

/// One provider convention.
struct Rule {
    /// Domain suffixes (recipient domain or Remote-MTA host).
    domains: &'static [&'static str],
    /// Pattern over the diagnostic text (case-insensitive).
    pattern: &'static str,
    /// What the wording means there.
    reason: Reason,
    /// Apply only when the report gives no SMTP code of its own.
    without_code: bool,
    /// At which SMTP stage the wording has this meaning.
    stage: Stage,
}

/// The SMTP stage a rule is limited to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Any stage.
    Any,
    /// Not at RCPT TO, and not under an x.1.1 status (there the words mean
    /// what they say).
    NotRecipient,
    /// After DATA, with a status that gives only its class (x.0.0).
    DataGeneric,
}

const RULES: &[Rule] = &[
    // au/KDDI: "550 : User unknown" (no address named) is the reception
    // filter; "550 <addr>: User unknown" is a real unknown user.
    Rule {
        domains: &["ezweb.ne.jp", "au.com", "kddi.com"],
        pattern: r"(?:^|[0-9]|->|:)\s*:\s*user unknown",
        reason: Reason::Filtered,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["ezweb.ne.jp", "au.com", "kddi.com"],
        pattern: r"[>@][^\s]*\s*:\s*user unknown",
        reason: Reason::UserUnknown,
        without_code: false,
        stage: Stage::Any,
    },
    // Google Groups returns a post only when the group does not exist or
    // the sender may not post to it: the sender was refused.
    Rule {
        domains: &["googlegroups.com"],
        pattern: r"^",
        reason: Reason::Rejected,
        without_code: true,
        stage: Stage::Any,
    },
    // Yahoo: "dd This user doesn't have a … account" is its unknown user.
    Rule {
        domains: &[],
        pattern: r"delivery error: dd this user doesn't have an? \S+ account",
        reason: Reason::UserUnknown,
        without_code: false,
        stage: Stage::Any,
    },
    // Orange / La Poste reply codes (OFR_nnn, LPNnnn_nnn, OUK_nnn), which
    // only they write.
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:416|418)(?-u:\b)",
        reason: Reason::UserUnknown,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:417)(?-u:\b)",
        reason: Reason::MailboxFull,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:420|426)(?-u:\b)",
        reason: Reason::Suspend,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:403|405|415|421)(?-u:\b)",
        reason: Reason::Rejected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:305|402)(?-u:\b)",
        reason: Reason::SecurityError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:104)(?-u:\b)",
        reason: Reason::TooManyConn,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:102|103|401|510|999)(?-u:\b)",
        reason: Reason::Blocked,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:505)(?-u:\b)",
        reason: Reason::SystemError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:506)(?-u:\b)",
        reason: Reason::SpamDetected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:514)(?-u:\b)",
        reason: Reason::MesgTooBig,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)(?:LPN|OFR|OUK)(?:_|[0-9]{3}[-_])(?:630)(?-u:\b)",
        reason: Reason::PolicyViolation,
        without_code: false,
        stage: Stage::Any,
    },
    // Spectrum (Charter) acceptable-use codes: AUP#I-nnnn / AUP#O-nnnn.
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:1000|12[0-4][0-9]|1250)(?:[^0-9]|$)",
        reason: Reason::Blocked,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:1010|10[2-7][0-9]|1080|1500|1520)(?:[^0-9]|$)",
        reason: Reason::Rejected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:1090)(?:[^0-9]|$)",
        reason: Reason::SystemError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:11[0-4][0-9]|1150)(?:[^0-9]|$)",
        reason: Reason::RequirePtr,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:11[6-8][0-9]|1190|1560)(?:[^0-9]|$)",
        reason: Reason::PolicyViolation,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:1260)(?:[^0-9]|$)",
        reason: Reason::NetworkError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:13[0-3][0-9]|1340)(?:[^0-9]|$)",
        reason: Reason::TooManyConn,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:13[5-9][0-9]|14[0-8][0-9]|1490|1540|1550|1580)(?:[^0-9]|$)",
        reason: Reason::Speeding,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"AUP#[A-Za-z-]*(?:1530)(?:[^0-9]|$)",
        reason: Reason::MesgTooBig,
        without_code: false,
        stage: Stage::Any,
    },
    // i.ua explains each refusal at mail.i.ua/err/N.
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:1|6)(?:[^0-9]|$)",
        reason: Reason::NoRelaying,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:2)(?:[^0-9]|$)",
        reason: Reason::UserUnknown,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:3)(?:[^0-9]|$)",
        reason: Reason::Suspend,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:4)(?:[^0-9]|$)",
        reason: Reason::MailboxFull,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:5)(?:[^0-9]|$)",
        reason: Reason::TooManyConn,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:7|9)(?:[^0-9]|$)",
        reason: Reason::Blocked,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:8)(?:[^0-9]|$)",
        reason: Reason::Rejected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)i\.ua/err/(?:10)(?:[^0-9]|$)",
        reason: Reason::Filtered,
        without_code: false,
        stage: Stage::Any,
    },
    // GoDaddy's documented bounce codes (IBnnn), which only it writes.
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:401)(?-u:\b)",
        reason: Reason::SecurityError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:50[12])(?-u:\b)",
        reason: Reason::NotCompliantRfc,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:506)(?-u:\b)",
        reason: Reason::Rejected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:508)(?-u:\b)",
        reason: Reason::AuthFailure,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:108)(?-u:\b)",
        reason: Reason::RequirePtr,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:212)(?-u:\b)",
        reason: Reason::SpamDetected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:705)(?-u:\b)",
        reason: Reason::VirusDetected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:605|007)(?-u:\b)",
        reason: Reason::TooManyConn,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:101|504|510|607)(?-u:\b)",
        reason: Reason::Speeding,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:11[0-3]|10[4-6])(?-u:\b)",
        reason: Reason::Blocked,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"(?-u:\b)IB(?:103)(?-u:\b)",
        reason: Reason::BadReputation,
        without_code: false,
        stage: Stage::Any,
    },
    // Microsoft Exchange's enhanced codes name the component and the cause.
    Rule {
        domains: &[],
        pattern: r"RESOLVER\.RST\.(?:RecipSizeLimit|SendSizeLimit)",
        reason: Reason::MesgTooBig,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"RESOLVER\.RST\.(?:AuthRequired|NotAuthorized)",
        reason: Reason::SecurityError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"RESOLVER\.ADR\.(?:Ex)?Recip(?:ient)?NotFound",
        reason: Reason::UserUnknown,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &[],
        pattern: r"QUEUE\.Expired",
        reason: Reason::Expired,
        without_code: false,
        stage: Stage::Any,
    },
    // Mimecast's documented rejection texts (its SMTP error code list).
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"email rejected due to security policies",
        reason: Reason::VirusDetected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"(?:spf|dkim|dmarc) sender invalid - envelope rejected",
        reason: Reason::AuthFailure,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"local ct ip reputation",
        reason: Reason::BadReputation,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"ip temporarily blacklisted|sender address blocked",
        reason: Reason::Blocked,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"maximum email size exceeded",
        reason: Reason::MesgTooBig,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"anti-spoofing policy|content examination policy|host network not allowed",
        reason: Reason::PolicyViolation,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"envelope blocked|envelope rejected - block policy|blocked senders",
        reason: Reason::Rejected,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"this route requires (?:encryption|tls|high-strength)",
        reason: Reason::SecurityError,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"exceeding outbound thread limit|account service is temporarily unavailable",
        reason: Reason::TooManyConn,
        without_code: false,
        stage: Stage::Any,
    },
    Rule {
        domains: &["mimecast.com", "mimecast.co.za", "mimecast-offshore.com"],
        pattern: r"account inbounds disabled",
        reason: Reason::NotAccept,
        without_code: false,
        stage: Stage::Any,
    },
    // NTT docomo answers its reception filter with "Unknown user" after
    // DATA: a plain refusal of the sender when the status says nothing
    // more, the recipient's filter otherwise. At RCPT TO, or with 5.1.1,
    // the user is unknown indeed.
    Rule {
        domains: &["docomo.ne.jp"],
        pattern: r"unknown user",
        reason: Reason::Rejected,
        without_code: false,
        stage: Stage::DataGeneric,
    },
    Rule {
        domains: &["docomo.ne.jp"],
        pattern: r"unknown user",
        reason: Reason::Filtered,
        without_code: false,
        stage: Stage::NotRecipient,
    },
];

static COMPILED: LazyLock<Vec<(usize, Regex)>> = LazyLock::new(|| {
    RULES
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            regex::RegexBuilder::new(r.pattern)
                .case_insensitive(true)
                .build()
                .ok()
                .map(|re| (i, re))
        })
        .collect()
});

fn domain_matches(host: &str, suffix: &str) -> bool {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    host == suffix || host.strip_suffix(suffix).is_some_and(|p| p.ends_with('.'))
}

/// Carriers' mail-to-SMS/MMS gateways, whose mailboxes are phone numbers.
const SMS_GATEWAYS: &[&str] = &[
    "vtext.com",
    "vzwpix.com",
    "txt.att.net",
    "mms.att.net",
    "tmomail.net",
    "messaging.sprintpcs.com",
    "pm.sprint.com",
    "mymetropcs.com",
    "sms.myboostmobile.com",
    "msg.fi.google.com",
    "text.republicwireless.com",
    "email.uscc.net",
    "sms.cricketwireless.net",
    "mms.cricketwireless.net",
];

static SMS_NO_SUCH_USER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)no such user|user unknown|unknown user|invalid (?:user|recipient)|user (?:does )?not exist")
        .expect("static regex")
});

/// A mail-to-SMS gateway's "no such user": its mailboxes are phone
/// numbers, so a name that is not one cannot exist there; for a number the
/// same words also answer a subscriber who blocked mail-to-text, which is
/// a filter, not proof that the number is gone. Only a refusal at RCPT TO
/// (or at no stated stage) whose words say nothing else is read this way.
fn sms_gateway(recipient: &str, diagnostic: &str, command: Option<&str>) -> Option<Reason> {
    let (local, domain) = recipient.rsplit_once('@')?;
    if !SMS_GATEWAYS.iter().any(|d| domain_matches(domain, d))
        || !SMS_NO_SUCH_USER.is_match(diagnostic)
        || !matches!(command, Some("RCPT") | None)
        || super::knowledge::phrase_hits(diagnostic, None)
            .reasons
            .iter()
            .any(|(r, _)| *r != Reason::UserUnknown)
    {
        return None;
    }
    // Numbers are written with separators too: 212-555-0100, (212) 555 0100.
    let digits: String = local
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' ' | '+'))
        .collect();
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        Some(Reason::Filtered)
    } else {
        Some(Reason::UserUnknown)
    }
}

/// The reason a provider's fixed wording means, if a rule applies.
pub fn lookup(
    recipient: &str,
    remote_mta: Option<&str>,
    diagnostic: &str,
    has_code: bool,
    command: Option<&str>,
    status: Option<&str>,
) -> Option<Reason> {
    if let Some(r) = sms_gateway(recipient, diagnostic, command) {
        return Some(r);
    }
    let generic = status.is_none_or(|s| s.starts_with("5.0.") || s.starts_with("4.0."));
    let stage_ok = |stage: Stage| match stage {
        Stage::Any => true,
        Stage::NotRecipient => command != Some("RCPT") && status != Some("5.1.1"),
        Stage::DataGeneric => command == Some("DATA") && generic,
    };
    let rdomain = recipient.rsplit('@').next().unwrap_or("");
    let mta = remote_mta
        .unwrap_or("")
        .split(|c: char| c.is_whitespace() || c == ';')
        .find(|s| s.contains('.'))
        .unwrap_or("");
    for (i, re) in COMPILED.iter() {
        let Some(rule) = RULES.get(*i) else { continue };
        // A rule without domains keys on a provider's own code, which
        // nobody else writes.
        let applies = rule.domains.is_empty()
            || rule
                .domains
                .iter()
                .any(|d| domain_matches(rdomain, d) || domain_matches(mta, d));
        if applies
            && !(rule.without_code && has_code)
            && stage_ok(rule.stage)
            && re.is_match(diagnostic)
        {
            return Some(rule.reason);
        }
    }
    None
}

/// Amazon SES's inbound endpoints (`inbound-smtp.<region>.amazonaws.com`).
static SES_INBOUND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[\s;])inbound-smtp\.[a-z0-9-]+\.amazonaws\.com\.?$")
        .expect("static regex")
});

/// Whether the report was written by a service whose bounces are rules
/// configured by the receiving domain rather than the outcome of a mailbox
/// lookup. Amazon SES accepts a message first and returns it afterwards
/// only through a receipt rule's Bounce action, whose SMTP reply code,
/// status code and text the domain owner types in ("Mailbox does not
/// exist" is one of the console's presets). Such a report says the rule
/// fired; it does not prove that the address cannot exist.
pub fn configured_bounce(reporting_mta: Option<&str>) -> bool {
    reporting_mta.is_some_and(|m| SES_INBOUND.is_match(m.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sms_gateways_read_the_local_part() {
        let d = "550 - Requested action not taken: no such user here";
        assert_eq!(
            lookup("2125550100@vtext.com", None, d, true, None, None),
            Some(Reason::Filtered)
        );
        assert_eq!(
            lookup("someone@vtext.com", None, d, true, None, None),
            Some(Reason::UserUnknown)
        );
        assert_eq!(
            lookup("someone@example.com", None, d, true, None, None),
            None
        );
        assert_eq!(
            lookup("212-555-0100@vtext.com", None, d, true, None, None),
            Some(Reason::Filtered)
        );
        // After DATA, or beside other explanations, the words are not read.
        assert_eq!(
            lookup("someone@vtext.com", None, d, true, Some("DATA"), None),
            None
        );
        assert_eq!(
            lookup(
                "someone@vtext.com",
                None,
                "554 5.7.1 blocked as spam, invalid recipient policy",
                true,
                None,
                None
            ),
            None
        );
        assert_eq!(
            lookup(
                "someone@tmomail.net",
                None,
                "552 mailbox full",
                true,
                None,
                None
            ),
            None
        );
    }

    #[test]
    fn ses_receipt_rules_are_configured() {
        assert!(configured_bounce(Some(
            "dns; inbound-smtp.us-west-2.amazonaws.com"
        )));
        assert!(configured_bounce(Some(
            "inbound-smtp.eu-west-1.amazonaws.com"
        )));
        assert!(!configured_bounce(Some(
            "dns; a27-7.smtp-out.us-west-2.amazonses.com"
        )));
        assert!(!configured_bounce(Some("dns; mx.example.net")));
        assert!(!configured_bounce(None));
    }

    #[test]
    fn docomo_stage_decides() {
        let d = "550 Unknown user a@docomo.ne.jp";
        assert_eq!(
            lookup("a@docomo.ne.jp", None, d, true, Some("DATA"), Some("5.0.0")),
            Some(Reason::Rejected)
        );
        assert_eq!(
            lookup("a@docomo.ne.jp", None, d, true, Some("DATA"), Some("5.2.0")),
            Some(Reason::Filtered)
        );
        assert_eq!(
            lookup("a@docomo.ne.jp", None, d, true, Some("RCPT"), None),
            None
        );
        assert_eq!(
            lookup("a@docomo.ne.jp", None, d, true, None, Some("5.1.1")),
            None
        );
    }

    #[test]
    fn kddi_anonymous_user_unknown_is_filter() {
        assert_eq!(
            lookup(
                "a@ezweb.ne.jp",
                None,
                "550 : User unknown",
                true,
                None,
                None
            ),
            Some(Reason::Filtered)
        );
        assert_eq!(
            lookup(
                "a@ezweb.ne.jp",
                None,
                "550 <a@ezweb.ne.jp>: User unknown",
                true,
                None,
                None
            ),
            Some(Reason::UserUnknown)
        );
        assert_eq!(
            lookup(
                "a@example.test",
                None,
                "550 : User unknown",
                true,
                None,
                None
            ),
            None
        );
        assert_eq!(
            lookup(
                "a@x.docomo.ne.jp",
                None,
                "550 Unknown user a@x",
                true,
                None,
                None
            ),
            Some(Reason::Filtered)
        );
    }
}
