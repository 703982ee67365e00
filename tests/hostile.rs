//! Pathological messages, generated here: each must be classified without a
//! panic, within a time bound and a memory bound stated below. The bounds are
//! generous safety nets against quadratic blow-ups and unbounded buffers (the
//! real speed figures are in `scripts/bench-classify.sh`); they hold for a
//! debug build on a slow machine.
//!
//! Memory is measured with a counting global allocator: the peak of live heap
//! bytes while `classify` runs, above what was live before it.

use bounced::classify::classify;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Tests run on threads; the allocator's figures are process-wide, so the
/// measured sections take turns.
static MEASURE: Mutex<()> = Mutex::new(());

/// Time bound per message (debug build).
const TIME_BOUND: Duration = Duration::from_secs(20);

/// Classify `raw`; return (elapsed, peak extra heap bytes, recipients).
fn measure(name: &str, raw: &[u8], memory_factor: usize) -> (Duration, usize, usize) {
    let _turn = MEASURE.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let start = Instant::now();
    let verdict = classify(raw);
    let elapsed = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    let recipients = verdict.as_ref().map(|v| v.recipients.len()).unwrap_or(0);
    drop(verdict);
    // Memory bound: a fixed allowance plus a small multiple of the input.
    let bound = 64 * 1024 * 1024 + memory_factor * raw.len();
    eprintln!(
        "{name}: {} bytes in, {elapsed:?}, peak heap +{} KiB (bound {} KiB), {recipients} recipients",
        raw.len(),
        peak / 1024,
        bound / 1024
    );
    assert!(
        elapsed < TIME_BOUND,
        "{name}: took {elapsed:?} (bound {TIME_BOUND:?})"
    );
    assert!(
        peak < bound,
        "{name}: peak heap {peak} bytes over the bound {bound}"
    );
    (elapsed, peak, recipients)
}

const DSN_HEAD: &str = "From: MAILER-DAEMON@mx.example.net\r\nTo: bounces@example.org\r\n\
    Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
    Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
    --B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n\
    --B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n";

#[test]
fn deeply_nested_multiparts() {
    let depth = 5_000;
    let mut raw = String::from("From: MAILER-DAEMON@mx.example.net\r\nSubject: nest\r\nMIME-Version: 1.0\r\n");
    for i in 0..depth {
        raw.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    raw.push_str("Content-Type: text/plain\r\n\r\n550 5.1.1 user unknown\r\n");
    for i in (0..depth).rev() {
        raw.push_str(&format!("--b{i}--\r\n"));
    }
    measure("nested", raw.as_bytes(), 64);
}

#[test]
fn nested_returned_messages() {
    // A bounce of a bounce of a bounce …, each carrying the next as message/rfc822.
    let mut inner = String::from("From: a@example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\nhello\r\n");
    for i in 0..2_000 {
        inner = format!(
            "From: MAILER-DAEMON@mx{i}.example.net\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"r{i}\"\r\n\r\n\
             --r{i}\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--r{i}--\r\n"
        );
    }
    measure("returned-in-returned", inner.as_bytes(), 64);
}

#[test]
fn huge_header_and_many_header_fields() {
    let mut raw = String::from("From: MAILER-DAEMON@mx.example.net\r\nSubject: ");
    raw.push_str(&"x".repeat(8 * 1024 * 1024));
    raw.push_str("\r\n");
    for i in 0..100_000 {
        raw.push_str(&format!("X-Filler-{i}: {i}\r\n"));
    }
    raw.push_str("\r\nbody\r\n");
    measure("huge-headers", raw.as_bytes(), 32);
}

#[test]
fn a_hundred_thousand_recipients() {
    let mut raw = String::from(DSN_HEAD);
    for i in 0..100_000 {
        raw.push_str(&format!(
            "\r\nFinal-Recipient: rfc822; user{i}@example.com\r\nAction: failed\r\n\
             Status: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        ));
    }
    raw.push_str("\r\n--B--\r\n");
    let (_, _, recipients) = measure("100k-recipients", raw.as_bytes(), 32);
    assert!(recipients > 0, "a valid DSN with many recipients still reports some");
}

#[test]
fn very_long_lines_and_binary_junk() {
    let mut raw = String::from(DSN_HEAD);
    raw.push_str("\r\nFinal-Recipient: rfc822; user@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 ");
    raw.push_str(&"user unknown ".repeat(1024 * 1024));
    raw.push_str("\r\n\r\n--B--\r\n");
    measure("13MB-line", raw.as_bytes(), 32);

    // Random bytes with a header-looking start.
    let mut junk = b"From: MAILER-DAEMON@x\r\nContent-Type: multipart/report; boundary=\"\"\r\n\r\n".to_vec();
    let mut x: u32 = 0x1234_5678;
    for _ in 0..(8 * 1024 * 1024) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        junk.push((x >> 24) as u8);
    }
    measure("8MB-junk", &junk, 32);
}

#[test]
fn many_small_parts() {
    let mut raw = String::from(
        "From: MAILER-DAEMON@mx.example.net\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"p\"\r\n\r\n",
    );
    for i in 0..100_000 {
        raw.push_str(&format!(
            "--p\r\nContent-Type: text/plain\r\n\r\n550 user{i}@example.com user unknown\r\n"
        ));
    }
    raw.push_str("--p--\r\n");
    measure("100k-parts", raw.as_bytes(), 64);
}
