//! Small subcommands of the binary: the checked-in CRDs in `deploy/crds/` are exactly what
//! `forge-manager crds` prints, and `forge-manager install` copies the binary for the guard.
use std::{path::Path, process::Command};

fn forge_manager() -> Command {
    Command::new(env!("CARGO_BIN_EXE_forge-manager"))
}

const FILES: [&str; 2] = [
    "cardanoforgeclusters.cardano.io.yaml",
    "cardanoleaders.cardano.io.yaml",
];

#[test]
fn checked_in_crds_equal_the_generated_ones() {
    let out = forge_manager()
        .arg("crds")
        .output()
        .expect("run forge-manager crds");
    assert!(
        out.status.success(),
        "crds failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds");
    let checked_in: Vec<String> = FILES
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap_or_else(|e| panic!("read deploy/crds/{f}: {e}")))
        .collect();
    assert_eq!(
        printed,
        checked_in.join("---\n"),
        "deploy/crds/ drifted from the Rust types; regenerate with `cargo run -q -- crds --out deploy/crds`"
    );
}

/// `kubectl get cfc` shows the forge tickets held in quorum mode (docs/quorum.md): a default
/// column (priority 0) on `.status.tickets`, a string in the status schema.
#[test]
fn kubectl_get_cfc_shows_the_tickets() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/crds")
        .join(FILES[0]);
    let text = std::fs::read_to_string(&path).expect("read the CFC CRD");
    let crd: serde_json::Value = serde_yaml::from_str(&text).expect("YAML");
    let version = &crd["spec"]["versions"][0];
    let columns = version["additionalPrinterColumns"]
        .as_array()
        .expect("printer columns");
    let tickets = columns
        .iter()
        .find(|c| c["name"] == "Tickets")
        .unwrap_or_else(|| panic!("no Tickets column: {columns:?}"));
    assert_eq!(tickets["jsonPath"], ".status.tickets", "{tickets}");
    assert_eq!(tickets["type"], "string", "{tickets}");
    assert!(
        tickets["priority"].as_i64().unwrap_or(0) == 0,
        "shown without -o wide: {tickets}"
    );
    let field = &version["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]["tickets"];
    assert_eq!(field["type"], "string", "status.tickets in the schema: {field}");
}

#[test]
fn crds_out_writes_one_file_per_crd() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = forge_manager()
        .args(["crds", "--out"])
        .arg(dir.path())
        .status()
        .expect("run");
    assert!(status.success());
    for f in FILES {
        let text = std::fs::read_to_string(dir.path().join(f)).expect("file written");
        assert!(text.contains("kind: CustomResourceDefinition"), "{f} is a CRD");
    }
}

#[test]
fn install_copies_the_binary_into_a_directory_as_an_executable() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let target_dir = dir.path().join("guard");
    let status = forge_manager()
        .arg("install")
        .arg(&target_dir)
        .status()
        .expect("run");
    assert!(status.success());
    let installed = target_dir.join("forge-manager");
    let mode = std::fs::metadata(&installed)
        .expect("installed")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o555);
    let out = Command::new(&installed)
        .arg("--version")
        .output()
        .expect("the copy runs");
    assert!(String::from_utf8_lossy(&out.stdout).contains("forge-manager"));
}
