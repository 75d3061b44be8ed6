//! What makes the simulator as unkind as a real node: SIGHUP before the handler is installed
//! kills it, the replay starts only after that, reloads take a drawn latency and apply in
//! order, it forges on through its stop grace after SIGTERM (or with its socket closed early),
//! and a stalled node handles nothing until the stall ends.
use std::time::Duration;

use forge_sim::node::{LOG_ENABLED, Latency, NodeBehaviour, NodeError, NodeSim};
use forge_sim::timeline::EventKind::*;

use crate::{T, World, control, ms_between, wait_until};

#[tokio::test]
async fn a_sighup_before_the_handler_is_installed_kills_the_node_silently() {
    let w = World::new();
    let o = w.opts("early");
    let b = NodeBehaviour {
        handler_delay: Duration::from_secs(30),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    node.handle().sighup();
    let err = tokio::time::timeout(T, node.wait())
        .await
        .expect("the node died at once")
        .expect_err("killed");
    assert!(matches!(err, NodeError::KilledBySighup), "{err}");
    // A killed process writes nothing more, and it had not bound its socket yet (that comes
    // only once the handler is installed).
    assert_eq!(w.events("early"), vec![Start]);
    assert!(!o.socket.exists());
}

#[tokio::test]
async fn the_replay_begins_once_the_handler_is_installed() {
    let w = World::new();
    let mut o = w.opts("late");
    o.replay = Duration::from_millis(300);
    let b = NodeBehaviour {
        handler_delay: Duration::from_millis(200),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o, b).await.expect("start");
    let h = node.handle();
    // A SIGHUP once the handler is in, and until the replay ends, is not effective.
    wait_until("handler_installed", || {
        w.events("late").contains(&HandlerInstalled)
    })
    .await;
    h.sighup();
    wait_until("not_effective", || w.events("late").contains(&NotEffective)).await;
    let installed = w.at("late", HandlerInstalled, 0);
    let start = w.at("late", Start, 0);
    assert!(ms_between(start, installed) >= 200.0);
    // The replay ends 300 ms after the handler came in; then a SIGHUP works.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let mut on = false;
    for _ in 0..20 {
        h.sighup();
        if h.wait_forging(true, Duration::from_millis(250)).await {
            on = true;
            break;
        }
    }
    assert!(on, "forging after the replay: {:?}", w.events("late"));
    node.stop().await.expect("stop");
    let lost = w.at("late", NotEffective, 0);
    assert!(ms_between(installed, w.at("late", ForgingOn, 0)) >= 300.0);
    assert!(lost >= installed);
}

#[tokio::test]
async fn reloads_take_their_drawn_latency_and_take_effect_one_after_another_in_order() {
    let w = World::new();
    let b = NodeBehaviour {
        reload: "200..400".parse().expect("range"),
        seed: 7,
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(w.opts("slow"), b.clone())
        .await
        .expect("start");
    let h = node.handle();
    h.sighup(); // files present: on
    wait_until("the first sighup", || w.events("slow").contains(&Sighup)).await;
    w.remove_creds();
    h.sighup(); // during the first reload: queued, then off
    assert!(h.wait_forging(true, T).await);
    // The log line comes before the effect.
    assert!(h.log().iter().any(|l| l.contains(LOG_ENABLED)));
    wait_until("forging_off", || w.events("slow").contains(&ForgingOff)).await;
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("slow"),
        vec![Start, Sighup, Sighup, ForgingOn, ForgingOff, Exit]
    );
    let (hup, on, off) = (
        w.at("slow", Sighup, 0),
        w.at("slow", ForgingOn, 0),
        w.at("slow", ForgingOff, 0),
    );
    let first = ms_between(hup, on);
    let second = ms_between(on, off);
    // Lower bounds are exact; upper bounds leave room for a loaded machine.
    assert!((200.0..1400.0).contains(&first), "first reload took {first} ms");
    assert!(
        (200.0..1400.0).contains(&second),
        "the second reload began only after the first took effect, then took {second} ms"
    );
    let lines = w.lines("slow");
    let details: Vec<&str> = lines
        .iter()
        .filter(|e| matches!(e.event, ForgingOn | ForgingOff))
        .map(|e| e.detail.as_str())
        .collect();
    assert!(details[0].contains("reload took"), "{details:?}");
    assert!(lines[2].detail.contains("queued behind 1"), "{:?}", lines[2]);

    // The same seed draws the same latencies.
    let w2 = World::new();
    let node = NodeSim::start_with(w2.opts("slow"), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    wait_until("the first sighup", || w2.events("slow").contains(&Sighup)).await;
    w2.remove_creds();
    h.sighup();
    wait_until("forging_off", || w2.events("slow").contains(&ForgingOff)).await;
    node.stop().await.expect("stop");
    let details2: Vec<String> = w2
        .lines("slow")
        .iter()
        .filter(|e| matches!(e.event, ForgingOn | ForgingOff))
        .map(|e| e.detail.replace(&w2.dir.path().display().to_string(), "DIR"))
        .collect();
    let details: Vec<String> = details
        .iter()
        .map(|d| d.replace(&w.dir.path().display().to_string(), "DIR"))
        .collect();
    assert_eq!(details, details2);
}

#[test]
fn a_latency_range_parses_and_draws_within_it_reproducibly() {
    let l: Latency = "100..300".parse().expect("range");
    assert_eq!(l, Latency::range_ms(100, 300));
    assert_eq!(
        "250".parse::<Latency>(),
        Ok(Latency::fixed(Duration::from_millis(250)))
    );
    assert!("300..100".parse::<Latency>().is_err());
    let err = "fast".parse::<Latency>().expect_err("not a number");
    assert!(err.contains("milliseconds"), "{err}");
    let draws = |seed| {
        let mut rng = forge_sim::node::SplitMix64::new(seed);
        (0..50).map(|_| l.draw(&mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draws(1), draws(1));
    assert_ne!(draws(1), draws(2));
    assert!(
        draws(3)
            .iter()
            .all(|d| (Duration::from_millis(100)..=Duration::from_millis(300)).contains(d))
    );
    // Spread over the range, not stuck at one end.
    let d = draws(4);
    assert!(d.iter().any(|d| *d < Duration::from_millis(150)));
    assert!(d.iter().any(|d| *d > Duration::from_millis(250)));
}

#[tokio::test]
async fn the_node_forges_on_through_its_stop_grace_after_sigterm() {
    let w = World::new();
    let o = w.opts("grace");
    let b = NodeBehaviour {
        stop_grace: Duration::from_millis(600),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    h.terminate();
    wait_until("sigterm", || w.events("grace").contains(&Sigterm)).await;
    // A stop reload during the grace changes nothing.
    w.remove_creds();
    h.sighup();
    // While forging, the socket still accepts (it closes only at the exit).
    let conn = tokio::net::UnixStream::connect(&o.socket).await;
    if conn.is_err() {
        assert!(
            w.events("grace").contains(&ForgingOff),
            "the socket went away while the node still forged"
        );
    }
    node.wait().await.expect("exit");
    assert_eq!(
        w.events("grace"),
        vec![Start, Sighup, ForgingOn, Sigterm, Sighup, ForgingOff, Exit]
    );
    let lines = w.lines("grace");
    assert!(lines[4].detail.contains("ignored"), "{:?}", lines[4]);
    assert_eq!(lines[5].detail, "shutdown");
    let grace = ms_between(w.at("grace", Sigterm, 0), w.at("grace", ForgingOff, 0));
    assert!(
        (600.0..2000.0).contains(&grace),
        "forged {grace} ms after SIGTERM"
    );
    assert!(!o.socket.exists());
}

#[tokio::test]
async fn with_an_early_socket_close_the_node_forges_with_its_socket_gone() {
    let w = World::new();
    let o = w.opts("early-close");
    let b = NodeBehaviour {
        stop_grace: Duration::from_millis(500),
        close_socket_early: true,
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    let held = tokio::net::UnixStream::connect(&o.socket).await.expect("connect");
    h.terminate();
    wait_until("socket_closed", || {
        w.events("early-close").contains(&SocketClosed)
    })
    .await;
    // From the close on, nobody can connect, although the node forges on.
    assert!(tokio::net::UnixStream::connect(&o.socket).await.is_err());
    assert!(!o.socket.exists());
    // A held connection is closed too (EOF).
    let mut held = held;
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(T, tokio::io::AsyncReadExt::read(&mut held, &mut buf))
        .await
        .expect("closed promptly");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    node.wait().await.expect("exit");
    assert_eq!(
        w.events("early-close"),
        vec![Start, Sighup, ForgingOn, Sigterm, SocketClosed, ForgingOff, Exit]
    );
    let gone_ms = ms_between(
        w.at("early-close", SocketClosed, 0),
        w.at("early-close", ForgingOff, 0),
    );
    assert!(gone_ms >= 500.0, "forged {gone_ms} ms with the socket gone");
}

#[tokio::test]
async fn a_stalled_node_handles_no_reload_and_accepts_no_connection_until_the_stall_ends() {
    let w = World::new();
    let o = w.opts("hung");
    let ctl = w.dir.path().join("hung.control");
    let b = NodeBehaviour {
        socket_backlog: Some(1),
        control: Some(ctl.clone()),
        ..NodeBehaviour::default()
    };
    let node = NodeSim::start_with(o.clone(), b).await.expect("start");
    let h = node.handle();
    h.sighup();
    assert!(h.wait_forging(true, T).await);
    assert!(control(&ctl, "stall soon").await.starts_with("error:"));
    assert!(control(&ctl, "reboot").await.starts_with("error:"));
    assert_eq!(control(&ctl, "stall 1500").await, "ok");
    wait_until("stall", || w.events("hung").contains(&Stall)).await;
    w.remove_creds();
    h.sighup();
    // The backlog (1) fills: connections wait unanswered, then new ones are refused.
    let mut pending = Vec::new();
    let mut refused = None;
    for _ in 0..8 {
        match tokio::net::UnixStream::connect(&o.socket).await {
            Ok(c) => pending.push(c),
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a hung node's full backlog refuses connections");
    if !w.events("hung").contains(&StallEnd) {
        assert_eq!(refused.kind(), std::io::ErrorKind::WouldBlock, "{refused}");
        assert!(h.forging(), "a hung node forges on");
    }
    assert!(
        h.wait_forging(false, T).await,
        "the reload is handled after the stall"
    );
    // Responsive again: it accepts.
    drop(pending);
    let mut accepted = false;
    for _ in 0..50 {
        if tokio::net::UnixStream::connect(&o.socket).await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(accepted, "connections accepted again after the stall");
    node.stop().await.expect("stop");
    assert_eq!(
        w.events("hung"),
        vec![
            Start, Sighup, ForgingOn, Stall, StallEnd, Sighup, ForgingOff, Exit
        ]
    );
    let stalled = ms_between(w.at("hung", Stall, 0), w.at("hung", StallEnd, 0));
    assert!((1500.0..3000.0).contains(&stalled), "stalled {stalled} ms");
    assert!(w.at("hung", ForgingOff, 0) >= w.at("hung", StallEnd, 0));
}
