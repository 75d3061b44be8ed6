//! `forge-manager guard` (the node guard, docs/guard.md) and `forge-manager guard-ctl`
//! (a line client for its socket: operators and tests). The guard itself lives in forge-guard.

use std::{
    ffi::OsString,
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::PathBuf,
    process::ExitCode,
    time::Duration,
};

use anyhow::Context as _;

/// Where the sidecar looks for the guard by default (`GUARD_SOCKET`).
const DEFAULT_SOCKET: &str = forge_core::config::keys::GUARD_SOCKET.default;

/// `forge-manager guard [--socket PATH] [--targets KES,VRF,OPCERT] [--allow-producing-start]
/// [--kill-after-ms N] [--unpermitted-grace-ms N] [--reload-room-ms N] -- CMD ARGS...`
#[derive(Debug, clap::Args)]
pub struct GuardArgs {
    /// The Unix socket the sidecar grants the permit over (shared `/ipc` volume).
    #[arg(long, env = "GUARD_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// The target credential files the node reads, removed when the permit lapses
    /// (default: `TARGET_KES_KEY`, `TARGET_VRF_KEY`, `TARGET_OP_CERT`).
    #[arg(long, value_delimiter = ',')]
    targets: Vec<PathBuf>,
    /// Start the node even if its command sets credential flags (`--shelley-kes-key` etc.)
    /// without `--start-as-non-producing-node`. Such a node forges from its start, without a
    /// permit: refused by default (exit code 2).
    #[arg(long, env = "GUARD_ALLOW_PRODUCING_START")]
    allow_producing_start: bool,
    /// The node's socket: the node is ready for SIGHUP once it listens there, or after its
    /// first output line (default: the node command's `--socket-path`).
    #[arg(long)]
    node_socket: Option<PathBuf>,
    /// When a fence cannot remove any credential file, the node is terminated: SIGTERM, then
    /// SIGKILL after this many milliseconds.
    #[arg(long, env = "GUARD_KILL_AFTER_MS", default_value_t = 3000)]
    kill_after_ms: u64,
    /// Credential files left present without a permit while the node's consensus runs are
    /// removed (and the node reloaded) after this many milliseconds.
    #[arg(long, env = "GUARD_UNPERMITTED_GRACE_MS", default_value_t = 10_000)]
    unpermitted_grace_ms: u64,
    /// The longest a reload may take in the node: give it the sidecar's `STOP_GRACE` (its
    /// default, 2 s, is this default), capped like the sidecar's reload room at
    /// `RENEW_DEADLINE - RETRY_PERIOD`. A reload that would enable forging (start, rotation,
    /// re-assert: a permit held, every credential file present) is refused with less than this
    /// left of the permit, and a fence that follows one by less than this reloads the node once
    /// more when it has had this long. 0 disables both.
    #[arg(long, env = "GUARD_RELOAD_ROOM_MS", default_value_t = 2000)]
    reload_room_ms: u64,
    /// The node's command line (cardano-node run ...).
    #[arg(last = true, required = true)]
    command: Vec<OsString>,
}

/// Runs the guard (`forge-manager guard`): it owns the process and its signals until the node exits.
pub fn run(args: GuardArgs) -> anyhow::Result<ExitCode> {
    let targets = if args.targets.is_empty() {
        ["TARGET_KES_KEY", "TARGET_VRF_KEY", "TARGET_OP_CERT"]
            .iter()
            .filter_map(|k| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from))
            .collect()
    } else {
        args.targets
    };
    let opts = forge_guard::GuardOptions {
        socket: args.socket,
        targets,
        command: args.command,
        allow_producing_start: args.allow_producing_start,
        node_socket: args.node_socket,
        kill_after: Duration::from_millis(args.kill_after_ms),
        unpermitted_grace: Duration::from_millis(args.unpermitted_grace_ms),
        reload_room: Duration::from_millis(args.reload_room_ms),
    };
    match forge_guard::run(opts) {
        Ok(code) => Ok(ExitCode::from(u8::try_from(code).unwrap_or(1))),
        Err(forge_guard::GuardError::Usage(msg) | forge_guard::GuardError::ProducingStart(msg)) => {
            eprintln!("forge-guard: {msg}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e).context("forge-guard"),
    }
}

/// `forge-manager guard-ctl [--socket PATH] [--follow] LINE...`
#[derive(Debug, clap::Args)]
pub struct GuardCtlArgs {
    /// The guard's socket.
    #[arg(long, env = "GUARD_SOCKET", default_value = DEFAULT_SOCKET)]
    socket: PathBuf,
    /// After the last answer, keep printing pushed lines (after a `subscribe`).
    #[arg(long)]
    follow: bool,
    /// Raw protocol lines to send, e.g. '{"v":2,"op":"state"}'; one answer is printed per line.
    lines: Vec<String>,
}

/// Sends each line, prints each answer; exits 1 if any answer is an error (or none came).
pub fn ctl(args: GuardCtlArgs) -> anyhow::Result<ExitCode> {
    let conn = UnixStream::connect(&args.socket)
        .with_context(|| format!("connecting to {}", args.socket.display()))?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut writer = conn.try_clone()?;
    let mut reader = BufReader::new(conn);
    let mut all_ok = true;
    let mut out = std::io::stdout().lock();
    for line in &args.lines {
        // A refused peer is answered and disconnected at once: the write may fail, the
        // refusal is still there to read.
        let _ = writer.write_all(format!("{line}\n").as_bytes());
        let mut answer = String::new();
        if reader.read_line(&mut answer).unwrap_or(0) == 0 {
            writeln!(out, "(connection closed)")?;
            return Ok(ExitCode::FAILURE);
        }
        all_ok &= forge_guard::protocol::Answer::parse(&answer).is_ok_and(|a| a.ok);
        write!(out, "{answer}")?;
        out.flush()?;
    }
    if args.lines.is_empty() {
        // Nothing to send: print what the guard says unprompted (e.g. a refusal).
        let mut answer = String::new();
        if reader.read_line(&mut answer)? > 0 {
            all_ok &= forge_guard::protocol::Answer::parse(&answer).is_ok_and(|a| a.ok);
            write!(out, "{answer}")?;
        }
    }
    if args.follow {
        reader.get_ref().set_read_timeout(None)?;
        for line in reader.lines() {
            writeln!(out, "{}", line?)?;
            out.flush()?;
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
