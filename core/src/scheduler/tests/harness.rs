//! Test harness: a scheduler with a virtual clock, a fake worker's frame builders, and
//! helpers to pick sends, closes and events out of the actions.

use super::super::*;
use crate::time::Instant;
use crate::worker::io::Incoming;
use serde_json::{json, Value};
use std::time::Duration;

pub const TS: &str = "2025-11-03T13:20:00.000000+00:00";
pub const PKG: (&str, &str) = ("example.pkg", "1.0.0");

pub struct H {
    pub s: Scheduler,
    pub now: Instant,
}

impl H {
    pub fn new(cfg: SchedulerConfig) -> Self {
        H {
            s: Scheduler::new(cfg),
            now: Instant::ZERO,
        }
    }
    pub fn default_cfg() -> Self {
        Self::new(SchedulerConfig {
            seed: 7,
            ..SchedulerConfig::default()
        })
    }
    pub fn input(&mut self, i: SchedInput) -> Vec<SchedAction> {
        self.s.handle(self.now, i);
        std::iter::from_fn(|| self.s.poll_action()).collect()
    }
    pub fn connect(&mut self, c: u64) -> Vec<SchedAction> {
        self.input(SchedInput::Connected(ConnId(c)))
    }
    pub fn frame(&mut self, c: u64, v: &Value) -> Vec<SchedAction> {
        self.input(SchedInput::Frame(ConnId(c), Incoming::Text(v.to_string())))
    }
    pub fn text(&mut self, c: u64, t: &str) -> Vec<SchedAction> {
        self.input(SchedInput::Frame(ConnId(c), Incoming::Text(t.to_string())))
    }
    pub fn submit(&mut self, spec: RunSpec) -> Vec<SchedAction> {
        self.input(SchedInput::SubmitRun(spec))
    }
    /// Connects, handshakes and registers a worker with these packages.
    pub fn worker(&mut self, c: u64, worker_id: &str, pkgs: &[(&str, &str)]) -> Vec<SchedAction> {
        let mut out = self.connect(c);
        out.extend(self.frame(c, &handshake(&format!("hs-{c}"), worker_id, "default")));
        out.extend(self.frame(c, &register(&format!("reg-{c}"), worker_id, pkgs)));
        out
    }
    pub fn advance_to(&mut self, at: Instant) {
        assert!(at >= self.now, "time goes forward");
        self.now = at;
    }
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now + d;
    }
    /// Ticks at every deadline up to and including `until`, collecting what happens.
    pub fn run_until(&mut self, until: Instant) -> Vec<SchedAction> {
        let mut out = Vec::new();
        while let Some(t) = self.s.poll_timeout() {
            if t > until {
                break;
            }
            self.now = t.max(self.now);
            out.extend(self.input(SchedInput::Tick));
        }
        self.now = until.max(self.now);
        out
    }
}

pub fn secs(s: u64) -> Instant {
    Instant::from_millis(s * 1000)
}

fn env(kind: &str, id: &str, worker_id: &str, payload: Value) -> Value {
    json!({"type": kind, "id": id, "ts": TS, "tenant": "default",
           "sender": {"role": "worker", "id": worker_id}, "payload": payload})
}

pub fn with_ack_request(mut v: Value) -> Value {
    v["ack"] = json!({"request": true});
    v
}

pub fn handshake(id: &str, worker_id: &str, tenant: &str) -> Value {
    let mut v = env(
        "handshake",
        id,
        worker_id,
        json!({"protocol": 1, "auth": {"mode": "token", "token": "t"},
               "worker": {"id": worker_id, "version": "0.1.0", "hostname": "h"}}),
    );
    v["tenant"] = json!(tenant);
    with_ack_request(v)
}

pub fn register(id: &str, worker_id: &str, pkgs: &[(&str, &str)]) -> Value {
    let packages: Vec<Value> = pkgs
        .iter()
        .map(|(n, v)| json!({"name": n, "version": v, "status": "installed"}))
        .collect();
    with_ack_request(env(
        "register",
        id,
        worker_id,
        json!({"capabilities": {"concurrency": {"max_parallel": 1}, "runtimes": ["python"], "features": []},
               "packages": packages}),
    ))
}

pub fn heartbeat(id: &str) -> Value {
    env(
        "heartbeat",
        id,
        "w",
        json!({"healthy": true, "metrics": {"inflight": 0}}),
    )
}

pub fn ack(id: &str, for_id: &str) -> Value {
    let mut v = env("ack", id, "w", json!({"ok": true, "for": for_id}));
    v["ack"] = json!({"for": for_id});
    v
}

pub fn result(id: &str, run: &str, task: &str, status: &str) -> Value {
    let mut v = with_ack_request(env(
        "result",
        id,
        "w",
        json!({"run_id": run, "task_id": task, "status": status, "result": {"echo": task}}),
    ));
    v["corr"] = json!(task);
    v
}

pub fn command_error(id: &str, corr: &str, details: Value) -> Value {
    let mut v = with_ack_request(env(
        "command.error",
        id,
        "w",
        json!({"code": "E.RUNNER.FAILURE", "message": "boom", "context": {"where": "worker.runner", "details": details}}),
    ));
    v["corr"] = json!(corr);
    v
}

pub fn feedback(id: &str, run: &str, task: &str, extra: Value) -> Value {
    let mut payload = json!({"run_id": run, "task_id": task});
    if let (Some(p), Value::Object(e)) = (payload.as_object_mut(), extra) {
        p.extend(e);
    }
    env("feedback", id, "w", payload)
}

pub fn node(id: &str) -> NodeSpec {
    NodeSpec::new(id, "example.pkg.echo", PKG.0, PKG.1).param("message", json!(id))
}

pub fn sends(actions: &[SchedAction]) -> Vec<(ConnId, Value)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SchedAction::Send { conn, text } => Some((
                *conn,
                serde_json::from_str(text).expect("scheduler sends JSON"),
            )),
            _ => None,
        })
        .collect()
}

pub fn sent_of_type(actions: &[SchedAction], kind: &str) -> Vec<(ConnId, Value)> {
    sends(actions)
        .into_iter()
        .filter(|(_, v)| v["type"] == kind)
        .collect()
}

pub fn acks_for(actions: &[SchedAction]) -> Vec<String> {
    sent_of_type(actions, "ack")
        .iter()
        .map(|(_, v)| v["ack"]["for"].as_str().unwrap_or("").to_string())
        .collect()
}

pub fn closes(actions: &[SchedAction]) -> Vec<(ConnId, u16, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            SchedAction::Close { conn, code, reason } => Some((*conn, *code, reason.clone())),
            _ => None,
        })
        .collect()
}

pub fn events(actions: &[SchedAction]) -> Vec<SchedEvent> {
    actions
        .iter()
        .filter_map(|a| match a {
            SchedAction::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

/// (dispatch id, node id, seq, conn) of every dispatch sent.
pub fn dispatches(actions: &[SchedAction]) -> Vec<(String, String, u64, ConnId)> {
    sent_of_type(actions, "cmd.dispatch")
        .into_iter()
        .map(|(c, v)| {
            (
                v["id"].as_str().unwrap_or("").to_string(),
                v["payload"]["node_id"].as_str().unwrap_or("").to_string(),
                v["seq"].as_u64().unwrap_or(u64::MAX),
                c,
            )
        })
        .collect()
}

pub fn rejected(actions: &[SchedAction]) -> Option<String> {
    events(actions).into_iter().find_map(|e| match e {
        SchedEvent::Rejected { reason, .. } => Some(reason),
        _ => None,
    })
}
