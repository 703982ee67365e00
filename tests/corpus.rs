//! The Sisimai corpus test: classify every labelled mail in
//! `../shared/corpus/sisimai`, print scores for a **tuning half** and a
//! **check half** of the corpus, a confusion table, the misses and the
//! **rule ledger** (how often each table row and ladder step decided a
//! recipient, and how often wrongly, per MTA family).
//!
//! The split is by a hash of the file name (SHA-256), stratified by engine
//! so both halves hold most MTA families, and near-duplicate mails
//! (`same_unit_as` in `emails.tsv`) stay on one side. Rules are written
//! from the tuning half only; the check half is the generalisation figure.
//!
//! Two levels are checked over the whole corpus, and the suite fails below
//! either: the **targets** (issue 10's, which judges unseen mail: remove
//! precision 1.0, hard/soft 0.97, reason 0.90) and the **floors** (what
//! the classifier measured when they were last raised, rounded down).
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

/// The targets of issue 10 (which sets them for unseen mail).
const TARGETS: Level = Level {
    name: "issue 10 target",
    found: 0.99,
    reason: 0.90,
    hard_soft: 0.97,
    precision: 1.0,
};

/// The regression floors: the whole-corpus scores measured on 2026-12-08
/// with the data-driven ladder (found 1.0000, reason 0.9420, hard/soft
/// 0.9734, precision 1.0000 = 118/118; tuning half reason 0.9275, check
/// half 0.9565), rounded down. Raise them as the classifier improves on
/// both halves; never lower them.
const FLOORS: Level = Level {
    name: "regression floor",
    found: 0.997,
    reason: 0.94,
    hard_soft: 0.97,
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

/// Which half of the corpus a file is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Half {
    Tune,
    Check,
}

fn sha_hex(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tuning/check split: per engine, units (a file and its
/// near-duplicates) ranked by SHA-256 of the unit's first file name go to
/// alternate halves, starting on a side chosen by the engine name's hash,
/// so that single-file engines split too.
fn split(dir: &std::path::Path) -> BTreeMap<String, Half> {
    let tsv = std::fs::read_to_string(dir.join("emails.tsv")).unwrap_or_default();
    let mut unit_of: BTreeMap<String, String> = BTreeMap::new();
    let mut engine_units: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in tsv.lines().skip(1) {
        let c: Vec<&str> = line.split('\t').collect();
        let (Some(file), Some(engine)) = (c.first(), c.get(1)) else {
            continue;
        };
        let mut names: Vec<&str> = vec![file];
        if let Some(same) = c.get(5) {
            names.extend(same.split(',').filter(|s| !s.is_empty()));
        }
        let unit = names
            .iter()
            .min()
            .map(|s| s.to_string())
            .unwrap_or_default();
        unit_of.insert(file.to_string(), unit.clone());
        engine_units
            .entry(engine.to_string())
            .or_default()
            .insert(unit);
    }
    let mut half_of_unit: BTreeMap<String, Half> = BTreeMap::new();
    for (engine, units) in &engine_units {
        let offset = usize::from(u8::from_str_radix(&sha_hex(engine)[..2], 16).unwrap_or(0) & 1);
        let mut ranked: Vec<&String> = units.iter().collect();
        ranked.sort_by_key(|u| sha_hex(u));
        for (i, u) in ranked.into_iter().enumerate() {
            let h = if (i + offset) % 2 == 0 {
                Half::Tune
            } else {
                Half::Check
            };
            half_of_unit.insert(u.clone(), h);
        }
    }
    unit_of
        .into_iter()
        .map(|(f, u)| {
            let h = half_of_unit.get(&u).copied().unwrap_or(Half::Tune);
            (f, h)
        })
        .collect()
}

/// Counts for one half (or the whole).
#[derive(Default)]
struct Tally {
    n: usize,
    found: usize,
    reason: usize,
    hard_soft: usize,
    hard_called: usize,
    hard_right: usize,
}

impl Tally {
    fn scores(&self) -> [f64; 4] {
        let n = self.n.max(1) as f64;
        [
            self.found as f64 / n,
            self.reason as f64 / n,
            self.hard_soft as f64 / n,
            if self.hard_called == 0 {
                1.0
            } else {
                self.hard_right as f64 / self.hard_called as f64
            },
        ]
    }

    fn line(&self, name: &str) -> String {
        let [f, r, h, p] = self.scores();
        format!(
            "{name}: {} recipients: found {f:.4} reason {r:.4} hard/soft {h:.4} remove precision {p:.4} ({}/{})",
            self.n, self.hard_right, self.hard_called
        )
    }
}

/// One ledger row: how often a rule decided, and how often wrongly, per
/// MTA family.
#[derive(Default)]
struct LedgerRow {
    fired: BTreeMap<String, usize>,
    wrong: BTreeMap<String, usize>,
}

#[test]
fn sisimai_corpus_scores_hold() {
    let Some(dir) = corpus_dir() else {
        println!("corpus: ../shared/corpus/sisimai not found, skipped");
        return;
    };
    let verbose = std::env::var_os("CORPUS_VERBOSE").is_some();
    let expected = load(&dir);
    let halves = split(&dir);
    let mut by_file: BTreeMap<&str, Vec<&Expected>> = BTreeMap::new();
    for e in &expected {
        by_file.entry(e.file.as_str()).or_default().push(e);
    }

    let mut all = Tally::default();
    let mut per_half: BTreeMap<Half, Tally> = BTreeMap::new();
    let mut confusion: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut misses: Vec<String> = Vec::new();
    let mut ledger: BTreeMap<String, LedgerRow> = BTreeMap::new();

    for (file, rows) in &by_file {
        let half = halves.get(*file).copied().unwrap_or(Half::Tune);
        let raw = std::fs::read(dir.join("eml").join(file)).expect("read eml");
        // A file may be an mbox of several messages, as `bounced classify`
        // reads it.
        let mut recips = Vec::new();
        for v in split_mbox(&raw)
            .into_iter()
            .filter_map(|m| classify(m).ok())
        {
            let family = v
                .evidence
                .iter()
                .find_map(|e| e.strip_prefix("mta "))
                .and_then(|e| e.split_whitespace().next())
                .unwrap_or("unknown")
                .to_string();
            for r in v.recipients {
                recips.push((r, family.clone()));
            }
        }
        let mut used = vec![false; recips.len()];
        for row in rows {
            let hit = recips.iter().enumerate().find(|(i, (r, _))| {
                !used[*i]
                    && (row.names.contains(&r.address.to_lowercase())
                        || r.alias
                            .as_ref()
                            .is_some_and(|a| row.names.contains(&a.to_lowercase())))
            });
            let mut t = Tally {
                n: 1,
                ..Tally::default()
            };
            let got_reason;
            let got_hard;
            match hit {
                Some((i, (r, family))) => {
                    used[i] = true;
                    t.found = 1;
                    got_reason = r.reason.to_string();
                    got_hard = r.severity == Severity::Hard;
                    if got_hard {
                        t.hard_called = 1;
                        t.hard_right = usize::from(row.hard);
                    }
                    let wrong = got_reason != row.reason;
                    for rule in r.evidence.iter().filter_map(|e| e.strip_prefix("rule ")) {
                        let id = rule.split_whitespace().next().unwrap_or(rule).to_string();
                        let l = ledger.entry(id).or_default();
                        *l.fired.entry(family.clone()).or_default() += 1;
                        if wrong {
                            *l.wrong.entry(family.clone()).or_default() += 1;
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
                t.reason = 1;
            } else {
                misses.push(format!(
                    "{file} [{half:?}]: {} expected {} got {got_reason}",
                    row.names[0], row.reason
                ));
            }
            if got_hard == row.hard {
                t.hard_soft = 1;
            } else {
                misses.push(format!(
                    "{file} [{half:?}]: {} hard expected {} got {got_hard}",
                    row.names[0], row.hard
                ));
            }
            *confusion
                .entry((row.reason.clone(), got_reason))
                .or_default() += 1;
            for tally in [&mut all, per_half.entry(half).or_default()] {
                tally.n += t.n;
                tally.found += t.found;
                tally.reason += t.reason;
                tally.hard_soft += t.hard_soft;
                tally.hard_called += t.hard_called;
                tally.hard_right += t.hard_right;
            }
        }
        // Hard verdicts on addresses the expectations do not list are
        // removals of unknown merit: they count against precision.
        for (i, (r, _)) in recips.iter().enumerate() {
            if !used[i] && r.severity == Severity::Hard {
                all.hard_called += 1;
                per_half.entry(half).or_default().hard_called += 1;
                misses.push(format!(
                    "{file} [{half:?}]: extra hard recipient {}",
                    r.address
                ));
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
    println!("rule ledger (rule: fired/wrong, per MTA family), worst first:");
    let mut rows: Vec<(&String, usize, usize, &LedgerRow)> = ledger
        .iter()
        .map(|(id, l)| (id, l.fired.values().sum(), l.wrong.values().sum(), l))
        .collect();
    rows.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)).then(a.0.cmp(b.0)));
    for (id, fired, wrong, l) in &rows {
        let families: Vec<String> = l
            .fired
            .iter()
            .map(|(f, n)| format!("{f} {n}/{}", l.wrong.get(f).copied().unwrap_or(0)))
            .collect();
        let single =
            if l.fired.len() == 1 && !id.starts_with(['p', 's', 'c', 't', 'r', 'e', 'a', 'u']) {
                "  (one family)"
            } else {
                ""
            };
        println!(
            "  {id:<22} {fired:>4}/{wrong:<3} {}{single}",
            families.join(", ")
        );
    }
    println!("negatives reporting recipients: {negatives_bad:?}");
    for (h, t) in &per_half {
        println!("corpus {}", t.line(&format!("{h:?} half")));
    }
    println!(
        "corpus {} in {} mails; negatives ok {}",
        all.line("all"),
        by_file.len(),
        negatives_bad.is_empty()
    );
    let scores = all.scores();
    let short_of_targets = shortfalls(&TARGETS, scores);
    if short_of_targets.is_empty() {
        println!("issue 10 targets (whole corpus): all met");
    } else {
        println!("issue 10 targets NOT met: {}", short_of_targets.join("; "));
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
