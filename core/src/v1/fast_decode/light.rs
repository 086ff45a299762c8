//! The light path ([`crate::v1::codec::decode_light`]): the two frames whose whole effect on
//! the worker and scheduler machines is their type and one envelope field — an `ack` (its
//! `ack.for`) and a heartbeat that asks for no ack — read from exactly the byte layout both
//! encoders write, borrowing from the text and building nothing. Half the frames of a run are
//! acks; decoding each into an owned `Inbound` (seven `String`s) only to read `ack.for` was
//! the largest single cost left in the simulator's profile.
//!
//! Contract (one-sided, as the fast path's): `Some` only for text that `decode` accepts as
//! exactly that frame. The layout read here is a strict subset of what the fast path reads —
//! the envelope keys in encoder order, each once, no escapes in any string, every value of
//! the type the envelope wants — and the envelope's value checks (`validate_envelope`) are
//! applied to the same fields. Anything else is `None`, and the caller decodes in full.
//! `light_agrees_with_decode` (tests/proptest_codec.rs) and the fuzz corpus replay check it.

use super::P;
use crate::v1::codec::Light;

/// Reads `text` (already within the size limit) if it is a light frame in encoder layout.
pub fn decode(text: &str) -> Option<Light<'_>> {
    let mut p = P {
        s: text,
        b: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let light = p.light()?;
    (p.i == p.b.len()).then_some(light)
}

impl<'a> P<'a> {
    /// A plain string, compared with `seen` first: the ack payload's `for` repeats the
    /// envelope's `ack.for`, and a byte comparison is cheaper than the scan. `"` + `seen` +
    /// `"` is a plain string exactly when `seen` is one, which it is (`plain_str` read it).
    fn same_or_plain_str(&mut self, seen: &str) -> Option<()> {
        let open = self.i;
        if self.exact(b"\"") && self.exact(seen.as_bytes()) && self.exact(b"\"") {
            return Some(());
        }
        self.i = open;
        self.plain_str().map(|_| ())
    }

    /// [`Self::plain_str`] for a string the light path only needs to exist: its length,
    /// without building the `&str` (a bounds and char-boundary check, an out-of-line call,
    /// on every field). The same bytes are accepted: a string body that ends at a quote
    /// after a quote always lies on char boundaries.
    #[inline(always)]
    fn plain_str_len(&mut self) -> Option<usize> {
        self.ws();
        let (&open, rest) = self.b.get(self.i..)?.split_first()?;
        if open != b'"' {
            return None;
        }
        let n = super::body_len(rest);
        if *rest.get(n)? != b'"' {
            return None;
        }
        self.i += n + 2;
        Some(n)
    }

    /// [`Self::stamp`] for a stamp the light path does not keep: the encoders' 32 bytes
    /// between quotes checked as bytes (no `&str` built), any other text by `stamp`.
    #[inline(always)]
    fn stamp_ok(&mut self) -> Option<()> {
        const LEN: usize = 32;
        self.ws();
        let open = self.i;
        if self.b.get(open) == Some(&b'"')
            && self.b.get(open + LEN + 1) == Some(&b'"')
            && self
                .b
                .get(open + 1..open + 1 + LEN)
                .is_some_and(crate::time::is_encoder_stamp)
        {
            self.i = open + LEN + 2;
            return Some(());
        }
        self.stamp().map(|_| ())
    }

    /// [`Self::u64`] for a value the light path does not keep: a single digit followed by
    /// `,` or `}` (most heartbeat metrics) is what `u64` accepts there, read in one test;
    /// anything else is read by `u64`.
    #[inline(always)]
    fn u64_ok(&mut self) -> Option<()> {
        self.ws();
        if let Some(&[d, next]) = self.b.get(self.i..self.i + 2) {
            if d.is_ascii_digit() && (next == b',' || next == b'}') {
                self.i += 1;
                return Some(());
            }
        }
        self.u64().map(|_| ())
    }

    /// A string that `validate_rfc3339_aware` accepts (what `validate_envelope` wants of
    /// `ts`), else `None`. The encoders' stamps are 32 bytes: when the byte after 32 is a
    /// quote and those 32 validate, they are exactly the string `plain_str` would read (an
    /// accepted stamp holds only digits, `-:.+ TtZz`, none of which needs escaping), so
    /// the escape scan is skipped. Any other text is read by `plain_str`, then validated.
    /// Always inline (two callers, every frame): out of line its register saves and
    /// restores were a seventh of its cost.
    #[inline(always)]
    pub(super) fn stamp(&mut self) -> Option<&'a str> {
        const LEN: usize = 32;
        self.ws();
        let open = self.i;
        if self.b.get(open) == Some(&b'"') && self.b.get(open + LEN + 1) == Some(&b'"') {
            let ts = self.s.get(open + 1..open + 1 + LEN);
            if let Some(ts) = ts.filter(|t| crate::time::validate_rfc3339_aware(t).is_ok()) {
                self.i = open + LEN + 2;
                return Some(ts);
            }
        }
        let ts = self.plain_str()?;
        crate::time::validate_rfc3339_aware(ts)
            .is_ok()
            .then_some(ts)
    }

    /// [`Self::stamp`] as an owned string. The encoders' 32-byte stamp is copied in its own
    /// branch, where its length is a constant: the copy is written inline, not a `memcpy` call.
    #[inline(always)]
    pub(super) fn stamp_string(&mut self) -> Option<String> {
        let ts = self.stamp()?;
        Some(match <&[u8; 32]>::try_from(ts.as_bytes()) {
            Ok(_) => String::from(ts.get(..32)?),
            Err(_) => ts.to_string(),
        })
    }

    fn light(&mut self) -> Option<Light<'a>> {
        let ack = if self.exact(b"{\"type\":\"ack\",\"id\":") {
            true
        } else if self.exact(b"{\"type\":\"heartbeat\",\"id\":") {
            false
        } else {
            return None;
        };
        let id = self.plain_str_len()?;
        self.want(b",\"ts\":")?;
        self.stamp_ok()?;
        // `corr` is any string and `seq` any u64 in the envelope; neither matters to these frames.
        if self.exact(b",\"corr\":") {
            self.plain_str_len()?;
        }
        if self.exact(b",\"seq\":") {
            self.u64_ok()?;
        }
        self.want(b",\"tenant\":")?;
        let tenant = self.plain_str_len()?;
        if !(self.exact(b",\"sender\":{\"role\":\"worker\",\"id\":")
            || self.exact(b",\"sender\":{\"role\":\"scheduler\",\"id\":"))
        {
            return None;
        }
        let sender_id = self.plain_str_len()?;
        self.want(b"}")?;
        // `validate_envelope` on these fields (`type` is a non-empty literal, no `flags`;
        // `ts` was validated as it was read).
        let head_ok = id != 0 && tenant != 0 && sender_id != 0;
        if !head_ok {
            return None;
        }
        if ack {
            self.want(b",\"ack\":{\"for\":")?;
            self.ws();
            let for_id = self.plain_str_by(super::body_len)?;
            self.want(b"},\"payload\":{")?;
            // The ack payload is read leniently; both encoders' `{for, ok: true}` orders.
            if self.exact(b"\"for\":") {
                self.same_or_plain_str(for_id)?;
                self.want(b",\"ok\":true}}")?;
            } else {
                self.want(b"\"ok\":true,\"for\":")?;
                self.same_or_plain_str(for_id)?;
                self.want(b"}}")?;
            }
            Some(Light::Ack { for_id })
        } else {
            // No `ack` key: the heartbeat asks for none. Its payload as the worker writes it
            // when the host reports no cpu/mem/disk figures: every metric a u64, `inflight`
            // among them, none of the keys `HeartbeatPayload::validate` constrains otherwise.
            self.want(b",\"payload\":{\"healthy\":")?;
            if !(self.exact(b"true") || self.exact(b"false")) {
                return None;
            }
            self.want(b",\"metrics\":{\"inflight\":")?;
            self.u64_ok()?;
            self.want(b",\"outbox\":")?;
            self.u64_ok()?;
            self.want(b",\"queued\":")?;
            self.u64_ok()?;
            self.want(b",\"resource_bytes\":")?;
            self.u64_ok()?;
            self.want(b",\"resource_handles\":")?;
            self.u64_ok()?;
            self.want(b"}}}")?;
            Some(Light::Heartbeat)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::v1::codec::{decode, decode_light, Body, Light, DEFAULT_MAX_FRAME_BYTES};

    const SCHED_ACK: &str = r#"{"type":"ack","id":"90c6e112-da0c-4efe-9cb3-ff1de549c2a6","ts":"2025-11-03T13:20:00.069108+00:00","tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"for":"97e22206-2345-4b00-936b-22b53ab8ab79"},"payload":{"for":"97e22206-2345-4b00-936b-22b53ab8ab79","ok":true}}"#;
    const WORKER_ACK: &str = r#"{"type":"ack","id":"a1","ts":"2025-11-03T13:20:00Z","corr":"n1","seq":3,"tenant":"default","sender":{"role":"worker","id":"w1"},"ack":{"for":"d-1"},"payload":{"ok":true,"for":"d-1"}}"#;
    const HB: &str = r#"{"type":"heartbeat","id":"h1","ts":"2025-11-03T13:20:00.148085+00:00","tenant":"default","sender":{"role":"worker","id":"w1"},"payload":{"healthy":true,"metrics":{"inflight":0,"outbox":12,"queued":0,"resource_bytes":0,"resource_handles":0}}}"#;

    /// `decode_light`'s answer is `decode`'s: the same type and `ack.for`, and a heartbeat
    /// that asks for no ack. Panics otherwise.
    fn agrees(t: &str, max: usize) -> bool {
        let Some(light) = decode_light(t, max) else {
            return false;
        };
        let full = decode(t, max).unwrap_or_else(|e| panic!("light read a rejected {t}: {e}"));
        match light {
            Light::Ack { for_id } => {
                assert!(matches!(full.body, Body::Ack(_)), "{t}");
                assert_eq!(full.env.ack_for(), Some(for_id), "{t}");
            }
            Light::Heartbeat => {
                assert!(matches!(full.body, Body::Heartbeat(_)), "{t}");
                assert!(!full.env.ack_requested(), "{t}");
            }
        }
        true
    }

    #[test]
    fn reads_what_the_encoders_write() {
        for t in [SCHED_ACK, WORKER_ACK, HB] {
            assert!(
                agrees(t, DEFAULT_MAX_FRAME_BYTES),
                "light path declined {t}"
            );
        }
        // A payload `for` other than `ack.for` (read leniently either way): the envelope's.
        let other = WORKER_ACK.replace("\"for\":\"d-1\"}}", "\"for\":\"d-12\"}}");
        assert!(agrees(&other, DEFAULT_MAX_FRAME_BYTES), "{other}");
        let other = SCHED_ACK.replace(
            "\"payload\":{\"for\":\"97e22206",
            "\"payload\":{\"for\": \"97e22206",
        );
        assert!(agrees(&other, DEFAULT_MAX_FRAME_BYTES), "{other}");
        // A payload `for` that differs from `ack.for` in its first or last byte, or is
        // shorter: the compare with `ack.for` falls through to the scan, which reads it (the
        // payload is read leniently); escaped or unclosed: declined (`agrees` panics if the
        // light path reads what `decode` does not, or reads it differently).
        let head = &SCHED_ACK[..SCHED_ACK
            .find("\"payload\":")
            .expect("SCHED_ACK has a payload")];
        for (payload_for, read) in [
            ("\"07e22206-2345-4b00-936b-22b53ab8ab79\"", true),
            ("\"97e22206-2345-4b00-936b-22b53ab8ab70\"", true),
            ("\"97e22206-2345-4b00-936b-22b53ab8ab7\"", true),
            ("\"97e22206-2345-4b00-936b-22b53ab8ab79\"", true),
            ("\"97e22206-2345-4b00-936b-22b53ab8ab7\\u0039\"", false),
            (
                "\"97e22206-2345-4b00-936b-22b53ab8ab79,\"ok\":true}}",
                false,
            ),
        ] {
            let t = format!("{head}\"payload\":{{\"for\":{payload_for},\"ok\":true}}}}");
            assert_eq!(agrees(&t, DEFAULT_MAX_FRAME_BYTES), read, "{t}");
        }
        assert!(agrees(SCHED_ACK, SCHED_ACK.len()));
        assert!(decode_light(SCHED_ACK, SCHED_ACK.len() - 1).is_none());
    }

    /// `stamp` gives what `plain_str` followed by the validation gives, and ends where it
    /// ends, for stamps of the encoders' 32 bytes and of other lengths, valid or not, with
    /// escapes, control and multi-byte characters, cut short or followed by anything.
    #[test]
    fn stamp_reads_what_plain_str_and_validation_read() {
        let mut bodies = vec![
            "2025-11-03T13:20:00.069108+00:00".to_string(),
            "2025-11-03T13:20:00.069108-07:30".to_string(),
            "2025-11-03t13:20:00.0691080000Z".to_string(),
            "2025-11-03 13:20:00.06910800000z".to_string(),
            "2025-11-03T13:20:00Z".to_string(),
            "2025-11-03T13:20:00.1+00:00".to_string(),
            "2025-11-03T13:20:00.069108".to_string(),
            "".to_string(),
        ];
        let base = bodies[0].clone();
        for at in 0..base.len() {
            for c in ["\\", "\"", "\u{1}", "é", "x", "9", " "] {
                let mut b = base.clone();
                b.replace_range(at..at + 1, c);
                bodies.push(b);
            }
        }
        for body in &bodies {
            for tail in ["\"", "\",\"x\":1", "\"}", "", "x\"", "\\\"\""] {
                let t = format!(" \"{body}{tail}");
                let p = || super::P {
                    s: &t,
                    b: t.as_bytes(),
                    i: 0,
                    depth: 0,
                };
                let (mut a, mut b) = (p(), p());
                let got = a.stamp();
                let want = b
                    .plain_str()
                    .filter(|ts| crate::time::validate_rfc3339_aware(ts).is_ok());
                assert_eq!(got, want, "{t:?}");
                if got.is_some() {
                    assert_eq!(a.i, b.i, "{t:?}");
                }
            }
        }
    }

    /// The light path's skipping readers accept exactly what the readers they stand for
    /// accept, and end where they end: `plain_str_len` as `plain_str` (the length of its
    /// body), `stamp_ok` as `stamp`, `u64_ok` as `u64`, on values of every form, spaced or
    /// not, cut short or followed by anything.
    #[test]
    fn skipping_readers_accept_what_the_keeping_readers_accept() {
        fn p(t: &str) -> super::P<'_> {
            super::P {
                s: t,
                b: t.as_bytes(),
                i: 0,
                depth: 0,
            }
        }
        let strings = [
            "\"\"",
            "\"a\"",
            "\"default\"",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2a6\"",
            "\"a\\\"b\"",
            "\"é☃\"",
            "\"x\u{1}\"",
            "\"abc",
            "abc\"",
            "",
            " \"w1\"",
            "\n\"w1\"",
            "null",
            "\"scheduler-control\"",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2a\"",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2a67\"",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2a6",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2\\\"\"",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2é\"",
            "\"\u{1}0c6e112-da0c-4efe-9cb3-ff1de549c2a6\"",
            "\"90c6e112-da0c-4efe-9cb3-ff1de549c2a6\\\"",
        ];
        let mut stamps: Vec<String> = [
            "2025-11-03T13:20:00.069108+00:00",
            "2025-11-03T13:20:00Z",
            "2025-13-03T13:20:00.069108+00:00",
            "2025-11-03T13:20:00.069108+0000",
            "2025-11-03T13:20:00.069108+00:0é",
            "2025-11-03T13:20:00.069108\\u002b00:00",
        ]
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect();
        stamps.push(" \"2025-11-03T13:20:00.069108+00:00\"".to_string());
        stamps.push("\"2025-11-03T13:20:00.069108+00:00".to_string());
        let numbers = [
            "0",
            "7",
            "12",
            "01",
            "00",
            "-1",
            "1.5",
            "1e3",
            "18446744073709551615",
            "18446744073709551616",
            " 3",
            "x",
            "",
            "9",
            "0.",
            "5-",
        ];
        for tail in [",", "}", "", "\"", ",\"x\":1", "]", " ,"] {
            for body in strings {
                let t = format!("{body}{tail}");
                let (mut a, mut b) = (p(&t), p(&t));
                let got = a.plain_str_len();
                let want = b.plain_str().map(str::len);
                assert_eq!(got, want, "{t:?}");
                if got.is_some() {
                    assert_eq!(a.i, b.i, "{t:?}");
                }
                let (mut a, mut b) = (p(&t), p(&t));
                a.ws();
                b.ws();
                let got = a.plain_str_by(super::super::body_len);
                let want = b.plain_str_here();
                assert_eq!(got, want, "{t:?}");
                if got.is_some() {
                    assert_eq!(a.i, b.i, "{t:?}");
                }
            }
            for body in &stamps {
                let t = format!("{body}{tail}");
                let (mut a, mut b) = (p(&t), p(&t));
                let got = a.stamp_ok();
                let want = b.stamp().map(|_| ());
                assert_eq!(got, want, "{t:?}");
                if got.is_some() {
                    assert_eq!(a.i, b.i, "{t:?}");
                }
            }
            for body in numbers {
                let t = format!("{body}{tail}");
                let (mut a, mut b) = (p(&t), p(&t));
                let got = a.u64_ok();
                let want = b.u64().map(|_| ());
                assert_eq!(got, want, "{t:?}");
                if got.is_some() {
                    assert_eq!(a.i, b.i, "{t:?}");
                }
            }
        }
    }

    /// Near misses: each is either declined or read as `decode` reads it.
    #[test]
    fn declines_everything_else() {
        let declined = [
            SCHED_ACK.replace(
                "\"ts\":\"2025-11-03T13:20:00.069108+00:00\"",
                "\"ts\":\"2025-11-03T13:20:00\"",
            ),
            SCHED_ACK.replace(
                "\"id\":\"90c6e112-da0c-4efe-9cb3-ff1de549c2a6\"",
                "\"id\":\"\"",
            ),
            SCHED_ACK.replace("\"default\"", "\"\""),
            SCHED_ACK.replace("\"scheduler-control\"", "\"\""),
            SCHED_ACK.replace("\"scheduler-control\"", "\"sc\\u0068\""),
            SCHED_ACK.replace("\"ok\":true", "\"ok\":1"),
            SCHED_ACK.replace("\"ok\":true", "\"ok\":false"),
            SCHED_ACK.replace("\"ack\":{\"for\"", "\"ack\":{\"request\":true,\"for\""),
            SCHED_ACK.replace("}}", "}} "),
            SCHED_ACK.replace("}}", "},\"x\":1}"),
            SCHED_ACK.replace("\"tenant\"", "\"x\":1,\"tenant\""),
            SCHED_ACK.replace("scheduler\",", "admin\","),
            WORKER_ACK.replace("\"seq\":3", "\"seq\":-3"),
            WORKER_ACK.replace("\"seq\":3", "\"seq\":03"),
            WORKER_ACK.replace("\"corr\":\"n1\"", "\"corr\":null"),
            HB.replace("\"inflight\":0", "\"inflight\":-1"),
            HB.replace("\"inflight\":0", "\"inflight\":0.5"),
            HB.replace("\"healthy\":true", "\"healthy\":null"),
            HB.replace("\"payload\"", "\"ack\":{\"request\":true},\"payload\""),
            HB.replace("\"metrics\":{", "\"metrics\":{\"cpu_pct\":-1,"),
            HB.replace("\"type\":\"heartbeat\"", "\"type\":\"heartbeat \""),
            HB[..HB.len() - 1].to_string(),
        ];
        for t in &declined {
            assert!(!agrees(t, DEFAULT_MAX_FRAME_BYTES), "light path read {t}");
        }
        // Whitespace before a string value is still exactly what `decode` reads.
        let spaced = SCHED_ACK.replace("\"id\":\"9", "\"id\": \"9");
        assert!(agrees(&spaced, DEFAULT_MAX_FRAME_BYTES));
    }
}
