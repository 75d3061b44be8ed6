//! The guard's line protocol over its Unix socket: one JSON object per line, each way,
//! versioned. Pure: parsing and encoding only, no I/O.
//!
//! Requests (version 2): `{"v":2,"op":"permit","deadline_mono_ns":N}`, `{"v":2,"op":"revoke"}`,
//! `{"v":2,"op":"reload"}`, `{"v":2,"op":"state"}`, `{"v":2,"op":"subscribe"}`. Every request
//! gets one [`Answer`] line; a subscribed connection then also receives a pushed [`Answer`]
//! (with `event`) whenever the node's observed state or the permit changes. Anything else
//! (unknown version or op, unknown fields, a line over [`MAX_LINE`] bytes, not JSON) gets an
//! error answer and changes nothing.
//!
//! **Versions.** Version 2 replaced the permit's relative `ttl_ms` by an absolute deadline on
//! CLOCK_MONOTONIC (`deadline_mono_ns`, see [`crate::monotonic_now_ns`]): the sender computes it
//! from the lease's deadline, so a stall between computing and delivering the request can no
//! longer stretch the permit beyond the lease. Version 1 lines are still accepted for every op
//! whose meaning did not change (`revoke`, `reload`, `state`, `subscribe`); a version 1
//! `permit` is refused (kind `version`). Answers carry `"v":2`; their new state fields default
//! when absent, and clients ignore fields they do not know.

use serde::{Deserialize, Serialize};

/// The protocol version this guard speaks (and writes in every line).
pub const VERSION: u32 = 2;

/// The oldest request version still accepted (module docs: which ops).
pub const OLDEST_VERSION: u32 = 1;

/// The longest request line accepted, newline excluded. Requests are tens of bytes; a peer
/// sending more is broken or hostile, and is answered with an error and disconnected.
pub const MAX_LINE: usize = 4096;

/// The furthest a permit's deadline may lie ahead on arrival. The sidecar grants at most its
/// renew deadline (seconds); ten minutes bounds a bad caller (or a sender whose monotonic clock
/// is not ours, e.g. another time namespace) without limiting any sane configuration.
pub const MAX_TTL_MS: u64 = 600_000;

/// The refusal's `kind` when a `reload` would enable forging (a permit is held and every
/// target credential file exists) with less than the guard's reload room left of the permit:
/// the node may take that long to act on it, so it could take effect after the fence at the
/// permit's end. A stopping reload (a file missing) is never refused this way.
pub const PERMIT_ENDING: &str = "permit_ending";

/// A request to the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Grant or renew the forging permit until `deadline_mono_ns` on CLOCK_MONOTONIC (the
    /// kernel's, shared by every process on the machine). A deadline already past on arrival is
    /// refused.
    Permit {
        /// The permit's end, in nanoseconds of CLOCK_MONOTONIC.
        deadline_mono_ns: u64,
    },
    /// Withdraw the permit (if any) and fence: the guard removes the credentials and reloads
    /// the node, whether or not it held a permit.
    Revoke,
    /// SIGHUP the node: deferred until the node can take it, refused without a permit while a
    /// target credential file exists, and refused ([`PERMIT_ENDING`]) when it would enable
    /// forging with less than the guard's reload room left of the permit.
    Reload,
    /// Answer with the current state.
    State,
    /// Answer with the current state, then push every change on this connection.
    Subscribe,
}

impl Request {
    /// The request as one protocol line (newline included).
    pub fn to_line(self) -> String {
        let v = match self {
            Request::Permit { deadline_mono_ns } => {
                serde_json::json!({"v": VERSION, "op": "permit", "deadline_mono_ns": deadline_mono_ns})
            }
            Request::Revoke => serde_json::json!({"v": VERSION, "op": "revoke"}),
            Request::Reload => serde_json::json!({"v": VERSION, "op": "reload"}),
            Request::State => serde_json::json!({"v": VERSION, "op": "state"}),
            Request::Subscribe => serde_json::json!({"v": VERSION, "op": "subscribe"}),
        };
        format!("{v}\n")
    }

    /// The op's name (logs).
    pub fn op(self) -> &'static str {
        match self {
            Request::Permit { .. } => "permit",
            Request::Revoke => "revoke",
            Request::Reload => "reload",
            Request::State => "state",
            Request::Subscribe => "subscribe",
        }
    }
}

/// Why a request line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    Garbage(String),
    /// `v` missing or not ours, or an op this version no longer accepts in that version.
    #[error("unsupported protocol version {0} (this guard speaks v2)")]
    Version(String),
    /// `op` missing or unknown.
    #[error("unknown op {0}")]
    Op(String),
    /// A field is missing, unknown or out of range.
    #[error("{0}")]
    Field(String),
    /// The line is longer than [`MAX_LINE`].
    #[error("line longer than {MAX_LINE} bytes")]
    TooLong,
}

impl ProtocolError {
    /// A bounded label (the answer's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            ProtocolError::Garbage(_) => "garbage",
            ProtocolError::Version(_) => "version",
            ProtocolError::Op(_) => "op",
            ProtocolError::Field(_) => "field",
            ProtocolError::TooLong => "too_long",
        }
    }
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<Request, ProtocolError> {
    if line.len() > MAX_LINE {
        return Err(ProtocolError::TooLong);
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| ProtocolError::Garbage(e.to_string()))?;
    let serde_json::Value::Object(map) = value else {
        return Err(ProtocolError::Garbage("expected an object".into()));
    };
    let version = match map.get("v") {
        Some(v) => match v.as_u64() {
            Some(n) if (u64::from(OLDEST_VERSION)..=u64::from(VERSION)).contains(&n) => n,
            _ => return Err(ProtocolError::Version(v.to_string())),
        },
        None => return Err(ProtocolError::Version("(missing)".into())),
    };
    let op = match map.get("op") {
        Some(serde_json::Value::String(op)) => op.as_str(),
        Some(other) => return Err(ProtocolError::Op(other.to_string())),
        None => return Err(ProtocolError::Op("(missing)".into())),
    };
    if op == "permit" && version < 2 {
        return Err(ProtocolError::Version(format!(
            "{version} for op permit: a relative ttl_ms can outlive the lease after a stall; \
             send v2 with deadline_mono_ns (CLOCK_MONOTONIC)"
        )));
    }
    let allowed: &[&str] = if op == "permit" {
        &["v", "op", "deadline_mono_ns"]
    } else {
        &["v", "op"]
    };
    if let Some(extra) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ProtocolError::Field(format!(
            "unknown field {extra:?} for op {op}"
        )));
    }
    Ok(match op {
        "permit" => {
            let ns = map
                .get("deadline_mono_ns")
                .and_then(serde_json::Value::as_u64)
                .filter(|ns| *ns > 0)
                .ok_or_else(|| {
                    ProtocolError::Field(
                        "deadline_mono_ns: must be a positive integer (nanoseconds of CLOCK_MONOTONIC)"
                            .into(),
                    )
                })?;
            Request::Permit { deadline_mono_ns: ns }
        }
        "revoke" => Request::Revoke,
        "reload" => Request::Reload,
        "state" => Request::State,
        "subscribe" => Request::Subscribe,
        other => return Err(ProtocolError::Op(format!("{other:?}"))),
    })
}

/// What the node was last seen doing, from its log lines ([`crate::scan`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Observation {
    /// "Enabling block forging" / `EnabledBlockForging`.
    Enabled,
    /// "Disabling block forging" / `DisabledBlockForging`.
    Disabled,
    /// A reload arrived during the ledger replay and was lost.
    NotEffective,
    /// The credentials were present but unusable; the forging state did not change.
    ReloadError,
    /// The chain was extended: consensus runs, a reload now takes effect.
    ChainExtended,
}

/// The guard's state, as reported to the sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GuardState {
    /// Time left on the permit, if one is held.
    pub permit_ms: Option<u64>,
    /// Whether the node forges, per its last reconfiguration line (`None`: not known yet; a
    /// node that started non-producing and was never reloaded does not forge).
    pub forging: Option<bool>,
    /// The last recognised line.
    pub last: Option<Observation>,
    /// A reload was lost in the replay and no reconfiguration line has followed.
    pub reload_lost: bool,
    /// The node's PID.
    pub child_pid: u32,
    /// The node has shown a sign of life (an output line), so it can take a SIGHUP: before
    /// that, a SIGHUP would kill it (the default action) and is deferred instead.
    #[serde(default)]
    pub ready: bool,
    /// A SIGHUP is deferred until the node is ready.
    #[serde(default)]
    pub hup_pending: bool,
}

/// One line from the guard: the answer to a request, or a push (`event` set).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Answer {
    /// Protocol version.
    pub v: u32,
    /// Whether the request was carried out.
    pub ok: bool,
    /// On error: a bounded label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// On error: what was wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Pushes only: what happened (`observed`, `lapsed`, `revoked`, `permit`, `refenced`: the
    /// node forged, or credentials stayed, without a permit; `escalated`: a fence could remove
    /// no credential file, so the node was terminated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// The state after the request (or the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<GuardState>,
}

impl Answer {
    /// A success carrying `state`.
    pub fn ok(state: GuardState) -> Self {
        Self {
            v: VERSION,
            ok: true,
            state: Some(state),
            ..Self::default()
        }
    }

    /// A refusal.
    pub fn error(kind: &str, error: impl std::fmt::Display) -> Self {
        Self {
            v: VERSION,
            ok: false,
            kind: Some(kind.to_string()),
            error: Some(error.to_string()),
            ..Self::default()
        }
    }

    /// A push of `event` with `state`.
    pub fn event(event: &str, state: GuardState) -> Self {
        Self {
            v: VERSION,
            ok: true,
            event: Some(event.to_string()),
            state: Some(state),
            ..Self::default()
        }
    }

    /// The answer as one line (newline included).
    pub fn to_line(&self) -> String {
        // Serialising this struct cannot fail (no maps with non-string keys, no floats).
        let mut s = serde_json::to_string(self).unwrap_or_else(|_| r#"{"v":2,"ok":false}"#.into());
        s.push('\n');
        s
    }

    /// Parses an answer line.
    pub fn parse(line: &str) -> Result<Answer, serde_json::Error> {
        serde_json::from_str(line.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips_through_its_line() {
        for r in [
            Request::Permit {
                deadline_mono_ns: 1_500_000_000,
            },
            Request::Revoke,
            Request::Reload,
            Request::State,
            Request::Subscribe,
        ] {
            let line = r.to_line();
            assert!(line.ends_with('\n'));
            assert_eq!(parse_request(line.trim_end().as_bytes()), Ok(r));
        }
    }

    #[test]
    fn bad_lines_are_refused_with_a_bounded_kind() {
        let cases: &[(&[u8], &str)] = &[
            (b"hello", "garbage"),
            (b"[1,2]", "garbage"),
            (br#"{"op":"state"}"#, "version"),
            (br#"{"v":3,"op":"state"}"#, "version"),
            (br#"{"v":0,"op":"state"}"#, "version"),
            (br#"{"v":"1","op":"state"}"#, "version"),
            (br#"{"v":1}"#, "op"),
            (br#"{"v":2,"op":"grant"}"#, "op"),
            (br#"{"v":1,"op":"permit","ttl_ms":1000}"#, "version"),
            (br#"{"v":2,"op":"permit"}"#, "field"),
            (br#"{"v":2,"op":"permit","ttl_ms":1000}"#, "field"),
            (br#"{"v":2,"op":"permit","deadline_mono_ns":0}"#, "field"),
            (br#"{"v":2,"op":"permit","deadline_mono_ns":-5}"#, "field"),
            (br#"{"v":2,"op":"state","deadline_mono_ns":5}"#, "field"),
        ];
        for (line, kind) in cases {
            let e = parse_request(line).expect_err(&String::from_utf8_lossy(line));
            assert_eq!(e.kind(), *kind, "{}", String::from_utf8_lossy(line));
        }
        let long = vec![b' '; MAX_LINE + 1];
        assert_eq!(parse_request(&long), Err(ProtocolError::TooLong));
    }

    #[test]
    fn version_1_lines_are_still_accepted_for_the_ops_that_did_not_change() {
        for (line, want) in [
            (&br#"{"v":1,"op":"state"}"#[..], Request::State),
            (br#"{"v":1,"op":"subscribe"}"#, Request::Subscribe),
            (br#"{"v":1,"op":"reload"}"#, Request::Reload),
            (br#"{"v":1,"op":"revoke"}"#, Request::Revoke),
        ] {
            assert_eq!(parse_request(line), Ok(want));
        }
        let e = parse_request(br#"{"v":1,"op":"permit","ttl_ms":1000}"#).expect_err("v1 permit");
        assert!(e.to_string().contains("deadline_mono_ns"), "{e}");
    }

    #[test]
    fn a_version_1_state_answer_still_parses() {
        let a = Answer::parse(r#"{"v":1,"ok":true,"state":{"permit_ms":null,"forging":null,"last":null,"reload_lost":false,"child_pid":7}}"#)
            .expect("parses");
        let s = a.state.expect("state");
        assert!(!s.ready && !s.hup_pending && s.child_pid == 7);
    }

    #[test]
    fn answers_round_trip_and_omit_empty_fields() {
        let a = Answer::ok(GuardState {
            permit_ms: Some(10),
            forging: Some(true),
            last: Some(Observation::Enabled),
            reload_lost: false,
            child_pid: 7,
            ready: true,
            hup_pending: false,
        });
        let line = a.to_line();
        assert!(!line.contains("error"));
        assert!(line.contains(r#""last":"enabled""#));
        assert_eq!(Answer::parse(&line).expect("parses"), a);
        let e = Answer::error("garbage", "bad");
        assert_eq!(Answer::parse(&e.to_line()).expect("parses"), e);
    }
}
