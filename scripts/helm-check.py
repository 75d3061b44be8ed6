"""The Helm chart checked with the real Helm library (helm-sdkpy, Python >= 3.12) against a real
kube-apiserver (Kubernetes 1.20 from the test world): lint, then install of the default values
and of every charts/forge-manager/ci/*-values.yaml into its own namespace, with OpenAPI
validation on, so the API server validates every rendered object (each CardanoForgeCluster
against our CRD). Also: the chart's copies of the CRDs, rules and dashboard equal deploy/'s.

Run by scripts/deploy-checks.sh (.ci/run). Needs target/debug/forge-manager (built by
`cargo test`; FORGE_MANAGER_BIN overrides) for `forge-manager sim apiserver`, and kubectl.
"""
import asyncio, filecmp, json, os, pathlib, subprocess, sys, tempfile

import helm_sdkpy as helm
import yaml  # PyYAML, installed next to helm-sdkpy by .ci/run

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "forge-manager"
FAILED = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        FAILED.append(what)


def copies_in_sync():
    for a, b in [
        (CHART / "crds" / "cardanoforgeclusters.cardano.io.yaml", ROOT / "deploy/crds/cardanoforgeclusters.cardano.io.yaml"),
        (CHART / "crds" / "cardanoleaders.cardano.io.yaml", ROOT / "deploy/crds/cardanoleaders.cardano.io.yaml"),
        (CHART / "files" / "rules.yaml", ROOT / "deploy/prometheus/rules.yaml"),
        (CHART / "files" / "forge-manager.json", ROOT / "deploy/grafana/forge-manager.json"),
    ]:
        check(filecmp.cmp(a, b, shallow=False), f"{a.relative_to(ROOT)} equals {b.relative_to(ROOT)}")


def start_apiserver():
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    exe = os.environ.get("FORGE_MANAGER_BIN", str(target / "debug" / "forge-manager"))
    proc = subprocess.Popen([exe, "sim", "apiserver"], stdout=subprocess.PIPE, text=True)
    kubeconfig = None
    for line in proc.stdout:
        print("  " + line.rstrip(), flush=True)
        if line.startswith("kubeconfig: "):
            kubeconfig = line.split(": ", 1)[1].strip()
        if line.startswith("server: "):  # printed once the server is ready
            break
    if not kubeconfig:
        proc.terminate()
        sys.exit("forge-manager sim apiserver did not start")
    return proc, kubeconfig


def kubectl(kubeconfig, cache, *args):
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "--cache-dir", cache, *args],
                         capture_output=True, text=True)
    err = "\n".join(l for l in out.stderr.splitlines() if "minor version skew" not in l)
    return out.returncode, out.stdout, err


async def main():
    copies_in_sync()
    lint = await helm.Lint(helm.Configuration()).run(str(CHART))
    print("  lint:", json.dumps(lint))
    # Helm's severities: 1 info, 2 warning, 4 error.
    errors = [m for m in (lint.get("Messages") or []) if m.get("Severity", 0) >= 4]
    check(not errors and not lint.get("Errors"), "helm lint (no errors)")

    proc, kubeconfig = start_apiserver()
    cache = tempfile.mkdtemp(prefix="kubectl-cache-")
    try:
        rc, _, err = kubectl(kubeconfig, cache, "apply", "-f", str(ROOT / "scripts/fixtures/monitoring-crds.yaml"))
        check(rc == 0, "monitoring CRD stand-ins applied " + err)
        values = [("default", {})] + [
            (p.name.removesuffix("-values.yaml"), p) for p in sorted((CHART / "ci").glob("*-values.yaml"))
        ]
        for name, path in values:
            vals = yaml.safe_load(path.read_text()) if path else {}
            # sidecar.mode auto renders a regular container on 1.20 (no native sidecars before
            # 1.29): the install passes Helm's client-side OpenAPI validation as it is.
            ns = f"ci-{name}"
            cfg = helm.Configuration(namespace=ns, kubeconfig=kubeconfig)
            try:
                rel = await helm.Install(cfg).run(
                    "bp", str(CHART), values=vals, create_namespace=True, wait=False,
                    timeout=120, disable_openapi_validation=False)
                check(True, f"install {name} (OpenAPI-validated)")
            except Exception as e:  # noqa: BLE001 - report every failure
                check(False, f"install {name}: {e}")
                continue
            manifest = rel.get("manifest", "") if isinstance(rel, dict) else ""
            docs = [d for d in yaml.safe_load_all(manifest) if d]
            sts = [d for d in docs if d.get("kind") == "StatefulSet"]
            check(len(sts) == 1, f"{name}: one StatefulSet rendered")
            if sts:
                spec = sts[0]["spec"]["template"]["spec"]
                names = [c["name"] for c in spec["containers"]]
                check(names[0] == "forge-manager" and "cardano-node" in names
                      and all(c.get("restartPolicy") is None for c in spec.get("initContainers") or []),
                      f"{name}: on 1.20 the sidecar is a regular container ({names})")
                node = next(c for c in spec["containers"] if c["name"] == "cardano-node")
                cmd = node["command"]
                if vals.get("layout", "guard") == "guard":
                    check("--targets" in cmd and cmd[cmd.index("--targets") + 1].count(",") == 2,
                          f"{name}: the guard gets its three target files")
                check("readinessProbe" in node, f"{name}: the node container has a readiness probe")
            # Forced native sidecar: 1.20 refuses exactly the init container's restartPolicy.
            if name == "default":
                try:
                    await helm.Install(helm.Configuration(namespace="ci-native-validated", kubeconfig=kubeconfig)).run(
                        "bp", str(CHART), values={"sidecar": {"mode": "native"}}, create_namespace=True,
                        wait=False, timeout=120, disable_openapi_validation=False)
                    check(False, "sidecar.mode=native with OpenAPI validation: 1.20 accepted restartPolicy?")
                except Exception as e:  # noqa: BLE001
                    msg = str(e)
                    only = 'unknown field "restartPolicy"' in msg and msg.count("ValidationError") == 1
                    check(only, "sidecar.mode=native on 1.20: only the native-sidecar field is unknown"
                          + ("" if only else f": {msg}"))
            rc, out, err = kubectl(kubeconfig, cache, "get", "statefulsets,cardanoleaders,cardanoforgeclusters,roles,rolebindings,poddisruptionbudgets,networkpolicies,servicemonitors,prometheusrules,configmaps", "-n", ns, "-o", "name")
            print("  " + " ".join(out.split()), flush=True)
            check(rc == 0 and "statefulset.apps/bp-forge-manager" in out, f"{name}: StatefulSet created " + err)
            if vals.get("clusterManagement", {}).get("enabled"):
                check("cardanoforgecluster.cardano.io/" in out, f"{name}: CardanoForgeCluster created (schema-valid)")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if FAILED:
        sys.exit(f"{len(FAILED)} Helm check(s) failed: {FAILED}")
    print("Helm chart: all checks passed")


asyncio.run(main())
