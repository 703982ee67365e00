//! The Prometheus endpoint of a running daemon: after bounces arrive through
//! a real Dovecot, `/metrics` counts them by mailbox, kind and reason, shows
//! the connection up and a last-success time; mailboxes that cannot be
//! reached (a wrong password, a closed port) show failed connection attempts.

mod common;

use common::*;
use std::io::{Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

fn scrape(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// The value of one sample (`name{labels}`) in a scrape, when present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_daemon_did() {
    let dovecot = Dovecot::start(&[("bob", "secret")], Options::default());
    let work = tempfile::tempdir().unwrap();
    let wrong_password = Mbox {
        name: "badpass",
        pass: "not-the-password",
        ..Mbox::plain(&dovecot)
    };
    // Nothing listens there: the OS picked it free and it was closed again.
    let closed_port = Mbox {
        name: "closed",
        port: free_port(),
        ..Mbox::plain(&dovecot)
    };
    let (config, _db) = write_config(
        work.path(),
        &[Mbox::plain(&dovecot), wrong_password, closed_port],
    );
    let port = free_port();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    std::fs::write(&config, text).unwrap();

    dovecot
        .append(
            "bob",
            "secret",
            "INBOX",
            &[
                make_bounce("gone@example.com", 1, true),
                make_bounce("full@example.com", 2, false),
                data("human-reply.eml"),
            ],
        )
        .await;

    let mut child = bounced()
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn bounced");

    let want = [
        r#"bounced_messages_total{mailbox="test",kind="bounce"} 2"#,
        r#"bounced_messages_total{mailbox="test",kind="not_bounce"} 1"#,
        r#"bounced_recipients_total{mailbox="test",reason="userunknown"} 1"#,
        r#"bounced_recipients_total{mailbox="test",reason="mailboxfull"} 1"#,
        r#"bounced_connected{mailbox="test"} 1"#,
        r#"bounced_last_success_timestamp_seconds{mailbox="test"}"#,
        r#"bounced_connect_errors_total{mailbox="test"} 0"#,
        r#"bounced_pass_errors_total{mailbox="test"} 0"#,
        // A refused login never reaches a pass: it is not a pass error.
        r#"bounced_pass_errors_total{mailbox="badpass"} 0"#,
        r#"bounced_connected{mailbox="badpass"} 0"#,
        r#"bounced_connected{mailbox="closed"} 0"#,
    ];
    let failing = [
        r#"bounced_connect_errors_total{mailbox="badpass"}"#,
        r#"bounced_connect_errors_total{mailbox="closed"}"#,
    ];
    let failed = |text: &str| {
        failing
            .iter()
            .all(|f| sample(text, f).is_some_and(|n| n > 0.0))
    };
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(body) = scrape(port) {
            last = body;
            if want.iter().all(|w| last.contains(w)) && failed(&last) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(last.starts_with("HTTP/1.1 200"), "{last}");
    for w in want {
        assert!(last.contains(w), "missing {w} in:\n{last}");
    }
    for f in failing {
        assert!(
            sample(&last, f).is_some_and(|n| n > 0.0),
            "{f} should be above 0 in:\n{last}"
        );
    }
}
