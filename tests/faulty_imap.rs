//! Faulty and hostile IMAP servers (issue 15), against the scripted server
//! in `common/fake_imap.rs`: a dropped connection, a stall, a lying size, a
//! garbage response, a 3 GB literal, a BYE mid-fetch, a UIDVALIDITY change,
//! a NO on UID MOVE, fewer messages than asked. For each: the pass fails
//! with an error naming the mailbox's command (or degrades as it should),
//! nothing is recorded as done that was not committed, the exit code and
//! `bounced stats` show the failure, and memory stays bounded.

mod common;

use common::fake_imap::{FakeImap, Fault};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

/// `n` distinct small bounces.
fn bounces(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| make_bounce(&format!("user{i}@example.com"), i, i % 2 == 0))
        .collect()
}

struct Case {
    _work: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

fn case(server: &FakeImap, after: &str) -> Case {
    let work = tempfile::tempdir().unwrap();
    let (config, db) = write_config(work.path(), &[server.mbox(after)]);
    Case {
        _work: work,
        config,
        db,
    }
}

/// `bounced run --once` off the runtime, so the fake server keeps serving.
async fn once(config: &Path) -> Output {
    let config = config.to_path_buf();
    tokio::task::spawn_blocking(move || run_once(&config))
        .await
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `bounced stats` for the database, as text.
async fn stats(db: &Path) -> String {
    let db = db.to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        bounced().args(["stats", "--db"]).arg(&db).output().unwrap()
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    stdout(&out)
}

async fn rows(db: &Path, sql: &'static str) -> i64 {
    let pool = db_pool(db).await;
    let n = count(&pool, sql).await;
    pool.close().await;
    n
}

async fn db_pool(path: &Path) -> sqlx::SqlitePool {
    common::db(path).await
}

/// A failed pass as `run --once` and `stats` show it: non-zero exit, the
/// error names the mailbox and `what`, no last success.
async fn assert_failed(c: &Case, out: &Output, what: &[&str]) {
    let err = stderr(out);
    eprintln!(
        "--- run --once: exit {:?}\n{err}{}",
        out.status.code(),
        stdout(out)
    );
    assert!(!out.status.success(), "{}", describe(out));
    assert!(err.contains("mailbox fake:"), "{err}");
    for w in what {
        assert!(err.contains(w), "{w:?} not in:\n{err}");
    }
    // Readable: no Debug of the library's structures, no byte vectors.
    for noise in ["Error {", "input: [", "Custom {"] {
        assert!(!err.contains(noise), "{noise:?} in:\n{err}");
    }
    let s = stats(&c.db).await;
    assert!(s.contains("last success: never"), "{s}");
    assert!(s.contains("last error:"), "{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_uid_listing_fails_the_pass() {
    let server = FakeImap::start(bounces(3), Fault::DropMidSearch).await;
    let c = case(&server, "move:Processed");
    let out = once(&c.config).await;
    assert_failed(
        &c,
        &out,
        &[
            "UID SEARCH ALL in INBOX",
            "closed before the command completed",
        ],
    )
    .await;
    assert!(
        stdout(&out).contains("0 of 1 mailboxes ok"),
        "{}",
        describe(&out)
    );
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 0);

    // The daemon reconnects with backoff (0.5-1 s, then 1-2 s, ...).
    let work = tempfile::tempdir().unwrap();
    let mut child = spawn_daemon(&c.config, work.path(), "daemon", "info");
    let start = std::time::Instant::now();
    while server.state.lock().unwrap().connections < 4 && start.elapsed() < Duration::from_secs(20)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = log_of(work.path(), "daemon");
    let connections = server.state.lock().unwrap().connections;
    assert!(connections >= 4, "{connections} connections:\n{log}");
    assert!(log.contains("mailbox failed"), "{log}");
    assert!(stats(&c.db).await.contains("last success: never"));

    // The server recovers: the next pass reads everything.
    server.set_fault(Fault::None);
    let out = once(&c.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("3 new messages"),
        "{}",
        describe(&out)
    );
    assert!(!stats(&c.db).await.contains("last success: never"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_uid_fetch_is_a_timeout() {
    use bounced::config::Config;
    use bounced::daemon;
    use bounced::imap::{ImapError, ImapSource, Timeouts};
    use bounced::store::Store;
    let server = FakeImap::start(bounces(3), Fault::StallFetch).await;
    let c = case(&server, "move:Processed");
    let config = Config::load(&c.config).unwrap();
    let store = Store::open(&config.database).await.unwrap();
    let m = &config.mailboxes[0];
    let timeouts = Timeouts {
        fetch: Duration::from_millis(500),
        ..Timeouts::default()
    };
    let mut source = ImapSource::connect(m, timeouts).await.unwrap();
    let (_tx, stop) = tokio::sync::watch::channel(false);
    let started = std::time::Instant::now();
    let failed = daemon::pass(&mut source, m, &config.policy, &store, &stop)
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    let text = failed.to_string();
    assert!(
        matches!(
            failed.error,
            daemon::PassError::Imap(ImapError::Timeout { .. })
        ),
        "{text}"
    );
    assert!(text.contains("UID FETCH (3 messages) in INBOX"), "{text}");
    assert_eq!(failed.committed.messages, 0);
    store.close().await;
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 0);
    let s = stats(&c.db).await;
    assert!(
        s.contains("last success: never") && s.contains("timeout"),
        "{s}"
    );
    assert_eq!(server.inbox_uids(), [1, 2, 3], "nothing moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_size_cannot_make_the_client_read_a_huge_literal() {
    let server = FakeImap::start(bounces(3), Fault::LyingSize(2)).await;
    let c = case(&server, "move:Processed");
    let out = once(&c.config).await;
    assert_failed(&c, &out, &["UID FETCH", "over the cap of"]).await;
    // The client hung up at the announcement: the server could not push the
    // 50 MB (only what the socket buffers hold).
    let written = server.state.lock().unwrap().lie_written;
    assert!(written < 30 * 1024 * 1024, "{written} bytes accepted");
    // Later passes fetch the batch's messages one by one: the good ones are
    // recorded, the liar is set aside after three refusals, left in place.
    let mut runs = 1;
    loop {
        let out = once(&c.config).await;
        runs += 1;
        if out.status.success() {
            break;
        }
        assert!(stderr(&out).contains("over the cap"), "{}", describe(&out));
        assert!(runs < 8, "never recovered: {}", describe(&out));
    }
    let pool = db_pool(&c.db).await;
    let kinds: Vec<(i64, String)> = sqlx::query_as("SELECT uid, kind FROM messages ORDER BY uid")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(
        kinds,
        [
            (1, "bounce".to_string()),
            (2, "unparseable".to_string()),
            (3, "bounce".to_string())
        ]
    );
    assert_eq!(server.inbox_uids(), [2], "the liar's message stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_select_is_a_readable_error() {
    let server = FakeImap::start(bounces(2), Fault::GarbageSelect).await;
    let c = case(&server, "move:Processed");
    let out = once(&c.config).await;
    assert_failed(
        &c,
        &out,
        &["SELECT INBOX", "unreadable response from the server"],
    )
    .await;
    let err = stderr(&out);
    let line = err.lines().find(|l| l.contains("SELECT INBOX")).unwrap();
    assert!(line.len() < 300, "{line}");
    assert!(
        line.contains("* 42"),
        "an excerpt of what was received: {line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_gigabyte_literal_is_refused_at_once() {
    let server = FakeImap::start(bounces(2), Fault::HugeLiteral).await;
    let c = case(&server, "move:Processed");
    let started = std::time::Instant::now();
    let out = once(&c.config).await;
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_failed(&c, &out, &["3000000000 bytes", "over the cap of"]).await;
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bye_mid_fetch_counts_what_was_committed_and_resumes() {
    let server = FakeImap::start(bounces(120), Fault::ByeMidFetch(70)).await;
    let c = case(&server, "move:Processed");
    let out = once(&c.config).await;
    assert_failed(&c, &out, &["UID FETCH", "BYE", "server shutting down"]).await;
    // The first batch of 50 was committed before the BYE cut the second.
    assert!(
        stdout(&out).contains("50 new messages"),
        "{}",
        describe(&out)
    );
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 50);
    assert_eq!(
        rows(&c.db, "SELECT count(*) FROM messages WHERE after_done = 0").await,
        50,
        "their MOVE is owed, not done"
    );
    server.set_fault(Fault::None);
    let out = once(&c.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("70 new messages"),
        "{}",
        describe(&out)
    );
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 120);
    assert_eq!(rows(&c.db, "SELECT count(*) FROM bounce_events").await, 120);
    assert_eq!(
        rows(&c.db, "SELECT count(*) FROM messages WHERE after_done = 0").await,
        0
    );
    assert!(server.inbox_uids().is_empty());
    assert_eq!(
        server.state.lock().unwrap().moved.len(),
        120,
        "each moved once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uidvalidity_change_between_passes_counts_nothing_twice() {
    let server = FakeImap::start(bounces(5), Fault::None).await;
    let c = case(&server, "seen");
    let out = once(&c.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    server.renumber(100);
    let out = once(&c.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("5 new messages, 0 recipient events"),
        "{}",
        describe(&out)
    );
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 10);
    assert_eq!(
        rows(
            &c.db,
            "SELECT count(*) FROM messages WHERE duplicate_of IS NOT NULL"
        )
        .await,
        5
    );
    assert_eq!(rows(&c.db, "SELECT count(*) FROM bounce_events").await, 5);
    assert!(server.state.lock().unwrap().inbox.iter().all(|m| m.seen));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_on_uid_move_leaves_the_action_owed() {
    let server = FakeImap::start(bounces(5), Fault::NoOnMove).await;
    let c = case(&server, "move:Processed");
    let out = once(&c.config).await;
    assert_failed(
        &c,
        &out,
        &["UID MOVE to Processed in INBOX", "answered NO", "SERVERBUG"],
    )
    .await;
    assert!(
        stdout(&out).contains("5 new messages"),
        "{}",
        describe(&out)
    );
    assert_eq!(
        rows(&c.db, "SELECT count(*) FROM messages WHERE after_done = 0").await,
        5
    );
    server.set_fault(Fault::None);
    let out = once(&c.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(rows(&c.db, "SELECT count(*) FROM messages").await, 5);
    assert_eq!(
        rows(&c.db, "SELECT count(*) FROM messages WHERE after_done = 0").await,
        0
    );
    assert!(server.inbox_uids().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_messages_than_asked_are_not_marked_done() {
    let server = FakeImap::start(bounces(20), Fault::FewerMessages).await;
    let c = case(&server, "move:Processed");
    let out = once(&c.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).contains("18 new messages"),
        "{}",
        describe(&out)
    );
    assert_eq!(rows(&c.db, "SELECT count(*) FROM fetch_failures").await, 2);
    assert_eq!(server.inbox_uids(), [10, 20], "the missing ones stay");
    // A server that keeps leaving them out: each is set aside after three
    // solo attempts, recorded as unparseable and left in place.
    for _ in 0..4 {
        let out = once(&c.config).await;
        assert!(out.status.success(), "{}", describe(&out));
    }
    assert_eq!(
        rows(
            &c.db,
            "SELECT count(*) FROM messages WHERE kind = 'unparseable'"
        )
        .await,
        2
    );
    // Once the server returns a message again it is read normally.
    let server2 = FakeImap::start(bounces(3), Fault::FewerMessages).await;
    let c2 = case(&server2, "move:Processed");
    server2.renumber(9); // UIDs 9, 10, 11: 10 is left out
    let out = once(&c2.config).await;
    assert!(
        stdout(&out).contains("2 new messages"),
        "{}",
        describe(&out)
    );
    server2.set_fault(Fault::None);
    let out = once(&c2.config).await;
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(rows(&c2.db, "SELECT count(*) FROM messages").await, 3);
    assert_eq!(rows(&c2.db, "SELECT count(*) FROM fetch_failures").await, 0);
    assert!(server2.inbox_uids().is_empty());
}
