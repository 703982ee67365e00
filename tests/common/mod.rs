//! Test harness: a real Dovecot in a temp dir on free loopback ports (through
//! `scripts/dovecot-sandbox.sh`, the same script the demo uses), a private CA
//! for TLS, seeding helpers, and a way to run the `bounced` binary.
//!
//! Everything listens on and connects to 127.0.0.1 only.

#![allow(dead_code)]

pub mod fake_imap;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use tokio::net::TcpStream;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 (the OS picks it; there is a small race
/// between closing it here and Dovecot binding it, acceptable for tests).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// A private CA and a server certificate for localhost/127.0.0.1 signed by it.
pub struct TestCa {
    /// The CA certificate (PEM file), for `ca_file`.
    pub ca_pem: PathBuf,
    /// The server certificate (PEM file).
    pub cert: PathBuf,
    /// The server key (PEM file).
    pub key: PathBuf,
}

impl TestCa {
    /// Generate into `dir`.
    pub fn generate(dir: &Path) -> TestCa {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "bounced test CA");
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
        let t = TestCa {
            ca_pem: dir.join("ca.pem"),
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
        };
        std::fs::write(&t.ca_pem, ca.pem()).unwrap();
        std::fs::write(&t.cert, cert.pem()).unwrap();
        std::fs::write(&t.key, key.serialize_pem()).unwrap();
        t
    }
}

/// A running sandbox Dovecot; stopped on drop.
pub struct Dovecot {
    /// The sandbox directory (short, under /tmp).
    pub dir: tempfile::TempDir,
    /// Plain/STARTTLS port.
    pub imap_port: u16,
    /// Implicit-TLS port, when started with TLS.
    pub imaps_port: Option<u16>,
    /// The CA, when started with TLS.
    pub ca: Option<TestCa>,
    /// The extra config lines given at start (kept for restarts).
    extra: Vec<String>,
    users: Vec<(String, String)>,
}

/// Options for [`Dovecot::start`].
#[derive(Default)]
pub struct Options<'a> {
    /// Serve TLS (implicit on a second port, STARTTLS on the first).
    pub tls: bool,
    /// Raw dovecot.conf lines.
    pub extra: Vec<String>,
    /// Maildir messages to write into each user's INBOX before start:
    /// (user, file name, bytes).
    pub seed: Vec<(&'a str, String, Vec<u8>)>,
}

impl Dovecot {
    /// Start with users (name, password).
    pub fn start(users: &[(&str, &str)], opts: Options<'_>) -> Dovecot {
        let dir = tempfile::Builder::new()
            .prefix("bd")
            .tempdir_in("/tmp")
            .expect("temp dir");
        let ca = opts.tls.then(|| TestCa::generate(dir.path()));
        for (user, name, bytes) in &opts.seed {
            let new = dir.path().join("mail").join(user).join("new");
            std::fs::create_dir_all(&new).unwrap();
            std::fs::write(new.join(name), bytes).unwrap();
        }
        let mut d = Dovecot {
            dir,
            imap_port: free_port(),
            imaps_port: opts.tls.then(free_port),
            ca,
            extra: opts.extra,
            users: users
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
        };
        // A port freed by free_port() can be taken by someone else before
        // Dovecot binds it: then try other ports.
        for _ in 0..3 {
            match d.try_start() {
                Ok(()) => return d,
                Err(e) if e.contains("in use") => {
                    d.imap_port = free_port();
                    d.imaps_port = d.imaps_port.map(|_| free_port());
                }
                Err(e) => panic!("{e}"),
            }
        }
        d.run_start();
        d
    }

    fn run_start(&mut self) {
        if let Err(e) = self.try_start() {
            panic!("{e}");
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let mut cmd = Command::new(root().join("scripts/dovecot-sandbox.sh"));
        cmd.arg("start")
            .arg(self.dir.path())
            .arg("--imap-port")
            .arg(self.imap_port.to_string());
        if let (Some(port), Some(ca)) = (self.imaps_port, &self.ca) {
            cmd.arg("--imaps-port")
                .arg(port.to_string())
                .arg("--cert")
                .arg(&ca.cert)
                .arg("--key")
                .arg(&ca.key);
        }
        for (u, p) in &self.users {
            cmd.arg("--user").arg(format!("{u}:{p}"));
        }
        for line in &self.extra {
            cmd.arg("--conf").arg(line);
        }
        let out = cmd.output().expect("run dovecot-sandbox.sh");
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "dovecot-sandbox start failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Stop the server at once, cutting open connections, like a crash
    /// (idempotent). A graceful Dovecot shutdown takes ~2 s, too slow to
    /// pay in every test.
    pub fn stop(&self) {
        let _ = Command::new(root().join("scripts/dovecot-sandbox.sh"))
            .arg("stop")
            .arg(self.dir.path())
            .arg("--now")
            .output();
    }

    /// Start it again on the same ports and mail.
    pub fn restart(&mut self) {
        self.stop();
        self.run_start();
    }

    /// A path inside the sandbox dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A plain IMAP session for seeding and inspecting.
    pub async fn session(&self, user: &str, pass: &str) -> async_imap::Session<TcpStream> {
        let tcp = TcpStream::connect(("127.0.0.1", self.imap_port))
            .await
            .expect("connect");
        let mut client = async_imap::Client::new(tcp);
        let _greeting = client.read_response().await.expect("greeting");
        client
            .login(user, pass)
            .await
            .map_err(|(e, _)| e)
            .expect("login")
    }

    /// APPEND messages to a folder (creating it if needed).
    pub async fn append(&self, user: &str, pass: &str, folder: &str, messages: &[Vec<u8>]) {
        let mut s = self.session(user, pass).await;
        if folder != "INBOX" {
            let _ = s.create(folder).await;
        }
        for m in messages {
            s.append(folder, None, None, m).await.expect("append");
        }
        let _ = s.logout().await;
    }

    /// (UID, flags) of every message in a folder; empty when it does not exist.
    pub async fn list(&self, user: &str, pass: &str, folder: &str) -> Vec<(u32, Vec<String>)> {
        use futures::TryStreamExt;
        let mut s = self.session(user, pass).await;
        let Ok(mbox) = s.examine(folder).await else {
            return Vec::new();
        };
        if mbox.exists == 0 {
            let _ = s.logout().await;
            return Vec::new();
        }
        let fetches: Vec<_> = s
            .uid_fetch("1:*", "(UID FLAGS)")
            .await
            .expect("fetch")
            .try_collect()
            .await
            .expect("fetch");
        let mut out: Vec<(u32, Vec<String>)> = fetches
            .iter()
            .filter_map(|f| {
                let flags = f.flags().map(|fl| format!("{fl:?}")).collect();
                f.uid.map(|u| (u, flags))
            })
            .collect();
        out.sort();
        let _ = s.logout().await;
        out
    }

    /// The folder's UIDVALIDITY.
    pub async fn uidvalidity(&self, user: &str, pass: &str, folder: &str) -> u32 {
        let mut s = self.session(user, pass).await;
        let m = s.examine(folder).await.expect("examine");
        let _ = s.logout().await;
        m.uid_validity.expect("uidvalidity")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A mailbox section for a test config.
pub struct Mbox<'a> {
    /// Its name.
    pub name: &'a str,
    /// Port.
    pub port: u16,
    /// tls mode.
    pub tls: &'a str,
    /// Host name.
    pub host: &'a str,
    /// User and password.
    pub user: &'a str,
    /// Password.
    pub pass: &'a str,
    /// Folder.
    pub folder: &'a str,
    /// after.
    pub after: &'a str,
    /// after_other.
    pub after_other: &'a str,
    /// ca_file.
    pub ca_file: Option<&'a Path>,
    /// idle.
    pub idle: bool,
    /// poll_interval.
    pub poll: &'a str,
}

impl<'a> Mbox<'a> {
    /// Plain IMAP to a sandbox with the usual test user.
    pub fn plain(d: &Dovecot) -> Mbox<'a> {
        Mbox {
            name: "test",
            port: d.imap_port,
            tls: "none",
            host: "127.0.0.1",
            user: "bob",
            pass: "secret",
            folder: "INBOX",
            after: "move:Processed",
            after_other: "none",
            ca_file: None,
            idle: true,
            poll: "60s",
        }
    }

    fn toml(&self) -> String {
        let mut s = format!(
            "[[mailbox]]\nname = {:?}\nhost = {:?}\nport = {}\ntls = {:?}\nusername = {:?}\n\
             password = {:?}\nfolder = {:?}\nafter = {:?}\nafter_other = {:?}\nidle = {}\n\
             poll_interval = {:?}\n",
            self.name,
            self.host,
            self.port,
            self.tls,
            self.user,
            self.pass,
            self.folder,
            self.after,
            self.after_other,
            self.idle,
            self.poll
        );
        if let Some(ca) = self.ca_file {
            s.push_str(&format!("ca_file = {:?}\n", ca.display().to_string()));
        }
        s
    }
}

/// Write a config file with these mailboxes and a database in `dir`;
/// returns (config path, database path).
pub fn write_config(dir: &Path, mailboxes: &[Mbox<'_>]) -> (PathBuf, PathBuf) {
    let db = dir.join("bounced.db");
    let mut text = format!(
        "[database]\nurl = \"sqlite://{}\"\nbusy_timeout = \"30s\"\n\n[log]\nlevel = \"info\"\n\n",
        db.display()
    );
    for m in mailboxes {
        text.push_str(&m.toml());
        text.push('\n');
    }
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    (path, db)
}

/// The bounced binary.
pub fn bounced() -> Command {
    Command::new(env!("CARGO_BIN_EXE_bounced"))
}

/// Start `bounced run` (the long-running daemon) with `RUST_LOG=rust_log`
/// and its log in `work/NAME.log`.
pub fn spawn_daemon(config: &Path, work: &Path, name: &str, rust_log: &str) -> Child {
    let log = std::fs::File::create(work.join(format!("{name}.log"))).unwrap();
    bounced()
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn bounced")
}

/// The log a daemon started with [`spawn_daemon`] has written so far.
pub fn log_of(work: &Path, name: &str) -> String {
    std::fs::read_to_string(work.join(format!("{name}.log"))).unwrap_or_default()
}

/// Poll `query` (a count) until it reaches `want` or `limit` passes. The
/// database file exists before the daemon's migrations have created its
/// tables: a failing query means "not yet".
pub async fn wait_for_count(db: &Path, query: &'static str, want: i64, limit: Duration) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if db.exists() {
            let pool = self::db(db).await;
            let n: i64 = sqlx::query_scalar(query)
                .fetch_one(&pool)
                .await
                .unwrap_or(0);
            pool.close().await;
            if n >= want {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// `bounced run --once --config PATH`.
pub fn run_once(config: &Path) -> Output {
    bounced()
        .args(["run", "--once", "--config"])
        .arg(config)
        .output()
        .expect("run bounced")
}

/// `bounced addresses --db PATH --format json`, parsed.
pub fn addresses_json(db: &Path) -> Vec<serde_json::Value> {
    let out = bounced()
        .args(["addresses", "--format", "json", "--db"])
        .arg(db)
        .output()
        .expect("run bounced addresses");
    assert!(
        out.status.success(),
        "bounced addresses failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Open the database read-only-ish for assertions.
pub async fn db(path: &Path) -> sqlx::SqlitePool {
    use sqlx::sqlite::SqliteConnectOptions;
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10));
    sqlx::SqlitePool::connect_with(opts).await.expect("open db")
}

/// One integer from a query.
pub async fn count(pool: &sqlx::SqlitePool, sql: &'static str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Print a command's output when an assertion needs it.
pub fn describe(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A test data file.
pub fn data(name: &str) -> Vec<u8> {
    std::fs::read(root().join("tests/data").join(name)).expect("test data")
}

/// Up to `limit` messages from the shared Sisimai corpus, when present
/// (sorted by name so runs are repeatable), else nothing.
pub fn corpus(limit: usize) -> Vec<(String, Vec<u8>)> {
    let dir = root().join("../shared/corpus/sisimai/eml");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    names
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .take(limit)
        .filter_map(|p| {
            let bytes = std::fs::read(&p).ok()?;
            Some((p.file_name()?.to_string_lossy().into_owned(), bytes))
        })
        .collect()
}

/// `n` distinct bounces as maildir files for `user`'s INBOX, to seed with
/// [`Options::seed`]: recipient `{prefix}{i}@example.com`, a user-unknown
/// bounce when `hard(i)`, else a full mailbox.
pub fn seeded_bounces(
    user: &'static str,
    prefix: &str,
    n: usize,
    hard: impl Fn(usize) -> bool,
) -> Vec<(&'static str, String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            (
                user,
                format!("{}.M{i}.{prefix}.sandbox", 1_700_000_000 + i),
                make_bounce(&format!("{prefix}{i}@example.com"), i, hard(i)),
            )
        })
        .collect()
}

/// A bounce for `rcpt`, unique bytes per (rcpt, n): user unknown when
/// `hard`, mailbox full otherwise.
pub fn make_bounce(rcpt: &str, n: usize, hard: bool) -> Vec<u8> {
    let (status, code, text) = if hard {
        ("5.1.1", 550, "User unknown in virtual mailbox table")
    } else {
        ("5.2.2", 552, "Mailbox full, quota exceeded")
    };
    format!(
        "Return-Path: <>\r\n\
Date: Mon, 16 Nov 2026 10:12:03 +0000\r\n\
From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
Subject: Undelivered Mail Returned to Sender\r\n\
To: lists-bounces@example.org\r\n\
Message-Id: <gen-{n}-{rcpt}@mx.example.net>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B{n}\"\r\n\
\r\n\
--B{n}\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\
\r\n\
<{rcpt}>: host mail.example.com[192.0.2.25] said: {code} {status} <{rcpt}>: {text} (in reply to RCPT TO command)\r\n\
\r\n\
--B{n}\r\n\
Content-Type: message/delivery-status\r\n\
\r\n\
Reporting-MTA: dns; mx.example.net\r\n\
\r\n\
Final-Recipient: rfc822; {rcpt}\r\n\
Action: failed\r\n\
Status: {status}\r\n\
Remote-MTA: dns; mail.example.com\r\n\
Diagnostic-Code: smtp; {code} {status} <{rcpt}>: {text}\r\n\
\r\n\
--B{n}--\r\n"
    )
    .into_bytes()
}
