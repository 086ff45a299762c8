//! Property tests of the strict v1 codec: generated frames of every type round-trip through
//! `encode`/`decode`; the decoder never panics on arbitrary or mutated input; an extra key or
//! a mistyped value anywhere strict is rejected with an error naming the field; and
//! `tolerate_non_finite` never changes text inside JSON strings.

mod common;

use astra_core::time::format_rfc3339_micros;
use astra_core::v1::codec::{
    decode, encode, payload_map, tolerate_non_finite, Body, DecodeErrorKind,
    DEFAULT_MAX_FRAME_BYTES,
};
use astra_core::v1::envelope::{AckField, Envelope, Role, Sender};
use astra_core::v1::payloads::*;
use astra_core::v1::types::FrameType;
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

// ------------------------------------------------------------------------------------------
// strategies

/// Any non-empty string, including quotes, backslashes, control and non-ASCII characters.
fn s() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9_.:-]{1,12}",
        1 => "\\PC{1,10}",
        1 => "[\"\\\\\u{0}-\u{1f}é☃😀]{1,6}",
    ]
}

fn os() -> impl Strategy<Value = Option<String>> {
    prop::option::of(s())
}

fn ts() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..4_102_444_800_000_000).prop_map(format_rfc3339_micros),
        Just("2025-11-03T13:21:00Z".to_string()),
        Just("2025-11-03T13:21:00.5-07:30".to_string()),
    ]
}

/// Floats that survive a JSON round trip exactly (dyadic, short decimal forms).
fn exact_f64() -> impl Strategy<Value = f64> {
    (-4096i64..4096).prop_map(|n| n as f64 / 64.0)
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        exact_f64().prop_map(Value::from),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn obj() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("[a-z_]{1,8}", json_value(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn handshake() -> impl Strategy<Value = HandshakePayload> {
    (
        1u32..5,
        prop_oneof![Just(AuthMode::Token), Just(AuthMode::Mtls)],
        os(),
        os(),
        (s(), s(), s()),
    )
        .prop_map(
            |(protocol, mode, token, fingerprint, (id, version, hostname))| HandshakePayload {
                protocol,
                auth: Auth {
                    mode,
                    token,
                    fingerprint,
                },
                worker: WorkerInfo {
                    id,
                    version,
                    hostname,
                },
            },
        )
}

fn register() -> impl Strategy<Value = RegisterPayload> {
    let pkg = (
        s(),
        s(),
        prop_oneof![
            Just(PackageStatus::Installed),
            Just(PackageStatus::Missing),
            Just(PackageStatus::Failed)
        ],
    )
        .prop_map(|(name, version, status)| PackageEntry {
            name,
            version,
            status,
        });
    (
        1u32..64,
        prop::option::of(prop::collection::btree_map(s(), 1u32..9, 0..3)),
        prop::collection::vec(s(), 1..3),
        prop::collection::vec(s(), 0..3),
        prop::collection::vec(pkg, 0..3),
        prop::option::of(prop::collection::vec(s(), 0..3)),
    )
        .prop_map(
            |(max_parallel, per_node_limits, runtimes, features, packages, channels)| {
                RegisterPayload {
                    capabilities: Capabilities {
                        concurrency: Concurrency {
                            max_parallel,
                            per_node_limits,
                        },
                        runtimes,
                        features,
                    },
                    packages,
                    channels,
                }
            },
        )
}

fn heartbeat() -> impl Strategy<Value = HeartbeatPayload> {
    (
        any::<bool>(),
        0u64..100,
        prop::option::of(0u32..10_000),
        obj(),
        prop::option::of(prop::option::of(any::<bool>())),
    )
        .prop_map(|(healthy, inflight, cpu, extra, packages)| {
            let mut metrics: Map<String, Value> = extra
                .into_iter()
                .map(|(k, v)| (format!("x_{k}"), v))
                .collect();
            metrics.insert("inflight".into(), inflight.into());
            if let Some(c) = cpu {
                metrics.insert("cpu_pct".into(), (c as f64 / 100.0).into());
            }
            HeartbeatPayload {
                healthy,
                metrics,
                packages: packages.map(|drift| HeartbeatPackages { drift }),
            }
        })
}

fn ack() -> impl Strategy<Value = AckPayload> {
    (prop::option::of(any::<bool>()), os()).prop_map(|(ok, for_id)| AckPayload { ok, for_id })
}

fn dispatch() -> impl Strategy<Value = DispatchPayload> {
    let rref = (
        s(),
        s(),
        s(),
        os(),
        prop::option::of(ts()),
        prop::option::of(obj()),
    )
        .prop_map(
            |(resource_id, worker_id, kind, scope, expires_at, metadata)| ResourceRef {
                resource_id,
                worker_id,
                kind,
                scope,
                expires_at,
                metadata,
            },
        );
    let affinity = (
        s(),
        prop::option::of(prop_oneof![
            Just(AffinityMode::Sticky),
            Just(AffinityMode::Preferred)
        ]),
        prop::option::of(ts()),
    )
        .prop_map(|(key, mode, expires_at)| Affinity {
            key,
            mode,
            expires_at,
        });
    (
        (s(), s(), s(), s(), s(), s()),
        obj(),
        prop::option::of(1u64..u64::MAX),
        prop::option::of(any::<i64>()),
        os(),
        prop::option::of(prop::collection::vec(rref, 0..2)),
        prop::option::of(affinity),
    )
        .prop_map(
            |(
                (run_id, task_id, node_id, node_type, package_name, package_version),
                parameters,
                timeout_ms,
                priority,
                concurrency_key,
                resource_refs,
                affinity,
            )| DispatchPayload {
                run_id,
                task_id,
                node_id,
                node_type,
                package_name,
                package_version,
                parameters,
                constraints: Constraints { timeout_ms },
                priority,
                concurrency_key,
                resource_refs,
                affinity,
            },
        )
}

fn status() -> impl Strategy<Value = TaskStatus> {
    prop_oneof![
        Just(TaskStatus::Succeeded),
        Just(TaskStatus::Failed),
        Just(TaskStatus::Skipped),
        Just(TaskStatus::Cancelled)
    ]
}

fn result() -> impl Strategy<Value = ResultPayload> {
    let artifact = (
        (s(), s(), s()),
        prop::option::of(any::<u64>()),
        prop::option::of(any::<bool>()),
        prop::option::of(ts()),
        prop::option::of(obj()),
    )
        .prop_map(
            |((resource_id, worker_id, kind), size_bytes, inline, expires_at, metadata)| Artifact {
                resource_id,
                worker_id,
                kind,
                size_bytes,
                inline,
                expires_at,
                metadata,
            },
        );
    let error = (s(), s(), os()).prop_map(|(code, message, remediation)| ResultError {
        code,
        message,
        remediation,
    });
    (
        (s(), s()),
        status(),
        obj(),
        prop::option::of(any::<u64>()),
        prop::option::of(obj()),
        prop::option::of(prop::collection::vec(artifact, 0..2)),
        prop::option::of(error),
    )
        .prop_map(
            |((run_id, task_id), status, result, duration_ms, metadata, artifacts, error)| {
                ResultPayload {
                    run_id,
                    task_id,
                    status,
                    result,
                    duration_ms,
                    metadata,
                    artifacts,
                    error,
                }
            },
        )
}

fn feedback() -> impl Strategy<Value = FeedbackPayload> {
    let channel = prop_oneof![
        Just(FeedbackChannel::Stdout),
        Just(FeedbackChannel::Stderr),
        Just(FeedbackChannel::Log),
        Just(FeedbackChannel::Llm),
        Just(FeedbackChannel::Metric),
        Just(FeedbackChannel::Custom),
    ];
    let chunk = (
        channel,
        prop::option::of(any::<u64>()),
        os(),
        prop::option::of("\\PC{0,10}"),
        os(),
        prop::option::of(obj()),
    )
        .prop_map(
            |(channel, index, mime_type, text, data_base64, metadata)| FeedbackChunk {
                channel,
                index,
                mime_type,
                text,
                data_base64,
                metadata,
            },
        );
    (
        (s(), s()),
        os(),
        prop::option::of((0u32..=64).prop_map(|n| n as f64 / 64.0)),
        prop::option::of("\\PC{0,10}"),
        prop::option::of(prop::collection::vec(chunk, 0..2)),
        prop::option::of(prop::collection::btree_map(s(), exact_f64(), 0..3)),
        prop::option::of(obj()),
    )
        .prop_map(
            |((run_id, task_id), stage, progress, message, chunks, metrics, metadata)| {
                FeedbackPayload {
                    run_id,
                    task_id,
                    stage,
                    progress,
                    message,
                    chunks,
                    metrics: metrics.map(|m: BTreeMap<String, f64>| m),
                    metadata,
                }
            },
        )
}

fn command_error() -> impl Strategy<Value = ErrorPayload> {
    let ctx = (os(), prop::option::of(obj()))
        .prop_map(|(where_, details)| ErrorContext { where_, details });
    (s(), s(), os(), prop::option::of(ctx)).prop_map(|(code, message, remediation, context)| {
        ErrorPayload {
            code,
            message,
            remediation,
            context,
        }
    })
}

fn pkg_event() -> impl Strategy<Value = PkgEventPayload> {
    (
        s(),
        s(),
        prop_oneof![
            Just(PkgEventStatus::Installed),
            Just(PkgEventStatus::Failed)
        ],
        os(),
        prop::option::of(obj()),
    )
        .prop_map(
            |(name, version, status, log_url, details)| PkgEventPayload {
                name,
                version,
                status,
                log_url,
                details,
            },
        )
}

/// `name` or `package` (at least one), as the codec requires.
fn pkg_name() -> impl Strategy<Value = (Option<String>, Option<String>)> {
    prop_oneof![
        s().prop_map(|n| (Some(n), None)),
        s().prop_map(|n| (None, Some(n))),
        (s(), s()).prop_map(|(a, b)| (Some(a), Some(b))),
    ]
}

fn pkg_install() -> impl Strategy<Value = PkgInstallPayload> {
    (pkg_name(), s(), os(), prop::option::of("[0-9a-fA-F]{64}")).prop_map(
        |((name, package), version, url, sha256)| PkgInstallPayload {
            name,
            package,
            version,
            url,
            sha256,
        },
    )
}

fn pkg_uninstall() -> impl Strategy<Value = PkgUninstallPayload> {
    (pkg_name(), os()).prop_map(|((name, package), version)| PkgUninstallPayload {
        name,
        package,
        version,
    })
}

/// Every frame type with a valid payload.
fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        handshake().prop_map(Body::Handshake),
        register().prop_map(Body::Register),
        heartbeat().prop_map(Body::Heartbeat),
        ack().prop_map(Body::Ack),
        dispatch().prop_map(|d| Body::Dispatch(Box::new(d))),
        result().prop_map(|r| Body::Result(Box::new(r))),
        feedback().prop_map(|f| Body::Feedback(Box::new(f))),
        command_error().prop_map(Body::CommandError),
        pkg_event().prop_map(Body::PkgEvent),
        pkg_install().prop_map(Body::PkgInstall),
        pkg_uninstall().prop_map(Body::PkgUninstall),
    ]
}

fn payload_of(body: &Body) -> Map<String, Value> {
    match body {
        Body::Handshake(p) => payload_map(p),
        Body::Register(p) => payload_map(p),
        Body::Heartbeat(p) => payload_map(p),
        Body::Ack(p) => payload_map(p),
        Body::Dispatch(p) => payload_map(p),
        Body::Result(p) => payload_map(p),
        Body::Feedback(p) => payload_map(p),
        Body::CommandError(p) => payload_map(p),
        Body::PkgEvent(p) => payload_map(p),
        Body::PkgInstall(p) => payload_map(p),
        Body::PkgUninstall(p) => payload_map(p),
        Body::Unknown(_) => Map::new(),
    }
}

/// An envelope (payload left empty) for a body of type `ft`.
fn envelope(ft: FrameType) -> impl Strategy<Value = Envelope> {
    (
        s(),
        ts(),
        os(),
        prop::option::of(any::<u64>()),
        s(),
        (prop_oneof![Just(Role::Scheduler), Just(Role::Worker)], s()),
        prop::option::of((os(), prop::option::of(any::<bool>()))),
        prop::option::of(prop::collection::vec(s(), 0..3)),
    )
        .prop_map(
            move |(id, ts, corr, seq, tenant, (role, sid), ack, flags)| Envelope {
                kind: ft.as_str().to_string(),
                id,
                ts,
                corr,
                seq,
                tenant,
                sender: Sender { role, id: sid },
                ack: ack.map(|(for_id, request)| AckField { for_id, request }),
                flags,
                payload: Map::new(),
            },
        )
}

fn frame() -> impl Strategy<Value = (Envelope, Body)> {
    body().prop_flat_map(|b| {
        let ft = b.frame_type().unwrap();
        (envelope(ft), Just(b))
    })
}

fn frame_text(env: &Envelope, body: &Body) -> String {
    let mut e = env.clone();
    e.payload = payload_of(body);
    encode(&e)
}

// ------------------------------------------------------------------------------------------
// open objects: where extra keys are allowed by the protocol (spec §3)

/// Object keys whose values are free-form JSON objects.
const OPEN: [&str; 4] = ["parameters", "result", "metadata", "details"];

/// A path inside a payload: its segments (keys may contain dots) and the dotted form the
/// decoder reports.
#[derive(Debug, Clone)]
struct Path(Vec<String>);

impl Path {
    fn child(&self, k: &str) -> Path {
        let mut v = self.0.clone();
        v.push(k.to_string());
        Path(v)
    }
    fn dotted(&self) -> String {
        self.0.join(".")
    }
    fn pointer(&self) -> String {
        self.0
            .iter()
            .map(|s| format!("/{}", s.replace('~', "~0").replace('/', "~1")))
            .collect()
    }
}

/// Maps with free keys and typed values.
fn free_keys(ft: FrameType, dotted: &str) -> bool {
    matches!(
        (ft, dotted),
        (FrameType::Feedback, "metrics")
            | (
                FrameType::Register,
                "capabilities.concurrency.per_node_limits"
            )
    )
}

/// Every strict object and every strictly typed leaf inside `payload`.
fn strict_paths(
    ft: FrameType,
    v: &Value,
    path: &Path,
    objects: &mut Vec<Path>,
    leaves: &mut Vec<Path>,
) {
    match v {
        Value::Object(m) => {
            objects.push(path.clone());
            for (k, child) in m {
                let p = path.child(k);
                if OPEN.contains(&k.as_str()) {
                    continue;
                }
                if ft == FrameType::Heartbeat && p.dotted() == "metrics" {
                    // an open object whose known keys are typed
                    for known in ["inflight", "cpu_pct"] {
                        if child.get(known).is_some() {
                            leaves.push(p.child(known));
                        }
                    }
                    continue;
                }
                if free_keys(ft, &p.dotted()) {
                    for key in child.as_object().into_iter().flat_map(|m| m.keys()) {
                        leaves.push(p.child(key));
                    }
                    continue;
                }
                strict_paths(ft, child, &p, objects, leaves);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                strict_paths(ft, child, &path.child(&i.to_string()), objects, leaves);
            }
        }
        Value::Null => {}
        _ => leaves.push(path.clone()),
    }
}

fn pointer(path: &str) -> String {
    Path(path.split('.').map(str::to_string).collect()).pointer()
}

/// A value of a different JSON type than `v`, never `null` (which an option would accept).
fn mistyped(v: &Value) -> Value {
    match v {
        Value::String(_) => Value::from(7),
        Value::Number(_) => Value::from("7"),
        Value::Bool(_) => Value::from("true"),
        Value::Array(_) | Value::Object(_) => Value::from(false),
        Value::Null => Value::from(1),
    }
}

/// serde_path_to_error prints array indices as `[i]`; payload validation uses `.i`. Only
/// bracketed digits are indices: a map key may itself contain `[` (seen with a generated
/// `per_node_limits` key).
fn normalise(field: &str) -> String {
    let mut out = String::new();
    let mut rest = field;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..open]);
        if digits > 0 && after[digits..].starts_with(']') {
            out.push('.');
            out.push_str(&after[..digits]);
            rest = &after[digits + 1..];
        } else {
            out.push('[');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_of(e: &astra_core::v1::DecodeError) -> String {
    normalise(e.field().unwrap_or("<none>"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// decode(encode(x)) == x for every frame type.
    #[test]
    fn every_frame_type_round_trips((env, body) in frame()) {
        let text = frame_text(&env, &body);
        let d = decode(&text, DEFAULT_MAX_FRAME_BYTES)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(&d.env, &env);
        prop_assert_eq!(&d.body, &body);
        // and encoding is a fixed point
        prop_assert_eq!(frame_text(&d.env, &d.body), text);
    }

    /// An unknown key at envelope level is rejected and named.
    #[test]
    fn extra_envelope_key_is_rejected((env, body) in frame(), key in "[a-z]{1,8}") {
        let mut v: Value = serde_json::from_str(&frame_text(&env, &body)).unwrap();
        prop_assume!(v.get(&key).is_none());
        v[&key] = Value::from(1);
        let e = decode(&v.to_string(), DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        prop_assert!(matches!(e.kind, DecodeErrorKind::Envelope { .. }), "{:?}", e.kind);
        prop_assert!(e.to_string().contains(&format!("`{key}`")), "{}", e);
    }

    /// An unknown key inside `sender` or `ack` is rejected with the dotted path.
    #[test]
    fn extra_sender_or_ack_key_is_rejected((env, body) in frame(), in_ack in any::<bool>(), key in "x[a-z]{0,6}") {
        let mut v: Value = serde_json::from_str(&frame_text(&env, &body)).unwrap();
        let obj = if in_ack { "ack" } else { "sender" };
        if v.get(obj).is_none() {
            v[obj] = serde_json::json!({});
        }
        v[obj][&key] = Value::from(1);
        let e = decode(&v.to_string(), DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        prop_assert_eq!(field_of(&e), format!("{obj}.{key}"), "{}", e);
    }

    /// An unknown key in any strict payload object is rejected with its dotted path. The `ack`
    /// payload is the documented exception: the scheduler reads it as any object.
    #[test]
    fn extra_payload_key_is_rejected((env, body) in frame(), pick in any::<prop::sample::Index>(), key in "x[a-z]{0,6}") {
        let ft = body.frame_type().unwrap();
        let payload = Value::Object(payload_of(&body));
        let (mut objects, mut leaves) = (Vec::new(), Vec::new());
        strict_paths(ft, &payload, &Path(vec![]), &mut objects, &mut leaves);
        let p = pick.get(&objects).clone();
        let path = p.dotted();
        let mut v: Value = serde_json::from_str(&frame_text(&env, &body)).unwrap();
        let target = v.pointer_mut(&format!("/payload{}", p.pointer())).unwrap();
        prop_assume!(target.get(&key).is_none());
        target[&key] = Value::from(1);
        let text = v.to_string();
        if ft == FrameType::Ack {
            prop_assert!(decode(&text, DEFAULT_MAX_FRAME_BYTES).is_ok());
            return Ok(());
        }
        let e = decode(&text, DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        prop_assert!(matches!(e.kind, DecodeErrorKind::Payload { .. }), "{:?}", e.kind);
        let want = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
        prop_assert_eq!(field_of(&e), want, "{}", e);
    }

    /// A value of the wrong JSON type at any strictly typed payload leaf is rejected, naming
    /// the field.
    #[test]
    fn mistyped_payload_value_is_rejected((env, body) in frame(), pick in any::<prop::sample::Index>()) {
        let ft = body.frame_type().unwrap();
        prop_assume!(ft != FrameType::Ack);
        let payload = Value::Object(payload_of(&body));
        let (mut objects, mut leaves) = (Vec::new(), Vec::new());
        strict_paths(ft, &payload, &Path(vec![]), &mut objects, &mut leaves);
        prop_assume!(!leaves.is_empty());
        let p = pick.get(&leaves).clone();
        let path = p.dotted();
        let mut v: Value = serde_json::from_str(&frame_text(&env, &body)).unwrap();
        let target = v.pointer_mut(&format!("/payload{}", p.pointer())).unwrap();
        *target = mistyped(target);
        let e = decode(&v.to_string(), DEFAULT_MAX_FRAME_BYTES).unwrap_err();
        prop_assert_eq!(field_of(&e), path, "{}", e);
    }

    /// A value of the wrong JSON type in any envelope field is rejected, naming the field.
    #[test]
    fn mistyped_envelope_value_is_rejected((env, body) in frame(), pick in 0usize..11) {
        let fields = ["type", "id", "ts", "corr", "seq", "tenant", "sender.role", "sender.id", "ack.for", "ack.request", "flags"];
        let path = fields[pick];
        let mut v: Value = serde_json::from_str(&frame_text(&env, &body)).unwrap();
        let ptr = pointer(path);
        match v.pointer_mut(&ptr) {
            Some(t) => *t = mistyped(t),
            None => {
                // absent optional field: add it with a wrong type
                let (parent, leaf) = path.rsplit_once('.').unwrap_or(("", path));
                if !parent.is_empty() && v.get(parent).is_none() {
                    v[parent] = serde_json::json!({});
                }
                let p = if parent.is_empty() { &mut v } else { v.get_mut(parent).unwrap() };
                p[leaf] = if leaf == "request" { Value::from("yes") } else { Value::from(false) };
            }
        }
        let text = v.to_string();
        let e = decode(&text, DEFAULT_MAX_FRAME_BYTES)
            .err()
            .ok_or_else(|| TestCaseError::fail(format!("accepted with {path} mistyped: {text}")))?;
        prop_assert!(matches!(e.kind, DecodeErrorKind::Envelope { .. }), "{:?}", e.kind);
        prop_assert_eq!(field_of(&e), path, "{}", e);
    }

    /// The decoder never panics on arbitrary text, and errors are reported, not swallowed.
    #[test]
    fn decode_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = decode(&text, DEFAULT_MAX_FRAME_BYTES);
        let _ = decode(&text, 16);
    }

    /// ... nor on arbitrary bytes (as lossy UTF-8, the way a driver would pass them).
    #[test]
    fn decode_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode(&String::from_utf8_lossy(&bytes), DEFAULT_MAX_FRAME_BYTES);
    }

    /// ... nor on valid frames with bytes replaced, inserted or removed, or truncated.
    #[test]
    fn decode_never_panics_on_mutated_frames(
        (env, body) in frame(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..6),
    ) {
        let mut b = frame_text(&env, &body).into_bytes();
        for (at, how, byte) in edits {
            if b.is_empty() { break; }
            let i = at.index(b.len());
            match how {
                0 => b[i] = byte,
                1 => b.insert(i, byte),
                _ => { b.truncate(i); }
            }
        }
        let text = String::from_utf8_lossy(&b);
        if let Ok(d) = decode(&text, DEFAULT_MAX_FRAME_BYTES) {
            // anything accepted re-encodes into something accepted
            let again = frame_text(&d.env, &d.body);
            prop_assert!(decode(&again, DEFAULT_MAX_FRAME_BYTES).is_ok() || matches!(d.body, Body::Unknown(_)));
        }
    }

    /// `tolerate_non_finite` replaces bare NaN/Infinity tokens and never touches strings.
    #[test]
    fn tolerate_non_finite_never_changes_strings(
        items in prop::collection::vec(
            prop_oneof![
                "(\\PC|NaN|Infinity|-Infinity|\\\\|\"){0,8}".prop_map(|s| (true, s)),
                prop_oneof![Just("NaN"), Just("Infinity"), Just("-Infinity"), Just("1.5"), Just("null")]
                    .prop_map(|t| (false, t.to_string())),
            ],
            0..8,
        ),
        in_array in any::<bool>(),
    ) {
        let mut parts = Vec::new();
        for (i, (is_str, s)) in items.iter().enumerate() {
            let v = if *is_str { serde_json::to_string(s).unwrap() } else { s.clone() };
            parts.push(if in_array { v } else { format!("\"k{i}{}\": {v}", if *is_str { s.as_str() } else { "" }.replace(['"', '\\'], "")) });
        }
        let text = if in_array { format!("[{}]", parts.join(", ")) } else { format!("{{{}}}", parts.join(", ")) };
        let fixed = tolerate_non_finite(&text);
        let v: Value = serde_json::from_str(&fixed).map_err(|e| TestCaseError::fail(format!("{e}: {fixed}")))?;
        let got: Vec<&Value> = match &v {
            Value::Array(a) => a.iter().collect(),
            Value::Object(m) => m.values().collect(),
            _ => unreachable!(),
        };
        // object keys may collide; compare by position only for arrays, by set for objects
        let want: Vec<Value> = items.iter().map(|(is_str, s)| {
            if *is_str { Value::String(s.clone()) }
            else if s == "1.5" { Value::from(1.5) }
            else { Value::Null }
        }).collect();
        if in_array {
            prop_assert_eq!(got.into_iter().cloned().collect::<Vec<_>>(), want);
        } else {
            for g in got {
                prop_assert!(want.contains(g), "{g} not expected in {fixed}");
            }
        }
    }

    /// Text without the tokens is returned unchanged (borrowed).
    #[test]
    fn tolerate_non_finite_is_identity_without_tokens(text in "\\PC{0,80}") {
        prop_assume!(!text.contains("NaN") && !text.contains("Infinity"));
        prop_assert!(matches!(tolerate_non_finite(&text), std::borrow::Cow::Borrowed(t) if t == text));
    }
}

#[test]
fn ack_payload_is_lenient_by_design() {
    let t = r#"{"type":"ack","id":"a","ts":"2025-11-03T13:21:00Z","tenant":"default","sender":{"role":"scheduler","id":"s"},"ack":{"for":"x"},"payload":{"ok":"yes","anything":[1]}}"#;
    let d = decode(t, DEFAULT_MAX_FRAME_BYTES).unwrap();
    assert_eq!(
        d.body,
        Body::Ack(AckPayload {
            ok: None,
            for_id: None
        })
    );
}

// ------------------------------------------------------------------------------------------
// the hand-written fast path of `decode` against the serde decoder

/// Text pieces that are likely to change how a frame parses.
const SPLICES: [&str; 24] = [
    ",",
    ":",
    "\"",
    "\\",
    "{",
    "}",
    "[",
    "]",
    " ",
    "\n",
    "0",
    "-",
    "1.5",
    "1e3",
    "null",
    "true",
    "01",
    "\\u0041",
    "\\n",
    "\u{1}",
    "é",
    "\"x\":1,",
    "\"id\":\"d\",",
    "NaN",
];

/// Character-level damage (on char boundaries, so the text stays a `str`).
fn damage(text: &str, edits: &[(prop::sample::Index, u8, prop::sample::Index)]) -> String {
    let mut t = text.to_string();
    for (at, how, what) in edits {
        let bounds: Vec<usize> = (0..=t.len()).filter(|i| t.is_char_boundary(*i)).collect();
        let i = bounds[at.index(bounds.len())];
        let piece = SPLICES[what.index(SPLICES.len())];
        if *how == 4 {
            // at the start of a value, where most type rules apply
            let starts: Vec<usize> = t.match_indices(':').map(|(j, _)| j + 1).collect();
            if let Some(&j) = starts.get(at.index(starts.len().max(1))) {
                t.insert_str(j, piece);
            }
            continue;
        }
        match how {
            0 => t.insert_str(i, piece),
            1 => {
                let end = bounds.iter().copied().find(|&j| j > i).unwrap_or(i);
                t.replace_range(i..end, piece);
            }
            2 => {
                let end = bounds.iter().copied().find(|&j| j > i).unwrap_or(i);
                t.replace_range(i..end, "");
            }
            _ => t.truncate(i),
        }
    }
    t
}

/// JSON-level damage: a strict leaf or object set to `null`, to a mistyped value, to a
/// string with escapes, or a key repeated.
fn json_damage(text: &str, ft: FrameType, pick: prop::sample::Index, how: u8) -> String {
    let mut v: Value = serde_json::from_str(text).unwrap();
    let (mut objects, mut leaves) = (Vec::new(), Vec::new());
    strict_paths(
        ft,
        &v["payload"].clone(),
        &Path(vec![]),
        &mut objects,
        &mut leaves,
    );
    let mut all: Vec<String> = leaves
        .iter()
        .chain(objects.iter())
        .map(|p| format!("/payload{}", p.pointer()))
        .collect();
    all.extend(
        [
            "/id",
            "/ts",
            "/tenant",
            "/sender/role",
            "/seq",
            "/corr",
            "/ack",
        ]
        .map(String::from),
    );
    let ptr = pick.get(&all).clone();
    if let Some(t) = v.pointer_mut(&ptr) {
        *t = match how {
            0 => Value::Null,
            1 => mistyped(t),
            2 => Value::from("a\\\"b\u{2}"),
            3 => Value::from(""),
            _ => Value::from(-1),
        };
    }
    let s = v.to_string();
    if how == 5 {
        // the first key of the payload, once more
        return s.replacen("\"payload\":{", "\"payload\":{\"run_id\":\"r\",", 1);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// The fast path engages on the hot frame types and reads exactly what serde reads.
    #[test]
    fn fast_path_reads_valid_frames_as_serde_does((env, body) in frame()) {
        let text = frame_text(&env, &body);
        let fast = astra_core::v1::fast_decode::decode(&text);
        let serde = astra_core::v1::codec::decode_serde(&text, DEFAULT_MAX_FRAME_BYTES);
        if let Some(f) = &fast {
            prop_assert_eq!(Ok(f), serde.as_ref());
        }
        let hot = !matches!(
            body.frame_type(),
            Some(FrameType::Result | FrameType::Dispatch)
        ) || matches!(&body, Body::Result(r) if r.artifacts.is_none())
            || matches!(&body, Body::Dispatch(d) if d.resource_refs.is_none() && d.affinity.is_none());
        let keys_plain = !text.contains("\\");
        if hot && keys_plain {
            prop_assert!(fast.is_some(), "fast path declined {}", text);
        }
    }

    /// On damaged text `decode` (fast path first) answers exactly as the serde decoder:
    /// the same frame or the same error, field and recovered ids.
    #[test]
    fn fast_path_agrees_with_serde_on_damaged_text(
        (env, body) in frame(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..6, any::<prop::sample::Index>()), 1..4),
    ) {
        let text = damage(&frame_text(&env, &body), &edits);
        prop_assert_eq!(
            decode(&text, DEFAULT_MAX_FRAME_BYTES),
            astra_core::v1::codec::decode_serde(&text, DEFAULT_MAX_FRAME_BYTES),
            "{}", text
        );
    }

    /// ... and on frames with a value nulled, mistyped, escaped, emptied or negated, or a
    /// payload key repeated.
    #[test]
    fn fast_path_agrees_with_serde_on_damaged_values(
        (env, body) in frame(),
        pick in any::<prop::sample::Index>(),
        how in 0u8..6,
    ) {
        let ft = body.frame_type().unwrap();
        let text = json_damage(&frame_text(&env, &body), ft, pick, how);
        prop_assert_eq!(
            decode(&text, DEFAULT_MAX_FRAME_BYTES),
            astra_core::v1::codec::decode_serde(&text, DEFAULT_MAX_FRAME_BYTES),
            "{}", text
        );
    }
}

/// `(env, body)` as a frame whose payload is laid out as the hand-written writers write it
/// (struct field order, as the worker sends it), not in `Map` (sorted) order.
fn writer_layout_text(env: &Envelope, body: &Body) -> String {
    use astra_core::v1::payload_json::to_json;
    let payload = match body {
        Body::Handshake(p) => to_json(p),
        Body::Register(p) => to_json(p),
        Body::Heartbeat(p) => to_json(p),
        Body::Ack(p) => to_json(p),
        Body::Result(p) => to_json(p.as_ref()),
        Body::Feedback(p) => to_json(p.as_ref()),
        Body::CommandError(p) => to_json(p),
        Body::PkgEvent(p) => to_json(p),
        other => serde_json::to_string(&payload_of(other)).unwrap(),
    };
    let mut e = env.clone();
    e.payload = Map::new();
    let head = encode(&e);
    let head = head.strip_suffix("{}}").unwrap();
    format!("{head}{payload}}}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Payloads in writer order (what the in-order readers of results and feedback see),
    /// intact or damaged: `decode` answers exactly as the serde decoder.
    #[test]
    fn fast_path_agrees_with_serde_on_writer_layout(
        (env, body) in frame(),
        damaged in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..6, any::<prop::sample::Index>()), 1..4),
    ) {
        let text = writer_layout_text(&env, &body);
        let text = if damaged { damage(&text, &edits) } else { text };
        prop_assert_eq!(
            decode(&text, DEFAULT_MAX_FRAME_BYTES),
            astra_core::v1::codec::decode_serde(&text, DEFAULT_MAX_FRAME_BYTES),
            "{}", text
        );
    }
}

// ------------------------------------------------------------------------------------------
// the light path

/// An ack (either payload order, its `for` the envelope's or another) or a heartbeat (u64
/// metrics, no ack request) in the layout the encoders write, with the envelope strings of
/// `envelope`, escapes included: the frames `decode_light` is for.
fn light_frame() -> impl Strategy<Value = String> {
    (
        envelope(FrameType::Ack),
        any::<bool>(),
        os(),
        any::<bool>(),
        prop::array::uniform5(any::<u64>()),
        any::<bool>(),
    )
        .prop_map(|(mut env, is_ack, other_for, ok_first, m, healthy)| {
            env.flags = None;
            if is_ack {
                let f = env.ack.as_ref().and_then(|a| a.for_id.clone());
                let f = f.unwrap_or_else(|| "d-1".into());
                env.ack = Some(AckField {
                    for_id: Some(f.clone()),
                    request: None,
                });
                let pf = other_for.unwrap_or(f);
                env.payload = payload_map(&AckPayload {
                    ok: Some(true),
                    for_id: Some(pf.clone()),
                });
                let text = encode(&env);
                if !ok_first {
                    return text;
                }
                let q = serde_json::to_string(&pf).unwrap();
                text.replace(
                    &format!("\"payload\":{{\"for\":{q},\"ok\":true}}"),
                    &format!("\"payload\":{{\"ok\":true,\"for\":{q}}}"),
                )
            } else {
                env.kind = "heartbeat".into();
                env.ack = None;
                let mut metrics = Map::new();
                for (k, v) in [
                    "inflight",
                    "outbox",
                    "queued",
                    "resource_bytes",
                    "resource_handles",
                ]
                .into_iter()
                .zip(m)
                {
                    metrics.insert(k.into(), Value::from(v));
                }
                env.payload = payload_map(&HeartbeatPayload {
                    healthy,
                    metrics,
                    packages: None,
                });
                encode(&env)
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// The light path reads every such frame without escapes, and only as `decode` reads it.
    #[test]
    fn light_path_reads_encoder_acks_and_heartbeats(text in light_frame()) {
        common::differential_check::check_light_agrees(&text, DEFAULT_MAX_FRAME_BYTES);
        if !text.contains('\\') {
            prop_assert!(
                astra_core::v1::codec::decode_light(&text, DEFAULT_MAX_FRAME_BYTES).is_some(),
                "light path declined {}", text
            );
        }
        // At exactly its length the frame is still read; one byte less, never.
        common::differential_check::check_light_agrees(&text, text.len());
        prop_assert!(astra_core::v1::codec::decode_light(&text, text.len() - 1).is_none());
    }

    /// ... and on damaged copies of them (and of any frame), whatever it reads is what
    /// `decode` reads.
    #[test]
    fn light_path_agrees_with_decode_on_damaged_text(
        text in light_frame(),
        (env, body) in frame(),
        which in any::<bool>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..6, any::<prop::sample::Index>()), 1..4),
    ) {
        let base = if which { text } else { frame_text(&env, &body) };
        let text = damage(&base, &edits);
        common::differential_check::check_light_agrees(&text, DEFAULT_MAX_FRAME_BYTES);
    }
}

// ------------------------------------------------------------------------------------------
// the hand-written encoders against serde_json

/// A feedback payload whose floats may be anything (NaN and infinities become `null`).
fn feedback_any_float() -> impl Strategy<Value = FeedbackPayload> {
    (
        feedback(),
        prop::option::of(any::<f64>()),
        prop::option::of(prop::collection::btree_map(
            "[a-z]{1,3}",
            any::<f64>(),
            0..3,
        )),
    )
        .prop_map(|(mut f, p, m)| {
            f.progress = p.or(f.progress);
            if m.is_some() {
                f.metrics = m;
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Every payload a worker sends writes exactly the text serde_json writes.
    #[test]
    fn write_json_equals_serde((_, body) in frame(), fb in feedback_any_float(), params in obj()) {
        use astra_core::v1::payload_json::to_json;
        let (a, b) = match &body {
            Body::Handshake(p) => (to_json(p), serde_json::to_string(p)),
            Body::Register(p) => (to_json(p), serde_json::to_string(p)),
            Body::Heartbeat(p) => (to_json(p), serde_json::to_string(p)),
            Body::Ack(p) => (to_json(p), serde_json::to_string(p)),
            Body::Result(p) => (to_json(p.as_ref()), serde_json::to_string(p.as_ref())),
            Body::Feedback(p) => (to_json(p.as_ref()), serde_json::to_string(p.as_ref())),
            Body::CommandError(p) => (to_json(p), serde_json::to_string(p)),
            Body::PkgEvent(p) => (to_json(p), serde_json::to_string(p)),
            _ => return Ok(()),
        };
        prop_assert_eq!(a, b.unwrap());
        prop_assert_eq!(to_json(&fb), serde_json::to_string(&fb).unwrap());
        let mut s = String::new();
        astra_core::v1::json_out::JsonOut::new(&mut s).map(&params);
        prop_assert_eq!(s, serde_json::to_string(&params).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// `encode` writes exactly what serde_json writes for the same envelope.
    #[test]
    fn encode_equals_serde((env, body) in frame(), empty_ack in any::<bool>()) {
        let mut e = env.clone();
        e.payload = payload_of(&body);
        if empty_ack {
            e.ack = Some(AckField::default());
        }
        prop_assert_eq!(encode(&e), serde_json::to_string(&e).unwrap());
    }
}
