//! Prometheus text exposition and health for the optional `metrics_listen` endpoint. Shared
//! by both drivers: they only accept the TCP connection and hand the request head to
//! [`Metrics::respond`].

use astra_core::worker::{SessionState, Stats};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds (ms) of the task duration histogram buckets.
const BUCKETS_MS: [u64; 14] = [
    1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS_MS.len()],
    count: u64,
    sum: u64,
}

impl Histogram {
    fn observe(&mut self, ms: u64) {
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum = self.sum.saturating_add(ms);
    }
}

#[derive(Debug, Default)]
struct Inner {
    stats: Stats,
    state: Option<SessionState>,
    durations: BTreeMap<String, Histogram>,
}

/// Thread-safe metrics registry: the control loop writes, the HTTP responder reads.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere mid-update; the counters stay usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn update(&self, stats: &Stats, state: SessionState) {
        let mut i = self.lock();
        i.stats = stats.clone();
        i.state = Some(state);
    }

    pub fn observe_task(&self, node_type: &str, duration_ms: u64) {
        self.lock()
            .durations
            .entry(node_type.to_string())
            .or_default()
            .observe(duration_ms);
    }

    /// Connected and registered (or draining on a live session).
    pub fn healthy(&self) -> bool {
        matches!(
            self.lock().state,
            Some(SessionState::Heartbeating) | Some(SessionState::Draining)
        )
    }

    pub fn render(&self) -> String {
        let i = self.lock();
        let s = &i.stats;
        let mut o = String::new();
        let gauge = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP astra_worker_{name} {help}\n# TYPE astra_worker_{name} gauge\nastra_worker_{name} {v}");
        };
        gauge(&mut o, "inflight_tasks", "Tasks running now.", s.inflight);
        gauge(
            &mut o,
            "queued_tasks",
            "Tasks acked and waiting for a free slot.",
            s.queued,
        );
        gauge(
            &mut o,
            "outbox_depth",
            "Durable frames not yet acknowledged by the scheduler.",
            s.outbox_depth,
        );
        let registered = matches!(
            i.state,
            Some(SessionState::Heartbeating) | Some(SessionState::Draining)
        );
        gauge(
            &mut o,
            "registered",
            "1 when registered with the scheduler.",
            registered as u64,
        );
        let counter = |o: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP astra_worker_{name} {help}\n# TYPE astra_worker_{name} counter\nastra_worker_{name} {v}");
        };
        counter(
            &mut o,
            "heartbeat_sent_total",
            "Heartbeats sent.",
            s.heartbeats_sent,
        );
        counter(
            &mut o,
            "heartbeat_degraded_total",
            "Heartbeats sent with healthy=false.",
            s.heartbeats_degraded,
        );
        counter(
            &mut o,
            "ack_retries_total",
            "Frames resent because no ack arrived in time.",
            s.ack_retries,
        );
        counter(
            &mut o,
            "reconnects_total",
            "Reconnections to the scheduler.",
            s.reconnects,
        );
        counter(
            &mut o,
            "frames_rejected_total",
            "Inbound frames that failed validation.",
            s.frames_rejected,
        );
        counter(
            &mut o,
            "duplicate_dispatches_total",
            "Re-dispatches of tasks already known.",
            s.duplicates,
        );
        counter(
            &mut o,
            "concurrency_violations_total",
            "Dispatches refused for a held concurrency key.",
            s.concurrency_violations,
        );
        counter(
            &mut o,
            "tasks_started_total",
            "Tasks started.",
            s.tasks_started,
        );
        counter(
            &mut o,
            "tasks_finished_total",
            "Tasks finished.",
            s.tasks_finished,
        );
        for (name, help, map) in [
            ("frames_sent_total", "Frames sent by type.", &s.frames_sent),
            (
                "frames_received_total",
                "Frames received by type.",
                &s.frames_received,
            ),
        ] {
            let _ = writeln!(
                o,
                "# HELP astra_worker_{name} {help}\n# TYPE astra_worker_{name} counter"
            );
            for (t, v) in map {
                let _ = writeln!(o, "astra_worker_{name}{{type=\"{}\"}} {v}", escape(t));
            }
        }
        let _ = writeln!(o, "# HELP astra_worker_task_duration_ms Task duration by node type.\n# TYPE astra_worker_task_duration_ms histogram");
        for (node, h) in &i.durations {
            let node = escape(node);
            for (b, c) in BUCKETS_MS.iter().zip(h.counts.iter()) {
                let _ = writeln!(
                    o,
                    "astra_worker_task_duration_ms_bucket{{node_type=\"{node}\",le=\"{b}\"}} {c}"
                );
            }
            let _ = writeln!(
                o,
                "astra_worker_task_duration_ms_bucket{{node_type=\"{node}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                o,
                "astra_worker_task_duration_ms_sum{{node_type=\"{node}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                o,
                "astra_worker_task_duration_ms_count{{node_type=\"{node}\"}} {}",
                h.count
            );
        }
        o
    }

    /// Answers one HTTP/1.x request given its first line (`GET /metrics HTTP/1.1`).
    pub fn respond(&self, request_line: &str) -> Vec<u8> {
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (status, ctype, body) = match (method, path.split('?').next().unwrap_or("")) {
            ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4", self.render()),
            ("GET", "/healthz") => {
                let state = self.lock().state;
                let ok = self.healthy();
                let body = format!(
                    "{{\"registered\":{ok},\"state\":\"{:?}\"}}\n",
                    state.unwrap_or(SessionState::New)
                );
                (
                    if ok {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    },
                    "application/json",
                    body,
                )
            }
            ("GET", _) => (
                "404 Not Found",
                "text/plain",
                "try /metrics or /healthz\n".to_string(),
            ),
            _ => (
                "405 Method Not Allowed",
                "text/plain",
                "GET only\n".to_string(),
            ),
        };
        format!("HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).into_bytes()
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::new();
        let mut s = Stats {
            heartbeats_sent: 3,
            inflight: 2,
            ..Stats::default()
        };
        s.frames_sent.insert("result".into(), 7);
        m.update(&s, SessionState::Heartbeating);
        m.observe_task("echo", 3);
        m.observe_task("echo", 700);
        let t = m.render();
        assert!(t.contains("astra_worker_heartbeat_sent_total 3"), "{t}");
        assert!(t.contains("astra_worker_inflight_tasks 2"));
        assert!(t.contains("astra_worker_frames_sent_total{type=\"result\"} 7"));
        assert!(t.contains("astra_worker_task_duration_ms_bucket{node_type=\"echo\",le=\"5\"} 1"));
        assert!(
            t.contains("astra_worker_task_duration_ms_bucket{node_type=\"echo\",le=\"1000\"} 2")
        );
        assert!(t.contains("astra_worker_task_duration_ms_sum{node_type=\"echo\"} 703"));
    }

    #[test]
    fn healthz_follows_registration() {
        let m = Metrics::new();
        assert!(String::from_utf8(m.respond("GET /healthz HTTP/1.1"))
            .unwrap()
            .starts_with("HTTP/1.1 503"));
        m.update(&Stats::default(), SessionState::Heartbeating);
        let r = String::from_utf8(m.respond("GET /healthz HTTP/1.1")).unwrap();
        assert!(
            r.starts_with("HTTP/1.1 200") && r.contains("\"registered\":true"),
            "{r}"
        );
        assert!(String::from_utf8(m.respond("POST /metrics HTTP/1.1"))
            .unwrap()
            .starts_with("HTTP/1.1 405"));
        assert!(String::from_utf8(m.respond("garbage"))
            .unwrap()
            .starts_with("HTTP/1.1 405"));
    }
}
