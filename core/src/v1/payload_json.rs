//! The payloads a worker sends, written straight into a frame buffer by [`JsonOut`]: each
//! exactly as serde_json serialises the type (fields in declaration order, `None` fields
//! skipped, enums by their wire names). `tests/proptest_codec.rs` compares every one with
//! `serde_json::to_string` on generated values. Only a result's artifacts (rare) go through
//! serde itself.

use super::json_out::JsonOut;
use super::payloads::*;
use serde_json::{Map, Value};

/// A value that writes itself as JSON into a frame buffer.
pub trait WriteJson {
    fn write_json(&self, o: &mut JsonOut<'_>);
}

/// The JSON text of `v`, via [`WriteJson`].
pub fn to_json<T: WriteJson + ?Sized>(v: &T) -> String {
    let mut s = String::new();
    v.write_json(&mut JsonOut::new(&mut s));
    s
}

/// Writes an object field by field, with the separators and the `None` skipping.
struct Obj<'o, 'b> {
    o: &'o mut JsonOut<'b>,
    first: bool,
}

impl<'o, 'b> Obj<'o, 'b> {
    #[inline]
    fn new(o: &'o mut JsonOut<'b>) -> Self {
        o.raw("{");
        Obj { o, first: true }
    }
    /// `key` must need no escaping (all field names here are plain identifiers). Inlined,
    /// like the rest: the key is then a literal, copied without a `memcpy` call.
    #[inline]
    fn key(&mut self, key: &str) -> &mut JsonOut<'b> {
        self.o.raw(if self.first { "\"" } else { ",\"" });
        self.first = false;
        self.o.raw(key).raw("\":")
    }
    #[inline]
    fn str(&mut self, key: &str, v: &str) {
        self.key(key).str(v);
    }
    #[inline]
    fn opt_str(&mut self, key: &str, v: &Option<String>) {
        if let Some(v) = v {
            self.str(key, v);
        }
    }
    #[inline]
    fn opt_bool(&mut self, key: &str, v: Option<bool>) {
        if let Some(v) = v {
            self.key(key).bool(v);
        }
    }
    #[inline]
    fn map(&mut self, key: &str, v: &Map<String, Value>) {
        self.key(key).map(v);
    }
    #[inline]
    fn opt_map(&mut self, key: &str, v: &Option<Map<String, Value>>) {
        if let Some(v) = v {
            self.map(key, v);
        }
    }
    #[inline]
    fn end(self) {
        self.o.raw("}");
    }
}

/// Through serde: for payloads too rare to be worth a hand-written form.
fn via_serde<T: serde::Serialize>(v: &T, o: &mut JsonOut<'_>) {
    // Plain structs of strings, numbers and JSON maps always serialise.
    o.raw(&serde_json::to_string(v).unwrap_or_default());
}

/// Every (re)connection sends one (and a repeat after a reconnect): by hand, as serde
/// took several thousand instructions a frame.
impl WriteJson for HandshakePayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        o.raw("{\"protocol\":")
            .u64(u64::from(self.protocol))
            .raw(match self.auth.mode {
                AuthMode::Token => ",\"auth\":{\"mode\":\"token\"",
                AuthMode::Mtls => ",\"auth\":{\"mode\":\"mtls\"",
            });
        opt_str(o, ",\"token\":\"", &self.auth.token);
        opt_str(o, ",\"fingerprint\":\"", &self.auth.fingerprint);
        let w = &self.worker;
        o.raw("},\"worker\":{\"id\":\"")
            .str_body(&w.id)
            .raw("\",\"version\":\"")
            .str_body(&w.version)
            .raw("\",\"hostname\":\"")
            .str_body(&w.hostname)
            .raw("\"}}");
    }
}

/// Every (re)connection sends one, with the whole inventory: by hand since it showed in the
/// simulator's profile (serde took ~4,000 instructions a frame).
impl WriteJson for RegisterPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        let c = &self.capabilities;
        o.raw("{\"capabilities\":{\"concurrency\":{\"max_parallel\":")
            .u64(u64::from(c.concurrency.max_parallel));
        if let Some(limits) = &c.concurrency.per_node_limits {
            o.raw(",\"per_node_limits\":{");
            for (i, (k, v)) in limits.iter().enumerate() {
                if i > 0 {
                    o.raw(",");
                }
                o.str(k).raw(":").u64(u64::from(*v));
            }
            o.raw("}");
        }
        o.raw("},\"runtimes\":").str_array(&c.runtimes);
        o.raw(",\"features\":").str_array(&c.features);
        o.raw("},\"packages\":[");
        package_entries(o, &self.packages);
        o.raw("]");
        if let Some(ch) = &self.channels {
            o.raw(",\"channels\":").str_array(ch);
        }
        o.raw("}");
    }
}

/// The `PackageEntry` objects of a `packages` array, comma-separated, in the derive's field
/// order (the register payload's writer and the worker's in-place register share it).
pub(crate) fn package_entries<'p>(
    o: &mut JsonOut<'_>,
    entries: impl IntoIterator<Item = &'p PackageEntry>,
) {
    for (i, p) in entries.into_iter().enumerate() {
        o.raw(if i > 0 {
            ",{\"name\":\""
        } else {
            "{\"name\":\""
        })
        .str_body(&p.name)
        .raw("\",\"version\":\"")
        .str_body(&p.version);
        o.raw(match p.status {
            PackageStatus::Installed => "\",\"status\":\"installed\"}",
            PackageStatus::Missing => "\",\"status\":\"missing\"}",
            PackageStatus::Failed => "\",\"status\":\"failed\"}",
        });
    }
}

/// Every package operation sends one: by hand, like the others.
impl WriteJson for PkgEventPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        o.raw("{\"name\":\"")
            .str_body(&self.name)
            .raw("\",\"version\":\"")
            .str_body(&self.version)
            .raw(match self.status {
                PkgEventStatus::Installed => "\",\"status\":\"installed\"",
                PkgEventStatus::Failed => "\",\"status\":\"failed\"",
            });
        opt_str(o, ",\"log_url\":\"", &self.log_url);
        if let Some(d) = &self.details {
            o.raw(",\"details\":").map(d);
        }
        o.raw("}");
    }
}

impl WriteJson for HeartbeatPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        let mut f = Obj::new(o);
        f.key("healthy").bool(self.healthy);
        f.map("metrics", &self.metrics);
        if let Some(p) = &self.packages {
            let mut g = Obj::new(f.key("packages"));
            g.opt_bool("drift", p.drift);
            g.end();
        }
        f.end();
    }
}

impl WriteJson for AckPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        let mut f = Obj::new(o);
        f.opt_bool("ok", self.ok);
        f.opt_str("for", &self.for_id);
        f.end();
    }
}

fn channel_name(c: FeedbackChannel) -> &'static str {
    match c {
        FeedbackChannel::Stdout => "stdout",
        FeedbackChannel::Stderr => "stderr",
        FeedbackChannel::Log => "log",
        FeedbackChannel::Llm => "llm",
        FeedbackChannel::Metric => "metric",
        FeedbackChannel::Custom => "custom",
    }
}

/// `key` (a literal `,"name":"`, its value's opening quote included), the escaped text of
/// `v` and its closing quote; nothing when `v` is `None`. One literal per field instead of
/// the separator, name, colon and quote written apart.
#[inline]
fn opt_str(o: &mut JsonOut<'_>, key: &'static str, v: &Option<String>) {
    if let Some(v) = v {
        o.raw(key).str_body(v).raw("\"");
    }
}

/// Every task sends one: its fixed fields written as literals around the escaped values.
impl WriteJson for ResultPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        o.raw("{\"run_id\":\"")
            .str_body(&self.run_id)
            .raw("\",\"task_id\":\"")
            .str_body(&self.task_id)
            .raw(match self.status {
                TaskStatus::Succeeded => "\",\"status\":\"SUCCEEDED\",\"result\":",
                TaskStatus::Failed => "\",\"status\":\"FAILED\",\"result\":",
                TaskStatus::Skipped => "\",\"status\":\"SKIPPED\",\"result\":",
                TaskStatus::Cancelled => "\",\"status\":\"CANCELLED\",\"result\":",
            })
            .map(&self.result);
        if let Some(d) = self.duration_ms {
            o.raw(",\"duration_ms\":").u64(d);
        }
        if let Some(m) = &self.metadata {
            o.raw(",\"metadata\":").map(m);
        }
        if let Some(a) = &self.artifacts {
            o.raw(",\"artifacts\":");
            via_serde(a, o);
        }
        if let Some(e) = &self.error {
            o.raw(",\"error\":{\"code\":\"")
                .str_body(&e.code)
                .raw("\",\"message\":\"")
                .str_body(&e.message)
                .raw("\"");
            opt_str(o, ",\"remediation\":\"", &e.remediation);
            o.raw("}");
        }
        o.raw("}");
    }
}

/// Streams send many: written like [`ResultPayload`]'s.
impl WriteJson for FeedbackPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        o.raw("{\"run_id\":\"")
            .str_body(&self.run_id)
            .raw("\",\"task_id\":\"")
            .str_body(&self.task_id)
            .raw("\"");
        opt_str(o, ",\"stage\":\"", &self.stage);
        if let Some(p) = self.progress {
            o.raw(",\"progress\":").f64(p);
        }
        opt_str(o, ",\"message\":\"", &self.message);
        if let Some(chunks) = &self.chunks {
            o.raw(",\"chunks\":[");
            for (i, c) in chunks.iter().enumerate() {
                o.raw(if i > 0 {
                    ",{\"channel\":\""
                } else {
                    "{\"channel\":\""
                })
                .raw(channel_name(c.channel))
                .raw("\"");
                if let Some(n) = c.index {
                    o.raw(",\"index\":").u64(n);
                }
                opt_str(o, ",\"mime_type\":\"", &c.mime_type);
                opt_str(o, ",\"text\":\"", &c.text);
                opt_str(o, ",\"data_base64\":\"", &c.data_base64);
                if let Some(m) = &c.metadata {
                    o.raw(",\"metadata\":").map(m);
                }
                o.raw("}");
            }
            o.raw("]");
        }
        if let Some(m) = &self.metrics {
            o.raw(",\"metrics\":{");
            for (i, (k, v)) in m.iter().enumerate() {
                o.raw(if i > 0 { ",\"" } else { "\"" })
                    .str_body(k)
                    .raw("\":")
                    .f64(*v);
            }
            o.raw("}");
        }
        if let Some(m) = &self.metadata {
            o.raw(",\"metadata\":").map(m);
        }
        o.raw("}");
    }
}

impl WriteJson for ErrorPayload {
    fn write_json(&self, o: &mut JsonOut<'_>) {
        let mut f = Obj::new(o);
        f.str("code", &self.code);
        f.str("message", &self.message);
        f.opt_str("remediation", &self.remediation);
        if let Some(c) = &self.context {
            let mut g = Obj::new(f.key("context"));
            g.opt_str("where", &c.where_);
            g.opt_map("details", &c.details);
            g.end();
        }
        f.end();
    }
}
