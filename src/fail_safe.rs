//! The synchronous fail-safe: what runs from the panic hook, on a second signal or when the
//! shutdown deadline passes. Nothing but the standard library and the kernel: remove the target
//! credential files, SIGHUP the node, revoke the node guard's permit.

use std::path::{Path, PathBuf};

use forge_actors::{
    adapters::{
        fs_credentials::{self, CredentialPaths},
        process::ProcFs,
    },
    system::GUARD_TIMEOUT,
};
use forge_core::config::ValidConfig;
use rustix::process::Signal;

/// The synchronous fail-safe: remove the target credential files and SIGHUP the node, with
/// nothing but the standard library and the kernel (it runs from a panic hook).
#[derive(Clone)]
pub struct FailSafe {
    targets: CredentialPaths,
    socket: PathBuf,
    process_name: String,
    guard_socket: PathBuf,
}

impl FailSafe {
    /// The fail-safe for this configuration.
    pub fn of(cfg: &ValidConfig) -> Self {
        Self {
            targets: cfg.credentials.target.clone(),
            socket: cfg.node.socket.clone(),
            process_name: cfg.node.process_name.clone(),
            guard_socket: cfg.node.guard_socket.clone(),
        }
    }

    /// Runs it, reporting each step on stderr.
    pub fn run(&self) {
        let removed = fs_credentials::remove_set(&self.targets);
        let procfs = ProcFs::default();
        let signalled = procfs
            .discover_node(Path::new(&self.socket), &self.process_name)
            .map_err(|e| e.to_string())
            .and_then(|node| procfs.signal(node, Signal::HUP).map_err(|e| e.to_string()));
        let revoked = self.guard_socket.exists().then(|| self.revoke());
        eprintln!(
            "forge-manager fail-safe: credentials removed: {removed:?}; node reloaded: {signalled:?}; \
             guard permit revoked: {revoked:?}"
        );
    }
}

impl FailSafe {
    /// Revokes the node guard's permit (it removes the files and reloads the node itself).
    fn revoke(&self) -> Result<(), String> {
        use std::io::{BufRead, Write};
        let conn = std::os::unix::net::UnixStream::connect(&self.guard_socket).map_err(|e| e.to_string())?;
        conn.set_read_timeout(Some(GUARD_TIMEOUT))
            .map_err(|e| e.to_string())?;
        conn.set_write_timeout(Some(GUARD_TIMEOUT))
            .map_err(|e| e.to_string())?;
        (&conn)
            .write_all(forge_guard::protocol::Request::Revoke.to_line().as_bytes())
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        std::io::BufReader::new(&conn)
            .read_line(&mut answer)
            .map_err(|e| e.to_string())?;
        match forge_guard::protocol::Answer::parse(&answer) {
            Ok(a) if a.ok => Ok(()),
            other => Err(format!("{other:?}")),
        }
    }
}
