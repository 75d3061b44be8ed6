#!/usr/bin/env bash
# Container images for the test cluster, made here without a registry: OCI image archives that
# `forge-manager sim cluster --image FILE` imports into the cluster's own containerd.
#
#   scripts/images.sh pause                 -> localhost/pause:3.2 (Kubernetes' build/pause, gcc -static)
#   scripts/images.sh base                  -> a root filesystem from Debian packages (libc6, libgcc-s1,
#                                              CA certificates, busybox-static): the run-time base
#   scripts/images.sh node FORGE_SIM_BIN    -> localhost/cardano-node:sim, whose `cardano-node run`
#                                              takes cardano-node's flags and runs the node simulator;
#                                              the same image has `forge-sim` (in-cluster probes)
#   scripts/images.sh manager FORGE_MANAGER_BIN -> localhost/forge-manager:dev (user 10001)
#   scripts/images.sh dockerfile            -> localhost/forge-manager:dockerfile, the repository's
#                                              Dockerfile built by buildah (Debian's package) over
#                                              base images made here under the names it expects:
#                                              gcr.io/distroless/cc-debian12:nonroot from Debian
#                                              packages (libc6, libgcc-s1, CA certificates), and
#                                              docker.io/library/rust:1.89-bookworm from Debian
#                                              packages (mmdebstrap minbase + gcc, libc6-dev) plus
#                                              this machine's rustup toolchain (Debian's rustc is
#                                              1.63, older than the workspace's rust-version).
#                                              Slow the first time (a release build); cargo fetches
#                                              crates through its configured registry.
#   scripts/images.sh dockerfile-run FORGE_MANAGER_BIN -> localhost/forge-manager:dockerfile-run, the
#                                              Dockerfile's run stage as written (everything from its
#                                              last FROM: the distroless base made as above, COPY,
#                                              USER, EXPOSE, ENTRYPOINT, CMD) built by buildah, its
#                                              build stage (a release build, about 20 minutes on
#                                              2 cores) replaced by FORGE_MANAGER_BIN: seconds, so the
#                                              install test runs the Dockerfile's image on the cluster.
#
# Each prints the archive's path as its last line. Archives are cached under
# ~/.cache/forge-manager/images; the binary ones are rebuilt when the binary changes.
# An image archive is an OCI layout: `oci-layout`, `index.json` (one manifest, annotated with the
# full reference) and `blobs/sha256/` holding one uncompressed layer, the config and the manifest.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${FORGE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/forge-manager}"
IMAGES="$CACHE/images"
mkdir -p "$IMAGES"

log() { echo "images.sh: $*" >&2; }
die() { log "$*"; exit 1; }

sha() { sha256sum "$1" | cut -d' ' -f1; }

# blob FILE LAYOUT: moves FILE into the OCI layout's blobs/sha256 under its digest; sets DIGEST
# and SIZE (bytes).
blob() {
  DIGEST="$(sha "$1")"
  SIZE="$(stat -c %s "$1")"
  mv "$1" "$2/blobs/sha256/$DIGEST"
}

# oci_archive REF ROOTFS OUT ENTRYPOINT_JSON CMD_JSON USER
oci_archive() {
  local ref="$1" rootfs="$2" out="$3" entrypoint="$4" cmd="$5" user="$6"
  local t
  t="$(mktemp -d)"
  mkdir -p "$t/blobs/sha256"
  # A reproducible layer: sorted names, numeric owners root, fixed times.
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime='@0' -C "$rootfs" -cf "$t/layer.tar" .
  blob "$t/layer.tar" "$t"
  local layer="$DIGEST" size="$SIZE"
  printf '{"architecture":"amd64","os":"linux","config":{"User":"%s","Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Entrypoint":%s,"Cmd":%s,"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"scripts/images.sh"}]}' \
    "$user" "$entrypoint" "$cmd" "$layer" >"$t/config.json"
  blob "$t/config.json" "$t"
  local config="$DIGEST" csize="$SIZE"
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$config" "$csize" "$layer" "$size" >"$t/manifest.json"
  blob "$t/manifest.json" "$t"
  local manifest="$DIGEST" msize="$SIZE"
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$manifest" "$msize" "$ref" "${ref##*:}" >"$t/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$t/oci-layout"
  tar --sort=name --numeric-owner --owner=0 --group=0 --mtime='@0' -C "$t" -cf "$out.tmp" oci-layout index.json blobs
  mv "$out.tmp" "$out"
  rm -rf "$t"
  log "$ref -> $out"
}

kube_source() {
  local src="$CACHE/build-1.20.2/kubernetes-1.20.2"
  [ -f "$src/build/pause/linux/pause.c" ] || die "no Kubernetes source at $src: run scripts/kube-cluster.sh first"
  echo "$src"
}

build_pause() {
  local out="$IMAGES/pause-3.2.tar"
  if [ -f "$out" ]; then echo "$out"; return; fi
  local src r
  src="$(kube_source)"
  r="$(mktemp -d)"
  # As build/pause/Makefile does (its TAG is 3.4; the kubelet 1.20 default reference is 3.2).
  gcc -Os -Wall -Werror -static -DVERSION=v3.4-forge -o "$r/pause" "$src/build/pause/linux/pause.c"
  oci_archive "localhost/pause:3.2" "$r" "$out" '["/pause"]' 'null' '65535:65535'
  rm -rf "$r"
  echo "$out"
}

# The run-time base: files of Debian packages (the packages installed on this machine, unpacked
# with dpkg-deb from archives apt-get downloads), like distroless/cc plus a static busybox.
base_rootfs() {
  local dir="$IMAGES/base-rootfs"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  rm -rf "$dir" "$IMAGES/debs"
  mkdir -p "$dir" "$IMAGES/debs"
  (cd "$IMAGES/debs" && apt-get download libc6 libgcc-s1 busybox-static >&2)
  for d in "$IMAGES"/debs/*.deb; do dpkg-deb -x "$d" "$dir"; done
  # The bundle ca-certificates' postinst generates (Debian's package, generated on this machine).
  mkdir -p "$dir/etc/ssl/certs" "$dir/bin" "$dir/tmp" "$dir/ipc" "$dir/home/nonroot"
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  chmod 1777 "$dir/tmp"
  ln -sf /bin/busybox "$dir/bin/sh"
  for a in cat ls sleep env id echo test true false kill ps grep wc; do
    [ -e "$dir/bin/$a" ] || ln -s /bin/busybox "$dir/bin/$a"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nforge:x:10001:10001:forge:/home/nonroot:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\nforge:x:10001:\n' >"$dir/etc/group"
  touch "$dir/.complete"
  echo "$dir"
}

# with_binary NAME BIN -> a copy of the base with BIN at /usr/local/bin/NAME (fresh dir on stdout)
with_binary() {
  local base r
  base="$(base_rootfs)"
  r="$(mktemp -d)"
  cp -a "$base/." "$r/"
  rm -f "$r/.complete"
  mkdir -p "$r/usr/local/bin"
  install -m 0555 "$2" "$r/usr/local/bin/$1"
  echo "$r"
}

# cached OUT STAMP: whether OUT was built from what STAMP names (the digests its .stamp holds)
cached() { [ -f "$1" ] && [ "$(cat "$1.stamp" 2>/dev/null)" = "$2" ]; }

# stamped OUT STAMP: records what OUT was built from, and prints OUT
stamped() { echo "$2" >"$1.stamp"; echo "$1"; }

# binary_image REF OUT USER BIN NAME [SCRIPT ENTRY] -> OUT: the base with BIN at
# /usr/local/bin/NAME (and SCRIPT at /usr/local/bin/ENTRY), run as USER with the entrypoint
# /usr/local/bin/ENTRY (default NAME) and the command `run`; rebuilt only when BIN or SCRIPT changed
binary_image() {
  local ref="$1" out="$2" user="$3" bin="$4" name="$5" script="${6:-}" entry="${7:-$5}"
  local stamp r
  stamp="$(sha "$bin")${script:+ $(sha "$script")}"
  if cached "$out" "$stamp"; then echo "$out"; return; fi
  r="$(with_binary "$name" "$bin")"
  [ -z "$script" ] || install -m 0555 "$script" "$r/usr/local/bin/$entry"
  oci_archive "$ref" "$r" "$out" "[\"/usr/local/bin/$entry\"]" '["run"]' "$user"
  rm -rf "$r"
  stamped "$out" "$stamp"
}

build_node() {
  [ -x "$1" ] || die "node: $1 is not an executable (the forge-sim binary)"
  binary_image "localhost/cardano-node:sim" "$IMAGES/cardano-node-sim.tar" 0:0 "$1" forge-sim \
    scripts/cardano-node-standin.sh cardano-node
}

build_manager() {
  [ -x "$1" ] || die "manager: $1 is not an executable (the forge-manager binary)"
  binary_image "localhost/forge-manager:dev" "$IMAGES/forge-manager-dev.tar" 10001:10001 "$1" forge-manager
}

# distroless/cc's content from Debian packages: glibc, libgcc, CA certificates, a nonroot user.
cc_rootfs() {
  local dir="$IMAGES/cc-rootfs"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return; fi
  base_rootfs >/dev/null
  rm -rf "$dir"
  mkdir -p "$dir/etc/ssl/certs" "$dir/tmp" "$dir/home/nonroot"
  for d in "$IMAGES"/debs/libc6_*.deb "$IMAGES"/debs/libgcc-s1_*.deb; do dpkg-deb -x "$d" "$dir"; done
  cp /etc/ssl/certs/ca-certificates.crt "$dir/etc/ssl/certs/"
  chmod 1777 "$dir/tmp"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
  touch "$dir/.complete"
  echo "$dir"
}

# The Dockerfile's run-stage base, gcr.io/distroless/cc-debian12:nonroot, made in buildah's
# storage from Debian packages when it is not there.
distroless_image() {
  local distroless="gcr.io/distroless/cc-debian12:nonroot"
  if ! buildah inspect --type image "$distroless" >/dev/null 2>&1; then
    local cc c
    cc="$(cc_rootfs)"
    c="$(buildah from --pull=never scratch)"
    buildah copy "$c" "$cc/" / >/dev/null
    buildah config --user 65532:65532 --workingdir /home/nonroot \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt "$c"
    buildah commit -q --rm "$c" "$distroless" >/dev/null
    log "made $distroless from Debian packages"
  fi
}

build_dockerfile_run() {
  local bin="$1"
  [ -x "$bin" ] || die "dockerfile-run: $bin is not an executable (the forge-manager binary)"
  command -v buildah >/dev/null || die "dockerfile-run: buildah is not installed (apt-get install buildah)"
  local out="$IMAGES/forge-manager-dockerfile-run.tar" stamp
  stamp="$(sha "$bin") $(sha Dockerfile)"
  if cached "$out" "$stamp"; then echo "$out"; return; fi
  distroless_image
  local ctx
  ctx="$(mktemp -d)"
  install -m 0555 "$bin" "$ctx/forge-manager"
  # The build stage's product (/out/forge-manager), then the Dockerfile from its last FROM on.
  {
    printf 'FROM scratch AS build\nCOPY forge-manager /out/forge-manager\n'
    awk '/^FROM /{n=NR} {l[NR]=$0} END {for (i=n; i<=NR; i++) print l[i]}' Dockerfile
  } >"$ctx/Dockerfile"
  buildah bud --pull=never --network=none -q -t localhost/forge-manager:dockerfile-run -f "$ctx/Dockerfile" "$ctx" >&2
  rm -rf "$ctx"
  rm -f "$out"
  buildah push -q localhost/forge-manager:dockerfile-run "oci-archive:$out:localhost/forge-manager:dockerfile-run" >&2
  stamped "$out" "$stamp"
}

build_dockerfile() {
  command -v buildah >/dev/null || die "dockerfile: buildah is not installed (apt-get install buildah mmdebstrap)"
  command -v mmdebstrap >/dev/null || die "dockerfile: mmdebstrap is not installed (apt-get install buildah mmdebstrap)"
  local out="$IMAGES/forge-manager-dockerfile.tar"
  local rust="docker.io/library/rust:1.89-bookworm"
  distroless_image
  if ! buildah inspect --type image "$rust" >/dev/null 2>&1; then
    local tarball="$IMAGES/rust-base-rootfs.tar" c tc
    if [ ! -f "$tarball" ]; then
      mmdebstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates bookworm "$tarball.tmp.tar" >&2
      mv "$tarball.tmp.tar" "$tarball"
    fi
    tc="$(rustc --print sysroot)"
    c="$(buildah from --pull=never scratch)"
    buildah add "$c" "$tarball" / >/dev/null
    buildah copy "$c" "$tc/" /usr/local/rust/ >/dev/null
    buildah run "$c" -- sh -c 'mkdir -p /usr/local/cargo/bin && for b in /usr/local/rust/bin/*; do ln -s "$b" /usr/local/cargo/bin/; done'
    # This machine's CA bundle (Debian's plus any its network needs), so that cargo in the
    # build stage reaches the crates registry the way cargo on this machine does.
    buildah copy "$c" /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt >/dev/null
    buildah config --env CARGO_HOME=/usr/local/cargo \
      --env PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
    buildah commit -q --rm "$c" "$rust" >/dev/null
    log "made $rust from Debian packages and $(rustc --version)"
  fi
  local start
  start=$(date +%s)
  buildah bud --pull=never --network=host --layers -t localhost/forge-manager:dockerfile -f Dockerfile . >&2
  log "Dockerfile built in $(( $(date +%s) - start )) s"
  rm -f "$out"
  buildah push -q localhost/forge-manager:dockerfile "oci-archive:$out:localhost/forge-manager:dockerfile" >&2
  echo "$out"
}

case "${1:-}" in
  pause) build_pause ;;
  base) base_rootfs ;;
  node) build_node "${2:?usage: images.sh node FORGE_SIM_BIN}" ;;
  manager) build_manager "${2:?usage: images.sh manager FORGE_MANAGER_BIN}" ;;
  dockerfile) build_dockerfile ;;
  dockerfile-run) build_dockerfile_run "${2:?usage: images.sh dockerfile-run FORGE_MANAGER_BIN}" ;;
  *) die "usage: images.sh pause | base | node FORGE_SIM_BIN | manager FORGE_MANAGER_BIN | dockerfile | dockerfile-run FORGE_MANAGER_BIN" ;;
esac
