"""A small `helm` command line over helm-sdkpy (the Helm library; there is no helm binary here):

    helm.py install|upgrade RELEASE CHART --namespace NS [--values-json JSON] [--manifest FILE]
    helm.py uninstall RELEASE --namespace NS

KUBECONFIG names the cluster. `install` creates the namespace; neither waits (the caller
watches the pods). `--manifest FILE` writes the rendered manifest there. Used by tests/install/
(FORGE_HELM_PYTHON, the venv .ci/run makes). Exit 1 with Helm's message on failure.
"""
import argparse, asyncio, json, os, sys

import helm_sdkpy as helm


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("action", choices=["install", "upgrade", "uninstall"])
    ap.add_argument("release")
    ap.add_argument("chart", nargs="?")
    ap.add_argument("--namespace", required=True)
    ap.add_argument("--values-json", default="{}")
    ap.add_argument("--manifest")
    a = ap.parse_args()
    cfg = helm.Configuration(namespace=a.namespace, kubeconfig=os.environ.get("KUBECONFIG"))
    values = json.loads(a.values_json)
    if a.action == "install":
        rel = await helm.Install(cfg).run(a.release, a.chart, values=values, create_namespace=True,
                                          wait=False, timeout=120, disable_openapi_validation=False)
    elif a.action == "upgrade":
        rel = await helm.Upgrade(cfg).run(a.release, a.chart, values=values, wait=False, timeout=120,
                                          disable_openapi_validation=False)
    else:
        rel = await helm.Uninstall(cfg).run(a.release, wait=False, timeout=120)
    if a.manifest:
        with open(a.manifest, "w") as f:
            f.write((rel or {}).get("manifest", "") if isinstance(rel, dict) else "")
    info = rel.get("info", {}) if isinstance(rel, dict) else {}
    status = info.get("status", "done") if isinstance(info, dict) else "done"
    print(f"{a.action} {a.release}: {status}")


try:
    asyncio.run(main())
except Exception as e:  # noqa: BLE001 - one clear line for the caller
    sys.exit(f"helm: {e}")
