//! Reading the node's tip from its Prometheus endpoint: one HTTP/1.0 GET (so the answer is never
//! chunked and ends with the connection), the body parsed for one gauge.

use std::time::Duration;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// cardano-node's gauge of the slot of its chain's tip (the slot of the latest block it
/// adopted), exported by both its legacy tracing (EKG `cardano.node.metrics.slotNum.int`) and
/// the new tracing system's Prometheus names.
pub const SLOT_METRIC: &str = "cardano_node_metrics_slotNum_int";

/// A metrics body larger than this is refused (cardano-node's is a few tens of kilobytes).
const MAX_BODY: usize = 4 << 20;

/// GETs `url` (`http://host:port/path`) within `timeout` and returns the tip slot, or why not
/// (unreachable, not 200, no such metric, not a number).
pub async fn read_tip(url: &str, timeout: Duration) -> Result<u64, String> {
    let body = match tokio::time::timeout(timeout, get(url)).await {
        Ok(r) => r?,
        Err(_) => return Err(format!("{url}: no answer within {timeout:?}")),
    };
    tip_slot(&body).ok_or_else(|| format!("{url}: no {SLOT_METRIC} sample"))
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

async fn get(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: only http:// is read (the node's endpoint is local)"))?;
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
        .map_err(|e| format!("{url}: connect: {e}"))?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/plain\r\n\r\n");
    conn.write_all(req.as_bytes())
        .await
        .map_err(|e| format!("{url}: write: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = conn
            .read(&mut buf)
            .await
            .map_err(|e| format!("{url}: read: {e}"))?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if raw.len() > MAX_BODY {
            return Err(format!("{url}: answer larger than {MAX_BODY} bytes"));
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{url}: not an HTTP answer"))?;
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(format!("{url}: {status}"));
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
        assert!(read_tip(&url, t).await.expect_err("500").contains("500"));
        assert!(
            read_tip(&url, t)
                .await
                .expect_err("no metric")
                .contains(SLOT_METRIC)
        );
        server.await.expect("server");
        // Nobody listens any more.
        assert!(read_tip(&url, t).await.expect_err("refused").contains("connect"));
        assert!(read_tip("https://x/metrics", t).await.is_err());
    }
}
