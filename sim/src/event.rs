//! Everything that can happen in a simulation, as queue entries, plus the compact copy of
//! each that the failure trace keeps.

use astra_core::scheduler::ConnId;
use astra_core::v1::codec::{Inbound, Light};
use astra_core::v1::types::FrameType;
use astra_core::work::TaskKey;
use astra_core::worker::Incoming;

/// A frame a worker sent, in flight to the scheduler: its exact text and what the checker's
/// strict read (the scheduler's own codec and limit) made of it, so the scheduler reads it
/// without decoding the same bytes again. Shared by duplicates.
#[derive(Debug, Clone)]
pub struct SentFrame {
    pub text: String,
    pub read: Read,
    /// The limit the checker read it with.
    pub max: usize,
}

/// The checker's read of a sent frame. The decoded frame is boxed although the whole
/// `SentFrame` sits behind an `Rc`: unboxed, every `SentFrame` (acks and heartbeats too) was
/// ~500 bytes, copied with `memcpy` into and out of the `Rc` and on to the scheduler —
/// more instructions than the one extra allocation for the 4 in 10 frames that are decoded.
#[derive(Debug, Clone)]
pub enum Read {
    /// `decode(text, max)` succeeded with this frame.
    Decoded(Box<Inbound>),
    /// `decode_light(text, max)` read it.
    Light(LightAt),
    /// No read is handed on (the checker rejected the frame and flagged it): the scheduler
    /// reads the text itself.
    TextOnly,
}

/// A [`Light`] read kept as positions in the frame's own text, so it travels with the text.
#[derive(Debug, Clone, Copy)]
pub enum LightAt {
    Heartbeat,
    /// `ack.for` is `text[start..end]`.
    Ack {
        start: usize,
        end: usize,
    },
}

impl LightAt {
    /// `light` as read from `text`: `decode_light` lends `ack.for` as a slice of `text`, so
    /// its offset is the distance between the two pointers (checked: `None` if it is not).
    pub fn of(text: &str, light: Light<'_>) -> Option<Self> {
        Some(match light {
            Light::Heartbeat => LightAt::Heartbeat,
            Light::Ack { for_id } => {
                let start = (for_id.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
                let end = start + for_id.len();
                if !std::ptr::eq(text.get(start..end)?, for_id) {
                    return None;
                }
                LightAt::Ack { start, end }
            }
        })
    }

    /// The read again, borrowing from the same `text`.
    pub fn get<'a>(&self, text: &'a str) -> Option<Light<'a>> {
        Some(match *self {
            LightAt::Heartbeat => Light::Heartbeat,
            LightAt::Ack { start, end } => Light::Ack {
                for_id: text.get(start..end)?,
            },
        })
    }
}

impl SentFrame {
    fn kind(&self) -> Option<FrameType> {
        match &self.read {
            Read::Decoded(f) => f.body.frame_type(),
            Read::Light(LightAt::Heartbeat) => Some(FrameType::Heartbeat),
            Read::Light(LightAt::Ack { .. }) => Some(FrameType::Ack),
            Read::TextOnly => FrameType::parse(crate::frames::sniff_type(&self.text)),
        }
    }
}

/// A worker process: slot index and incarnation (bumped by every crash/restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub w: usize,
    pub inc: u32,
}

#[derive(Debug, Clone)]
pub enum Ev {
    WorkerTimer {
        p: Proc,
        token: u64,
    },
    SchedTimer {
        token: u64,
    },
    ToSched {
        conn: ConnId,
        frame: std::rc::Rc<SentFrame>,
    },
    ToWorker {
        conn: ConnId,
        frame: Incoming,
    },
    ConnectDone {
        p: Proc,
        conn: ConnId,
    },
    /// The worker's driver notices its socket is gone.
    WorkerSeesClose {
        p: Proc,
        conn: ConnId,
    },
    /// The scheduler's driver notices a socket is gone.
    SchedSeesClose {
        conn: ConnId,
    },
    /// The task's key is boxed (as in `TaskDone`): two `String`s inline made these the
    /// largest events, and every event of every kind is moved at the largest one's size
    /// (into its queue slot, out of it, into `step`) — one allocation per task event is
    /// cheaper than ~50 more bytes moved on every queue pop.
    TaskFeedback {
        p: Proc,
        key: Box<TaskKey>,
        exec: u64,
        n: usize,
    },
    TaskDone {
        p: Proc,
        key: Box<TaskKey>,
        exec: u64,
    },
    PkgDone {
        p: Proc,
        op_id: u64,
    },
    Submit,
    /// A simulated second on which at least one fault stream fires (chaos phase only).
    Chaos,
    HealPartition {
        w: usize,
        epoch: u64,
    },
    WorkerRestart {
        w: usize,
    },
    /// A crash injected outside the fault streams (sabotage).
    WorkerCrash {
        w: usize,
    },
    SchedulerUp,
    EndChaos,
    LivenessCheck,
}

/// What the trace remembers of an event: small and `Copy`, formatted only on failure.
#[derive(Debug, Clone, Copy)]
pub enum Rec {
    Ev(EvKind),
    Fault(&'static str, Option<usize>),
    Note(&'static str),
}

#[derive(Debug, Clone, Copy)]
pub enum EvKind {
    WorkerTimer(Proc),
    SchedTimer,
    ToSched(ConnId, Option<FrameType>, bool),
    ToWorker(ConnId, Option<FrameType>, bool),
    ConnectDone(Proc, ConnId),
    WorkerSeesClose(Proc, ConnId),
    SchedSeesClose(ConnId),
    TaskFeedback(Proc),
    TaskDone(Proc),
    PkgDone(Proc),
    Submit,
    Chaos,
    HealPartition(usize),
    WorkerRestart(usize),
    WorkerCrash(usize),
    SchedulerUp,
    EndChaos,
    LivenessCheck,
}

fn kind_of(f: &Incoming) -> (Option<FrameType>, bool) {
    match f {
        Incoming::Text(t) => (FrameType::parse(crate::frames::sniff_type(t)), false),
        Incoming::Binary(_) => (None, true),
    }
}

impl Ev {
    pub fn kind(&self) -> EvKind {
        match self {
            Ev::WorkerTimer { p, .. } => EvKind::WorkerTimer(*p),
            Ev::SchedTimer { .. } => EvKind::SchedTimer,
            Ev::ToSched { conn, frame } => EvKind::ToSched(*conn, frame.kind(), false),
            Ev::ToWorker { conn, frame } => {
                let (k, b) = kind_of(frame);
                EvKind::ToWorker(*conn, k, b)
            }
            Ev::ConnectDone { p, conn } => EvKind::ConnectDone(*p, *conn),
            Ev::WorkerSeesClose { p, conn } => EvKind::WorkerSeesClose(*p, *conn),
            Ev::SchedSeesClose { conn } => EvKind::SchedSeesClose(*conn),
            Ev::TaskFeedback { p, .. } => EvKind::TaskFeedback(*p),
            Ev::TaskDone { p, .. } => EvKind::TaskDone(*p),
            Ev::PkgDone { p, .. } => EvKind::PkgDone(*p),
            Ev::Submit => EvKind::Submit,
            Ev::Chaos => EvKind::Chaos,
            Ev::HealPartition { w, .. } => EvKind::HealPartition(*w),
            Ev::WorkerRestart { w } => EvKind::WorkerRestart(*w),
            Ev::WorkerCrash { w } => EvKind::WorkerCrash(*w),
            Ev::SchedulerUp => EvKind::SchedulerUp,
            Ev::EndChaos => EvKind::EndChaos,
            Ev::LivenessCheck => EvKind::LivenessCheck,
        }
    }
}

fn ft(k: Option<FrameType>, binary: bool) -> &'static str {
    match (k, binary) {
        (_, true) => "<binary>",
        (Some(k), _) => k.as_str(),
        (None, _) => "<garbled>",
    }
}

impl std::fmt::Display for Rec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Rec::Fault(what, Some(w)) => write!(f, "FAULT   {what} w{w}"),
            Rec::Fault(what, None) => write!(f, "FAULT   {what}"),
            Rec::Note(n) => write!(f, "note    {n}"),
            Rec::Ev(k) => match k {
                EvKind::WorkerTimer(p) => write!(f, "w{}.{}  timer", p.w, p.inc),
                EvKind::SchedTimer => write!(f, "sched   timer"),
                EvKind::ToSched(c, k, b) => write!(f, "sched   <- c{} {}", c.0, ft(k, b)),
                EvKind::ToWorker(c, k, b) => write!(f, "worker  <- c{} {}", c.0, ft(k, b)),
                EvKind::ConnectDone(p, c) => write!(f, "w{}.{}  connect c{} done", p.w, p.inc, c.0),
                EvKind::WorkerSeesClose(p, c) => {
                    write!(f, "w{}.{}  sees c{} closed", p.w, p.inc, c.0)
                }
                EvKind::SchedSeesClose(c) => write!(f, "sched   sees c{} closed", c.0),
                EvKind::TaskFeedback(p) => write!(f, "w{}.{}  task feedback", p.w, p.inc),
                EvKind::TaskDone(p) => write!(f, "w{}.{}  task done", p.w, p.inc),
                EvKind::PkgDone(p) => write!(f, "w{}.{}  package op done", p.w, p.inc),
                EvKind::Submit => write!(f, "client  submit run"),
                EvKind::Chaos => write!(f, "chaos   tick"),
                EvKind::HealPartition(w) => write!(f, "net     heal partition w{w}"),
                EvKind::WorkerRestart(w) => write!(f, "w{w}     restart"),
                EvKind::WorkerCrash(w) => write!(f, "w{w}     crash"),
                EvKind::SchedulerUp => write!(f, "sched   up"),
                EvKind::EndChaos => write!(f, "phase   liveness"),
                EvKind::LivenessCheck => write!(f, "phase   liveness check"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use astra_core::v1::codec::{decode_light, DEFAULT_MAX_FRAME_BYTES};

    #[test]
    fn a_light_read_travels_as_positions_in_its_text() {
        let text = r#"{"type":"ack","id":"a1","ts":"2025-11-03T13:20:00Z","tenant":"default","sender":{"role":"worker","id":"w1"},"ack":{"for":"d-1"},"payload":{"ok":true,"for":"d-1"}}"#;
        let light = decode_light(text, DEFAULT_MAX_FRAME_BYTES).unwrap();
        let at = LightAt::of(text, light).unwrap();
        // A copy of the text (what a duplicate delivery holds) gives the same read.
        let copy = text.to_string();
        assert_eq!(at.get(&copy), Some(light));
        assert_eq!(light, Light::Ack { for_id: "d-1" });
        // A slice of another text is refused rather than mis-placed.
        let other = String::from("d-1");
        assert!(LightAt::of(text, Light::Ack { for_id: &other }).is_none());
        assert!(matches!(
            LightAt::of(text, Light::Heartbeat),
            Some(LightAt::Heartbeat)
        ));
    }
}
