//! NodeWatcher against a node simulator running in this process (found by its socket through
//! the real `/proc`), and against a fake procfs (`ProcFs::at`) for what a real process cannot
//! show cheaply: an identity change under the same socket, a process that is not visible, and
//! the node's command line.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use actix::{Addr, Supervisor};
use forge_actors::{
    adapters::{guard::GuardClient, process::ProcFs},
    messages::NodeProcess,
    metrics::{Metrics, PodLabels},
    node_watcher::{NodeWatcher, NodeWatcherSettings},
    testing::{Logs, Probe, eventually, recorder},
};
use forge_core::decision::Event;
use forge_sim::node::{NodeOptions, NodeSim};
use prometheus::Registry;

// === test helpers: `forge_actors::testing::{Probe, recorder, Logs, eventually}` ===

struct Watched {
    _watcher: Addr<NodeWatcher>,
    decider: Probe,
    processes: Arc<Mutex<Vec<NodeProcess>>>,
}

impl Watched {
    fn start(settings: NodeWatcherSettings, procfs: ProcFs) -> Self {
        Self::start_guarded(settings, procfs, None)
    }

    /// With `guard`: the node is identified through it when its process is not visible.
    fn start_guarded(settings: NodeWatcherSettings, procfs: ProcFs, guard: Option<GuardClient>) -> Self {
        let decider = Probe::start();
        let facts = decider.recipient();
        let (signaller, processes) = recorder::<NodeProcess>();
        let metrics = Metrics::register(&Registry::new(), &PodLabels::default(), "test").expect("metrics");
        let watcher = Supervisor::start(move |_| {
            let w = NodeWatcher::new(settings, procfs, facts, signaller, &metrics);
            match guard {
                Some(g) => w.with_guard(Arc::new(g)),
                None => w,
            }
        });
        Self {
            _watcher: watcher,
            decider,
            processes,
        }
    }

    fn events(&self) -> Vec<Event> {
        self.decider.events()
    }

    fn processes(&self) -> Vec<NodeProcess> {
        self.processes.lock().expect("lock").clone()
    }
}

fn settings(socket: &Path) -> NodeWatcherSettings {
    NodeWatcherSettings {
        poll_interval: Duration::from_millis(20),
        ..NodeWatcherSettings::new(socket, "fm-no-such-node-name")
    }
}

async fn start_sim(dir: &Path, socket: &Path) -> NodeSim {
    let creds = forge_sim::creds::write_test_credentials(dir, 1, 0).expect("credentials");
    NodeSim::start(NodeOptions::non_producing(
        "node-a",
        socket,
        &creds,
        dir.join("timeline.jsonl"),
    ))
    .await
    .expect("node starts")
}

/// A fake procfs at `root` in which process `pid` (started at `start_time`) listens on `socket`
/// (socket inode `inode`) with command line `args`.
fn fake_process(root: &Path, socket: &Path, inode: u64, pid: i32, start_time: u64, args: &[&str]) {
    std::fs::create_dir_all(root.join("net")).expect("mkdir net");
    std::fs::write(
        root.join("net/unix"),
        format!(
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 {inode} {}\n",
            socket.display()
        ),
    )
    .expect("net/unix");
    let proc_dir = root.join(pid.to_string());
    std::fs::create_dir_all(proc_dir.join("fd")).expect("mkdir fd");
    let fd = proc_dir.join("fd/3");
    let _ = std::fs::remove_file(&fd);
    std::os::unix::fs::symlink(format!("socket:[{inode}]"), &fd).expect("fd link");
    std::fs::write(
        proc_dir.join("stat"),
        format!("{pid} (cardano-node) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start_time} 0 0\n"),
    )
    .expect("stat");
    std::fs::write(proc_dir.join("comm"), "cardano-node\n").expect("comm");
    let mut cmdline = Vec::new();
    for a in args {
        cmdline.extend_from_slice(a.as_bytes());
        cmdline.push(0);
    }
    std::fs::write(proc_dir.join("cmdline"), cmdline).expect("cmdline");
}

/// A listener in this process that accepts (and drops) every connection.
fn accepting_listener(socket: &Path) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::UnixListener::bind(socket).expect("bind");
    tokio::spawn(async move { while listener.accept().await.is_ok() {} })
}

/// A node socket in `dir` that accepts (while the listener runs) and an empty `proc` directory
/// there: the node's process not visible (no shared process namespace).
fn accepting_without_a_process(dir: &Path) -> (PathBuf, PathBuf, tokio::task::JoinHandle<()>) {
    let socket = socket_in(dir);
    let empty_proc = dir.join("proc");
    std::fs::create_dir_all(&empty_proc).expect("mkdir");
    let listener = accepting_listener(&socket);
    (socket, empty_proc, listener)
}

fn socket_in(dir: &Path) -> PathBuf {
    dir.join("node.socket")
}

// === tests ===

#[actix::test]
async fn a_running_node_is_reported_up_with_its_process_and_down_when_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(dir.path());
    let w = Watched::start(settings(&socket), ProcFs::default());
    eventually("the absent node reported down", || {
        w.events() == [Event::NodeDown]
    })
    .await;

    let sim = start_sim(dir.path(), &socket).await;
    eventually("node up", || w.events().len() == 2).await;
    assert_eq!(w.events(), [Event::NodeDown, Event::NodeUp]);
    let own_pid = std::process::id() as i32;
    match w.processes().last() {
        Some(NodeProcess(Some(id))) => assert_eq!(id.pid, own_pid, "the socket's listener"),
        other => panic!("expected the node process, got {other:?}"),
    }

    sim.stop().await.expect("node stops");
    eventually("node down", || w.events().len() == 3).await;
    assert_eq!(w.events(), [Event::NodeDown, Event::NodeUp, Event::NodeDown]);
    // The simulated node ran in this test's process, which lives on: a node whose socket is
    // gone may still forge while its process lives, so it stays the stop's target.
    match w.processes().last() {
        Some(NodeProcess(Some(id))) => assert_eq!(id.pid, own_pid),
        other => panic!("a live process must stay addressable, got {other:?}"),
    }
    // Changes only: nothing more while the node stays down.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(w.events().len(), 3);
}

#[actix::test]
async fn a_restarted_node_is_reported_down_then_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(dir.path());
    let sim = start_sim(dir.path(), &socket).await;
    let w = Watched::start(
        NodeWatcherSettings {
            poll_interval: Duration::from_millis(100),
            ..settings(&socket)
        },
        ProcFs::default(),
    );
    eventually("node up", || w.events() == [Event::NodeUp]).await;
    // A new listener on the same socket, within one poll interval (a socket re-bound).
    sim.stop().await.expect("node stops");
    let _again = start_sim(dir.path(), &socket).await;
    eventually("down then up", || w.events().len() == 3).await;
    assert_eq!(w.events(), [Event::NodeUp, Event::NodeDown, Event::NodeUp]);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(w.events().len(), 3, "a steady node is not reported again");
}

#[actix::test]
async fn a_new_process_identity_is_a_restart_and_its_command_line_is_checked() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(dir.path());
    let proc_root = dir.path().join("proc");
    let _listener = accepting_listener(&socket);
    // The node was started without a non-producing flag although credentials are installed
    // before its start.
    fake_process(&proc_root, &socket, 4242, 777, 100, &["cardano-node", "run"]);
    let w = Watched::start(
        NodeWatcherSettings {
            expect_non_producing_start: true,
            ..settings(&socket)
        },
        ProcFs::at(&proc_root),
    );
    eventually("node up", || w.events() == [Event::NodeUp]).await;
    let first = w.processes();
    assert!(matches!(first.as_slice(), [NodeProcess(Some(id))] if id.pid == 777 && id.start_time == 100));
    let warned = |logs: &Logs| {
        logs.lines()
            .iter()
            .filter(|l| l.starts_with("WARN") && l.contains("neither non-producing flag"))
            .count()
    };
    assert_eq!(warned(&logs), 1, "{:?}", logs.lines());

    // The PID is reused by a new node process (another start time), started correctly.
    fake_process(
        &proc_root,
        &socket,
        4242,
        777,
        200,
        &["cardano-node", "run", "--start-as-non-producing-node"],
    );
    eventually("down then up", || w.events().len() == 3).await;
    assert_eq!(w.events(), [Event::NodeUp, Event::NodeDown, Event::NodeUp]);
    assert!(matches!(w.processes().last(), Some(NodeProcess(Some(id))) if id.start_time == 200));
    assert_eq!(
        warned(&logs),
        1,
        "the new process has the flag: {:?}",
        logs.lines()
    );
}

/// A node that stops listening while its process lives (shutting down, or its socket taken
/// over) is down for the Decider, but it may still forge, so it stays the stop's target: the
/// probe that catches the socket still accepting while no process listens on it must not
/// forget the process (seen once under load as a race with a node's shutdown).
#[actix::test]
async fn a_live_node_no_longer_listening_stays_the_stop_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = socket_in(dir.path());
    let proc_root = dir.path().join("proc");
    let _listener = accepting_listener(&socket);
    fake_process(&proc_root, &socket, 4242, 777, 100, &["cardano-node", "run"]);
    let w = Watched::start(settings(&socket), ProcFs::at(&proc_root));
    eventually("node up", || w.events() == [Event::NodeUp]).await;

    // The socket still accepts, but the node's listener is gone from `/proc/net/unix` (another
    // inode, which no process holds); process 777 lives on.
    std::fs::write(
        proc_root.join("net/unix"),
        format!(
            "Num       RefCount Protocol Flags    Type St Inode Path\n\
             0000000000000000: 00000002 00000000 00010000 0001 01 9999 {}\n",
            socket.display()
        ),
    )
    .expect("net/unix");
    eventually("node down", || w.events().len() == 2).await;
    assert_eq!(w.events(), [Event::NodeUp, Event::NodeDown]);
    match w.processes().last() {
        Some(NodeProcess(Some(id))) => assert_eq!((id.pid, id.start_time), (777, 100)),
        other => panic!("a live process must stay addressable, got {other:?}"),
    }
}

#[actix::test]
async fn an_accepting_socket_without_a_visible_process_is_down_with_a_warning() {
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, empty_proc, _listener) = accepting_without_a_process(dir.path());
    let w = Watched::start(settings(&socket), ProcFs::at(&empty_proc));
    eventually("reported down", || w.events() == [Event::NodeDown]).await;
    assert_eq!(w.processes(), [NodeProcess(None)]);
    eventually("the warning", || {
        logs.lines()
            .iter()
            .any(|l| l.starts_with("WARN") && l.contains("could not stop a forger"))
    })
    .await;
    // Said once, not at every probe.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let warnings = logs
        .lines()
        .iter()
        .filter(|l| l.contains("could not stop a forger"))
        .count();
    assert_eq!(warnings, 1);
    assert_eq!(w.events(), [Event::NodeDown]);
}

#[actix::test]
async fn a_stalled_guard_is_no_news_about_the_node() {
    // F3: the node socket accepts, the process is not visible here (no shared process
    // namespace), and the guard is alive but does not answer (SIGSTOP): nothing may be
    // concluded, least of all "the node is down".
    let logs = Logs::default();
    let _guard = tracing::subscriber::set_default(logs.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let (socket, empty_proc, _listener) = accepting_without_a_process(dir.path());
    let guard_socket = dir.path().join("guard.sock");
    let _stalled_guard = std::os::unix::net::UnixListener::bind(&guard_socket).expect("bind");
    let connect_timeout = Duration::from_millis(100);
    let w = Watched::start_guarded(
        NodeWatcherSettings {
            connect_timeout,
            ..settings(&socket)
        },
        ProcFs::at(&empty_proc),
        Some(GuardClient::new(guard_socket, connect_timeout)),
    );
    eventually("the unknown state said", || {
        logs.lines()
            .iter()
            .any(|l| l.starts_with("WARN") && l.contains("node state unknown"))
    })
    .await;
    assert!(w.events().is_empty(), "{:?}", w.events());
    assert!(w.processes().is_empty(), "{:?}", w.processes());
}
