//! A minimal HTTP/1.1 GET over tokio for health probes: one request per connection
//! (`Connection: close`), status line only. `http://`, and `https://` with rustls (ring) and
//! the system's root certificates, as the Kubernetes client does it.

use std::{
    collections::BTreeMap,
    sync::{Arc, OnceLock},
    time::Duration,
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{ClientConfig, RootCertStore, crypto::ring, pki_types::ServerName},
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

/// A parsed probe URL.
#[derive(Debug, PartialEq, Eq)]
struct Target {
    tls: bool,
    /// `host:port` to connect to.
    addr: String,
    /// The `Host` header (the authority as written).
    host: String,
    /// The host name alone (for TLS server name).
    name: String,
    path: String,
}

fn split(url: &str) -> Result<Target, String> {
    let (tls, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else {
        return Err(format!("not an http(s) URL: {url:?}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') || path.contains(['\r', '\n', ' ']) {
        return Err(format!("unsupported URL: {url:?}"));
    }
    let with_port = authority
        .rsplit_once(':')
        .filter(|(_, p)| p.parse::<u16>().is_ok() && !authority.ends_with(']'));
    let (addr, name) = match with_port {
        Some((name, _)) => (authority.to_string(), name),
        None => (format!("{authority}:{}", if tls { 443 } else { 80 }), authority),
    };
    Ok(Target {
        tls,
        addr,
        host: authority.to_string(),
        name: name.trim_start_matches('[').trim_end_matches(']').to_string(),
        path: path.to_string(),
    })
}

/// The TLS client configuration, built once: ring, the system's roots.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            let native = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(native.certs);
            if added == 0 {
                tracing::warn!(errors = ?native.errors, "no system root certificates: https health probes will fail");
            }
            ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("TLS configuration: {e}"))
        })
        .clone()
}

async fn get_status(url: &str, headers: &BTreeMap<String, String>) -> Result<u16, String> {
    let t = split(url)?;
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: forge-manager\r\nConnection: close\r\n",
        t.path, t.host
    );
    for (k, v) in headers {
        if k.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']) {
            return Err(format!("invalid header {k:?}"));
        }
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    let stream = TcpStream::connect(&t.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", t.addr))?;
    if t.tls {
        let name =
            ServerName::try_from(t.name.clone()).map_err(|e| format!("TLS server name {:?}: {e}", t.name))?;
        let tls = TlsConnector::from(tls_config()?)
            .connect(name, stream)
            .await
            .map_err(|e| format!("TLS: {e}"))?;
        exchange(tls, &request).await
    } else {
        exchange(stream, &request).await
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> Result<u16, String> {
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
        let t = split("http://127.0.0.1:8080/healthz?x=1").expect("ok");
        assert_eq!(
            (t.tls, t.addr.as_str(), t.host.as_str(), t.path.as_str()),
            (false, "127.0.0.1:8080", "127.0.0.1:8080", "/healthz?x=1")
        );
        let t = split("http://node.local").expect("ok");
        assert_eq!(
            (t.addr.as_str(), t.name.as_str(), t.path.as_str()),
            ("node.local:80", "node.local", "/")
        );
        let t = split("https://health.example:8443/ok").expect("ok");
        assert_eq!(
            (t.tls, t.addr.as_str(), t.name.as_str()),
            (true, "health.example:8443", "health.example")
        );
        assert_eq!(
            split("https://health.example/").expect("ok").addr,
            "health.example:443"
        );
        assert!(split("ftp://x/").is_err());
    }

    #[tokio::test]
    async fn an_https_endpoint_with_an_untrusted_certificate_fails_the_probe() {
        // A TLS server whose certificate no system root signed: the handshake is refused.
        use tokio::net::TcpListener;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            // Not even TLS: whatever answers must not count as healthy.
            let (mut s, _) = listener.accept().await.expect("accept");
            let _ = s.write_all(b"HTTP/1.1 200 OK\r\n\r\n").await;
        });
        let r = probe(
            &format!("https://localhost:{}/", addr.port()),
            &BTreeMap::new(),
            Duration::from_secs(2),
        )
        .await;
        assert!(r.as_ref().is_err_and(|e| e.starts_with("TLS")), "{r:?}");
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
