//! The configuration files the cluster writes: the bridge CNI network, containerd's and the
//! kubelet's.

use std::path::Path;

use super::{BRIDGE, NODE_ADDR, PAUSE_IMAGE, POD_CIDR};

pub(super) fn cni_config(cni: &Path) -> String {
    serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "forge-cluster",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": cni.join("ipam").to_string_lossy(),
                }
            },
            {"type": "portmap", "capabilities": {"portMappings": true}}
        ]
    })
    .to_string()
}

pub(super) fn containerd_config(ctd: &Path, cni: &Path) -> String {
    let p = |f: &str| ctd.join(f).to_string_lossy().into_owned();
    format!(
        r#"version = 2
root = "{root}"
state = "{state}"
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{opt}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # The sandbox may lack CAP_SYS_RESOURCE: a negative oom_score_adj would be refused and runc
  # would fail with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{conf}"
"#,
        root = p("root"),
        state = p("state"),
        sock = p("containerd.sock"),
        opt = p("opt"),
        conf = cni.join("net.d").display(),
    )
}

pub(super) fn kubelet_config(kubelet: &Path) -> String {
    format!(
        r#"apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_ADDR}
port: 10250
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
evictionHard: {{}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
volumePluginDir: {plugins}
staticPodPath: ""
serializeImagePulls: false
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 2s
makeIPTablesUtilChains: true
resolvConf: /etc/resolv.conf
"#,
        plugins = kubelet.join("volume-plugins").display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_keeps_to_its_own_files_and_never_lowers_oom_score_adj() {
        let text = containerd_config(Path::new("/w/containerd"), Path::new("/w/cni"));
        for line in [
            r#"root = "/w/containerd/root""#,
            r#"state = "/w/containerd/state""#,
            r#"address = "/w/containerd/containerd.sock""#,
            r#"path = "/w/containerd/opt""#,
            "restrict_oom_score_adj = true",
            "netns_mounts_under_state_dir = true",
            r#"conf_dir = "/w/cni/net.d""#,
            r#"sandbox_image = "localhost/pause:3.2""#,
        ] {
            assert!(
                text.lines().any(|l| l.trim() == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    #[test]
    fn the_cni_network_is_a_bridge_on_the_pod_subnet_with_its_own_ipam_directory() {
        let v: serde_json::Value = serde_json::from_str(&cni_config(Path::new("/w/cni"))).expect("JSON");
        let bridge = &v["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["bridge"], BRIDGE);
        assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], POD_CIDR);
        assert_eq!(bridge["ipam"]["dataDir"], "/w/cni/ipam");
    }

    #[test]
    fn the_kubelet_config_needs_no_qos_cgroups_eviction_or_image_gc() {
        let v: serde_yaml::Value =
            serde_yaml::from_str(&kubelet_config(Path::new("/w/kubelet"))).expect("YAML");
        assert_eq!(v["cgroupsPerQOS"], serde_yaml::Value::Bool(false));
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(v["imageGCHighThresholdPercent"], 100);
        assert_eq!(v["address"], NODE_ADDR.to_string().as_str());
        assert_eq!(v["volumePluginDir"], "/w/kubelet/volume-plugins");
    }
}
