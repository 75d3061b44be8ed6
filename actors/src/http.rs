//! The HTTP endpoints on `METRICS_PORT` (docs/architecture.md, "Observability"): `/metrics`,
//! `/health`, `/readyz`, `/startup-status` (the reference's meaning, for the native-sidecar
//! startupProbe) and `/status` (JSON: the decision and its reasons).
//!
//! Scrapes never go through an actor mailbox: the Decider publishes an `Arc<Snapshot>` on a
//! watch channel and the handlers read the latest one. `/health` is real liveness: it fails
//! when the Decider's heartbeat is older than the configured bound (the reference answered 200
//! whatever happened: gap G-19 in docs/architecture.md).

use std::{convert::Infallible, future::Future, net::SocketAddr, sync::Arc, time::Duration};

use forge_core::status::SidecarStatus;
use http_body_util::Full;
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header::CONTENT_TYPE,
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus::Registry;
use tokio::{net::TcpListener, sync::watch};

/// What the endpoints report, published by the Decider.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `/readyz`: the standby state is established (the start-up plan succeeded) and no shutdown
    /// is under way (`forge_core::decision::Lifecycle::ready`).
    pub ready: bool,
    /// `/startup-status`: the standby state is established and the node may start.
    pub startup_complete: bool,
    /// Why start-up is or is not complete.
    pub startup_message: String,
    /// When the Decider last ran (monotonic).
    pub heartbeat: Option<std::time::Instant>,
    /// The `/status` document (none before the Decider's first publication: `/status` then
    /// answers `null`).
    pub status: Option<SidecarStatus>,
}

/// Shared state of the endpoint handlers.
#[derive(Clone)]
pub struct Endpoints {
    registry: Registry,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    liveness_bound: Duration,
    /// Standing configuration warnings, shown in `/status` as `warnings` (e.g. cluster
    /// management with no peers).
    warnings: Vec<String>,
}

impl Endpoints {
    /// Endpoints over `registry` and the Decider's `snapshot`; `/health` fails once the
    /// heartbeat is older than `liveness_bound`.
    pub fn new(
        registry: Registry,
        snapshot: watch::Receiver<Arc<Snapshot>>,
        liveness_bound: Duration,
    ) -> Self {
        Self {
            registry,
            snapshot,
            liveness_bound,
            warnings: Vec::new(),
        }
    }

    /// Adds standing configuration warnings to `/status` (a `warnings` list of strings).
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Self {
        self.warnings = warnings;
        self
    }

    fn respond(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        if method != Method::GET && method != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
        }
        let snap = self.snapshot.borrow().clone();
        match path {
            "/metrics" => {
                let body = crate::metrics::encode(&self.registry);
                with_type(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body)
            }
            "/health" | "/healthz" => match snap.heartbeat {
                Some(at) if at.elapsed() <= self.liveness_bound => text(StatusCode::OK, "OK"),
                Some(at) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("decider heartbeat is {:.1}s old", at.elapsed().as_secs_f64()),
                ),
                None => text(StatusCode::SERVICE_UNAVAILABLE, "decider has not run yet"),
            },
            "/readyz" => {
                if snap.ready {
                    text(StatusCode::OK, "ready")
                } else {
                    text(StatusCode::SERVICE_UNAVAILABLE, "not ready")
                }
            }
            "/startup-status" => {
                let (code, status) = if snap.startup_complete {
                    (StatusCode::OK, "ready")
                } else {
                    (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
                };
                let body = serde_json::json!({
                    "status": status,
                    "message": snap.startup_message,
                    "credentials_provisioned": snap.startup_complete,
                    "timestamp": jiff::Timestamp::now().to_string(),
                });
                with_type(code, "application/json", body.to_string())
            }
            "/status" => {
                let status = snap.status.as_ref().map(|s| SidecarStatus {
                    warnings: self.warnings.clone(),
                    ..s.clone()
                });
                match serde_json::to_string(&status) {
                    Ok(body) => with_type(StatusCode::OK, "application/json", body),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &format!("/status: {e}")),
                }
            }
            _ => text(StatusCode::NOT_FOUND, "Not Found"),
        }
    }
}

fn text(code: StatusCode, body: &str) -> Response<Full<Bytes>> {
    with_type(code, "text/plain; charset=utf-8", body.to_string())
}

fn with_type(code: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

/// Binds `addr` (use port 0 in tests) and returns the listener with its real address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves the endpoints on `listener` until `shutdown` completes. Each connection is its own
/// task, so one slow client cannot block the others (the reference served one at a time).
pub async fn serve(listener: TcpListener, endpoints: Endpoints, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else { continue };
        let endpoints = endpoints.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let response = endpoints.respond(req.method(), req.uri().path());
                async move { Ok::<_, Infallible>(response) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(snapshot: Snapshot) -> (Endpoints, watch::Sender<Arc<Snapshot>>) {
        let (tx, rx) = watch::channel(Arc::new(snapshot));
        (Endpoints::new(Registry::new(), rx, Duration::from_secs(5)), tx)
    }

    #[test]
    fn health_follows_the_decider_heartbeat() {
        let (e, tx) = endpoints(Snapshot::default());
        assert_eq!(
            e.respond(&Method::GET, "/health").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        tx.send_replace(Arc::new(Snapshot {
            heartbeat: Some(std::time::Instant::now()),
            ..Snapshot::default()
        }));
        assert_eq!(e.respond(&Method::GET, "/health").status(), StatusCode::OK);
        let stale = std::time::Instant::now().checked_sub(Duration::from_secs(60));
        if let Some(stale) = stale {
            tx.send_replace(Arc::new(Snapshot {
                heartbeat: Some(stale),
                ..Snapshot::default()
            }));
            assert_eq!(
                e.respond(&Method::GET, "/health").status(),
                StatusCode::SERVICE_UNAVAILABLE
            );
        }
    }

    #[test]
    fn readiness_and_startup_status_follow_the_snapshot() {
        let (e, tx) = endpoints(Snapshot::default());
        assert_eq!(
            e.respond(&Method::GET, "/readyz").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            e.respond(&Method::GET, "/startup-status").status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        tx.send_replace(Arc::new(Snapshot {
            ready: true,
            startup_complete: true,
            ..Snapshot::default()
        }));
        assert_eq!(e.respond(&Method::GET, "/readyz").status(), StatusCode::OK);
        assert_eq!(
            e.respond(&Method::GET, "/startup-status").status(),
            StatusCode::OK
        );
        assert_eq!(e.respond(&Method::GET, "/nope").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            e.respond(&Method::POST, "/metrics").status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[tokio::test]
    async fn the_server_answers_over_tcp_and_stops_on_shutdown() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (e, _tx) = endpoints(Snapshot {
            status: Some(SidecarStatus {
                pod: "bp-0".into(),
                forging: Some(false),
                ..SidecarStatus::default()
            }),
            ..Snapshot::default()
        });
        let e = e.with_warnings(vec!["no peers".into()]);
        let (listener, addr) = bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, e, async {
            let _ = stop_rx.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        stream
            .write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut response = String::new();
        stream.read_to_string(&mut response).await.expect("read");
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
        let status: SidecarStatus = serde_json::from_str(body).expect("a /status document");
        assert_eq!(status.pod, "bp-0", "{response}");
        assert_eq!(status.forging, Some(false), "{response}");
        assert_eq!(status.warnings, ["no peers"], "{response}");
        let _ = stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stops")
            .expect("no panic");
    }
}
