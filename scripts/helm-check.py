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


def mithril_script_runs(init, name):
    """Runs the rendered mithril-restore command (sh -c SCRIPT) here, with a stand-in
    mithril-client that records its arguments and environment: an empty database is restored
    with the right command line, a database with immutable files is left alone."""
    cmd = init["command"]
    check(cmd[:2] == ["/bin/sh", "-c"] and cmd[2] == (CHART / "files" / "mithril-restore.sh").read_text(),
          f"{name}: mithril-restore runs files/mithril-restore.sh with /bin/sh")
    env = {e["name"]: e["value"] for e in init["env"]}
    check(env.get("DB_DIR") == "/data/db" and any(m["mountPath"] == "/data" for m in init["volumeMounts"]),
          f"{name}: mithril-restore restores the node's --database-path on the data volume")
    with tempfile.TemporaryDirectory() as d:
        d = pathlib.Path(d)
        stub = d / "mithril-client"
        stub.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$STUB_OUT"\n'
                        'printf "%s|%s|%s\\n" "$AGGREGATOR_ENDPOINT" "$GENESIS_VERIFICATION_KEY" '
                        '"$ANCILLARY_VERIFICATION_KEY" >> "$STUB_OUT"\nmkdir -p "$5/db/immutable"\n')
        stub.chmod(0o755)
        out = d / "args"
        run_env = dict(env, DB_DIR=str(d / "data" / "db"), MITHRIL_CLIENT=str(stub), STUB_OUT=str(out),
                       PATH=os.environ["PATH"])
        (d / "data" / "db").mkdir(parents=True)
        (d / "data" / "db" / "partial").write_text("left by an interrupted attempt")
        r = subprocess.run(cmd, env=run_env, capture_output=True, text=True)
        args = out.read_text().splitlines() if out.exists() else []
        want = ["cardano-db", "download", env["MITHRIL_DIGEST"], "--download-dir", str(d / "data"),
                "--include-ancillary",
                f'{env["AGGREGATOR_ENDPOINT"]}|{env["GENESIS_VERIFICATION_KEY"]}|{env["ANCILLARY_VERIFICATION_KEY"]}']
        check(r.returncode == 0 and args == want and not (d / "data" / "db" / "partial").exists(),
              f"{name}: mithril-restore on an empty database runs the client as expected "
              f"(rc {r.returncode}, {args}, {r.stderr.strip()})")
        out.unlink()
        (d / "data" / "db" / "immutable" / "00000.chunk").write_text("x")
        r = subprocess.run(cmd, env=run_env, capture_output=True, text=True)
        check(r.returncode == 0 and not out.exists() and "nothing to restore" in r.stdout,
              f"{name}: mithril-restore leaves a database with immutable files alone ({r.stdout.strip()})")
        r = subprocess.run(cmd, env=dict(run_env, DB_DIR=str(d / "other" / "db"), AGGREGATOR_ENDPOINT=""),
                           capture_output=True, text=True)
        check(r.returncode == 2 and "mithril.aggregatorEndpoint is empty" in r.stderr,
              f"{name}: mithril-restore without an endpoint names the value ({r.stderr.strip()})")


async def refused(kubeconfig, ns, vals, words, what):
    """An install of `vals` fails at render time with a message containing `words`."""
    try:
        await helm.Install(helm.Configuration(namespace=ns, kubeconfig=kubeconfig)).run(
            "bp", str(CHART), values=vals, create_namespace=True, wait=False, timeout=120,
            disable_openapi_validation=False)
        check(False, f"{what}: accepted")
    except Exception as e:  # noqa: BLE001
        check(words in str(e), f"{what}: refused, naming the value ({str(e)[:200]})")


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
                    # The guard's reload room: the sidecar's STOP_GRACE, capped as the sidecar caps it.
                    fm = {"stopGrace": 2, "renewDeadline": 10, "retryPeriod": 2, **(vals.get("forgeManager") or {})}
                    room = round(min(fm["stopGrace"], max(fm["renewDeadline"] - fm["retryPeriod"], 0)) * 1000)
                    sidecar = next(c for c in spec["containers"] + (spec.get("initContainers") or [])
                                   if c["name"] == "forge-manager")
                    env = {e["name"]: e.get("value") for e in sidecar.get("env") or []}
                    given = cmd[cmd.index("--reload-room-ms") + 1] if "--reload-room-ms" in cmd else None
                    check(given == str(room) and env.get("STOP_GRACE") == str(fm["stopGrace"]),
                          f"{name}: the guard's --reload-room-ms ({given}) is the sidecar's STOP_GRACE "
                          f"({env.get('STOP_GRACE')}) capped at renewDeadline - retryPeriod ({room})")
                check("readinessProbe" in node, f"{name}: the node container has a readiness probe")
                arg = lambda flag: cmd[cmd.index(flag) + 1]
                inits = {c["name"]: c for c in spec.get("initContainers") or []}
                vols = {v["name"]: v for v in spec["volumes"]}
                if name == "node-config":
                    check(arg("--config") == "/opt/cardano/config/preprod/config.json"
                          and arg("--topology") == "/topology/topology.json"
                          and "node-config" not in vols
                          and vols["topology"]["configMap"]["name"] == "bp-forge-manager-topology",
                          f"{name}: the node image's preprod config, the chart's topology ({arg('--config')}, {arg('--topology')})")
                    cms = [d for d in docs if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "bp-forge-manager-topology"]
                    topo = json.loads(cms[0]["data"]["topology.json"]) if cms else {}
                    roots = topo.get("localRoots", [{}])
                    check(len(roots) == 1 and [a["address"] for a in roots[0].get("accessPoints", [])]
                          == ["relay-0.relays.cardano.svc", "relay-1.relays.cardano.svc"]
                          and roots[0].get("trustable") is True and roots[0].get("valency") == 2
                          and topo.get("publicRoots") == [] and topo.get("useLedgerAfterSlot") == -1,
                          f"{name}: topology.json has the relays only: {topo}")
                    check("mithril-restore" in inits and inits["mithril-restore"]["image"]
                          == "ghcr.io/input-output-hk/mithril-client:2543.1",
                          f"{name}: the Mithril restore init container is rendered")
                    if "mithril-restore" in inits:
                        mithril_script_runs(inits["mithril-restore"], name)
                else:
                    check(arg("--config") == "/config/config.json" and arg("--topology") == "/config/topology.json"
                          and vols["node-config"]["configMap"]["name"] == "cardano-bp-config"
                          and "mithril-restore" not in inits,
                          f"{name}: the node reads node.configMap at /config; no Mithril restore (off by default)")
            pols = [d for d in docs if d.get("kind") == "NetworkPolicy"]
            if vals.get("networkPolicy", {}).get("enabled"):
                p = pols[0]["spec"] if pols else {}
                node_port = {"port": 3001, "protocol": "TCP"}
                relay_in = [r for r in p.get("ingress", []) if node_port in r.get("ports", [])]
                relay_out = [r for r in p.get("egress", []) if node_port in r.get("ports", [])]
                peers = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "cardano-relay"}}},
                         {"ipBlock": {"cidr": "192.0.2.10/32"}}]
                check(len(relay_in) == 1 and relay_in[0].get("from") == peers
                      and len(relay_out) == 1 and relay_out[0].get("to") == peers,
                      f"{name}: the NetworkPolicy opens the node port to and from the relays only: {relay_in} {relay_out}")
            else:
                check(not pols, f"{name}: no NetworkPolicy unless enabled")
            # Forced native sidecar: 1.20 refuses exactly the init container's restartPolicy.
            if name == "default":
                await refused(kubeconfig, "ci-refused-1", {"networkPolicy": {"enabled": True}},
                              "networkPolicy.relays", "a NetworkPolicy without relays")
                await refused(kubeconfig, "ci-refused-2", {"mithril": {"enabled": True, "image": {"tag": "x"},
                              "aggregatorEndpoint": "https://a.invalid"}},
                              "mithril.genesisVerificationKey", "Mithril without a genesis key")
                await refused(kubeconfig, "ci-refused-3", {"node": {"configSource": "image"},
                              "forgeManager": {"network": "sanchonet", "networkMagic": 4}},
                              "forgeManager.network", "the image's config for a network it does not ship")
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
