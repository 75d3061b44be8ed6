//! Quorum mode's settings: [`TicketTiming`], the participants ([`QuorumParticipant`]), and the
//! rules between the ticket timing and the lease timing ([`check_ticket_timing`]).
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use super::errors::{Check, ConfigError, default_secs};
use super::keys;
use super::model::PeerCluster;
use super::parse::ser_duration;
use super::timing::{JITTER_FACTOR, LeaseTiming, MIN_DEADLINE_MARGIN};
use crate::naming;

/// The largest clock-rate difference between two machines that the ticket timing must absorb:
/// 1 %, a hundred times what an unsynchronised quartz clock drifts (docs/quorum.md).
pub const MAX_CLOCK_RATE_DIFFERENCE: f64 = 0.01;

/// The forge ticket's timing (docs/quorum.md): a holder counts a ticket as held until
/// `renew_deadline` after its last successful write was sent; others may take it once it has
/// gone unrenewed for `duration` on their clock.
///
/// It has the same three fields as [`LeaseTiming`] and is kept apart on purpose: its keys and
/// defaults are its own (`TICKET_*`, 20 s / 12 s), and its rules are stricter (the margin must
/// also absorb a clock-rate difference between regions, [`TicketTiming::required_margin`]), so a
/// type of its own keeps a lease timing from being passed where the ticket's is meant. Where a
/// lease rule applies to tickets too, [`TicketTiming::as_lease_timing`] converts explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TicketTiming {
    /// `TICKET_DURATION`: how long a ticket stays valid after its last renewal.
    #[serde(serialize_with = "ser_duration")]
    pub duration: Duration,
    /// `TICKET_RENEW_DEADLINE`: a holder counts a ticket as held for this long after its last
    /// successful write was sent, and stops forging before it loses its majority.
    #[serde(serialize_with = "ser_duration")]
    pub renew_deadline: Duration,
    /// How often the keeper renews and retries: the lease's `RETRY_PERIOD`.
    #[serde(serialize_with = "ser_duration")]
    pub retry_period: Duration,
}

impl Default for TicketTiming {
    /// The defaults of `TICKET_DURATION`, `TICKET_RENEW_DEADLINE` and `RETRY_PERIOD` (20 s,
    /// 12 s, 2 s).
    fn default() -> Self {
        TicketTiming {
            duration: default_secs(&keys::TICKET_DURATION),
            renew_deadline: default_secs(&keys::TICKET_RENEW_DEADLINE),
            retry_period: default_secs(&keys::RETRY_PERIOD),
        }
    }
}

impl TicketTiming {
    /// The same numbers as a [`LeaseTiming`], for the lease rules a ticket reuses.
    pub fn as_lease_timing(&self) -> LeaseTiming {
        LeaseTiming {
            duration: self.duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        }
    }

    /// The least `duration - renew_deadline` this timing needs: the node's stop
    /// ([`MIN_DEADLINE_MARGIN`]) plus what a clock-rate difference of
    /// [`MAX_CLOCK_RATE_DIFFERENCE`] can eat on both sides of the duration.
    pub fn required_margin(&self) -> Duration {
        MIN_DEADLINE_MARGIN + self.duration.mul_f64(2.0 * MAX_CLOCK_RATE_DIFFERENCE)
    }
}

/// One participant of quorum mode: a region or a witness, reached through its kubeconfig.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumParticipant {
    /// Its name (DNS-1123 subdomain, unique): a region's CardanoForgeCluster name, or a
    /// witness's free name.
    pub name: String,
    /// Its kubeconfig; `None` for our own region (our own API server, in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// A witness holds a ticket but runs no pods.
    pub witness: bool,
}

/// Quorum mode's validated settings (`QUORUM_PARTICIPANTS`, `TICKET_*`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuorumSettings {
    /// Every participant, our own region included (first), in the order configured.
    pub participants: Vec<QuorumParticipant>,
    /// The ticket timing.
    pub ticket: TicketTiming,
    /// `QUORUM_BREAK_GLASS`: an override forcing `Enabled` skips the majority (docs/quorum.md).
    pub break_glass: bool,
}

/// The ticket timing rules, one error per broken rule: the renew deadline leaves the required margin
/// below the duration ([`TicketTiming::required_margin`]); a ticket outlives the local lease
/// (`TICKET_DURATION >= LEASE_DURATION`, so a region's local failover keeps its tickets); two
/// renew attempts fit in the ticket renew deadline (`RETRY_PERIOD x 1.2 + 2 x API_TIMEOUT`).
pub fn check_ticket_timing(t: &TicketTiming, lease: &LeaseTiming, api_timeout: Duration) -> Vec<ConfigError> {
    use super::parse::fmt_dur;
    let mut errors = Vec::new();
    if t.duration.is_zero() {
        errors.push(ConfigError {
            key: keys::TICKET_DURATION.name,
            problem: "must be greater than zero, got 0".to_string(),
        });
        return errors;
    }
    if t.renew_deadline >= t.duration || t.duration - t.renew_deadline < t.required_margin() {
        errors.push(ConfigError { key: keys::TICKET_RENEW_DEADLINE.name, problem:
            format!(
                "must be at least {} below TICKET_DURATION ({}), got {}: a holder stops at its ticket renew deadline, and its node's stop and a {}% clock-rate difference must fit before its tickets can expire for others",
                fmt_dur(t.required_margin()),
                fmt_dur(t.duration),
                fmt_dur(t.renew_deadline),
                MAX_CLOCK_RATE_DIFFERENCE * 100.0
            ),
        });
    }
    if t.duration < lease.duration {
        errors.push(ConfigError { key: keys::TICKET_DURATION.name, problem:
            format!(
                "must be at least LEASE_DURATION ({}), got {}: a region's new local leader must be able to renew its tickets before they expire",
                fmt_dur(lease.duration),
                fmt_dur(t.duration)
            ),
        });
    }
    let two_attempts = t.retry_period.mul_f64(JITTER_FACTOR) + api_timeout * 2;
    if two_attempts > t.renew_deadline {
        errors.push(ConfigError { key: keys::TICKET_RENEW_DEADLINE.name, problem:
            format!(
                "must leave room for two renew attempts (RETRY_PERIOD x {JITTER_FACTOR} + 2 x API_TIMEOUT = {}), got {}",
                fmt_dur(two_attempts),
                fmt_dur(t.renew_deadline)
            ),
        });
    }
    errors
}

/// The quorum section of `validate`: `None` when `QUORUM_PARTICIPANTS` is unset (quorum mode
/// off). Our own region (`own`, on our own API server) comes first; each other region must be a
/// `PEER_CLUSTERS` peer and every peer a participant, so the decision engine knows every region
/// that may hold tickets.
pub(crate) fn quorum(
    c: &mut Check,
    own: &str,
    management_enabled: bool,
    peers: &[PeerCluster],
    lease: &LeaseTiming,
    api_timeout: Duration,
) -> Option<QuorumSettings> {
    let key = keys::QUORUM_PARTICIPANTS.name;
    let ticket = TicketTiming {
        duration: Duration::from_secs(c.int(&keys::TICKET_DURATION)),
        renew_deadline: c.secs(&keys::TICKET_RENEW_DEADLINE),
        retry_period: lease.retry_period,
    };
    let items = c
        .raw
        .quorum_participants
        .as_ref()
        .map(|l| l.items())
        .unwrap_or_default();
    let break_glass = c.flag(&keys::QUORUM_BREAK_GLASS);
    if items.is_empty() {
        return None;
    }
    if !management_enabled {
        c.push(key, "quorum mode needs ENABLE_CLUSTER_MANAGEMENT=true (the regions' preference decides who takes the tickets)");
    }
    let mut participants = vec![QuorumParticipant {
        name: own.to_owned(),
        kubeconfig: None,
        witness: false,
    }];
    for item in &items {
        let (witness, entry) = match item.strip_prefix("witness:") {
            Some(rest) => (true, rest.trim()),
            None => (false, item.as_str()),
        };
        let Some((name, path)) = entry.split_once('=') else {
            c.push(key, format!("each entry must be name=/path/to/kubeconfig or witness:name=/path/to/kubeconfig, got {item:?}"));
            continue;
        };
        let (name, path) = (name.trim(), path.trim());
        if !naming::is_dns1123_subdomain(name) {
            c.push(
                key,
                format!("participant name must be a DNS-1123 subdomain, got {name:?} in {item:?}"),
            );
        } else if !std::path::Path::new(path).is_absolute() {
            c.push(
                key,
                format!("kubeconfig must be an absolute path, got {path:?} in {item:?}"),
            );
        } else if participants.iter().any(|p| p.name == name) {
            let why = if name == own {
                " (our own region is always a participant: list only the others)"
            } else {
                ""
            };
            c.push(
                key,
                format!("participant names must be unique, got {name:?} twice{why}"),
            );
        } else if !witness && !peers.iter().any(|p| p.name == name) {
            c.push(key, format!("region {name:?} is not in PEER_CLUSTERS: list it there too, or mark it witness:{name}=... if it runs no pods"));
        } else if witness && peers.iter().any(|p| p.name == name) {
            c.push(key, format!("{name:?} is a PEER_CLUSTERS region, not a witness"));
        }
        participants.push(QuorumParticipant {
            name: name.to_owned(),
            kubeconfig: Some(PathBuf::from(path)),
            witness,
        });
    }
    for peer in peers {
        if !participants.iter().any(|p| p.name == peer.name) {
            c.push(key, format!("peer region {:?} (PEER_CLUSTERS) must be a participant too: a region outside the quorum could forge beside it", peer.name));
        }
    }
    if participants.len() < 3 {
        c.push(key, format!("needs at least 3 participants with our own region (a majority of 2 is both: any failure stops forging), got {}; add a witness", participants.len()));
    }
    if !c.has_any(&[
        &keys::TICKET_DURATION,
        &keys::TICKET_RENEW_DEADLINE,
        &keys::LEASE_DURATION,
        &keys::RETRY_PERIOD,
        &keys::API_TIMEOUT,
    ]) {
        for err in check_ticket_timing(&ticket, lease, api_timeout) {
            c.push(err.key, err.problem);
        }
    }
    Some(QuorumSettings {
        participants,
        ticket,
        break_glass,
    })
}
