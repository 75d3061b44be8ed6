//! What other actors send the Decider for `/status` (the KES, chain and quorum figures): shown
//! by the pod they were sent to, the last of each kind.
//!
//! The KES figures come from each pod's real CredentialKeeper (from the operational certificate
//! it validated). No ChainWatcher runs without `NODE_METRICS_URL` or `LEADER_SCHEDULE`, and no
//! TicketKeeper outside quorum mode, so the chain and quorum figures are sent here as those
//! actors send them, to the Decider `spawn_all` built.

use forge_actors::messages::StatusFigures;
use forge_core::status::{ChainReport, QuorumReport};

use crate::{
    ms,
    support::{Pod, timing},
    with_a_leader,
};

#[test]
fn the_figures_other_actors_send_are_shown_in_status_the_last_of_each_kind() {
    with_a_leader(async |fleet, pods, l| {
        let shown = |pod: &Pod| {
            let status = pod.status().expect("a status");
            (status.kes.map(|k| k.op_cert.counter), status.chain, status.quorum)
        };
        for p in pods {
            assert_eq!(
                shown(p),
                (Some(1), None, None),
                "{}: its keeper's figures",
                p.name
            );
        }
        // A rotation on the leader only: a new operational certificate.
        l.rotated().await;
        let chain = |slots| ChainReport {
            schedule_slots: slots,
            schedule_error: (slots == 0).then(|| "leaderlog.json: refused".to_string()),
            ..ChainReport::default()
        };
        let quorum = QuorumReport {
            want: "keep".into(),
            held: 2,
            needed: 2,
            ..QuorumReport::default()
        };
        let decider = &l.handles.decider;
        decider.do_send(StatusFigures::Chain(chain(3)));
        decider.do_send(StatusFigures::Quorum(quorum.clone()));
        decider.do_send(StatusFigures::Chain(chain(0)));
        // Published with the next decision or heartbeat (the rotation after the keeper's
        // debounce).
        fleet.run_checked(ms(timing().retry_period * 2), 10).await;
        assert_eq!(shown(l), (Some(2), Some(chain(0)), Some(quorum)));
        for other in pods.iter().filter(|p| p.name != l.name) {
            assert_eq!(
                shown(other),
                (Some(1), None, None),
                "{} was sent nothing new",
                other.name
            );
        }
    });
}
