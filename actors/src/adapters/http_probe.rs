//! The HealthProber's HTTP client ([`HttpProbe`], behind the [`Prober`] port): the GET of a
//! health probe, with reqwest: `http://`, and `https://` with rustls (ring) and
//! the system's root certificates, as the Kubernetes client does it. Redirects are followed as
//! reqwest does by default (at most 10; `Authorization` and cookies dropped when the host
//! changes); the status of the last answer decides. One connection per probe (no idle
//! connection is kept between probes, so each probe sees whether the endpoint still accepts
//! connections). `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` from the environment are honoured,
//! as the reference's client did.

use std::{
    collections::BTreeMap,
    error::Error as _,
    sync::{Arc, OnceLock},
    time::Duration,
};

use futures::{FutureExt, future::BoxFuture};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use rustls::{ClientConfig, RootCertStore, crypto::ring};

use crate::ports::{ProbeFailed, Prober};

/// Health probes over HTTP(S) with the process's one reqwest client.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpProbe;

impl Prober for HttpProbe {
    fn probe(
        &self,
        url: &str,
        headers: &BTreeMap<String, String>,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<(), ProbeFailed>> {
        let (url, headers) = (url.to_string(), headers.clone());
        async move { probe(&url, &headers, timeout).await.map_err(ProbeFailed) }.boxed()
    }
}

/// GETs `url` within `timeout`: `Ok` iff the (last, after redirects) answer's status is 200,
/// else why not.
pub async fn probe(url: &str, headers: &BTreeMap<String, String>, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, get_status(url, headers, timeout)).await {
        Ok(Ok(200)) => Ok(()),
        Ok(Ok(code)) => Err(format!("HTTP {code}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(format!("timeout after {timeout:?}")),
    }
}

/// The TLS client configuration, built once: ring, the system's roots.
fn tls_config() -> Result<ClientConfig, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::warn!(errors = ?native.errors, "no system root certificates: https health probes will fail");
    }
    ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| format!("TLS configuration: {e}"))
}

/// The client, built once (the root certificates are read once).
fn client() -> Result<reqwest::Client, String> {
    static CLIENT: OnceLock<Result<reqwest::Client, String>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(tls_config()?)
                .user_agent("forge-manager")
                .pool_max_idle_per_host(0)
                .build()
                .map_err(|e| format!("HTTP client: {}", chain(&e)))
        })
        .clone()
}

async fn get_status(url: &str, headers: &BTreeMap<String, String>, timeout: Duration) -> Result<u16, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("not an http(s) URL: {url:?}"));
    }
    let url = reqwest::Url::parse(url).map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        // The value is not repeated in the error: it may be a token.
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| format!("invalid header {k:?}"))?;
        let value = HeaderValue::from_str(v).map_err(|_| format!("invalid value of header {k:?}"))?;
        map.insert(name, value);
    }
    let answer = client()?
        .get(url)
        .headers(map)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| describe(&e, timeout))?;
    Ok(answer.status().as_u16())
}

/// Why a request failed, in the words an operator reads in the log and the CFC status: the TLS
/// error when the handshake failed, else the whole cause chain.
fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("timeout after {timeout:?}");
    }
    if let Some(tls) = tls_cause(e) {
        return format!("TLS: {tls}");
    }
    if e.is_redirect() {
        return format!("redirects: {}", chain(e));
    }
    if e.is_connect() {
        return format!("connect: {}", chain(e));
    }
    chain(e)
}

/// The rustls error somewhere in `e`'s causes (tokio-rustls wraps it in an `io::Error`, which
/// hyper-rustls wraps in another; `io::Error::source` skips what it wraps: looked for inside
/// each `io::Error` too).
fn tls_cause(e: &reqwest::Error) -> Option<String> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(c) = cause {
        let mut inner: Option<&(dyn std::error::Error + 'static)> = Some(c);
        while let Some(i) = inner {
            if let Some(t) = i.downcast_ref::<rustls::Error>() {
                return Some(t.to_string());
            }
            inner = i
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|b| b as &(dyn std::error::Error + 'static));
        }
        cause = c.source();
    }
    None
}

/// `e` and its causes, `: `-separated, without the URL (it may carry a token in its query).
fn chain(e: &reqwest::Error) -> String {
    let mut text = without_url(e);
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

/// `e`'s own message without the URL reqwest appends to it.
fn without_url(e: &reqwest::Error) -> String {
    match e.url() {
        Some(url) => e.to_string().replace(&format!(" ({url})"), ""),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        sync::mpsc,
    };

    /// An HTTP/1.1 server on a free loopback port answering each request by its path with
    /// `answers(path)` (a status line and extra header lines), reporting each request's head.
    /// Stops when the returned handle is aborted or the test's runtime ends.
    async fn server(
        answers: impl Fn(&str) -> (&'static str, String) + Send + 'static,
    ) -> (
        std::net::SocketAddr,
        mpsc::UnboundedReceiver<String>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&head).to_string();
                let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
                let (status, extra) = answers(&path);
                let _ = tx.send(req);
                let _ = s
                    .write_all(
                        format!("{status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
                            .as_bytes(),
                    )
                    .await;
            }
        });
        (addr, rx, task)
    }

    #[tokio::test]
    async fn an_https_endpoint_with_an_untrusted_certificate_fails_the_probe() {
        // Not even TLS answers: whatever answers must not count as healthy.
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
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
        task.abort();
    }

    #[tokio::test]
    async fn a_probe_is_healthy_only_on_200() {
        for (answer, ok) in [
            ("HTTP/1.1 200 OK", true),
            ("HTTP/1.1 503 Service Unavailable", false),
            ("HTTP/1.1 204 No Content", false),
        ] {
            let (addr, mut requests, task) = server(move |_| (answer, String::new())).await;
            let mut headers = BTreeMap::new();
            headers.insert("X-Probe".to_string(), "yes".to_string());
            let r = probe(&format!("http://{addr}/health"), &headers, Duration::from_secs(2)).await;
            assert_eq!(r.is_ok(), ok, "{answer}: {r:?}");
            if !ok {
                let code = answer.split_whitespace().nth(1).expect("code");
                assert_eq!(r, Err(format!("HTTP {code}")));
            }
            let req = requests.recv().await.expect("a request");
            assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
            assert!(req.to_ascii_lowercase().contains("x-probe: yes\r\n"), "{req}");
            assert!(req.contains("forge-manager"), "user agent: {req}");
            task.abort();
        }
        // Nothing listening: a failure, not a hang.
        let r = probe("http://127.0.0.1:1/", &BTreeMap::new(), Duration::from_secs(2)).await;
        assert!(r.as_ref().is_err_and(|e| e.starts_with("connect")), "{r:?}");
    }

    #[tokio::test]
    async fn redirects_are_followed_and_the_last_answer_decides() {
        let (addr, mut requests, task) = server(|path| match path {
            "/moved" => ("HTTP/1.1 301 Moved Permanently", "Location: /ok\r\n".to_string()),
            "/found" => ("HTTP/1.1 302 Found", "Location: /down\r\n".to_string()),
            "/loop" => ("HTTP/1.1 302 Found", "Location: /loop\r\n".to_string()),
            "/down" => ("HTTP/1.1 503 Service Unavailable", String::new()),
            _ => ("HTTP/1.1 200 OK", String::new()),
        })
        .await;
        let get = |path: &str| probe_url(format!("http://{addr}{path}"));
        assert_eq!(get("/moved").await, Ok(()));
        let seen: Vec<String> = [requests.recv().await, requests.recv().await]
            .into_iter()
            .map(|r| r.expect("request").lines().next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(seen, ["GET /moved HTTP/1.1", "GET /ok HTTP/1.1"]);
        // A redirect to an unhealthy answer is unhealthy; a 3xx is never healthy in itself.
        assert_eq!(get("/found").await, Err("HTTP 503".to_string()));
        let looped = get("/loop").await;
        assert!(
            looped.as_ref().is_err_and(|e| e.starts_with("redirects")),
            "{looped:?}"
        );
        task.abort();
    }

    async fn probe_url(url: String) -> Result<(), String> {
        probe(&url, &BTreeMap::new(), Duration::from_secs(5)).await
    }

    #[tokio::test]
    async fn a_silent_endpoint_times_out_within_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            // Accepts and never answers.
            let (s, _) = listener.accept().await.expect("accept");
            std::future::pending::<()>().await;
            drop(s);
        });
        let started = std::time::Instant::now();
        let r = probe(
            &format!("http://{addr}/"),
            &BTreeMap::new(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(r, Err("timeout after 300ms".to_string()));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        task.abort();
    }

    #[tokio::test]
    async fn bad_urls_and_headers_are_named() {
        let none = BTreeMap::new();
        let r = probe("ftp://x/", &none, Duration::from_secs(1)).await;
        assert_eq!(r, Err("not an http(s) URL: \"ftp://x/\"".to_string()));
        let r = probe("http://[::1/", &none, Duration::from_secs(1)).await;
        assert!(r.as_ref().is_err_and(|e| e.starts_with("invalid URL")), "{r:?}");
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".to_string(), "Bearer secret\nX".to_string());
        let r = probe("http://127.0.0.1:1/", &headers, Duration::from_secs(1)).await;
        assert_eq!(r, Err("invalid value of header \"Authorization\"".to_string()));
        let mut headers = BTreeMap::new();
        headers.insert("Bad Name".to_string(), "v".to_string());
        let r = probe("http://127.0.0.1:1/", &headers, Duration::from_secs(1)).await;
        assert_eq!(r, Err("invalid header \"Bad Name\"".to_string()));
    }
}
