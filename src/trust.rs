//! Is this bounce about mail we really sent? Reads signed tokens (see
//! [`crate::verp`]) from the only places the sending side put them, and
//! checks them against each failed recipient.
//!
//! A token is read from the bounce's envelope-side recipient headers
//! (`Delivered-To`, `X-Original-To`, `Envelope-To`, `X-Envelope-To`, `To`) —
//! the bounce was sent to the signed return path — or from an
//! `X-Bounced-Token` header in the header section of the returned original
//! (`message/rfc822` or `text/rfc822-headers` part). Never from body text: a
//! forger can write anything there.

use crate::config::VerifyConfig;
use crate::verp::{VerifyError, TOKEN_HEADER};
use mail_parser::{MessageParser, MimeHeaders};

/// The headers of the bounce itself that name where it was delivered.
const ENVELOPE_HEADERS: &[&str] = &[
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "To",
];

/// How deep returned originals are searched (a bounce of a bounce of …).
const MAX_DEPTH: usize = 4;
/// At most this many candidate addresses or tokens are tried, so a message
/// with 100,000 `To` addresses costs no more than one with ten.
const MAX_CANDIDATES: usize = 32;

/// Where tokens could be, gathered once per message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenSources {
    /// Addresses from the bounce's envelope-side headers.
    pub envelope: Vec<String>,
    /// `X-Bounced-Token` values from returned originals' headers.
    pub header_tokens: Vec<String>,
}

/// The outcome of verifying one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// A valid, unexpired token names this recipient.
    pub verified: bool,
    /// Why (or why not), in words, for the database and the operator.
    pub why: String,
}

/// Collect the token sources of a raw message.
///
/// Never panics: mail-parser 0.11 trips a debug assertion on some malformed
/// nestings (see `parse.rs`); such a message simply yields no sources.
pub fn sources(raw: &[u8]) -> TokenSources {
    std::panic::catch_unwind(|| sources_unguarded(raw)).unwrap_or_default()
}

fn sources_unguarded(raw: &[u8]) -> TokenSources {
    let mut out = TokenSources::default();
    let Some(message) = MessageParser::default().parse(raw) else {
        return out;
    };
    for header in message.headers() {
        if out.envelope.len() >= MAX_CANDIDATES {
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
                    if out.envelope.len() < MAX_CANDIDATES {
                        out.envelope.push(addr);
                    }
                }
            }
        }
    }
    collect_header_tokens(&message, 0, &mut out.header_tokens);
    out
}

fn collect_header_tokens(message: &mail_parser::Message<'_>, depth: usize, out: &mut Vec<String>) {
    if depth > MAX_DEPTH {
        return;
    }
    for part in message.parts.iter() {
        if out.len() >= MAX_CANDIDATES {
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
            let contents = part.contents();
            if let Some(headers) = MessageParser::default().parse_headers(contents) {
                if let Some(token) = headers.header_raw(TOKEN_HEADER) {
                    out.push(token.trim().to_string());
                }
            }
        }
    }
}

/// Plain addresses (`local@domain`) in a header value.
fn addresses_in(value: &str) -> Vec<String> {
    let value = value.split_once(':').map_or(value, |(_, v)| v);
    value
        .split(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | ',' | ';' | '"' | '(' | ')'))
        .filter(|w| w.contains('@') && !w.starts_with('@') && !w.ends_with('@'))
        .map(|w| w.to_string())
        .collect()
}

/// Verify that a bounce for `failed` (and its `alias`, if the report gave
/// one) is about mail we sent to that address.
pub fn verify(
    config: &VerifyConfig,
    sources: &TokenSources,
    failed: &str,
    alias: Option<&str>,
    now: i64,
) -> Verification {
    let names = |t: &crate::verp::Token| t.names(failed) || alias.is_some_and(|a| t.names(a));
    // The most telling failure is reported: a forged or foreign token says
    // more than "no token".
    let mut best: Option<(u8, String)> = None;
    let mut note = |rank: u8, why: String| {
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, why));
        }
    };
    let candidates = sources
        .envelope
        .iter()
        .map(|a| {
            (
                "return path",
                config.keyring.verify_address(a, config.max_age_days, now),
            )
        })
        .chain(sources.header_tokens.iter().map(|t| {
            (
                "X-Bounced-Token header",
                config.keyring.verify_token(t, config.max_age_days, now),
            )
        }));
    for (place, result) in candidates {
        match result {
            Ok(token) if names(&token) => {
                let list = if token.list.is_empty() {
                    String::new()
                } else {
                    format!(", list {}", token.list)
                };
                return Verification {
                    verified: true,
                    why: format!("signed {place} (key {}{list})", token.key_id),
                };
            }
            Ok(token) => note(
                4,
                format!(
                    "{place}: {}",
                    VerifyError::WrongRecipient {
                        token_for: token.recipient,
                        failed: failed.to_string(),
                    }
                ),
            ),
            Err(VerifyError::NoToken) => note(0, "no token".into()),
            Err(e @ VerifyError::Malformed) => note(1, format!("{place}: {e}")),
            Err(e) => note(3, format!("{place}: {e}")),
        }
    }
    Verification {
        verified: false,
        why: best.map_or_else(|| "no token".to_string(), |(_, why)| why),
    }
}

/// Verify every recipient of a verdict: one entry per recipient, in order;
/// empty when no `[verify]` is configured.
pub fn check(
    config: Option<&VerifyConfig>,
    raw: &[u8],
    verdict: &crate::classify::Verdict,
    now: i64,
) -> Vec<Verification> {
    let Some(config) = config else {
        return Vec::new();
    };
    if verdict.recipients.is_empty() {
        return Vec::new();
    }
    let sources = sources(raw);
    verdict
        .recipients
        .iter()
        .map(|r| verify(config, &sources, &r.address, r.alias.as_deref(), now))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verp::{Key, Keyring};

    const NOW: i64 = 1_795_000_000;

    fn config() -> VerifyConfig {
        VerifyConfig {
            require: true,
            return_path: Some("bounces@lists.example.org".into()),
            max_age_days: 60,
            keyring: Keyring::new(vec![Key::new("k1", b"0123456789abcdef0123").unwrap()]).unwrap(),
        }
    }

    fn dsn(to: &str, original_headers: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example.net\r\nTo: {to}\r\nSubject: Undelivered Mail\r\n\
             MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nThe user jane@example.com does not exist. X-Bounced-Token: forged\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n\
             Final-Recipient: rfc822; jane@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
             --B\r\nContent-Type: text/rfc822-headers\r\n\r\n{original_headers}\r\n--B--\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn signed_return_path_verifies_its_recipient_only() {
        let rp = config()
            .keyring
            .return_path("bounces@lists.example.org", "jane@example.com", "news", NOW)
            .unwrap();
        let s = sources(&dsn(&rp, "Subject: hi"));
        let v = verify(&config(), &s, "jane@example.com", None, NOW);
        assert!(v.verified, "{}", v.why);
        assert!(
            v.why.contains("key k1") && v.why.contains("news"),
            "{}",
            v.why
        );
        let v = verify(&config(), &s, "john@example.com", None, NOW);
        assert!(!v.verified);
        assert!(v.why.contains("not john@example.com"), "{}", v.why);
        // The report may name the expanded address; the alias is the one we sent to.
        let v = verify(
            &config(),
            &s,
            "jane.doe@mail.example.com",
            Some("jane@example.com"),
            NOW,
        );
        assert!(v.verified, "{}", v.why);
    }

    #[test]
    fn token_header_in_the_returned_original_verifies() {
        let token = config().keyring.token("jane@example.com", "", NOW).unwrap();
        let s = sources(&dsn(
            "bounces@lists.example.org",
            &format!("From: news@lists.example.org\r\n{TOKEN_HEADER}: {token}\r\nSubject: hi"),
        ));
        assert_eq!(s.header_tokens, vec![token]);
        assert!(verify(&config(), &s, "jane@example.com", None, NOW).verified);
    }

    #[test]
    fn forgeries_do_not_verify() {
        // No token at all; the body's fake header does not count.
        let s = sources(&dsn("bounces@lists.example.org", "Subject: hi"));
        assert!(s.header_tokens.is_empty());
        let v = verify(&config(), &s, "jane@example.com", None, NOW);
        assert_eq!((v.verified, v.why.as_str()), (false, "no token"));
        // A token signed with another secret.
        let other = Keyring::new(vec![Key::new("k1", b"not the right secret").unwrap()]).unwrap();
        let rp = other
            .return_path("bounces@lists.example.org", "jane@example.com", "", NOW)
            .unwrap();
        let v = verify(
            &config(),
            &sources(&dsn(&rp, "")),
            "jane@example.com",
            None,
            NOW,
        );
        assert!(!v.verified && v.why.contains("bad signature"), "{}", v.why);
        // An expired one.
        let old = config()
            .keyring
            .return_path(
                "bounces@lists.example.org",
                "jane@example.com",
                "",
                NOW - 90 * 86_400,
            )
            .unwrap();
        let v = verify(
            &config(),
            &sources(&dsn(&old, "")),
            "jane@example.com",
            None,
            NOW,
        );
        assert!(!v.verified && v.why.contains("expired"), "{}", v.why);
    }

    #[test]
    fn garbage_has_no_sources() {
        assert_eq!(sources(b""), TokenSources::default());
        assert_eq!(sources(&[0xff; 100]).header_tokens.len(), 0);
    }

    #[test]
    fn many_addresses_are_capped() {
        let to: Vec<String> = (0..10_000).map(|i| format!("u{i}@example.com")).collect();
        let s = sources(format!("To: {}\r\n\r\nbody", to.join(", ")).as_bytes());
        assert_eq!(s.envelope.len(), MAX_CANDIDATES);
    }
}
