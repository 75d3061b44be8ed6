#!/usr/bin/env bash
# Checks of the deployment artefacts that are not Rust tests (run by .ci/run; the Rust side is
# tests/deploy.rs and tests/deploy_metrics.rs, run by `cargo test`):
#   - promtool check rules / test rules on deploy/prometheus (Debian's `prometheus` package);
#   - the Grafana dashboard is valid JSON;
#   - the Helm chart: lint, then install of each values file into a real kube-apiserver, with
#     helm-sdkpy (the Helm library, Python >= 3.12) from the venv made by .ci/run
#     (FORGE_HELM_PYTHON, default ~/.cache/forge-manager/helm-venv/bin/python).
# FORGE_SKIP_DEPLOY_CHECKS=1 skips everything, loudly.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${FORGE_SKIP_DEPLOY_CHECKS:-}" = 1 ]; then
  printf '\n!!! SKIPPED deploy checks (promtool, dashboard, Helm chart): FORGE_SKIP_DEPLOY_CHECKS=1 !!!\n\n' >&2
  exit 0
fi

echo "-- promtool check rules"
promtool check rules deploy/prometheus/rules.yaml
echo "-- promtool test rules"
promtool test rules deploy/prometheus/rules_test.yaml
echo "-- dashboard JSON"
python3 -m json.tool deploy/grafana/forge-manager.json >/dev/null && echo "deploy/grafana/forge-manager.json: valid JSON"

if [ -d charts/forge-manager ]; then
  PY="${FORGE_HELM_PYTHON:-$HOME/.cache/forge-manager/helm-venv/bin/python}"
  echo "-- Helm chart (helm-sdkpy via $PY)"
  "$PY" scripts/helm-check.py
fi
