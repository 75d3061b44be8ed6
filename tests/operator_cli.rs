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

use std::{
    collections::BTreeMap,
    io::Write as _,
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

use forge_core::crd::CardanoForgeCluster;
use forge_sim::{
    proxy::FaultProxy,
    timeline::{Verdict, judge},
    world::{World, WorldOptions, start_regions},
};
use kube::{
    Api,
    api::{Patch, PatchParams},
};

const REGIONS: &[(&str, u16)] = &[("east", 10), ("west", 20), ("south", 30)];

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_forge-manager"))
}

struct Regions {
    worlds: Vec<World>,
    links: BTreeMap<(String, String), FaultProxy>,
    dir: tempfile::TempDir,
}

impl Regions {
    async fn start(test: &str) -> Option<Regions> {
        if forge_sim::apiserver::skipped(test) {
            return None;
        }
        forge_sim::apiserver::apiserver_binary().unwrap_or_else(|e| panic!("{test}: {e}"));
        let (worlds, links) = start_regions(REGIONS, |_| WorldOptions::fast(exe(), 1), |_| Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{test}: {e}"));
        let dir = tempfile::Builder::new()
            .prefix("forge-opcli-")
            .tempdir()
            .expect("tempdir");
        let r = Regions { worlds, links, dir };
        r.write_kubeconfig();
        r.link_plugin();
        Some(r)
    }

    fn index(region: &str) -> usize {
        REGIONS.iter().position(|(r, _)| *r == region).expect("region")
    }

    fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// One kubeconfig, one context per region (named after it), admin users, namespace default.
    fn write_kubeconfig(&self) {
        let mut clusters = Vec::new();
        let mut users = Vec::new();
        let mut contexts = Vec::new();
        for (i, (region, _)) in REGIONS.iter().enumerate() {
            let s = &self.worlds[i].apiserver;
            // A copy of the CA: a stopped server removes its directory, and the test wants
            // "connection refused" from it then, as an operator would see.
            let ca = self.dir.path().join(format!("{region}-ca.crt"));
            std::fs::copy(s.ca_file(), &ca).expect("copy CA");
            clusters.push(serde_json::json!({"name": region, "cluster": {
                "server": s.url(), "certificate-authority": ca}}));
            users.push(serde_json::json!({"name": format!("admin-{region}"), "user": {
                "token": s.token("admin").expect("admin token")}}));
            contexts.push(serde_json::json!({"name": region, "context": {
                "cluster": region, "user": format!("admin-{region}"), "namespace": "default"}}));
        }
        let kc = serde_json::json!({"apiVersion": "v1", "kind": "Config", "clusters": clusters,
            "users": users, "contexts": contexts, "current-context": "east"});
        let path = self.kubeconfig();
        std::fs::write(&path, kc.to_string()).expect("kubeconfig");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    /// `forge-manager install bin --kubectl-plugin`, the documented install step:
    /// `bin/forge-manager` and `bin/kubectl-forge -> forge-manager`.
    fn link_plugin(&self) {
        let bin = self.dir.path().join("bin");
        let out = Command::new(exe())
            .arg("install")
            .arg(&bin)
            .arg("--kubectl-plugin")
            .output()
            .expect("install runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let link = std::fs::read_link(bin.join("kubectl-forge")).expect("a symlink");
        assert_eq!(link, PathBuf::from("forge-manager"));
        let listed = Command::new("kubectl")
            .args(["plugin", "list"])
            .env("PATH", self.path_with_plugin())
            .output()
            .expect("kubectl runs");
        let listed = String::from_utf8_lossy(&listed.stdout);
        assert!(listed.contains("kubectl-forge"), "kubectl plugin list: {listed}");
    }

    fn path_with_plugin(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    fn events(&self) -> Vec<forge_sim::timeline::TimelineEvent> {
        self.worlds.iter().flat_map(|w| w.events()).collect()
    }

    fn verdict(&self) -> Verdict {
        judge(&self.events())
    }

    fn forging_now(&self) -> Vec<String> {
        self.worlds.iter().flat_map(|w| w.forging_now()).collect()
    }

    async fn wait_forging(&self, want: &[&str], within: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < within {
            let mut now = self.forging_now();
            now.sort();
            if now == want {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }

    async fn cfcs(&self, region: &str) -> Api<CardanoForgeCluster> {
        let c = forge_sim::apiserver::client_from_kubeconfig(
            self.worlds[Regions::index(region)].apiserver.admin_kubeconfig(),
            Some(Duration::from_secs(5)),
        )
        .await
        .expect("admin client");
        Api::namespaced(c, "default")
    }

    async fn patch_spec(&self, region: &str, spec: serde_json::Value) {
        self.cfcs(region)
            .await
            .patch(
                &format!("pool-{region}"),
                &PatchParams::default(),
                &Patch::Merge(serde_json::json!({ "spec": spec })),
            )
            .await
            .unwrap_or_else(|e| panic!("patching pool-{region}: {e}"));
    }

    /// Waits until `observer`'s sidecar reports `peer` unreachable (its metric).
    async fn sees_unreachable(&self, observer: &str, peer: &str, within: Duration) -> bool {
        let w = &self.worlds[Regions::index(observer)];
        let started = Instant::now();
        while started.elapsed() < within {
            let text = w.metrics(0).await.unwrap_or_default();
            if text.lines().any(|l| {
                l.starts_with("cardano_cluster_peer_reachable{")
                    && l.contains(&format!("pool-{peer}"))
                    && l.ends_with(" 0")
            }) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for w in &self.worlds {
            for (i, p) in w.pods.iter().enumerate() {
                let log = w.manager_log(i);
                let tail: Vec<&str> = log.lines().rev().take(12).collect();
                out.push_str(&format!("--- {} ---\n", p.name));
                for l in tail.into_iter().rev() {
                    out.push_str(l);
                    out.push('\n');
                }
            }
        }
        out
    }

    fn stop(&mut self) {
        for w in &mut self.worlds {
            w.stop();
        }
    }
}

/// A finished command: exit code and output.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

fn ran(out: Output) -> Ran {
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Appends `$ shown` and the output to the capture file, when asked for.
fn capture(shown: &str, r: &Ran) {
    let Ok(path) = std::env::var("FORGE_OPERATOR_CAPTURE") else {
        return;
    };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("capture file");
    let _ = writeln!(f, "$ {shown}\n{}{}(exit {})\n", r.stdout, r.stderr, r.code);
}

impl Regions {
    /// `forge-manager ARGS --kubeconfig K --context east,west,south`, stdin closed.
    fn forge(&self, args: &[&str]) -> Ran {
        let out = Command::new(exe())
            .args(args)
            .arg("--kubeconfig")
            .arg(self.kubeconfig())
            .args(["--context", "east,west,south"])
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("forge-manager runs");
        let r = ran(out);
        capture(
            &format!("forge-manager {} --context east,west,south", shell_words(args)),
            &r,
        );
        r
    }

    /// `kubectl forge ARGS` with the symlink on PATH and `KUBECONFIG` set, as an operator runs it.
    fn kubectl_forge(&self, args: &[&str]) -> Ran {
        let out = Command::new("kubectl")
            .arg("forge")
            .args(args)
            .env("PATH", self.path_with_plugin())
            .env("KUBECONFIG", self.kubeconfig())
            .env("NO_COLOR", "1")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("kubectl runs (installed by .ci/run)");
        let r = ran(out);
        capture(&format!("kubectl forge {}", shell_words(args)), &r);
        r
    }

    /// Runs `status` until its exit code is `code` (statuses follow the nodes within a few
    /// renewals), bounded; returns the last run.
    async fn status_until(&self, code: i32, within: Duration) -> Ran {
        let started = Instant::now();
        loop {
            let r = self.forge(&["status"]);
            if r.code == code || started.elapsed() >= within {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Arguments as a shell would need them (quoted when they hold a space).
fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|a| {
            if a.contains(' ') {
                format!("{a:?}")
            } else {
                (*a).to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn assert_status(r: &Ran, code: i32, verdict: &str, ctx: &str, logs: impl Fn() -> String) {
    assert!(
        r.code == code && first_line(&r.stdout).starts_with(verdict),
        "{ctx}: want exit {code} and {verdict:?}, got exit {}\n{}{}\n{}",
        r.code,
        r.stdout,
        r.stderr,
        logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_follow_a_pool_across_three_real_api_servers() {
    let test = "operator_commands_follow_a_pool_across_three_real_api_servers";
    let Some(mut r) = Regions::start(test).await else {
        return;
    };
    let logs = || String::new();
    assert!(
        r.wait_forging(&["east-0"], Duration::from_secs(60)).await,
        "east never forged alone\n{}",
        r.logs()
    );

    // One forger: east, exit 0, the same through kubectl.
    let s = r.status_until(0, Duration::from_secs(30)).await;
    assert_status(&s, 0, "ONE FORGER: east (east-0)", "initial", || r.logs());
    assert!(s.stdout.contains("REGION") && s.stdout.contains("west") && s.stdout.contains("south"));
    let k = r.kubectl_forge(&["status", "--context", "east,west,south"]);
    assert_status(&k, 0, "ONE FORGER: east (east-0)", "kubectl forge status", logs);
    let k = r.kubectl_forge(&["status", "--all-contexts", "-o", "json"]);
    let json: serde_json::Value =
        serde_json::from_str(&k.stdout).unwrap_or_else(|e| panic!("{e}: {}", k.stdout));
    assert_eq!(json["verdict"]["verdict"], "one_forger");
    assert_eq!(json["rows"].as_array().map(Vec::len), Some(3));
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
    let untouched = r.cfcs("west").await.get("pool-west").await.expect("get");
    assert_eq!(untouched.spec.override_, None, "a dry run wrote");

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
    assert_eq!(
        r.verdict().overlap_ms,
        0.0,
        "failover overlapped: {:?}",
        r.verdict()
    );
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
    assert!(
        r.wait_forging(&["east-0"], Duration::from_secs(10)).await,
        "{}",
        r.logs()
    );
    let s = r.status_until(0, Duration::from_secs(30)).await;
    assert_status(&s, 0, "ONE FORGER: east (east-0)", "west in maintenance", || {
        r.logs()
    });
    let m = r.forge(&["maintenance", "west", "off", "--yes", "--timeout", "60s"]);
    assert_eq!(m.code, 0, "{}{}\n{}", m.stdout, m.stderr, r.logs());
    assert!(
        r.wait_forging(&["west-0"], Duration::from_secs(30)).await,
        "{}",
        r.logs()
    );
    assert_eq!(
        r.verdict().overlap_ms,
        0.0,
        "maintenance overlapped: {:?}",
        r.verdict()
    );

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
    assert_eq!(
        r.verdict().overlap_ms,
        0.0,
        "pause/resume overlapped: {:?}",
        r.verdict()
    );

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
    r.patch_spec(
        "east",
        serde_json::json!({"override": {"enabled": true, "forceState": "Enabled", "reason": "test: west presumed down"}}),
    )
    .await;
    assert!(
        r.wait_forging(&["east-0", "west-0"], Duration::from_secs(30))
            .await,
        "the forced two-forger state did not happen\n{}",
        r.logs()
    );
    let s = r.status_until(4, Duration::from_secs(30)).await;
    assert_status(&s, 4, "TWO FORGERS: east and west", "two forgers", || r.logs());
    let k = r.kubectl_forge(&["status", "--all-contexts"]);
    assert_eq!(k.code, 4, "{}{}", k.stdout, k.stderr);

    // South's API server gone while two forge: still 4 (the worse news wins).
    r.worlds[Regions::index("south")].apiserver.stop();
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
    let out = Command::new(exe())
        .args(["status", "--context", "nope", "--kubeconfig"])
        .arg(&kc)
        .output()
        .expect("runs");
    let r = ran(out);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--context nope") && r.stderr.contains("one"),
        "{}",
        r.stderr
    );
    let out = Command::new(exe())
        .args(["failover", "--to", "x", "--for", "soon", "--reason", "r"])
        .output()
        .expect("runs");
    let r = ran(out);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--for") && r.stderr.contains("soon"),
        "{}",
        r.stderr
    );
    // Nothing listens on port 1: the one context is unreadable, exit 5.
    let out = Command::new(exe())
        .args(["status", "--request-timeout", "2s", "--kubeconfig"])
        .arg(&kc)
        .output()
        .expect("runs");
    let r = ran(out);
    assert_eq!(r.code, 5, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.starts_with("UNKNOWN: cannot read one"), "{}", r.stdout);
}
