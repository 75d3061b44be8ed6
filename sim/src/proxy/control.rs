//! The one-line control commands ([`parse_command`]) and the Unix control socket that serves
//! them ([`serve_control`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

use super::{ProxyError, ProxyHandle, ProxyMode};

/// A parsed control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Switch to a mode.
    Mode(ProxyMode),
    /// Reset open connections.
    Reset,
    /// Report the counters.
    Stats,
}

/// Parses `pass`, `latency UP_MS DOWN_MS`, `blackhole`, `blackhole up`, `blackhole down`,
/// `reset`, `refuse` or `stats`.
pub fn parse_command(line: &str) -> Result<Command, ProxyError> {
    let bad = || ProxyError::BadCommand(line.trim().to_owned());
    let words: Vec<&str> = line.split_whitespace().collect();
    let ms = |w: &str| w.parse::<u64>().map(Duration::from_millis).map_err(|_| bad());
    Ok(match words.as_slice() {
        ["pass"] => Command::Mode(ProxyMode::Pass),
        ["blackhole"] => Command::Mode(ProxyMode::Blackhole),
        ["blackhole", "up"] => Command::Mode(ProxyMode::BlackholeUp),
        ["blackhole", "down"] => Command::Mode(ProxyMode::BlackholeDown),
        ["refuse"] => Command::Mode(ProxyMode::Refuse),
        ["reset"] => Command::Reset,
        ["stats"] => Command::Stats,
        ["latency", up, down] => Command::Mode(ProxyMode::Latency {
            up: ms(up)?,
            down: ms(down)?,
        }),
        _ => return Err(bad()),
    })
}

/// Serves the control socket at `path` (a stale file is removed first): each line is a command
/// for [`ProxyHandle::command`], answered by one line (`ok`, the stats JSON, or `error: ...`).
/// Runs until `shutdown` resolves, then removes the socket file.
pub async fn serve_control(
    path: &Path,
    h: ProxyHandle,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ProxyError> {
    let io_err = |what: &str, source| ProxyError::Io {
        what: format!("{what} {}", path.display()),
        source,
    };
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| io_err("removing stale", e))?;
    }
    let listener = UnixListener::bind(path).map_err(|e| io_err("binding", e))?;
    let _cleanup = RemoveOnDrop(path.to_owned());
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let h = h.clone();
                tokio::spawn(async move {
                    let (r, mut w) = stream.into_split();
                    let mut lines = BufReader::new(r).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if line.trim().is_empty() {
                            continue;
                        }
                        let reply = h.command(&line).unwrap_or_else(|e| format!("error: {e}"));
                        if w.write_all(format!("{reply}\n").as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
