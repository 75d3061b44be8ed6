//! forge-core: the pure domain of forge-manager.
//!
//! Owns the CRD types, configuration validation, naming rules, the lease timing model,
//! credential envelope validation and the decision engine. No I/O: no tokio, actix, reqwest,
//! hyper or Kubernetes client here (CI checks `cargo tree -p forge-core -e normal`).
#![forbid(unsafe_code)]

pub mod cardano;
pub mod config;
pub mod crd;
pub mod credentials;
pub mod decision;
pub mod lease;
pub mod naming;
pub mod quorum;
pub mod status;
