//! Strict decoding and encoding of v1 frames. Decoding is written for hostile input: any
//! byte string yields either a fully typed frame or a [`DecodeError`] that names the field
//! and reason, plus whatever identifiers could be recovered so the caller can still ack the
//! frame and answer with an error (spec R12). It never panics.

use super::envelope::Envelope;
use super::payloads::*;
use super::types::FrameType;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

/// Default upper bound on an inbound frame, as uvicorn's `ws_max_size` (16 MiB).
pub const DEFAULT_MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// A decoded, fully validated frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Inbound {
    /// The envelope; its `payload` has been moved into `body` (empty here) unless the type is
    /// unknown, in which case it is kept as is.
    pub env: Envelope,
    pub body: Body,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Handshake(HandshakePayload),
    Register(RegisterPayload),
    Heartbeat(HeartbeatPayload),
    Ack(AckPayload),
    Dispatch(Box<DispatchPayload>),
    Result(Box<ResultPayload>),
    Feedback(Box<FeedbackPayload>),
    CommandError(ErrorPayload),
    PkgEvent(PkgEventPayload),
    PkgInstall(PkgInstallPayload),
    PkgUninstall(PkgUninstallPayload),
    /// A type this dialect does not know. The scheduler logs and ignores these.
    Unknown(String),
}

impl Body {
    pub fn frame_type(&self) -> Option<FrameType> {
        Some(match self {
            Body::Handshake(_) => FrameType::Handshake,
            Body::Register(_) => FrameType::Register,
            Body::Heartbeat(_) => FrameType::Heartbeat,
            Body::Ack(_) => FrameType::Ack,
            Body::Dispatch(_) => FrameType::Dispatch,
            Body::Result(_) => FrameType::Result,
            Body::Feedback(_) => FrameType::Feedback,
            Body::CommandError(_) => FrameType::CommandError,
            Body::PkgEvent(_) => FrameType::PkgEvent,
            Body::PkgInstall(_) => FrameType::PkgInstall,
            Body::PkgUninstall(_) => FrameType::PkgUninstall,
            Body::Unknown(_) => return None,
        })
    }
}

/// What could be salvaged from a frame that failed to decode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    pub id: Option<String>,
    pub kind: Option<String>,
    pub corr: Option<String>,
    pub seq: Option<u64>,
    pub ack_request: bool,
    pub run_id: Option<String>,
    pub task_id: Option<String>,
    pub node_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeErrorKind {
    #[error("frame of {len} bytes exceeds the {max}-byte limit (config max_frame_bytes)")]
    TooLarge { len: usize, max: usize },
    #[error("binary frame of {len} bytes; the protocol carries UTF-8 JSON text frames only")]
    Binary { len: usize },
    #[error("invalid JSON: {0}")]
    NotJson(String),
    #[error("frame is JSON but not an object")]
    NotObject,
    #[error("envelope field `{field}` {reason}")]
    Envelope { field: String, reason: String },
    #[error("`{frame_type}` payload field `{field}` {reason}")]
    Payload {
        frame_type: String,
        field: String,
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct DecodeError {
    pub kind: DecodeErrorKind,
    pub recovered: Recovered,
}

impl DecodeError {
    /// A short machine-friendly field name for logs and error details.
    pub fn field(&self) -> Option<&str> {
        match &self.kind {
            DecodeErrorKind::Envelope { field, .. } | DecodeErrorKind::Payload { field, .. } => {
                Some(field)
            }
            _ => None,
        }
    }
}

/// Decodes one text frame.
/// (Its error is large on purpose: it carries the recovered ids; see `decode_serde`. The
/// allow covers the serde fallback closure too, which returns the same `Result`.)
#[allow(clippy::result_large_err)]
pub fn decode(text: &str, max_len: usize) -> Result<Inbound, DecodeError> {
    // The fast path reads no bare `NaN`/`Infinity` token (it leaves such text to serde), so
    // on text it accepts `tolerate_non_finite` would change nothing: it is skipped.
    if text.len() <= max_len {
        // The fast path's frame is built in the place this returns it in.
        return super::fast_decode::decode_or(text, || decode_serde(text, max_len));
    }
    decode_serde(text, max_len)
}

/// What [`decode_light`] reads from a frame that needs no owned decode: its type and the
/// one envelope field the machines act on, borrowed from the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Light<'a> {
    /// An `ack` frame; `for_id` is its envelope's `ack.for`.
    Ack { for_id: &'a str },
    /// A `heartbeat` that asks for no ack.
    Heartbeat,
}

/// The cheap exact path for the commonest frames: `Some` only when `decode(text, max_len)`
/// accepts `text` as the frame it describes (an `ack` with this `ack.for`, or a heartbeat
/// without an ack request), read from the layout both encoders write without building an
/// [`Inbound`]. `None` says nothing about the text: decode it in full.
pub fn decode_light(text: &str, max_len: usize) -> Option<Light<'_>> {
    if text.len() > max_len {
        return None;
    }
    super::fast_decode::light::decode(text)
}

/// The serde decoder: the reference for what is accepted, and the one that explains every
/// rejection. [`decode`] runs it whenever its hand-written fast path is not sure.
/// (The same signature as `decode`, whose large error carries the recovered ids.)
#[allow(clippy::result_large_err)]
pub fn decode_serde(text: &str, max_len: usize) -> Result<Inbound, DecodeError> {
    if text.len() > max_len {
        return Err(DecodeError {
            kind: DecodeErrorKind::TooLarge {
                len: text.len(),
                max: max_len,
            },
            recovered: recover_from_text(text),
        });
    }
    let text = tolerate_non_finite(text);
    // Happy path: the envelope straight from the text, the payload kept as a borrowed raw
    // slice and typed straight from it (no intermediate JSON map), no path tracking. Any
    // failure is decoded again, slowly, to name the field and recover ids for the answer.
    let raw: RawEnvelope<'_> = match serde_json::from_str(&text) {
        Ok(r) => r,
        Err(_) => return Err(slow_failure(&text)),
    };
    let kind = raw.kind;
    let mut env = Envelope {
        kind,
        id: raw.id,
        ts: raw.ts,
        corr: raw.corr,
        seq: raw.seq,
        tenant: raw.tenant,
        sender: raw.sender,
        ack: raw.ack,
        flags: raw.flags,
        payload: Map::new(),
    };
    let payload = raw.payload.get();
    if !payload.trim_start().starts_with('{') {
        return Err(slow_failure(&text));
    }
    if let Err(v) = validate_envelope(&env) {
        return Err(DecodeError {
            kind: DecodeErrorKind::Envelope {
                field: v.field,
                reason: v.reason,
            },
            recovered: recover_from_envelope(&env, payload),
        });
    }
    let Some(ft) = FrameType::parse(&env.kind) else {
        env.payload = serde_json::from_str(payload).unwrap_or_default();
        let kind = env.kind.clone();
        return Ok(Inbound {
            env,
            body: Body::Unknown(kind),
        });
    };
    match typed_body(ft, payload) {
        Ok(body) => Ok(Inbound { env, body }),
        Err(v) => Err(DecodeError {
            kind: DecodeErrorKind::Payload {
                frame_type: ft.to_string(),
                field: v.field,
                reason: v.reason,
            },
            recovered: recover_from_envelope(&env, payload),
        }),
    }
}

/// The envelope as decoded on the fast path: identical fields and strictness to
/// [`Envelope`], with the payload left as raw JSON text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEnvelope<'a> {
    #[serde(rename = "type")]
    kind: String,
    id: String,
    ts: String,
    #[serde(default)]
    corr: Option<String>,
    #[serde(default)]
    seq: Option<u64>,
    tenant: String,
    sender: super::envelope::Sender,
    #[serde(default)]
    ack: Option<super::envelope::AckField>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    #[serde(borrow)]
    payload: &'a serde_json::value::RawValue,
}

/// Explains a frame that failed the fast path: not JSON, not an object, or the envelope
/// field that is missing, unknown or mistyped (with its path).
fn slow_failure(text: &str) -> DecodeError {
    let mut de = serde_json::Deserializer::from_str(text);
    match serde_path_to_error::deserialize::<_, Envelope>(&mut de) {
        Err(e) => classify_failure(text, e),
        Ok(_) => {
            let reason = de
                .end()
                .err()
                .map(|e| e.to_string())
                .unwrap_or_else(|| "not a valid envelope".into());
            DecodeError {
                kind: DecodeErrorKind::NotJson(reason),
                recovered: recover_from_text(text),
            }
        }
    }
}

/// Why the text did not deserialize into an envelope: not JSON, not an object, or a field
/// that is missing, unknown or mistyped. Re-parses leniently to recover ids.
fn classify_failure(text: &str, e: serde_path_to_error::Error<serde_json::Error>) -> DecodeError {
    match serde_json::from_str::<Value>(text) {
        Err(je) => DecodeError {
            kind: DecodeErrorKind::NotJson(je.to_string()),
            recovered: recover_from_text(text),
        },
        Ok(Value::Object(obj)) => DecodeError {
            kind: DecodeErrorKind::Envelope {
                field: path_or(&e, "envelope"),
                reason: serde_reason(e.inner()),
            },
            recovered: recover_from_object(&obj),
        },
        Ok(_) => DecodeError {
            kind: DecodeErrorKind::NotObject,
            recovered: Recovered::default(),
        },
    }
}

fn recover_from_envelope(env: &Envelope, payload: &str) -> Recovered {
    let payload: Map<String, Value> = serde_json::from_str(payload).unwrap_or_default();
    let (run_id, task_id, node_id) = payload_ids(Some(&payload));
    Recovered {
        id: Some(env.id.clone()).filter(|s| !s.is_empty()),
        kind: Some(env.kind.clone()).filter(|s| !s.is_empty()),
        corr: env.corr.clone().filter(|s| !s.is_empty()),
        seq: env.seq,
        ack_request: env.ack_requested(),
        run_id,
        task_id,
        node_id,
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `run_id`, `task_id` and `node_id` of a payload, for the error answer to a bad frame.
fn payload_ids(
    payload: Option<&Map<String, Value>>,
) -> (Option<String>, Option<String>, Option<String>) {
    let get = |k: &str| non_empty_str(payload.and_then(|p| p.get(k)));
    (get("run_id"), get("task_id"), get("node_id"))
}

fn typed_body(ft: FrameType, v: &str) -> Result<Body, Violation> {
    Ok(match ft {
        FrameType::Handshake => Body::Handshake(typed(v)?),
        FrameType::Register => Body::Register(typed(v)?),
        FrameType::Heartbeat => Body::Heartbeat(typed(v)?),
        FrameType::Ack => Body::Ack(serde_json::from_str(v).unwrap_or(AckPayload {
            ok: None,
            for_id: None,
        })),
        FrameType::Dispatch => Body::Dispatch(Box::new(typed(v)?)),
        FrameType::Result => Body::Result(Box::new(typed(v)?)),
        FrameType::Feedback => Body::Feedback(Box::new(typed(v)?)),
        FrameType::CommandError => Body::CommandError(typed(v)?),
        FrameType::PkgEvent => Body::PkgEvent(typed(v)?),
        FrameType::PkgInstall => Body::PkgInstall(typed(v)?),
        FrameType::PkgUninstall => Body::PkgUninstall(typed(v)?),
    })
}

fn typed<T: DeserializeOwned + Validate>(v: &str) -> Result<T, Violation> {
    let t: T = match serde_json::from_str(v) {
        Ok(t) => t,
        Err(_) => {
            let mut de = serde_json::Deserializer::from_str(v);
            let e = match serde_path_to_error::deserialize::<_, T>(&mut de) {
                Ok(_) => {
                    return Err(Violation {
                        field: "payload".into(),
                        reason: "invalid payload".into(),
                    })
                }
                Err(e) => e,
            };
            return Err(Violation {
                field: path_or(&e, "payload"),
                reason: serde_reason(e.inner()),
            });
        }
    };
    t.validate()?;
    Ok(t)
}

fn path_or(e: &serde_path_to_error::Error<serde_json::Error>, whole: &str) -> String {
    let p = e.path().to_string();
    if p == "." || p.is_empty() {
        whole.to_string()
    } else {
        p
    }
}

/// serde's messages carry "at line 1 column N" for in-memory values; drop that noise.
fn serde_reason(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

pub(super) fn validate_envelope(env: &Envelope) -> Result<(), Violation> {
    if let Some(v) = empty_head(&env.kind, &env.id) {
        return Err(v);
    }
    if let Err(r) = crate::time::validate_rfc3339_aware(&env.ts) {
        return Err(Violation {
            field: "ts".into(),
            reason: format!("is not an RFC 3339 time with offset: {r}"),
        });
    }
    empty_tail(&env.tenant, &env.sender.id, env.flags.as_deref()).map_or(Ok(()), Err)
}

/// True when every rule of [`validate_envelope`] but the one on `ts` holds for these
/// fields: for the fast path, which validated `ts` as it read it, only needs the yes or no,
/// and checks before it builds the envelope.
#[inline]
pub(crate) fn envelope_fields_ok(
    kind: &str,
    id: &str,
    tenant: &str,
    sender_id: &str,
    flags: Option<&[String]>,
) -> bool {
    empty_head(kind, id).is_none() && empty_tail(tenant, sender_id, flags).is_none()
}

/// Cold and out of line, so the rules below inline to plain tests where only the yes or no
/// is wanted (`envelope_fields_ok`, on every decoded frame).
#[cold]
#[inline(never)]
fn empty_violation(field: &str, reason: &str) -> Violation {
    Violation {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The envelope rules checked before `ts`, in the order they are reported.
#[inline]
fn empty_head(kind: &str, id: &str) -> Option<Violation> {
    if kind.is_empty() {
        return Some(empty_violation("type", "must be a non-empty string"));
    }
    if id.is_empty() {
        return Some(empty_violation("id", "must be a non-empty string"));
    }
    None
}

/// The envelope rules checked after `ts`, in the order they are reported.
#[inline]
fn empty_tail(tenant: &str, sender_id: &str, flags: Option<&[String]>) -> Option<Violation> {
    if tenant.is_empty() {
        return Some(empty_violation("tenant", "must be a non-empty string"));
    }
    if sender_id.is_empty() {
        return Some(empty_violation("sender.id", "must be a non-empty string"));
    }
    if flags.into_iter().flatten().any(String::is_empty) {
        return Some(empty_violation("flags", "items must be non-empty strings"));
    }
    None
}

/// Python's `json.dumps` may emit the bare tokens `NaN`, `Infinity` and `-Infinity`, which
/// are not JSON. Outside strings they are replaced by `null` so such a frame can still be read.
pub fn tolerate_non_finite(text: &str) -> Cow<'_, str> {
    if !(text.contains("NaN") || text.contains("Infinity")) {
        return Cow::Borrowed(text);
    }
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut in_str = false;
    let mut last = 0;
    while i < b.len() {
        let c = b[i];
        if in_str {
            if c == b'\\' {
                i += 2;
                continue;
            }
            if c == b'"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_str = true;
            i += 1;
            continue;
        }
        let token = [&b"-Infinity"[..], b"Infinity", b"NaN"]
            .into_iter()
            .find(|t| b[i..].starts_with(t));
        if let Some(t) = token {
            out.push_str(&text[last..i]);
            out.push_str("null");
            i += t.len();
            last = i;
            continue;
        }
        i += 1;
    }
    out.push_str(&text[last.min(text.len())..]);
    Cow::Owned(out)
}

fn recover_from_object(obj: &Map<String, Value>) -> Recovered {
    let s = |k: &str| non_empty_str(obj.get(k));
    let (run_id, task_id, node_id) = payload_ids(obj.get("payload").and_then(Value::as_object));
    Recovered {
        id: s("id"),
        kind: s("type"),
        corr: s("corr"),
        seq: obj.get("seq").and_then(Value::as_u64),
        ack_request: obj
            .get("ack")
            .and_then(|a| a.get("request"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        run_id,
        task_id,
        node_id,
    }
}

/// Best-effort recovery from text that is not valid JSON (or too large to parse): the first
/// occurrence of each key whose value is a plain string.
fn recover_from_text(text: &str) -> Recovered {
    // Only look at the head: envelope keys come first in frames the scheduler sends.
    let head = match text.char_indices().nth(64 * 1024) {
        Some((i, _)) => &text[..i],
        None => text,
    };
    let seq = find_raw_field(head, "seq").and_then(|raw| {
        let digits: String = raw.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    });
    Recovered {
        id: find_string_field(head, "id"),
        kind: find_string_field(head, "type"),
        corr: find_string_field(head, "corr"),
        seq,
        ack_request: find_raw_field(head, "request").is_some_and(|r| r.starts_with("true")),
        run_id: find_string_field(head, "run_id"),
        task_id: find_string_field(head, "task_id"),
        node_id: find_string_field(head, "node_id"),
    }
}

fn find_raw_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pat = format!("\"{key}\"");
    let mut from = 0;
    while let Some(pos) = text[from..].find(&pat) {
        let after = from + pos + pat.len();
        let rest = text[after..].trim_start();
        if let Some(rest) = rest.strip_prefix(':') {
            return Some(rest.trim_start());
        }
        from = after;
    }
    None
}

fn find_string_field(text: &str, key: &str) -> Option<String> {
    let raw = find_raw_field(text, key)?.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return (!out.is_empty()).then_some(out),
            '\\' => {
                // Keep it simple: an escaped identifier is unusual; take the escaped char as is.
                out.push(chars.next()?);
            }
            c if out.len() > 256 => {
                let _ = c;
                return None;
            }
            c => out.push(c),
        }
    }
    None
}

/// Serialises a typed payload into the JSON object an envelope carries.
pub fn payload_map<T: Serialize>(payload: &T) -> Map<String, Value> {
    match serde_json::to_value(payload) {
        Ok(Value::Object(m)) => m,
        // Every payload type is a struct, which serialises to an object; anything else would be
        // a programming error caught by the frame validator tests.
        _ => Map::new(),
    }
}

/// Serialises an envelope to the text of one frame: exactly `serde_json::to_string(env)`
/// (the property tests compare them), written by [`JsonOut`](super::json_out::JsonOut)
/// into one buffer.
pub fn encode(env: &Envelope) -> String {
    use super::envelope::Role;
    let mut buf = String::with_capacity(256);
    let mut o = super::json_out::JsonOut::new(&mut buf);
    o.raw("{\"type\":").str(&env.kind);
    o.raw(",\"id\":").str(&env.id);
    o.raw(",\"ts\":").str(&env.ts);
    if let Some(c) = &env.corr {
        o.raw(",\"corr\":").str(c);
    }
    if let Some(n) = env.seq {
        o.raw(",\"seq\":").u64(n);
    }
    o.raw(",\"tenant\":").str(&env.tenant);
    o.raw(match env.sender.role {
        Role::Scheduler => ",\"sender\":{\"role\":\"scheduler\",\"id\":",
        Role::Worker => ",\"sender\":{\"role\":\"worker\",\"id\":",
    });
    o.str(&env.sender.id).raw("}");
    if let Some(a) = &env.ack {
        o.raw(",\"ack\":{");
        if let Some(f) = &a.for_id {
            o.raw("\"for\":").str(f);
        }
        if let Some(r) = a.request {
            o.raw(if a.for_id.is_some() {
                ",\"request\":"
            } else {
                "\"request\":"
            });
            o.bool(r);
        }
        o.raw("}");
    }
    if let Some(flags) = &env.flags {
        o.raw(",\"flags\":").str_array(flags);
    }
    o.raw(",\"payload\":").map(&env.payload).raw("}");
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISPATCH: &str = r#"{"type": "cmd.dispatch", "id": "d4f7a0c2-0e51-4c55-b6a3-0f9e2a1c7b88", "ts": "2025-11-03T13:21:00.100000+00:00", "corr": "n1", "seq": 1, "tenant": "default", "sender": {"role": "scheduler", "id": "scheduler-control"}, "ack": {"request": true}, "payload": {"run_id": "r1", "task_id": "n1", "node_id": "n1", "node_type": "example.pkg.echo", "package_name": "example.pkg", "package_version": "1.0.0", "parameters": {"message": "hi"}, "constraints": {}, "concurrency_key": "r1:n1"}}"#;

    #[test]
    fn decodes_a_real_dispatch() {
        let f = decode(DISPATCH, DEFAULT_MAX_FRAME_BYTES).unwrap();
        assert!(f.env.ack_requested());
        assert_eq!(f.env.corr.as_deref(), Some("n1"));
        match f.body {
            Body::Dispatch(d) => {
                assert_eq!(d.node_type, "example.pkg.echo");
                assert_eq!(d.concurrency_key.as_deref(), Some("r1:n1"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_extra_envelope_key_naming_it() {
        let t = DISPATCH.replacen("\"tenant\"", "\"bogus\": 1, \"tenant\"", 1);
        let e = decode(&t, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        assert!(e.to_string().contains("bogus"), "{e}");
        assert_eq!(
            e.recovered.id.as_deref(),
            Some("d4f7a0c2-0e51-4c55-b6a3-0f9e2a1c7b88")
        );
        assert!(e.recovered.ack_request);
    }

    #[test]
    fn rejects_extra_payload_key_with_path() {
        let t = DISPATCH.replacen("\"constraints\": {}", "\"constraints\": {\"x\": 1}", 1);
        let e = decode(&t, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        match &e.kind {
            DecodeErrorKind::Payload { field, reason, .. } => {
                assert_eq!(field, "constraints.x");
                assert!(reason.contains("unknown field `x`"), "{reason}");
            }
            k => panic!("{k:?}"),
        }
        assert_eq!(e.recovered.run_id.as_deref(), Some("r1"));
    }

    #[test]
    fn rejects_naive_ts_and_negative_seq() {
        let t = DISPATCH.replace("13:21:00.100000+00:00", "13:21:00.100000");
        assert_eq!(
            decode(&t, DEFAULT_MAX_FRAME_BYTES).unwrap_err().field(),
            Some("ts")
        );
        let t = DISPATCH.replace("\"seq\": 1", "\"seq\": -1");
        assert_eq!(
            decode(&t, DEFAULT_MAX_FRAME_BYTES).unwrap_err().field(),
            Some("seq")
        );
    }

    #[test]
    fn tolerates_python_nan_tokens() {
        let t = DISPATCH.replace(
            "\"message\": \"hi\"",
            "\"message\": NaN, \"x\": -Infinity, \"s\": \"NaN\"",
        );
        let f = decode(&t, DEFAULT_MAX_FRAME_BYTES).unwrap();
        let Body::Dispatch(d) = f.body else { panic!() };
        assert_eq!(d.parameters["message"], Value::Null);
        assert_eq!(d.parameters["x"], Value::Null);
        assert_eq!(d.parameters["s"], Value::String("NaN".into()));
    }

    #[test]
    fn recovers_ids_from_broken_json() {
        let t = &DISPATCH[..DISPATCH.len() - 20];
        let e = decode(t, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::NotJson(_)));
        assert_eq!(
            e.recovered.id.as_deref(),
            Some("d4f7a0c2-0e51-4c55-b6a3-0f9e2a1c7b88")
        );
        assert_eq!(e.recovered.kind.as_deref(), Some("cmd.dispatch"));
        assert_eq!(e.recovered.corr.as_deref(), Some("n1"));
        assert_eq!(e.recovered.seq, Some(1));
        assert!(e.recovered.ack_request);
        assert_eq!(e.recovered.run_id.as_deref(), Some("r1"));
    }

    #[test]
    fn too_large_is_rejected_before_parsing() {
        let e = decode(DISPATCH, 100).unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::TooLarge { max: 100, .. }));
        assert!(e.recovered.id.is_some());
    }

    #[test]
    fn unknown_type_is_not_an_error() {
        let t = DISPATCH.replace("cmd.dispatch", "cmd.drain");
        let f = decode(&t, DEFAULT_MAX_FRAME_BYTES).unwrap();
        assert_eq!(f.body, Body::Unknown("cmd.drain".into()));
        assert!(!f.env.payload.is_empty());
    }

    #[test]
    fn lower_case_status_is_rejected() {
        let t = r#"{"type":"result","id":"x","ts":"2025-11-03T13:21:00Z","tenant":"default","sender":{"role":"worker","id":"w"},"payload":{"run_id":"r","task_id":"t","status":"succeeded","result":{}}}"#;
        let e = decode(t, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        assert_eq!(e.field(), Some("status"));
    }

    #[test]
    fn garbage_never_panics() {
        for t in [
            "",
            "[]",
            "null",
            "{",
            "{\"id\":",
            "\"\\",
            "{\"type\":1}",
            "NaN",
            "{\"id\":\"\\",
        ] {
            let _ = decode(t, DEFAULT_MAX_FRAME_BYTES);
        }
    }
}
