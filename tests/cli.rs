//! The command-line contract that tooling relies on: `check-config`, `verp`
//! and their error messages, run through the real binary.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn bounced(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bounced"))
        .args(args)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("bounced runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, extra: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"sqlite://{}/b.db\"\n\n[[mailbox]]\nname = \"lists\"\nhost = \"127.0.0.1\"\n\
             tls = \"none\"\nusername = \"bounces\"\npassword = \"hunter2\"\n{extra}",
            dir.display()
        ),
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn check_config_prints_the_resolved_config_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let out = bounced(&["check-config", "--config", &cfg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(stdout.contains("port = 143"), "{stdout}");
    assert!(stdout.contains("after = \"seen\""), "{stdout}");
    assert!(!stdout.contains("hunter2"), "password leaked:\n{stdout}");
}

#[test]
fn check_config_errors_name_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "poll_interval = \"often\"\n");
    let out = bounced(&["check-config", "--config", &cfg]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&cfg) && stderr.contains("mailbox[0].poll_interval"),
        "{stderr}"
    );

    let missing = dir.path().join("nope.toml").display().to_string();
    let out = bounced(&["check-config", "--config", &missing]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&missing));
}

#[test]
fn verp_prints_a_signed_return_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("key"),
        "a secret of more than sixteen bytes\n",
    )
    .unwrap();
    let cfg = write_config(
        dir.path(),
        "\n[verify]\nreturn_path = \"bounces@lists.example.org\"\n[[verify.key]]\nid = \"k1\"\nsecret_file = \"key\"\n",
    );
    let out = bounced(&[
        "verp",
        "--config",
        &cfg,
        "--list",
        "news",
        "jane@example.com",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rp = text(&out.stdout).trim().to_string();
    assert!(rp.starts_with("bounces+"), "{rp}");
    assert!(
        rp.ends_with(".news.jane=example.com@lists.example.org"),
        "{rp}"
    );

    let out = bounced(&["verp", "--config", &cfg, "--header", "jane@example.com"]);
    let line = text(&out.stdout);
    assert!(line.starts_with("X-Bounced-Token: "), "{line}");

    let out = bounced(&["verp", "--config", &cfg, "not an address"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not an address"));
}

#[test]
fn verp_without_keys_says_which_key_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "");
    let out = bounced(&["verp", "--config", &cfg, "jane@example.com"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("verify"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn classify_reports_unreadable_paths_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("m.eml");
    std::fs::write(
        &msg,
        "From: a@example.org\nTo: b@example.org\nSubject: hi\n\nhello\n",
    )
    .unwrap();
    let missing = dir.path().join("missing.eml").display().to_string();
    let out = bounced(&["classify", &missing, &msg.display().to_string()]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&missing));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["kind"], "not_bounce");
    assert_eq!(lines[0]["recipients"].as_array().unwrap().len(), 0);
}

#[test]
fn stats_and_addresses_on_a_fresh_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let config = bounced::config::DatabaseConfig {
            url: format!("sqlite://{}", db.display()),
            busy_timeout: std::time::Duration::from_secs(5),
        };
        bounced::store::Store::open(&config).await.unwrap();
    });
    let db = db.display().to_string();
    let out = bounced(&["stats", "--db", &db]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("no mailbox"),
        "{}",
        text(&out.stdout)
    );
    let out = bounced(&["addresses", "--db", &db, "--format", "csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).lines().next(),
        Some(
            "address,status,action,hard_count,soft_count,first_bounce,last_bounce,last_reason,verified,why,reason,changed_at"
        )
    );
    let missing = dir.path().join("none.db").display().to_string();
    let out = bounced(&["addresses", "--db", &missing]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains(&missing));
}

/// A database last written by a daemon 40 days ago, when five soft bounces
/// over 20 days had marked an address `remove`: `bounced addresses` answers
/// for now, when all five have left the 30-day window.
#[test]
fn addresses_answers_for_now_when_soft_bounces_have_aged() {
    use bounced::config::{DatabaseConfig, PolicyConfig};
    use bounced::store::{self, AddressFilter, NewMessage, Store};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("b.db");
    let day = 86_400;
    let then = store::now() - 40 * day;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&DatabaseConfig {
            url: format!("sqlite://{}", db.display()),
            busy_timeout: std::time::Duration::from_secs(5),
        })
        .await
        .unwrap();
        let policy = PolicyConfig::default();
        for (i, days_ago) in [20, 15, 10, 5, 0].into_iter().enumerate() {
            let raw = common::make_bounce("full@example.com", i, false);
            let msg = NewMessage {
                mailbox: "lists",
                uidvalidity: 1,
                uid: i as u32 + 1,
                size: raw.len() as u64,
                internal_date: None,
                date: Some(then - days_ago * day),
                fingerprint: bounced::daemon::fingerprint(&raw),
                after_action: "none".into(),
                trust: Vec::new(),
            };
            let verdict = bounced::classify::classify(&raw);
            store.record(&msg, &verdict, &policy, then).await.unwrap();
        }
        store.apply_policy(&policy, then).await.unwrap();
        let stored = store
            .addresses_at(&AddressFilter::default(), then)
            .await
            .unwrap();
        assert_eq!(stored[0].action, "remove", "{}", stored[0].why);
        store.close().await;
    });
    let out = bounced(&[
        "addresses",
        "--db",
        &db.display().to_string(),
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let row: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(row["address"], "full@example.com");
    assert_eq!(
        (&row["status"], &row["action"]),
        (&"soft_fail".into(), &"keep".into())
    );
    assert!(
        row["why"]
            .as_str()
            .unwrap()
            .starts_with("no counted soft bounce in the last 30 days"),
        "{row}"
    );

    // The changes feed: the first verdict (keep), remove at the fifth
    // bounce, and back to keep by ageing, recorded when the command above
    // brought the verdict up to date.
    let db = db.display().to_string();
    let out = bounced(&["changes", "--db", &db, "--format", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let changes: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<_> = changes
        .iter()
        .map(|c| {
            (
                c["seq"].as_i64().unwrap(),
                c["new_action"].as_str().unwrap(),
                c["cause"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (1, "keep", "bounce"),
            (2, "remove", "bounce"),
            (3, "keep", "ageing")
        ]
    );
    let out = bounced(&["changes", "--db", &db, "--since", "2", "--format", "csv"]);
    let csv = text(&out.stdout);
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[0].starts_with("seq,changed_at,address,old_action,new_action"));
    assert!(lines[1].starts_with("3,"), "{csv}");
    assert!(lines[1].contains(",full@example.com,remove,keep,"), "{csv}");
    let out = bounced(&["changes", "--db", &db, "--since", "3"]);
    assert_eq!(text(&out.stdout).trim(), "(no verdict changes)");

    // Filters and the WHY column.
    let out = bounced(&["addresses", "--db", &db, "--domain", "EXAMPLE.com"]);
    let table = text(&out.stdout);
    assert!(table.lines().next().unwrap().ends_with("WHY"), "{table}");
    assert!(table.contains("no counted soft bounce"), "{table}");
    let out = bounced(&["addresses", "--db", &db, "--domain", "example.org"]);
    assert_eq!(text(&out.stdout).trim(), "(no bounced addresses)");
    let out = bounced(&["addresses", "--db", &db, "--reason", "userunknown"]);
    assert_eq!(text(&out.stdout).trim(), "(no bounced addresses)");
    let out = bounced(&[
        "addresses",
        "--db",
        &db,
        "--since",
        "1d",
        "--format",
        "json",
    ]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        1,
        "changed by ageing just now"
    );
    let out = bounced(&["addresses", "--db", &db, "--since", "2999-01-01"]);
    assert_eq!(text(&out.stdout).trim(), "(no bounced addresses)");
    let out = bounced(&["addresses", "--db", &db, "--reason", "nonsense"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nonsense"),
        "{}",
        text(&out.stderr)
    );
    let out = bounced(&["addresses", "--db", &db, "--since", "soon"]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("soon"), "{}", text(&out.stderr));

    // Forgive: recorded as a change with its note; the address shows keep.
    let out = bounced(&[
        "forgive",
        "--db",
        &db,
        "full@EXAMPLE.com",
        "--note",
        "asked; $(not run)",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("change 4"),
        "{}",
        text(&out.stdout)
    );
    let out = bounced(&["changes", "--db", &db, "--since", "3", "--format", "json"]);
    let c: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(
        (&c["cause"], &c["new_status"]),
        (&"forgive".into(), &"forgiven".into())
    );
    assert_eq!(c["note"], "asked; $(not run)");
    let out = bounced(&[
        "addresses",
        "--db",
        &db,
        "--status",
        "forgiven",
        "--format",
        "csv",
    ]);
    assert!(
        text(&out.stdout).contains("full@example.com,forgiven,keep"),
        "{}",
        text(&out.stdout)
    );
    let out = bounced(&["forgive", "--db", &db, "nobody@example.com"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("nobody@example.com has no bounce on record"),
        "{}",
        text(&out.stderr)
    );
}
