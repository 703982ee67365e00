//! The long-running daemon (`bounced run` without `--once`) against a real
//! Dovecot: IDLE latency and the poll fallback, SIGTERM in the middle of a
//! pass, the server going away mid-pass, and another process holding the
//! SQLite write lock.

mod common;

use common::*;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn sigterm(child: &Child) {
    let pid = child.id().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill -TERM");
    assert!(ok.success());
}

/// Wait for the child to exit within `limit`; returns its exit code.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_delivers_within_seconds_poll_fallback_works_and_sigterm_exits_zero() {
    let dovecot = Dovecot::start(&[("bob", "secret"), ("carol", "pw2")], Options::default());
    let work = tempfile::tempdir().unwrap();
    let idle = Mbox {
        name: "idle",
        poll: "10m",
        ..Mbox::plain(&dovecot)
    };
    let poll = Mbox {
        name: "poll",
        user: "carol",
        pass: "pw2",
        idle: false,
        poll: "1s",
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[idle, poll]);
    let mut child = spawn_daemon(&config, work.path(), "daemon", "bounced=debug");
    // Both mailboxes made their first (empty) pass.
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM mailbox_state WHERE last_success IS NOT NULL",
            2,
            Duration::from_secs(10)
        )
        .await,
        "{}",
        log_of(work.path(), "daemon")
    );
    // Give the idle mailbox a moment to enter IDLE.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let appended = Instant::now();
    dovecot
        .append("bob", "secret", "INBOX", &[data("dsn-userunknown.eml")])
        .await;
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages WHERE mailbox = 'idle'",
            1,
            Duration::from_secs(5)
        )
        .await,
        "IDLE did not deliver within 5 s:\n{}",
        log_of(work.path(), "daemon")
    );
    let idle_latency = appended.elapsed();

    let appended = Instant::now();
    dovecot
        .append("carol", "pw2", "INBOX", &[data("dsn-mailboxfull.eml")])
        .await;
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages WHERE mailbox = 'poll'",
            1,
            Duration::from_secs(5)
        )
        .await,
        "polling did not deliver within 5 s:\n{}",
        log_of(work.path(), "daemon")
    );
    let poll_latency = appended.elapsed();
    eprintln!("IDLE latency {idle_latency:?}, 1 s poll latency {poll_latency:?}");
    assert!(idle_latency < Duration::from_secs(3), "{idle_latency:?}");

    let term = Instant::now();
    sigterm(&child);
    let code = wait_exit(&mut child, Duration::from_secs(10));
    eprintln!(
        "SIGTERM while idle: exit {code:?} after {:?}",
        term.elapsed()
    );
    assert_eq!(code, Some(0), "{}", log_of(work.path(), "daemon"));
    assert!(log_of(work.path(), "daemon").contains("IDLE"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_pass_exits_zero_and_next_start_resumes() {
    const N: usize = 300;
    let seed = seeded_bounces("bob", "term", N, |i| i % 2 == 0);
    let dovecot = Dovecot::start(
        &[("bob", "secret")],
        Options {
            seed,
            ..Options::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(work.path(), &[Mbox::plain(&dovecot)]);
    let mut child = spawn_daemon(&config, work.path(), "first", "bounced=debug");
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages",
            20,
            Duration::from_secs(20)
        )
        .await
    );
    let term = Instant::now();
    sigterm(&child);
    let code = wait_exit(&mut child, Duration::from_secs(10));
    let took = term.elapsed();
    eprintln!("SIGTERM mid-pass: exit {code:?} after {took:?}");
    assert_eq!(code, Some(0), "{}", log_of(work.path(), "first"));
    assert!(took < Duration::from_secs(5), "{took:?}");
    let pool = db(&dbpath).await;
    let stored = count(&pool, "SELECT count(*) FROM messages").await;
    // Shutdown settles what it committed: nothing owed.
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages WHERE after_done = 0").await,
        0,
        "{}",
        log_of(work.path(), "first")
    );

    let out = run_once(&config);
    assert!(out.status.success(), "{}", describe(&out));
    eprintln!("{stored} of {N} stored before SIGTERM; the next run did the rest");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages").await,
        N as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM bounce_events").await,
        N as i64
    );
    assert!(dovecot.list("bob", "secret", "INBOX").await.is_empty());
    assert_eq!(dovecot.list("bob", "secret", "Processed").await.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_mid_pass_reconnects_and_counts_once() {
    // Enough messages that the pass is still running when the server stops.
    const N: usize = 500;
    let seed = seeded_bounces("bob", "down", N, |_| true);
    let mut dovecot = Dovecot::start(
        &[("bob", "secret")],
        Options {
            seed,
            ..Options::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(work.path(), &[Mbox::plain(&dovecot)]);
    let mut child = spawn_daemon(&config, work.path(), "daemon", "bounced=debug");
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages",
            30,
            Duration::from_secs(20)
        )
        .await
    );
    dovecot.stop();
    let pool = db(&dbpath).await;
    let at_stop = count(&pool, "SELECT count(*) FROM messages").await;
    assert!(
        at_stop < N as i64,
        "the pass ended before the server stopped ({at_stop}):\n{}",
        log_of(work.path(), "daemon")
            .lines()
            .filter(|l| l.contains("pass done") || l.contains("new messages"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    dovecot.restart();
    let back = Instant::now();
    let done = wait_for_count(
        &dbpath,
        "SELECT count(*) FROM messages",
        N as i64,
        Duration::from_secs(30),
    )
    .await;
    assert!(
        done,
        "did not finish after the restart:\n{}",
        log_of(work.path(), "daemon")
    );
    eprintln!(
        "server stopped at {at_stop} of {N} rows; finished {:?} after it came back",
        back.elapsed()
    );
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    let log = log_of(work.path(), "daemon");
    assert!(log.contains("mailbox failed"), "{log}");
    assert_eq!(
        count(&pool, "SELECT count(*) FROM bounce_events").await,
        N as i64
    );
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages WHERE after_done = 1",
            N as i64,
            Duration::from_secs(1)
        )
        .await
    );
    assert_eq!(dovecot.list("bob", "secret", "Processed").await.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_holding_the_write_lock_loses_nothing() {
    let dovecot = Dovecot::start(&[("bob", "secret")], Options::default());
    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(
        work.path(),
        &[Mbox {
            poll: "1s",
            idle: false,
            ..Mbox::plain(&dovecot)
        }],
    );
    // A busy timeout shorter than the lock, so the daemon's write really
    // fails and must be retried, not merely wait.
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("busy_timeout = \"30s\"", "busy_timeout = \"500ms\"");
    std::fs::write(&config, text).unwrap();
    let mut child = spawn_daemon(&config, work.path(), "daemon", "bounced=debug");
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM mailbox_state WHERE last_success IS NOT NULL",
            1,
            Duration::from_secs(10)
        )
        .await
    );

    // Another process (here: another connection) takes the write lock ...
    let pool = db(&dbpath).await;
    let mut locker = pool.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *locker)
        .await
        .unwrap();
    sqlx::query("UPDATE mailbox_state SET last_messages = last_messages")
        .execute(&mut *locker)
        .await
        .unwrap();
    // ... while bounces arrive, and holds it for 3 s.
    let messages: Vec<Vec<u8>> = (0..10)
        .map(|i| make_bounce(&format!("lock{i}@example.com"), i, true))
        .collect();
    dovecot.append("bob", "secret", "INBOX", &messages).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages").await,
        0,
        "written through a held lock?"
    );
    sqlx::query("COMMIT").execute(&mut *locker).await.unwrap();
    drop(locker);

    let done = wait_for_count(
        &dbpath,
        "SELECT count(*) FROM messages",
        10,
        Duration::from_secs(20),
    )
    .await;
    let log = log_of(work.path(), "daemon");
    assert!(done, "{log}");
    assert!(log.contains("locked"), "the lock was never hit:\n{log}");
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    assert_eq!(count(&pool, "SELECT count(*) FROM bounce_events").await, 10);
    assert_eq!(count(&pool, "SELECT count(*) FROM addresses").await, 10);
    assert_eq!(dovecot.list("bob", "secret", "Processed").await.len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_neither_stops_the_others_nor_loops_hot() {
    let dovecot = Dovecot::start(&[("bob", "secret"), ("carol", "pw2")], Options::default());
    let work = tempfile::tempdir().unwrap();
    let good = Mbox {
        name: "good",
        ..Mbox::plain(&dovecot)
    };
    let wrong = Mbox {
        name: "wrong",
        user: "carol",
        pass: "not-it",
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[good, wrong]);
    let mut child = spawn_daemon(&config, work.path(), "daemon", "bounced=debug");
    dovecot
        .append("bob", "secret", "INBOX", &[data("dsn-userunknown.eml")])
        .await;
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages WHERE mailbox = 'good'",
            1,
            Duration::from_secs(5)
        )
        .await,
        "{}",
        log_of(work.path(), "daemon")
    );
    // Long enough for a hot loop to show (Dovecot delays a failed login ~2 s).
    tokio::time::sleep(Duration::from_secs(4)).await;
    sigterm(&child);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    let log = log_of(work.path(), "daemon");
    let failures = log
        .lines()
        .filter(|l| l.contains("mailbox failed") && l.contains("wrong"))
        .count();
    assert_eq!(failures, 1, "logged once, not per retry:\n{log}");
    let server_log = std::fs::read_to_string(dovecot.path("dovecot.log")).unwrap_or_default();
    let attempts = server_log
        .lines()
        .filter(|l| l.contains("user=<carol>") && l.contains("auth failed"))
        .count();
    assert_eq!(attempts, 1, "login retried too soon:\n{server_log}");
    let pool = db(&dbpath).await;
    let error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM mailbox_state WHERE mailbox = 'wrong'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(error.unwrap_or_default().contains("login failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_notify_and_sighup_reload() {
    use std::os::unix::net::UnixDatagram;
    let dovecot = Dovecot::start(&[("bob", "secret"), ("carol", "pw2")], Options::default());
    let work = tempfile::tempdir().unwrap();
    let sock_path = work.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let bob = Mbox {
        name: "bob",
        ..Mbox::plain(&dovecot)
    };
    let (config, dbpath) = write_config(work.path(), &[bob]);
    let log = std::fs::File::create(work.path().join("daemon.log")).unwrap();
    let mut child = bounced()
        .args(["run", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("RUST_LOG", "bounced=debug")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    // Collect datagrams until one contains `want`.
    let mut seen: Vec<String> = Vec::new();
    let expect = |want: &str, seen: &mut Vec<String>| {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        while start.elapsed() < Duration::from_secs(10) {
            if let Ok(n) = sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.contains(want);
                seen.push(msg);
                if hit {
                    return;
                }
            }
        }
        panic!("no {want:?} from the daemon; got {seen:#?}");
    };
    expect("READY=1", &mut seen);
    expect("STATUS=bob: idle (IDLE)", &mut seen);

    // carol's mailbox is not configured yet: add it and reload.
    dovecot
        .append("carol", "pw2", "INBOX", &[data("dsn-mailboxfull.eml")])
        .await;
    let carol = Mbox {
        name: "carol",
        user: "carol",
        pass: "pw2",
        ..Mbox::plain(&dovecot)
    };
    let bob = Mbox {
        name: "bob",
        ..Mbox::plain(&dovecot)
    };
    write_config(work.path(), &[bob, carol]);
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    expect("RELOADING=1", &mut seen);
    expect("READY=1", &mut seen);
    assert!(
        wait_for_count(
            &dbpath,
            "SELECT count(*) FROM messages WHERE mailbox = 'carol'",
            1,
            Duration::from_secs(5)
        )
        .await,
        "{}",
        log_of(work.path(), "daemon")
    );
    sigterm(&child);
    expect("STOPPING=1", &mut seen);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
}
