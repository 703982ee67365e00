//! End-to-end passes against a real Dovecot: plain and TLS, verdicts in
//! SQLite, after-actions on the server, idempotent second passes, bad input,
//! and UIDVALIDITY changes.

mod common;

use bounced::classify::{self, Severity};
use common::*;
use std::collections::BTreeSet;

/// The recipients with a hard or soft failure in these messages, as the
/// classifier sees them: what `addresses` must end up listing.
fn failing_addresses(messages: &[Vec<u8>]) -> BTreeSet<String> {
    messages
        .iter()
        .filter_map(|m| classify::classify(m).ok())
        .flat_map(|v| v.recipients)
        // Failures, and complaints (ARF feedback: status complained).
        .filter(|r| {
            matches!(r.severity, Severity::Hard | Severity::Soft)
                || r.reason == classify::Reason::Feedback
        })
        .map(|r| r.address)
        .collect()
}

fn expected_kind(m: &[u8]) -> String {
    match classify::classify(m) {
        Ok(v) => v.kind.as_str().to_string(),
        Err(_) => "unparseable".to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_pass_records_verdicts_moves_bounces_and_is_idempotent() {
    let dovecot = Dovecot::start(&[("bob", "secret")], Options::default());
    let mut messages = vec![
        data("dsn-userunknown.eml"),
        data("dsn-mailboxfull.eml"),
        data("human-reply.eml"),
    ];
    messages.extend(corpus(60).into_iter().map(|(_, b)| b));
    dovecot.append("bob", "secret", "INBOX", &messages).await;

    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(work.path(), &[Mbox::plain(&dovecot)]);
    let started = std::time::Instant::now();
    let out = run_once(&config);
    let took = started.elapsed();
    assert!(out.status.success(), "{}", describe(&out));
    eprintln!("pass over {} messages took {took:?}", messages.len());

    let pool = db(&dbpath).await;
    // One row per message, with the classifier's kind, UIDs in APPEND order.
    let rows: Vec<(i64, String, i64)> = sqlx::query_as(
        "SELECT m.uid, m.kind, (SELECT count(*) FROM bounce_events e WHERE e.message = m.id) \
         FROM messages m ORDER BY m.uid",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), messages.len());
    for (i, (uid, kind, events)) in rows.iter().enumerate() {
        assert_eq!(*uid as usize, i + 1);
        assert_eq!(kind, &expected_kind(&messages[i]), "uid {uid}");
        let want = classify::classify(&messages[i])
            .map(|v| v.recipients.len())
            .unwrap_or(0);
        assert_eq!(*events as usize, want, "events of uid {uid}");
    }
    assert_eq!(rows[2].1, "not_bounce", "the human reply");

    // Verdicts: the textbook cases, and exactly the failing recipients.
    let addrs = addresses_json(&dbpath);
    let find = |a: &str| {
        addrs
            .iter()
            .find(|r| r["address"] == a)
            .unwrap_or_else(|| panic!("{a} not in {addrs:#?}"))
            .clone()
    };
    let alice = find("alice@example.com");
    assert_eq!(
        (alice["status"].as_str(), alice["action"].as_str()),
        (Some("hard_fail"), Some("remove"))
    );
    assert_eq!(alice["last_reason"], "userunknown");
    assert_eq!(alice["first_bounce"], "2026-11-16T10:12:03Z");
    let bob = find("bob@example.net");
    assert_eq!(
        (bob["status"].as_str(), bob["action"].as_str()),
        (Some("soft_fail"), Some("keep"))
    );
    let listed: BTreeSet<String> = addrs
        .iter()
        .map(|r| r["address"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(listed, failing_addresses(&messages));

    // The server: bounces moved, the human reply (and anything unparseable) left.
    let inbox = dovecot.list("bob", "secret", "INBOX").await;
    let processed = dovecot.list("bob", "secret", "Processed").await;
    let stay: Vec<u32> = rows
        .iter()
        .filter(|(_, k, _)| k == "not_bounce" || k == "unparseable")
        .map(|(u, _, _)| *u as u32)
        .collect();
    assert_eq!(
        inbox.iter().map(|(u, _)| *u).collect::<Vec<_>>(),
        stay,
        "left in INBOX"
    );
    assert_eq!(processed.len(), messages.len() - stay.len());
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages WHERE after_done = 0").await,
        0
    );
    // BODY.PEEK: the messages left in place are still unread.
    assert!(inbox
        .iter()
        .all(|(_, f)| !f.iter().any(|x| x.contains("Seen"))));

    // A second pass changes nothing.
    let events = count(&pool, "SELECT count(*) FROM bounce_events").await;
    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages").await as usize,
        messages.len()
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM bounce_events").await,
        events
    );
    let again = addresses_json(&dbpath);
    assert_eq!(
        again.len(),
        addrs.len(),
        "second pass changed the address list"
    );
    for (a, b) in again.iter().zip(&addrs) {
        assert_eq!(
            (
                &a["address"],
                &a["hard_count"],
                &a["soft_count"],
                &a["action"]
            ),
            (
                &b["address"],
                &b["hard_count"],
                &b["soft_count"],
                &b["action"]
            )
        );
    }
    assert_eq!(dovecot.list("bob", "secret", "INBOX").await, inbox);
    assert_eq!(
        dovecot.list("bob", "secret", "Processed").await.len(),
        processed.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_implicit_and_starttls_with_private_ca() {
    let dovecot = Dovecot::start(
        &[("bob", "secret"), ("carol", "pw2")],
        Options {
            tls: true,
            ..Options::default()
        },
    );
    let messages = vec![
        data("dsn-userunknown.eml"),
        data("dsn-mailboxfull.eml"),
        data("human-reply.eml"),
    ];
    dovecot.append("bob", "secret", "INBOX", &messages).await;
    dovecot
        .append("carol", "pw2", "INBOX", &messages[..1])
        .await;
    let ca = dovecot.ca.as_ref().unwrap();
    let work = tempfile::tempdir().unwrap();
    let implicit = Mbox {
        name: "implicit",
        port: dovecot.imaps_port.unwrap(),
        tls: "implicit",
        host: "localhost",
        after: "seen",
        after_other: "seen",
        ca_file: Some(&ca.ca_pem),
        ..Mbox::plain(&dovecot)
    };
    let starttls = Mbox {
        name: "starttls",
        port: dovecot.imap_port,
        tls: "starttls",
        host: "127.0.0.1",
        user: "carol",
        pass: "pw2",
        after: "delete",
        ca_file: Some(&ca.ca_pem),
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[implicit, starttls]);
    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));

    let pool = db(&dbpath).await;
    let per_box: Vec<(String, i64)> =
        sqlx::query_as("SELECT mailbox, count(*) FROM messages GROUP BY mailbox ORDER BY mailbox")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        per_box,
        [("implicit".to_string(), 3), ("starttls".to_string(), 1)]
    );
    // after = seen and after_other = seen: everything stays, flagged \Seen.
    let inbox = dovecot.list("bob", "secret", "INBOX").await;
    assert_eq!(inbox.len(), 3);
    for (uid, flags) in &inbox {
        assert!(
            flags.iter().any(|f| f.contains("Seen")),
            "uid {uid}: {flags:?}"
        );
    }
    // after = delete: gone from carol's INBOX.
    assert!(dovecot.list("carol", "pw2", "INBOX").await.is_empty());
    let addrs = addresses_json(&dbpath);
    let alice = addrs
        .iter()
        .find(|r| r["address"] == "alice@example.com")
        .expect("alice");
    // The same bounce read through both mailboxes is two bounces of alice's.
    assert_eq!(alice["hard_count"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_certificate_is_a_clear_error() {
    let dovecot = Dovecot::start(
        &[("bob", "secret")],
        Options {
            tls: true,
            ..Options::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let no_ca = Mbox {
        port: dovecot.imaps_port.unwrap(),
        tls: "implicit",
        host: "localhost",
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[no_ca]);
    let out = run_once(&config);
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate not trusted") && err.contains("UnknownIssuer"),
        "{err}"
    );
    // The failure is on record for the operator.
    let pool = db(&dbpath).await;
    let last: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM mailbox_state WHERE mailbox = 'test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(last.unwrap_or_default().contains("certificate"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_empty_mailbox_and_wrong_password() {
    let truncated = {
        let full = data("dsn-userunknown.eml");
        full[..full.len() / 3].to_vec()
    };
    let dovecot = Dovecot::start(
        &[("bob", "secret"), ("empty", "pw")],
        Options {
            seed: vec![
                ("bob", "1.M1P1.sandbox".into(), data("garbage.bin")),
                ("bob", "2.M2P1.sandbox".into(), truncated.clone()),
                ("bob", "3.M3P1.sandbox".into(), Vec::new()),
            ],
            ..Options::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let good = Mbox::plain(&dovecot);
    let empty = Mbox {
        name: "empty",
        user: "empty",
        pass: "pw",
        ..Mbox::plain(&dovecot)
    };
    let wrong = Mbox {
        name: "wrong",
        pass: "not-the-password",
        ..Mbox::plain(&dovecot)
    };
    let closed = Mbox {
        name: "closed",
        port: free_port(),
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[good, empty, wrong, closed]);
    let out = run_once(&config);
    // One mailbox failed: non-zero exit, a clear message, the others done.
    assert!(!out.status.success(), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mailbox wrong: login failed for user bob"),
        "{err}"
    );
    assert!(
        err.contains("mailbox closed: cannot connect to 127.0.0.1:"),
        "{err}"
    );
    assert!(!err.contains("not-the-password"), "password leaked: {err}");
    assert!(!err.contains("panicked"), "{err}");

    let pool = db(&dbpath).await;
    let rows: Vec<(i64, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT uid, kind, error, size FROM messages WHERE mailbox = 'test' ORDER BY uid",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    // Binary garbage: recorded as unparseable with the reason, left in place.
    assert_eq!(rows[0].1, "unparseable", "{rows:?}");
    assert!(rows[0].2.as_deref().is_some_and(|e| !e.is_empty()));
    // Whatever the classifier makes of the rest, each is recorded once.
    assert_eq!(rows[1].1, expected_kind(&truncated));
    let inbox = dovecot.list("bob", "secret", "INBOX").await;
    let unparseable = rows.iter().filter(|r| r.1 == "unparseable").count();
    assert!(
        inbox.len() >= unparseable,
        "unparseable messages must stay: {inbox:?}"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM messages WHERE mailbox = 'empty'"
        )
        .await,
        0
    );
    let states: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT mailbox, last_error FROM mailbox_state ORDER BY mailbox")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(states.len(), 4);
    assert!(states[0]
        .1
        .as_deref()
        .is_some_and(|e| e.contains("cannot connect")));
    assert_eq!(states[1], ("empty".to_string(), None));
    assert_eq!(states[2], ("test".to_string(), None));
    assert!(states[3]
        .1
        .as_deref()
        .is_some_and(|e| e.contains("login failed")));

    // A second pass: nothing new, the unparseable ones are not re-read.
    // At trace level, to check that no layer logs the password.
    let out = bounced()
        .args(["run", "--once", "--config"])
        .arg(&config)
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains("not-the-password"),
        "password in the trace log"
    );
    assert!(!all.contains("\"secret\""), "password in the trace log");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages").await as usize,
        rows.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uidvalidity_change_does_not_double_count() {
    let dovecot = Dovecot::start(&[("bob", "secret")], Options::default());
    let messages = vec![
        data("dsn-userunknown.eml"),
        data("dsn-mailboxfull.eml"),
        data("human-reply.eml"),
    ];
    dovecot.append("bob", "secret", "Bounces", &messages).await;
    let before = dovecot.uidvalidity("bob", "secret", "Bounces").await;
    let work = tempfile::tempdir().unwrap();
    let mbox = Mbox {
        folder: "Bounces",
        after: "seen",
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[mbox]);
    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));
    let pool = db(&dbpath).await;
    let events = count(&pool, "SELECT count(*) FROM bounce_events").await;
    let addrs = addresses_json(&dbpath);

    // Recreate the folder with the same messages: new UIDVALIDITY.
    {
        let mut s = dovecot.session("bob", "secret").await;
        s.delete("Bounces").await.expect("delete folder");
        let _ = s.logout().await;
    }
    dovecot.append("bob", "secret", "Bounces", &messages).await;
    let after = dovecot.uidvalidity("bob", "secret", "Bounces").await;
    assert_ne!(before, after, "Dovecot kept the UIDVALIDITY");

    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(count(&pool, "SELECT count(*) FROM messages").await, 6);
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM messages WHERE duplicate_of IS NOT NULL"
        )
        .await,
        3
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM bounce_events").await,
        events
    );
    let again = addresses_json(&dbpath);
    assert_eq!(
        again
            .iter()
            .map(|r| (
                r["address"].clone(),
                r["hard_count"].clone(),
                r["soft_count"].clone()
            ))
            .collect::<Vec<_>>(),
        addrs
            .iter()
            .map(|r| (
                r["address"].clone(),
                r["hard_count"].clone(),
                r["soft_count"].clone()
            ))
            .collect::<Vec<_>>()
    );
    let state: i64 =
        sqlx::query_scalar("SELECT uidvalidity FROM mailbox_state WHERE mailbox = 'test'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(state, i64::from(after));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_falls_back_to_copy_and_expunge_without_move() {
    let dovecot = Dovecot::start(
        &[("bob", "secret")],
        Options {
            extra: vec!["imap_capability = IMAP4rev1 IDLE UIDPLUS LITERAL+".into()],
            ..Options::default()
        },
    );
    {
        let mut s = dovecot.session("bob", "secret").await;
        let caps = s.capabilities().await.unwrap();
        assert!(!caps.has_str("MOVE"), "the server still offers MOVE");
        let _ = s.logout().await;
    }
    let messages = vec![
        data("dsn-userunknown.eml"),
        data("dsn-mailboxfull.eml"),
        data("human-reply.eml"),
    ];
    dovecot.append("bob", "secret", "INBOX", &messages).await;
    let work = tempfile::tempdir().unwrap();
    let (config, _db) = write_config(
        work.path(),
        &[Mbox {
            after: "move:Done",
            ..Mbox::plain(&dovecot)
        }],
    );
    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));
    let inbox = dovecot.list("bob", "secret", "INBOX").await;
    assert_eq!(inbox.len(), 1, "only the human reply stays: {inbox:?}");
    assert!(!inbox[0].1.iter().any(|f| f.contains("Deleted")));
    assert_eq!(dovecot.list("bob", "secret", "Done").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_the_server_cannot_return_is_set_aside_not_blocking() {
    let seed = (1..=3)
        .map(|i| {
            (
                "bob",
                format!("170000000{i}.M{i}P5.sandbox"),
                make_bounce(&format!("u{i}@example.com"), i, true),
            )
        })
        .collect();
    let dovecot = Dovecot::start(
        &[("bob", "secret")],
        Options {
            seed,
            ..Options::default()
        },
    );
    // Make message 2 unreadable for the server (it runs as another user):
    // Dovecot answers its FETCH with BYE and drops the connection.
    let bad = dovecot.path("mail/bob/new/1700000002.M2P5.sandbox");
    std::fs::set_permissions(&bad, std::os::unix::fs::PermissionsExt::from_mode(0o000)).unwrap();
    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(work.path(), &[Mbox::plain(&dovecot)]);
    let mut runs = Vec::new();
    for _ in 0..8 {
        let out = run_once(&config);
        let ok = out.status.success();
        runs.push(ok);
        if ok {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{err}");
    }
    eprintln!("runs until the mailbox was unblocked: {runs:?}");
    assert_eq!(runs.last(), Some(&true), "never unblocked: {runs:?}");
    let pool = db(&dbpath).await;
    let rows: Vec<(i64, String, Option<String>)> =
        sqlx::query_as("SELECT uid, kind, error FROM messages ORDER BY uid")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(
        (rows[0].1.as_str(), rows[2].1.as_str()),
        ("bounce", "bounce")
    );
    assert_eq!(rows[1].1, "unparseable");
    assert!(
        rows[1]
            .2
            .as_deref()
            .is_some_and(|e| e.contains("failed to return")),
        "{rows:?}"
    );
    assert_eq!(count(&pool, "SELECT count(*) FROM bounce_events").await, 2);
    assert_eq!(count(&pool, "SELECT count(*) FROM fetch_failures").await, 0);
    // Left on the server; the others moved.
    let inbox = dovecot.list("bob", "secret", "INBOX").await;
    assert_eq!(inbox.iter().map(|(u, _)| *u).collect::<Vec<_>>(), [2]);
}
