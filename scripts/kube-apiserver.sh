#!/usr/bin/env bash
# Builds (once) and caches a real kube-apiserver from Debian bookworm's `kubernetes` source
# package, for the test world (docs/architecture.md, "Test world"). Idempotent: a cached binary
# is reused.
# Prints the path of the binary on stdout as its last line. Needs root for apt-get.
#
# Never edits the system's apt configuration: deb-src entries are derived into a private
# directory from the machine's own /etc/apt/sources.list.d/*.sources.
set -euo pipefail

VERSION="1.20.5+really1.20.2-1.1+deb12u1"
UPSTREAM="1.20.2"
CACHE="${FORGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/forge-manager}"
OUT="$CACHE/kube-apiserver-$UPSTREAM"
BIN="$OUT/kube-apiserver"

log() { echo "kube-apiserver.sh: $*" >&2; }

if [ -x "$BIN" ] && [ -f "$OUT/.complete" ]; then
  echo "$BIN"
  exit 0
fi

# One build at a time (CI and a developer's shell, or two test runs, may call this at once):
# wait for the other, then reuse what it built.
mkdir -p "$CACHE"
exec 9>"$CACHE/.kube-apiserver.lock"
flock 9
if [ -x "$BIN" ] && [ -f "$OUT/.complete" ]; then
  echo "$BIN"
  exit 0
fi

need_pkgs=()
for p in golang-go etcd-server golang-github-modern-go-reflect2-dev make rsync openssl; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
done
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >&2
fi

WORK="$CACHE/build-$UPSTREAM"
mkdir -p "$WORK"
SRC="$WORK/kubernetes-$UPSTREAM"

if [ ! -d "$SRC" ]; then
  # A private apt configuration holding deb-src twins of the machine's own sources.
  APT="$WORK/apt"
  mkdir -p "$APT/sources.list.d" "$APT/lists/partial"
  shopt -s nullglob
  for f in /etc/apt/sources.list.d/*.sources; do
    sed -E 's/^Types:.*/Types: deb-src/' "$f" >"$APT/sources.list.d/$(basename "$f")"
  done
  if [ -f /etc/apt/sources.list ]; then
    grep -E '^deb ' /etc/apt/sources.list | sed -E 's/^deb /deb-src /' >"$APT/sources.list" || true
  fi
  touch "$APT/sources.list"
  O=(-o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=$APT/sources.list.d"
     -o "Dir::State::Lists=$APT/lists")
  log "fetching the kubernetes source package $VERSION"
  apt-get "${O[@]}" update -qq >&2
  (cd "$WORK" && apt-get "${O[@]}" source --download-only "kubernetes=$VERSION" >&2)
  log "unpacking"
  (cd "$WORK" && tar xzf "kubernetes_1.20.5+really${UPSTREAM}.orig.tar.gz")
  [ -d "$SRC" ] || { log "expected $SRC after unpacking"; exit 1; }
fi

cd "$SRC"
# Fix 1: vendored reflect2 1.0.1 crashes under Go >= 1.18 on the first custom-resource write.
R=vendor/github.com/modern-go/reflect2
rm -f "$R"/*.go "$R"/*.s
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$R"/
cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R"/ 2>/dev/null || true

# Fix 2: under Go 1.19 the vendored OpenAPI type check treats any zero value (e.g. "") as null,
# so an empty string in a custom resource is rejected with 422. Restore upstream's meaning:
# null only for nil, or a nil pointer, map, channel or function.
for f in vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go \
         vendor/github.com/go-openapi/validate/type.go; do
  perl -0pi -e 's/reflect\.DeepEqual\(reflect\.Zero\(reflect\.TypeOf\(data\)\), reflect\.ValueOf\(data\)\)/func(v reflect.Value) bool { switch v.Kind() { case reflect.Ptr, reflect.Map, reflect.Chan, reflect.Func: return v.IsNil() }; return false }(reflect.ValueOf(data))/' "$f"
  grep -q 'case reflect.Ptr, reflect.Map, reflect.Chan, reflect.Func: return v.IsNil()' "$f" \
    || { log "could not patch $f"; exit 1; }
done

log "building kube-apiserver (about 5 minutes on 2 cores)"
start=$(date +%s)
mkdir -p "$WORK/home"
GOPROXY=off GOFLAGS= CGO_ENABLED=0 HOME="$WORK/home" GOCACHE="$WORK/gocache" \
  make WHAT=cmd/kube-apiserver >&2
log "built in $(( $(date +%s) - start )) s"
mkdir -p "$OUT"
cp _output/bin/kube-apiserver "$BIN.tmp"
mv "$BIN.tmp" "$BIN"
touch "$OUT/.complete"
echo "$BIN"
