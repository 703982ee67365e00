//! JSON bounce notifications (Amazon SES through SNS): the report is a JSON
//! document in the mail body instead of a DSN. The fields map one to one
//! onto the DSN evidence record.

use super::{address, Finding, Reason};
use serde_json::Value;

/// What a notification reports.
pub enum Notification {
    /// Failed (or delivered) recipients, as DSN-like findings.
    Recipients(Vec<Finding>),
    /// A complaint: addresses and the feedback type.
    Complaint(Vec<String>, Option<String>),
}

/// The JSON object in the text, if the text carries one.
fn json_in(text: &str) -> Option<Value> {
    let start = text.find('{')?;
    let body = text.get(start..)?;
    // The object ends at one of the last closing braces; SNS appends an
    // unsubscribe footer after it.
    let mut end = body.len();
    for _ in 0..8 {
        let close = body.get(..end)?.rfind('}')?;
        if let Some(j) = body.get(..=close) {
            if let Ok(v) = serde_json::from_str::<Value>(j) {
                return Some(v);
            }
            // Mail transports wrap long lines; JSON has no raw newlines in
            // strings, so joining the lines restores it.
            let joined: String = j.chars().filter(|c| *c != '\n' && *c != '\r').collect();
            if let Ok(v) = serde_json::from_str::<Value>(&joined) {
                return Some(v);
            }
        }
        end = close;
    }
    None
}

/// Read an SES notification from the message text.
pub fn read(text: &str) -> Option<Notification> {
    if !text.contains("notificationType") && !text.contains("eventType") {
        return None;
    }
    let mut v = json_in(text)?;
    // SNS wraps the SES document as a string in "Message".
    if let Some(inner) = v.get("Message").and_then(Value::as_str) {
        v = serde_json::from_str(inner).ok()?;
    }
    let kind = v
        .get("notificationType")
        .or_else(|| v.get("eventType"))
        .and_then(Value::as_str)?
        .to_ascii_lowercase();
    match kind.as_str() {
        "bounce" => {
            let b = v.get("bounce")?;
            let permanent = b.get("bounceType").and_then(Value::as_str) == Some("Permanent");
            let mta = b
                .get("reportingMTA")
                .and_then(Value::as_str)
                .map(|s| s.trim_start_matches("dsn;").trim().to_string());
            let mut out = Vec::new();
            for r in b.get("bouncedRecipients")?.as_array()?.iter().take(1000) {
                let Some(addr) = r
                    .get("emailAddress")
                    .and_then(Value::as_str)
                    .and_then(address::normalize)
                else {
                    continue;
                };
                let diag = r
                    .get("diagnosticCode")
                    .and_then(Value::as_str)
                    .map(|d| crate::dsn::split_typed(d).1)
                    .unwrap_or_default();
                out.push(Finding {
                    address: addr,
                    status: r.get("status").and_then(Value::as_str).map(str::to_string),
                    action: r
                        .get("action")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or_else(|| Some(if permanent { "failed" } else { "delayed" }.to_string())),
                    remote_mta: mta.clone(),
                    diagnostic: diag,
                    source: "SES notification",
                    ..Finding::default()
                });
            }
            Some(Notification::Recipients(out))
        }
        "delivery" => {
            let d = v.get("delivery")?;
            let out = d
                .get("recipients")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .filter_map(address::normalize)
                .map(|a| Finding {
                    address: a,
                    status: Some("2.0.0".to_string()),
                    action: Some("delivered".to_string()),
                    diagnostic: d
                        .get("smtpResponse")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    source: "SES notification",
                    reason_hint: Some(Reason::Delivered),
                    ..Finding::default()
                })
                .collect();
            Some(Notification::Recipients(out))
        }
        "complaint" => {
            let c = v.get("complaint")?;
            let addrs = c
                .get("complainedRecipients")?
                .as_array()?
                .iter()
                .filter_map(|r| r.get("emailAddress").and_then(Value::as_str))
                .filter_map(address::normalize)
                .collect();
            let ftype = c
                .get("complaintFeedbackType")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some(Notification::Complaint(addrs, ftype))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bounce() {
        let t = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bouncedRecipients":[{"emailAddress":"a@b.test","action":"failed","status":"5.1.1","diagnosticCode":"smtp; 550 5.1.1 user unknown"}]}}
--
footer"#;
        match read(t) {
            Some(Notification::Recipients(f)) => {
                assert_eq!(f.len(), 1);
                assert_eq!(f[0].status.as_deref(), Some("5.1.1"));
                assert_eq!(f[0].diagnostic, "550 5.1.1 user unknown");
            }
            _ => panic!("not read"),
        }
        assert!(read("{ not json").is_none());
    }
}
