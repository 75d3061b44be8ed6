#!/usr/bin/env bash
# Builds (once) and caches the node side of a real single-node Kubernetes 1.20.2 for the test
# world: kubelet, kube-controller-manager, kube-scheduler and kube-proxy from the same Debian
# `kubernetes` source tree (and Go build cache) that scripts/kube-apiserver.sh unpacks, patches
# and builds the API server from. containerd 1.6, runc, the CNI plugins, iptables and conntrack
# come from Debian's binary packages (installing them starts no service here); buildah too (the
# install test builds the Dockerfile's run stage with it: scripts/images.sh dockerfile-run).
#
# Idempotent: cached binaries are reused. Prints the directory holding all five binaries
# (kube-apiserver included) on stdout as its last line. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

UPSTREAM="1.20.2"
CACHE="${FORGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/forge-manager}"
OUT="$CACHE/kube-node-$UPSTREAM"
BINS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

log() { echo "kube-cluster.sh: $*" >&2; }

# The Debian packages the cluster runs with (binary packages, not built here).
need_pkgs=()
for p in containerd runc containernetworking-plugins iptables conntrack busybox-static gcc libc6-dev buildah; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

# The API server first: it fetches, unpacks and patches the source tree (reflect2 and the
# OpenAPI null check, both needed by every binary built from it) and warms the Go build cache.
APISERVER="$(bash scripts/kube-apiserver.sh | tail -n 1)"

complete() {
  [ -f "$OUT/.complete" ] || return 1
  for b in "${BINS[@]}"; do [ -x "$OUT/$b" ] || return 1; done
}
link_apiserver() { ln -sf "$APISERVER" "$OUT/kube-apiserver"; }

if complete; then
  link_apiserver
  echo "$OUT"
  exit 0
fi

# The same lock as the API server's build: one `make` in the shared tree at a time.
exec 9>"$CACHE/.kube-apiserver.lock"
flock 9
if complete; then
  link_apiserver
  echo "$OUT"
  exit 0
fi

WORK="$CACHE/build-$UPSTREAM"
SRC="$WORK/kubernetes-$UPSTREAM"
[ -d "$SRC" ] || { log "expected the source tree at $SRC (scripts/kube-apiserver.sh unpacks it)"; exit 1; }
cd "$SRC"
grep -q 'case reflect.Ptr, reflect.Map, reflect.Chan, reflect.Func: return v.IsNil()' \
  vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go \
  || { log "$SRC lacks the OpenAPI fix; remove $WORK and $CACHE/kube-apiserver-$UPSTREAM and rerun"; exit 1; }

log "building ${BINS[*]} (a few minutes on 2 cores with the API server's Go cache warm)"
start=$(date +%s)
mkdir -p "$WORK/home"
what=""
for b in "${BINS[@]}"; do what="$what cmd/$b"; done
GOPROXY=off GOFLAGS= CGO_ENABLED=0 HOME="$WORK/home" GOCACHE="$WORK/gocache" \
  make WHAT="${what# }" >&2
log "built in $(( $(date +%s) - start )) s"
mkdir -p "$OUT"
for b in "${BINS[@]}"; do
  cp "_output/bin/$b" "$OUT/$b.tmp"
  mv "$OUT/$b.tmp" "$OUT/$b"
done
link_apiserver
touch "$OUT/.complete"
echo "$OUT"
