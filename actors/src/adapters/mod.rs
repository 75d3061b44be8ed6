//! Adapters: the I/O behind the actors' ports (files, processes and signals, Kubernetes, HTTP).

pub mod fs_credentials;
pub mod guard;
pub mod http_probe;
pub mod kube;
pub mod kube_events;
pub mod kube_lease;
pub mod kube_object;
pub mod kube_peer;
pub mod kube_ticket;
pub mod node_chain;
pub mod process;
