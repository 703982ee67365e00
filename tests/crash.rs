//! Crash safety: `bounced run --once` is SIGKILLed again and again in the
//! middle of a pass over a few hundred bounces, restarted each time; at the
//! end every bounce is counted exactly once and every after-action happened
//! exactly once.

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};

const MESSAGES: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_pass_then_restart_counts_each_bounce_once() {
    let seed = seeded_bounces("bob", "user", MESSAGES, |i| i % 3 == 0);
    let dovecot = Dovecot::start(
        &[("bob", "secret")],
        Options {
            seed,
            ..Options::default()
        },
    );
    let work = tempfile::tempdir().unwrap();
    let (config, dbpath) = write_config(work.path(), &[Mbox::plain(&dovecot)]);

    // Kill as soon as the database shows progress since the last kill, so
    // every kill lands inside a pass (between commits, during a fetch, or
    // between a commit and its MOVE).
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut kills = Vec::new();
    let mut last = -1i64;
    let mut clean_exit = false;
    for attempt in 0..40 {
        assert!(Instant::now() < deadline, "did not finish in time");
        let mut child = bounced()
            .args(["run", "--once", "--config"])
            .arg(&config)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn bounced");
        // Vary how far each run gets: 5, 15, 25, ... new rows; from the
        // fourth on, every third
        // run is instead killed after a random delay, which also lands in
        // the moments without new rows (start-up, re-applying owed MOVEs,
        // the final MOVE of a pass).
        let step = 5 + 10 * (attempt % 4) as i64;
        let timed_kill = (attempt >= 3 && attempt % 3 == 0)
            .then(|| Instant::now() + Duration::from_millis(fastrand::u64(10..250)));
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let out = child.wait_with_output().expect("output");
                assert!(status.success(), "{}", describe(&out));
                clean_exit = true;
                break;
            }
            let n = rows(&dbpath).await;
            let due = match timed_kill {
                Some(at) => Instant::now() >= at,
                None => n >= last.max(0) + step,
            };
            if due {
                child.kill().expect("SIGKILL");
                let _ = child.wait();
                kills.push(n);
                last = n;
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if clean_exit {
            break;
        }
    }
    assert!(clean_exit, "never finished");
    assert!(kills.len() >= 3, "too few kills landed mid-pass: {kills:?}");
    eprintln!(
        "{} SIGKILLs, rows stored at each kill: {kills:?}",
        kills.len()
    );

    let pool = db(&dbpath).await;
    assert_eq!(
        count(&pool, "SELECT count(*) FROM messages").await,
        MESSAGES as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(DISTINCT uid) FROM messages").await,
        MESSAGES as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM bounce_events").await,
        MESSAGES as i64,
        "one event per bounce, none twice"
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM messages WHERE after_done = 0 OR duplicate_of IS NOT NULL"
        )
        .await,
        0
    );
    // Each address bounced exactly once, with the verdict a clean run gives.
    let addrs = addresses_json(&dbpath);
    assert_eq!(addrs.len(), MESSAGES);
    for a in &addrs {
        let total = a["hard_count"].as_i64().unwrap() + a["soft_count"].as_i64().unwrap();
        assert_eq!(total, 1, "{a}");
    }
    let hard = addrs.iter().filter(|a| a["status"] == "hard_fail").count();
    assert_eq!(hard, MESSAGES.div_ceil(3));
    // The server: every message moved exactly once, none left, none copied twice.
    assert!(dovecot.list("bob", "secret", "INBOX").await.is_empty());
    assert_eq!(
        dovecot.list("bob", "secret", "Processed").await.len(),
        MESSAGES
    );
}

async fn rows(db: &std::path::Path) -> i64 {
    if !db.exists() {
        return 0;
    }
    let Ok(pool) = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .read_only(true),
    )
    .await
    else {
        return 0;
    };
    let n = sqlx::query_scalar("SELECT count(*) FROM messages")
        .fetch_one(&pool)
        .await
        .unwrap_or(0);
    pool.close().await;
    n
}
