//! Launches a real kube-apiserver (1.20.2, built by `scripts/kube-apiserver.sh`) over its own etcd
//! on loopback, for tests and for `forge-manager sim apiserver` (docs/architecture.md, "Test
//! world").
//!
//! Each [`ApiServer`] owns a temporary directory (etcd data, TLS material, token file, logs,
//! kubeconfigs), free ports on 127.0.0.1, and two child processes. Several may run at once.
//! TLS: a throwaway CA and a serving certificate for `127.0.0.1`/`localhost`, made with the
//! `openssl` CLI (EC P-256, fast); kubeconfigs trust that CA, so a fault proxy on 127.0.0.1 in
//! front of the server passes verification too. Authentication: a static token file with an
//! `admin` user (group `system:masters`) and one user per requested identity. Authorisation:
//! `AlwaysAllow` unless [`ApiServerOptions::authorization_mode`] says otherwise.
//!
//! The children die with the test process (see [`crate::process`]); [`ApiServer::stop`] and
//! `Drop` stop them (SIGTERM, SIGKILL after a grace period), reap them and remove the directory.
//! Never used by the sidecar in production.
//!
//! The names, errors, options, binary lookup and test helpers are here; `server` starts, serves
//! and stops an [`ApiServer`], and `material` makes what it starts with (identity names,
//! tokens, TLS material, kubeconfigs).

mod material;
mod server;

use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use server::ApiServer;

/// Environment variable naming the kube-apiserver binary; overrides the cache path.
pub const APISERVER_ENV: &str = "FORGE_KUBE_APISERVER";
/// Environment variable naming the etcd binary (default `/usr/bin/etcd`).
pub const ETCD_ENV: &str = "FORGE_ETCD";
/// The identity of the all-powerful user every server has.
pub const ADMIN: &str = "admin";
/// How long a child gets between SIGTERM and SIGKILL. kube-apiserver 1.20 stops in well under a
/// second on loopback; etcd too. Short, because tests start and stop many servers.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Bind attempts: a port picked free can be taken by someone else before the child binds it.
const START_ATTEMPTS: usize = 3;

/// Errors starting or using an [`ApiServer`].
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    /// The kube-apiserver binary is not where we looked.
    #[error(
        "kube-apiserver binary not found at {0}: run scripts/kube-apiserver.sh (about 4 minutes) \
         or set {APISERVER_ENV} to its path"
    )]
    BinaryMissing(PathBuf),
    /// An identity name cannot be used as a user name and file name.
    #[error("identity {0:?}: must be 1-63 characters of a-z, 0-9, '-' or '.'")]
    BadIdentity(String),
    /// A file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
    /// An `openssl` command failed.
    #[error("openssl {step} failed: {stderr}")]
    Openssl {
        /// Which step.
        step: &'static str,
        /// Its standard error.
        stderr: String,
    },
    /// A child process exited during start-up.
    #[error("{process} exited during start-up ({status}); last log lines:\n{log_tail}")]
    Exited {
        /// `etcd` or `kube-apiserver`.
        process: &'static str,
        /// Its exit status.
        status: String,
        /// The end of its log.
        log_tail: String,
    },
    /// The server did not become ready in time.
    #[error("kube-apiserver not ready after {0:?}; last log lines:\n{1}")]
    NotReady(Duration, String),
    /// Building a kube client failed.
    #[error("kube client: {0}")]
    Client(String),
}

impl ApiServerError {
    /// A bounded label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::BinaryMissing(_) => "binary_missing",
            Self::BadIdentity(_) => "bad_identity",
            Self::Io { .. } => "io",
            Self::Openssl { .. } => "openssl",
            Self::Exited { .. } => "exited",
            Self::NotReady(..) => "not_ready",
            Self::Client(_) => "client",
        }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ApiServerError {
    let what = what.into();
    move |source| ApiServerError::Io { what, source }
}

/// What to start.
#[derive(Debug, Clone)]
pub struct ApiServerOptions {
    /// Users to create besides `admin` (for example pod names), each with its own token and
    /// kubeconfig.
    pub identities: Vec<String>,
    /// Keep everything in this directory (created if needed, not removed at stop) instead of a
    /// fresh temporary directory. The etcd data in it is wiped at each start.
    pub dir: Option<PathBuf>,
    /// `--etcd-compaction-interval` (kube-apiserver's default is 5 min).
    pub etcd_compaction_interval: Option<Duration>,
    /// Start-up deadline, waiting for `/readyz`.
    pub ready_timeout: Duration,
    /// More kube-apiserver flags, appended as given.
    pub extra_args: Vec<String>,
    /// `--authorization-mode` (default `AlwaysAllow`; `RBAC` to check Roles: `admin` is in
    /// `system:masters` and the other identities get nothing unless bound). A repeated flag
    /// would add a mode, not replace it, hence this option.
    pub authorization_mode: String,
    /// The address kube-apiserver binds, advertises and is named by in its certificate and the
    /// kubeconfigs (default 127.0.0.1; the test cluster uses its host-side bridge address so
    /// that pods reach it too).
    pub address: IpAddr,
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        Self {
            identities: Vec::new(),
            dir: None,
            etcd_compaction_interval: None,
            ready_timeout: Duration::from_secs(60),
            extra_args: Vec::new(),
            authorization_mode: "AlwaysAllow".into(),
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
        }
    }
}

impl ApiServerOptions {
    /// Options with these identities and defaults otherwise.
    pub fn with_identities<I: IntoIterator<Item = S>, S: Into<String>>(ids: I) -> Self {
        Self {
            identities: ids.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// Finds the kube-apiserver binary: `$FORGE_KUBE_APISERVER`, else the cache path that
/// `scripts/kube-apiserver.sh` fills.
pub fn apiserver_binary() -> Result<PathBuf, ApiServerError> {
    let path = match std::env::var_os(APISERVER_ENV) {
        Some(p) => PathBuf::from(p),
        None => {
            let cache = std::env::var_os("FORGE_CACHE_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::var_os("XDG_CACHE_HOME")
                        .map(PathBuf::from)
                        .unwrap_or_else(|| {
                            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                                .join(".cache")
                        })
                        .join("forge-manager")
                });
            cache.join("kube-apiserver-1.20.2").join("kube-apiserver")
        }
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(ApiServerError::BinaryMissing(path))
    }
}

fn etcd_binary() -> PathBuf {
    std::env::var_os(ETCD_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/etcd"))
}

/// Picks `n` distinct free ports on 127.0.0.1 (bound together, then released).
pub fn free_ports(n: usize) -> Result<Vec<u16>, ApiServerError> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io("binding a free port"))?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()).map_err(io("local_addr")))
        .collect()
}

/// A kube client from a kubeconfig file, optionally with connect/read/write timeouts.
pub async fn client_from_kubeconfig(
    path: &Path,
    timeout: Option<Duration>,
) -> Result<kube::Client, ApiServerError> {
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| ApiServerError::Client(e.to_string()))?;
    let mut config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| ApiServerError::Client(e.to_string()))?;
    if let Some(t) = timeout {
        config.connect_timeout = Some(t);
        config.read_timeout = Some(t);
        config.write_timeout = Some(t);
    }
    kube::Client::try_from(config).map_err(|e| ApiServerError::Client(e.to_string()))
}

/// The environment variable that lets a quick local loop skip the tests that need the real
/// kube-apiserver. Never set in CI: there a missing binary is a failure.
pub const SKIP_ENV: &str = "FORGE_SKIP_APISERVER_TESTS";

/// True (and says so loudly on stderr) when `FORGE_SKIP_APISERVER_TESTS=1` asks `test` to skip.
pub fn skipped(test: &str) -> bool {
    let skip = std::env::var(SKIP_ENV).as_deref() == Ok("1");
    if skip {
        // Written to the real stderr, past the test harness's capture of `eprintln!`.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! SKIPPED {test}: {SKIP_ENV}=1, the real kube-apiserver tests do not run !!!\n"
        );
    }
    skip
}

/// For a test that starts its own API servers: false (loudly) when [`skipped`]; a missing
/// binary panics with a message that names `test` and says how to build it.
pub fn runs_for_test(test: &str) -> bool {
    if skipped(test) {
        return false;
    }
    if let Err(e) = apiserver_binary() {
        panic!("{test}: {e}");
    }
    true
}

/// The scenario tests of one test binary run one at a time (each starts its own API servers
/// and many processes): each holds this lock while it runs.
pub static ONE_AT_A_TIME: std::sync::LazyLock<tokio::sync::Mutex<()>> =
    std::sync::LazyLock::new(|| tokio::sync::Mutex::new(()));

/// Waits for the scenarios before `test` to end ([`ONE_AT_A_TIME`]); `None` when the API
/// server tests do not run ([`runs_for_test`]).
pub async fn take_turn(test: &str) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    let one = ONE_AT_A_TIME.lock().await;
    runs_for_test(test).then_some(one)
}

/// For tests: a started API server, or `None` (loudly) when [`skipped`]. A missing binary or a
/// failed start panics with a message that says how to build it.
pub async fn start_for_test(test: &str, opts: ApiServerOptions) -> Option<ApiServer> {
    if !runs_for_test(test) {
        return None;
    }
    match ApiServer::start(opts).await {
        Ok(s) => {
            eprintln!(
                "{test}: kube-apiserver ready at {} after {:?}",
                s.url(),
                s.startup_time()
            );
            Some(s)
        }
        Err(e) => panic!("{test}: starting the API server failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::material::{kubeconfig_text, make_tls, valid_identity};
    use super::*;

    #[test]
    fn identities_must_be_simple_names() {
        assert!(valid_identity("pod-0"));
        assert!(valid_identity("cardano-bp-1.eu"));
        assert!(!valid_identity(""));
        assert!(!valid_identity("admin"));
        assert!(!valid_identity("Pod"));
        assert!(!valid_identity("a,b"));
        assert!(!valid_identity(&"a".repeat(64)));
    }

    #[test]
    fn a_kubeconfig_is_readable_by_kube() {
        let text = kubeconfig_text("https://127.0.0.1:1234", Path::new("/tmp/ca.crt"), "pod-0", "abc");
        let kc = kube::config::Kubeconfig::from_yaml(&text).expect("parses");
        assert_eq!(kc.current_context.as_deref(), Some("pod-0@forge-sim"));
        let cluster = kc.clusters[0].cluster.as_ref().expect("cluster");
        assert_eq!(cluster.server.as_deref(), Some("https://127.0.0.1:1234"));
    }

    #[test]
    fn free_ports_are_distinct() {
        let ports = free_ports(3).expect("ports");
        assert_ne!(ports[0], ports[1]);
        assert_ne!(ports[1], ports[2]);
    }

    #[test]
    fn tls_material_is_made_with_openssl() {
        let dir = tempfile::tempdir().expect("tempdir");
        make_tls(dir.path(), IpAddr::V4(Ipv4Addr::LOCALHOST)).expect("tls");
        for f in ["ca.crt", "serving.crt", "serving.key", "sa.key"] {
            assert!(dir.path().join(f).is_file(), "{f}");
        }
    }
}
