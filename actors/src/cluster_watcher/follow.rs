//! Following our CardanoForgeCluster: a consistent GET (creating it from configuration when
//! absent), then a watch; every object read is reported to the Decider, and so is every
//! failure (fail closed). Runs inside the actor's context, so a restart stops it.

use forge_core::{crd::CardanoForgeCluster, decision::Event};
use futures::StreamExt;
use kube::api::ObjectMeta;

use super::ClusterObject;
use crate::messages::{CfcSeen, Fact, ProbeSpecChanged};
use forge_core::status::invalid_spec;

impl ClusterObject {
    fn set_seen(&self, object: Option<CardanoForgeCluster>) {
        if let Some(to) = &self.seen {
            to.do_send(CfcSeen(object.map(Box::new)));
        }
    }

    fn unavailable(&self, why: String) {
        tracing::warn!(cluster = %self.object.name(), %why, "CardanoForgeCluster unavailable: not forging");
        self.fact
            .do_send(Fact::now(Event::ClusterSpecUnavailable { why }));
    }

    fn report(&self, object: CardanoForgeCluster) {
        self.set_seen(Some(object.clone()));
        let generation = object.metadata.generation;
        match invalid_spec(&object.spec, (&self.network.0, self.network.1)) {
            Some(why) => self.unavailable(format!("{} is invalid: {why}", self.object.name())),
            None => {
                if let Some(to) = &self.health_spec {
                    to.do_send(ProbeSpecChanged(object.spec.health_check.clone()));
                }
                self.fact.do_send(Fact::now(Event::ClusterSpecChanged {
                    spec: Box::new(object.spec),
                    generation,
                }));
            }
        }
    }

    /// Reads (creating if absent) and reports; false when it failed.
    async fn read(&self) -> bool {
        let read = match self.object.get().await {
            Ok(Some(object)) => Ok(object),
            Ok(None) => {
                let object = CardanoForgeCluster {
                    metadata: ObjectMeta {
                        name: Some(self.object.name().to_string()),
                        ..ObjectMeta::default()
                    },
                    spec: self.default_spec.clone(),
                    status: None,
                };
                let created = self.object.create_if_absent(object).await;
                if created.is_ok() {
                    tracing::info!(cluster = %self.object.name(), "created the CardanoForgeCluster from configuration");
                }
                created
            }
            Err(e) => Err(e),
        };
        match read {
            Ok(object) => {
                self.report(object);
                true
            }
            Err(e) => {
                self.unavailable(format!("{} cannot be read: {e}", self.object.name()));
                false
            }
        }
    }

    /// Runs until the actor stops (on the actor's own copy).
    pub(super) async fn run(self) {
        loop {
            if self.read().await {
                let mut events = self.object.watch(self.idle);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(Some(object)) => self.report(object),
                        Ok(None) => {
                            self.set_seen(None);
                            self.unavailable(format!(
                                "{} was deleted; it is re-created from configuration",
                                self.object.name()
                            ));
                            break;
                        }
                        // Not yet a reason to stop: a fresh read decides (and reports a
                        // failure as unavailable).
                        Err(e) => {
                            tracing::debug!(cluster = %self.object.name(), error = %e, "CardanoForgeCluster watch failed; re-reading");
                            break;
                        }
                    }
                }
            }
            tokio::time::sleep(self.retry_after).await;
        }
    }
}
