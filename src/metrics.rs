//! Prometheus metrics: counters by mailbox, kind and reason, failed
//! connection attempts and failed passes, last-success timestamps and
//! connection state, served on `[metrics] listen`.
//!
//! Failures are counted where they happen, in two counters that never count
//! the same failure: `connect_errors` for an attempt to reach the mailbox
//! (TCP connect, TLS handshake, login) that failed, `pass_errors` for a pass
//! that failed on an open connection. A server that is down or refuses the
//! password never gets as far as a pass, so without the first counter it
//! would show only as `connected` 0.
//!
//! The figures are kept in memory by the daemon as it works (counters start
//! at zero with the process, as Prometheus expects); the database remains
//! the record. The endpoint is a deliberately tiny HTTP/1.1 responder: one
//! `GET /metrics` per connection, bounded request size and time, so a
//! misbehaving scraper can neither hold memory nor a task for long.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The daemon's metrics.
pub struct Metrics {
    registry: Registry,
    messages: Family<Labels, Counter>,
    recipients: Family<Labels, Counter>,
    pass_errors: Family<Labels, Counter>,
    connect_errors: Family<Labels, Counter>,
    last_success: Family<Labels, Gauge>,
    connected: Family<Labels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("bounced");
        let messages = Family::<Labels, Counter>::default();
        let recipients = Family::<Labels, Counter>::default();
        let pass_errors = Family::<Labels, Counter>::default();
        let connect_errors = Family::<Labels, Counter>::default();
        let last_success = Family::<Labels, Gauge>::default();
        let connected = Family::<Labels, Gauge>::default();
        registry.register(
            "messages",
            "Messages processed, by mailbox and kind",
            messages.clone(),
        );
        registry.register(
            "recipients",
            "Recipient events recorded, by mailbox and reason",
            recipients.clone(),
        );
        registry.register(
            "pass_errors",
            "Passes over a mailbox that failed after connecting",
            pass_errors.clone(),
        );
        registry.register(
            "connect_errors",
            "Attempts to reach a mailbox (connect, TLS, login) that failed",
            connect_errors.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last pass over the mailbox that succeeded",
            last_success.clone(),
        );
        registry.register(
            "connected",
            "1 while the mailbox's IMAP connection is up",
            connected.clone(),
        );
        Metrics {
            registry,
            messages,
            recipients,
            pass_errors,
            connect_errors,
            last_success,
            connected,
        }
    }

    /// Count a newly stored message of `kind`.
    pub fn message(&self, mailbox: &str, kind: &str) {
        self.messages
            .get_or_create(&labels(&[("mailbox", mailbox), ("kind", kind)]))
            .inc();
    }

    /// Count a recorded recipient event with `reason`.
    pub fn recipient(&self, mailbox: &str, reason: &str) {
        self.recipients
            .get_or_create(&labels(&[("mailbox", mailbox), ("reason", reason)]))
            .inc();
    }

    /// Record a pass that succeeded at `at` (Unix seconds).
    pub fn pass_succeeded(&self, mailbox: &str, at: i64) {
        self.last_success
            .get_or_create(&labels(&[("mailbox", mailbox)]))
            .set(at);
    }

    /// Count a pass that failed.
    pub fn pass_failed(&self, mailbox: &str) {
        self.pass_errors
            .get_or_create(&labels(&[("mailbox", mailbox)]))
            .inc();
    }

    /// Note an attempt to reach the mailbox: makes its error counters exist
    /// at zero, so that `increase()` and `rate()` see their first failure (a
    /// series that appears at 1 has no increase to show).
    pub fn connecting(&self, mailbox: &str) {
        let mailbox = labels(&[("mailbox", mailbox)]);
        // Creating the series is the point; the returned handle is not needed.
        let _ = self.connect_errors.get_or_create(&mailbox);
        let _ = self.pass_errors.get_or_create(&mailbox);
    }

    /// Count an attempt to reach the mailbox (connect, TLS, login) that failed.
    pub fn connect_failed(&self, mailbox: &str) {
        self.connect_errors
            .get_or_create(&labels(&[("mailbox", mailbox)]))
            .inc();
    }

    /// Set whether the mailbox's connection is up.
    pub fn connected(&self, mailbox: &str, up: bool) {
        self.connected
            .get_or_create(&labels(&[("mailbox", mailbox)]))
            .set(i64::from(up));
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process's metrics: the daemon counts into these wherever it is, and
/// the endpoint serves them.
pub fn global() -> &'static Metrics {
    static GLOBAL: std::sync::LazyLock<Metrics> = std::sync::LazyLock::new(Metrics::new);
    &GLOBAL
}

/// The longest request head read from a scraper.
const MAX_REQUEST: usize = 8 * 1024;
/// How long a scraper may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Serve `GET /metrics` on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, metrics: &'static Metrics) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // accept() fails on resource exhaustion (EMFILE): wait, retry.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        tokio::spawn(async move {
            if let Err(e) = respond(stream, metrics).await {
                tracing::debug!(%peer, error = %e, "metrics request failed");
            }
        });
    }
}

async fn respond(mut stream: TcpStream, metrics: &Metrics) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let head = tokio::time::timeout(REQUEST_TIMEOUT, async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            buf.extend_from_slice(chunk.get(..n).unwrap_or(&[]));
            if n == 0 || buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() >= MAX_REQUEST {
                return Ok::<_, std::io::Error>(());
            }
        }
    })
    .await;
    if head.is_err() {
        return Ok(());
    }
    let line =
        String::from_utf8_lossy(buf.split(|b| *b == b'\n').next().unwrap_or(&[])).into_owned();
    let mut words = line.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
        ("GET", "/metrics") => (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "try /metrics\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_labels() {
        let m = Metrics::new();
        m.message("lists", "bounce");
        m.message("lists", "bounce");
        m.recipient("lists", "userunknown");
        m.pass_succeeded("lists", 1_800_000_000);
        m.connected("lists", true);
        m.connecting("down");
        m.connecting("lists");
        m.connect_failed("down");
        let text = m.render();
        assert!(
            text.contains(r#"bounced_messages_total{mailbox="lists",kind="bounce"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"bounced_recipients_total{mailbox="lists",reason="userunknown"} 1"#)
        );
        assert!(
            text.contains(r#"bounced_last_success_timestamp_seconds{mailbox="lists"} 1800000000"#)
        );
        assert!(text.contains(r#"bounced_connected{mailbox="lists"} 1"#));
        assert!(text.contains(r#"bounced_connect_errors_total{mailbox="down"} 1"#));
        assert!(text.contains(r#"bounced_connect_errors_total{mailbox="lists"} 0"#));
        assert!(text.contains(r#"bounced_pass_errors_total{mailbox="lists"} 0"#));
        assert!(text.trim_end().ends_with("# EOF"));
    }

    #[tokio::test]
    async fn endpoint_answers_get_metrics_only() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics: &'static Metrics = Box::leak(Box::new(Metrics::new()));
        metrics.message("m", "bounce");
        let server = tokio::spawn(serve(listener, metrics));
        let get = |req: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        let ok = get("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("bounced_messages_total"), "{ok}");
        assert!(get("GET / HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 404"));
        assert!(get("POST /metrics HTTP/1.1\r\n\r\n")
            .await
            .starts_with("HTTP/1.1 405"));
        server.abort();
    }
}
