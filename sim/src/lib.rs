//! forge-sim: stands in for the world around the sidecar in tests (DESIGN.md section 11).
//! Never a code path of the sidecar in production.
#![forbid(unsafe_code)]
pub mod cli;
