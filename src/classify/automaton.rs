//! One compiled automaton for every phrase row of the knowledge tables.
//!
//! A phrase row's pattern is a small template, not a regular expression, so
//! that thousands of rows compile into a single Aho-Corasick automaton that
//! reads each recipient's text once:
//!
//! - plain text matches itself, ASCII case-insensitively (Japanese and other
//!   non-ASCII text matches byte for byte);
//! - `{a|b|}` is a choice (an empty branch makes the group optional); groups
//!   nest;
//! - ` * ` is a gap of anything up to [`MAX_GAP`] bytes, for words that must
//!   appear in this order (Sisimai's "aligned" phrase tuples);
//! - `~` is exactly one token (a run of non-space bytes), for the address
//!   or host name inside a sentence ("user ~ does not exist");
//! - `\b` at the start or end of a piece asks for a word boundary there;
//! - a pattern that starts with `re:` is a regular expression (byte-wise,
//!   case-insensitive), the escape hatch for the few wordings a template
//!   cannot say; each such row runs on its own.
//!
//! A template expands into variants (one per choice combination), each a
//! sequence of literal pieces separated by gaps; a row matches when one of
//! its variants finds its pieces in order with gaps that fit.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};

/// The longest gap a ` * ` allows, in bytes: phrases are read inside one
/// recipient's diagnostic, and a gap longer than a sentence joins words
/// that belong to different statements.
pub const MAX_GAP: usize = 80;

/// The most variants one template may expand into: a template that needs
/// more is a regular expression in disguise and should be split.
pub const MAX_VARIANTS: usize = 4096;

/// Why a pattern could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A `{` without its `}` (or the reverse).
    #[error("unbalanced braces in {0:?}")]
    Unbalanced(String),
    /// The template expands into too many variants.
    #[error("{0:?} expands into more than {MAX_VARIANTS} variants")]
    TooManyVariants(String),
    /// The template (or a variant of it) has no literal text at all.
    #[error("{0:?} has no literal text")]
    Empty(String),
    /// A `re:` pattern that does not compile.
    #[error("regular expression {0:?}: {1}")]
    Regex(String, String),
}

/// What separates two literal pieces of a variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gap {
    /// Anything, up to [`MAX_GAP`] bytes.
    Any,
    /// One token: one or more non-space bytes.
    Token,
}

/// One literal piece of a variant.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    /// Index of the literal in the automaton's pattern list.
    literal: usize,
    /// A word boundary is required before the piece.
    boundary_before: bool,
    /// A word boundary is required after the piece.
    boundary_after: bool,
    /// The gap before this piece (none for the first piece).
    gap_before: Option<Gap>,
}

/// One expansion of a template.
#[derive(Debug, Clone)]
struct Variant {
    row: usize,
    pieces: Vec<Piece>,
}

/// Tokens of a template after parsing its choices away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Text(String),
    Gap(Gap),
    Boundary,
}

/// Expand `{a|b}` choices into flat token sequences.
fn expand(pattern: &str) -> Result<Vec<Vec<Tok>>, PatternError> {
    fn seq(chars: &[char], pos: &mut usize, pattern: &str) -> Result<Vec<Vec<Tok>>, PatternError> {
        // A sequence runs to an unmatched `|` or `}` (or the end).
        let mut out: Vec<Vec<Tok>> = vec![Vec::new()];
        while let Some(&c) = chars.get(*pos) {
            match c {
                '|' | '}' => break,
                '{' => {
                    *pos += 1;
                    let mut alts: Vec<Vec<Tok>> = Vec::new();
                    loop {
                        alts.extend(seq(chars, pos, pattern)?);
                        match chars.get(*pos) {
                            Some('|') => *pos += 1,
                            Some('}') => {
                                *pos += 1;
                                break;
                            }
                            _ => return Err(PatternError::Unbalanced(pattern.to_string())),
                        }
                    }
                    let mut next = Vec::with_capacity(out.len() * alts.len());
                    for prefix in &out {
                        for alt in &alts {
                            let mut v = prefix.clone();
                            v.extend(alt.iter().cloned());
                            next.push(v);
                        }
                    }
                    if next.len() > MAX_VARIANTS {
                        return Err(PatternError::TooManyVariants(pattern.to_string()));
                    }
                    out = next;
                }
                '*' => {
                    *pos += 1;
                    for v in out.iter_mut() {
                        v.push(Tok::Gap(Gap::Any));
                    }
                }
                '~' => {
                    *pos += 1;
                    for v in out.iter_mut() {
                        v.push(Tok::Gap(Gap::Token));
                    }
                }
                '\\' if chars.get(*pos + 1) == Some(&'b') => {
                    *pos += 2;
                    for v in out.iter_mut() {
                        v.push(Tok::Boundary);
                    }
                }
                _ => {
                    *pos += 1;
                    for v in out.iter_mut() {
                        match v.last_mut() {
                            Some(Tok::Text(t)) => t.push(c),
                            _ => v.push(Tok::Text(c.to_string())),
                        }
                    }
                }
            }
        }
        Ok(out)
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut pos = 0;
    let out = seq(&chars, &mut pos, pattern)?;
    if pos != chars.len() {
        return Err(PatternError::Unbalanced(pattern.to_string()));
    }
    Ok(out)
}

/// A flat variant as literal texts with their gaps and boundaries.
struct FlatPiece {
    text: String,
    boundary_before: bool,
    boundary_after: bool,
    gap_before: Option<Gap>,
}

/// Turn a token sequence into pieces: spaces around gaps are dropped (the
/// gap covers them), adjacent texts join.
fn flatten(tokens: &[Tok], pattern: &str) -> Result<Vec<FlatPiece>, PatternError> {
    let mut pieces: Vec<FlatPiece> = Vec::new();
    let mut pending_gap: Option<Gap> = None;
    let mut pending_boundary = false;
    let mut cur: Option<FlatPiece> = None;
    for t in tokens {
        match t {
            Tok::Text(s) => {
                let c = cur.get_or_insert_with(|| FlatPiece {
                    text: String::new(),
                    boundary_before: std::mem::take(&mut pending_boundary),
                    boundary_after: false,
                    gap_before: pending_gap.take(),
                });
                c.text.push_str(s);
            }
            Tok::Boundary => match cur.as_mut() {
                Some(c) if !c.text.is_empty() => {
                    c.boundary_after = true;
                    // A boundary inside a piece splits it with no gap
                    // allowed; it only happens at piece edges in practice.
                    if let Some(done) = cur.take() {
                        pieces.push(done);
                    }
                }
                _ => pending_boundary = true,
            },
            Tok::Gap(g) => {
                if let Some(done) = cur.take() {
                    pieces.push(done);
                }
                // Two gaps in a row: the wider one wins.
                pending_gap = Some(match (pending_gap, g) {
                    (Some(Gap::Any), _) | (_, Gap::Any) => Gap::Any,
                    _ => Gap::Token,
                });
            }
        }
    }
    if let Some(done) = cur.take() {
        pieces.push(done);
    }
    // A piece of spaces only (between a boundary mark and a gap) is part
    // of the gap that follows it.
    let mut merged: Vec<FlatPiece> = Vec::with_capacity(pieces.len());
    let mut carry: Option<Gap> = None;
    for mut p in pieces {
        if p.text.trim().is_empty() {
            carry = carry.or(p.gap_before);
            continue;
        }
        if let Some(g) = carry.take() {
            p.gap_before = Some(match p.gap_before {
                Some(Gap::Any) => Gap::Any,
                _ => g,
            });
        }
        merged.push(p);
    }
    let mut pieces = merged;
    // Spaces beside a gap belong to the gap.
    for (i, p) in pieces.iter_mut().enumerate() {
        if i > 0 && p.gap_before.is_some() {
            p.text = p.text.trim_start().to_string();
        }
    }
    let n = pieces.len();
    for i in 0..n {
        let next_has_gap = pieces.get(i + 1).is_some_and(|p| p.gap_before.is_some());
        if let Some(p) = pieces.get_mut(i) {
            if next_has_gap {
                p.text = p.text.trim_end().to_string();
            }
        }
    }
    if pending_boundary {
        if let Some(last) = pieces.last_mut() {
            last.boundary_after = true;
        }
    }
    if pieces.is_empty() || pieces.iter().any(|p| p.text.is_empty()) {
        return Err(PatternError::Empty(pattern.to_string()));
    }
    Ok(pieces)
}

/// The phrase automaton: compiled once from every row's pattern.
pub struct Automaton {
    ac: AhoCorasick,
    /// For each literal, the variants whose first piece it is.
    starts: Vec<Vec<usize>>,
    variants: Vec<Variant>,
    /// Rows written as regular expressions.
    regexes: Vec<(usize, regex::bytes::Regex)>,
    rows: usize,
}

/// The rows that matched a text, as a bit set over row indices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hits {
    bits: Vec<u64>,
}

impl Hits {
    fn with_rows(rows: usize) -> Hits {
        Hits {
            bits: vec![0; rows.div_ceil(64)],
        }
    }

    fn set(&mut self, row: usize) {
        if let Some(w) = self.bits.get_mut(row / 64) {
            *w |= 1 << (row % 64);
        }
    }

    /// Whether row `row` matched.
    pub fn contains(&self, row: usize) -> bool {
        self.bits
            .get(row / 64)
            .is_some_and(|w| w & (1 << (row % 64)) != 0)
    }

    /// Whether no row matched.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// The matched rows, in row order.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, w)| {
            let w = *w;
            (0..64)
                .filter(move |b| w & (1 << b) != 0)
                .map(move |b| i * 64 + b)
        })
    }
}

impl Automaton {
    /// Compile the patterns of rows `0..patterns.len()`.
    pub fn new(patterns: &[&str]) -> Result<Automaton, PatternError> {
        let mut literals: Vec<String> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        let mut variants: Vec<Variant> = Vec::new();
        let mut regexes = Vec::new();
        for (row, pattern) in patterns.iter().enumerate() {
            if let Some(re) = pattern.strip_prefix("re:") {
                let compiled = regex::bytes::RegexBuilder::new(re)
                    .case_insensitive(true)
                    .unicode(false)
                    .build()
                    .map_err(|e| PatternError::Regex(re.to_string(), e.to_string()))?;
                regexes.push((row, compiled));
                continue;
            }
            for tokens in expand(pattern)? {
                let flat = flatten(&tokens, pattern)?;
                let pieces = flat
                    .into_iter()
                    .map(|f| {
                        let key = f.text.to_ascii_lowercase();
                        let literal = *index.entry(key.clone()).or_insert_with(|| {
                            literals.push(key);
                            literals.len() - 1
                        });
                        Piece {
                            literal,
                            boundary_before: f.boundary_before,
                            boundary_after: f.boundary_after,
                            gap_before: f.gap_before,
                        }
                    })
                    .collect();
                variants.push(Variant { row, pieces });
            }
        }
        let ac = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::DFA))
            .build(&literals)
            .map_err(|e| PatternError::Regex("(automaton)".to_string(), e.to_string()))?;
        let mut starts = vec![Vec::new(); literals.len()];
        for (i, v) in variants.iter().enumerate() {
            if let Some(s) = v.pieces.first().and_then(|p| starts.get_mut(p.literal)) {
                s.push(i);
            }
        }
        Ok(Automaton {
            ac,
            starts,
            variants,
            regexes,
            rows: patterns.len(),
        })
    }

    /// Every row whose pattern matches `text`.
    pub fn matches(&self, text: &str) -> Hits {
        let mut hits = Hits::with_rows(self.rows);
        let bytes = text.as_bytes();
        if bytes.is_empty() {
            return hits;
        }
        // Occurrences of every literal, in text order (a handful each).
        let mut occ: Vec<(usize, usize, usize)> = Vec::new();
        for m in self.ac.find_overlapping_iter(bytes) {
            if occ.len() >= 4096 {
                break;
            }
            occ.push((m.pattern().as_usize(), m.start(), m.end()));
        }
        if !occ.is_empty() {
            let mut by_literal: std::collections::HashMap<usize, Vec<(usize, usize)>> =
                std::collections::HashMap::with_capacity(occ.len());
            for (lit, s, e) in &occ {
                by_literal.entry(*lit).or_default().push((*s, *e));
            }
            for (lit, positions) in &by_literal {
                let Some(vs) = self.starts.get(*lit) else {
                    continue;
                };
                for vi in vs {
                    let Some(v) = self.variants.get(*vi) else {
                        continue;
                    };
                    if hits.contains(v.row) {
                        continue;
                    }
                    if positions
                        .iter()
                        .any(|(s, e)| variant_from(v, bytes, &by_literal, *s, *e))
                    {
                        hits.set(v.row);
                    }
                }
            }
        }
        for (row, re) in &self.regexes {
            if !hits.contains(*row) && re.is_match(bytes) {
                hits.set(*row);
            }
        }
        hits
    }
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the piece at `s..e` respects its boundary marks.
fn bounds_ok(p: &Piece, bytes: &[u8], s: usize, e: usize) -> bool {
    let before = s == 0 || bytes.get(s - 1).is_none_or(|b| !is_word(*b));
    let after = bytes.get(e).is_none_or(|b| !is_word(*b));
    (!p.boundary_before || before) && (!p.boundary_after || after)
}

/// Whether the gap `bytes[from..to]` fits `gap`.
fn gap_ok(gap: Gap, bytes: &[u8], from: usize, to: usize) -> bool {
    if to < from || to - from > MAX_GAP {
        return false;
    }
    match gap {
        Gap::Any => true,
        Gap::Token => {
            // One token, with the single spaces around it that the
            // template's own spaces would have matched.
            let inner = bytes.get(from..to).unwrap_or(&[]);
            let trimmed: &[u8] = {
                let mut t = inner;
                if let Some(r) = t.strip_prefix(b" ") {
                    t = r;
                }
                if let Some(r) = t.strip_suffix(b" ") {
                    t = r;
                }
                t
            };
            !trimmed.is_empty() && !trimmed.iter().any(|b| b.is_ascii_whitespace())
        }
    }
}

/// Whether variant `v`, with its first piece at `s..e`, matches.
fn variant_from(
    v: &Variant,
    bytes: &[u8],
    occ: &std::collections::HashMap<usize, Vec<(usize, usize)>>,
    s: usize,
    e: usize,
) -> bool {
    let Some(first) = v.pieces.first() else {
        return false;
    };
    if !bounds_ok(first, bytes, s, e) {
        return false;
    }
    let mut end = e;
    for p in v.pieces.iter().skip(1) {
        let Some(list) = occ.get(&p.literal) else {
            return false;
        };
        let gap = p.gap_before.unwrap_or(Gap::Any);
        let next = list.iter().find(|(ps, pe)| {
            *ps >= end && gap_ok(gap, bytes, end, *ps) && bounds_ok(p, bytes, *ps, *pe)
        });
        match next {
            Some((_, pe)) => end = *pe,
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, text: &str) -> bool {
        Automaton::new(&[pattern])
            .unwrap()
            .matches(text)
            .contains(0)
    }

    #[test]
    fn literals_and_choices() {
        assert!(m("user unknown", "550 5.1.1 User Unknown"));
        assert!(m("mail{ |}box full", "Mailbox full"));
        assert!(m("mail{ |}box full", "mail box full"));
        assert!(!m("mail{ |}box full", "mail  box full"));
        assert!(m("{user|mailbox} {is |}unknown", "mailbox is unknown"));
        assert!(m("{{routing |mail }|}loop detected", "mail loop detected"));
        assert!(m("{{routing |mail }|}loop detected", "loop detected"));
    }

    #[test]
    fn gaps_tokens_and_boundaries() {
        assert!(m(
            "recipient * not found",
            "Recipient address was not found"
        ));
        assert!(!m(
            "recipient * not found",
            &format!("recipient {} not found", "x".repeat(90))
        ));
        assert!(m("user ~ does not exist", "user <a@b.test> does not exist"));
        assert!(!m("user ~ does not exist", "user a b does not exist"));
        assert!(m("\\bspf\\b * fail", "SPF check failed"));
        assert!(!m("\\bspf\\b * fail", "spfx check failed"));
        assert!(!m("\\bube\\b", "tube"));
        assert!(m("\\bube\\b", "Message content rejected, UBE, id=1"));
    }

    #[test]
    fn non_ascii_and_regex_rows() {
        assert!(m(
            "メールボックスがいっぱい",
            "宛先のメールボックスがいっぱいです"
        ));
        assert!(m(
            "re:failed [0-9]+ attempts",
            "delivery failed 12 attempts"
        ));
        let a = Automaton::new(&["user unknown", "mailbox full", "re:quota"]).unwrap();
        let h = a.matches("user unknown; over quota");
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![0, 2]);
    }

    #[test]
    fn bad_patterns_are_errors() {
        assert!(Automaton::new(&["{a|b"]).is_err());
        assert!(Automaton::new(&["a|b}"]).is_err());
        assert!(Automaton::new(&["re:("]).is_err());
        assert!(Automaton::new(&["{|}"]).is_err());
    }
}
