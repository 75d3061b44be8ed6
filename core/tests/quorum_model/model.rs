//! The bounded model of quorum mode that the checks explore (see the crate docs for what it
//! models and why): the API servers' tickets, each region's knowledge and clock, the actions
//! (a region's round of requests, its node starting or stopping, a change of intent, a crash, a
//! restart, a tick) and the properties (S1 and, in the fair models, liveness). It drives the
//! production rules of `forge_core::quorum` and adds only the world around them.
use forge_core::lease::{Mono, Verdict};
use forge_core::quorum::{Intent, Want, standing, ticket_verdict, want};
use stateright::{Model, Property};

/// Ticket duration, renew deadline, renewal period and the node's stop, in local clock units.
pub(crate) const DURATION: u16 = 16;

pub(crate) const RENEW_DEADLINE: u16 = 6;

const RETRY: u16 = 4;

const NODE_STOP: u16 = 4;

/// Local clock units per tick: a slow and a fast clock (25 % apart).
const RATES: [u16; 2] = [4, 5];

/// Region identities (ticket holders).
const NAMES: [&str; 4] = ["", "r0", "r1", "r2"];

/// One API server's ticket: holder (0 = none, else region + 1) and `resourceVersion`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Server {
    holder: u8,
    version: u16,
}

/// A region's knowledge of one ticket.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default)]
struct Ticket {
    /// `(holder, version, first seen at)` on our clock; `None`: read before writing.
    seen: Option<(u8, u16, u16)>,
    /// `(sent, deadline)` of our last successful write.
    held: Option<(u16, u16)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Region {
    rate: u16,
    tickets: Vec<Ticket>,
    /// The decision engine says this region should forge.
    contend: bool,
    /// Its node forges (until `permit + NODE_STOP` at the latest).
    forging: bool,
    /// The node guard's permit (local clock): never beyond the forge deadline.
    permit: u16,
    /// Ran its round this tick.
    acted: bool,
    /// Its manager is down (crashed, hung or paused): no rounds until it restarts.
    down: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct State {
    now: u16,
    servers: Vec<Server>,
    regions: Vec<Region>,
    /// Links cut: bit `region * participants + server`.
    cut: u32,
    crashes: u8,
    /// Messages lost so far.
    losses: u8,
    /// A region of the majority side has forged (fair models).
    majority_side_forged: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Action {
    /// Region runs its round; per server, base-3 digits: 0 delivered, 1 answer lost, 2 request lost.
    Round(usize, u32),
    Forge(usize),
    Stop(usize),
    SetContend(usize, bool),
    Crash(usize),
    Restart(usize),
    Tick,
}

/// A bounded world: `regions` regions (region i's own API server is participant i) plus
/// `witnesses` witness API servers.
#[derive(Clone, Debug)]
pub(crate) struct QuorumModel {
    pub(crate) regions: usize,
    pub(crate) witnesses: usize,
    pub(crate) horizon: u16,
    /// Safety model: loss, crashes, an adversarial decision engine. Fair model: none of those,
    /// region 0 cut off from all but its own server, starting as the holder.
    pub(crate) lossy: bool,
    pub(crate) max_crashes: u8,
    /// Messages that may be lost in a run (at most one per round).
    pub(crate) max_losses: u8,
    /// The renew deadline under test ([`RENEW_DEADLINE`] but in the mutation check).
    pub(crate) renew_deadline: u16,
}

/// What a round asks of one server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Req {
    Read,
    /// Version-checked write of a new holder (0: release).
    Write {
        expect: u16,
        holder: u8,
    },
}

impl QuorumModel {
    pub(crate) fn participants(&self) -> usize {
        self.regions + self.witnesses
    }

    fn local(r: &Region, now: u16) -> u16 {
        now * r.rate
    }

    fn deadlines(r: &Region) -> impl Iterator<Item = Option<Mono>> + '_ {
        r.tickets
            .iter()
            .map(|t| t.held.map(|(_, d)| Mono::from_millis(u64::from(d))))
    }

    /// The forge deadline at local time `l`, by the production rule.
    fn forge_until(r: &Region, l: u16) -> Option<u16> {
        standing(Self::deadlines(r), Mono::from_millis(u64::from(l)))
            .until
            .map(|m| m.as_duration().as_millis() as u16)
    }

    fn is_cut(&self, s: &State, r: usize, p: usize) -> bool {
        s.cut & (1 << (r * self.participants() + p)) != 0
    }

    /// The request the rules call for on one ticket (mirrors `TicketState::step`; "nothing to
    /// write" polls with a read, as the keeper's watch does).
    fn request(me: usize, w: Want, t: &Ticket, l: u16) -> Option<Req> {
        if w == Want::Leave {
            return None;
        }
        let Some((holder, version, seen_at)) = t.seen else {
            return Some(Req::Read);
        };
        let verdict = ticket_verdict(
            Some(NAMES[usize::from(holder)]),
            NAMES[me + 1],
            Mono::from_millis(u64::from(seen_at)),
            std::time::Duration::from_millis(u64::from(DURATION)),
            Mono::from_millis(u64::from(l)),
        );
        let write = |holder| {
            Some(Req::Write {
                expect: version,
                holder,
            })
        };
        Some(match (w, verdict) {
            (Want::Release, Verdict::Ours) => return write(0),
            (Want::Take | Want::Keep, Verdict::Ours) => match t.held {
                Some((sent, _)) if l < sent + RETRY => Req::Read,
                _ => return write(me as u8 + 1),
            },
            (Want::Take, Verdict::Vacant | Verdict::Expired { .. }) => return write(me as u8 + 1),
            _ => Req::Read,
        })
    }

    fn round(&self, s: &mut State, ri: usize, mut outcomes: u32) {
        let now = s.now;
        let r = &mut s.regions[ri];
        let l = Self::local(r, now);
        let me = ri as u8 + 1;
        let w = want(Intent {
            local_leader: true,
            contend: r.contend,
            stopped: !r.forging,
        });
        for p in 0..self.participants() {
            let outcome = outcomes % 3;
            outcomes /= 3;
            let t = &mut r.tickets[p];
            let Some(req) = Self::request(ri, w, t, l) else {
                continue;
            };
            if let Req::Write { holder: 0, .. } = req {
                t.held = None; // releasing: our tenure ends before the write is sent
            }
            let cut = s.cut & (1 << (ri * (self.regions + self.witnesses) + p)) != 0;
            if cut || outcome == 2 {
                if matches!(req, Req::Write { .. }) {
                    t.seen = None; // timed out: read before the next write
                }
                continue;
            }
            let srv = &mut s.servers[p];
            let answer = match req {
                Req::Read => Some((srv.holder, srv.version)),
                Req::Write { expect, holder } if expect == srv.version => {
                    srv.holder = holder;
                    srv.version += 1;
                    Some((holder, srv.version))
                }
                Req::Write { .. } => None, // 409
            };
            if outcome == 1 {
                if matches!(req, Req::Write { .. }) {
                    t.seen = None;
                }
                continue;
            }
            match (req, answer) {
                (Req::Read, Some((h, v))) => {
                    let first_seen = match t.seen {
                        Some((_, sv, at)) if sv == v => at,
                        _ => l,
                    };
                    if h != me {
                        t.held = None;
                    }
                    t.seen = Some((h, v, first_seen));
                }
                (Req::Write { holder, .. }, Some((_, v))) => {
                    if holder == me {
                        let deadline = l + self.renew_deadline;
                        t.held = Some(match t.held {
                            Some((sent, d)) if sent > l => (sent, d),
                            _ => (l, deadline),
                        });
                    }
                    t.seen = Some((holder, v, l));
                }
                (_, None) => t.seen = None,
            }
        }
        r.acted = true;
        // The Decider renews the guard's permit to the forge deadline while the node has not
        // been fenced yet; a permit is never shortened (the guard cannot take one back).
        if r.forging
            && r.contend
            && l < r.permit
            && let Some(u) = Self::forge_until(r, l)
        {
            r.permit = r.permit.max(u);
        }
    }
}

impl Model for QuorumModel {
    type State = State;
    type Action = Action;

    fn init_states(&self) -> Vec<State> {
        let n = self.participants();
        let mut out = Vec::new();
        for combo in 0..(1u32 << self.regions) {
            let regions: Vec<Region> = (0..self.regions)
                .map(|i| Region {
                    rate: RATES[((combo >> i) & 1) as usize],
                    tickets: vec![Ticket::default(); n],
                    contend: false,
                    forging: false,
                    permit: 0,
                    acted: false,
                    down: false,
                })
                .collect();
            let mut s = State {
                now: 0,
                servers: vec![
                    Server {
                        holder: 0,
                        version: 0
                    };
                    n
                ],
                regions,
                cut: 0,
                crashes: 0,
                losses: 0,
                majority_side_forged: false,
            };
            {
                // Region 0 holds every ticket (written at time 0, seen by all) and forges. In the
                // fair models it is cut off from every server but its own, and region 1 is the
                // best of the rest; in the lossy ones the links stay and intent is adversarial.
                for srv in &mut s.servers {
                    *srv = Server {
                        holder: 1,
                        version: 1,
                    };
                }
                for (i, r) in s.regions.iter_mut().enumerate() {
                    for t in &mut r.tickets {
                        t.seen = Some((1, 1, 0));
                        if i == 0 {
                            t.held = Some((0, self.renew_deadline));
                        }
                    }
                    r.contend = i <= 1;
                }
                s.regions[0].forging = true;
                s.regions[0].permit = self.renew_deadline;
                if !self.lossy {
                    for p in 1..n {
                        s.cut |= 1 << p;
                    }
                }
            }
            out.push(s);
        }
        out
    }

    fn actions(&self, s: &State, actions: &mut Vec<Action>) {
        let n = self.participants();
        for (i, r) in s.regions.iter().enumerate() {
            if !r.acted && !r.down {
                if self.lossy {
                    // All delivered, or (within the loss budget) one request or one answer lost.
                    actions.push(Action::Round(i, 0));
                    if s.losses < self.max_losses {
                        for p in 0..n {
                            if !self.is_cut(s, i, p) {
                                actions.push(Action::Round(i, 3u32.pow(p as u32)));
                                actions.push(Action::Round(i, 2 * 3u32.pow(p as u32)));
                            }
                        }
                    }
                } else {
                    actions.push(Action::Round(i, 0));
                }
            }
            let l = Self::local(r, s.now);
            if !r.forging && !r.down && r.contend && Self::forge_until(r, l).is_some() {
                actions.push(Action::Forge(i));
            }
            if r.forging && !r.down && (!r.contend || Self::forge_until(r, l).is_none()) {
                actions.push(Action::Stop(i));
            }
            // The decision engine's changes of mind and crashes happen between rounds, at the
            // start of a tick (a bound on interleavings; a crash mid-tick is a crash at the
            // next tick after losses).
            let tick_start = s.regions.iter().all(|r| !r.acted);
            if self.lossy && tick_start {
                if r.down {
                    actions.push(Action::Restart(i));
                } else {
                    actions.push(Action::SetContend(i, !r.contend));
                    if s.crashes < self.max_crashes {
                        actions.push(Action::Crash(i));
                    }
                }
            }
        }
        // Time passes once every region ran its round and, in the fair models, once every
        // region that may start forging did (the Decider acts on a majority at once).
        let forge_pending = !self.lossy
            && s.regions.iter().any(|r| {
                !r.forging && !r.down && r.contend && Self::forge_until(r, Self::local(r, s.now)).is_some()
            });
        if s.now < self.horizon && !forge_pending && s.regions.iter().all(|r| r.acted || r.down) {
            actions.push(Action::Tick);
        }
    }

    fn next_state(&self, last: &State, action: Action) -> Option<State> {
        let mut s = last.clone();
        match action {
            Action::Round(i, o) => {
                if o != 0 {
                    s.losses += 1;
                }
                self.round(&mut s, i, o)
            }
            Action::Forge(i) => {
                let r = &mut s.regions[i];
                let l = Self::local(r, s.now);
                r.forging = true;
                r.permit = Self::forge_until(r, l)?;
                if i != 0 && !self.lossy {
                    s.majority_side_forged = true;
                }
            }
            Action::Stop(i) => s.regions[i].forging = false,
            Action::SetContend(i, c) => s.regions[i].contend = c,
            Action::Crash(i) => {
                let r = &mut s.regions[i];
                r.tickets = vec![Ticket::default(); self.participants()];
                r.contend = false;
                r.down = true;
                s.crashes += 1;
            }
            Action::Restart(i) => s.regions[i].down = false,
            Action::Tick => {
                s.now += 1;
                for r in &mut s.regions {
                    r.acted = false;
                    // The guard fences at its permit; the node stops within NODE_STOP after.
                    if r.forging && Self::local(r, s.now) >= r.permit + NODE_STOP {
                        r.forging = false;
                    }
                }
            }
        }
        Some(s)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p = vec![Property::always("S1: at most one forger", |_, s: &State| {
            s.regions.iter().filter(|r| r.forging).count() <= 1
        })];
        if !self.lossy {
            p.push(Property::always(
                "the majority side forges by the horizon",
                |m: &QuorumModel, s: &State| s.now < m.horizon || s.majority_side_forged,
            ));
        }
        p
    }
}
