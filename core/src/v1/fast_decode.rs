//! The fast path of [`super::codec::decode`]: a hand-written single-pass reader of the frames
//! that travel in the simulator and in production (every type but `pkg.install` and
//! `pkg.uninstall`), with no intermediate raw payload slice and no path tracking.
//!
//! Its contract is one-sided, which keeps the strict rules in one place: it returns
//! `Some(frame)` only for text that the serde decoder accepts with exactly that value, and
//! `None` ("not sure") for everything else — any error, an escape in a key, a rare field, a
//! type it does not read, a duplicate key. `decode` then runs the serde decoder, which
//! accepts or rejects and names the field exactly as before. Unknown keys, missing fields,
//! wrong types and bad enum values therefore still get serde's answers; the property test
//! `fast_path_agrees_with_serde` (tests/proptest_codec.rs) checks the contract on generated
//! and mutated frames.

use super::codec::{Body, Inbound};
use super::envelope::{AckField, Envelope, Role, Sender};
use super::payloads::*;
use super::types::FrameType;
use serde_json::{Map, Number, Value};
use std::collections::BTreeMap;

/// `None` means "let the serde decoder decide".
type R<T> = Option<T>;

/// Decodes `text` (already past the size limit and `tolerate_non_finite`) if it is sure.
pub fn decode(text: &str) -> Option<Inbound> {
    let mut p = P {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let f = p.frame()?;
    p.ws();
    (p.i == p.b.len()).then_some(f)
}

/// Bit flags of fields already seen in one object: a duplicate key means "not sure".
struct Seen(u32);

impl Seen {
    fn first(&mut self, bit: u32) -> R<()> {
        let m = 1 << bit;
        if self.0 & m != 0 {
            return None;
        }
        self.0 |= m;
        Some(())
    }
}

/// Nesting this reader goes to before leaving a frame to serde, well inside serde_json's
/// own recursion limit (128), so nothing it accepts is one serde rejects for depth, and
/// hostile nesting cannot exhaust the stack.
const MAX_DEPTH: u32 = 64;

struct P<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    /// Objects and arrays currently open.
    depth: u32,
}

impl<'a> P<'a> {
    /// JSON whitespace, exactly the four characters serde_json skips.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> R<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> R<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    fn lit(&mut self, word: &str) -> R<()> {
        self.ws();
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word.as_bytes()).then(|| self.i = end)
    }

    /// Consumes `null` if it comes next.
    fn null(&mut self) -> bool {
        self.lit("null").is_some()
    }

    /// The body of a string with no escapes or control characters, borrowed.
    fn plain_str(&mut self) -> R<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        self.i += super::json_out::plain_len(self.b.get(start..)?);
        if *self.b.get(self.i)? != b'"' {
            return None; // an escape, a control character or the end of the text
        }
        let s = self.s.get(start..self.i)?;
        self.i += 1;
        Some(s)
    }

    /// Any string; one with escapes is unescaped by serde_json itself, for exactness.
    fn string(&mut self) -> R<String> {
        if self.peek()? != b'"' {
            return None;
        }
        let open = self.i;
        if let Some(s) = self.plain_str() {
            return Some(s.to_string());
        }
        self.i = open + 1;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        self.i += 1;
        serde_json::from_str(self.s.get(open..self.i)?).ok()
    }

    fn opt_string(&mut self) -> R<Option<String>> {
        if self.null() {
            return Some(None);
        }
        self.string().map(Some)
    }

    fn bool(&mut self) -> R<bool> {
        if self.lit("true").is_some() {
            return Some(true);
        }
        self.lit("false").map(|_| false)
    }

    fn opt_bool(&mut self) -> R<Option<bool>> {
        if self.null() {
            return Some(None);
        }
        self.bool().map(Some)
    }

    /// The text of a number token (JSON's number characters), not yet checked.
    fn number_token(&mut self) -> R<&'a str> {
        self.ws();
        let start = self.i;
        while let Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E') = self.b.get(self.i) {
            self.i += 1;
        }
        (self.i > start).then(|| &self.s[start..self.i])
    }

    /// A u64 written as plain digits without a leading zero: what serde reads as a u64.
    /// Anything else (sign, fraction, exponent, overflow) is left to serde.
    fn u64(&mut self) -> R<u64> {
        let t = self.number_token()?;
        if !t.bytes().all(|c| c.is_ascii_digit()) || (t.len() > 1 && t.starts_with('0')) {
            return None;
        }
        t.parse().ok()
    }

    fn opt_u64(&mut self) -> R<Option<u64>> {
        if self.null() {
            return Some(None);
        }
        self.u64().map(Some)
    }

    fn opt_i64(&mut self) -> R<Option<i64>> {
        if self.null() {
            return Some(None);
        }
        serde_json::from_str(self.number_token()?).ok().map(Some)
    }

    fn f64(&mut self) -> R<f64> {
        serde_json::from_str(self.number_token()?).ok()
    }

    fn opt_f64(&mut self) -> R<Option<f64>> {
        if self.null() {
            return Some(None);
        }
        self.f64().map(Some)
    }

    /// Any JSON value, as serde_json builds it.
    fn value(&mut self) -> R<Value> {
        Some(match self.peek()? {
            b'n' => {
                self.lit("null")?;
                Value::Null
            }
            b't' | b'f' => Value::Bool(self.bool()?),
            b'"' => Value::String(self.string()?),
            b'{' => Value::Object(self.map()?),
            b'[' => Value::Array(self.array(P::value)?),
            _ => {
                let t = self.number_token()?;
                let plain = t.bytes().all(|c| c.is_ascii_digit()) && !t.starts_with('0');
                match plain.then(|| t.parse::<u64>().ok()).flatten() {
                    Some(n) => Value::Number(Number::from(n)),
                    // Signs, zero, fractions and exponents: serde_json's own number reader.
                    None => Value::Number(serde_json::from_str::<Number>(t).ok()?),
                }
            }
        })
    }

    /// An open JSON object. A repeated key is left to serde.
    fn map(&mut self) -> R<Map<String, Value>> {
        let mut m = Map::new();
        self.object(|p, k| {
            let v = p.value()?;
            m.insert(k.to_string(), v).is_none().then_some(())
        })?;
        Some(m)
    }

    fn opt_map(&mut self) -> R<Option<Map<String, Value>>> {
        if self.null() {
            return Some(None);
        }
        self.map().map(Some)
    }

    /// Walks one object, calling `field` with each key (escape-free keys only) positioned at
    /// its value; `field` must consume the value.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> R<()>) -> R<()> {
        self.eat(b'{')?;
        self.enter()?;
        if self.peek()? == b'}' {
            self.i += 1;
            self.depth -= 1;
            return Some(());
        }
        loop {
            let k = self.plain_str()?;
            self.eat(b':')?;
            field(self, k)?;
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    fn enter(&mut self) -> R<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    fn array<T>(&mut self, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        self.eat(b'[')?;
        self.enter()?;
        let mut v = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
            self.depth -= 1;
            return Some(v);
        }
        loop {
            v.push(item(self)?);
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    self.depth -= 1;
                    return Some(v);
                }
                _ => return None,
            }
        }
    }

    // ------------------------------------------------------------------------------------
    // envelope

    fn frame(&mut self) -> R<Inbound> {
        let (mut kind, mut id, mut ts, mut tenant) = (None, None, None, None);
        let (mut corr, mut seq, mut sender, mut ack, mut flags) = (None, None, None, None, None);
        let mut body = None;
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "type" => {
                    seen.first(0)?;
                    kind = Some(p.string()?);
                }
                "id" => {
                    seen.first(1)?;
                    id = Some(p.string()?);
                }
                "ts" => {
                    seen.first(2)?;
                    ts = Some(p.string()?);
                }
                "corr" => {
                    seen.first(3)?;
                    corr = p.opt_string()?;
                }
                "seq" => {
                    seen.first(4)?;
                    seq = p.opt_u64()?;
                }
                "tenant" => {
                    seen.first(5)?;
                    tenant = Some(p.string()?);
                }
                "sender" => {
                    seen.first(6)?;
                    sender = Some(p.sender()?);
                }
                "ack" => {
                    seen.first(7)?;
                    ack = p.ack_field()?;
                }
                "flags" => {
                    seen.first(8)?;
                    flags = if p.null() {
                        None
                    } else {
                        Some(p.array(P::string)?)
                    };
                }
                "payload" => {
                    seen.first(9)?;
                    // Only frames that name their type first are read here.
                    let ft = FrameType::parse(kind.as_deref()?)?;
                    body = Some(p.body(ft)?);
                }
                _ => return None,
            }
            Some(())
        })?;
        let env = Envelope {
            kind: kind?,
            id: id?,
            ts: ts?,
            corr,
            seq,
            tenant: tenant?,
            sender: sender?,
            ack,
            flags,
            payload: Map::new(),
        };
        super::codec::validate_envelope(&env).ok()?;
        Some(Inbound { env, body: body? })
    }

    fn sender(&mut self) -> R<Sender> {
        let (mut role, mut id) = (None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "role" => {
                    seen.first(0)?;
                    role = Some(match p.plain_str()? {
                        "scheduler" => Role::Scheduler,
                        "worker" => Role::Worker,
                        _ => return None,
                    });
                }
                "id" => {
                    seen.first(1)?;
                    id = Some(p.string()?);
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(Sender {
            role: role?,
            id: id?,
        })
    }

    fn ack_field(&mut self) -> R<Option<AckField>> {
        if self.null() {
            return Some(None);
        }
        let mut a = AckField::default();
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "for" => {
                    seen.first(0)?;
                    a.for_id = p.opt_string()?;
                }
                "request" => {
                    seen.first(1)?;
                    a.request = p.opt_bool()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(Some(a))
    }

    // ------------------------------------------------------------------------------------
    // payloads

    fn body(&mut self, ft: FrameType) -> R<Body> {
        Some(match ft {
            FrameType::Ack => Body::Ack(self.ack_payload()?),
            FrameType::Heartbeat => Body::Heartbeat(valid(self.heartbeat()?)?),
            FrameType::Result => Body::Result(Box::new(valid(self.result()?)?)),
            FrameType::Feedback => Body::Feedback(Box::new(valid(self.feedback()?)?)),
            FrameType::Dispatch => Body::Dispatch(Box::new(valid(self.dispatch()?)?)),
            FrameType::Register => Body::Register(valid(self.register()?)?),
            FrameType::Handshake => Body::Handshake(valid(self.handshake()?)?),
            FrameType::CommandError => Body::CommandError(valid(self.command_error()?)?),
            FrameType::PkgEvent => Body::PkgEvent(valid(self.pkg_event()?)?),
            _ => return None,
        })
    }

    /// Read leniently by serde (unknown keys ignored); a mistyped known key is left to it.
    fn ack_payload(&mut self) -> R<AckPayload> {
        let mut a = AckPayload {
            ok: None,
            for_id: None,
        };
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "ok" => {
                    seen.first(0)?;
                    a.ok = p.opt_bool()?;
                }
                "for" => {
                    seen.first(1)?;
                    a.for_id = p.opt_string()?;
                }
                _ => {
                    p.value()?;
                }
            }
            Some(())
        })?;
        Some(a)
    }

    fn heartbeat(&mut self) -> R<HeartbeatPayload> {
        let (mut healthy, mut metrics, mut packages) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "healthy" => {
                    seen.first(0)?;
                    healthy = Some(p.bool()?);
                }
                "metrics" => {
                    seen.first(1)?;
                    metrics = Some(p.map()?);
                }
                "packages" => {
                    seen.first(2)?;
                    packages = if p.null() {
                        None
                    } else {
                        let mut drift = None;
                        let mut seen = Seen(0);
                        p.object(|p, k| {
                            (k == "drift").then_some(())?;
                            seen.first(0)?;
                            drift = p.opt_bool()?;
                            Some(())
                        })?;
                        Some(HeartbeatPackages { drift })
                    };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(HeartbeatPayload {
            healthy: healthy?,
            metrics: metrics?,
            packages,
        })
    }

    fn result(&mut self) -> R<ResultPayload> {
        let (mut run_id, mut task_id, mut status, mut result) = (None, None, None, None);
        let (mut duration_ms, mut metadata, mut error) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "run_id" => {
                    seen.first(0)?;
                    run_id = Some(p.string()?);
                }
                "task_id" => {
                    seen.first(1)?;
                    task_id = Some(p.string()?);
                }
                "status" => {
                    seen.first(2)?;
                    status = Some(match p.plain_str()? {
                        "SUCCEEDED" => TaskStatus::Succeeded,
                        "FAILED" => TaskStatus::Failed,
                        "SKIPPED" => TaskStatus::Skipped,
                        "CANCELLED" => TaskStatus::Cancelled,
                        _ => return None,
                    });
                }
                "result" => {
                    seen.first(3)?;
                    result = Some(p.map()?);
                }
                "duration_ms" => {
                    seen.first(4)?;
                    duration_ms = p.opt_u64()?;
                }
                "metadata" => {
                    seen.first(5)?;
                    metadata = p.opt_map()?;
                }
                // Artifacts are rare on the wire; serde reads them.
                "artifacts" => {
                    seen.first(6)?;
                    if !p.null() {
                        return None;
                    }
                }
                "error" => {
                    seen.first(7)?;
                    error = if p.null() {
                        None
                    } else {
                        Some(p.result_error()?)
                    };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ResultPayload {
            run_id: run_id?,
            task_id: task_id?,
            status: status?,
            result: result?,
            duration_ms,
            metadata,
            artifacts: None,
            error,
        })
    }

    fn result_error(&mut self) -> R<ResultError> {
        let (mut code, mut message, mut remediation) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "code" => {
                    seen.first(0)?;
                    code = Some(p.string()?);
                }
                "message" => {
                    seen.first(1)?;
                    message = Some(p.string()?);
                }
                "remediation" => {
                    seen.first(2)?;
                    remediation = p.opt_string()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ResultError {
            code: code?,
            message: message?,
            remediation,
        })
    }

    fn feedback(&mut self) -> R<FeedbackPayload> {
        let mut f = FeedbackPayload {
            run_id: String::new(),
            task_id: String::new(),
            stage: None,
            progress: None,
            message: None,
            chunks: None,
            metrics: None,
            metadata: None,
        };
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "run_id" => {
                    seen.first(0)?;
                    f.run_id = p.string()?;
                }
                "task_id" => {
                    seen.first(1)?;
                    f.task_id = p.string()?;
                }
                "stage" => {
                    seen.first(2)?;
                    f.stage = p.opt_string()?;
                }
                "progress" => {
                    seen.first(3)?;
                    f.progress = p.opt_f64()?;
                }
                "message" => {
                    seen.first(4)?;
                    f.message = p.opt_string()?;
                }
                "chunks" => {
                    seen.first(5)?;
                    f.chunks = if p.null() {
                        None
                    } else {
                        Some(p.array(P::chunk)?)
                    };
                }
                "metrics" => {
                    seen.first(6)?;
                    f.metrics = if p.null() {
                        None
                    } else {
                        let mut m = BTreeMap::new();
                        p.object(|p, k| {
                            let v = p.f64()?;
                            m.insert(k.to_string(), v).is_none().then_some(())
                        })?;
                        Some(m)
                    };
                }
                "metadata" => {
                    seen.first(7)?;
                    f.metadata = p.opt_map()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        // Both ids are required.
        (seen.0 & 0b11 == 0b11).then_some(f)
    }

    fn chunk(&mut self) -> R<FeedbackChunk> {
        let mut c = FeedbackChunk {
            channel: FeedbackChannel::Custom,
            index: None,
            mime_type: None,
            text: None,
            data_base64: None,
            metadata: None,
        };
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "channel" => {
                    seen.first(0)?;
                    c.channel = match p.plain_str()? {
                        "stdout" => FeedbackChannel::Stdout,
                        "stderr" => FeedbackChannel::Stderr,
                        "log" => FeedbackChannel::Log,
                        "llm" => FeedbackChannel::Llm,
                        "metric" => FeedbackChannel::Metric,
                        "custom" => FeedbackChannel::Custom,
                        _ => return None,
                    };
                }
                "index" => {
                    seen.first(1)?;
                    c.index = p.opt_u64()?;
                }
                "mime_type" => {
                    seen.first(2)?;
                    c.mime_type = p.opt_string()?;
                }
                "text" => {
                    seen.first(3)?;
                    c.text = p.opt_string()?;
                }
                "data_base64" => {
                    seen.first(4)?;
                    c.data_base64 = p.opt_string()?;
                }
                "metadata" => {
                    seen.first(5)?;
                    c.metadata = p.opt_map()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        // `channel` is required.
        (seen.0 & 1 == 1).then_some(c)
    }

    fn dispatch(&mut self) -> R<DispatchPayload> {
        let mut s: [Option<String>; 6] = Default::default();
        let (mut parameters, mut constraints) = (None, None);
        let (mut priority, mut concurrency_key) = (None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            let slot = match k {
                "run_id" => 0,
                "task_id" => 1,
                "node_id" => 2,
                "node_type" => 3,
                "package_name" => 4,
                "package_version" => 5,
                "parameters" => {
                    seen.first(6)?;
                    parameters = Some(p.map()?);
                    return Some(());
                }
                "constraints" => {
                    seen.first(7)?;
                    let mut c = Constraints::default();
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        (k == "timeout_ms").then_some(())?;
                        seen.first(0)?;
                        c.timeout_ms = p.opt_u64()?;
                        Some(())
                    })?;
                    constraints = Some(c);
                    return Some(());
                }
                "priority" => {
                    seen.first(8)?;
                    priority = p.opt_i64()?;
                    return Some(());
                }
                "concurrency_key" => {
                    seen.first(9)?;
                    concurrency_key = p.opt_string()?;
                    return Some(());
                }
                // Rare on the wire; serde reads them.
                "resource_refs" | "affinity" => {
                    seen.first(if k == "affinity" { 10 } else { 11 })?;
                    return p.null().then_some(());
                }
                _ => return None,
            };
            seen.first(slot as u32 + 12)?;
            s[slot] = Some(p.string()?);
            Some(())
        })?;
        let [run_id, task_id, node_id, node_type, package_name, package_version] = s;
        Some(DispatchPayload {
            run_id: run_id?,
            task_id: task_id?,
            node_id: node_id?,
            node_type: node_type?,
            package_name: package_name?,
            package_version: package_version?,
            parameters: parameters?,
            constraints: constraints?,
            priority,
            concurrency_key,
            resource_refs: None,
            affinity: None,
        })
    }
}

impl P<'_> {
    fn u32(&mut self) -> R<u32> {
        u32::try_from(self.u64()?).ok()
    }

    fn strings(&mut self) -> R<Vec<String>> {
        self.array(P::string)
    }

    fn register(&mut self) -> R<RegisterPayload> {
        let (mut capabilities, mut packages, mut channels) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "capabilities" => {
                    seen.first(0)?;
                    capabilities = Some(p.capabilities()?);
                }
                "packages" => {
                    seen.first(1)?;
                    packages = Some(p.array(P::package_entry)?);
                }
                "channels" => {
                    seen.first(2)?;
                    channels = if p.null() { None } else { Some(p.strings()?) };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(RegisterPayload {
            capabilities: capabilities?,
            packages: packages?,
            channels,
        })
    }

    fn capabilities(&mut self) -> R<Capabilities> {
        let (mut concurrency, mut runtimes, mut features) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "concurrency" => {
                    seen.first(0)?;
                    let (mut max_parallel, mut per_node_limits) = (None, None);
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        match k {
                            "max_parallel" => {
                                seen.first(0)?;
                                max_parallel = Some(p.u32()?);
                            }
                            "per_node_limits" => {
                                seen.first(1)?;
                                per_node_limits = if p.null() {
                                    None
                                } else {
                                    let mut m = BTreeMap::new();
                                    p.object(|p, k| {
                                        let v = p.u32()?;
                                        m.insert(k.to_string(), v).is_none().then_some(())
                                    })?;
                                    Some(m)
                                };
                            }
                            _ => return None,
                        }
                        Some(())
                    })?;
                    concurrency = Some(Concurrency {
                        max_parallel: max_parallel?,
                        per_node_limits,
                    });
                }
                "runtimes" => {
                    seen.first(1)?;
                    runtimes = Some(p.strings()?);
                }
                "features" => {
                    seen.first(2)?;
                    features = Some(p.strings()?);
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(Capabilities {
            concurrency: concurrency?,
            runtimes: runtimes?,
            features: features?,
        })
    }

    fn package_entry(&mut self) -> R<PackageEntry> {
        let (mut name, mut version, mut status) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "name" => {
                    seen.first(0)?;
                    name = Some(p.string()?);
                }
                "version" => {
                    seen.first(1)?;
                    version = Some(p.string()?);
                }
                "status" => {
                    seen.first(2)?;
                    status = Some(match p.plain_str()? {
                        "installed" => PackageStatus::Installed,
                        "missing" => PackageStatus::Missing,
                        "failed" => PackageStatus::Failed,
                        _ => return None,
                    });
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PackageEntry {
            name: name?,
            version: version?,
            status: status?,
        })
    }

    fn handshake(&mut self) -> R<HandshakePayload> {
        let (mut protocol, mut auth, mut worker) = (None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "protocol" => {
                    seen.first(0)?;
                    protocol = Some(p.u32()?);
                }
                "auth" => {
                    seen.first(1)?;
                    let (mut mode, mut token, mut fingerprint) = (None, None, None);
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        match k {
                            "mode" => {
                                seen.first(0)?;
                                mode = Some(match p.plain_str()? {
                                    "token" => AuthMode::Token,
                                    "mtls" => AuthMode::Mtls,
                                    _ => return None,
                                });
                            }
                            "token" => {
                                seen.first(1)?;
                                token = p.opt_string()?;
                            }
                            "fingerprint" => {
                                seen.first(2)?;
                                fingerprint = p.opt_string()?;
                            }
                            _ => return None,
                        }
                        Some(())
                    })?;
                    auth = Some(Auth {
                        mode: mode?,
                        token,
                        fingerprint,
                    });
                }
                "worker" => {
                    seen.first(2)?;
                    let mut s: [Option<String>; 3] = Default::default();
                    let mut seen = Seen(0);
                    p.object(|p, k| {
                        let i = match k {
                            "id" => 0,
                            "version" => 1,
                            "hostname" => 2,
                            _ => return None,
                        };
                        seen.first(i as u32)?;
                        s[i] = Some(p.string()?);
                        Some(())
                    })?;
                    let [id, version, hostname] = s;
                    worker = Some(WorkerInfo {
                        id: id?,
                        version: version?,
                        hostname: hostname?,
                    });
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(HandshakePayload {
            protocol: protocol?,
            auth: auth?,
            worker: worker?,
        })
    }

    fn command_error(&mut self) -> R<ErrorPayload> {
        let (mut code, mut message, mut remediation, mut context) = (None, None, None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "code" => {
                    seen.first(0)?;
                    code = Some(p.string()?);
                }
                "message" => {
                    seen.first(1)?;
                    message = Some(p.string()?);
                }
                "remediation" => {
                    seen.first(2)?;
                    remediation = p.opt_string()?;
                }
                "context" => {
                    seen.first(3)?;
                    context = if p.null() {
                        None
                    } else {
                        let mut c = ErrorContext {
                            where_: None,
                            details: None,
                        };
                        let mut seen = Seen(0);
                        p.object(|p, k| {
                            match k {
                                "where" => {
                                    seen.first(0)?;
                                    c.where_ = p.opt_string()?;
                                }
                                "details" => {
                                    seen.first(1)?;
                                    c.details = p.opt_map()?;
                                }
                                _ => return None,
                            }
                            Some(())
                        })?;
                        Some(c)
                    };
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ErrorPayload {
            code: code?,
            message: message?,
            remediation,
            context,
        })
    }

    fn pkg_event(&mut self) -> R<PkgEventPayload> {
        let (mut name, mut version, mut status) = (None, None, None);
        let (mut log_url, mut details) = (None, None);
        let mut seen = Seen(0);
        self.object(|p, k| {
            match k {
                "name" => {
                    seen.first(0)?;
                    name = Some(p.string()?);
                }
                "version" => {
                    seen.first(1)?;
                    version = Some(p.string()?);
                }
                "status" => {
                    seen.first(2)?;
                    status = Some(match p.plain_str()? {
                        "installed" => PkgEventStatus::Installed,
                        "failed" => PkgEventStatus::Failed,
                        _ => return None,
                    });
                }
                "log_url" => {
                    seen.first(3)?;
                    log_url = p.opt_string()?;
                }
                "details" => {
                    seen.first(4)?;
                    details = p.opt_map()?;
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(PkgEventPayload {
            name: name?,
            version: version?,
            status: status?,
            log_url,
            details,
        })
    }
}

/// The payload if it meets the constraints serde cannot express; else serde explains.
fn valid<T: Validate>(t: T) -> R<T> {
    t.validate().ok().map(|_| t)
}

#[cfg(test)]
mod tests {
    use super::super::codec::{decode as decode_any, decode_serde, DEFAULT_MAX_FRAME_BYTES};

    const HB: &str = r#"{"type":"heartbeat","id":"h1","ts":"2025-11-03T13:20:00.148085+00:00","seq":7,"tenant":"default","sender":{"role":"worker","id":"w1"},"payload":{"healthy":true,"metrics":{"inflight":0,"outbox":0}}}"#;
    const RES: &str = r#"{"type":"result","id":"r1","ts":"2025-11-03T13:20:00Z","corr":"n1","tenant":"default","sender":{"role":"worker","id":"w1"},"ack":{"request":true},"payload":{"run_id":"r","task_id":"n1","status":"SUCCEEDED","result":{"node":"n1"},"duration_ms":12}}"#;

    /// Each case once through `decode` (fast path first) and once through serde alone: the
    /// answers must be identical, and the first group must take the fast path.
    #[test]
    fn tricky_texts_get_serde_answers() {
        let fast_ok = [
            HB.to_string(),
            RES.to_string(),
            HB.replace(',', " ,\n\t").replace("\":", "\" :\r "),
            HB.replace(
                "\"outbox\":0",
                "\"outbox\":-0,\"f\":1.5e3,\"big\":18446744073709551616",
            ),
            RES.replace("\"n1\"}", "\"n\\u00e9\\n\"}"),
            RES.replace("\"duration_ms\":12", "\"duration_ms\":null,\"error\":null"),
            RES.replace("\"node\":\"n1\"", "\"node\":\"NaN Infinity\""),
        ];
        for t in &fast_ok {
            assert!(super::decode(t).is_some(), "fast path declined {t}");
            assert_eq!(
                super::decode(t).ok_or(()),
                decode_serde(t, usize::MAX).map_err(|_| ())
            );
        }
        let nested = format!("{}{}", "[".repeat(200), "]".repeat(200));
        let others = [
            HB.replace("\"seq\":7", "\"seq\":07"),
            HB.replace("\"seq\":7", "\"seq\":-7"),
            HB.replace("\"seq\":7", "\"seq\":7.0"),
            HB.replace("\"seq\":7", "\"seq\":7e0"),
            HB.replace("\"seq\":7", "\"seq\":18446744073709551616"),
            HB.replace("\"seq\":7", "\"seq\":7,\"seq\":8"),
            HB.replace("\"outbox\":0", "\"outbox\":0,\"outbox\":1"),
            HB.replace("\"outbox\":0", "\"outbox\":01"),
            HB.replace("\"outbox\":0", "\"outbox\":1E400"),
            HB.replace("\"outbox\":0", &format!("\"outbox\":{nested}")),
            HB.replace("\"outbox\":0", "\"outbox\":NaN"),
            HB.replace("\"outbox\":0", "\"outbox\":-Infinity"),
            HB.replace("\"outbox\":0", "\"outbox\":[Infinity]"),
            HB.replace("\"healthy\":true", "\"healthy\":NaN"),
            HB.replace("\"healthy\"", "\"heal\\u0074hy\""),
            HB.replace("\"healthy\":true", "\"healthy\":null"),
            HB.replace("\"healthy\":true", "\"healthy\":1"),
            HB.replace("\"inflight\":0", "\"inflight\":-1"),
            HB.replace("\"worker\"", "\"Worker\""),
            HB.replace("\"w1\"", "\"\""),
            HB.replace("\"w1\"", "\"w\u{1}\""),
            HB.replace("\"tenant\"", "\"x\":1,\"tenant\""),
            HB.replace("}}}", "}}} x"),
            HB.replace("}}}", "}},}"),
            HB.replace("}}}", "}}"),
            HB.replace("2025-11-03T13:20:00.148085+00:00", "2025-11-03T13:20:00"),
            RES.replace("SUCCEEDED", "succeeded"),
            RES.replace("SUCCEEDED", "SUCC\\u0045EDED"),
            RES.replace("\"duration_ms\":12", "\"duration_ms\":12,\"artifacts\":[]"),
            RES.replace(
                "\"ack\":{\"request\":true}",
                "\"ack\":{\"request\":true,\"for\":null,\"x\":1}",
            ),
            RES.replace("\"run_id\":\"r\"", "\"run_id\":\"\""),
            RES.replace("{\"type\":\"result\",", "{")
                .replace("\"payload\"", "\"type\":\"result\",\"payload\""),
            RES.replace("\"result\"", "\"unknown.type\""),
        ];
        for t in &others {
            assert_eq!(
                decode_any(t, DEFAULT_MAX_FRAME_BYTES),
                decode_serde(t, DEFAULT_MAX_FRAME_BYTES),
                "{t}"
            );
        }
    }
}
