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

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{spawn_tied, terminate, tied_command};

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

/// Where the working directory lives: owned (removed at stop) or given by the caller.
#[derive(Debug)]
enum WorkDir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

impl WorkDir {
    fn path(&self) -> &Path {
        match self {
            Self::Temp(t) => t.path(),
            Self::Given(p) => p,
        }
    }
}

/// A running etcd + kube-apiserver pair on loopback. Stopped by [`ApiServer::stop`] or `Drop`.
#[derive(Debug)]
pub struct ApiServer {
    etcd: Option<Child>,
    apiserver: Option<Child>,
    addr: SocketAddr,
    dir: Option<WorkDir>,
    tokens: BTreeMap<String, String>,
    kubeconfigs: BTreeMap<String, PathBuf>,
    ca: PathBuf,
    startup: Duration,
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

fn valid_identity(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name != ADMIN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn random_token() -> Result<String, ApiServerError> {
    use std::io::Read;
    let mut buf = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(io("/dev/urandom"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn openssl(step: &'static str, args: &[&str], cwd: &Path) -> Result<(), ApiServerError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(io("running openssl (apt-get install openssl)"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(ApiServerError::Openssl {
            step,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

/// Makes `ca.crt`, `serving.crt`/`serving.key` (SAN 127.0.0.1, `address`, the `kubernetes`
/// Service's 10.0.0.1, localhost) and `sa.key`/`sa.pub` (kube-apiserver 1.20 reads no public key
/// out of a PKCS#8 private key file) in `dir`.
fn make_tls(dir: &Path, address: IpAddr) -> Result<(), ApiServerError> {
    let ec = [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
    ];
    for key in ["ca.key", "serving.key", "sa.key"] {
        let mut args = ec.to_vec();
        args.push(key);
        openssl("genpkey", &args, dir)?;
    }
    openssl(
        "pkey (sa.pub)",
        &["pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub"],
        dir,
    )?;
    openssl(
        "req (CA)",
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-subj",
            "/CN=forge-sim-ca",
            "-days",
            "3650",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    )?;
    openssl(
        "req (serving)",
        &[
            "req",
            "-new",
            "-key",
            "serving.key",
            "-subj",
            "/CN=kube-apiserver",
            "-out",
            "serving.csr",
        ],
        dir,
    )?;
    std::fs::write(
        dir.join("serving.ext"),
        format!(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n\
             subjectAltName=IP:127.0.0.1,IP:{address},IP:10.0.0.1,DNS:localhost,DNS:kubernetes,\
             DNS:kubernetes.default.svc\n"
        ),
    )
    .map_err(io("writing serving.ext"))?;
    openssl(
        "x509 (serving)",
        &[
            "x509",
            "-req",
            "-in",
            "serving.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "serving.ext",
            "-out",
            "serving.crt",
        ],
        dir,
    )
}

/// The text of a kubeconfig for `user` with `token` against `server`, trusting `ca`.
fn kubeconfig_text(server: &str, ca: &Path, user: &str, token: &str) -> String {
    // JSON strings are valid YAML scalars: quoting without a YAML writer.
    let q = |s: &str| serde_json::Value::String(s.to_owned()).to_string();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: forge-sim\n  cluster:\n    server: {server}\n    \
         certificate-authority: {ca}\nusers:\n- name: {user}\n  user:\n    token: {token}\ncontexts:\n- name: \
         {ctx}\n  context:\n    cluster: forge-sim\n    user: {user}\n    namespace: default\ncurrent-context: {ctx}\n",
        server = q(server),
        ca = q(&ca.to_string_lossy()),
        user = q(user),
        token = q(token),
        ctx = q(&format!("{user}@forge-sim")),
    )
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl ApiServer {
    /// Starts etcd and kube-apiserver and waits until `/readyz` answers `ok`.
    pub async fn start(opts: ApiServerOptions) -> Result<ApiServer, ApiServerError> {
        let binary = apiserver_binary()?;
        if let Some(bad) = opts.identities.iter().find(|i| !valid_identity(i)) {
            return Err(ApiServerError::BadIdentity(bad.clone()));
        }
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binary, &opts).await {
                Ok(s) => return Ok(s),
                Err(e @ ApiServerError::Exited { .. })
                    if e.to_string().contains("address already in use") =>
                {
                    last_err = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(ApiServerError::NotReady(opts.ready_timeout, String::new())))
    }

    async fn start_once(binary: &Path, opts: &ApiServerOptions) -> Result<ApiServer, ApiServerError> {
        let started = Instant::now();
        let dir = match &opts.dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
                let d = std::fs::canonicalize(d).map_err(io(format!("resolving {}", d.display())))?;
                WorkDir::Given(d)
            }
            None => WorkDir::Temp(
                tempfile::Builder::new()
                    .prefix("forge-sim-apiserver-")
                    .tempdir()
                    .map_err(io("creating a temp dir"))?,
            ),
        };
        let root = dir.path().to_owned();
        let ports = free_ports(3)?;
        let (client_port, peer_port, secure_port) = (ports[0], ports[1], ports[2]);
        let addr = SocketAddr::new(opts.address, secure_port);
        let mut server = ApiServer {
            etcd: None,
            apiserver: None,
            addr,
            dir: Some(dir),
            tokens: BTreeMap::new(),
            kubeconfigs: BTreeMap::new(),
            ca: root.join("ca.crt"),
            startup: Duration::ZERO,
        };

        make_tls(&root, opts.address)?;
        let mut csv = String::new();
        for id in std::iter::once(ADMIN.to_owned()).chain(opts.identities.iter().cloned()) {
            let token = random_token()?;
            let groups = if id == ADMIN {
                "system:masters"
            } else {
                "forge-sim"
            };
            csv.push_str(&format!("{token},{id},{id},\"{groups}\"\n"));
            server.tokens.insert(id, token);
        }
        std::fs::write(root.join("tokens.csv"), csv).map_err(io("writing tokens.csv"))?;
        let url = server.url();
        for (id, token) in &server.tokens {
            let path = root.join(format!("kubeconfig-{id}.yaml"));
            std::fs::write(&path, kubeconfig_text(&url, &server.ca, id, token))
                .map_err(io(format!("writing {}", path.display())))?;
            server.kubeconfigs.insert(id.clone(), path);
        }

        // etcd
        let etcd_data = root.join("etcd");
        // A reused --dir holds the data of an earlier member with other ports: start afresh.
        if etcd_data.exists() {
            std::fs::remove_dir_all(&etcd_data)
                .map_err(io(format!("removing old {}", etcd_data.display())))?;
        }
        let etcd_log = root.join("etcd.log");
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let mut cmd = tied_command(&etcd_binary());
        cmd.args(["--name", "forge-sim", "--data-dir"])
            .arg(&etcd_data)
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args([
                "--initial-cluster",
                &format!("forge-sim={peer_url}"),
                "--initial-cluster-state",
                "new",
            ])
            .args([
                "--logger",
                "zap",
                "--log-outputs",
                "stderr",
                "--log-level",
                "warn",
            ]);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ETCD") {
                cmd.env_remove(k);
            }
        }
        let log = std::fs::File::create(&etcd_log).map_err(io("creating etcd.log"))?;
        let log2 = log.try_clone().map_err(io("etcd.log"))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        server.etcd = Some(spawn_tied(cmd).map_err(io(format!("starting {}", etcd_binary().display())))?);

        // kube-apiserver
        let kas_log = root.join("kube-apiserver.log");
        let mut cmd = tied_command(binary);
        let p = |name: &str| root.join(name).to_string_lossy().into_owned();
        cmd.arg(format!("--etcd-servers={client_url}"))
            .arg(format!("--bind-address={}", opts.address))
            .arg(format!("--advertise-address={}", opts.address))
            .arg(format!("--secure-port={secure_port}"))
            .arg(format!("--cert-dir={}", p("certs")))
            .arg(format!("--tls-cert-file={}", p("serving.crt")))
            .arg(format!("--tls-private-key-file={}", p("serving.key")))
            .arg("--service-account-issuer=https://kubernetes.default.svc.cluster.local")
            .arg(format!("--service-account-key-file={}", p("sa.pub")))
            .arg(format!("--service-account-signing-key-file={}", p("sa.key")))
            .arg(format!("--authorization-mode={}", opts.authorization_mode))
            .arg(format!("--token-auth-file={}", p("tokens.csv")))
            .arg("--service-cluster-ip-range=10.0.0.0/24")
            .arg("--enable-priority-and-fairness=false")
            .arg("--profiling=false")
            .arg("--logtostderr=true")
            .arg("--v=0");
        if let Some(every) = opts.etcd_compaction_interval {
            cmd.arg(format!("--etcd-compaction-interval={}ms", every.as_millis()));
        }
        cmd.args(&opts.extra_args);
        let log = std::fs::File::create(&kas_log).map_err(io("creating kube-apiserver.log"))?;
        let log2 = log.try_clone().map_err(io("kube-apiserver.log"))?;
        cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
        server.apiserver = Some(spawn_tied(cmd).map_err(io(format!("starting {}", binary.display())))?);

        server.wait_ready(opts.ready_timeout, &etcd_log, &kas_log).await?;
        server.startup = started.elapsed();
        Ok(server)
    }

    async fn wait_ready(
        &mut self,
        timeout: Duration,
        etcd_log: &Path,
        kas_log: &Path,
    ) -> Result<(), ApiServerError> {
        let deadline = Instant::now() + timeout;
        let client = self.client_with(ADMIN, Some(Duration::from_secs(2))).await?;
        loop {
            for (name, child, log) in [
                ("etcd", &mut self.etcd, etcd_log),
                ("kube-apiserver", &mut self.apiserver, kas_log),
            ] {
                if let Some(c) = child.as_mut()
                    && let Ok(Some(status)) = c.try_wait()
                {
                    return Err(ApiServerError::Exited {
                        process: name,
                        status: status.to_string(),
                        log_tail: log_tail(log),
                    });
                }
            }
            let req = http::Request::get("/readyz").body(Vec::new());
            if let Ok(req) = req
                && let Ok(Ok(body)) =
                    tokio::time::timeout(Duration::from_secs(2), client.request_text(req)).await
                && body.trim() == "ok"
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ApiServerError::NotReady(timeout, log_tail(kas_log)));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The server's address (for a fault proxy's upstream).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The admin kubeconfig (group `system:masters`).
    pub fn admin_kubeconfig(&self) -> &Path {
        &self.kubeconfigs[ADMIN]
    }

    /// The kubeconfig of an identity given at start (or `admin`).
    pub fn kubeconfig(&self, identity: &str) -> Option<&Path> {
        self.kubeconfigs.get(identity).map(PathBuf::as_path)
    }

    /// All kubeconfigs by identity, `admin` included.
    pub fn kubeconfigs(&self) -> &BTreeMap<String, PathBuf> {
        &self.kubeconfigs
    }

    /// The bearer token of an identity.
    pub fn token(&self, identity: &str) -> Option<&str> {
        self.tokens.get(identity).map(String::as_str)
    }

    /// The CA certificate the kubeconfigs trust.
    pub fn ca_file(&self) -> &Path {
        &self.ca
    }

    /// The working directory (logs: `etcd.log`, `kube-apiserver.log`).
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_ref().map(WorkDir::path)
    }

    /// Time from `start` to ready.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// PIDs of etcd and kube-apiserver while they run.
    pub fn pids(&self) -> (Option<u32>, Option<u32>) {
        (
            self.etcd.as_ref().map(Child::id),
            self.apiserver.as_ref().map(Child::id),
        )
    }

    /// Writes (and returns) a kubeconfig for `identity` whose server is `proxy` instead of the
    /// API server, for the fault proxy. The serving certificate names 127.0.0.1, so TLS
    /// verification still passes through a proxy on loopback.
    pub fn kubeconfig_via(&self, identity: &str, proxy: SocketAddr) -> Result<PathBuf, ApiServerError> {
        let token = self
            .token(identity)
            .ok_or_else(|| ApiServerError::BadIdentity(identity.to_owned()))?;
        let dir = self
            .dir()
            .ok_or_else(|| ApiServerError::Client("server is stopped".into()))?;
        let path = dir.join(format!("kubeconfig-{identity}-via-{}.yaml", proxy.port()));
        std::fs::write(
            &path,
            kubeconfig_text(&format!("https://{proxy}"), &self.ca, identity, token),
        )
        .map_err(io(format!("writing {}", path.display())))?;
        Ok(path)
    }

    /// A kube client for `identity` (no read timeout, as kube's default).
    pub async fn client(&self, identity: &str) -> Result<kube::Client, ApiServerError> {
        self.client_with(identity, None).await
    }

    /// A kube client for `identity` with a read timeout.
    pub async fn client_with(
        &self,
        identity: &str,
        read_timeout: Option<Duration>,
    ) -> Result<kube::Client, ApiServerError> {
        let path = self
            .kubeconfig(identity)
            .ok_or_else(|| ApiServerError::BadIdentity(identity.to_owned()))?;
        client_from_kubeconfig(path, read_timeout).await
    }

    /// Creates our CustomResourceDefinitions as `admin` and waits (up to 10 s) until the server
    /// serves both kinds.
    pub async fn install_crds(&self) -> Result<(), ApiServerError> {
        use forge_core::crd::{CardanoForgeCluster, CardanoLeader, definitions};
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::{Api, api::PostParams};

        let admin = self.client("admin").await?;
        let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
        for crd in definitions() {
            crds.create(&PostParams::default(), &crd)
                .await
                .map_err(|e| ApiServerError::Client(format!("creating CRD {:?}: {e}", crd.metadata.name)))?;
        }
        let cfcs: Api<CardanoForgeCluster> = Api::namespaced(admin.clone(), "default");
        let leaders: Api<CardanoLeader> = Api::namespaced(admin, "default");
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(10) {
            if cfcs.list(&Default::default()).await.is_ok() && leaders.list(&Default::default()).await.is_ok()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(ApiServerError::Client("CRDs not served within 10 s".into()))
    }

    /// Stops kube-apiserver, then etcd, reaps both and removes the temporary directory.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.apiserver.take() {
            terminate(&mut c, STOP_GRACE);
        }
        if let Some(mut c) = self.etcd.take() {
            terminate(&mut c, STOP_GRACE);
        }
        if let Some(WorkDir::Temp(t)) = self.dir.take() {
            let _ = t.close();
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
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

/// For tests: a started API server, or `None` (loudly) when [`skipped`]. A missing binary or a
/// failed start panics with a message that says how to build it.
pub async fn start_for_test(test: &str, opts: ApiServerOptions) -> Option<ApiServer> {
    if skipped(test) {
        return None;
    }
    if let Err(e) = apiserver_binary() {
        panic!("{test}: {e}");
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
