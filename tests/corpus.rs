//! The Sisimai corpus test: classify every labelled mail in
//! `../shared/corpus/sisimai`, print scores, a confusion table and the
//! misses, and fail below the targets of issue 4.
//!
//! Two levels are checked, and the suite fails below either. The
//! **targets** are issue 4's. The **floors** are what the classifier
//! measured when they were last raised, rounded down: falling below one is
//! a regression even where the target is still met.
//!
//! The corpus lives outside the repository; where it is absent the test
//! says so and passes (the golden set in `tests/golden.rs` still runs).
//! `CORPUS_DIR` overrides the location; `CORPUS_VERBOSE=1` prints every
//! recipient; `CORPUS_NO_FAIL=1` prints the scores without enforcing anything.
//!
//! Scored per file: a file that is an mbox of several messages is split
//! (as `bounced classify` does) and their recipients pooled.

use bounced::classify::{classify, Severity};
use bounced::parse::split_mbox;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A level for the four scores: found, reason, hard/soft, remove precision.
struct Level {
    name: &'static str,
    found: f64,
    reason: f64,
    hard_soft: f64,
    precision: f64,
}

/// The targets of issue 4.
const TARGETS: Level = Level {
    name: "issue 4 target",
    found: 0.995,
    reason: 0.98,
    hard_soft: 0.995,
    precision: 1.0,
};

/// The regression floors: the scores measured on 2026-11-23, session 2
/// (found 1.0000, reason 0.9831, hard/soft 0.9952, precision 1.0000 =
/// 127/127), rounded down. Raise them as the classifier improves; never
/// lower them.
const FLOORS: Level = Level {
    name: "regression floor",
    found: 0.997,
    reason: 0.983,
    hard_soft: 0.995,
    precision: 1.0,
};

/// The scores that fall short of a level, in words.
fn shortfalls(level: &Level, scores: [f64; 4]) -> Vec<String> {
    let [found, reason, hard_soft, precision] = scores;
    [
        ("found", found, level.found),
        ("reason", reason, level.reason),
        ("hard/soft", hard_soft, level.hard_soft),
        ("remove precision", precision, level.precision),
    ]
    .iter()
    .filter(|(_, got, min)| got < min)
    .map(|(what, got, min)| format!("{what} {got:.4} < {min} ({})", level.name))
    .collect()
}

struct Expected {
    file: String,
    names: Vec<String>,
    reason: String,
    hard: bool,
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = match std::env::var_os("CORPUS_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/sisimai"),
    };
    dir.join("expected.tsv").exists().then_some(dir)
}

fn load(dir: &std::path::Path) -> Vec<Expected> {
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("read expected.tsv");
    let mut out = Vec::new();
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        if c.len() < 9 {
            continue;
        }
        let mut names = vec![c[2].to_lowercase()];
        if !c[3].is_empty() {
            names.push(c[3].to_lowercase());
        }
        names.extend(
            c[4].split(',')
                .filter(|s| !s.is_empty())
                .map(|s| s.to_lowercase()),
        );
        out.push(Expected {
            file: c[0].to_string(),
            names,
            reason: c[7].to_string(),
            hard: c[8] == "1",
        });
    }
    out
}

#[test]
fn sisimai_corpus_scores_hold() {
    let Some(dir) = corpus_dir() else {
        println!("corpus: ../shared/corpus/sisimai not found, skipped");
        return;
    };
    let verbose = std::env::var_os("CORPUS_VERBOSE").is_some();
    let expected = load(&dir);
    let mut by_file: BTreeMap<&str, Vec<&Expected>> = BTreeMap::new();
    for e in &expected {
        by_file.entry(e.file.as_str()).or_default().push(e);
    }

    let (mut found, mut reason_ok, mut hs_ok) = (0usize, 0usize, 0usize);
    let (mut hard_called, mut hard_right) = (0usize, 0usize);
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();

    for (file, rows) in &by_file {
        let raw = std::fs::read(dir.join("eml").join(file)).expect("read eml");
        // A file may be an mbox of several messages, as `bounced classify`
        // reads it.
        let recips: Vec<_> = split_mbox(&raw)
            .into_iter()
            .filter_map(|m| classify(m).ok())
            .flat_map(|v| v.recipients)
            .collect();
        let mut used = vec![false; recips.len()];
        for row in rows {
            let hit = recips.iter().enumerate().find(|(i, r)| {
                !used[*i]
                    && (row.names.contains(&r.address.to_lowercase())
                        || r.alias
                            .as_ref()
                            .is_some_and(|a| row.names.contains(&a.to_lowercase())))
            });
            let got_reason;
            let got_hard;
            match hit {
                Some((i, r)) => {
                    used[i] = true;
                    found += 1;
                    got_reason = r.reason.to_string();
                    got_hard = r.severity == Severity::Hard;
                    if got_hard {
                        hard_called += 1;
                        if row.hard {
                            hard_right += 1;
                        }
                    }
                    if verbose {
                        println!("{file}\t{}\t{}\t{:?}", r.address, r.reason, r.evidence);
                    }
                }
                None => {
                    got_reason = "(not found)".to_string();
                    got_hard = false;
                }
            }
            if got_reason == row.reason {
                reason_ok += 1;
            } else {
                misses.push(format!(
                    "{file}: {} expected {} got {got_reason}",
                    row.names[0], row.reason
                ));
            }
            if got_hard == row.hard {
                hs_ok += 1;
            } else {
                misses.push(format!(
                    "{file}: {} hard expected {} got {got_hard}",
                    row.names[0], row.hard
                ));
            }
            *confusion
                .entry((row.reason.clone(), got_reason))
                .or_default() += 1;
        }
        // Hard verdicts on addresses the expectations do not list are
        // removals of unknown merit: they count against precision.
        for (i, r) in recips.iter().enumerate() {
            if !used[i] && r.severity == Severity::Hard {
                hard_called += 1;
                misses.push(format!("{file}: extra hard recipient {}", r.address));
            }
        }
    }

    // Negatives: nothing may be reported.
    let mut negatives_bad = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir.join("eml-negatives")) {
        for e in rd.flatten() {
            let raw = std::fs::read(e.path()).expect("read negative");
            if let Ok(v) = classify(&raw) {
                if !v.recipients.is_empty() {
                    negatives_bad.push(format!("{}: {:?}", e.path().display(), v.kind));
                }
            }
        }
    }

    let n = expected.len() as f64;
    let found_r = found as f64 / n;
    let reason_r = reason_ok as f64 / n;
    let hs_r = hs_ok as f64 / n;
    let prec = if hard_called == 0 {
        1.0
    } else {
        hard_right as f64 / hard_called as f64
    };
    println!("confusion (expected -> got), mismatches only:");
    for ((e, g), c) in &confusion {
        if e != g {
            println!("  {e:>16} -> {g:<16} {c}");
        }
    }
    println!("misses:");
    for m in &misses {
        println!("  {m}");
    }
    println!("negatives reporting recipients: {negatives_bad:?}");
    println!(
        "corpus: {} recipients in {} mails: found {:.4} reason {:.4} hard/soft {:.4} remove precision {:.4} ({}/{}) negatives ok {}",
        expected.len(),
        by_file.len(),
        found_r,
        reason_r,
        hs_r,
        prec,
        hard_right,
        hard_called,
        negatives_bad.is_empty()
    );
    let scores = [found_r, reason_r, hs_r, prec];
    let short_of_targets = shortfalls(&TARGETS, scores);
    if short_of_targets.is_empty() {
        println!("issue 4 targets: all met");
    } else {
        println!("issue 4 targets NOT met: {}", short_of_targets.join("; "));
    }
    if std::env::var_os("CORPUS_NO_FAIL").is_some() {
        return;
    }
    assert!(negatives_bad.is_empty(), "negatives: {negatives_bad:?}");
    let mut short = short_of_targets;
    short.extend(shortfalls(&FLOORS, scores));
    assert!(short.is_empty(), "{}", short.join("; "));
}

/// Every file the corpus holds (labelled, unlabelled, negatives) must
/// classify without panicking, and quickly.
#[test]
fn corpus_never_panics() {
    let Some(dir) = corpus_dir() else {
        println!("corpus: not found, skipped");
        return;
    };
    for sub in ["eml", "eml-unlabelled", "eml-negatives"] {
        let Ok(rd) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for e in rd.flatten() {
            let raw = std::fs::read(e.path()).expect("read");
            let t = std::time::Instant::now();
            let _ = classify(&raw);
            assert!(
                t.elapsed().as_secs() < 2,
                "{} took {:?}",
                e.path().display(),
                t.elapsed()
            );
        }
    }
}
