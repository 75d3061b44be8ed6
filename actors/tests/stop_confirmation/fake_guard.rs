//! Scripted node guards on real Unix sockets: they speak the guard's protocol (one request a
//! connection; a subscription stays open for pushed reports) and do what each test needs.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use forge_guard::protocol::{Answer, GuardState, Observation};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{UnixListener, UnixStream},
    sync::broadcast,
};

use super::socket_in;

/// How the scripted guard behaves.
#[derive(Clone, Copy)]
pub(crate) enum Script {
    /// Answers every request; after a `reload`, pushes `Disabled` this much later.
    ConfirmAfter(Duration),
    /// Answers every request, never reports a reconfiguration.
    NeverConfirms,
}

/// When the guard received each `reload` request.
pub(crate) type Reloads = Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>;

/// A guard on `socket` whose node forges until a reload is confirmed per `script`. `pushed` is
/// set just before the confirming report is written.
pub(crate) fn scripted_guard(socket: &Path, script: Script, pushed: Arc<AtomicBool>) {
    let _ = recording_guard(socket, script, pushed, Arc::default());
}

/// [`scripted_guard`], recording when each `reload` request arrives in `reloads`. Returns the
/// channel of its pushes to subscribers (a test may push reports of its own).
pub(crate) fn recording_guard(
    socket: &Path,
    script: Script,
    pushed: Arc<AtomicBool>,
    reloads: Reloads,
) -> broadcast::Sender<String> {
    let listener = UnixListener::bind(socket).expect("bind guard socket");
    let (tx, _) = broadcast::channel::<String>(16);
    let pushes = tx.clone();
    let forging = GuardState {
        forging: Some(true),
        last: Some(Observation::Enabled),
        child_pid: 4242,
        ..GuardState::default()
    };
    accept_each(listener, move |conn| {
        serve(
            conn,
            script,
            tx.clone(),
            pushed.clone(),
            forging.clone(),
            reloads.clone(),
        )
    });
    pushes
}

/// Accepts connections on `listener` until it fails, each served by `serve` in a task of its own.
fn accept_each<F, Fut>(listener: UnixListener, mut serve: F)
where
    F: FnMut(UnixStream) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    actix::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            actix::spawn(serve(conn));
        }
    });
}

async fn serve(
    conn: UnixStream,
    script: Script,
    tx: broadcast::Sender<String>,
    pushed: Arc<AtomicBool>,
    forging: GuardState,
    reloads: Reloads,
) {
    let (read, mut write) = conn.into_split();
    let mut line = String::new();
    if BufReader::new(read).read_line(&mut line).await.is_err() {
        return;
    }
    let op = serde_json::from_str::<serde_json::Value>(&line).expect("request")["op"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let _ = write
        .write_all(Answer::ok(forging.clone()).to_line().as_bytes())
        .await;
    match op.as_str() {
        "subscribe" => {
            let mut rx = tx.subscribe();
            while let Ok(push) = rx.recv().await {
                if write.write_all(push.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
        "reload" => {
            reloads.lock().expect("reloads").push(tokio::time::Instant::now());
            if let Script::ConfirmAfter(after) = script {
                tokio::time::sleep(after).await;
                let stopped = GuardState {
                    forging: Some(false),
                    last: Some(Observation::Disabled),
                    ..forging
                };
                pushed.store(true, Ordering::SeqCst);
                let _ = tx.send(Answer::event("observed", stopped).to_line());
            }
        }
        _ => {}
    }
}

/// A guard whose node lost a reload in its replay (`reload_lost`), then reports consensus
/// running (`ChainExtended`); counts the `reload` requests it receives.
pub(crate) fn replaying_guard(socket: &Path, reloads: Arc<AtomicUsize>) {
    let listener = UnixListener::bind(socket).expect("bind guard socket");
    let lost = GuardState {
        forging: Some(false),
        last: Some(Observation::NotEffective),
        reload_lost: true,
        child_pid: 4242,
        ..GuardState::default()
    };
    accept_each(listener, move |conn| {
        let (lost, reloads) = (lost.clone(), reloads.clone());
        async move {
            let (read, mut write) = conn.into_split();
            let mut line = String::new();
            if BufReader::new(read).read_line(&mut line).await.is_err() {
                return;
            }
            if line.contains("\"reload\"") {
                reloads.fetch_add(1, Ordering::SeqCst);
            }
            let _ = write
                .write_all(Answer::ok(lost.clone()).to_line().as_bytes())
                .await;
            if line.contains("\"subscribe\"") {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let running = GuardState {
                    last: Some(Observation::ChainExtended),
                    ..lost
                };
                let _ = write
                    .write_all(Answer::event("observed", running).to_line().as_bytes())
                    .await;
                // Keep the subscription open.
                std::future::pending::<()>().await;
            }
        }
    });
}

/// A guard socket file with nobody listening on it: what a SIGKILLed guard leaves behind
/// (a connection is refused).
pub(crate) fn refusing_socket(dir: &tempfile::TempDir) -> PathBuf {
    let socket = socket_in(dir);
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("bind"));
    assert!(socket.exists(), "the socket file stays");
    socket
}

/// A guard that answers one subscription and, once `exit` fires, pushes the `exited` report of
/// its node (PID `child_pid`) and exits: its socket refuses every later connection.
pub(crate) async fn exiting_guard(socket: &Path, child_pid: u32, exit: tokio::sync::oneshot::Receiver<()>) {
    let listener = UnixListener::bind(socket).expect("bind guard socket");
    actix::spawn(async move {
        let Ok((conn, _)) = listener.accept().await else {
            return;
        };
        let (read, mut write) = conn.into_split();
        let mut line = String::new();
        let _ = BufReader::new(read).read_line(&mut line).await;
        let state = GuardState {
            forging: Some(true),
            last: Some(Observation::Enabled),
            child_pid,
            ..GuardState::default()
        };
        let _ = write
            .write_all(Answer::ok(state.clone()).to_line().as_bytes())
            .await;
        let _ = exit.await;
        let _ = write
            .write_all(Answer::event("exited", state).to_line().as_bytes())
            .await;
        // The guard exits with its node: connection and listener close.
    });
}
