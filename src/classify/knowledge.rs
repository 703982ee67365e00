//! The classifier's knowledge, as data: tables embedded in the binary from
//! `src/classify/data/`, each row with an id and a source, compiled once.
//!
//! - `status.tsv`: enhanced status codes (RFC 3463) → the reason each names;
//! - `phrases.tsv`: phrase families (global, or scoped to an MTA family),
//!   run as one [`Automaton`] over each recipient's own text;
//! - `vetoes.tsv`: the conflict table of the decision ladder
//!   ([`super::ladder`]): which claim beats which, and when;
//! - `mta.tsv`: MTA fingerprints ([`super::mta`]).
//!
//! A table that does not load is a bug in the binary, not in the input:
//! the unit tests below load every table, so a broken row fails the build's
//! tests rather than a message at run time. At run time a broken table is
//! treated as empty (never a panic).

use super::automaton::Automaton;
use super::Reason;
use std::str::FromStr;
use std::sync::LazyLock;

/// Where a phrase row applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Whatever wrote the bounce.
    Global,
    /// Only in bounces written by this MTA family (see [`super::mta`]).
    Mta(String),
    /// A wording only this program writes, and only after looking the
    /// mailbox up: a fact wherever it is quoted (a relay passing on the
    /// Domino directory's answer still passes on a lookup).
    Fact(String),
    /// Not a reason of its own: the row stops `reason` from being read
    /// from phrases (Sisimai's "isnot" lists).
    IsNot(Reason),
}

/// One phrase row.
#[derive(Debug, Clone)]
pub struct PhraseRow {
    /// Stable id, quoted in evidence and the rule ledger.
    pub id: String,
    /// The reason the wording means.
    pub reason: Reason,
    /// Where the row applies.
    pub scope: Scope,
    /// The template (see [`super::automaton`]).
    pub pattern: String,
}

/// One status-code row.
#[derive(Debug, Clone)]
pub struct StatusRow {
    /// `c.s.d`.
    pub code: String,
    /// The reason the code names.
    pub reason: Reason,
    /// The code alone says the address cannot exist.
    pub anchor: bool,
}

/// When a veto applies (see `vetoes.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VetoWhen {
    /// Whenever both claims are present.
    Always,
    /// Only when the failure came after DATA.
    StageData,
    /// Only when the stage is not RCPT TO (after DATA, or not stated).
    NotStageRcpt,
    /// Only when the stage is stated and is not RCPT TO.
    StagedNotRcpt,
    /// Only when the loser rests on a phrase alone and the stage is not
    /// RCPT TO.
    LoserNotAnchored,
    /// The winner is named in the recipient's own block of the report
    /// (beyond its diagnostic line).
    OwnReport,
}

impl FromStr for VetoWhen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "always" => VetoWhen::Always,
            "stage=data" => VetoWhen::StageData,
            "stage!=rcpt" => VetoWhen::NotStageRcpt,
            "staged,stage!=rcpt" => VetoWhen::StagedNotRcpt,
            "loser-not-anchored" => VetoWhen::LoserNotAnchored,
            "own-report" => VetoWhen::OwnReport,
            other => return Err(format!("unknown veto condition {other:?}")),
        })
    }
}

/// One row of the veto table: `winner` beats `loser` when `when` holds.
#[derive(Debug, Clone)]
pub struct Veto {
    /// Stable id.
    pub id: String,
    /// The reason that wins.
    pub winner: Reason,
    /// The reason that gives way.
    pub loser: Reason,
    /// The condition.
    pub when: VetoWhen,
}

/// One fingerprint row (see [`super::mta`]).
#[derive(Debug, Clone)]
pub struct Fingerprint {
    /// The MTA family the row points at.
    pub family: String,
    /// Which part of the message is tested.
    pub field: String,
    /// Literal (case-insensitive) or `re:` regex.
    pub pattern: String,
    /// The compiled regex, for `re:` rows.
    pub regex: Option<regex::Regex>,
}

/// Every table, loaded and compiled.
pub struct Knowledge {
    /// Phrase rows, in file order.
    pub phrases: Vec<PhraseRow>,
    /// The automaton over `phrases` (row i = pattern i).
    pub automaton: Option<Automaton>,
    /// Status rows.
    pub status: Vec<StatusRow>,
    /// The veto table, in file order.
    pub vetoes: Vec<Veto>,
    /// Fingerprints, in file order.
    pub fingerprints: Vec<Fingerprint>,
}

/// Data rows of a TSV table: comments and the header line skipped.
fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .skip(1)
        .map(|l| l.split('\t').collect())
}

fn reason(s: &str) -> Result<Reason, String> {
    Reason::from_str(s).map_err(|e| e.to_string())
}

/// Load every table; the error names the table and the row.
pub fn load() -> Result<Knowledge, String> {
    let mut phrases = Vec::new();
    for r in rows(include_str!("data/phrases.tsv")) {
        let [id, reason_s, scope, _stage, pattern, ..] = r[..] else {
            return Err(format!("phrases.tsv: short row {r:?}"));
        };
        let scope = if scope == "global" {
            Scope::Global
        } else if let Some(f) = scope.strip_prefix("mta:") {
            Scope::Mta(f.to_string())
        } else if let Some(f) = scope.strip_prefix("fact:") {
            Scope::Fact(f.to_string())
        } else if let Some(x) = scope.strip_prefix("isnot:") {
            Scope::IsNot(reason(x).map_err(|e| format!("phrases.tsv {id}: {e}"))?)
        } else {
            return Err(format!("phrases.tsv {id}: unknown scope {scope:?}"));
        };
        phrases.push(PhraseRow {
            id: id.to_string(),
            reason: reason(reason_s).map_err(|e| format!("phrases.tsv {id}: {e}"))?,
            scope,
            pattern: pattern.to_string(),
        });
    }
    let patterns: Vec<&str> = phrases.iter().map(|p| p.pattern.as_str()).collect();
    let automaton = Automaton::new(&patterns).map_err(|e| format!("phrases.tsv: {e}"))?;

    let mut status = Vec::new();
    for r in rows(include_str!("data/status.tsv")) {
        let [code, reason_s, anchor, ..] = r[..] else {
            return Err(format!("status.tsv: short row {r:?}"));
        };
        status.push(StatusRow {
            code: code.to_string(),
            reason: reason(reason_s).map_err(|e| format!("status.tsv {code}: {e}"))?,
            anchor: anchor == "1",
        });
    }

    let mut vetoes = Vec::new();
    for r in rows(include_str!("data/vetoes.tsv")) {
        let [id, winner, loser, when, ..] = r[..] else {
            return Err(format!("vetoes.tsv: short row {r:?}"));
        };
        vetoes.push(Veto {
            id: id.to_string(),
            winner: reason(winner).map_err(|e| format!("vetoes.tsv {id}: {e}"))?,
            loser: reason(loser).map_err(|e| format!("vetoes.tsv {id}: {e}"))?,
            when: when.parse().map_err(|e| format!("vetoes.tsv {id}: {e}"))?,
        });
    }

    let mut fingerprints = Vec::new();
    for r in rows(include_str!("data/mta.tsv")) {
        let [family, field, pattern, ..] = r[..] else {
            return Err(format!("mta.tsv: short row {r:?}"));
        };
        let regex = match pattern.strip_prefix("re:") {
            Some(re) => Some(
                regex::RegexBuilder::new(re)
                    .case_insensitive(true)
                    .multi_line(true)
                    .build()
                    .map_err(|e| format!("mta.tsv {family} {field}: {e}"))?,
            ),
            None => None,
        };
        fingerprints.push(Fingerprint {
            family: family.to_string(),
            field: field.to_ascii_lowercase(),
            pattern: pattern.to_ascii_lowercase(),
            regex,
        });
    }
    Ok(Knowledge {
        phrases,
        automaton: Some(automaton),
        status,
        vetoes,
        fingerprints,
    })
}

/// The tables, loaded on first use. A table that fails to load (a bug the
/// unit tests catch) leaves the classifier with empty knowledge rather than
/// a panic on a message.
pub static KNOWLEDGE: LazyLock<Knowledge> = LazyLock::new(|| {
    load().unwrap_or_else(|_| Knowledge {
        phrases: Vec::new(),
        automaton: None,
        status: Vec::new(),
        vetoes: Vec::new(),
        fingerprints: Vec::new(),
    })
});

impl Knowledge {
    /// The status row for `code` (`c.s.d`), if the table has one.
    pub fn status(&self, code: &str) -> Option<&StatusRow> {
        self.status.iter().find(|r| r.code == code)
    }
}

/// The phrase rows that match one text, by reason.
#[derive(Debug, Clone, Default)]
pub struct PhraseHits {
    /// `(reason, row id)` for every matched global or in-scope row, in
    /// row order; one entry per reason (its first row).
    pub reasons: Vec<(Reason, String)>,
    /// Reasons an in-scope MTA family row names.
    pub scoped: Vec<(Reason, String)>,
    /// Reasons an `isnot` row forbids.
    pub forbidden: Vec<Reason>,
}

impl PhraseHits {
    /// Whether some phrase names `r` (and no `isnot` row forbids it).
    pub fn has(&self, r: Reason) -> bool {
        self.reasons.iter().any(|(x, _)| *x == r) && !self.forbidden.contains(&r)
    }

    /// The id of the row that named `r`.
    pub fn id(&self, r: Reason) -> Option<&str> {
        self.scoped
            .iter()
            .chain(self.reasons.iter())
            .find(|(x, _)| *x == r)
            .map(|(_, id)| id.as_str())
    }
}

/// Match every phrase row against `text`; MTA-scoped rows count only for
/// `family`.
pub fn phrase_hits(text: &str, family: Option<&str>) -> PhraseHits {
    let k = &*KNOWLEDGE;
    let mut out = PhraseHits::default();
    let Some(automaton) = k.automaton.as_ref().filter(|_| !text.is_empty()) else {
        return out;
    };
    for i in automaton.matches(text).iter() {
        let Some(row) = k.phrases.get(i) else {
            continue;
        };
        match &row.scope {
            Scope::Global => {
                if !out.reasons.iter().any(|(r, _)| *r == row.reason) {
                    out.reasons.push((row.reason, row.id.clone()));
                }
            }
            Scope::Mta(f) => {
                if family == Some(f.as_str()) && !out.scoped.iter().any(|(r, _)| *r == row.reason) {
                    out.scoped.push((row.reason, row.id.clone()));
                }
            }
            Scope::Fact(_) => {
                if !out.scoped.iter().any(|(r, _)| *r == row.reason) {
                    out.scoped.push((row.reason, row.id.clone()));
                }
            }
            Scope::IsNot(r) => {
                if !out.forbidden.contains(r) {
                    out.forbidden.push(*r);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_loads() {
        let k = load().expect("tables load");
        assert!(k.phrases.len() > 1000);
        assert!(k.status.len() > 80);
        assert!(!k.vetoes.is_empty());
        assert!(k.fingerprints.len() > 100);
        let mut ids: Vec<&str> = k.phrases.iter().map(|p| p.id.as_str()).collect();
        ids.sort_unstable();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "phrase ids are unique");
    }

    #[test]
    fn phrases_find_their_reasons() {
        let h = phrase_hits(
            "550 5.1.1 <a@b.test>: Recipient address rejected: User unknown",
            None,
        );
        assert!(h.has(Reason::UserUnknown), "{h:?}");
        let h = phrase_hits("mailbox is full", None);
        assert!(h.has(Reason::MailboxFull), "{h:?}");
        assert_eq!(
            KNOWLEDGE.status("5.1.1").map(|r| r.reason),
            Some(Reason::UserUnknown)
        );
    }
}
