//! Finding and normalising e-mail addresses in report text.
//!
//! Bounces write addresses in every shape: `<a@b>`, `rfc822; a@b`,
//! `"a@b"`, `a@b:`, `a@b...`, inside sentences, with a trailing dot. The
//! extractor scans for `@` and grows the address outwards over the bytes an
//! address may contain; it works on bytes but only ever cuts at ASCII bytes,
//! so every slice lands on a UTF-8 character boundary.

/// Whether a byte may appear in a local part (RFC 5322 atext, dots, and any
/// non-ASCII byte so that SMTPUTF8 addresses come out whole).
fn is_local_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b >= 0x80 || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)
}

/// Whether a byte may appear in a domain (letters, digits, hyphen, dot,
/// IDN bytes, and the brackets of an address literal).
fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._[]:".contains(&b)
}

/// Normalise a candidate: trim wrappers and trailing punctuation, lower-case
/// the domain, and accept it only if it is shaped like an address.
pub fn normalize(s: &str) -> Option<String> {
    let s = s.trim();
    // An RFC 3464 address type prefix.
    let s = match s.find(';') {
        Some(i)
            if s.get(..i)
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("rfc822")) =>
        {
            s.get(i + 1..)?.trim()
        }
        _ => s,
    };
    let s = s
        .trim_matches(|c: char| c == '<' || c == '>' || c == '"' || c == '\'' || c.is_whitespace());
    let s = s.trim_end_matches(['.', ',', ':', ';', ')', ']']);
    let s = s.trim_start_matches(['(', '[']);
    let at = s.rfind('@')?;
    let local = s.get(..at)?;
    let domain = s.get(at + 1..)?;
    if local.is_empty() || domain.is_empty() || local.len() > 128 || domain.len() > 255 {
        return None;
    }
    let local = local.trim_start_matches('.');
    if local.is_empty() || local.ends_with('.') && local.len() == 1 {
        return None;
    }
    if !local.bytes().all(is_local_byte) || !domain.bytes().all(is_domain_byte) {
        return None;
    }
    if domain.starts_with(['.', '-']) || domain.contains("..") {
        return None;
    }
    // A domain with no dot is accepted only for the odd local report
    // (`user@localhost`); a bracket literal must be closed.
    if domain.starts_with('[') != domain.ends_with(']') {
        return None;
    }
    if !domain.starts_with('[') && domain.contains([':', '[', ']']) {
        return None;
    }
    Some(format!("{}@{}", local, domain.to_lowercase()))
}

/// One address found in text, with its byte range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset just past the last character.
    pub end: usize,
    /// The normalised address.
    pub address: String,
}

/// Every address in the text, in order.
pub fn find_all(text: &str) -> Vec<Found> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0usize;
    let mut last_end = 0usize;
    while i < bytes.len() {
        if bytes.get(i) != Some(&b'@') {
            i += 1;
            continue;
        }
        let mut s = i;
        while s > last_end && bytes.get(s - 1).copied().is_some_and(is_local_byte) {
            s -= 1;
        }
        let mut e = i + 1;
        while e < bytes.len() && bytes.get(e).copied().is_some_and(is_domain_byte) {
            e += 1;
        }
        // Trailing dots, colons and brackets are punctuation, not domain.
        while e > i + 1 && bytes.get(e - 1).is_some_and(|b| b".:[]-".contains(b)) {
            if bytes.get(e - 1) == Some(&b']') && bytes.get(i + 1) == Some(&b'[') {
                break;
            }
            e -= 1;
        }
        while s < i && bytes.get(s) == Some(&b'.') {
            s += 1;
        }
        if s < i && e > i + 1 {
            if let Some(cand) = text.get(s..e) {
                if let Some(address) = normalize(cand) {
                    out.push(Found {
                        start: s,
                        end: e,
                        address,
                    });
                }
            }
        }
        last_end = e.max(i + 1);
        i = last_end;
    }
    out
}

/// The first address in the text.
pub fn find_first(text: &str) -> Option<String> {
    find_all(text).into_iter().next().map(|f| f.address)
}

/// Addresses that are never a failed recipient: the reporting system's own
/// mailboxes.
pub fn is_system_address(addr: &str) -> bool {
    let local = addr.split('@').next().unwrap_or("").to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon" | "mail-daemon" | "mailerdaemon"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normalises_common_shapes() {
        assert_eq!(
            normalize("<User@Example.COM>").as_deref(),
            Some("User@example.com")
        );
        assert_eq!(normalize("rfc822; a@b.test").as_deref(), Some("a@b.test"));
        assert_eq!(normalize("\"a@b.test\"").as_deref(), Some("a@b.test"));
        assert_eq!(normalize("a@b.test.").as_deref(), Some("a@b.test"));
        assert_eq!(normalize("nope"), None);
        assert_eq!(normalize("@b.test"), None);
        assert_eq!(normalize("a@"), None);
    }

    #[test]
    fn finds_addresses_in_sentences() {
        let t = "<a@b.test>: host mx.b.test[192.0.2.1] said: 550 5.1.1 <a@b.test>... User unknown";
        let f = find_all(t);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].address, "a@b.test");
        assert_eq!(
            find_first("to: x.y@z.test: no").as_deref(),
            Some("x.y@z.test")
        );
        assert_eq!(
            find_first("ユーザー名 ｕ@b.test は").as_deref(),
            Some("ｕ@b.test")
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = find_all(&s);
            let _ = normalize(&s);
        }

        #[test]
        fn found_addresses_are_normal(s in "[ -~\\PC]{0,80}") {
            for f in find_all(&s) {
                prop_assert!(s.is_char_boundary(f.start) && s.is_char_boundary(f.end));
                prop_assert_eq!(normalize(&f.address), Some(f.address.clone()));
                prop_assert!(f.address.contains('@'));
            }
        }

        #[test]
        fn wrapped_address_is_found(
            local in "[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]",
            domain in "[a-z0-9]{1,10}(\\.[a-z]{2,6}){1,3}",
            pre in "(<|rfc822; |\")?",
            post in "(>|\\.|:|\"|\\.\\.\\.)?",
            noise in "[ a-zA-Z]{0,10}",
        ) {
            let addr = format!("{local}@{domain}");
            prop_assume!(!local.contains(".."));
            let text = format!("{noise} {pre}{addr}{post} {noise}");
            prop_assert_eq!(find_first(&text), Some(addr));
        }
    }
}
