//! Fuzz target: `classify()` must never panic and must stay fast, whatever
//! the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = bounced::classify::classify(data) {
        // Touch every field so that lazily built values are exercised.
        for r in &v.recipients {
            let _ = (r.address.len(), r.reason.as_str(), r.severity.as_str());
        }
    }
});
