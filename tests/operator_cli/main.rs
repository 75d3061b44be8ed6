//! The operator's command line against three real API servers (issue 16): one region each
//! (east, west, south), a `forge-manager run` sidecar and node simulator per region, cluster
//! management on, one kubeconfig with a context per region (as an operator has it). The
//! commands run as processes, `forge-manager status|failover|pause|resume` and
//! `kubectl forge status` through a `kubectl-forge` symlink on PATH with the real `kubectl`.
//!
//! Scenario, each state checked by `status` (verdict line and exit code) and by the node
//! timelines: east forges (0) -> `failover --to west` hands over and prints its time (0, west)
//! -> `pause` (3, no forger) -> `resume` (0, west) -> two forgers forced by cutting east from
//! west and overriding east `Enabled` (4) -> south's API server stopped (4 still: two forgers
//! outrank an unreadable region) -> east's override removed and links healed (5: south
//! unreadable).
//!
//! With `FORGE_OPERATOR_CAPTURE=FILE` the commands and their real output are appended to FILE
//! (the README's example comes from there).
//!
//! This file holds the two tests; the three regions with their sidecars, kubeconfig and plugin
//! link are in [`regions`], the commands run as processes (and `status --watch`) in [`commands`].

use std::{
    io::Write as _,
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use commands::{Watch, assert_status, forge_manager};
use regions::Regions;

mod commands;
mod regions;

const REGIONS: &[(&str, u16)] = &[("east", 10), ("west", 20), ("south", 30)];

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_follow_a_pool_across_three_real_api_servers() {
    let test = "operator_commands_follow_a_pool_across_three_real_api_servers";
    let Some(mut r) = Regions::start(test).await else {
        return;
    };
    let logs = || String::new();
    let east = r
        .wait_forger("east", Duration::from_secs(60))
        .await
        .unwrap_or_else(|| panic!("east never forged alone\n{}", r.logs()));
    let standby = if east == "east-0" { "east-1" } else { "east-0" };
    let one_east = format!("ONE FORGER: east ({east})");

    // One forger: east, exit 0, the same through kubectl.
    let s = r.status_until(0, Duration::from_secs(30)).await;
    assert_status(&s, 0, &one_east, "initial", || r.logs());
    assert!(s.stdout.contains("REGION") && s.stdout.contains("west") && s.stdout.contains("south"));
    // A row per pod under its region: east's forger holds the Lease, claims and forges by its own
    // /status; its replica stands by.
    let row = |out: &str, pod: &str| -> Vec<String> {
        out.lines()
            .find(|l| l.split_whitespace().nth(1) == Some(pod))
            .unwrap_or_else(|| panic!("no row for pod {pod}:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    let cells = row(&s.stdout, &east);
    assert_eq!(
        (cells[2].as_str(), cells[4].as_str(), cells[5].as_str()),
        ("holder", "yes", "YES"),
        "{}",
        s.stdout
    );
    assert_eq!(row(&s.stdout, standby)[2..5], ["-", "-", "no"], "{}", s.stdout);
    assert_eq!(row(&s.stdout, standby)[5], "no", "{}", s.stdout);
    assert_eq!(row(&s.stdout, "west-0")[5], "no", "{}", s.stdout);
    let k = r.kubectl_forge(&["status", "--context", "east,west,south"]);
    assert_status(&k, 0, &one_east, "kubectl forge status", logs);
    let k = r.kubectl_forge(&["status", "--all-contexts", "-o", "json"]);
    let json: serde_json::Value =
        serde_json::from_str(&k.stdout).unwrap_or_else(|e| panic!("{e}: {}", k.stdout));
    assert_eq!(json["verdict"]["verdict"], "one_forger");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(3));
    let pods = &json["rows"][0]["pods"];
    assert_eq!(pods.as_array().map(Vec::len), Some(2), "{pods}");
    for p in pods.as_array().into_iter().flatten() {
        let forger = p["name"] == east.as_str();
        assert_eq!(p["holdsLease"], forger, "{p}");
        assert_eq!(p["claims"], forger, "{p}");
        assert_eq!(p["observedForging"], forger, "{p}");
        assert_eq!(p["tickets"], serde_json::Value::Null, "{p}");
    }
    eprintln!("{test}: east's pods: {pods}");
    // How /status was reached: `--pod-status off` leaves every pod UNKNOWN, saying so.
    let off = r.forge(&["status", "--pod-status", "off"]);
    assert_eq!(off.code, 0, "{}", off.stdout);
    assert_eq!(row(&off.stdout, &east)[5], "UNKNOWN", "{}", off.stdout);
    assert!(
        off.stdout.contains("unknown: not read (--pod-status off)"),
        "{}",
        off.stdout
    );
    // Through the API server's pod proxy (the default's first try): this API server refuses to
    // proxy to a loopback pod IP, and the rows say so (the default then went to the pod IP).
    let proxy = r.forge(&["status", "--pod-status", "proxy"]);
    assert_eq!(proxy.code, 0, "{}", proxy.stdout);
    assert!(
        row(&proxy.stdout, &east)[5] == "UNKNOWN"
            && proxy
                .stdout
                .contains("unknown: /status not reached (API server proxy: 400 address not allowed)"),
        "{}",
        proxy.stdout
    );

    // Colour only on a terminal: under a pseudo-terminal (script(1)) the verdict is green,
    // through a pipe (NO_COLOR unset) it is plain.
    let plain = Command::new(exe())
        .args(["status", "--kubeconfig"])
        .arg(r.kubeconfig())
        .args(["--context", "east,west,south"])
        .env_remove("NO_COLOR")
        .output()
        .expect("runs");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains('\x1b'));
    let tty = Command::new("script")
        .args(["-qec"])
        .arg(format!(
            "{} status --kubeconfig {} --context east,west,south",
            exe().display(),
            r.kubeconfig().display()
        ))
        .arg("/dev/null")
        .env_remove("NO_COLOR")
        .output()
        .expect("script(1) runs");
    let tty_out = String::from_utf8_lossy(&tty.stdout);
    assert!(
        tty_out.starts_with(&format!("\x1b[1;32m{one_east}")),
        "exit {:?}: {tty_out:?}",
        tty.status.code()
    );
    let w = r.forge(&["status", "-o", "wide"]);
    assert!(
        w.stdout.contains("CONTEXT") && w.stdout.contains("LEADER-CR"),
        "{}",
        w.stdout
    );

    // A write without --yes on a non-terminal refuses and writes nothing; --dry-run writes nothing.
    let refused = r.forge(&["failover", "--to", "west", "--for", "10m", "--reason", "test"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    let dry = r.forge(&[
        "failover",
        "--to",
        "west",
        "--for",
        "10m",
        "--reason",
        "test",
        "--dry-run",
    ]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout.contains("forcePriority 1") && dry.stdout.contains("dry run"),
        "{}",
        dry.stdout
    );
    // On a terminal it asks; answering no writes nothing.
    let asked = Command::new("script")
        .arg("-qec")
        .arg(format!(
            "{} failover --to west --for 10m --reason test --kubeconfig {} --context east,west,south",
            exe().display(),
            r.kubeconfig().display()
        ))
        .arg("/dev/null")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(b"n\n")?;
            c.wait_with_output()
        })
        .expect("script(1) runs");
    let asked = String::from_utf8_lossy(&asked.stdout);
    assert!(
        asked.contains("will change 1 CardanoForgeCluster(s)")
            && asked.contains("spec.override after: enabled, forcePriority 1")
            && asked.contains("apply? [y/N]")
            && asked.contains("nothing written"),
        "{asked}"
    );
    let untouched = r.cfcs("west").await.get("pool-west").await.expect("get");
    assert_eq!(untouched.spec.override_, None, "a dry run or a no wrote");

    // Failover to west: written, followed, timed; no overlap on the nodes.
    let f = r.forge(&[
        "failover",
        "--to",
        "west",
        "--for",
        "10m",
        "--reason",
        "kernel upgrade in east",
        "--yes",
        "--timeout",
        "60s",
    ]);
    let done = f
        .stdout
        .lines()
        .find(|l| l.starts_with("failover to west: done in"))
        .unwrap_or_else(|| {
            panic!(
                "no handover time (exit {}):\n{}{}\n{}",
                f.code,
                f.stdout,
                f.stderr,
                r.logs()
            )
        });
    eprintln!("{test}: {done}");
    assert_eq!(f.code, 0);
    assert!(r.wait_forging(&["west-0"], Duration::from_secs(10)).await);
    r.verdict().assert_no_overlap("failover");
    let written = r.cfcs("west").await.get("pool-west").await.expect("get");
    let o = written.spec.override_.expect("override written");
    assert_eq!((o.enabled, o.force_priority), (true, Some(1)));
    assert!(o.expires_at.is_some_and(|e| e.parse::<jiff::Timestamp>().is_ok()));
    let s = r.forge(&["status"]);
    assert_status(&s, 0, "ONE FORGER: west (west-0)", "after failover", || r.logs());
    assert!(
        s.stdout.contains("prio 1 9m"),
        "override with its time left:\n{}",
        s.stdout
    );

    // Maintenance of west: east takes over; off: west again (its failover priority kept).
    let m = r.forge(&[
        "maintenance",
        "west",
        "on",
        "--for",
        "10m",
        "--reason",
        "node upgrade",
        "--yes",
        "--timeout",
        "60s",
    ]);
    assert_eq!(m.code, 0, "{}{}\n{}", m.stdout, m.stderr, r.logs());
    let east = r
        .wait_forger("east", Duration::from_secs(10))
        .await
        .unwrap_or_else(|| panic!("east did not take over\n{}", r.logs()));
    let s = r.status_until(0, Duration::from_secs(30)).await;
    assert_status(
        &s,
        0,
        &format!("ONE FORGER: east ({east})"),
        "west in maintenance",
        || r.logs(),
    );
    let m = r.forge(&["maintenance", "west", "off", "--yes", "--timeout", "60s"]);
    assert_eq!(m.code, 0, "{}{}\n{}", m.stdout, m.stderr, r.logs());
    assert!(
        r.wait_forging(&["west-0"], Duration::from_secs(30)).await,
        "{}",
        r.logs()
    );
    r.verdict().assert_no_overlap("maintenance");

    // Pause: no forger, exit 3, then resume: west again.
    let p = r.forge(&[
        "pause",
        "--for",
        "10m",
        "--reason",
        "KES rotation",
        "--yes",
        "--timeout",
        "60s",
    ]);
    assert_eq!(p.code, 0, "{}{}\n{}", p.stdout, p.stderr, r.logs());
    assert!(r.wait_forging(&[], Duration::from_secs(10)).await);
    let s = r.status_until(3, Duration::from_secs(30)).await;
    assert_status(&s, 3, "NO FORGER since", "paused", || r.logs());
    let res = r.forge(&["resume", "--yes", "--timeout", "60s"]);
    assert_eq!(res.code, 0, "{}{}\n{}", res.stdout, res.stderr, r.logs());
    assert!(
        r.wait_forging(&["west-0"], Duration::from_secs(30)).await,
        "{}",
        r.logs()
    );
    let s = r.status_until(0, Duration::from_secs(30)).await;
    assert_status(&s, 0, "ONE FORGER: west (west-0)", "resumed", || r.logs());
    r.verdict().assert_no_overlap("pause/resume");

    // Two forgers, forced: east cut off from west (both ways) and overridden Enabled, which
    // forges regardless of unreachable peers (the operator's responsibility).
    for (a, b) in [("east", "west"), ("west", "east")] {
        let link = r.links[&(a.to_string(), b.to_string())].handle();
        link.refuse();
        link.reset();
    }
    for (a, b) in [("east", "west"), ("west", "east")] {
        assert!(
            r.sees_unreachable(a, b, Duration::from_secs(30)).await,
            "{a} never saw {b} unreachable\n{}",
            r.logs()
        );
    }
    // `status --watch` runs through the change and prints the new state, until stopped.
    let mut watch = Watch::start(&r, "300ms");
    assert!(
        watch
            .wait_line(Duration::from_secs(20), |l| l
                .starts_with("ONE FORGER: west (west-0)"))
            .is_some(),
        "watch: {:?}",
        watch.seen
    );
    r.patch_spec(
        "east",
        serde_json::json!({"override": {"enabled": true, "forceState": "Enabled", "reason": "test: west presumed down"}}),
    )
    .await;
    let east = r.forger_in("east");
    let mut both = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        both = r.forging_now();
        both.sort();
        if both.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        both.len() == 2 && both[1] == "west-0" && both[0].starts_with("east-"),
        "the forced two-forger state did not happen: {both:?} (east {east:?})\n{}",
        r.logs()
    );
    let east = both[0].clone();
    let two = format!("TWO FORGERS: east ({east}) and west (west-0)");
    let line = watch.wait_line(Duration::from_secs(30), |l| l.starts_with("TWO FORGERS"));
    assert!(
        line.as_deref().is_some_and(|l| l.starts_with(&two)),
        "watch: {:?}",
        watch.seen
    );
    assert!(watch.stop(), "status --watch exited by itself: {:?}", watch.seen);
    eprintln!(
        "{test}: status --watch printed {} lines, the two forgers {:.1} s after the override",
        watch.seen.len(),
        started.elapsed().as_secs_f64()
    );
    drop(watch);
    let s = r.status_until(4, Duration::from_secs(30)).await;
    assert_status(&s, 4, &two, "two forgers", || r.logs());
    // Both forgers by their own sidecars' report, each holding its region's Lease.
    assert_eq!(row(&s.stdout, &east)[2], "holder", "{}", s.stdout);
    assert!(row(&s.stdout, &east).contains(&"YES".to_string()), "{}", s.stdout);
    assert!(
        row(&s.stdout, "west-0").contains(&"YES".to_string()),
        "{}",
        s.stdout
    );
    let k = r.kubectl_forge(&["status", "--all-contexts"]);
    assert_eq!(k.code, 4, "{}{}", k.stdout, k.stderr);

    // South's API server gone while two forge: still 4 (the worse news wins).
    r.world("south").apiserver.stop();
    let s = r.forge(&["status"]);
    assert_status(&s, 4, "TWO FORGERS", "two forgers, south unreadable", || r.logs());
    assert!(s.stdout.contains("unreachable"), "{}", s.stdout);

    // Heal east/west and end east's override: one forger left, but south unreadable: 5.
    r.patch_spec("east", serde_json::json!({"override": null})).await;
    for (a, b) in [("east", "west"), ("west", "east")] {
        r.links[&(a.to_string(), b.to_string())].handle().pass();
    }
    let s = r.status_until(5, Duration::from_secs(30)).await;
    assert_status(&s, 5, "UNKNOWN: cannot read south", "south unreadable", || {
        r.logs()
    });
    assert!(
        s.stdout.contains("south") && s.stdout.contains("unreachable"),
        "{}",
        s.stdout
    );
    r.stop();
}

#[test]
fn a_bad_context_or_duration_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kc");
    std::fs::write(
        &kc,
        r#"{"apiVersion":"v1","kind":"Config","clusters":[{"name":"c","cluster":{"server":"https://127.0.0.1:1"}}],
        "users":[{"name":"u","user":{}}],"contexts":[{"name":"one","context":{"cluster":"c","user":"u"}}],"current-context":"one"}"#,
    )
    .expect("write");
    let kc = kc.to_str().expect("a UTF-8 path");
    let r = forge_manager(&["status", "--context", "nope", "--kubeconfig", kc]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--context nope") && r.stderr.contains("one"),
        "{}",
        r.stderr
    );
    let r = forge_manager(&["failover", "--to", "x", "--for", "soon", "--reason", "r"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--for") && r.stderr.contains("soon"),
        "{}",
        r.stderr
    );
    // Nothing listens on port 1: the one context is unreadable, exit 5.
    let r = forge_manager(&["status", "--request-timeout", "2s", "--kubeconfig", kc]);
    assert_eq!(r.code, 5, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("UNKNOWN: cannot read one"), "{}", r.stdout);
}
