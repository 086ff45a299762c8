//! Builds the v1 envelopes the worker sends. The only place that knows the worker-side
//! envelope conventions: UUIDv4 ids, RFC 3339 `ts`, `sender {role: worker}`, tenant from
//! config, `corr` = task id on task frames (spec R2), and token redaction for logs.

use super::io::OutFrame;
use super::Worker;
use crate::time::StampCache;
use crate::v1::json_out::{plain_len, JsonOut};
use crate::v1::payload_json::WriteJson;
use crate::v1::payloads::*;
use crate::v1::types::FrameType;
use serde_json::{Map, Value};

/// Envelope fields that vary per frame. `ack_for` borrows the acked frame's id: it is
/// only written, never kept.
pub(crate) struct Head<'a> {
    pub kind: FrameType,
    pub corr: Option<String>,
    pub seq: Option<u64>,
    pub ack_request: bool,
    pub ack_for: Option<&'a str>,
}

impl Head<'_> {
    pub fn new(kind: FrameType) -> Self {
        Head {
            kind,
            corr: None,
            seq: None,
            ack_request: false,
            ack_for: None,
        }
    }
    pub fn corr(mut self, corr: Option<String>) -> Self {
        self.corr = corr;
        self
    }
    pub fn seq(mut self, seq: Option<u64>) -> Self {
        self.seq = seq;
        self
    }
    pub fn request_ack(mut self) -> Self {
        self.ack_request = true;
        self
    }
}

impl Worker {
    /// Writes the envelope straight from borrowed parts into one buffer: the same field
    /// order and shape as `Envelope` (and the serde `OutEnvelope` it replaced, which the
    /// test below keeps as the oracle), without serde or an intermediate JSON map.
    pub(crate) fn build_frame<T: WriteJson>(&mut self, head: Head<'_>, payload: &T) -> OutFrame {
        let ts = self.cfg.wall.unix_micros(self.now);
        frame_of(
            &mut self.rng,
            ts,
            &mut self.stamps,
            &self.identity_json,
            head,
            payload,
        )
    }

    pub(crate) fn handshake_frame(&mut self) -> OutFrame {
        let token = self
            .cfg
            .auth_token
            .as_ref()
            .filter(|t| !t.is_empty())
            .map(|t| t.expose().to_string());
        let (token, fingerprint) = match self.cfg.auth_mode {
            AuthMode::Token => (token, None),
            AuthMode::Mtls => (None, self.cfg.auth_fingerprint.clone()),
        };
        let has_token = token.is_some();
        let payload = HandshakePayload {
            protocol: self.cfg.protocol_version.max(1),
            auth: Auth {
                mode: self.cfg.auth_mode,
                token,
                fingerprint,
            },
            worker: WorkerInfo {
                id: self.cfg.worker_id.clone(),
                version: self.cfg.worker_version.clone(),
                hostname: self.cfg.hostname.clone(),
            },
        };
        let frame = self.build_frame(Head::new(FrameType::Handshake).request_ack(), &payload);
        if has_token {
            // Same envelope, token masked: what logs and action snapshots show.
            let mut redacted: Value = serde_json::from_str(frame.text()).unwrap_or(Value::Null);
            if let Some(t) = redacted.pointer_mut("/payload/auth/token") {
                *t = Value::String("***".into());
            }
            let r = redacted.to_string();
            frame.with_redacted(r)
        } else {
            frame
        }
    }

    /// The `register` frame, its payload written from the configuration and inventory in
    /// place ([`RegisterOut`]) rather than copied into a `RegisterPayload` first.
    pub(crate) fn register_frame(&mut self, empty_inventory: bool) -> OutFrame {
        let head = Head::new(FrameType::Register).request_ack();
        let ts = self.cfg.wall.unix_micros(self.now);
        // The payload borrows the config and inventory, so the frame is built from the
        // machine's other fields rather than through `build_frame(&mut self, ..)`.
        let payload = RegisterOut {
            cfg: &self.cfg,
            inventory: (!empty_inventory).then_some(&self.inventory),
        };
        frame_of(
            &mut self.rng,
            ts,
            &mut self.stamps,
            &self.identity_json,
            head,
            &payload,
        )
    }

    /// The payload [`RegisterOut`] writes, as a value (the oracle of its test).
    #[cfg(test)]
    fn register_payload(&self, empty_inventory: bool) -> RegisterPayload {
        let packages = if empty_inventory {
            Vec::new()
        } else {
            self.inventory.register_entries()
        };
        let runtimes = if self.cfg.runtimes.is_empty() {
            vec!["builtin".to_string()]
        } else {
            self.cfg.runtimes.clone()
        };
        let per_node =
            (!self.cfg.per_node_limits.is_empty()).then(|| self.cfg.per_node_limits.clone());
        RegisterPayload {
            capabilities: Capabilities {
                concurrency: Concurrency {
                    max_parallel: self.cfg.max_parallel.max(1),
                    per_node_limits: per_node,
                },
                runtimes,
                features: self
                    .cfg
                    .features
                    .iter()
                    .filter(|f| !f.is_empty())
                    .cloned()
                    .collect(),
            },
            packages,
            channels: None,
        }
    }

    pub(crate) fn heartbeat_frame(&mut self) -> (OutFrame, bool) {
        let healthy = self.health.healthy && self.draining.is_none();
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
        let payload = HeartbeatOut {
            healthy,
            inflight: self.admission.running_count() as u64,
            queued: self.admission.queued_count() as u64,
            outbox: self.outbox.len() as u64,
            cpu_pct: finite(self.health.cpu_pct),
            mem_pct: finite(self.health.mem_pct),
            disk_pct: finite(self.health.disk_pct),
        };
        (
            self.build_frame(Head::new(FrameType::Heartbeat), &payload),
            healthy,
        )
    }

    /// An ack for an inbound frame: `ack.for` = its id, corr and seq copied (spec §2.1).
    pub(crate) fn ack_frame(
        &mut self,
        for_id: &str,
        corr: Option<String>,
        seq: Option<u64>,
    ) -> OutFrame {
        let head = Head::new(FrameType::Ack).corr(corr).seq(seq);
        let id = self.rng.uuid_v4();
        let ts = self.cfg.wall.unix_micros(self.now);
        let text = ack_text(
            &head,
            for_id,
            &id,
            ts,
            &mut self.stamps,
            &self.identity_json,
        );
        OutFrame::new(head.kind, id, head.corr, head.seq, text)
    }
}

/// The worker's ack payload, borrowing the acked id: written exactly as
/// `AckPayload { ok: Some(true), for_id: Some(for_id) }` is (`ack_out_equals_the_payload`),
/// without copying the id into the payload (and the envelope) first. [`ack_text`] writes
/// the same bytes with the id copied from the envelope's `ack.for`; this is its oracle.
#[cfg(test)]
struct AckOut<'a> {
    for_id: &'a str,
}

#[cfg(test)]
impl WriteJson for AckOut<'_> {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        o.raw("{\"ok\":true,\"for\":").str(self.for_id).raw("}");
    }
}

/// The `register` payload borrowed from the configuration and inventory: written exactly as
/// the `RegisterPayload` built from them serialises (max_parallel at least 1, per-node limits
/// only when configured, `["builtin"]` when no runtime is configured, empty features dropped,
/// installed packages only, no channels); `register_out_equals_the_payload` compares the two.
struct RegisterOut<'a> {
    cfg: &'a super::WorkerConfig,
    /// `None`: an empty package list (a draining worker attracts no work).
    inventory: Option<&'a crate::work::Inventory>,
}

impl WriteJson for RegisterOut<'_> {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        let c = self.cfg;
        o.raw("{\"capabilities\":{\"concurrency\":{\"max_parallel\":")
            .u64(u64::from(c.max_parallel.max(1)));
        if !c.per_node_limits.is_empty() {
            o.raw(",\"per_node_limits\":{");
            for (i, (k, v)) in c.per_node_limits.iter().enumerate() {
                if i > 0 {
                    o.raw(",");
                }
                o.str(k).raw(":").u64(u64::from(*v));
            }
            o.raw("}");
        }
        o.raw("},\"runtimes\":");
        if c.runtimes.is_empty() {
            o.raw("[\"builtin\"]");
        } else {
            o.str_array(&c.runtimes);
        }
        o.raw(",\"features\":[");
        for (i, f) in c.features.iter().filter(|f| !f.is_empty()).enumerate() {
            if i > 0 {
                o.raw(",");
            }
            o.str(f);
        }
        o.raw("]},\"packages\":[");
        crate::v1::payload_json::package_entries(
            o,
            self.inventory.into_iter().flat_map(|v| v.installed()),
        );
        o.raw("]}");
    }
}

/// A heartbeat payload without building its `metrics` map: written exactly as the
/// `HeartbeatPayload` with the map `{inflight, queued, outbox, resource_handles: 0,
/// resource_bytes: 0, cpu_pct?, mem_pct?, disk_pct?}` serialises (map keys sorted, as in
/// serde_json's `Map`); `heartbeat_out_equals_the_map_payload` compares the two.
struct HeartbeatOut {
    healthy: bool,
    inflight: u64,
    queued: u64,
    outbox: u64,
    cpu_pct: Option<f64>,
    mem_pct: Option<f64>,
    disk_pct: Option<f64>,
}

impl WriteJson for HeartbeatOut {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        o.raw("{\"healthy\":")
            .bool(self.healthy)
            .raw(",\"metrics\":{");
        if let Some(v) = self.cpu_pct {
            o.raw("\"cpu_pct\":").f64(v).raw(",");
        }
        if let Some(v) = self.disk_pct {
            o.raw("\"disk_pct\":").f64(v).raw(",");
        }
        o.raw("\"inflight\":").u64(self.inflight).raw(",");
        if let Some(v) = self.mem_pct {
            o.raw("\"mem_pct\":").f64(v).raw(",");
        }
        o.raw("\"outbox\":").u64(self.outbox);
        o.raw(",\"queued\":").u64(self.queued);
        o.raw(",\"resource_bytes\":0,\"resource_handles\":0}}");
    }
}

/// `,"tenant":…,"sender":{"role":"worker","id":…}`: the part of every envelope that only
/// the configuration decides, escaped once when the machine is built (the configuration
/// never changes after that) instead of twice per frame.
pub(crate) fn identity_json(tenant: &str, worker_id: &str) -> String {
    let mut buf = String::new();
    JsonOut::new(&mut buf)
        .raw(",\"tenant\":")
        .str(tenant)
        .raw(",\"sender\":{\"role\":\"worker\",\"id\":")
        .str(worker_id)
        .raw("}");
    buf
}

/// A worker frame in [`envelope_text`]'s layout, read back without a parse: where its
/// `"id"` starts, where what follows its `"ts"` starts, and its `corr` and `seq`.
pub(crate) struct Layout<'a> {
    /// `{"type":"…"`, the text before `,"id":`.
    head: &'a str,
    /// `,…` after the stamp's closing quote, to the end.
    tail: &'a str,
    pub corr: Option<&'a str>,
    pub seq: Option<u64>,
}

/// The length of a JSON string body with no escapes, if `s` starts with one and its quote.
fn plain_body(s: &str) -> Option<usize> {
    let n = plain_len(s.as_bytes());
    (s.as_bytes().get(n) == Some(&b'"')).then_some(n)
}

impl<'a> Layout<'a> {
    /// `None` for text in any other layout (a frame restored from an older outbox, say).
    pub(crate) fn of(frame: &'a str) -> Option<Layout<'a>> {
        let rest = frame.strip_prefix("{\"type\":\"")?;
        let after_type = &rest[plain_body(rest)? + 1..];
        let id = after_type.strip_prefix(",\"id\":\"")?;
        let ts = id[plain_body(id)? + 1..].strip_prefix(",\"ts\":\"")?;
        let tail = &ts[plain_body(ts)? + 1..];
        if !tail.starts_with(',') {
            return None;
        }
        let mut after = tail;
        let mut corr = None;
        if let Some(c) = after.strip_prefix(",\"corr\":\"") {
            let n = plain_body(c)?;
            corr = Some(&c[..n]);
            after = &c[n + 1..];
        }
        let mut seq = None;
        if let Some(d) = after.strip_prefix(",\"seq\":") {
            let n = d.bytes().take_while(u8::is_ascii_digit).count();
            seq = Some(d[..n].parse().ok()?);
        }
        Some(Layout {
            head: &frame[..frame.len() - after_type.len()],
            tail,
            corr,
            seq,
        })
    }

    /// The same frame with a new `id` (a generated UUID) and stamp.
    pub(crate) fn with_id_ts(&self, id: &str, ts_micros: u64) -> String {
        let mut buf = String::with_capacity(self.head.len() + self.tail.len() + 80);
        JsonOut::new(&mut buf)
            .raw(self.head)
            .raw(",\"id\":")
            .str_plain(id)
            .raw(",\"ts\":")
            .rfc3339_micros(ts_micros)
            .raw(self.tail);
        buf
    }
}

/// The text of one worker frame (see [`Worker::build_frame`]). `id` is a generated UUID
/// (plain by construction, written without the escape scan), `ts_micros` the wall time
/// written as its RFC 3339 stamp in place (through the machine's `stamps`), `identity`
/// [`identity_json`]'s text.
/// A frame with a fresh id (drawn from `rng`) stamped `ts_micros`: `Worker::build_frame`
/// from the machine's fields, so a payload that borrows other fields can use it too.
fn frame_of<T: WriteJson>(
    rng: &mut crate::rng::Rng,
    ts_micros: u64,
    stamps: &mut StampCache,
    identity: &str,
    head: Head<'_>,
    payload: &T,
) -> OutFrame {
    let id = rng.uuid_v4();
    let text = envelope_text(&head, &id, ts_micros, stamps, identity, payload);
    OutFrame::new(head.kind, id, head.corr, head.seq, text)
}

fn envelope_text<T: WriteJson>(
    head: &Head,
    id: &str,
    ts_micros: u64,
    stamps: &mut StampCache,
    identity: &str,
    payload: &T,
) -> String {
    // Acks and heartbeats fit in 384 bytes; the frames with maps and lists in their payload
    // (results, errors, feedback, register) mostly outgrew that and were reallocated midway.
    let cap = match head.kind {
        FrameType::Result
        | FrameType::CommandError
        | FrameType::Feedback
        | FrameType::Register
        | FrameType::PkgEvent => 1024,
        _ => 384,
    };
    let mut buf = String::with_capacity(cap);
    let mut o = JsonOut::new(&mut buf);
    envelope_start(&mut o, head, id, ts_micros, stamps, identity);
    match (&head.ack_for, head.ack_request) {
        (None, false) => o.raw(",\"payload\":"),
        (Some(f), false) => o
            .raw(",\"ack\":{\"for\":\"")
            .str_body(f)
            .raw("\"},\"payload\":"),
        (None, true) => o.raw(",\"ack\":{\"request\":true},\"payload\":"),
        (Some(f), true) => o
            .raw(",\"ack\":{\"for\":\"")
            .str_body(f)
            .raw("\",\"request\":true},\"payload\":"),
    };
    payload.write_json(&mut o);
    o.raw("}");
    buf
}

/// An ack of `for_id`: [`envelope_text`] with `ack.for` = `for_id` and [`AckOut`]'s payload
/// (`ack_text_is_the_envelope_of_ack_out`), the id escaped once for `ack.for` and its JSON
/// text then copied into the payload.
fn ack_text(
    head: &Head,
    for_id: &str,
    id: &str,
    ts_micros: u64,
    stamps: &mut StampCache,
    identity: &str,
) -> String {
    let mut buf = String::with_capacity(384);
    let mut o = JsonOut::new(&mut buf);
    envelope_start(&mut o, head, id, ts_micros, stamps, identity);
    o.raw(",\"ack\":{\"for\":");
    let at = o.written();
    o.raw("\"").str_body(for_id).raw("\"");
    let end = o.written();
    if head.ack_request {
        o.raw(",\"request\":true");
    }
    o.raw("},\"payload\":{\"ok\":true,\"for\":")
        .repeat(at..end)
        .raw("}}");
    buf
}

/// The start of [`envelope_text`], through the identity: the quotes of the id, the stamp and
/// `corr` are part of the literals around them (one copy each instead of three).
fn envelope_start(
    o: &mut JsonOut<'_>,
    head: &Head,
    id: &str,
    ts_micros: u64,
    stamps: &mut StampCache,
    identity: &str,
) {
    o.raw(head_prefix(head.kind))
        .plain_body(id)
        .raw("\",\"ts\":\"")
        .rfc3339_micros_body_cached(ts_micros, stamps);
    if let Some(c) = &head.corr {
        o.raw("\",\"corr\":\"").str_body(c);
    }
    match head.seq {
        Some(n) => o.raw("\",\"seq\":").u64(n),
        None => o.raw("\""),
    };
    o.raw(identity);
}

/// `{"type":"<kind>","id":"`: the start of every frame of `kind`, as one literal.
fn head_prefix(kind: FrameType) -> &'static str {
    macro_rules! head {
        ($name:literal) => {
            concat!("{\"type\":\"", $name, "\",\"id\":\"")
        };
    }
    match kind {
        FrameType::Handshake => head!("handshake"),
        FrameType::Register => head!("register"),
        FrameType::Heartbeat => head!("heartbeat"),
        FrameType::Ack => head!("ack"),
        FrameType::Dispatch => head!("cmd.dispatch"),
        FrameType::Result => head!("result"),
        FrameType::Feedback => head!("feedback"),
        FrameType::CommandError => head!("command.error"),
        FrameType::PkgEvent => head!("pkg.event"),
        FrameType::PkgInstall => head!("pkg.install"),
        FrameType::PkgUninstall => head!("pkg.uninstall"),
    }
}

/// `command.error` payload with the context the scheduler needs to find the run (spec §3.7).
pub(crate) fn error_payload(
    code: &str,
    message: &str,
    where_: &str,
    details: Map<String, Value>,
) -> ErrorPayload {
    ErrorPayload {
        code: if code.is_empty() {
            "E.RUNNER.FAILURE".into()
        } else {
            code.to_string()
        },
        message: non_empty_message(message),
        remediation: None,
        context: Some(ErrorContext {
            where_: Some(where_.to_string()),
            details: Some(details),
        }),
    }
}

/// The scheduler closes the socket on an empty error message (spec §3.7): never send one.
pub(crate) fn non_empty_message(message: &str) -> String {
    let m = message.trim();
    if m.is_empty() {
        "task failed without an error message".to_string()
    } else if m.len() > 4096 {
        let mut cut = 4096;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &m[..cut])
    } else {
        m.to_string()
    }
}

pub(crate) fn task_details(
    run_id: Option<&str>,
    task_id: Option<&str>,
    node_id: Option<&str>,
) -> Map<String, Value> {
    let mut d = Map::new();
    for (k, v) in [
        ("run_id", run_id),
        ("task_id", task_id),
        ("node_id", node_id),
    ] {
        if let Some(v) = v {
            d.insert(k.into(), Value::String(v.to_string()));
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::envelope::{AckField, Role, Sender};
    use serde::Serialize;
    use serde_json::json;

    /// The serde envelope `build_frame` used before, kept as the oracle.
    #[derive(Serialize)]
    struct OutEnvelope<'a, P: Serialize> {
        #[serde(rename = "type")]
        kind: &'a str,
        id: &'a str,
        ts: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        corr: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<u64>,
        tenant: &'a str,
        sender: Sender,
        #[serde(skip_serializing_if = "Option::is_none")]
        ack: Option<&'a AckField>,
        payload: &'a P,
    }

    /// The map-building heartbeat payload `heartbeat_frame` used before.
    fn map_payload(h: &HeartbeatOut) -> HeartbeatPayload {
        let mut metrics = Map::new();
        metrics.insert("inflight".into(), json!(h.inflight));
        metrics.insert("queued".into(), json!(h.queued));
        metrics.insert("outbox".into(), json!(h.outbox));
        metrics.insert("resource_handles".into(), json!(0));
        metrics.insert("resource_bytes".into(), json!(0));
        for (k, v) in [
            ("cpu_pct", h.cpu_pct),
            ("mem_pct", h.mem_pct),
            ("disk_pct", h.disk_pct),
        ] {
            if let Some(v) = v {
                metrics.insert(k.into(), json!(v));
            }
        }
        HeartbeatPayload {
            healthy: h.healthy,
            metrics,
            packages: None,
        }
    }

    #[test]
    fn register_out_equals_the_payload() {
        use crate::v1::payload_json::to_json;
        use crate::worker::WorkerConfig;
        let entry = |name: &str, version: &str, status| PackageEntry {
            name: name.into(),
            version: version.into(),
            status,
        };
        for case in 0..16u32 {
            let mut cfg = WorkerConfig {
                max_parallel: case % 3,
                ..WorkerConfig::default()
            };
            if case & 1 != 0 {
                cfg.per_node_limits = [("slow".to_string(), 1), ("q\"t".to_string(), 7)].into();
            }
            if case & 2 != 0 {
                cfg.runtimes = Vec::new();
            }
            if case & 4 != 0 {
                cfg.features = vec!["".into(), "stream".into(), "".into(), "é\n".into()];
            }
            let mut w = Worker::new(cfg);
            if case & 8 != 0 {
                w.inventory.packages = [
                    entry("b", "1", PackageStatus::Installed),
                    entry("a", "2", PackageStatus::Failed),
                    entry("a", "1\"", PackageStatus::Installed),
                    entry("c", "0", PackageStatus::Missing),
                ]
                .into();
            }
            for empty in [false, true] {
                let out = RegisterOut {
                    cfg: &w.cfg,
                    inventory: (!empty).then_some(&w.inventory),
                };
                let want = w.register_payload(empty);
                assert_eq!(to_json(&out), to_json(&want), "case {case}, empty {empty}");
                assert_eq!(
                    to_json(&out),
                    serde_json::to_string(&want).unwrap(),
                    "case {case}, empty {empty}"
                );
            }
        }
    }

    #[test]
    fn heartbeat_out_equals_the_map_payload() {
        for i in 0..64u64 {
            let pick = |bit: u64, v: f64| (i & (1 << bit) != 0).then_some(v);
            let h = HeartbeatOut {
                healthy: i % 2 == 0,
                inflight: i,
                queued: i * 1_000_003,
                outbox: u64::MAX - i,
                cpu_pct: pick(1, 12.5),
                mem_pct: pick(2, 0.0),
                disk_pct: pick(3, 99.999_999_1 + i as f64),
            };
            let want = serde_json::to_string(&map_payload(&h)).unwrap();
            assert_eq!(crate::v1::payload_json::to_json(&h), want);
        }
    }

    #[test]
    fn ack_out_equals_the_payload() {
        for id in ["d-1", "", "q\"uo\\te", "ctl\u{1}\n", "é☃😀", ID] {
            let want = crate::v1::payload_json::to_json(&AckPayload {
                ok: Some(true),
                for_id: Some(id.to_string()),
            });
            assert_eq!(
                crate::v1::payload_json::to_json(&AckOut { for_id: id }),
                want
            );
        }
    }

    /// A generated id: the only kind `envelope_text` is given (written unescaped).
    const ID: &str = "90c6e112-da0c-4efe-9cb3-ff1de549c2a6";

    #[test]
    fn envelope_text_equals_the_serde_envelope() {
        let payload = AckPayload {
            ok: Some(true),
            for_id: Some("f\"1".into()),
        };
        for (corr, seq, req, ack_for) in [
            (None, None, false, None),
            (Some("c\n1"), Some(0), true, None),
            (Some("c"), None, false, Some("d-1")),
            (None, Some(u64::MAX), true, Some("é")),
        ] {
            let mut head = Head::new(FrameType::Ack)
                .corr(corr.map(str::to_string))
                .seq(seq);
            head.ack_request = req;
            head.ack_for = ack_for;
            let ack = (req || ack_for.is_some()).then(|| AckField {
                for_id: ack_for.map(str::to_string),
                request: req.then_some(true),
            });
            let ts_micros = 1_762_175_750_123_456 + seq.unwrap_or(7) % 1000;
            let ts = crate::time::format_rfc3339_micros(ts_micros);
            let oracle = serde_json::to_string(&OutEnvelope {
                kind: head.kind.as_str(),
                id: ID,
                ts: &ts,
                corr,
                seq,
                tenant: "t☃",
                sender: Sender {
                    role: Role::Worker,
                    id: "w\u{1}".into(),
                },
                ack: ack.as_ref(),
                payload: &payload,
            })
            .unwrap();
            let identity = identity_json("t☃", "w\u{1}");
            let mut stamps = StampCache::new();
            let text = envelope_text(&head, ID, ts_micros, &mut stamps, &identity, &payload);
            assert_eq!(text, oracle);
        }
    }

    /// An ack written by `ack_text` is the envelope of `AckOut` with `ack.for` set, whatever
    /// its id needs escaping, its corr and seq.
    #[test]
    fn ack_text_is_the_envelope_of_ack_out() {
        let identity = identity_json("t\"", "w");
        let (mut c1, mut c2) = (StampCache::new(), StampCache::new());
        for (i, for_id) in ["d-1", "", "q\"uo\\te", "ctl\u{1}\n", "é☃😀", ID]
            .iter()
            .enumerate()
        {
            for (corr, seq, req) in [
                (None, None, false),
                (Some("c\n1"), Some(3), false),
                (Some("n0"), None, true),
                (None, Some(u64::MAX), true),
            ] {
                let mut head = Head::new(FrameType::Ack)
                    .corr(corr.map(str::to_string))
                    .seq(seq);
                head.ack_request = req;
                let ts = 1_762_175_750_123_456 + i as u64 * 777_777;
                let got = ack_text(&head, for_id, ID, ts, &mut c1, &identity);
                head.ack_for = Some(for_id);
                let want = envelope_text(&head, ID, ts, &mut c2, &identity, &AckOut { for_id });
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn head_prefix_names_the_type() {
        for k in FrameType::ALL {
            assert_eq!(
                head_prefix(k),
                format!("{{\"type\":\"{}\",\"id\":\"", k.as_str())
            );
        }
    }

    /// A re-send's text is the original's with only `id` and `ts` replaced, and the read-back
    /// `corr` and `seq` are the ones written; any other layout, or a `corr` with escapes,
    /// is declined (the caller then re-encodes through serde).
    #[test]
    fn layout_swaps_id_and_stamp_only() {
        let payload = AckPayload {
            ok: Some(true),
            for_id: Some("r\"1".into()),
        };
        let identity = identity_json("t", "w");
        let mut c = StampCache::new();
        for (corr, seq, req) in [
            (None, None, false),
            (Some("n0"), Some(0), true),
            (Some("n3"), None, true),
            (None, Some(u64::MAX), false),
            (Some(""), Some(12), true),
        ] {
            let mut head = Head::new(FrameType::Result)
                .corr(corr.map(str::to_string))
                .seq(seq);
            head.ack_request = req;
            let first = envelope_text(
                &head,
                ID,
                1_762_175_750_123_456,
                &mut c,
                &identity,
                &payload,
            );
            let l = Layout::of(&first).expect("own layout");
            assert_eq!((l.corr, l.seq), (corr, seq));
            let id2 = "0196173b-7fdb-4b38-9d58-c228858de321";
            let again = l.with_id_ts(id2, 1_762_175_999_000_001);
            let want = envelope_text(
                &head,
                id2,
                1_762_175_999_000_001,
                &mut c,
                &identity,
                &payload,
            );
            assert_eq!(again, want);
        }
        let escaped = Head::new(FrameType::Result).corr(Some("c\n".into()));
        let text = envelope_text(&escaped, ID, 1, &mut c, &identity, &payload);
        assert!(Layout::of(&text).is_none());
        for other in [
            "",
            "{}",
            r#"{"id":"a","type":"result","ts":"x","payload":{}}"#,
            r#"{"type":"result","id":"a","ts":"x"}"#,
            r#"{"type":"result","id":"a\"b","ts":"x","payload":{}}"#,
            r#"{"type":"result","id":"a","ts":"x","seq":99999999999999999999999,"payload":{}}"#,
        ] {
            assert!(Layout::of(other).is_none(), "{other}");
        }
    }
}
