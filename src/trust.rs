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
use crate::verp::VerifyError;

pub use crate::parse::TokenSources;

/// The outcome of verifying one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// A valid, unexpired token names this recipient.
    pub verified: bool,
    /// Why (or why not), in words, for the database and the operator.
    pub why: String,
}

/// Collect the token sources of a raw message (classification gathers the
/// same while parsing: see [`crate::classify::Verdict::token_sources`]).
///
/// Never panics; a message that cannot be parsed yields no sources.
pub fn sources(raw: &[u8]) -> TokenSources {
    crate::parse::parse(raw)
        .map(|m| m.token_sources)
        .unwrap_or_default()
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
    verdict: &crate::classify::Verdict,
    now: i64,
) -> Vec<Verification> {
    let Some(config) = config else {
        return Vec::new();
    };
    verdict
        .recipients
        .iter()
        .map(|r| {
            verify(
                config,
                &verdict.token_sources,
                &r.address,
                r.alias.as_deref(),
                now,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verp::{Key, Keyring, TOKEN_HEADER};

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
        assert_eq!(s.envelope.len(), crate::parse::MAX_TOKEN_CANDIDATES);
    }
}
