//! Starting a pod of the fleet (its stand-ins, its supervised elector and its Decider) and the
//! handles a test needs.

use std::sync::Arc;

use actix::{Actor, Addr, AsyncContext, Context, Supervisor};
use forge_actors::{
    decider::{Decider, DeciderOutputs},
    http::Snapshot,
    lease_elector::LeaseElector,
    messages::{Fact, Shutdown, SourcesRotated},
    metrics::{Metrics, PodLabels},
    testing::MemoryLeaseClient,
};
use forge_core::decision::{DeciderConfig, Event, State};
use tokio::sync::watch;

use super::{
    FakeNode, Fleet, PodOptions, settings,
    stand_ins::{ElectorTap, StandIn, TappedLeases},
    timing,
};

impl Fleet {
    /// Starts pod `name`: its stand-ins, its supervised elector and its Decider. Its node is
    /// down and its credentials unknown until the test says otherwise.
    pub fn start_pod(&self, name: &'static str, options: PodOptions) -> Pod {
        self.lock().nodes.insert(
            name.to_string(),
            FakeNode {
                starts_non_producing: options.boot_credentials,
                sources_valid: true,
                ..FakeNode::default()
            },
        );
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry, &PodLabels::default(), "test").expect("metrics");

        let decider_ctx = Context::<Decider>::new();
        let decider = decider_ctx.address();
        let client = self.store.client(name);
        let api = Arc::new(TappedLeases {
            pod: name,
            inner: client.clone(),
            fleet: self.clone(),
        });
        let (clock, fact, m) = (self.clock, decider.clone().recipient(), metrics.clone());
        let elector =
            Supervisor::start(move |_| LeaseElector::new(api, name, timing(), clock, fact, Some(m)));
        let tap = ElectorTap {
            pod: name,
            fleet: self.clone(),
            elector: elector.clone(),
        }
        .start();
        let stand_in = StandIn {
            pod: name,
            fleet: self.clone(),
        }
        .start();
        let out = DeciderOutputs {
            contend: tap.clone().recipient(),
            release: tap.recipient(),
            install: stand_in.clone().recipient(),
            remove: stand_in.clone().recipient(),
            reload: stand_in.clone().recipient(),
            write_status: stand_in.recipient(),
            poll_peers: Vec::new(),
        };
        let config = DeciderConfig {
            lease: timing(),
            ..DeciderConfig::single_cluster("local")
        };
        let (snapshot_tx, snapshot) = watch::channel(Arc::new(Snapshot::default()));
        decider_ctx.run(Decider::new(
            settings(name, options),
            State::new(config),
            self.clock,
            out,
            snapshot_tx,
            Some(metrics.clone()),
        ));
        Pod {
            name,
            fleet: self.clone(),
            client,
            decider,
            elector,
            snapshot,
            metrics,
            _registry: registry,
        }
    }
}

/// One pod: the handles a test needs.
pub struct Pod {
    /// Its name (the Lease identity).
    pub name: &'static str,
    fleet: Fleet,
    /// Its elector's Lease client, to script faults.
    pub client: MemoryLeaseClient,
    /// Its Decider.
    pub decider: Addr<Decider>,
    /// Its (supervised) elector.
    pub elector: Addr<LeaseElector>,
    /// What the Decider publishes for `/status`.
    pub snapshot: watch::Receiver<Arc<Snapshot>>,
    /// Its metrics.
    pub metrics: Metrics,
    _registry: prometheus::Registry,
}

impl Pod {
    async fn fact(&self, event: Event) {
        self.decider
            .send(Fact::now(event))
            .await
            .expect("the Decider takes facts");
    }

    /// The node process starts, and the NodeWatcher reports it.
    pub async fn node_up(&self) {
        self.fleet.set_node(self.name, true);
        self.fact(Event::NodeUp).await;
    }

    /// A node process that forges from its start comes up (F12), and the NodeWatcher reports it.
    pub async fn node_up_forging(&self) {
        self.fleet.start_node_forging(self.name);
        self.fact(Event::NodeUp).await;
    }

    /// The node process dies, and the NodeWatcher reports it.
    pub async fn node_down(&self) {
        self.fleet.set_node(self.name, false);
        self.fact(Event::NodeDown).await;
    }

    /// The node process dies and starts again before the NodeWatcher reports either: both
    /// facts then arrive back to back.
    pub async fn node_restarted_before_reported(&self) {
        self.fleet.set_node(self.name, false);
        self.fleet.set_node(self.name, true);
        let down = self.decider.send(Fact::now(Event::NodeDown));
        let up = self.decider.send(Fact::now(Event::NodeUp));
        down.await.expect("the Decider takes facts");
        up.await.expect("the Decider takes facts");
    }

    /// The CredentialKeeper reports a valid source set.
    pub async fn credentials_valid(&self) {
        self.fleet.set_sources_valid(self.name, true);
        self.fact(Event::CredentialsValid).await;
    }

    /// The source set became invalid (corrupt rotation), and the CredentialKeeper reports it.
    pub async fn credentials_invalid(&self, why: &str) {
        self.fleet.set_sources_valid(self.name, false);
        self.fact(Event::CredentialsInvalid { why: why.into() }).await;
    }

    /// A valid new set appeared: `CredentialsValid` + `SourcesRotated`, as the keeper sends.
    pub async fn rotated(&self) {
        self.credentials_valid().await;
        self.decider
            .send(SourcesRotated)
            .await
            .expect("the Decider takes rotations");
    }

    /// The node guard fences the node (its permit lapsed): files removed, forging off, and the
    /// NodeSignaller reports it.
    pub async fn fenced(&self) {
        self.fleet.fence(self.name);
        self.fact(Event::NodeFenced).await;
    }

    /// SIGTERM.
    pub async fn shutdown(&self) {
        self.decider
            .send(Shutdown)
            .await
            .expect("the Decider takes Shutdown");
    }

    /// Node up and credentials valid: a ready candidate.
    pub async fn ready(&self) {
        self.node_up().await;
        self.credentials_valid().await;
    }

    /// Whether the Decider's published decision forges.
    pub fn decides_to_forge(&self) -> bool {
        self.snapshot.borrow().status.as_ref().and_then(|s| s.forging) == Some(true)
    }

    /// Restarts of its elector counted so far.
    pub fn elector_restarts(&self) -> u64 {
        self.metrics
            .actor_restarts
            .with_label_values(&[forge_actors::lease_elector::ACTOR])
            .get()
    }
}
