//! `WriteStatus` (module docs of the StatusWriter).

use actix::{ActorFutureExt, Handler, ResponseActFuture, WrapFuture};
use forge_core::crd::{CardanoForgeCluster, CardanoLeader, CardanoLeaderSpec};
use kube::api::ObjectMeta;

use super::StatusWriter;
use crate::{
    messages::{CommandFailed, CommandResult, WriteStatus},
    ports::{ApiError, ApiErrorKind},
};
use forge_core::status::{cluster_status, leader_status, same_cluster_content, same_content};

impl Handler<WriteStatus> for StatusWriter {
    type Result = ResponseActFuture<Self, CommandResult>;

    fn handle(&mut self, WriteStatus(report): WriteStatus, _: &mut Self::Context) -> Self::Result {
        let now = jiff::Timestamp::now();
        let status = leader_status(&self.pod, &report, self.last.as_ref(), now);
        let leader_unchanged = self.last.as_ref().is_some_and(|l| same_content(l, &status));
        let cfc = self.cluster.as_ref().and_then(|object| {
            let seen = self.seen.clone();
            let rv = seen.as_ref().and_then(|o| o.metadata.resource_version.clone());
            let override_reason = seen
                .as_ref()
                .and_then(|o| o.spec.override_.as_ref())
                .filter(|o| o.enabled)
                .and_then(|o| o.reason.clone());
            let seen = seen.and_then(|o| o.status);
            let mut next = cluster_status(&self.pod, &report, self.health.as_ref(), seen.as_ref(), now);
            // An override's `reason` is shown with the decision it caused.
            if let (Some(why), true) = (override_reason, report.reason.is_override()) {
                next.message = next.message.map(|m| format!("{m} (override reason: {why})"));
            }
            // A claim is always written: "confirmed" must mean the server took it, not that a
            // cached copy (which a lagging watch may not have updated) already said so.
            let unchanged =
                !report.forging_enabled && seen.as_ref().is_some_and(|s| same_cluster_content(s, &next));
            (!unchanged).then(|| {
                (
                    object.clone(),
                    serde_json::to_value(&next).unwrap_or_default(),
                    rv,
                )
            })
        });
        let managed = self.cluster.is_some();
        let pod = self.pod.clone();
        let metrics = self.metrics.clone();
        let leader = self.leader.clone();
        let body = serde_json::to_value(&status).unwrap_or_default();
        let fut = async move {
            // The CFC as the server showed it in the course of this write, for the actor.
            let mut seen_now: Option<Option<CardanoForgeCluster>> = None;
            let result = async {
            if let Some((object, cfc_body, rv)) = cfc {
                // Every write carries a resourceVersion precondition, so a delayed write never
                // lands over a newer one: with nothing seen yet, read first.
                let rv = match rv {
                    Some(rv) => Some(rv),
                    None => match object.get().await {
                        Ok(Some(current)) => {
                            let rv = current.metadata.resource_version.clone();
                            seen_now = Some(Some(current));
                            rv
                        }
                        Ok(None) => return Err(CommandFailed::new(ApiErrorKind::NotFound, object.name())),
                        Err(e) => return Err(CommandFailed::new(e.kind(), e)),
                    },
                };
                let written = match object.patch_status(cfc_body.clone(), rv).await {
                    Err(ApiError::Conflict(why)) => match object.get().await {
                        Ok(Some(current)) => {
                            let other = current
                                .status
                                .as_ref()
                                .and_then(|s| s.active_leader.clone())
                                .filter(|l| !l.is_empty() && *l != pod);
                            let fresh = current.metadata.resource_version.clone();
                            seen_now = Some(Some(current));
                            match other {
                                Some(other) => Err(ApiError::Conflict(format!(
                                    "the status was written by {other} since we last read it ({why})"
                                ))),
                                None => object.patch_status(cfc_body, fresh).await,
                            }
                        }
                        Ok(None) => Err(ApiError::NotFound(object.name().to_string())),
                        Err(e) => Err(e),
                    },
                    other => other,
                };
                match written {
                    Ok(written) => seen_now = Some(Some(written)),
                    Err(e) => {
                        if let Some(m) = &metrics {
                            m.kube_api_errors
                                .with_label_values(&["cardanoforgecluster_status", e.kind().as_str()])
                                .inc();
                        }
                        return Err(CommandFailed::new(e.kind(), e));
                    }
                }
            }
            let mut status = status;
            let mut body = body;
            if leader_unchanged {
                // What we last wrote is no proof of what is there: another pod of this cluster
                // may have written since (a handover A -> B -> A), and an unchanged report would
                // then leave the CardanoLeader naming it while we forge. So read it.
                match leader.get().await {
                    Ok(Some(current)) => {
                        let there = current.status;
                        if there.as_ref().is_some_and(|t| same_content(t, &status)) {
                            return Ok(None);
                        }
                        tracing::info!(
                            pod = %pod,
                            leader_pod = there.as_ref().and_then(|t| t.leader_pod.as_deref()).unwrap_or(""),
                            "CardanoLeader status changed by another writer since our last write: writing ours again"
                        );
                        status = leader_status(&pod, &report, there.as_ref(), now);
                        body = serde_json::to_value(&status).unwrap_or_default();
                    }
                    Ok(None) => {
                        tracing::info!(pod = %pod, "CardanoLeader deleted since our last write: creating it again");
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "could not read the CardanoLeader to confirm it is unchanged: writing it");
                    }
                }
            }
            let written = match leader.patch_status(body.clone(), None).await {
                Err(ApiError::NotFound(_)) => {
                    let object = CardanoLeader {
                        metadata: ObjectMeta {
                            name: Some(leader.name().to_string()),
                            ..ObjectMeta::default()
                        },
                        spec: CardanoLeaderSpec::default(),
                        status: None,
                    };
                    match leader.create_if_absent(object).await {
                        Ok(_) => leader.patch_status(body, None).await,
                        Err(e) => Err(e),
                    }
                }
                other => other,
            };
            match written {
                Ok(_) => Ok(Some(status)),
                Err(e) => {
                    if let Some(m) = &metrics {
                        m.kube_api_errors
                            .with_label_values(&["cardanoleader_status", e.kind().as_str()])
                            .inc();
                    }
                    if managed {
                        tracing::warn!(error = %e, "CardanoLeader status not written (the CardanoForgeCluster status was)");
                        Ok(None)
                    } else {
                        Err(CommandFailed::new(e.kind(), e))
                    }
                }
            }
            }
            .await;
            (result, seen_now)
        };
        Box::pin(fut.into_actor(self).map(move |(result, seen_now), act, _| {
            if let Some(seen) = seen_now {
                act.seen = seen;
            }
            match result {
                Ok(written) => {
                    act.restarts.healthy();
                    if let Some(status) = written {
                        act.last = Some(status);
                    }
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }))
    }
}
