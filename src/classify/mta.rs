//! MTA identity: which software (or provider) wrote a bounce.
//!
//! A bounce's wording means different things depending on who wrote it, so
//! the classifier first names the writer from the fingerprint table
//! (`data/mta.tsv`: From and Subject forms, headers only that MTA adds,
//! Received lines, Message-ID forms, the report's opening sentence). The
//! family with the highest score wins; `Unknown` when nothing points
//! anywhere. The family scopes phrase rows (`mta:<family>` in
//! `data/phrases.tsv`) and anchors hard verdicts in [`super::ladder`].

use super::knowledge::KNOWLEDGE;
use crate::parse::Mail;

/// The writer of a bounce, with the fingerprint rows that named it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The family (`postfix`, `exim`, `sendmail`, …), `None` when unknown.
    pub family: Option<String>,
    /// The score of the winning family (sum of the fields' weights).
    pub score: u32,
    /// `field:pattern` of each row that matched, for evidence.
    pub evidence: Vec<String>,
}

/// How much one matching row of a field counts: headers and transport
/// traces are added by the software itself; From and Subject are easily
/// shared by several MTAs.
fn weight(field: &str) -> u32 {
    match field {
        "header" | "x-mailer" | "message-id" => 3,
        "received" | "body" => 2,
        f if f.starts_with("header:") => 3,
        _ => 1,
    }
}

/// A score below this names nobody: one From or Subject form alone is too
/// common to identify software.
const MIN_SCORE: u32 = 2;

/// Name the writer of `mail`; `text` is the report part of the body.
pub fn identify(mail: &Mail, text: &str) -> Identity {
    let k = &*KNOWLEDGE;
    let from = format!(
        "{} {}",
        mail.from_name.as_deref().unwrap_or(""),
        mail.from_address.as_deref().unwrap_or("")
    )
    .to_ascii_lowercase();
    let raw_from = mail.header("from").unwrap_or("").to_ascii_lowercase();
    let subject = mail.subject.to_ascii_lowercase();
    let head = text.get(..text.len().min(16 * 1024)).unwrap_or(text);
    let body = head.to_ascii_lowercase();
    let mut scores: Vec<(usize, &str, u32, Vec<String>)> = Vec::new();
    for (order, fp) in k.fingerprints.iter().enumerate() {
        let hit = |hay: &str, original: &str| -> bool {
            match &fp.regex {
                Some(re) => re.is_match(original),
                None => hay.contains(fp.pattern.as_str()),
            }
        };
        let matched = match fp.field.as_str() {
            "from" => hit(&raw_from, mail.header("from").unwrap_or("")) || hit(&from, &from),
            "from^" => {
                let p = fp.pattern.trim_matches('"');
                raw_from.trim_start().trim_start_matches('"').starts_with(p)
                    || from.trim_start().starts_with(p)
            }
            "subject" => hit(&subject, &mail.subject),
            "subject^" => subject.trim_start().starts_with(fp.pattern.as_str()),
            "header" => mail.header(&fp.pattern).is_some(),
            "received" => mail
                .headers
                .iter()
                .filter(|(n, _)| n == "received")
                .any(|(_, v)| hit(&v.to_ascii_lowercase(), v)),
            "message-id" => mail
                .header("message-id")
                .is_some_and(|v| hit(&v.to_ascii_lowercase(), v)),
            "x-mailer" => ["x-mailer", "x-original-mailer"]
                .iter()
                .filter_map(|h| mail.header(h))
                .any(|v| hit(&v.to_ascii_lowercase(), v)),
            "body" => hit(&body, head),
            f => match f.strip_prefix("header:") {
                Some(name) => mail
                    .header(name)
                    .is_some_and(|v| hit(&v.to_ascii_lowercase(), v)),
                None => false,
            },
        };
        if !matched {
            continue;
        }
        let w = weight(&fp.field);
        let ev = format!(
            "{}:{}",
            fp.field,
            fp.pattern.chars().take(40).collect::<String>()
        );
        match scores.iter_mut().find(|(_, f, _, _)| *f == fp.family) {
            Some(s) => {
                s.2 += w;
                s.3.push(ev);
            }
            None => scores.push((order, fp.family.as_str(), w, vec![ev])),
        }
    }
    // Highest score; ties to the family listed first in the table.
    scores.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    match scores.into_iter().next() {
        Some((_, family, score, evidence)) if score >= MIN_SCORE => Identity {
            family: Some(family.to_string()),
            score,
            evidence,
        },
        _ => Identity::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(raw: &str) -> Mail {
        crate::parse::parse(raw.as_bytes()).expect("parses")
    }

    #[test]
    fn postfix_and_qmail_are_named() {
        let m = mail("From: MAILER-DAEMON@mx.test (Mail Delivery System)\nSubject: Undelivered Mail Returned to Sender\n\nThis is the mail system at host mx.test.\n\n<u@d.test>: host said: 550 5.1.1 unknown\n");
        assert_eq!(identify(&m, &m.text).family.as_deref(), Some("postfix"));
        let m = mail("From: MAILER-DAEMON@mx.test\nSubject: failure notice\n\nHi. This is the qmail-send program at mx.test.\n");
        assert_eq!(identify(&m, &m.text).family.as_deref(), Some("qmail"));
    }

    #[test]
    fn a_person_is_nobody() {
        let m = mail("From: Alice <alice@friend.test>\nSubject: lunch\n\nsee you\n");
        assert_eq!(identify(&m, &m.text).family, None);
    }
}
