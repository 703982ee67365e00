//! Signed return paths (VERP): proof that a bounce is about mail we sent.
//!
//! Anyone can mail the bounce address a perfect "550 5.1.1 User unknown"
//! report naming a subscriber. To tell such a forgery from a real bounce, the
//! sender puts a signed token in the envelope sender of every message it
//! sends, so that the real bounce comes back *to* that address:
//!
//! ```text
//! bounces+<mac>.<key id>.<day>.<list>.<local>=<domain>@example.org
//! ```
//!
//! - `<local>=<domain>`: the recipient the message was sent to (the last `=`
//!   separates them: domains have none);
//! - `<list>`: an optional list name (`[a-z0-9_-]`, may be empty);
//! - `<day>`: the signing day, days since 1970-01-01 in base 36; a token is
//!   accepted for `max_age` after it;
//! - `<key id>`: which secret signed it (`[a-z0-9]`, 1–8 characters), so keys
//!   can be rotated: every configured key verifies, the first one signs;
//! - `<mac>`: HMAC-SHA256 over the version, key id, day, list and lower-cased
//!   recipient, truncated to 80 bits, in lower-case base 32 (16 characters).
//!
//! Everything after the first `+` of the local part is the token. Senders
//! that cannot change the envelope sender put the same token in an
//! `X-Bounced-Token` header of the message instead; it comes back inside the
//! returned original. What is signed is only ever read from those two
//! places, never from free text, and a token only verifies a bounce whose
//! failed recipient is the one it names.

use data_encoding::BASE32_DNSSEC;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::fmt;

/// The header that carries a token inside the original message, for senders
/// that cannot set the envelope sender.
pub const TOKEN_HEADER: &str = "X-Bounced-Token";

/// Bytes of the HMAC kept in a token (80 bits).
const MAC_BYTES: usize = 10;
/// The domain-separation prefix of the signed text, so a MAC made for this
/// scheme can never be replayed in another.
const VERSION: &[u8] = b"bounced-verp-v1";
const DAY: i64 = 86_400;
/// A signing day this far in the future is accepted (clock skew between the
/// sending host and this one).
const SKEW_DAYS: i64 = 1;
/// The shortest secret accepted: 128 bits.
pub const MIN_SECRET_BYTES: usize = 16;

/// A signing key: an identifier and its secret.
#[derive(Clone)]
pub struct Key {
    id: String,
    secret: Vec<u8>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .field("secret", &"********")
            .finish()
    }
}

impl Key {
    /// A key from its id (`[a-z0-9]`, 1–8 characters) and secret (at least
    /// 16 bytes; a trailing newline is not stripped here).
    pub fn new(id: &str, secret: &[u8]) -> Result<Key, VerpError> {
        let valid_id = !id.is_empty()
            && id.len() <= 8
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid_id {
            return Err(VerpError::BadKeyId(id.to_string()));
        }
        if secret.len() < MIN_SECRET_BYTES {
            return Err(VerpError::ShortSecret(id.to_string()));
        }
        Ok(Key {
            id: id.to_string(),
            secret: secret.to_vec(),
        })
    }

    /// The key id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn mac(&self, day: i64, list: &str, recipient: &str) -> Hmac<Sha256> {
        // new_from_slice accepts any key length for HMAC.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        for part in [
            VERSION,
            self.id.as_bytes(),
            day.to_string().as_bytes(),
            list.as_bytes(),
            recipient.to_ascii_lowercase().as_bytes(),
        ] {
            mac.update(part);
            // A separator that cannot occur in any part keeps
            // ("ab","c") and ("a","bc") apart.
            mac.update(&[0]);
        }
        mac
    }
}

/// The keys in use: the first signs, all verify.
#[derive(Debug, Clone)]
pub struct Keyring {
    keys: Vec<Key>,
}

impl Keyring {
    /// A keyring; the first key is the one that signs.
    pub fn new(keys: Vec<Key>) -> Result<Keyring, VerpError> {
        if keys.is_empty() {
            return Err(VerpError::NoKeys);
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(VerpError::DuplicateKeyId(k.id.clone()));
            }
        }
        Ok(Keyring { keys })
    }

    /// The configured key ids, the signing key first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    fn signing_key(&self) -> &Key {
        // Keyring::new refuses an empty list.
        &self.keys[0]
    }

    fn key(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The token for a message to `recipient` on `list` (may be empty),
    /// signed today (`now` in Unix seconds).
    pub fn token(&self, recipient: &str, list: &str, now: i64) -> Result<String, VerpError> {
        let (local, domain) =
            split_address(recipient).ok_or_else(|| VerpError::BadRecipient(recipient.into()))?;
        if !local.bytes().all(is_atext_or_dot) || local.is_empty() {
            return Err(VerpError::BadRecipient(recipient.into()));
        }
        if !list
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            || list.len() > 32
        {
            return Err(VerpError::BadList(list.into()));
        }
        let domain = domain.to_ascii_lowercase();
        let recipient = format!("{local}@{domain}");
        let day = now.div_euclid(DAY);
        let key = self.signing_key();
        let mac = key.mac(day, list, &recipient).finalize().into_bytes();
        let mac = BASE32_DNSSEC.encode(mac.get(..MAC_BYTES).unwrap_or(&[]));
        Ok(format!(
            "{mac}.{}.{}.{list}.{local}={domain}",
            key.id,
            to_base36(day)
        ))
    }

    /// The return path for a message to `recipient`: `base` with the token
    /// after a `+` in its local part.
    pub fn return_path(
        &self,
        base: &str,
        recipient: &str,
        list: &str,
        now: i64,
    ) -> Result<String, VerpError> {
        let (local, domain) = split_address(base).ok_or_else(|| VerpError::BadBase(base.into()))?;
        if local.contains('+') || local.is_empty() {
            return Err(VerpError::BadBase(base.into()));
        }
        let token = self.token(recipient, list, now)?;
        Ok(format!("{local}+{token}@{domain}"))
    }

    /// Verify a token (from a return path or an `X-Bounced-Token` header):
    /// well-formed, signed by a known key, not older than `max_age_days`.
    pub fn verify_token(
        &self,
        token: &str,
        max_age_days: i64,
        now: i64,
    ) -> Result<Token, VerifyError> {
        let token = token.trim();
        let mut parts = token.splitn(5, '.');
        let (Some(mac), Some(kid), Some(day), Some(list), Some(recipient)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(VerifyError::Malformed);
        };
        let mac = BASE32_DNSSEC
            .decode(mac.to_ascii_lowercase().as_bytes())
            .map_err(|_| VerifyError::Malformed)?;
        if mac.len() != MAC_BYTES {
            return Err(VerifyError::Malformed);
        }
        let kid = kid.to_ascii_lowercase();
        let list = list.to_ascii_lowercase();
        let day = from_base36(day).ok_or(VerifyError::Malformed)?;
        let (local, domain) = recipient.rsplit_once('=').ok_or(VerifyError::Malformed)?;
        if local.is_empty() || domain.is_empty() {
            return Err(VerifyError::Malformed);
        }
        let recipient = format!("{local}@{}", domain.to_ascii_lowercase());
        let key = self
            .key(&kid)
            .ok_or_else(|| VerifyError::UnknownKey(kid.clone()))?;
        key.mac(day, &list, &recipient)
            .verify_truncated_left(&mac)
            .map_err(|_| VerifyError::BadSignature)?;
        // Age is checked after the signature, so that the reason given for a
        // forged token is never "expired".
        let today = now.div_euclid(DAY);
        if day > today + SKEW_DAYS {
            return Err(VerifyError::FromTheFuture);
        }
        if today - day > max_age_days {
            return Err(VerifyError::Expired { days: today - day });
        }
        Ok(Token {
            key_id: kid,
            day,
            list,
            recipient,
        })
    }

    /// Verify the token in an address (a bounce's `To`, `Delivered-To` or
    /// `X-Original-To`): the part of the local part after the first `+`.
    pub fn verify_address(
        &self,
        address: &str,
        max_age_days: i64,
        now: i64,
    ) -> Result<Token, VerifyError> {
        let address = strip_batv(address.trim().trim_start_matches('<').trim_end_matches('>'));
        let (local, _domain) = split_address(&address).ok_or(VerifyError::NoToken)?;
        let (_, token) = local.split_once('+').ok_or(VerifyError::NoToken)?;
        self.verify_token(token, max_age_days, now)
    }
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The key that signed it.
    pub key_id: String,
    /// The day it was signed (days since 1970-01-01).
    pub day: i64,
    /// The list name (may be empty).
    pub list: String,
    /// The recipient it was made for (domain lower-cased).
    pub recipient: String,
}

impl Token {
    /// Whether this token was made for `address` (case-insensitively, BATV
    /// tags stripped).
    pub fn names(&self, address: &str) -> bool {
        strip_batv(address).eq_ignore_ascii_case(&self.recipient)
    }
}

/// A configuration problem with keys or addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerpError {
    /// A key id outside `[a-z0-9]{1,8}`.
    #[error("key id {0:?} must be 1 to 8 characters of a-z and 0-9")]
    BadKeyId(String),
    /// A secret under 16 bytes.
    #[error("the secret of key {0:?} is shorter than {MIN_SECRET_BYTES} bytes")]
    ShortSecret(String),
    /// No key configured.
    #[error("no signing key is configured")]
    NoKeys,
    /// Two keys with one id.
    #[error("key id {0:?} is used twice")]
    DuplicateKeyId(String),
    /// A recipient that cannot be put in a local part.
    #[error("cannot sign for {0:?}: not a plain address (local@domain, no quotes or spaces)")]
    BadRecipient(String),
    /// A list name outside `[a-z0-9_-]{0,32}`.
    #[error("list name {0:?} must be up to 32 characters of a-z, 0-9, - and _")]
    BadList(String),
    /// A return-path base that is not `local@domain` without `+`.
    #[error("return path {0:?} must be local@domain with no '+' in the local part")]
    BadBase(String),
}

/// Why a bounce could not be verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The address carries no token.
    #[error("no token")]
    NoToken,
    /// Something that is not a token of this scheme.
    #[error("malformed token")]
    Malformed,
    /// Signed with a key id not configured (retired, or forged).
    #[error("unknown key id {0:?}")]
    UnknownKey(String),
    /// The HMAC does not match.
    #[error("bad signature")]
    BadSignature,
    /// Older than `max_age`.
    #[error("token expired ({days} days old)")]
    Expired {
        /// Its age in days.
        days: i64,
    },
    /// Dated after tomorrow.
    #[error("token dated in the future")]
    FromTheFuture,
    /// Valid, but made for another address than the one that failed.
    #[error("token is for {token_for}, not {failed}")]
    WrongRecipient {
        /// The address the token names.
        token_for: String,
        /// The address the report says failed.
        failed: String,
    },
}

/// Strip a BATV tag (`prvs=TAG=user@domain`, RFC draft "Bounce Address Tag
/// Validation") from an address; other addresses come back unchanged.
pub fn strip_batv(address: &str) -> String {
    let Some((local, domain)) = split_address(address) else {
        return address.to_string();
    };
    let lower = local.to_ascii_lowercase();
    for prefix in ["prvs=", "msprvs1=", "btv1="] {
        if lower.starts_with(prefix) {
            // prvs=<tag>=<local>: the original local part follows the second '='.
            if let Some((_, rest)) = local.get(prefix.len()..).and_then(|r| r.split_once('=')) {
                if !rest.is_empty() {
                    return format!("{rest}@{domain}");
                }
            }
        }
    }
    address.to_string()
}

fn split_address(address: &str) -> Option<(&str, &str)> {
    let (local, domain) = address.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() || domain.contains(['=', ' ', '@']) {
        return None;
    }
    Some((local, domain))
}

/// RFC 5322 `atext` plus `.`: what a local part may hold without quotes.
fn is_atext_or_dot(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b) || b >= 0x80
}

fn to_base36(mut n: i64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n <= 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

fn from_base36(s: &str) -> Option<i64> {
    if s.is_empty() || s.len() > 6 {
        return None;
    }
    i64::from_str_radix(s, 36).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000; // 2026-11-17
    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn ring() -> Keyring {
        Keyring::new(vec![Key::new("k2", SECRET).unwrap()]).unwrap()
    }

    #[test]
    fn sign_then_verify_round_trips() {
        let rp = ring()
            .return_path(
                "bounces@example.org",
                "Jane.Doe+news@Example.COM",
                "news",
                NOW,
            )
            .unwrap();
        assert!(rp.starts_with("bounces+"), "{rp}");
        assert!(rp.ends_with("=example.com@example.org"), "{rp}");
        let t = ring().verify_address(&rp, 60, NOW + 3 * DAY).unwrap();
        assert_eq!(t.recipient, "Jane.Doe+news@example.com");
        assert_eq!(t.list, "news");
        assert_eq!(t.key_id, "k2");
        assert!(t.names("jane.doe+news@example.com"));
        assert!(!t.names("john@example.com"));
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let tok = ring().token("user@example.com", "", NOW).unwrap();
        let forged = tok.replace("user=", "admin=");
        assert_eq!(
            ring().verify_token(&forged, 60, NOW),
            Err(VerifyError::BadSignature)
        );
        let other_list = tok.replacen("..", ".other.", 1);
        assert_eq!(
            ring().verify_token(&other_list, 60, NOW),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn case_changes_in_transit_still_verify() {
        let tok = ring().token("user@example.com", "", NOW).unwrap();
        assert!(ring()
            .verify_token(&tok.to_ascii_uppercase(), 60, NOW)
            .is_ok());
    }

    #[test]
    fn expiry_and_future_dates() {
        let tok = ring().token("user@example.com", "", NOW).unwrap();
        assert!(ring().verify_token(&tok, 60, NOW + 60 * DAY).is_ok());
        assert_eq!(
            ring().verify_token(&tok, 60, NOW + 61 * DAY),
            Err(VerifyError::Expired { days: 61 })
        );
        assert_eq!(
            ring().verify_token(&tok, 60, NOW - 2 * DAY),
            Err(VerifyError::FromTheFuture)
        );
    }

    #[test]
    fn rotation_old_key_verifies_unknown_key_does_not() {
        let old = Keyring::new(vec![
            Key::new("k1", b"an older secret of 32 bytes!!!!!").unwrap()
        ])
        .unwrap();
        let tok = old.token("user@example.com", "", NOW).unwrap();
        let rotated = Keyring::new(vec![
            Key::new("k2", SECRET).unwrap(),
            Key::new("k1", b"an older secret of 32 bytes!!!!!").unwrap(),
        ])
        .unwrap();
        assert!(rotated.verify_token(&tok, 60, NOW).is_ok());
        // New tokens are signed with the first key.
        assert!(rotated
            .token("user@example.com", "", NOW)
            .unwrap()
            .contains(".k2."));
        let stranger = Keyring::new(vec![Key::new("k9", SECRET).unwrap()]).unwrap();
        let tok = stranger.token("user@example.com", "", NOW).unwrap();
        assert_eq!(
            ring().verify_token(&tok, 60, NOW),
            Err(VerifyError::UnknownKey("k9".into()))
        );
    }

    #[test]
    fn same_id_other_secret_is_a_bad_signature() {
        let other = Keyring::new(vec![
            Key::new("k2", b"a completely different secret!!!").unwrap()
        ])
        .unwrap();
        let tok = other.token("user@example.com", "", NOW).unwrap();
        assert_eq!(
            ring().verify_token(&tok, 60, NOW),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn addresses_without_tokens_and_garbage() {
        assert_eq!(
            ring().verify_address("bounces@example.org", 60, NOW),
            Err(VerifyError::NoToken)
        );
        assert_eq!(
            ring().verify_address("nothing", 60, NOW),
            Err(VerifyError::NoToken)
        );
        for junk in [
            "",
            "a.b.c.d",
            "zz.k2.1.x.u=d",
            "....",
            "\u{1F600}.k2.abc..u=d",
            "aaaaaaaaaaaaaaaa.k2.zzzzzzzzzz..u=d",
        ] {
            assert!(ring().verify_token(junk, 60, NOW).is_err(), "{junk:?}");
        }
    }

    #[test]
    fn batv_is_stripped() {
        assert_eq!(
            strip_batv("prvs=1234abcd=user@example.com"),
            "user@example.com"
        );
        assert_eq!(
            strip_batv("PRVS=1234abcd=user@example.com"),
            "user@example.com"
        );
        assert_eq!(strip_batv("user@example.com"), "user@example.com");
        assert_eq!(strip_batv("prvs=@example.com"), "prvs=@example.com");
        let rp = ring()
            .return_path("bounces@example.org", "u@example.com", "", NOW)
            .unwrap();
        let batv = format!("prvs=0123abcd={rp}");
        assert!(ring().verify_address(&batv, 60, NOW).is_ok());
    }

    #[test]
    fn bad_inputs_are_refused_when_signing() {
        assert!(Key::new("K2", SECRET).is_err());
        assert!(Key::new("toolongid", SECRET).is_err());
        assert!(Key::new("k", b"short").is_err());
        assert!(Keyring::new(vec![]).is_err());
        assert!(Keyring::new(vec![
            Key::new("a", SECRET).unwrap(),
            Key::new("a", SECRET).unwrap()
        ])
        .is_err());
        assert!(ring().token("no at sign", "", NOW).is_err());
        assert!(ring()
            .token("\"quoted user\"@example.com", "", NOW)
            .is_err());
        assert!(ring().token("u@example.com", "Bad.List", NOW).is_err());
        assert!(ring()
            .return_path("a+b@example.org", "u@example.com", "", NOW)
            .is_err());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        assert!(!format!("{:?}", ring()).contains("0123456789"));
    }

    #[test]
    fn base36_round_trips() {
        for n in [0, 1, 35, 36, 20_000, 99_999] {
            assert_eq!(from_base36(&to_base36(n)), Some(n));
        }
    }
}
