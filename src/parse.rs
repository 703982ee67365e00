//! Parsing raw messages into the parts a classifier reads.
//!
//! mail-parser does the MIME and charset work (ISO-2022-JP, Shift_JIS,
//! EUC-JP through its `full_encoding` feature); this module only picks out
//! what a bounce reader needs: the top-level headers, the human-readable
//! text, the machine-readable report parts and the returned original.

use crate::verp::TOKEN_HEADER;
use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

/// Inputs larger than this are cut: a bounce's report is at its start, and
/// the cut bounds the time and memory any single message can cost.
pub const MAX_INPUT: usize = 4 * 1024 * 1024;

/// Text beyond this many bytes is not scanned by the classifier.
pub const MAX_TEXT: usize = 256 * 1024;

/// The headers of the returned original message, if it came back.
#[derive(Debug, Clone, Default)]
pub struct Original {
    /// Every header, name lower-cased, value unfolded.
    pub headers: Vec<(String, String)>,
}

impl Original {
    /// The first value of a header (name in lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Where signed-bounce tokens (see `crate::trust`) could be, gathered while
/// the message is parsed so that verifying a bounce needs no second parse.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSources {
    /// Addresses from the bounce's envelope-side headers (`Delivered-To`,
    /// `X-Original-To`, `Envelope-To`, `X-Envelope-To`, `To`).
    pub envelope: Vec<String>,
    /// `X-Bounced-Token` values from the returned originals' headers.
    pub header_tokens: Vec<String>,
}

/// The headers of the bounce itself that name where it was delivered.
const ENVELOPE_HEADERS: &[&str] = &[
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "To",
];

/// How deep returned originals are searched (a bounce of a bounce of …).
const MAX_TOKEN_DEPTH: usize = 4;
/// At most this many candidate addresses or tokens are kept, so a message
/// with 100,000 `To` addresses costs no more than one with ten.
pub const MAX_TOKEN_CANDIDATES: usize = 32;

/// Collect the token sources of a parsed message: envelope-side header
/// addresses of the message itself, and the token header of every returned
/// original (`message/rfc822` or `text/rfc822-headers`), never body text.
fn token_sources(message: &Message<'_>, raw: &[u8]) -> TokenSources {
    let mut out = TokenSources::default();
    for header in message.headers() {
        if out.envelope.len() >= MAX_TOKEN_CANDIDATES {
            break;
        }
        if ENVELOPE_HEADERS
            .iter()
            .any(|h| header.name().eq_ignore_ascii_case(h))
        {
            let start = header.offset_start() as usize;
            let end = header.offset_end() as usize;
            if let Some(bytes) = raw.get(start..end) {
                for addr in addresses_in(&String::from_utf8_lossy(bytes)) {
                    if out.envelope.len() < MAX_TOKEN_CANDIDATES {
                        out.envelope.push(addr);
                    }
                }
            }
        }
    }
    collect_header_tokens(message, 0, &mut out.header_tokens);
    out
}

fn collect_header_tokens(message: &Message<'_>, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_TOKEN_DEPTH {
        return;
    }
    for part in message.parts.iter() {
        if out.len() >= MAX_TOKEN_CANDIDATES {
            return;
        }
        if let Some(inner) = part.message() {
            if let Some(token) = inner.header_raw(TOKEN_HEADER) {
                out.push(token.trim().to_string());
            }
            collect_header_tokens(inner, depth + 1, out);
            continue;
        }
        let is_headers = part.content_type().is_some_and(|ct| {
            ct.ctype().eq_ignore_ascii_case("text")
                && ct
                    .subtype()
                    .is_some_and(|s| s.eq_ignore_ascii_case("rfc822-headers"))
        });
        if is_headers {
            if let Some(headers) = MessageParser::default().parse_headers(part.contents()) {
                if let Some(token) = headers.header_raw(TOKEN_HEADER) {
                    out.push(token.trim().to_string());
                }
            }
        }
    }
}

/// Plain addresses (`local@domain`) in a raw header field.
fn addresses_in(value: &str) -> Vec<String> {
    let value = value.split_once(':').map_or(value, |(_, v)| v);
    value
        .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')'))
        .filter(|w| w.contains('@') && !w.starts_with('@') && !w.ends_with('@'))
        .map(|w| w.to_string())
        .collect()
}

/// A message taken apart for classification.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    /// Top-level headers, name lower-cased, value unfolded (raw, not
    /// RFC 2047-decoded except `subject`).
    pub headers: Vec<(String, String)>,
    /// The decoded Subject.
    pub subject: String,
    /// The From address (lower-cased), if any.
    pub from_address: Option<String>,
    /// The From display name, if any.
    pub from_name: Option<String>,
    /// The message's own Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// `type/subtype` of the top-level Content-Type, lower case.
    pub content_type: String,
    /// The `report-type` parameter of a `multipart/report`, lower case.
    pub report_type: Option<String>,
    /// The human-readable text: every text part outside the returned
    /// original, joined with blank lines (HTML reduced to text when there is
    /// no plain part).
    pub text: String,
    /// Bodies of `message/delivery-status` (and `global-`) parts.
    pub delivery_status: Vec<String>,
    /// Bodies of `message/feedback-report` parts.
    pub feedback_report: Vec<String>,
    /// The returned original's headers (`message/rfc822` or
    /// `text/rfc822-headers`).
    pub original: Option<Original>,
    /// Where signed-bounce tokens could be.
    pub token_sources: TokenSources,
}

impl Mail {
    /// The first value of a top-level header (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why bytes could not be taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Empty input.
    Empty,
    /// The input does not begin with a header field.
    NoHeader,
}

/// Skip an mbox `From ` separator line, which IMAP never shows but files do.
fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    if raw.starts_with(b"From ") {
        if let Some(nl) = raw.iter().position(|&b| b == b'\n') {
            return raw.get(nl + 1..).unwrap_or(&[]);
        }
    }
    raw
}

/// Whether the bytes start with something shaped like a header field.
fn starts_with_header(raw: &[u8]) -> bool {
    let line_end = raw
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(raw.len())
        .min(1000);
    let line = raw.get(..line_end).unwrap_or(&[]);
    match line.iter().position(|&b| b == b':') {
        Some(0) | None => false,
        Some(colon) => line
            .get(..colon)
            .unwrap_or(&[])
            .iter()
            .all(|&b| b.is_ascii_graphic() && b != b':'),
    }
}

/// Unfold a raw header value: join continuation lines, trim.
pub fn unfold(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, part) in v.split('\n').enumerate() {
        let p = part.trim_end_matches('\r');
        let p = if i == 0 { p.trim() } else { p.trim_start() };
        if p.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(p.trim_end());
    }
    out
}

fn collect_headers(msg_headers: &[mail_parser::Header<'_>], raw: &[u8]) -> Vec<(String, String)> {
    msg_headers
        .iter()
        .map(|h| {
            let start = h.offset_start() as usize;
            let end = h.offset_end() as usize;
            let value = raw
                .get(start..end)
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default();
            (h.name().to_ascii_lowercase(), unfold(&value))
        })
        .collect()
}

/// Reduce HTML to text, crudely but safely: drop tags, keep line breaks.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        if in_tag {
            if c == '>' {
                in_tag = false;
                let t = tag.to_ascii_lowercase();
                if t.starts_with("br")
                    || t.starts_with("/p")
                    || t.starts_with("/div")
                    || t.starts_with("/tr")
                    || t.starts_with("p")
                {
                    out.push('\n');
                }
                tag.clear();
            } else if tag.len() < 8 {
                tag.push(c);
            }
        } else if c == '<' {
            in_tag = true;
        } else {
            out.push(c);
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

fn content_type_of(part: &mail_parser::MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => {
            let sub = ct.subtype().unwrap_or("");
            format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase()
        }
        None => String::new(),
    }
}

/// Headers of a nested message. mail-parser keeps a nested message's header
/// offsets relative to the outermost message, so they are read from the
/// outer bytes; if that yields nothing sensible, from the nested bytes.
fn original_from_message(m: &Message<'_>, outer: &[u8]) -> Original {
    let headers = collect_headers(m.headers(), outer);
    if headers.iter().any(|(_, v)| !v.is_empty()) {
        return Original { headers };
    }
    Original {
        headers: collect_headers(m.headers(), m.raw_message()),
    }
}

/// Read header fields from text (for `text/rfc822-headers` parts).
pub fn original_from_text(text: &str) -> Original {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !headers.is_empty() {
                break;
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
            continue;
        }
        if let Some((n, v)) = crate::dsn::split_field(line) {
            headers.push((n.to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Original { headers }
}

/// Decode bytes whose charset nobody declared (delivery-status parts are
/// supposed to be ASCII, but MTAs paste Japanese diagnostics into them):
/// UTF-8 if valid, ISO-2022-JP if it has its escape sequences, otherwise
/// Shift_JIS or EUC-JP when one of them decodes cleanly, else Latin-1.
pub fn decode_bytes(b: &[u8]) -> String {
    if let Ok(s) = std::str::from_utf8(b) {
        if !s.contains("\x1b$") {
            return s.to_string();
        }
    }
    let has_jis_escape = b.windows(3).any(|w| w == b"\x1b$B" || w == b"\x1b$@");
    if has_jis_escape {
        let (s, _, _) = encoding_rs::ISO_2022_JP.decode(b);
        return s.into_owned();
    }
    for enc in [encoding_rs::SHIFT_JIS, encoding_rs::EUC_JP] {
        if let Some(s) = enc.decode_without_bom_handling_and_without_replacement(b) {
            return s.into_owned();
        }
    }
    encoding_rs::WINDOWS_1252.decode(b).0.into_owned()
}

/// Offset of the body: just after the first empty line.
fn find_body(raw: &[u8]) -> usize {
    let mut i = 0usize;
    while i < raw.len() {
        match raw.get(i..) {
            Some(r) if r.starts_with(b"\r\n\r\n") => return i + 4,
            Some(r) if r.starts_with(b"\n\n") => return i + 2,
            _ => i += 1,
        }
    }
    raw.len()
}

/// A message read without MIME: headers by our own reader, the body as
/// text. The fallback when the MIME parser gives up.
fn plain_mail(raw: &[u8]) -> Mail {
    let body_start = find_body(raw);
    let head = decode_bytes(raw.get(..body_start).unwrap_or(raw));
    let headers = original_from_text(&head).headers;
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let body = raw.get(body_start..).unwrap_or(&[]);
    let body = body.get(..body.len().min(MAX_TEXT)).unwrap_or(body);
    let from = get("from").unwrap_or_default();
    Mail {
        subject: get("subject").unwrap_or_default(),
        from_address: crate::classify::address::find_first(&from).map(|a| a.to_ascii_lowercase()),
        message_id: get("message-id").map(|m| m.trim_matches(|c| c == '<' || c == '>').to_string()),
        text: decode_bytes(body),
        headers,
        ..Mail::default()
    }
}

/// Take a raw message apart.
pub fn parse(raw: &[u8]) -> Result<Mail, ParseError> {
    let raw = raw.get(..MAX_INPUT).unwrap_or(raw);
    // Leading blank lines are not part of a message.
    let start = raw
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
        .unwrap_or(raw.len());
    let raw = raw.get(start..).unwrap_or(&[]);
    let raw = skip_mbox_line(raw);
    if raw.is_empty() {
        return Err(ParseError::Empty);
    }
    if !starts_with_header(raw) {
        return Err(ParseError::NoHeader);
    }
    // mail-parser 0.11 has a debug assertion that some malformed nestings
    // trip (found by fuzzing); in builds with debug assertions it panics.
    // A parser failure must not become ours: read such a message the plain
    // way instead.
    let parsed = std::panic::catch_unwind(|| MessageParser::new().parse(raw));
    let msg = match parsed {
        Ok(Some(m)) => m,
        Ok(None) => return Err(ParseError::NoHeader),
        Err(_) => return Ok(plain_mail(raw)),
    };

    let mut mail = Mail {
        headers: collect_headers(msg.headers(), msg.raw_message()),
        subject: msg.subject().unwrap_or("").to_string(),
        message_id: msg.message_id().map(|s| s.to_string()),
        token_sources: token_sources(&msg, raw),
        ..Mail::default()
    };
    if let Some(addr) = msg.from().and_then(|a| a.first()) {
        mail.from_address = addr.address().map(|a| a.to_ascii_lowercase());
        mail.from_name = addr.name().map(|n| n.to_string());
    }
    if let Some(ct) = msg.root_part().content_type() {
        mail.content_type =
            format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")).to_ascii_lowercase();
        mail.report_type = ct.attribute("report-type").map(|s| s.to_ascii_lowercase());
    }

    let mut plain = String::new();
    let mut html = String::new();
    for part in msg.parts.iter() {
        let ct = content_type_of(part);
        match &part.body {
            PartType::Multipart(_) => {}
            PartType::Message(m) => {
                if ct.contains("delivery-status") {
                    mail.delivery_status.push(decode_bytes(m.raw_message()));
                } else if ct.contains("feedback-report") {
                    mail.feedback_report.push(decode_bytes(m.raw_message()));
                } else if mail.original.is_none() {
                    mail.original = Some(original_from_message(m, raw));
                }
            }
            body => {
                let text: String = match body {
                    // A text part that still carries ISO-2022-JP escapes was
                    // mislabelled (us-ascii): decode it for real.
                    PartType::Text(t) | PartType::Html(t) if t.contains("\x1b$") => {
                        decode_bytes(t.as_bytes())
                    }
                    // A declared charset that the bytes do not follow (UTF-8
                    // labelled ISO-2022-JP) decodes to replacement
                    // characters; the raw bytes, sniffed, read better.
                    PartType::Text(t) | PartType::Html(t) if t.contains('\u{FFFD}') => {
                        let plain_cte = part.content_transfer_encoding().is_none_or(|c| {
                            matches!(c.to_ascii_lowercase().as_str(), "7bit" | "8bit" | "binary")
                        });
                        let raw_body = raw
                            .get(part.raw_body_offset() as usize..part.raw_end_offset() as usize);
                        match raw_body.filter(|_| plain_cte).map(decode_bytes) {
                            Some(sniffed)
                                if sniffed.matches('\u{FFFD}').count()
                                    < t.matches('\u{FFFD}').count() =>
                            {
                                sniffed
                            }
                            _ => t.to_string(),
                        }
                    }
                    PartType::Text(t) | PartType::Html(t) => t.to_string(),
                    PartType::Binary(b) | PartType::InlineBinary(b) => decode_bytes(b),
                    _ => String::new(),
                };
                if ct.contains("delivery-status") {
                    mail.delivery_status.push(text);
                } else if ct.contains("feedback-report") {
                    mail.feedback_report.push(text);
                } else if ct.contains("rfc822-headers") || ct == "message/rfc822" {
                    if mail.original.is_none() {
                        mail.original = Some(original_from_text(&text));
                    }
                } else if matches!(body, PartType::Html(_)) {
                    if html.len() < MAX_TEXT {
                        html.push_str(&html_to_text(&text));
                        html.push_str("\n\n");
                    }
                } else if matches!(body, PartType::Text(_)) && plain.len() < MAX_TEXT {
                    plain.push_str(&text);
                    plain.push_str("\n\n");
                }
            }
        }
    }
    mail.text = if plain.trim().is_empty() { html } else { plain };
    if mail.text.trim().is_empty() && mail.delivery_status.is_empty() {
        // Broken MIME (a boundary parameter that lost its folding) hides
        // every part; read the raw body as text rather than nothing.
        let body_start = find_body(raw);
        let body = raw.get(body_start..).unwrap_or(&[]);
        let body = body.get(..body.len().min(MAX_TEXT)).unwrap_or(body);
        mail.text = decode_bytes(body);
    }
    if mail.text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while cut > 0 && !mail.text.is_char_boundary(cut) {
            cut -= 1;
        }
        mail.text.truncate(cut);
    }
    Ok(mail)
}

/// Whether a line is an mbox postmark (`From sender date`, RFC 4155): the
/// sender is one word and the date carries a clock time.
fn is_postmark(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"From ") else {
        return false;
    };
    let rest = rest.trim_ascii();
    let Some(space) = rest.iter().position(|b| *b == b' ') else {
        return false;
    };
    let date = rest.get(space..).unwrap_or_default();
    date.windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == b':'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    }) || date.windows(4).any(|w| {
        w[0].is_ascii_digit() && w[1] == b':' && w[2].is_ascii_digit() && w[3].is_ascii_digit()
    })
}

/// The messages of an mbox file (RFC 4155): a file whose first line is a
/// `From sender date` postmark holds one message after each postmark that
/// starts the file or follows an empty line; the postmarks themselves are
/// left out. Anything else is one message, returned whole.
///
/// IMAP never delivers mbox; this serves `bounced classify` on archives.
pub fn split_mbox(raw: &[u8]) -> Vec<&[u8]> {
    // Blank lines before the first postmark are not part of any message.
    let lead = raw
        .iter()
        .position(|b| !matches!(b, b'\r' | b'\n'))
        .unwrap_or(raw.len());
    let body = raw.get(lead..).unwrap_or_default();
    let first_line = body.split(|b| *b == b'\n').next().unwrap_or_default();
    let first_line = first_line.strip_suffix(b"\r").unwrap_or(first_line);
    if !is_postmark(first_line) {
        return vec![raw];
    }
    let raw = body;
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut pos = 0usize;
    let mut previous_blank = true;
    for line in raw.split_inclusive(|b| *b == b'\n') {
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        let content = content.strip_suffix(b"\r").unwrap_or(content);
        if previous_blank && is_postmark(content) {
            if let Some(s) = start {
                out.push(raw.get(s..pos).unwrap_or_default());
            }
            start = Some(pos + line.len());
        }
        previous_blank = content.is_empty();
        pos += line.len();
    }
    if let Some(s) = start {
        out.push(raw.get(s..).unwrap_or_default());
    }
    out.retain(|m| !m.trim_ascii().is_empty());
    if out.is_empty() {
        out.push(raw);
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn mbox_splits_at_postmarks_only() {
        let m = b"From MAILER-DAEMON  Thu Apr 29 23:34:45 2015\nSubject: one\n\nbody\nFrom here on, text\n\nFrom MAILER-DAEMON Thu Apr 29 23:35:00 2015\nSubject: two\n\nbody\n";
        let parts = split_mbox(m);
        assert_eq!(parts.len(), 2);
        assert!(parts[0].starts_with(b"Subject: one"));
        assert!(parts[0].ends_with(b"From here on, text\n\n"));
        assert!(parts[1].starts_with(b"Subject: two"));
        // Not an mbox: returned whole.
        let plain = b"Subject: x\n\nFrom a@b 10:00\n";
        assert_eq!(split_mbox(plain), vec![&plain[..]]);
        assert_eq!(split_mbox(b""), vec![&b""[..]]);
        // Blank lines before the first postmark, CRLF line ends.
        let m = b"\r\n\r\nFrom a@b Thu Apr 29 23:34:45 2015\r\nSubject: one\r\n\r\nx\r\n\r\nFrom a@b Thu Apr 29 23:35:45 2015\r\nSubject: two\r\n\r\ny\r\n";
        let parts = split_mbox(m);
        assert_eq!(parts.len(), 2);
        assert!(parts[1].starts_with(b"Subject: two"));
    }

    use super::*;

    /// A message/rfc822 part whose own body declares message/rfc822 again
    /// trips a debug assertion inside mail-parser 0.11 (found by cargo fuzz);
    /// parse must still return.
    #[test]
    fn nested_rfc822_without_boundary_does_not_panic() {
        let raw = b"From x\nContent-Type: multipart/mixed;\n\tboundary=\"b1\"\nx-y\n\n--b1\nContD/x\nContent-Type: message/rfc822\n\n: a\nContent-Type: message/rfc822\n\nzz T(x\n\n--b1--\n";
        let _ = parse(raw);
    }

    #[test]
    fn rejects_non_messages() {
        assert_eq!(parse(b"").unwrap_err(), ParseError::Empty);
        assert_eq!(parse(b"\x00\x01\x02").unwrap_err(), ParseError::NoHeader);
        assert_eq!(parse(b"hello world\n").unwrap_err(), ParseError::NoHeader);
    }

    #[test]
    fn reads_report_parts() {
        let raw = b"From: MAILER-DAEMON@mx.test\r\nSubject: fail\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsorry\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n\r\nFinal-Recipient: rfc822; a@b.test\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nTo: a@b.test\r\nMessage-ID: <x@y>\r\n\r\n--b--\r\n";
        let m = parse(raw).unwrap();
        assert_eq!(m.report_type.as_deref(), Some("delivery-status"));
        assert_eq!(m.delivery_status.len(), 1);
        assert!(m.text.contains("sorry"));
        assert_eq!(m.original.unwrap().get("message-id"), Some("<x@y>"));
    }
}
