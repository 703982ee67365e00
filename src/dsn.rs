//! RFC 3464 delivery-status reader.
//!
//! A `message/delivery-status` body is a sequence of header-like field
//! blocks separated by blank lines: the first block describes the message
//! (Reporting-MTA, Arrival-Date, …), every later block one recipient
//! (Final-Recipient, Action, Status, Diagnostic-Code, …). Real MTAs bend the
//! format (no blank line between recipients, fields out of order, folded
//! values, the whole report pasted into a text part), so this reader is
//! deliberately lenient: it never fails, it only finds less.

/// One `Name: value` field, name lower-cased, value unfolded and trimmed.
pub type Field = (String, String);

/// The per-recipient part of a delivery-status report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnRecipient {
    /// `Final-Recipient`, without its address-type prefix.
    pub final_recipient: Option<String>,
    /// `Original-Recipient`, without its address-type prefix.
    pub original_recipient: Option<String>,
    /// `X-Actual-Recipient` (Sendmail, Exchange), without its prefix.
    pub actual_recipient: Option<String>,
    /// `Action` (`failed`, `delayed`, `delivered`, `relayed`, `expanded`), lower case.
    pub action: Option<String>,
    /// `Status`, the enhanced status code as written.
    pub status: Option<String>,
    /// `Remote-MTA`, without its type prefix.
    pub remote_mta: Option<String>,
    /// `Diagnostic-Code` text, without its `smtp;` type prefix.
    pub diagnostic: Option<String>,
    /// The type of the `Diagnostic-Code` (`smtp`, `x-unix`, …), lower case.
    pub diagnostic_type: Option<String>,
    /// `Will-Retry-Until`, whose presence marks a delay report.
    pub will_retry_until: Option<String>,
    /// PowerMTA's `X-PowerMTA-BounceCategory` (`bad-mailbox`, …).
    pub bounce_category: Option<String>,
}

impl DsnRecipient {
    /// Whether the block names a recipient at all.
    pub fn has_address(&self) -> bool {
        self.final_recipient.is_some()
            || self.original_recipient.is_some()
            || self.actual_recipient.is_some()
    }
}

/// A whole delivery-status report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DsnReport {
    /// `Reporting-MTA` of the per-message block.
    pub reporting_mta: Option<String>,
    /// `Received-From-MTA` of the per-message block.
    pub received_from_mta: Option<String>,
    /// Every recipient block that names an address, in order.
    pub recipients: Vec<DsnRecipient>,
}

/// Unfold a field block into `(name, value)` pairs.
///
/// Continuation lines (starting with white space) join the previous value
/// with one space; lines that are not fields are ignored, because MTAs mix
/// prose into reports more often than one would hope.
pub fn fields(text: &str) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                let cont = line.trim();
                if !cont.is_empty() {
                    if !last.1.is_empty() {
                        last.1.push(' ');
                    }
                    last.1.push_str(cont);
                }
            }
            continue;
        }
        match split_field(line) {
            Some((name, value)) => out.push((name.to_ascii_lowercase(), value.trim().to_string())),
            // A blank or prose line ends folding.
            None => out.push((String::new(), String::new())),
        }
    }
    out.retain(|(n, _)| !n.is_empty());
    out
}

/// Split `Name: value`, where the name is a run of printable ASCII without
/// spaces or colons.
pub fn split_field(line: &str) -> Option<(&str, &str)> {
    let colon = line.find(':')?;
    let name = line.get(..colon)?;
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b':' && b != b'<' && b != b'>')
    {
        return None;
    }
    Some((name, line.get(colon + 1..)?))
}

/// Strip an RFC 3464 type prefix (`rfc822;`, `smtp;`, `dns;`) from a value,
/// returning `(type, rest)`.
pub fn split_typed(value: &str) -> (Option<String>, String) {
    if let Some(semi) = value.find(';') {
        let (ty, rest) = (
            value.get(..semi).unwrap_or(""),
            value.get(semi + 1..).unwrap_or(""),
        );
        let ty = ty.trim();
        if !ty.is_empty()
            && ty.len() <= 24
            && ty
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return (Some(ty.to_ascii_lowercase()), rest.trim().to_string());
        }
    }
    (None, value.trim().to_string())
}

fn set_once(slot: &mut Option<String>, value: String) -> bool {
    if slot.is_some() {
        return false;
    }
    if !value.is_empty() {
        *slot = Some(value);
    }
    true
}

/// Read a delivery-status body (or text that embeds its fields).
pub fn parse(text: &str) -> DsnReport {
    let mut report = DsnReport::default();
    let mut cur = DsnRecipient::default();
    let mut in_recipient = false;

    // Blocks are separated by blank lines; inside a block, a repeated
    // recipient field also starts a new recipient (reports that forget the
    // blank line between recipients).
    for block in split_blocks(text) {
        for (name, value) in fields(block) {
            let starts_recipient = matches!(
                name.as_str(),
                "final-recipient" | "original-recipient" | "x-actual-recipient"
            );
            if starts_recipient {
                let (_, v) = split_typed(&value);
                let v = v.trim_matches(|c| c == '<' || c == '>').to_string();
                let slot = match name.as_str() {
                    "final-recipient" => &mut cur.final_recipient,
                    "original-recipient" => &mut cur.original_recipient,
                    _ => &mut cur.actual_recipient,
                };
                if !set_once(slot, v.clone())
                    || (name == "original-recipient" && cur.action.is_some())
                {
                    // The field repeats: this is the next recipient.
                    if cur.has_address() {
                        report.recipients.push(std::mem::take(&mut cur));
                    } else {
                        cur = DsnRecipient::default();
                    }
                    let slot = match name.as_str() {
                        "final-recipient" => &mut cur.final_recipient,
                        "original-recipient" => &mut cur.original_recipient,
                        _ => &mut cur.actual_recipient,
                    };
                    set_once(slot, v);
                }
                in_recipient = true;
                continue;
            }
            match name.as_str() {
                "reporting-mta" if !in_recipient => {
                    report.reporting_mta = Some(split_typed(&value).1);
                }
                "received-from-mta" if !in_recipient => {
                    report.received_from_mta = Some(split_typed(&value).1);
                }
                "action" => {
                    let a = value
                        .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
                        .next()
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    set_once(&mut cur.action, a);
                }
                "status" => {
                    let s = value.split_whitespace().next().unwrap_or("").to_string();
                    set_once(&mut cur.status, s);
                }
                "remote-mta" => {
                    set_once(&mut cur.remote_mta, split_typed(&value).1);
                }
                "diagnostic-code" => {
                    let (ty, rest) = split_typed(&value);
                    if cur.diagnostic.is_none() {
                        cur.diagnostic_type = ty;
                    }
                    set_once(&mut cur.diagnostic, rest);
                }
                "will-retry-until" => {
                    set_once(&mut cur.will_retry_until, value);
                }
                "x-powermta-bouncecategory" => {
                    set_once(&mut cur.bounce_category, value.to_ascii_lowercase());
                }
                _ => {}
            }
        }
        if in_recipient && cur.has_address() {
            report.recipients.push(std::mem::take(&mut cur));
        }
        in_recipient = false;
        cur = DsnRecipient::default();
    }
    report
}

/// Split text into blocks at blank lines.
fn split_blocks(text: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut start = 0usize;
    let mut pos = 0usize;
    let mut blank_run = false;
    for line in text.split_inclusive('\n') {
        let is_blank = line.trim().is_empty();
        if is_blank && !blank_run {
            if let Some(b) = text.get(start..pos) {
                if !b.trim().is_empty() {
                    blocks.push(b);
                }
            }
            blank_run = true;
        }
        pos += line.len();
        if is_blank {
            start = pos;
        } else {
            blank_run = false;
        }
    }
    if let Some(b) = text.get(start..) {
        if !b.trim().is_empty() {
            blocks.push(b);
        }
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_recipient_blocks() {
        let t = "Reporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; a@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 no such\r\n    user here\r\n\r\nFinal-Recipient: rfc822; c@d.test\r\nAction: delayed\r\nStatus: 4.4.7\r\n";
        let r = parse(t);
        assert_eq!(r.reporting_mta.as_deref(), Some("mx.test"));
        assert_eq!(r.recipients.len(), 2);
        assert_eq!(r.recipients[0].final_recipient.as_deref(), Some("a@b.test"));
        assert_eq!(
            r.recipients[0].diagnostic.as_deref(),
            Some("550 5.1.1 no such user here")
        );
        assert_eq!(r.recipients[0].diagnostic_type.as_deref(), Some("smtp"));
        assert_eq!(r.recipients[1].action.as_deref(), Some("delayed"));
    }

    #[test]
    fn splits_recipients_without_blank_line() {
        let t = "Final-Recipient: rfc822; a@b.test\nAction: failed\nStatus: 5.1.1\nFinal-Recipient: rfc822; c@d.test\nAction: failed\nStatus: 5.2.2\n";
        let r = parse(t);
        assert_eq!(r.recipients.len(), 2);
        assert_eq!(r.recipients[1].status.as_deref(), Some("5.2.2"));
    }

    #[test]
    fn odd_input_does_not_panic() {
        for t in ["", ":", "\n\n\n", "a:\n b", "Final-Recipient:", "é: ü\n ;"] {
            let _ = parse(t);
        }
    }
}
