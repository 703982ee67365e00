//! Fuzz target: the message path (`classify()`, then signed-bounce
//! verification of its recipients) must never panic and must stay fast,
//! whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::Once;

static HOOK: Once = Once::new();

/// libfuzzer-sys aborts on every panic, even one that is caught. mail-parser
/// 0.11 has a debug assertion (`parsers/message.rs`, "Invalid part ID") that
/// malformed nestings trip; `bounced::parse` contains it with
/// `catch_unwind`, and release builds do not have it. Let that one unwind to
/// our handler; any other panic still aborts and is reported.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let contained = info.location().is_some_and(|l| {
                l.file().contains("mail-parser") && l.file().ends_with("parsers/message.rs")
            });
            if !contained {
                previous(info);
                std::process::abort();
            }
        }));
    });
}

/// A verification config, so that the fuzzer also drives the signed-bounce
/// path the daemon runs on every message (token sources, HMAC checks).
fn verify_config() -> &'static bounced::config::VerifyConfig {
    static CONFIG: std::sync::OnceLock<bounced::config::VerifyConfig> = std::sync::OnceLock::new();
    CONFIG.get_or_init(|| {
        let key = bounced::verp::Key::new("k1", b"fuzzing secret, 32 bytes long!!!")
            .unwrap_or_else(|_| unreachable!("a valid key"));
        bounced::config::VerifyConfig {
            require: true,
            return_path: Some("bounces@example.org".into()),
            max_age_days: 60,
            keyring: bounced::verp::Keyring::new(vec![key])
                .unwrap_or_else(|_| unreachable!("one key")),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    install_hook();
    // The whole message path the daemon takes: classify, then verify every
    // recipient against the message's token sources.
    if let Ok(v) = bounced::classify::classify(data) {
        // Touch every field so that lazily built values are exercised.
        for r in &v.recipients {
            let _ = (r.address.len(), r.reason.as_str(), r.severity.as_str());
        }
        let checks = bounced::trust::check(Some(verify_config()), &v, 1_800_000_000);
        assert!(checks.len() == v.recipients.len() || v.recipients.is_empty());
    }
});
