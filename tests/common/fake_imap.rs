//! A scripted IMAP server for fault tests: a tokio `TcpListener` on
//! 127.0.0.1 port 0 that speaks just enough IMAP4rev1 (LOGIN, CAPABILITY,
//! SELECT, UID SEARCH, UID FETCH, UID STORE, UID MOVE, UID EXPUNGE, CREATE,
//! NOOP, IDLE, LOGOUT) over an in-memory folder, and misbehaves on purpose
//! as [`Fault`] says. It is real TCP against the real client code; only the
//! server is scripted, because no real server can be made to lie on demand.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// How the server misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// A well-behaved server.
    None,
    /// Answers `UID SEARCH` with its data, then closes the connection
    /// before the tagged OK.
    DropMidSearch,
    /// Never answers a body `UID FETCH`.
    StallFetch,
    /// Claims `RFC822.SIZE 10` for every message and sends this UID's body
    /// as a 50 MB literal, ignoring the partial range asked for.
    LyingSize(u32),
    /// Sends bytes that are not IMAP in its SELECT response.
    GarbageSelect,
    /// Announces a 3 GB literal in a FETCH response.
    HugeLiteral,
    /// Says BYE and closes after sending this many bodies in the session.
    ByeMidFetch(usize),
    /// Answers `UID MOVE` with a tagged NO.
    NoOnMove,
    /// Leaves every UID divisible by 10 out of body FETCH answers.
    FewerMessages,
}

/// One message in the folder.
#[derive(Debug, Clone)]
pub struct Msg {
    /// UID.
    pub uid: u32,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// `\Seen` set.
    pub seen: bool,
}

/// The server's state, shared with the test.
#[derive(Debug)]
pub struct State {
    /// The folder's UIDVALIDITY.
    pub uidvalidity: u32,
    /// INBOX.
    pub inbox: Vec<Msg>,
    /// Messages moved out, with the folder.
    pub moved: Vec<(String, u32)>,
    /// The misbehaviour.
    pub fault: Fault,
    /// Connections accepted so far.
    pub connections: usize,
    /// Bytes of the lying literal the server managed to write before the
    /// client hung up.
    pub lie_written: u64,
}

/// A running fake server; stops with the test's runtime.
pub struct FakeImap {
    /// The port on 127.0.0.1.
    pub port: u16,
    /// The shared state.
    pub state: Arc<Mutex<State>>,
}

impl FakeImap {
    /// Start with these messages (UIDs 1..) in INBOX.
    pub async fn start(messages: Vec<Vec<u8>>, fault: Fault) -> FakeImap {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let state = Arc::new(Mutex::new(State {
            uidvalidity: 1_700_000_001,
            inbox: messages
                .into_iter()
                .enumerate()
                .map(|(i, bytes)| Msg {
                    uid: i as u32 + 1,
                    bytes,
                    seen: false,
                })
                .collect(),
            moved: Vec::new(),
            fault,
            connections: 0,
            lie_written: 0,
        }));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                tokio::spawn(session(tcp, shared.clone()));
            }
        });
        FakeImap { port, state }
    }

    /// Change the fault.
    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Renumber the folder: a new UIDVALIDITY and new UIDs from `first`.
    pub fn renumber(&self, first: u32) {
        let mut s = self.state.lock().unwrap();
        s.uidvalidity += 1;
        for (i, m) in s.inbox.iter_mut().enumerate() {
            m.uid = first + i as u32;
        }
    }

    /// UIDs left in INBOX.
    pub fn inbox_uids(&self) -> Vec<u32> {
        self.state
            .lock()
            .unwrap()
            .inbox
            .iter()
            .map(|m| m.uid)
            .collect()
    }

    /// A `[[mailbox]]` for this server (user bob, password secret).
    pub fn mbox<'a>(&self, after: &'a str) -> super::Mbox<'a> {
        super::Mbox {
            name: "fake",
            port: self.port,
            tls: "none",
            host: "127.0.0.1",
            user: "bob",
            pass: "secret",
            folder: "INBOX",
            after,
            after_other: "none",
            ca_file: None,
            idle: true,
            poll: "60s",
        }
    }
}

/// The UIDs of `set` (`1:3,7,9:*`) among `have`.
fn in_set(set: &str, have: &[u32]) -> Vec<u32> {
    let max = have.iter().copied().max().unwrap_or(0);
    let num = |s: &str| {
        if s == "*" {
            max
        } else {
            s.parse().unwrap_or(0)
        }
    };
    let mut out = Vec::new();
    for part in set.split(',') {
        let (a, b) = part.split_once(':').unwrap_or((part, part));
        let (a, b) = (num(a), num(b));
        let (lo, hi) = (a.min(b), a.max(b));
        out.extend(have.iter().copied().filter(|u| (lo..=hi).contains(u)));
    }
    out.sort_unstable();
    out.dedup();
    out
}

async fn session(tcp: TcpStream, state: Arc<Mutex<State>>) {
    let (read, mut w) = tcp.into_split();
    let mut lines = BufReader::new(read);
    let mut bodies_sent = 0usize;
    if w.write_all(b"* OK [CAPABILITY IMAP4rev1 MOVE UIDPLUS IDLE] fake server ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = line.trim_end().to_string();
        let (tag, rest) = text.split_once(' ').unwrap_or((&text, ""));
        let upper = rest.to_ascii_uppercase();
        let fault = state.lock().unwrap().fault;
        let mut out: Vec<u8> = Vec::new();
        macro_rules! say {
            ($($arg:tt)*) => { out.extend_from_slice(format!($($arg)*).as_bytes()) };
        }
        if upper.starts_with("LOGIN") {
            say!("{tag} OK [CAPABILITY IMAP4rev1 MOVE UIDPLUS IDLE] logged in\r\n");
        } else if upper.starts_with("CAPABILITY") {
            say!("* CAPABILITY IMAP4rev1 MOVE UIDPLUS IDLE\r\n{tag} OK done\r\n");
        } else if upper.starts_with("SELECT") || upper.starts_with("EXAMINE") {
            let (n, v, next) = {
                let s = state.lock().unwrap();
                let next = s.inbox.iter().map(|m| m.uid).max().unwrap_or(0) + 1;
                (s.inbox.len(), s.uidvalidity, next)
            };
            say!("* FLAGS (\\Seen \\Deleted)\r\n* {n} EXISTS\r\n");
            if fault == Fault::GarbageSelect {
                out.extend_from_slice(b"* 42 \x00\xff\xfe {garbage} [[[\r\n");
            }
            say!("* OK [UIDVALIDITY {v}] ok\r\n* OK [UIDNEXT {next}] ok\r\n");
            say!("{tag} OK [READ-WRITE] selected\r\n");
        } else if upper.starts_with("UID SEARCH") {
            let uids = state
                .lock()
                .unwrap()
                .inbox
                .iter()
                .map(|m| m.uid)
                .collect::<Vec<_>>();
            say!("* SEARCH");
            for u in &uids {
                say!(" {u}");
            }
            say!("\r\n");
            if fault == Fault::DropMidSearch {
                let _ = w.write_all(&out).await;
                return;
            }
            say!("{tag} OK search done\r\n");
        } else if upper.starts_with("UID FETCH") {
            let mut words = rest.splitn(3, ' ');
            let (_, _, set_and_items) = (words.next(), words.next(), words.next());
            let (set, items) = set_and_items
                .unwrap_or("")
                .split_once(' ')
                .unwrap_or(("", ""));
            let items = items.to_ascii_uppercase();
            let snapshot: Vec<(usize, Msg)> = {
                let s = state.lock().unwrap();
                let have: Vec<u32> = s.inbox.iter().map(|m| m.uid).collect();
                let wanted = in_set(set, &have);
                s.inbox
                    .iter()
                    .cloned()
                    .enumerate()
                    .filter(|(_, m)| wanted.contains(&m.uid))
                    .collect()
            };
            if !items.contains("BODY") {
                for (i, m) in &snapshot {
                    let size = match fault {
                        Fault::LyingSize(_) => 10,
                        _ => m.bytes.len(),
                    };
                    say!("* {} FETCH (UID {} RFC822.SIZE {size})\r\n", i + 1, m.uid);
                }
                say!("{tag} OK fetch done\r\n");
            } else {
                if fault == Fault::StallFetch {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    return;
                }
                let partial: usize = items
                    .split_once("<0.")
                    .and_then(|(_, r)| r.split_once('>'))
                    .and_then(|(n, _)| n.parse().ok())
                    .unwrap_or(usize::MAX);
                for (i, m) in &snapshot {
                    if fault == Fault::FewerMessages && m.uid % 10 == 0 {
                        continue;
                    }
                    if let Fault::ByeMidFetch(after) = fault {
                        if bodies_sent >= after {
                            say!("* BYE server shutting down\r\n");
                            let _ = w.write_all(&out).await;
                            return;
                        }
                    }
                    if fault == Fault::HugeLiteral {
                        say!(
                            "* {} FETCH (UID {} RFC822.SIZE 3000000000 BODY[]<0> {{3000000000}}\r\n",
                            i + 1,
                            m.uid
                        );
                        let _ = w.write_all(&out).await;
                        // Trickle a little, then give up: the client must
                        // refuse at the announcement, not wait for 3 GB.
                        let _ = w.write_all(&[b'x'; 4096]).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    if fault == Fault::LyingSize(m.uid) {
                        let big = 50 * 1024 * 1024;
                        say!(
                            "* {} FETCH (UID {} RFC822.SIZE 10 BODY[]<0> {{{big}}}\r\n",
                            i + 1,
                            m.uid
                        );
                        if w.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                        let chunk = vec![b'A'; 64 * 1024];
                        let mut written = 0u64;
                        while written < big as u64 {
                            if w.write_all(&chunk).await.is_err() {
                                break;
                            }
                            written += chunk.len() as u64;
                            state.lock().unwrap().lie_written = written;
                        }
                        if written < big as u64 {
                            return;
                        }
                        say!(")\r\n");
                        continue;
                    }
                    let body = &m.bytes[..m.bytes.len().min(partial)];
                    say!(
                        "* {} FETCH (UID {} RFC822.SIZE {} INTERNALDATE \"08-Dec-2026 01:00:00 +0000\" BODY[]<0> {{{}}}\r\n",
                        i + 1,
                        m.uid,
                        m.bytes.len(),
                        body.len()
                    );
                    out.extend_from_slice(body);
                    say!(")\r\n");
                    bodies_sent += 1;
                }
                say!("{tag} OK fetch done\r\n");
            }
        } else if upper.starts_with("UID STORE") {
            let set = rest.split(' ').nth(2).unwrap_or("");
            let mut s = state.lock().unwrap();
            let have: Vec<u32> = s.inbox.iter().map(|m| m.uid).collect();
            let hit = in_set(set, &have);
            if upper.contains("\\SEEN") {
                for m in s.inbox.iter_mut().filter(|m| hit.contains(&m.uid)) {
                    m.seen = true;
                }
            }
            say!("{tag} OK store done\r\n");
        } else if upper.starts_with("UID MOVE") {
            if fault == Fault::NoOnMove {
                say!("{tag} NO [SERVERBUG] cannot move messages now\r\n");
            } else {
                let mut parts = rest.splitn(4, ' ');
                let (_, _, set, folder) = (parts.next(), parts.next(), parts.next(), parts.next());
                let folder = folder.unwrap_or("").trim_matches('"').to_string();
                let mut s = state.lock().unwrap();
                let have: Vec<u32> = s.inbox.iter().map(|m| m.uid).collect();
                let hit = in_set(set.unwrap_or(""), &have);
                s.inbox.retain(|m| !hit.contains(&m.uid));
                for u in hit {
                    s.moved.push((folder.clone(), u));
                }
                say!("{tag} OK move done\r\n");
            }
        } else if upper.starts_with("IDLE") {
            say!("+ idling\r\n");
            if w.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
            line.clear();
            match lines.read_line(&mut line).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            say!("{tag} OK idle done\r\n");
        } else if upper.starts_with("LOGOUT") {
            say!("* BYE logging out\r\n{tag} OK bye\r\n");
            let _ = w.write_all(&out).await;
            return;
        } else if upper.starts_with("NOOP")
            || upper.starts_with("CREATE")
            || upper.starts_with("UID EXPUNGE")
            || upper.starts_with("EXPUNGE")
        {
            say!("{tag} OK done\r\n");
        } else {
            say!("{tag} BAD unknown command\r\n");
        }
        if w.write_all(&out).await.is_err() {
            return;
        }
    }
}
