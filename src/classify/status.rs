//! SMTP enhanced status codes (RFC 3463 and its registry), reply codes
//! (RFC 5321) and the SMTP stage, read from report fields and free text.

use super::Reason;
use regex::Regex;
use std::sync::LazyLock;

/// An enhanced status code: class (2, 4, 5), subject, detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// 2 success, 4 persistent transient failure, 5 permanent failure.
    pub class: u8,
    /// The subject (1 address, 2 mailbox, 3 mail system, 4 network,
    /// 5 protocol, 6 content, 7 security).
    pub subject: u16,
    /// The detail.
    pub detail: u16,
}

impl Status {
    /// Parse `c.s.d` (the whole string, surrounding junk trimmed).
    pub fn parse(s: &str) -> Option<Status> {
        let s = s.trim().trim_end_matches(['.', ',', ';', ')']);
        let s = s.trim_start_matches(['(', '#']);
        let mut it = s.split('.');
        let class: u8 = it.next()?.parse().ok()?;
        let subject: u16 = it.next()?.parse().ok()?;
        let detail: u16 = it.next()?.parse().ok()?;
        if it.next().is_some() || !matches!(class, 2 | 4 | 5) || subject > 9 || detail > 999 {
            return None;
        }
        Some(Status {
            class,
            subject,
            detail,
        })
    }

    /// The code as `c.s.d`.
    pub fn code(&self) -> String {
        format!("{}.{}.{}", self.class, self.subject, self.detail)
    }

    /// Whether this is a "say nothing" code (x.0.0, or Sisimai's x.0.9xx
    /// pseudo codes), which carries only the class.
    pub fn is_generic(&self) -> bool {
        self.subject == 0
    }
}

static STATUS_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9.])([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:[^0-9.]|\.(?:[^0-9]|$)|$)")
        .expect("static regex")
});

static REPLY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9.\-:/#a-zA-Z]|\s:)([245][0-9][0-9])(?:[ \-,;]|$)").expect("static regex")
});

static STATUS_AFTER_REPLY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[245][0-9][0-9][ \-]'?#?([245]\.[0-9]{1,3}\.[0-9]{1,3})(?:[^0-9.]|$)")
        .expect("static regex")
});

/// The enhanced status code written in text: the one right after an SMTP
/// reply code if there is one (relays prefix their own code to the remote
/// answer), else the first.
pub fn find_status(text: &str) -> Option<String> {
    if let Some(m) = STATUS_AFTER_REPLY.captures(text).and_then(|c| c.get(1)) {
        if Status::parse(m.as_str()).is_some() {
            return Some(m.as_str().to_string());
        }
    }
    for c in STATUS_RE.captures_iter(text) {
        let m = c.get(1)?.as_str();
        if Status::parse(m).is_some() {
            return Some(m.to_string());
        }
    }
    None
}

/// The first SMTP reply code in text (a 3-digit 2xx/4xx/5xx number standing
/// as a word, not part of a dotted number or a date).
pub fn find_reply_code(text: &str) -> Option<u16> {
    for c in REPLY_RE.captures_iter(text) {
        let m = c.get(1)?;
        if let Ok(n) = m.as_str().parse::<u16>() {
            // A code must look like one of RFC 5321's: x0y..x5y.
            let tens = (n / 10) % 10;
            if tens <= 5 {
                return Some(n);
            }
        }
    }
    None
}

/// The reason a bare reply code suggests when nothing else does.
pub fn reply_reason(code: u16) -> Option<Reason> {
    match code {
        521 | 556 => Some(Reason::NotAccept),
        551 => Some(Reason::HasMoved),
        552 => None,
        _ => None,
    }
}

static COMMAND_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:in reply to|after|while sending|in response to|error after)\s+(?:the\s+)?(end of data|data|rcpt to|rcpt command|mail from|helo|ehlo|initial connection|connect|greeting|quit|auth|starttls)(?-u:\b)(?:\s+command)?|(?:^|\s)>>>\s*(rcpt to|mail from|data|ehlo|helo)(?-u:\b)|smtp:(rcpt|mail|data|helo|ehlo)(?-u:\b)|(does not like recipient|sender was rejected|my name was rejected|failed after i sent the message|failed on data command|failed on rcpt to|connected to \S+ but greeting failed|for text command)",
    )
    .expect("static regex")
});

/// The SMTP command the failure answered, normalised to `RCPT`, `MAIL`,
/// `DATA`, `HELO`/`EHLO`, `CONN`.
pub fn find_command(text: &str) -> Option<String> {
    // The last stage named wins: transcripts list every command sent, and
    // the failing one comes last.
    let c = COMMAND_RE.captures_iter(text).last()?;
    let m = c
        .get(1)
        .or_else(|| c.get(2))
        .or_else(|| c.get(3))
        .or_else(|| c.get(4))?
        .as_str()
        .to_ascii_lowercase();
    Some(
        match m.as_str() {
            "does not like recipient" | "failed on rcpt to" => "RCPT",
            "sender was rejected" => "MAIL",
            "my name was rejected" => "HELO",
            "failed after i sent the message" | "failed on data command" | "for text command" => {
                "DATA"
            }
            x if x.starts_with("connected to") => "CONN",
            "initial connection" => "CONN",
            "rcpt to" | "rcpt" | "rcpt command" => "RCPT",
            "mail from" | "mail" => "MAIL",
            "end of data" | "data" => "DATA",
            "helo" => "HELO",
            "ehlo" => "EHLO",
            "connect" | "greeting" => "CONN",
            "starttls" => "STARTTLS",
            "auth" => "AUTH",
            _ => return None,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_codes() {
        assert_eq!(
            Status::parse("5.1.1").map(|s| s.code()).as_deref(),
            Some("5.1.1")
        );
        assert!(Status::parse("6.1.1").is_none());
        assert!(Status::parse("5.1").is_none());
    }

    #[test]
    fn finds_codes_in_text() {
        assert_eq!(
            find_status("550 5.1.1 <a@b.c>... User unknown").as_deref(),
            Some("5.1.1")
        );
        assert_eq!(find_status("host 192.0.2.1 said"), None);
        assert_eq!(find_status("#5.1.1 SMTP"), Some("5.1.1".into()));
        assert_eq!(find_reply_code("said: 550-5.1.1 The email"), Some(550));
        assert_eq!(find_reply_code("192.0.2.250 said"), None);
        assert_eq!(find_reply_code("Remote host said: 554 denied"), Some(554));
    }

    #[test]
    fn finds_command() {
        assert_eq!(
            find_command("(in reply to RCPT TO command)").as_deref(),
            Some("RCPT")
        );
        assert_eq!(
            find_command("(in reply to end of DATA command)").as_deref(),
            Some("DATA")
        );
        assert_eq!(
            find_command("SMTP error from remote mail server after MAIL FROM:<a@b>").as_deref(),
            Some("MAIL")
        );
    }
}
