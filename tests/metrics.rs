//! The Prometheus endpoint of a running daemon: after bounces arrive through
//! a real Dovecot, `/metrics` counts them by mailbox, kind and reason, shows
//! the connection up and a last-success time.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_the_daemon_did() {
    let dovecot = Dovecot::start(&[("bob", "secret")], Options::default());
    let work = tempfile::tempdir().unwrap();
    let (config, _db) = write_config(work.path(), &[Mbox::plain(&dovecot)]);
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
    ];
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < Duration::from_secs(30) {
        if let Some(body) = scrape(port) {
            last = body;
            if want.iter().all(|w| last.contains(w)) {
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
}
