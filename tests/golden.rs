//! The project's own golden set: bounces written for bounced (the seed
//! documents' cases) in `tests/fixtures/`, with expectations in
//! `tests/fixtures/expected.tsv`. Runs everywhere, with or without the
//! shared corpus.

use bounced::classify::classify;
use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

#[test]
fn golden_fixtures_classify_as_expected() {
    let dir = fixtures();
    let table = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let mut failures = Vec::new();
    let mut checked = 0;
    for line in table.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let c: Vec<&str> = line.split('\t').collect();
        let [file, kind, address, reason, severity] = c[..] else {
            panic!("bad expectations line: {line}");
        };
        let raw = std::fs::read(dir.join(file)).expect("fixture");
        let v = classify(&raw).expect("fixture parses");
        checked += 1;
        if v.kind.as_str() != kind {
            failures.push(format!("{file}: kind {} != {kind}", v.kind));
        }
        if address == "-" {
            if !v.recipients.is_empty() {
                failures.push(format!(
                    "{file}: expected no recipient, got {:?}",
                    v.recipients
                ));
            }
            continue;
        }
        match v
            .recipients
            .iter()
            .find(|r| r.address.eq_ignore_ascii_case(address))
        {
            None => failures.push(format!("{file}: {address} not found in {:?}", v.recipients)),
            Some(r) => {
                if r.reason.as_str() != reason {
                    failures.push(format!(
                        "{file}: reason {} != {reason} ({:?})",
                        r.reason, r.evidence
                    ));
                }
                if r.severity.as_str() != severity {
                    failures.push(format!(
                        "{file}: severity {} != {severity}",
                        r.severity.as_str()
                    ));
                }
                if r.evidence.is_empty() {
                    failures.push(format!("{file}: no evidence"));
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} fixtures");
    assert!(
        failures.is_empty(),
        "golden failures:\n{}",
        failures.join("\n")
    );
}

/// Every verdict explains itself.
#[test]
fn verdicts_carry_evidence() {
    for e in std::fs::read_dir(fixtures()).expect("fixtures").flatten() {
        if e.path().extension().is_some_and(|x| x == "eml") {
            let v = classify(&std::fs::read(e.path()).expect("read")).expect("parse");
            assert!(
                !v.evidence.is_empty() || !v.recipients.is_empty(),
                "{:?}",
                e.path()
            );
        }
    }
}
