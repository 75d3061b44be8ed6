//! `WriteStatus`: write the CardanoLeader status when it changed, creating the object if absent.

use actix::{ActorFutureExt, Handler, ResponseActFuture, WrapFuture};
use forge_core::crd::{CardanoLeader, CardanoLeaderSpec};
use kube::api::ObjectMeta;

use super::{ClusterWatcher, leader_status, same_content};
use crate::{
    adapters::kube::KubeApiError,
    messages::{CommandFailed, CommandResult, WriteStatus},
};

impl Handler<WriteStatus> for ClusterWatcher {
    type Result = ResponseActFuture<Self, CommandResult>;

    fn handle(&mut self, WriteStatus(report): WriteStatus, _: &mut Self::Context) -> Self::Result {
        let status = leader_status(&self.pod, &report, self.last.as_ref(), jiff::Timestamp::now());
        if self.last.as_ref().is_some_and(|l| same_content(l, &status)) {
            return Box::pin(actix::fut::ready(Ok(())));
        }
        let leader = self.leader.clone();
        let body = serde_json::to_value(&status).unwrap_or_default();
        let fut = async move {
            match leader.patch_status(&body).await {
                Err(KubeApiError::NotFound(_)) => {
                    let object = CardanoLeader {
                        metadata: ObjectMeta {
                            name: Some(leader.name().to_string()),
                            ..ObjectMeta::default()
                        },
                        spec: CardanoLeaderSpec::default(),
                        status: None,
                    };
                    leader.create_if_absent(&object).await?;
                    leader.patch_status(&body).await
                }
                other => other,
            }
        };
        Box::pin(fut.into_actor(self).map(move |result, act, _| match result {
            Ok(_) => {
                act.restarts.healthy();
                act.last = Some(status);
                Ok(())
            }
            Err(e) => {
                if let Some(m) = &act.metrics {
                    m.kube_api_errors
                        .with_label_values(&["cardanoleader_status", e.kind()])
                        .inc();
                }
                Err(CommandFailed::new(e.kind(), e))
            }
        }))
    }
}
