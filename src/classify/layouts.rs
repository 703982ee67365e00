//! MTA layout readers: turn the human-readable part of a bounce into the
//! same per-recipient evidence record the DSN reader produces.
//!
//! Each reader is a small function over the bounce text; [`READERS`] lists
//! them. Adding an MTA layout means adding one function and one table entry
//! (with a test), not a branch in the classifier.

use super::address::{self, is_system_address};
use super::Finding;
use regex::{Regex, RegexSet, RegexSetBuilder};
use std::sync::LazyLock;

/// The input every reader sees.
pub struct LayoutInput<'a> {
    /// The bounce text, cut before the returned original.
    pub text: &'a str,
    /// The bounce's own From address, never a failed recipient.
    pub from: Option<&'a str>,
    /// The bounce's To addresses: the sender of the original, never a
    /// failed recipient either.
    pub to: &'a [String],
}

/// A layout reader: a name (for evidence) and a function.
pub type Reader = (&'static str, fn(&LayoutInput<'_>) -> Vec<Finding>);

/// Every layout reader, most specific first. The first reader that finds
/// any recipient wins; later readers only add diagnostics.
pub const READERS: &[Reader] = &[
    ("sendmail layout", sendmail),
    ("sendmail transcript layout", sendmail_transcript),
    ("address block layout", address_blocks),
    ("envelope echo layout", envelope_rcpt),
    ("sentence layout", sentence_address),
    ("labelled address layout", labelled_address),
    ("inline address layout", inline_address),
];

/// Markers after which the bounce quotes the original message: the text
/// after them belongs to the sender, not to the report.
static ORIGINAL_MARKERS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)^[ \t>]*(?:-{2,}|={2,}|_{2,}|\*{2,})?[ \t]*(?:original message|begin (?:forwarded|original|returned) message|start of (?:the )?(?:original|returned) message|this is a copy of the message|below this line is a copy of the message|original message follows|(?:the )?(?:original|returned|unsent|undelivered) message (?:follows|below|headers?)|unsent message (?:follows|below)|message headers follow|headers of (?:the )?original message|original message headers|(?:the )?returned message|content-type: message/rfc822|the headers of the message|received message headers|元のメッセージ|以下.{0,10}(?:元|送信)のメール)",
    )
    .expect("static regex")
});

/// Header lines that, three in a row, show a quoted message header.
static HEADER_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:received|return-path|message-id|from|to|subject|date|mime-version|content-type|x-[a-z0-9-]+|dkim-signature|reply-to|sender|cc):[ \t]")
        .expect("static regex")
});

/// Headers that only a real message carries (not a summary of one).
static TRANSPORT_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:received|return-path|message-id|mime-version|content-type|dkim-signature|x-[a-z0-9-]+):")
        .expect("static regex")
});

/// Cut the report text before the quoted original message.
pub fn report_part(text: &str) -> &str {
    let mut cut = text.len();
    if let Some(m) = ORIGINAL_MARKERS.find(text) {
        // A marker in the first line is a title, not a boundary.
        if m.start() > 0 {
            cut = m.start();
        }
    }
    // Three consecutive header lines: a pasted header block.
    let mut run = 0usize;
    let mut run_start = 0usize;
    let mut transport = false;
    let mut pos = 0usize;
    for line in text.split_inclusive('\n') {
        if pos >= cut {
            break;
        }
        if HEADER_LINE.is_match(line) {
            if run == 0 {
                run_start = pos;
                transport = false;
            }
            run += 1;
            // Summaries echo To/Cc/Date/Subject; only a block with a
            // transport header is the returned message itself.
            transport |= TRANSPORT_HEADER.is_match(line);
            if run >= 3 && transport {
                cut = cut.min(run_start);
                break;
            }
        } else if !line.starts_with([' ', '\t']) {
            run = 0;
        }
        pos += line.len();
    }
    text.get(..cut).unwrap_or(text)
}

/// Lines that introduce a diagnostic but are boilerplate, not recipients.
static SKIP_LINE: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSetBuilder::new([
        r"^\s*(?:from|to|cc|reply-to|sender|return-path|date|subject|message-id|reporting-mta|x-[a-z-]+):",
        r"(?:please|kindly) (?:contact|send|mail|reply)",
        r"postmaster|mailer-daemon",
    ])
    .case_insensitive(true)
    .build()
    .expect("static regex")
});

fn push_unique(out: &mut Vec<Finding>, f: Finding) {
    if out.len() >= super::MAX_RECIPIENTS {
        return;
    }
    if let Some(existing) = out
        .iter_mut()
        .find(|e| e.address.eq_ignore_ascii_case(&f.address))
    {
        if existing.diagnostic.is_empty() {
            existing.diagnostic = f.diagnostic;
        } else if !f.diagnostic.is_empty() && !existing.diagnostic.contains(&f.diagnostic) {
            existing.diagnostic.push(' ');
            existing.diagnostic.push_str(&f.diagnostic);
        }
        if existing.alias.is_none() {
            existing.alias = f.alias;
        }
        return;
    }
    out.push(f);
}

fn ok_recipient(addr: &str, input: &LayoutInput<'_>) -> bool {
    // The reporting host's own postmaster is a contact, not a recipient.
    let own_postmaster = addr.to_ascii_lowercase().starts_with("postmaster@")
        && input.from.is_some_and(|f| {
            f.rsplit('@').next().unwrap_or("") == addr.rsplit('@').next().unwrap_or("")
        });
    !own_postmaster
        && !is_system_address(addr)
        && input.from.is_none_or(|f| !f.eq_ignore_ascii_case(addr))
}

/// A line that opens a recipient block: it begins with an address (maybe
/// in angle brackets or quotes), and what follows the address is a colon,
/// `...`, an `(expanded from …)`, nothing, or the start of a diagnostic.
static BLOCK_HEAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"^[ \t]*(?:(?:[*•]|-{1,2})[ \t]+)?(?:Recipient:|Recipient address:|Failed recipient:|Address:)?[ \t]*[<"]?([^\s<>"@]+@[^\s<>":;,()]+?)[>"]?(?:[ \t]*\((?:expanded from|generated from|originally to)?:?[ \t]*<?([^\s<>()]+@[^\s<>()]+?)>?\))?[ \t]*(:|\.\.\.|,|[ \t]+on[ \t]|[ \t]+\(|[ \t]-|[ \t]*$|[ \t]+[0-9]{3}[ \t-]|[ \t]+[A-Za-z\[])"#,
    )
    .expect("static regex")
});

/// The generic block reader: Postfix (`<a@b>: host … said: …`), qmail
/// (`<a@b>:` then the remote host's words), Exim (`  a@b` then indented
/// lines), Courier, OpenSMTPD and many smaller MTAs write one block per
/// recipient that starts with the address.
fn address_blocks(input: &LayoutInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines: Vec<&str> = input.text.lines().collect();
    let mut i = 0usize;
    while i < lines.len() {
        let line = lines.get(i).copied().unwrap_or("");
        let Some(c) = BLOCK_HEAD.captures(line) else {
            i += 1;
            continue;
        };
        if SKIP_LINE.matches(line).matched(0) {
            i += 1;
            continue;
        }
        let Some(addr) = c.get(1).and_then(|m| address::normalize(m.as_str())) else {
            i += 1;
            continue;
        };
        if !ok_recipient(&addr, input) {
            i += 1;
            continue;
        }
        let alias = c.get(2).and_then(|m| address::normalize(m.as_str()));
        let rest_start = c.get(3).map(|m| m.start()).unwrap_or(line.len());
        let mut diag = line
            .get(rest_start..)
            .unwrap_or("")
            .trim_start_matches([':', '.', ',', ' ', '\t'])
            .trim()
            .to_string();
        // A sentence that merely mentions an address ("a@b on Monday" is
        // fine, "a@b is a nice address" is prose) still counts: the
        // diagnostic tells.
        let head_indent = line.len() - line.trim_start().len();
        let mut j = i + 1;
        let mut taken = 0usize;
        let has_code = |d: &str| {
            super::status::find_reply_code(d).is_some() || super::status::find_status(d).is_some()
        };
        while j < lines.len() && taken < 16 {
            let l = lines.get(j).copied().unwrap_or("");
            if l.trim().is_empty() {
                // Exim and qmail put the diagnostic right under the address;
                // Exchange, Gmail and m-FILTER leave blank lines and spread
                // it over paragraphs. A paragraph break ends the block once
                // the diagnostic carries an SMTP code.
                if has_code(&diag) {
                    break;
                }
                j += 1;
                taken += 1;
                continue;
            }
            if BLOCK_HEAD.is_match(l)
                && address::find_first(l).is_some_and(|a| a != addr)
                && (l.len() - l.trim_start().len()) <= head_indent
            {
                break;
            }
            if !diag.is_empty() {
                diag.push(' ');
            }
            diag.push_str(l.trim());
            j += 1;
            taken += 1;
        }
        if diag.is_empty() {
            // Lotus Notes and others put the reason on the line above the
            // address.
            if let Some(prev) = i.checked_sub(1).and_then(|p| lines.get(p)) {
                let t = prev.trim();
                if !t.is_empty()
                    && !t.chars().all(|c| c == '-' || c == '=' || c == ' ')
                    && address::find_first(t).is_none()
                    && !t.ends_with(':')
                {
                    diag = t.to_string();
                }
            }
        }
        let alias = alias.filter(|a| *a != addr);
        push_unique(
            &mut out,
            Finding {
                address: addr,
                alias,
                diagnostic: diag,
                source: "address block layout",
                ..Finding::default()
            },
        );
        i = j.max(i + 1);
    }
    out
}

static SENDMAIL_FATAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)-+\s*the following addresses? (?:had|have) (?:permanent fatal errors|transient non-fatal errors)|-+\s*the following addresses? (?:had|have) (?:delivery )?(?:errors|problems)")
        .expect("static regex")
});

static TRANSCRIPT_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:<<<\s*)?([245][0-9][0-9])[ \-]").expect("static regex"));

/// Sendmail: `----- The following addresses had permanent fatal errors -----`,
/// then addresses with `(reason: …)`, then a session transcript whose
/// `<<< 550 …` lines carry the remote answer.
fn sendmail(input: &LayoutInput<'_>) -> Vec<Finding> {
    let Some(m) = SENDMAIL_FATAL.find(input.text) else {
        return Vec::new();
    };
    let after = input.text.get(m.end()..).unwrap_or("");
    let mut out: Vec<Finding> = Vec::new();
    let mut lines = after.lines().skip(1);
    // The address list runs to the first blank line after at least one
    // address.
    for l in lines.by_ref() {
        let t = l.trim();
        if t.is_empty() {
            if out.is_empty() {
                continue;
            }
            break;
        }
        if t.starts_with('(') {
            if let Some(last) = out.last_mut() {
                let inner = t.trim_start_matches('(').trim_end_matches(')');
                if let Some(x) = inner.strip_prefix("expanded from:") {
                    last.alias = address::find_first(x);
                } else {
                    let inner = inner.strip_prefix("reason:").unwrap_or(inner).trim();
                    if !last.diagnostic.is_empty() {
                        last.diagnostic.push(' ');
                    }
                    last.diagnostic.push_str(inner);
                }
            }
            continue;
        }
        if let Some(found) = address::find_all(t).into_iter().next() {
            if ok_recipient(&found.address, input) {
                // Some MTAs put the reason on the address line:
                // `a@b [Connection timed out]`.
                let rest = t
                    .get(found.end..)
                    .unwrap_or("")
                    .trim_start_matches(['>', ' ', '\t', '.', ':'])
                    .trim();
                out.push(Finding {
                    address: found.address,
                    diagnostic: rest.trim_matches(['[', ']']).to_string(),
                    source: "sendmail layout",
                    ..Finding::default()
                });
            }
        }
    }
    // The transcript: remote answers naming an address belong to it; the
    // others go to every recipient still without a code.
    let rest: Vec<&str> = lines.collect();
    let mut current: Option<String> = None;
    for l in rest {
        let t = l.trim();
        if let Some(rcpt) = t
            .strip_prefix(">>> ")
            .filter(|x| x.to_ascii_uppercase().starts_with("RCPT"))
        {
            current = address::find_first(rcpt);
            continue;
        }
        if t.is_empty() || t.starts_with("-----") {
            continue;
        }
        if TRANSCRIPT_LINE.is_match(t) || t.starts_with("<<<") || !t.starts_with("...") {
            let named = address::find_first(t).or_else(|| current.clone());
            for f in out.iter_mut() {
                let mine = named
                    .as_deref()
                    .is_none_or(|n| n.eq_ignore_ascii_case(&f.address));
                if mine && !f.diagnostic.contains(t.trim_start_matches("<<< ")) {
                    if !f.diagnostic.is_empty() {
                        f.diagnostic.push(' ');
                    }
                    f.diagnostic.push_str(t.trim_start_matches("<<< "));
                }
            }
        } else if t.starts_with("...") && t.contains("while talking to") {
            current = None;
        }
    }
    out
}

static TRANSCRIPT_VERDICT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*([245][0-9][0-9])[ -]<?([^\s<>]+@[^\s<>]+?)>?\.\.\.\s*(.*)$")
        .expect("static regex")
});

/// Sendmail's transcript without the address list (old Sendmail 5 and
/// friends): `550 <a@b>... User unknown` lines give the verdict per
/// recipient; the `>>>`/`<<<` exchange since the previous verdict is its
/// context.
fn sendmail_transcript(input: &LayoutInput<'_>) -> Vec<Finding> {
    let Some(start) = input.text.find("Transcript of session follows") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut since_last: Vec<&str> = Vec::new();
    for line in input.text.get(start..).unwrap_or("").lines().skip(1) {
        let t = line.trim();
        if let Some(c) = TRANSCRIPT_VERDICT.captures(t) {
            if let Some(addr) = c.get(2).and_then(|m| address::normalize(m.as_str())) {
                if ok_recipient(&addr, input) {
                    let mut diag = t.to_string();
                    let ctx = since_last.join(" ");
                    if !ctx.is_empty() {
                        diag = format!("{diag} | {ctx}");
                    }
                    push_unique(
                        &mut out,
                        Finding {
                            address: addr,
                            diagnostic: diag,
                            command: super::status::find_command(&ctx),
                            source: "sendmail transcript layout",
                            ..Finding::default()
                        },
                    );
                }
            }
            since_last.clear();
            continue;
        }
        if t.to_ascii_lowercase().starts_with("while talking to") || t.starts_with("...") {
            since_last.clear();
        }
        if !t.is_empty() && since_last.len() < 8 {
            since_last.push(t);
        }
    }
    out
}

static RCPT_ECHO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?-u:\b)RCPT TO:\s*<?([^\s<>]+@[^\s<>]+?)>?(?:\s|$)").expect("static regex")
});

/// Reports that echo the envelope (`RCPT TO: a@b`, InterScan's
/// `Sent <<< RCPT TO:<a@b>` then `Received >>> 550 …`, Verizon's message
/// details): the address is the echoed recipient, the diagnostic the lines
/// after it and any line carrying an SMTP code.
fn envelope_rcpt(input: &LayoutInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines: Vec<&str> = input.text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(c) = RCPT_ECHO.captures(line) else {
            continue;
        };
        let Some(addr) = c.get(1).and_then(|m| address::normalize(m.as_str())) else {
            continue;
        };
        if !ok_recipient(&addr, input) {
            continue;
        }
        // A session transcript after the echo: the first failing reply
        // (4xx/5xx) is the diagnostic, and the command sent just before it
        // is the stage. A 2xx answer to RCPT TO means the recipient was
        // accepted and the failure came later.
        let mut last_command: Option<String> = Some("RCPT".to_string());
        let mut failing: Option<(&str, Option<String>)> = None;
        for l in lines.iter().skip(i + 1).take(60) {
            let t = l.trim();
            if let Some(code) = super::status::find_reply_code(t) {
                if code >= 400 {
                    failing = Some((t, last_command.clone()));
                    break;
                }
                continue;
            }
            let sent = t
                .strip_prefix("In:")
                .or_else(|| t.strip_prefix(">>>"))
                .or_else(|| t.strip_prefix("Sent"))
                .map(|x| x.trim_start_matches(['<', ' ', '\t']).to_ascii_uppercase());
            if let Some(cmd) = sent {
                last_command = ["RCPT", "DATA", "MAIL", "EHLO", "HELO", "QUIT"]
                    .iter()
                    .find(|c| cmd.starts_with(**c))
                    .map(|c| (*c).to_string())
                    .or(last_command);
            }
        }
        let (diag, stage) = match failing {
            Some((t, cmd)) => (vec![t], cmd),
            None => {
                let mut diag: Vec<&str> = lines
                    .iter()
                    .skip(i + 1)
                    .take(2)
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty())
                    .collect();
                for l in lines.iter().take(40) {
                    let t = l.trim();
                    if super::status::find_reply_code(t).is_some() && !diag.contains(&t) {
                        diag.push(t);
                    }
                }
                // A summary of the envelope says nothing about the stage,
                // and its error line is the gateway's summary too: carriers'
                // mail-to-SMS gateways write the same "no such user" for a
                // subscriber who refused mail as for a number that is gone.
                (diag, None)
            }
        };
        push_unique(
            &mut out,
            Finding {
                address: addr,
                diagnostic: diag.join(" "),
                source: "envelope echo layout",
                command: stage.clone(),
                loose: stage.is_none(),
                ..Finding::default()
            },
        );
    }
    out
}

static DELIVERY_SENTENCE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(?:(?:un)?deliverable|deliver(?:ing|ed|y)?|send(?:ing)?|sent|transmit(?:ting|ted)?|reach|relay(?:ing|ed)?|forward(?:ing|ed)?|message)(?-u:\b)[^<@\n]{0,60}?(?-u:\b)to:?\s*[<"\[]?([^\s<>"\[\]]+@[^\s<>"\[\]]+)[>"\]]?(?:[\s.,:;]|$)"#).expect("static regex")
});

/// Reports that name the recipient inside a sentence ("There was an error
/// delivering your mail to <a@b>.", "Could not be delivered to: <a@b>")
/// and explain below it.
fn sentence_address(input: &LayoutInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let text = input.text;
    for c in DELIVERY_SENTENCE.captures_iter(text) {
        let (Some(all), Some(m)) = (c.get(0), c.get(1)) else {
            continue;
        };
        let Some(addr) = address::normalize(m.as_str().trim_end_matches(['.', ',', ':', ';']))
        else {
            continue;
        };
        if !ok_recipient(&addr, input) {
            continue;
        }
        // The explanation: the rest of the sentence's line and the next
        // lines, up to a bounded length.
        let line_start = text
            .get(..all.start())
            .and_then(|p| p.rfind('\n'))
            .map_or(0, |p| p + 1);
        let mut end = (all.end() + 800).min(text.len());
        while end < text.len() && !text.is_char_boundary(end) {
            end += 1;
        }
        let diag: String = text
            .get(line_start..end)
            .unwrap_or("")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        push_unique(
            &mut out,
            Finding {
                address: addr,
                diagnostic: diag,
                source: "sentence layout",
                ..Finding::default()
            },
        );
    }
    out
}

static LABELLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\s*([^:<>@]{3,120}?)\s*:\s*[<"]?([^\s<>":]+@[^\s<>":]+?)[>"]?\s*$"#)
        .expect("static regex")
});

/// `Explanation: a@b` lines (IMail's "User mailbox exceeds allowed size:
/// a@b", "Failed recipient: a@b"): the text before the colon, and the lines
/// after, are the diagnostic.
fn labelled_address(input: &LayoutInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let lines: Vec<&str> = input.text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if SKIP_LINE.matches(line).matched(0) {
            continue;
        }
        let Some(c) = LABELLED.captures(line) else {
            continue;
        };
        let Some(addr) = c.get(2).and_then(|m| address::normalize(m.as_str())) else {
            continue;
        };
        if !ok_recipient(&addr, input) {
            continue;
        }
        let mut diag = c
            .get(1)
            .map(|m| m.as_str().trim().to_string())
            .unwrap_or_default();
        for l in lines.iter().skip(i + 1).take(4) {
            if l.trim().is_empty() {
                break;
            }
            diag.push(' ');
            diag.push_str(l.trim());
        }
        push_unique(
            &mut out,
            Finding {
                address: addr,
                diagnostic: diag,
                source: "labelled address layout",
                ..Finding::default()
            },
        );
    }
    out
}

/// Remove one level of `>` quoting, for bounces forwarded by a person.
pub fn unquote(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let l = line
            .strip_prefix('>')
            .map(|l| l.strip_prefix(' ').unwrap_or(l))
            .unwrap_or(line);
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Lines that name an address inside a sentence with an SMTP code:
/// `550 5.1.1 <a@b>... User unknown`, `RCPT TO:<a@b> 550 …`,
/// `Your message to a@b was rejected: …`.
fn inline_address(input: &LayoutInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for line in input.text.lines() {
        let t = line.trim();
        if t.is_empty() || t.len() > 1000 || SKIP_LINE.matches(t).matched(0) {
            continue;
        }
        let has_code =
            super::status::find_reply_code(t).is_some() || super::status::find_status(t).is_some();
        if !has_code {
            continue;
        }
        for f in address::find_all(t) {
            if ok_recipient(&f.address, input) {
                push_unique(
                    &mut out,
                    Finding {
                        address: f.address,
                        diagnostic: t.to_string(),
                        source: "inline address layout",
                        ..Finding::default()
                    },
                );
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, reader: fn(&LayoutInput<'_>) -> Vec<Finding>) -> Vec<Finding> {
        reader(&LayoutInput {
            text,
            from: Some("mailer-daemon@mx.test"),
            to: &[],
        })
    }

    #[test]
    fn postfix_block() {
        let t = "This is the mail system.\n\n<u@dest.test>: host mx.dest.test[192.0.2.1] said: 550 5.1.1\n    <u@dest.test>: Recipient address rejected: User unknown (in reply to RCPT TO\n    command)\n\n";
        let f = run(t, address_blocks);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].address, "u@dest.test");
        assert!(f[0].diagnostic.contains("User unknown"));
    }

    #[test]
    fn qmail_block() {
        let t = "Hi. This is the qmail-send program.\n\n<u@dest.test>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 sorry, no mailbox here by that name. (#5.1.1)\nGiving up on 192.0.2.1.\n\n";
        let f = run(t, address_blocks);
        assert_eq!(f.len(), 1);
        assert!(f[0].diagnostic.contains("no mailbox here"));
    }

    #[test]
    fn exim_block() {
        let t = "A message that you sent could not be delivered.\n\n  u@dest.test\n    host mx.dest.test [192.0.2.1]\n    SMTP error from remote mail server after RCPT TO:<u@dest.test>:\n    550 5.1.1 User unknown\n";
        let f = run(t, address_blocks);
        assert_eq!(f.len(), 1);
        assert!(f[0].diagnostic.contains("550 5.1.1 User unknown"));
    }

    #[test]
    fn sendmail_fatal() {
        let t = "   ----- The following addresses had permanent fatal errors -----\n<u@dest.test>\n    (reason: 550 5.1.1 <u@dest.test>... User unknown)\n\n   ----- Transcript of session follows -----\n... while talking to mx.dest.test.:\n>>> RCPT To:<u@dest.test>\n<<< 550 5.1.1 <u@dest.test>... User unknown\n";
        let f = run(t, sendmail);
        assert_eq!(f.len(), 1);
        assert!(f[0].diagnostic.contains("User unknown"));
    }

    #[test]
    fn sendmail_transcript_verdicts() {
        let t = "   ----- Transcript of session follows -----\nWhile talking to mx.dest.test:\n>>> RCPT To:<u@dest.test>\n<<< 550 No such user here.\n550 <u@dest.test>... User unknown\n";
        let f = run(t, sendmail_transcript);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].command.as_deref(), Some("RCPT"));
    }

    #[test]
    fn envelope_echo() {
        let t = "Sent <<< RCPT TO:<u@dest.test>\nReceived >>> 550 5.1.1 <u@dest.test>... user unknown\n";
        let f = run(t, envelope_rcpt);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].command.as_deref(), Some("RCPT"));
        assert!(!f[0].loose);
        let t = "Error: Invalid user address\n550 - no such user here\n\nMessage details:\n  RCPT TO: u@dest.test\n";
        let f = run(t, envelope_rcpt);
        assert!(f[0].loose, "a summary does not tie the error to the stage");
    }

    #[test]
    fn sentence_and_labelled() {
        let t = "There was an error delivering your mail to <u@dest.test>.\n\nDNS lookup failure: host dest.test not found\n";
        let f = run(t, sentence_address);
        assert_eq!(f.len(), 1);
        assert!(f[0].diagnostic.contains("not found"));
        let t = "User mailbox exceeds allowed size: u@dest.test\n";
        let f = run(t, labelled_address);
        assert_eq!(f[0].address, "u@dest.test");
        assert!(f[0].diagnostic.starts_with("User mailbox exceeds"));
    }

    #[test]
    fn gmail_paragraphs_and_bullets() {
        let t = "Delivery to the following recipient failed permanently:\n\n     u@dest.test\n\nTechnical details of permanent failure:\nGoogle tried to deliver your message.\n\nThe error that the other server returned was:\n550 5.1.1 user unknown\n";
        let f = run(t, address_blocks);
        assert!(f[0].diagnostic.contains("550 5.1.1"));
        let t = "Delivery to the following recipients was aborted after 5.0 hour(s):\n\n  * u@dest.test\n";
        assert_eq!(run(t, address_blocks)[0].address, "u@dest.test");
    }

    #[test]
    fn cuts_original() {
        let t = "report\n--- Below this line is a copy of the message.\nTo: x@y.test\n";
        assert_eq!(report_part(t), "report\n");
        let t2 = "report\n\nReceived: x\nFrom: a@b.test\nTo: c@d.test\n";
        assert_eq!(report_part(t2), "report\n\n");
    }
}
