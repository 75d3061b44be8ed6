//! Drop-in next to the reference chart's objects: with `POOL_ID` set, no explicit names and the
//! default `NAMING_SCHEME=hashed`, a sidecar whose hashed CardanoForgeCluster does not exist
//! follows the reference-named one (`{network}-{poolShort}-{region}`) that does, and says so in
//! its log. Real kube-apiserver (the test world's); the sidecar is the real binary.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use forge_sim::apiserver::{ADMIN, ApiServerOptions, start_for_test};
use forge_sim::process::output_with_stdin;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) {
    let out = output_with_stdin(
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(args),
        stdin,
    )
    .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_follows_the_reference_named_cardano_forge_cluster_when_only_it_exists() {
    let test = "reference_names";
    let Some(mut server) = start_for_test(test, ApiServerOptions::default()).await else {
        return;
    };
    let kc = server.kubeconfig(ADMIN).expect("admin kubeconfig").to_path_buf();
    kubectl(
        &kc,
        &["apply", "-f", root().join("deploy/crds").to_str().expect("path")],
        None,
    );
    kubectl(
        &kc,
        &[
            "wait",
            "--for",
            "condition=established",
            "--timeout=60s",
            "crd/cardanoforgeclusters.cardano.io",
        ],
        None,
    );
    // The reference chart's CardanoForgeCluster of region eu-west-1 (the example's pool).
    let example =
        std::fs::read_to_string(root().join("deploy/multi-region/cardanoforgecluster-eu-west-1.yaml"))
            .expect("example");
    let reference = "mainnet-pool1abcde-eu-west-1";
    let object = example
        .replace("mainnet-pool1abcde-eu-west-1-5ccf516b", reference)
        .replace("namespace: cardano", "namespace: default");
    kubectl(&kc, &["apply", "-f", "-"], Some(&object));

    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_forge-manager"))
        .arg("run")
        .env_clear()
        .env("KUBECONFIG", &kc)
        .env("NAMESPACE", "default")
        .env("POD_NAME", "bp-0")
        .env("CARDANO_NETWORK", "mainnet")
        .env(
            "POOL_ID",
            "pool1abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmn",
        )
        .env("ENABLE_CLUSTER_MANAGEMENT", "true")
        .env("CLUSTER_REGION", "eu-west-1")
        .env("METRICS_PORT", port.to_string())
        .env("LOG_FORMAT", "text")
        .env("NODE_SOCKET", dir.path().join("node.socket"))
        .env("GUARD_SOCKET", dir.path().join("guard.sock"))
        .env("SOURCE_KES_KEY", dir.path().join("src/kes.skey"))
        .env("SOURCE_VRF_KEY", dir.path().join("src/vrf.skey"))
        .env("SOURCE_OP_CERT", dir.path().join("src/node.cert"))
        .env("TARGET_KES_KEY", dir.path().join("dst/kes.skey"))
        .env("TARGET_VRF_KEY", dir.path().join("dst/vrf.skey"))
        .env("TARGET_OP_CERT", dir.path().join("dst/node.cert"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("forge-manager run");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for pipe in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let followed = loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                // Log lines carry ANSI codes around fields: two separate matches.
                let hit = line.contains("following the reference chart's object") && line.contains(reference);
                seen.push(line);
                if hit {
                    break true;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) if Instant::now() < deadline => {}
            Err(_) => break false,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    server.stop();
    assert!(
        followed,
        "no 'following the reference chart's object' line:\n{}",
        seen.join("\n")
    );
}
