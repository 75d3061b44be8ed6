//! The ChainWatcher's reads ([`NodeChain`], behind the [`ChainSource`] port): the node's tip
//! from its Prometheus endpoint, one HTTP/1.0 GET (so the answer is never chunked and ends with
//! the connection) with the body parsed for one gauge; and the leader schedule file on disk.

use std::{
    path::Path,
    time::{Duration, SystemTime},
};

use futures::{FutureExt, future::BoxFuture};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::ports::{ChainSource, FileVersion, ScheduleFileError, TipError};

/// cardano-node's gauge of the slot of its chain's tip (the slot of the latest block it
/// adopted), exported by both its legacy tracing (EKG `cardano.node.metrics.slotNum.int`) and
/// the new tracing system's Prometheus names.
pub const SLOT_METRIC: &str = "cardano_node_metrics_slotNum_int";

/// The node's metrics endpoint over plain HTTP, and the leader schedule file on disk.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodeChain;

impl ChainSource for NodeChain {
    fn tip(&self, url: &str, timeout: Duration) -> BoxFuture<'static, Result<u64, TipError>> {
        let url = url.to_string();
        async move { read_tip(&url, timeout).await }.boxed()
    }

    fn schedule_version(&self, path: &Path) -> Option<FileVersion> {
        std::fs::metadata(path).ok().map(|m| FileVersion {
            len: m.len(),
            modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        })
    }

    fn read_schedule(&self, path: &Path) -> Result<Vec<u8>, ScheduleFileError> {
        std::fs::read(path).map_err(|source| ScheduleFileError {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// A metrics body larger than this is refused (cardano-node's is a few tens of kilobytes).
const MAX_BODY: usize = 4 << 20;

/// GETs `url` (`http://host:port/path`) within `timeout` and returns the tip slot, or why not
/// (unreachable, not 200, no such metric, not a number).
pub async fn read_tip(url: &str, timeout: Duration) -> Result<u64, TipError> {
    let body = match tokio::time::timeout(timeout, get(url)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(TipError::Timeout {
                url: url.to_string(),
                timeout,
            });
        }
    };
    tip_slot(&body).ok_or_else(|| TipError::NoSample {
        url: url.to_string(),
        metric: SLOT_METRIC,
    })
}

/// The value of [`SLOT_METRIC`] in a Prometheus text exposition (with or without labels and a
/// timestamp), if present and a non-negative number.
pub fn tip_slot(body: &str) -> Option<u64> {
    body.lines().find_map(|line| {
        let rest = line.strip_prefix(SLOT_METRIC)?;
        // The name must end here: `slotNum_int_total` is another metric.
        let rest = match rest.chars().next()? {
            '{' => &rest[rest.find('}')? + 1..],
            ' ' | '\t' => rest,
            _ => return None,
        };
        let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
        (value.is_finite() && value >= 0.0).then_some(value as u64)
    })
}

async fn get(url: &str) -> Result<String, TipError> {
    let unreachable = |detail: String| TipError::Unreachable {
        url: url.to_string(),
        detail,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| unreachable("only http:// is read (the node's endpoint is local)".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let mut conn = TcpStream::connect(&addr)
        .await
        .map_err(|e| unreachable(format!("connect: {e}")))?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/plain\r\n\r\n");
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| unreachable(format!("write: {e}")))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = conn
            .read(&mut buf)
            .await
            .map_err(|e| unreachable(format!("read: {e}")))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_BODY {
            return Err(unreachable(format!("answer larger than {MAX_BODY} bytes")));
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| unreachable("not an HTTP answer".into()))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(TipError::Status {
            url: url.to_string(),
            status: status.to_string(),
        });
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_gauge_is_found_with_or_without_labels_and_timestamps() {
        let body = "# TYPE cardano_node_metrics_slotNum_int gauge\n\
                    cardano_node_metrics_slotNum_int_total 3\n\
                    cardano_node_metrics_slotNum_int 142857\n\
                    cardano_node_metrics_blockNum_int 11000000\n";
        assert_eq!(tip_slot(body), Some(142_857));
        assert_eq!(
            tip_slot("cardano_node_metrics_slotNum_int{host=\"bp\"} 7.0 1700000000000\n"),
            Some(7)
        );
        assert_eq!(tip_slot("cardano_node_metrics_blockNum_int 5\n"), None);
        assert_eq!(tip_slot("cardano_node_metrics_slotNum_int NaN\n"), None);
        assert_eq!(tip_slot("cardano_node_metrics_slotNum_int -1\n"), None);
    }

    #[tokio::test]
    async fn the_tip_is_read_over_http_and_a_bad_answer_says_why() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            for answer in [
                "HTTP/1.1 200 OK\r\n\r\ncardano_node_metrics_slotNum_int 99\n",
                "HTTP/1.1 500 Internal Server Error\r\n\r\n",
                "HTTP/1.1 200 OK\r\n\r\nsomething_else 1\n",
            ] {
                let (mut c, _) = l.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let _ = c.read(&mut buf).await;
                c.write_all(answer.as_bytes()).await.expect("write");
            }
        });
        let url = format!("http://{addr}/metrics");
        let t = Duration::from_secs(5);
        assert_eq!(read_tip(&url, t).await, Ok(99));
        let status = read_tip(&url, t).await.expect_err("500");
        assert!(
            matches!(&status, TipError::Status { status, .. } if status.contains("500")),
            "{status:?}"
        );
        assert_eq!(
            status.to_string(),
            format!("{url}: HTTP/1.1 500 Internal Server Error")
        );
        let none = read_tip(&url, t).await.expect_err("no metric");
        assert_eq!(none.to_string(), format!("{url}: no {SLOT_METRIC} sample"));
        server.await.expect("server");
        // Nobody listens any more.
        let refused = read_tip(&url, t).await.expect_err("refused");
        assert!(
            refused.to_string().starts_with(&format!("{url}: connect: ")),
            "{refused}"
        );
        assert!(matches!(
            read_tip("https://x/metrics", t).await,
            Err(TipError::Unreachable { .. })
        ));
    }

    #[tokio::test]
    async fn an_endpoint_that_never_answers_is_given_up_after_the_timeout() {
        // Listening (the connection is accepted by the kernel) but never answering.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/metrics", l.local_addr().expect("addr"));
        let t = Duration::from_millis(200);
        let err = NodeChain.tip(&url, t).await.expect_err("no answer");
        assert_eq!(err, TipError::Timeout { url, timeout: t });
        drop(l);
    }

    #[test]
    fn the_schedule_file_changes_version_when_rewritten_and_a_missing_one_is_named() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("leaderlog.json");
        assert_eq!(NodeChain.schedule_version(&path), None);
        let missing = NodeChain.read_schedule(&path).expect_err("absent");
        assert!(
            missing.to_string().starts_with(&path.display().to_string()),
            "{missing}"
        );
        std::fs::write(&path, "{}").expect("write");
        let first = NodeChain.schedule_version(&path).expect("version");
        assert_eq!(first.len, 2);
        assert_eq!(NodeChain.read_schedule(&path).expect("read"), b"{}");
        std::fs::write(&path, "{\"a\":1}").expect("rewrite");
        let second = NodeChain.schedule_version(&path).expect("version");
        assert_ne!(first, second);
        assert_eq!(
            NodeChain.schedule_version(&path),
            Some(second),
            "unchanged: same version"
        );
    }
}
