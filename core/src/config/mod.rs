//! Configuration model and its pure validation: [`RawSettings`] (what arrived, as strings) ->
//! [`validate`] -> [`ValidConfig`] (typed), or [`ConfigErrors`] naming every bad key.
//!
//! No I/O: the loader in `src/settings.rs` layers defaults < file < environment < flags into a
//! [`RawSettings`] and passes in the host name; nothing here reads the environment or files.
//!
//! - `keys.rs`: the key table. Every key is declared there once (name, default, format,
//!   meaning); [`RawSettings`], [`ENV_VARS`] and `docs/configuration.md` come from it. How to add
//!   a key is described there.
//! - `sections.rs`, `timing.rs`: [`validate`], one function per section.
//! - `model.rs`: [`ValidConfig`]. `errors.rs`: [`ConfigError`] and the key reader.
//! - `docs.rs`: [`reference_markdown`], printed by `forge-manager config --docs`.
//!
//! # Keys
//!
//! Every key is named by its environment variable (the reference sidecar's names, so the image is
//! a drop-in replacement). The config-file key and the [`RawSettings`] field are the snake_case
//! of that name (`LEASE_DURATION` -> `lease_duration`).
//!
//! # "Explicitly given"
//!
//! A [`RawSettings`] field is `Some` exactly when some layer (file, environment, flag) gave the
//! key; the built-in defaults are applied here, in [`validate`], not by the loader. That is how
//! the derived names know whether `LEASE_NAME`/`CRD_NAME`/`CLUSTER_IDENTIFIER`/`NETWORK_MAGIC`
//! /`SLEEP_INTERVAL` were given. An empty string counts as given, except for the keys whose
//! default is empty or derived (`POOL_ID`, `POOL_ID_HEX`, `POOL_NAME`, `POOL_TICKER`,
//! `HEALTH_CHECK_ENDPOINT`, `CLUSTER_IDENTIFIER`, `PEER_CLUSTERS`), where empty means unset.
//!
//! # Lease timing
//!
//! The rules between `LEASE_DURATION`, `RENEW_DEADLINE`, `RETRY_PERIOD`, `API_TIMEOUT` and
//! `SLEEP_INTERVAL` are in [`check_timing`] and explained in `docs/configuration.md`.
mod docs;
mod errors;
pub mod keys;
mod model;
mod parse;
mod quorum;
mod sections;
#[cfg(test)]
mod tests;
mod timing;

pub use docs::reference_markdown;
pub use errors::{ConfigError, ConfigErrors};
pub use keys::{ENV_VARS, EnvVar, Format, Key, RawSettings, Section, StringList};
pub use model::*;
pub use parse::fmt_dur;
pub use quorum::{
    MAX_CLOCK_RATE_DIFFERENCE, QuorumParticipant, QuorumSettings, TicketTiming, check_ticket_timing,
};
pub use timing::{JITTER_FACTOR, LeaseTiming, MIN_DEADLINE_MARGIN, check_timing};

/// Validates raw settings into a [`ValidConfig`], or returns every bad key (one error per key,
/// in the order the sections read them). Pure: the host name arrives in
/// [`RawSettings::host_name`].
pub fn validate(raw: &RawSettings) -> Result<ValidConfig, ConfigErrors> {
    let mut c = errors::Check::new(raw);
    let (namespace, pod_name) = sections::identity(&mut c);
    let pod_uid = sections::pod_uid(&mut c);
    let timing = timing::timing(&mut c);
    let crd = sections::crd(&mut c);
    let node = sections::node(&mut c);
    let credentials = sections::credentials(&mut c);
    let network = sections::network(&mut c);
    let chain = sections::chain(&mut c, &network);
    let (cluster, application_type) = sections::cluster(&mut c);
    let pool = sections::pool(&mut c, cluster.management_enabled);
    let names = sections::names(&mut c, &network.name, pool.as_ref(), &cluster.region, &pod_name);
    let health = sections::health(&mut c);
    let peers = sections::peers(&mut c, &names.cluster);
    let quorum = quorum::quorum(
        &mut c,
        &names.cluster,
        cluster.management_enabled,
        &peers,
        &timing.lease,
        timing.api_timeout,
    );
    let metrics_port = c.int(&keys::METRICS_PORT) as u16;
    let log = sections::log(&mut c);

    if !c.errors.is_empty() {
        return Err(ConfigErrors(c.errors));
    }
    Ok(ValidConfig {
        namespace,
        pod_name,
        pod_uid,
        lease: timing.lease,
        api_timeout: timing.api_timeout,
        shutdown_timeout: timing.shutdown_timeout,
        legacy_sleep_interval: timing.sleep_interval,
        names,
        crd,
        node,
        credentials,
        network,
        pool,
        application_type,
        chain,
        cluster,
        health,
        peers,
        quorum,
        metrics_port,
        log,
    })
}
