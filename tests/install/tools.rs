//! The outside tools the install test drives: the image archives it loads into the cluster,
//! `forge-sim` built when missing, Helm (through scripts/helm.py and helm-sdkpy) and kubectl
//! against the cluster, and the chart values (defaults but the local images and a small node).
use std::path::{Path, PathBuf};
use std::process::Command;

pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub(crate) fn helm_python() -> Option<PathBuf> {
    let p = std::env::var_os("FORGE_HELM_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/forge-manager/helm-venv/bin/python")
        });
    p.exists().then_some(p)
}

/// The image archive `scripts/images.sh KIND BIN` writes (its last line of output).
pub(crate) fn image(kind: &str, bin: &Path) -> PathBuf {
    let out = Command::new("bash")
        .arg(root().join("scripts/images.sh"))
        .arg(kind)
        .arg(bin)
        .output()
        .expect("run scripts/images.sh");
    assert!(
        out.status.success(),
        "images.sh {kind}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("archive path")
            .trim(),
    )
}

/// `forge-sim`, next to this package's binary (built here when `cargo test` did not build it).
pub(crate) fn forge_sim_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_forge-manager")).with_file_name("forge-sim");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "forge-sim", "--bin", "forge-sim"])
            .current_dir(root())
            .status()
            .expect("cargo build forge-sim");
        assert!(st.success(), "building forge-sim");
    }
    bin
}

pub(crate) struct Tools {
    pub(crate) python: PathBuf,
    pub(crate) kubeconfig: PathBuf,
    pub(crate) kcache: PathBuf,
}

impl Tools {
    /// `scripts/helm.py ACTION ...`; panics with Helm's message on failure.
    pub(crate) fn helm(&self, args: &[&str]) -> String {
        let out = Command::new(&self.python)
            .arg(root().join("scripts/helm.py"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .expect("run scripts/helm.py");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "helm {args:?}: {text}");
        text
    }

    pub(crate) fn kubectl(&self, args: &[&str]) -> String {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.kcache)
            .args(args)
            .output()
            .expect("run kubectl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }
}

/// The values: defaults, but the locally built images (never pulled), small node requests and
/// the realistic simulator's settings.
pub(crate) fn values(extra: serde_json::Value) -> String {
    let mut v = serde_json::json!({
        "image": {"repository": "localhost/forge-manager", "tag": "dev", "pullPolicy": "Never"},
        "node": {
            "image": {"repository": "localhost/cardano-node", "tag": "sim", "pullPolicy": "Never"},
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}},
            "extraEnv": [
                {"name": "NODE_REPLAY_MS", "value": "3000"},
                {"name": "NODE_RELOAD_MS", "value": "20..1500"},
                {"name": "NODE_HANDLER_DELAY_MS", "value": "150"}
            ]
        }
    });
    if let (Some(base), Some(more)) = (v.as_object_mut(), extra.as_object()) {
        for (k, val) in more {
            base.insert(k.clone(), val.clone());
        }
    }
    v.to_string()
}
