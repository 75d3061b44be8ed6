//! A running [`ApiServer`]: its start (TLS material, tokens and kubeconfigs, etcd, then
//! kube-apiserver until `/readyz`), what it tells about itself, its clients, and its stop.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::material::{kubeconfig_text, make_tls, random_token, valid_identity};
use super::{
    ADMIN, ApiServerError, ApiServerOptions, START_ATTEMPTS, STOP_GRACE, apiserver_binary,
    client_from_kubeconfig, etcd_binary, free_ports, io,
};
use crate::process::{spawn_tied, terminate, tied_command};

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
