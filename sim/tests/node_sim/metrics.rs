//! The node's metrics endpoint: the forging state, and the tip it serves (mainnet slots, with a
//! lag, a freeze and a resume set over the control socket).
use std::time::Duration;

use forge_sim::node::{NodeBehaviour, NodeSim};

use crate::{T, World, control};

async fn scrape(addr: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).await.expect("read");
    out
}

#[tokio::test]
async fn the_metrics_endpoint_reports_the_forging_state() {
    let w = World::new();
    let mut o = w.opts("m");
    o.metrics_port = Some(0);
    let node = NodeSim::start(o).await.expect("start");
    let h = node.handle();
    let addr = h.metrics_addr().expect("metrics");
    assert!(
        scrape(addr)
            .await
            .contains("\ncardano_node_metrics_forging_enabled 0\n")
    );
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    let body = scrape(addr).await;
    assert!(body.starts_with("HTTP/1.1 200 OK\r\n"), "{body}");
    assert!(
        body.contains("\ncardano_node_metrics_forging_enabled 1\n"),
        "{body}"
    );
    node.stop().await.expect("stop");
}

fn served_tip(body: &str) -> u64 {
    body.lines()
        .find_map(|l| l.strip_prefix("cardano_node_metrics_slotNum_int "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no tip in {body}"))
}

#[tokio::test]
async fn the_tip_follows_mainnet_slots_and_can_lag_freeze_and_resume() {
    let w = World::new();
    let mut o = w.opts("tip");
    o.metrics_port = Some(0);
    let path = w.dir.path().join("tip.control");
    let b = NodeBehaviour {
        control: Some(path.clone()),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o, b).await.expect("start");
    let addr = node.handle().metrics_addr().expect("metrics");
    let wall = || forge_core::cardano::KesSchedule::mainnet().slot_at(jiff::Timestamp::now());
    let tip = served_tip(&scrape(addr).await);
    assert!(
        wall() - tip < 25,
        "in sync within a block: tip {tip}, wall {}",
        wall()
    );
    assert_eq!(tip % 20, 0, "block-granular");
    assert_eq!(control(&path, "lag 600000").await, "ok");
    let lag = wall() - served_tip(&scrape(addr).await);
    assert!((600..625).contains(&lag), "ten minutes behind: {lag}");
    assert_eq!(control(&path, "freeze").await, "ok");
    let frozen = served_tip(&scrape(addr).await);
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        served_tip(&scrape(addr).await),
        frozen,
        "a frozen tip does not move"
    );
    assert_eq!(control(&path, "resume").await, "ok");
    assert!(wall() - served_tip(&scrape(addr).await) < 25);
    assert!(
        control(&path, "lag soon")
            .await
            .starts_with("error: lag takes milliseconds")
    );
    assert!(control(&path, "rewind").await.contains("lag MS, freeze, resume"));
    node.stop().await.expect("stop");
}
