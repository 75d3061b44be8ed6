//! forge-sim: stands in for the world around the sidecar in tests (docs/architecture.md, "Test
//! world"): a real kube-apiserver launcher, a TCP fault proxy, a cardano-node simulator and the
//! timeline judge. Never a code path of the sidecar in production.
#![forbid(unsafe_code)]
pub mod apiserver;
pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod creds;
pub mod node;
pub mod process;
pub mod proxy;
pub mod regions;
pub mod timeline;
pub mod world;
