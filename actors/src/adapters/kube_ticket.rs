//! The quorum participants' API servers behind the [`TicketApi`] port: each participant's forge
//! ticket as a [`KubeLeasePort`], ours through our own client, every other one's through a
//! client built from that participant's kubeconfig at each connect (the TicketKeeper connects
//! until a call through the ticket answers, then keeps it).

use std::{collections::BTreeMap, path::PathBuf, sync::Arc, time::Duration};

use futures::{FutureExt, future::BoxFuture};

use super::{
    kube::client,
    kube_lease::{KubeLeasePort, KubeLeases},
};
use crate::ports::{ApiError, LeaseApi, TicketApi};

/// The participants' tickets, by participant name.
#[derive(Clone)]
pub struct KubeTickets {
    /// Our own ticket, in our API server.
    own: Arc<dyn LeaseApi>,
    /// Every participant: its kubeconfig, `None` for ours.
    participants: BTreeMap<String, Option<PathBuf>>,
    namespace: String,
    lease: String,
    timeout: Duration,
    idle: Duration,
}

impl KubeTickets {
    /// The tickets named `lease` in `namespace` of `participants` `(name, kubeconfig)`, ours
    /// (no kubeconfig) through `own`, our own client; every call, and a new client's
    /// connection, gives up after `timeout`, and a ticket's watch is renewed after `idle`.
    pub fn new(
        own: &kube::Client,
        participants: impl IntoIterator<Item = (String, Option<PathBuf>)>,
        namespace: &str,
        lease: &str,
        timeout: Duration,
        idle: Duration,
    ) -> Self {
        Self {
            own: ticket(own.clone(), namespace, lease, timeout, idle),
            participants: participants.into_iter().collect(),
            namespace: namespace.to_owned(),
            lease: lease.to_owned(),
            timeout,
            idle,
        }
    }
}

/// The ticket `lease` in `namespace` through `client`.
fn ticket(
    client: kube::Client,
    namespace: &str,
    lease: &str,
    timeout: Duration,
    idle: Duration,
) -> Arc<dyn LeaseApi> {
    Arc::new(KubeLeasePort::new(
        KubeLeases::new(client, namespace, lease, timeout),
        idle,
    ))
}

impl TicketApi for KubeTickets {
    fn connect(&self, participant: &str) -> BoxFuture<'static, Result<Arc<dyn LeaseApi>, ApiError>> {
        let kubeconfig = match self.participants.get(participant) {
            None => {
                let e = ApiError::Transport(format!("{participant:?} is not a quorum participant"));
                return futures::future::ready(Err(e)).boxed();
            }
            Some(None) => return futures::future::ready(Ok(self.own.clone())).boxed(),
            Some(Some(kubeconfig)) => kubeconfig.clone(),
        };
        let (namespace, lease, timeout, idle) = (
            self.namespace.clone(),
            self.lease.clone(),
            self.timeout,
            self.idle,
        );
        async move {
            let c = client(Some(&kubeconfig), timeout).await?;
            Ok(ticket(c, &namespace, &lease, timeout, idle))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Our own participant's ticket is the one built on our client (no new client), another
    /// participant's an error naming its kubeconfig when that cannot be read, and a name that
    /// is not a participant's an error naming it. Nothing here opens a connection.
    #[tokio::test]
    async fn connects_ours_through_our_client_and_the_others_through_their_kubeconfigs() {
        let own = kube::Client::try_from(kube::Config::new("https://127.0.0.1:1".parse().expect("url")))
            .expect("client");
        let missing = std::env::temp_dir().join("forge-manager-no-such-kubeconfig");
        let tickets = KubeTickets::new(
            &own,
            [
                ("west".to_string(), None),
                ("east".to_string(), Some(missing.clone())),
            ],
            "cardano",
            "pool-ticket",
            Duration::from_secs(3),
            Duration::from_secs(80),
        );

        let (a, b) = (
            tickets.connect("west").await.expect("ours"),
            tickets.connect("west").await.expect("ours"),
        );
        assert!(Arc::ptr_eq(&a, &b), "our own ticket is built once, on our client");
        match tickets.connect("east").await {
            Err(ApiError::Transport(e)) => assert!(e.contains(&missing.display().to_string()), "{e}"),
            Err(e) => panic!("east: {e}"),
            Ok(_) => panic!("east connected without a kubeconfig"),
        }
        match tickets.connect("north").await {
            Err(ApiError::Transport(e)) => assert!(e.contains("\"north\""), "{e}"),
            Err(e) => panic!("north: {e}"),
            Ok(_) => panic!("north is not a participant"),
        }
    }
}
