//! The operator commands' API access: kube contexts resolved as kubectl does (`--kubeconfig`,
//! else `$KUBECONFIG`, else `~/.kube/config`; `--context`, `--all-contexts`, else the current
//! context; `-n`, else the context's namespace, else `default`), one client per context, the
//! reads the view needs and the override patch. Every request has a timeout; a context that
//! fails is reported as unreadable, not fatal.
use std::time::Duration;

use anyhow::Context as _;
use forge_core::{
    crd::{CardanoForgeCluster, CardanoLeader},
    status::SidecarStatus,
};
use jiff::Timestamp;
use k8s_openapi::api::{coordination::v1::Lease, core::v1::Pod};
use kube::{
    Api, Client,
    api::{ListParams, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{
    PodStatus, Target,
    view::{self, ContextInput, Fetched, PodInput, View},
};

/// One region: a kube context, its namespace and a client (or why there is none).
pub struct Region {
    /// The context name.
    pub context: String,
    /// The namespace used.
    pub namespace: String,
    client: Result<Client, String>,
    timeout: Duration,
    selector: String,
    pod_port: String,
    pod_status: PodStatus,
}

/// What one round of reads returned (the plans need the objects, not only the view).
pub struct Read {
    inputs: Vec<ContextInput>,
}

impl Read {
    /// The CardanoForgeCluster `name` read in `context`.
    pub fn cluster(&self, context: &str, name: &str) -> Option<&CardanoForgeCluster> {
        self.inputs
            .iter()
            .filter(|i| i.context == context)
            .filter_map(|i| i.fetched.as_ref().ok())
            .flat_map(|f| f.clusters.iter())
            .find(|c| c.metadata.name.as_deref() == Some(name))
    }

    /// Its `metadata.resourceVersion` as read.
    pub fn resource_version(&self, context: &str, name: &str) -> Option<String> {
        self.cluster(context, name)
            .and_then(|c| c.metadata.resource_version.clone())
    }
}

fn load(target: &Target) -> anyhow::Result<Kubeconfig> {
    match &target.kubeconfig {
        Some(p) => Kubeconfig::read_from(p).with_context(|| format!("--kubeconfig {}", p.display())),
        None => Kubeconfig::read().context("reading the kubeconfig ($KUBECONFIG or ~/.kube/config)"),
    }
}

/// Resolves the contexts and builds a client for each.
pub async fn connect(target: &Target) -> anyhow::Result<Vec<Region>> {
    let kc = load(target)?;
    let names: Vec<String> = if target.all_contexts {
        kc.contexts.iter().map(|c| c.name.clone()).collect()
    } else if !target.context.is_empty() {
        target.context.clone()
    } else {
        vec![
            kc.current_context
                .clone()
                .filter(|c| !c.is_empty())
                .context("no current context in the kubeconfig: pass --context or --all-contexts")?,
        ]
    };
    if names.is_empty() {
        anyhow::bail!("the kubeconfig has no contexts");
    }
    let mut regions = Vec::new();
    for name in names {
        let known = kc.contexts.iter().find(|c| c.name == name);
        let Some(known) = known else {
            anyhow::bail!(
                "--context {name}: not in the kubeconfig (contexts: {})",
                kc.contexts
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        };
        let namespace = target
            .namespace
            .clone()
            .or_else(|| known.context.as_ref().and_then(|c| c.namespace.clone()))
            .unwrap_or_else(|| "default".to_string());
        let options = KubeConfigOptions {
            context: Some(name.clone()),
            ..Default::default()
        };
        let client = match kube::Config::from_custom_kubeconfig(kc.clone(), &options).await {
            Ok(mut config) => {
                config.connect_timeout = Some(target.request_timeout);
                config.read_timeout = Some(target.request_timeout);
                config.write_timeout = Some(target.request_timeout);
                Client::try_from(config).map_err(|e| format!("client: {e}"))
            }
            Err(e) => Err(format!("kubeconfig: {e}")),
        };
        regions.push(Region {
            context: name,
            namespace,
            client,
            timeout: target.request_timeout,
            selector: target.selector.clone(),
            pod_port: target.pod_port.clone(),
            pod_status: target.pod_status,
        });
    }
    Ok(regions)
}

/// A list that treats "not found" (the CRD is not installed there) as empty.
async fn list_or_empty<K>(api: Api<K>) -> Result<Vec<K>, String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(Vec::new()),
        Err(e) => Err(chain(&e)),
    }
}

/// An error with its causes (`client error (Connect): tcp connect error: Connection refused`):
/// kube's own message alone hides why.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn fetch(region: &Region) -> Result<Fetched, String> {
    let client = region.client.as_ref().map_err(Clone::clone)?;
    let ns = region.namespace.as_str();
    let all = async {
        let (clusters, leaders, leases, pods) = tokio::join!(
            list_or_empty(Api::<CardanoForgeCluster>::namespaced(client.clone(), ns)),
            list_or_empty(Api::<CardanoLeader>::namespaced(client.clone(), ns)),
            list_or_empty(Api::<Lease>::namespaced(client.clone(), ns)),
            pods(region, client),
        );
        Ok(Fetched {
            clusters: clusters?,
            leaders: leaders?,
            leases: leases?,
            pods,
        })
    };
    // The client's own timeouts bound each phase; this bounds the whole round.
    tokio::time::timeout(region.timeout * 2, all)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {:?}", region.timeout * 2)))
}

/// The sidecar pods (by the label selector) and each one's `/status`, read concurrently.
async fn pods(region: &Region, client: &Client) -> Result<Vec<PodInput>, String> {
    let api = Api::<Pod>::namespaced(client.clone(), &region.namespace);
    let listed = api
        .list(&ListParams::default().labels(&region.selector))
        .await
        .map_err(|e| format!("listing pods ({}): {}", region.selector, chain(&e)))?;
    let reads = listed.items.iter().map(|p| async move {
        let name = p.metadata.name.clone().unwrap_or_default();
        let status = pod_status(region, client, p).await;
        PodInput { name, status }
    });
    Ok(futures::future::join_all(reads).await)
}

/// The port `--pod-port` names in the pod's containers (a number is taken as is).
fn pod_port(pod: &Pod, port: &str) -> Option<u16> {
    if let Ok(n) = port.parse() {
        return Some(n);
    }
    pod.spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some(port))
        .and_then(|p| u16::try_from(p.container_port).ok())
}

async fn pod_status(region: &Region, client: &Client, pod: &Pod) -> Result<SidecarStatus, String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if region.pod_status == PodStatus::Off {
        return Err("not read (--pod-status off)".to_string());
    }
    let port = pod_port(pod, &region.pod_port)
        .ok_or_else(|| format!("no container port {:?} (--pod-port)", region.pod_port))?;
    let mut tried = Vec::new();
    if matches!(region.pod_status, PodStatus::Auto | PodStatus::Proxy) {
        match via_proxy(region, client, name, port).await {
            Ok(v) => return Ok(v),
            Err(e) => tried.push(format!("API server proxy: {e}")),
        }
    }
    if matches!(region.pod_status, PodStatus::Auto | PodStatus::Direct) {
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref());
        match ip {
            None => tried.push("no pod IP".to_string()),
            Some(ip) => match direct(ip, port, region.timeout).await {
                Ok(v) => return Ok(v),
                Err(e) => tried.push(format!("{ip}:{port}: {e}")),
            },
        }
    }
    Err(format!("/status not reached ({})", tried.join("; ")))
}

async fn via_proxy(region: &Region, client: &Client, pod: &str, port: u16) -> Result<SidecarStatus, String> {
    let path = format!(
        "/api/v1/namespaces/{}/pods/{pod}:{port}/proxy/status",
        region.namespace
    );
    let request = http::Request::get(path)
        .body(Vec::new())
        .map_err(|e| e.to_string())?;
    let text = tokio::time::timeout(region.timeout, client.request_text(request))
        .await
        .map_err(|_| format!("no answer within {:?}", region.timeout))?
        .map_err(|e| match e {
            kube::Error::Api(s) => format!("{} {}", s.code, s.message),
            e => chain(&e),
        })?;
    read_status(&text)
}

/// `GET /status` straight to the pod (HTTP/1.0, one request, bounded).
async fn direct(ip: &str, port: u16, timeout: Duration) -> Result<SidecarStatus, String> {
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    let get = async {
        let mut stream = tokio::net::TcpStream::connect(format!("{host}:{port}")).await?;
        stream
            .write_all(format!("GET /status HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await?;
        let mut raw = Vec::new();
        stream.take(4 << 20).read_to_end(&mut raw).await?;
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(timeout, get)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
        .map_err(|e| e.to_string())?;
    let raw = String::from_utf8_lossy(&raw);
    let (head, body) = raw.split_once("\r\n\r\n").ok_or("no HTTP response")?;
    let code = head.split_whitespace().nth(1).unwrap_or("?");
    if code != "200" {
        return Err(format!("HTTP {code}"));
    }
    read_status(body)
}

/// A sidecar's `/status` body: its document, or the default one for `null` (a sidecar whose
/// Decider has not published yet: its forging then reads as unknown).
fn read_status(body: &str) -> Result<SidecarStatus, String> {
    serde_json::from_str::<Option<SidecarStatus>>(body)
        .map(Option::unwrap_or_default)
        .map_err(|e| format!("not a /status document: {e}"))
}

/// Reads every region (concurrently) and builds the view.
pub async fn read_view(regions: &[Region]) -> (View, Read) {
    let fetched = futures::future::join_all(regions.iter().map(fetch)).await;
    let inputs: Vec<ContextInput> = regions
        .iter()
        .zip(fetched)
        .map(|(r, f)| ContextInput {
            context: r.context.clone(),
            namespace: r.namespace.clone(),
            fetched: f,
        })
        .collect();
    let view = view::build(&inputs, Timestamp::now());
    (view, Read { inputs })
}

/// Writes one merge patch to a CardanoForgeCluster's spec.
pub async fn patch_override(region: &Region, cluster: &str, patch: &serde_json::Value) -> anyhow::Result<()> {
    let client = region
        .client
        .as_ref()
        .map_err(|e| anyhow::anyhow!("context {}: {e}", region.context))?;
    let api: Api<CardanoForgeCluster> = Api::namespaced(client.clone(), &region.namespace);
    api.patch(cluster, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .map_err(|e| match e {
            kube::Error::Api(s) if s.code == 409 => anyhow::anyhow!(
                "it changed since it was read (409 Conflict): run the command again to see the new state"
            ),
            e => anyhow::Error::new(e),
        })?;
    Ok(())
}
