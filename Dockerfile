# syntax=docker/dockerfile:1
# forge-manager: one binary that is both the sidecar (`forge-manager run`, the default) and the
# node guard (`forge-manager guard -- cardano-node run ...`).
#
#   docker build -t forge-manager:0.1.0 .
#
# Build stage: Debian bookworm with the workspace's minimum Rust (rust-version in Cargo.toml).
# --no-default-features leaves the test world (`sim`) out of the production binary.
# TLS is rustls with ring, so no OpenSSL is needed at build or run time.
FROM docker.io/library/rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --bin forge-manager \
    && install -D -m 0555 target/release/forge-manager /out/forge-manager

# Run stage: distroless (glibc, CA certificates, no shell, no package manager), non-root.
# Read-only root filesystem friendly: the binary writes only to mounted volumes (the credential
# targets and /ipc), never to its own filesystem.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/forge-manager /usr/local/bin/forge-manager
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/forge-manager"]
CMD ["run"]
