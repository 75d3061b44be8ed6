# syntax=docker/dockerfile:1
# forge-manager: one binary that is both the sidecar (`forge-manager run`, the default) and the
# node guard (`forge-manager guard -- cardano-node run ...`).
#
#   docker build -t forge-manager:0.1.0 .
#
# Build stage: Debian bookworm with the workspace's minimum Rust (rust-version in Cargo.toml).
# --no-default-features leaves the test world (`sim`) out of the production binary.
# TLS is rustls with ring, so no OpenSSL is needed at build or run time.
# Statically linked (glibc, crt-static): `forge-manager install` copies this binary into the
# node's container as the guard, and the official cardano-node image (a Nix buildEnv) has no
# /lib64/ld-linux-x86-64.so.2 to load a dynamic one (exec fails with ENOENT). Name lookups of a
# static glibc binary use the run stage's glibc (Debian 12's, the build stage's too).
FROM docker.io/library/rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    host="$(rustc -vV | sed -n 's/^host: //p')" \
    && RUSTFLAGS="-C target-feature=+crt-static" \
       cargo build --release --locked --no-default-features --bin forge-manager --target "$host" \
    && install -D -m 0555 "target/$host/release/forge-manager" /out/forge-manager

# Run stage: distroless (glibc, CA certificates, no shell, no package manager), non-root.
# Read-only root filesystem friendly: the binary writes only to mounted volumes (the credential
# targets and /ipc), never to its own filesystem.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/forge-manager /usr/local/bin/forge-manager
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/forge-manager"]
CMD ["run"]
