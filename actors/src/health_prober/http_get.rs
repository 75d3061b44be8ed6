//! A minimal HTTP/1.1 GET over tokio for health probes: one request per connection
//! (`Connection: close`), status line only. `http://` only (TLS is pending).

use std::{collections::BTreeMap, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// GETs `url` within `timeout`: `Ok` iff the answer's status is 200, else why not.
pub async fn probe(url: &str, headers: &BTreeMap<String, String>, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, get_status(url, headers)).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(code)) => Err(format!("HTTP {code}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("timeout after {timeout:?}")),
    }
}

/// `(host:port, host header, path)` of an `http://` URL.
fn split(url: &str) -> Result<(String, String, String), String> {
    let rest = match url.strip_prefix("http://") {
        Some(rest) => rest,
        None if url.starts_with("https://") => {
            return Err("https health endpoints are not supported yet (use http)".into());
        }
        None => return Err(format!("not an http URL: {url:?}")),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['\r', '\n', ' ']) {
        return Err(format!("unsupported URL: {url:?}"));
    }
    let addr = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        && !authority.ends_with(']')
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok((addr, authority.to_string(), path.to_string()))
}

async fn get_status(url: &str, headers: &BTreeMap<String, String>) -> Result<u16, String> {
    let (addr, host, path) = split(url)?;
    let mut stream = TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let mut request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: forge-manager\r\nConnection: close\r\n");
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!("invalid header {k:?}"));
        }
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = stream.read(&mut buf).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let mut parts = line.split_whitespace();
    match (parts.next(), parts.next().and_then(|c| c.parse::<u16>().ok())) {
        (Some(v), Some(code)) if v.starts_with("HTTP/1.") => Ok(code),
        _ => Err(format!("not an HTTP answer: {line:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_address_host_and_path() {
        assert_eq!(
            split("http://127.0.0.1:8080/healthz?x=1").expect("ok"),
            (
                "127.0.0.1:8080".into(),
                "127.0.0.1:8080".into(),
                "/healthz?x=1".into()
            )
        );
        assert_eq!(
            split("http://node.local").expect("ok"),
            ("node.local:80".into(), "node.local".into(), "/".into())
        );
        assert!(split("https://x/").expect_err("https").contains("not supported"));
        assert!(split("ftp://x/").is_err());
    }

    #[tokio::test]
    async fn a_probe_is_healthy_only_on_200() {
        use tokio::net::TcpListener;
        for (answer, ok) in [
            ("HTTP/1.1 200 OK", true),
            ("HTTP/1.1 503 Service Unavailable", false),
        ] {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.expect("read");
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                s.write_all(format!("{answer}\r\nContent-Length: 0\r\n\r\n").as_bytes())
                    .await
                    .expect("write");
                req
            });
            let mut headers = BTreeMap::new();
            headers.insert("X-Probe".to_string(), "yes".to_string());
            let r = probe(&format!("http://{addr}/health"), &headers, Duration::from_secs(2)).await;
            assert_eq!(r.is_ok(), ok, "{answer}: {r:?}");
            let req = server.await.expect("server");
            assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
            assert!(req.contains("X-Probe: yes\r\n"), "{req}");
        }
        // Nothing listening: a failure, not a hang.
        let r = probe("http://127.0.0.1:1/", &BTreeMap::new(), Duration::from_secs(2)).await;
        assert!(r.is_err());
    }
}
