#!/usr/bin/env bash
# The real single-node cluster, end to end from a shell (CI runs this; needs root):
#   1. builds (once, cached) kubelet, kube-controller-manager, kube-scheduler, kube-proxy and the
#      images (pause, the cardano-node stand-in, forge-manager);
#   2. starts `forge-sim cluster` RUNS times (default 3; CI runs one) and reports the ready time of each, the
#      median and the memory of the cluster's processes;
#   3. on the first start: `kubectl get nodes` shows one Ready node, `kubectl run` starts a pod
#      from the locally built stand-in image that reaches Running, and one from the forge-manager
#      image that runs `forge-manager --version` to completion;
#   4. after each SIGTERM: no network namespace, veth, mount or process of the cluster is left.
# The contract tests (sim/tests/cluster_contract.rs) run with the workspace's tests.
# DOCKERFILE=1 also builds the repository's Dockerfile with buildah (scripts/images.sh
# dockerfile: a release build, slow on 2 cores, so not in CI) and runs that image in a pod too.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-3}"
log() { echo "cluster-checks: $*" >&2; }
fail() { log "FAIL: $*"; exit 1; }

start=$(date +%s)
NODE_BIN="$(bash scripts/kube-cluster.sh | tail -n 1)"
log "node binaries in $NODE_BIN ($(( $(date +%s) - start )) s including any build)"
bash scripts/images.sh pause >/dev/null
cargo build -q -p forge-sim --bin forge-sim
cargo build -q -p forge-manager --bin forge-manager
SIM="$PWD/target/debug/forge-sim"
NODE_IMG="$(bash scripts/images.sh node "$SIM" | tail -n 1)"
MGR_IMG="$(bash scripts/images.sh manager "$PWD/target/debug/forge-manager" | tail -n 1)"
IMAGES=(--image "$NODE_IMG" --image "$MGR_IMG")
if [ "${DOCKERFILE:-0}" = 1 ]; then
  IMAGES+=(--image "$(bash scripts/images.sh dockerfile | tail -n 1)")
fi

work="$(mktemp -d)"
cluster_pid=""
cleanup() {
  if [ -n "$cluster_pid" ] && kill -0 "$cluster_pid" 2>/dev/null; then
    kill -TERM "$cluster_pid"; wait "$cluster_pid" || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" --cache-dir "$work/kcache" "$@" 2>&1 | grep -v 'version difference' || true; }

# version_pod NAME IMAGE WHAT: runs `forge-manager --version` from IMAGE in pod NAME to its end;
# fails unless it succeeded, else logs what it printed.
version_pod() {
  local name="$1" image="$2" what="$3" phase=""
  kc run "$name" --image="$image" --image-pull-policy=Never --restart=Never -- --version >/dev/null
  for _ in $(seq 1 120); do
    phase="$(kc get pod "$name" -o 'jsonpath={.status.phase}')"
    [ "$phase" = Succeeded ] || [ "$phase" = Failed ] && break
    sleep 0.5
  done
  [ "$phase" = Succeeded ] || fail "pod $name ($what, forge-manager --version) is $phase"
  log "$what in a pod: $(kc logs "$name")"
}

readies=()
for run in $(seq 1 "$RUNS"); do
  out="$work/out-$run"
  "$SIM" cluster "${IMAGES[@]}" >"$out" 2>"$work/err-$run" &
  cluster_pid=$!
  for _ in $(seq 1 1200); do
    grep -q '^rss_kib:' "$out" 2>/dev/null && break
    kill -0 "$cluster_pid" 2>/dev/null || { cat "$work/err-$run" >&2; fail "the cluster exited during start-up"; }
    sleep 0.1
  done
  grep -q '^rss_kib:' "$out" || fail "the cluster did not start within 120 s"
  KUBECONFIG_FILE="$(sed -n 's/^kubeconfig: //p' "$out")"
  ready="$(sed -n 's/^ready: //p' "$out")"
  rss="$(sed -n 's/^rss_kib: //p' "$out")"
  readies+=("$ready")
  log "start $run: ready after $ready s, cluster processes' RSS $(( rss / 1024 )) MiB"

  if [ "$run" = 1 ]; then
    nodes="$(kc get nodes --no-headers)"
    echo "$nodes"
    [ "$(echo "$nodes" | grep -c ' Ready ')" = 1 ] || fail "expected one Ready node: $nodes"
    kc run standin --image=localhost/cardano-node:sim --image-pull-policy=Never --restart=Never \
      --command -- /bin/sh -c 'sleep 600' >/dev/null
    kc wait --for=condition=Ready pod/standin --timeout=60s
    phase="$(kc get pod standin -o 'jsonpath={.status.phase}')"
    [ "$phase" = Running ] || fail "pod standin is $phase, not Running"
    version_pod manager localhost/forge-manager:dev "the forge-manager image"
    if [ "${DOCKERFILE:-0}" = 1 ]; then
      version_pod dockerfile localhost/forge-manager:dockerfile "the Dockerfile's image"
    fi
  fi

  dir="$(dirname "$KUBECONFIG_FILE")"
  kill -TERM "$cluster_pid"
  wait "$cluster_pid" || fail "the cluster exited non-zero on SIGTERM: $(tail -5 "$work/err-$run")"
  cluster_pid=""
  ip netns list | grep -q forge-cluster && fail "network namespace forge-cluster left"
  ip -o link | grep -q 'fmc-' && fail "veth left"
  grep -q "forge-sim-cluster-" /proc/self/mountinfo && fail "mounts left"
  pgrep -f forge-sim-cluster- >/dev/null && fail "processes left: $(pgrep -af forge-sim-cluster-)"
  [ -e "$dir" ] && fail "$dir left"
done
median="$(printf '%s\n' "${readies[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
log "ready times: ${readies[*]} s; median $median s over $RUNS starts"
