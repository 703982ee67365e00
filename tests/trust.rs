//! Forged bounces must not unsubscribe anyone: perfect-looking DSNs without a
//! valid signed token, delivered through a real Dovecot, are recorded but
//! remove no address when `[verify] require = true`; the same bounce with a
//! valid token (current or previous key) removes it.

mod common;

use bounced::verp::{Key, Keyring};
use common::*;

const DAY: i64 = 86_400;
const CURRENT: &[u8] = b"current signing secret, 32 bytes";
const PREVIOUS: &[u8] = b"previous signing secret, 32 byte";
const BASE: &str = "bounces@lists.example.org";

fn now() -> i64 {
    bounced::store::now()
}

fn ring(id: &str, secret: &[u8]) -> Keyring {
    Keyring::new(vec![Key::new(id, secret).unwrap()]).unwrap()
}

/// A Postfix-style DSN for `rcpt`, delivered to `to`, with `text_extra`
/// in the human-readable part and `original_extra` in the returned headers.
fn dsn(to: &str, rcpt: &str, text_extra: &str, original_extra: &str) -> Vec<u8> {
    format!(
        "Return-Path: <>\r\n\
Delivered-To: {to}\r\n\
Date: Mon, 16 Nov 2026 10:12:03 +0000\r\n\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: {to}\r\n\
Message-Id: <trust-{rcpt}@mx.example.net>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
\r\n\
--B\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
<{rcpt}>: host mail.example.com[192.0.2.25] said: 550 5.1.1 <{rcpt}>: User unknown\r\n\
    (in reply to RCPT TO command)\r\n\
{text_extra}\r\n\
\r\n\
--B\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; {rcpt}\r\n\
Action: failed\r\n\
Status: 5.1.1\r\n\
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: User unknown\r\n\
\r\n\
--B\r\n\
Content-Type: text/rfc822-headers\r\n\
\r\n\
From: news@lists.example.org\r\n\
To: {rcpt}\r\n\
Subject: November news\r\n\
{original_extra}\
Message-Id: <news-{rcpt}@lists.example.org>\r\n\
\r\n\
--B--\r\n"
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_bounces_remove_no_one_and_signed_ones_do() {
    let now = now();
    let current = ring("k2", CURRENT);
    let previous = ring("k1", PREVIOUS);
    let stranger = ring("k9", CURRENT);
    let wrong_secret = ring("k2", b"a guessed secret, also 32 bytes!");
    let rp =
        |ring: &Keyring, rcpt: &str, at: i64| ring.return_path(BASE, rcpt, "news", at).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "nobody@example.com",
            dsn(BASE, "nobody@example.com", "", ""),
            "no token",
        ),
        (
            "badmac@example.com",
            dsn(
                &rp(&wrong_secret, "badmac@example.com", now),
                "badmac@example.com",
                "",
                "",
            ),
            "bad signature",
        ),
        (
            "expired@example.com",
            dsn(
                &rp(&current, "expired@example.com", now - 90 * DAY),
                "expired@example.com",
                "",
                "",
            ),
            "expired",
        ),
        (
            "victim@example.com",
            dsn(
                &rp(&current, "attacker@example.com", now),
                "victim@example.com",
                "",
                "",
            ),
            "token is for attacker@example.com",
        ),
        (
            "bodyonly@example.com",
            dsn(
                BASE,
                "bodyonly@example.com",
                &format!(
                    "X-Bounced-Token: {}",
                    current.token("bodyonly@example.com", "", now).unwrap()
                ),
                "",
            ),
            "no token",
        ),
        (
            "unknownkey@example.com",
            dsn(
                &rp(&stranger, "unknownkey@example.com", now),
                "unknownkey@example.com",
                "",
                "",
            ),
            "unknown key",
        ),
        // Valid: the current key in the return path, the previous key in the
        // return path (rotation), and the header variant in the original.
        (
            "signed@example.com",
            dsn(
                &rp(&current, "signed@example.com", now),
                "signed@example.com",
                "",
                "",
            ),
            "",
        ),
        (
            "rotated@example.com",
            dsn(
                &rp(&previous, "rotated@example.com", now),
                "rotated@example.com",
                "",
                "",
            ),
            "",
        ),
        (
            "header@example.com",
            dsn(
                BASE,
                "header@example.com",
                "",
                &format!(
                    "X-Bounced-Token: {}\r\n",
                    current.token("header@example.com", "news", now).unwrap()
                ),
            ),
            "",
        ),
    ];

    let dovecot = Dovecot::start(&[("bob", "secret")], Options::default());
    let messages: Vec<Vec<u8>> = cases.iter().map(|(_, m, _)| m.clone()).collect();
    dovecot.append("bob", "secret", "INBOX", &messages).await;

    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(work.path(), &[Mbox::plain(&dovecot)]);
    std::fs::write(work.path().join("k2"), CURRENT).unwrap();
    std::fs::write(work.path().join("k1"), PREVIOUS).unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[verify]\nrequire = true\nreturn_path = \"{BASE}\"\n\
         [[verify.key]]\nid = \"k2\"\nsecret_file = \"k2\"\n\
         [[verify.key]]\nid = \"k1\"\nsecret_file = \"k1\"\n"
    ));
    std::fs::write(&config, text).unwrap();

    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));

    let pool = db(&dbpath).await;
    for (address, _, note) in &cases {
        let (verified, verify_note): (Option<i64>, Option<String>) =
            sqlx::query_as("SELECT verified, verify_note FROM bounce_events WHERE address = ?1")
                .bind(address)
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|e| panic!("{address}: {e}"));
        let verify_note = verify_note.unwrap_or_default();
        let (action, why): (String, String) =
            sqlx::query_as("SELECT action, why FROM addresses WHERE address = ?1")
                .bind(address)
                .fetch_one(&pool)
                .await
                .unwrap_or_else(|e| panic!("{address}: {e}"));
        if note.is_empty() {
            assert_eq!(verified, Some(1), "{address}: {verify_note}");
            assert_eq!(action, "remove", "{address}: {why}");
        } else {
            assert_eq!(verified, Some(0), "{address}: {verify_note}");
            assert!(
                verify_note.contains(note),
                "{address}: {verify_note:?} lacks {note:?}"
            );
            assert_eq!(
                action, "keep",
                "{address} was removed by a forged bounce: {why}"
            );
            assert!(why.contains("not counted"), "{address}: {why}");
        }
    }

    // The CLI filter on trust.
    let list = |verified: &str| -> Vec<String> {
        let out = bounced()
            .args([
                "addresses",
                "--format",
                "csv",
                "--verified",
                verified,
                "--db",
            ])
            .arg(&dbpath)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", describe(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        list("yes"),
        [
            "header@example.com",
            "rotated@example.com",
            "signed@example.com"
        ]
    );
    assert_eq!(list("no").len(), 6);
    let removed: Vec<String> = addresses_json(&dbpath)
        .into_iter()
        .filter(|a| a["action"] == "remove")
        .map(|a| a["address"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(
        removed,
        [
            "header@example.com",
            "rotated@example.com",
            "signed@example.com"
        ]
    );
}
