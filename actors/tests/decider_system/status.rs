//! What other actors send the Decider for `/status` (the KES, chain and quorum figures): shown
//! by the pod they were sent to, the last of each kind.

use forge_actors::messages::StatusFigures;
use forge_core::{
    credentials::OpCertInfo,
    status::{ChainReport, KesReport, QuorumReport},
};

use crate::{
    ms,
    support::{Pod, timing},
    with_a_leader,
};

#[test]
fn the_figures_other_actors_send_are_shown_in_status_the_last_of_each_kind() {
    with_a_leader(async |fleet, pods, l| {
        let shown = |pod: &Pod| {
            let status = pod.snapshot.borrow().status.clone().expect("a status");
            (status.kes, status.chain, status.quorum)
        };
        assert_eq!(shown(l), (None, None, None), "nothing sent yet");
        let kes = KesReport {
            op_cert: OpCertInfo {
                counter: 5,
                kes_period: 1560,
            },
            kes: None,
        };
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
        l.decider.do_send(StatusFigures::Chain(chain(3)));
        l.decider.do_send(StatusFigures::Kes(kes));
        l.decider.do_send(StatusFigures::Quorum(quorum.clone()));
        l.decider.do_send(StatusFigures::Chain(chain(0)));
        // Published with the next decision or heartbeat.
        fleet.run_checked(ms(timing().retry_period * 2), 10).await;
        assert_eq!(shown(l), (Some(kes), Some(chain(0)), Some(quorum)));
        for other in pods.iter().filter(|p| p.name != l.name) {
            assert_eq!(
                shown(other),
                (None, None, None),
                "{} was sent nothing",
                other.name
            );
        }
    });
}
