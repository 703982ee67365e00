//! Stable-Rust fuzzing: proptest mutates real bounces (the golden fixtures,
//! and the shared corpus when present) and random bytes, and `classify()`
//! must neither panic nor take long. `MUTATION_CASES` sets the number of
//! cases (default 256, so the suite stays quick); `scripts/fuzz.sh` raises it.

use bounced::classify::classify;
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

static SEEDS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = Vec::new();
    for dir in [
        root.join("tests/fixtures"),
        root.join("../shared/corpus/sisimai/eml"),
    ] {
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                if e.path().extension().is_some_and(|x| x == "eml") {
                    if let Ok(b) = std::fs::read(e.path()) {
                        seeds.push(b);
                    }
                }
            }
        }
    }
    seeds
});

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..16),
                Just(b"\r\n\r\n".to_vec()),
                Just(b"\x1b$B".to_vec()),
                Just(b"Content-Type: multipart/report; boundary=\"x\"\n".to_vec()),
                Just(b"\n--x\nContent-Type: message/delivery-status\n\n".to_vec()),
                Just(b"Final-Recipient: rfc822; <@>\n".to_vec()),
                Just("ユーザー不明 \u{1F600} é".as_bytes().to_vec()),
            ]
        )
            .prop_map(|(i, v)| Mutation::Insert(i, v)),
        (any::<usize>(), 0usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0usize..4096).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        let len = b.len().max(1);
        match m {
            Mutation::Flip(i, x) => {
                if let Some(c) = b.get_mut(i % len) {
                    *c ^= x;
                }
            }
            Mutation::Insert(i, v) => {
                let at = (i % len).min(b.len());
                b.splice(at..at, v.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let at = (i % len).min(b.len());
                let end = (at + n).min(b.len());
                b.drain(at..end);
            }
            Mutation::Truncate(i) => b.truncate(i % len),
            Mutation::Duplicate(i, n) => {
                let at = (i % len).min(b.len());
                let end = (at + n).min(b.len());
                let chunk: Vec<u8> = b.get(at..end).unwrap_or(&[]).to_vec();
                b.splice(end..end, chunk);
            }
        }
    }
    b
}

fn cases() -> u32 {
    std::env::var("MUTATION_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn check(input: &[u8]) {
    let t = Instant::now();
    let _ = classify(input);
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "classify took {:?} on {} bytes",
        t.elapsed(),
        input.len()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_bounces_never_panic(seed in any::<prop::sample::Index>(), muts in proptest::collection::vec(mutation(), 1..8)) {
        let seeds = &*SEEDS;
        prop_assume!(!seeds.is_empty());
        let base = seeds[seed.index(seeds.len())].clone();
        check(&apply(base, &muts));
    }

    #[test]
    fn random_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check(&b);
    }

    #[test]
    fn random_headers_never_panic(s in "([A-Za-z-]{1,12}: [ -~\\PC]{0,60}\r?\n){1,8}(\r?\n[ -~\\PC\n]{0,400})?") {
        check(s.as_bytes());
    }
}

/// A large, pathological input stays within the time bound.
#[test]
fn huge_input_is_bounded() {
    let mut b = b"From: MAILER-DAEMON@x.test\nSubject: Undelivered Mail\n\n".to_vec();
    for _ in 0..200_000 {
        b.extend_from_slice(b"<a@b.test>: 550 5.1.1 user unknown (in reply to RCPT TO command)\n");
    }
    check(&b);
}

/// A DSN naming a hundred thousand recipients is cut at the cap, quickly
/// (recipient de-duplication must not be quadratic).
#[test]
fn many_dsn_recipients_are_capped() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mx.test\r\nSubject: Undelivered Mail\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
         --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.test\r\n",
    );
    for i in 0..100_000 {
        raw.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; u{i}@example.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
    }
    raw.push_str("\r\n--B--\r\n");
    let t = Instant::now();
    let v = classify(raw.as_bytes()).expect("parses");
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(v.recipients.len(), bounced::classify::MAX_RECIPIENTS);
}
