//! Fuzz target: `classify()` must never panic and must stay fast, whatever
//! the bytes.
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

fuzz_target!(|data: &[u8]| {
    install_hook();
    if let Ok(v) = bounced::classify::classify(data) {
        // Touch every field so that lazily built values are exercised.
        for r in &v.recipients {
            let _ = (r.address.len(), r.reason.as_str(), r.severity.as_str());
        }
    }
});
