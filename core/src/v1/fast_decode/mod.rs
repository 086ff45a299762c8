//! The fast path of [`super::codec::decode`]: a hand-written single-pass reader of the frames
//! that travel in the simulator and in production (every type), with no intermediate raw
//! payload slice and no path tracking.
//!
//! Its contract is one-sided, which keeps the strict rules in one place: it returns
//! `Some(frame)` only for text that the serde decoder accepts with exactly that value, and
//! `None` ("not sure") for everything else — any error, an escape in a key, a rare field, a
//! type it does not read, a duplicate key. `decode` then runs the serde decoder, which
//! accepts or rejects and names the field exactly as before. Unknown keys, missing fields,
//! wrong types and bad enum values therefore still get serde's answers; the `fast_path_*` property
//! tests (tests/proptest_codec.rs) check the contract on generated and damaged frames.
//!
//! This file holds the reader's primitives; `envelope.rs` reads the envelope and
//! `payloads.rs` the typed payloads; `light.rs` is the borrowed reader of acks and heartbeats.

mod envelope;
pub(crate) mod light;
mod payloads;

use super::codec::Inbound;
use super::payloads::Validate;
use serde_json::{Map, Number, Value};

/// `None` means "let the serde decoder decide".
type R<T> = Option<T>;

/// Decodes `text` (already within the size limit) if it is sure. Bare `NaN`/`Infinity`
/// tokens are never read here, so `tolerate_non_finite` is left to the serde path.
pub fn decode(text: &str) -> Option<Inbound> {
    P::new(text).frame()
}

/// [`decode`]'s frame if it is sure, else `fallback()`'s answer: for `codec::decode`, whose
/// fallback is the serde decoder. The frame is built where it is returned (see
/// [`P::frame_or`]), not wrapped in an `Option` first and then copied into a `Result`.
#[inline(always)]
pub(crate) fn decode_or<E>(
    text: &str,
    fallback: impl FnOnce() -> Result<Inbound, E>,
) -> Result<Inbound, E> {
    P::new(text).frame_or(fallback)
}

/// `plain_len(rest)` for the text after a string's opening quote. A 36-byte body closed by
/// a quote (a UUID: most ids in every frame) is checked in one go (`clean_36`); when it is
/// clean, `plain_len` would stop at that quote too, so the answer is the same.
#[inline(always)]
fn body_len(rest: &[u8]) -> usize {
    const UUID: usize = 36;
    if let Some((body, &[b'"'])) = rest.first_chunk::<{ UUID + 1 }>().map(|w| w.split_at(UUID)) {
        if let Ok(body) = <&[u8; UUID]>::try_from(body) {
            if super::json_out::clean_36(body) {
                return UUID;
            }
        }
    }
    super::json_out::plain_len(rest)
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
    fn new(text: &'a str) -> Self {
        P {
            s: text,
            b: text.as_bytes(),
            i: 0,
            depth: 0,
        }
    }

    /// JSON whitespace, exactly the four characters serde_json skips.
    /// Always inline with one test for the common case (no whitespace: the encoders write
    /// none, and this runs before nearly every token), the loop out of line.
    #[inline(always)]
    fn ws(&mut self) {
        if self.b.get(self.i).is_some_and(|&c| c <= b' ') {
            self.ws_loop();
        }
    }

    #[inline(never)]
    fn ws_loop(&mut self) {
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
    #[inline(always)]
    fn plain_str(&mut self) -> R<&'a str> {
        self.ws();
        self.plain_str_here()
    }

    /// [`Self::plain_str`] with its opening quote at `self.i` exactly (whitespace already
    /// skipped): the readers that just skipped it do not skip it again.
    #[inline(always)]
    fn plain_str_here(&mut self) -> R<&'a str> {
        self.plain_str_by(super::json_out::plain_len)
    }

    /// [`Self::plain_str_here`] with `len` for `plain_len` (a function that gives the same
    /// answer: [`body_len`] on the light path, whose ids are mostly UUIDs).
    #[inline(always)]
    fn plain_str_by(&mut self, len: impl FnOnce(&[u8]) -> usize) -> R<&'a str> {
        let (&open, rest) = self.b.get(self.i..)?.split_first()?;
        if open != b'"' {
            return None;
        }
        let start = self.i + 1;
        let n = len(rest);
        if *rest.get(n)? != b'"' {
            return None; // an escape, a control character or the end of the text
        }
        // Two one-sided splits, not `get(start..start + n)`: under fat LTO that stayed an
        // out-of-line call (~20 instructions) on every string of every frame.
        let (s, _) = self.s.split_at_checked(start)?.1.split_at_checked(n)?;
        self.i = start + n + 1;
        Some(s)
    }

    /// Any string; one with escapes is unescaped by serde_json itself, for exactness.
    /// Always inline: the plain case is a scan and a copy, and most of its callers are
    /// the fixed-order readers that call it once per field.
    #[inline(always)]
    fn string(&mut self) -> R<String> {
        self.ws();
        self.string_here()
    }

    /// [`Self::string`] at `self.i` exactly (whitespace already skipped).
    #[inline(always)]
    fn string_here(&mut self) -> R<String> {
        let open = self.i;
        if let Some(s) = self.plain_str_here() {
            return Some(s.to_string());
        }
        self.escaped_string(open)
    }

    /// The rest of [`Self::string`]: a string with escapes (or not a string) at `open`.
    #[inline(never)]
    fn escaped_string(&mut self, open: usize) -> R<String> {
        // `plain_str_here` consumed nothing unless the string opened here.
        if *self.b.get(open)? != b'"' {
            return None;
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
        self.ws();
        if self.exact(b"null") {
            return Some(None);
        }
        self.string_here().map(Some)
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
    /// Read in one pass (this is every `seq` and heartbeat metric): the digits, then the
    /// same answer as taking the whole number token and requiring it to be all digits.
    /// Inline, on locals: most are a single digit (the light heartbeat's five metrics).
    #[inline]
    fn u64(&mut self) -> R<u64> {
        self.ws();
        self.u64_here()
    }

    /// [`Self::u64`] at `self.i` exactly (whitespace already skipped).
    #[inline]
    fn u64_here(&mut self) -> R<u64> {
        let b = self.b;
        let start = self.i;
        let mut i = start;
        let mut n: u64 = 0;
        while let Some(d) = b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|&d| d <= 9) {
            n = n.checked_mul(10)?.checked_add(u64::from(d))?;
            i += 1;
        }
        let len = i - start;
        let leading_zero = len > 1 && b[start] == b'0';
        // A token that goes on with a sign, point or exponent is not plain digits.
        let more = matches!(b.get(i), Some(b'-' | b'+' | b'.' | b'e' | b'E'));
        self.i = i;
        (len > 0 && !leading_zero && !more).then_some(n)
    }

    fn opt_u64(&mut self) -> R<Option<u64>> {
        self.ws();
        if self.exact(b"null") {
            return Some(None);
        }
        self.u64_here().map(Some)
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
            b'"' => Value::String(self.string_here()?),
            b'{' => Value::Object(self.map()?),
            b'[' => Value::Array(self.array(P::value)?),
            _ => {
                let t = self.number_token()?;
                // A lone `0` (most heartbeat metrics) is serde_json's `U64(0)` as well.
                if t == "0" {
                    return Some(Value::Number(Number::from(0u64)));
                }
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

    const PKG: &str = r#"{"type":"pkg.install","id":"p1","ts":"2025-11-03T13:20:00Z","tenant":"default","sender":{"role":"scheduler","id":"s"},"ack":{"request":true},"payload":{"name":"p","version":"1.0","url":null}}"#;
    const UNPKG: &str = r#"{"type":"pkg.uninstall","id":"u1","ts":"2025-11-03T13:20:00Z","tenant":"default","sender":{"role":"scheduler","id":"s"},"payload":{"name":"p"}}"#;

    /// The one-pass `u64` gives what the rule "the whole number token, all digits, no
    /// leading zero, within u64" gives.
    #[test]
    fn u64_reads_what_the_token_rule_reads() {
        let rule = |t: &str| -> Option<u64> {
            let t = t.trim_start_matches([' ', '\t', '\n', '\r']);
            let end = t
                .find(|c: char| !matches!(c, '0'..='9' | '-' | '+' | '.' | 'e' | 'E'))
                .unwrap_or(t.len());
            let tok = &t[..end];
            let plain = !tok.is_empty()
                && tok.bytes().all(|c| c.is_ascii_digit())
                && !(tok.len() > 1 && tok.starts_with('0'));
            plain.then(|| tok.parse().ok()).flatten()
        };
        for t in [
            "0",
            "7",
            "07",
            "00",
            "0,",
            "12}",
            " 5",
            "\n42]",
            "",
            "x",
            "-1",
            "+1",
            "1-",
            "1+",
            "1.0",
            "0.5",
            "1e3",
            "1E3",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "123456789012345678901234",
        ] {
            let mut p = super::P {
                s: t,
                b: t.as_bytes(),
                i: 0,
                depth: 0,
            };
            assert_eq!(p.u64(), rule(t), "{t:?}");
        }
    }

    /// The envelope's `type` matched as a quoted name and `ts` read as a validated stamp
    /// (`compact_frame`): every type name in the encoder layout, and the same frame with the
    /// value written any other way (escaped, spaced, cut, extended, another type, a stamp
    /// with an escape, invalid or of another length), get serde's answer; those serde
    /// accepts with a plain or escaped value are still read by the fast path.
    #[test]
    fn envelope_type_and_stamp_forms_get_serde_answers() {
        use crate::v1::types::FrameType;
        let mut cases = Vec::new();
        for ft in FrameType::ALL {
            let name = ft.as_str();
            let with = |v: &str| RES.replace("\"type\":\"result\"", &format!("\"type\":{v}"));
            // The first letter as a `\u` escape: the same name to serde.
            let escaped = format!("\\u{:04x}{}", u32::from(name.as_bytes()[0]), &name[1..]);
            cases.push((with(&format!("\"{name}\"")), false));
            cases.push((with(&format!("\"{escaped}\"")), false));
            cases.push((with(&format!(" \"{name}\"")), false));
            for bad in [
                format!("\"{name}x\""),
                format!("\"{}\"", &name[..name.len() - 1]),
                format!("\"{name}"),
                format!("\"{name}\\\""),
                format!("\"{}\"", name.to_uppercase()),
            ] {
                cases.push((with(&bad), true));
            }
        }
        let ts = "2025-11-03T13:20:00Z";
        for (stamp, fast) in [
            ("2025-11-03T13:20:00.069108+00:00", true),
            ("2025-11-03T13:20:00.069108-07:30", true),
            ("2025-11-03T13:20:00.06910\\u0038+00:00", true),
            ("2025-11-03T13:20:00.069108+00:0", false),
            ("2025-11-03T13:20:00.069108+00:000", false),
            ("2025-13-03T13:20:00.069108+00:00", false),
            ("2025-11-03T13:20:00.069108+0000", false),
            ("2025-11-03T13:20:00", false),
            ("", false),
        ] {
            cases.push((RES.replace(ts, stamp), !fast));
            cases.push((HB.replace("2025-11-03T13:20:00.148085+00:00", stamp), !fast));
        }
        for (t, may_decline) in &cases {
            let serde = decode_serde(t, usize::MAX).map_err(|_| ());
            let fast = super::decode(t);
            if let Some(f) = &fast {
                assert_eq!(Ok(f), serde.as_ref(), "fast path read {t}");
            } else {
                assert!(*may_decline || serde.is_err(), "fast path declined {t}");
            }
            assert_eq!(
                decode_any(t, DEFAULT_MAX_FRAME_BYTES),
                decode_serde(t, DEFAULT_MAX_FRAME_BYTES),
                "{t}"
            );
        }
    }

    /// The encoder-layout readers read each value right after its literal key (no
    /// whitespace skip); a text with whitespace after any colon or comma is walked instead,
    /// and still read by the fast path, as serde reads it.
    #[test]
    fn spaced_texts_are_walked_to_serde_answers() {
        const DISPATCH: &str = r#"{"type":"cmd.dispatch","id":"d1","ts":"2025-11-03T13:20:16.365340+00:00","corr":"n0","seq":1,"tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},"payload":{"concurrency_key":"run-1:n0","constraints":{},"node_id":"n0","node_type":"stream","package_name":"sim.builtin","package_version":"1.0.0","parameters":{"chunks":3},"run_id":"run-1","task_id":"n0"}}"#;
        for t in [HB, RES, PKG, UNPKG, DISPATCH] {
            let mut cases = vec![
                t.replace("\":", "\": "),
                t.replace(',', ", "),
                t.replace("\":\"", "\":\t\""),
            ];
            // One colon at a time: each reader's own whitespace case.
            for (at, _) in t.match_indices("\":") {
                cases.push(format!("{} {}", &t[..at + 2], &t[at + 2..]));
            }
            for c in &cases {
                let serde = decode_serde(c, usize::MAX).map_err(|_| ());
                assert!(serde.is_ok(), "serde refused {c}");
                assert_eq!(super::decode(c).ok_or(()), serde, "{c}");
                assert_eq!(decode_any(c, usize::MAX).map_err(|_| ()), serde, "{c}");
            }
        }
    }

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
            HB.replace("\"outbox\":0", "\"outbox\":0,\"z\":[0,-0,0.0,0e0]"),
            RES.replace("\"n1\"}", "\"n\\u00e9\\n\"}"),
            RES.replace("\"duration_ms\":12", "\"duration_ms\":null,\"error\":null"),
            RES.replace("\"node\":\"n1\"", "\"node\":\"NaN Infinity\""),
            PKG.to_string(),
            PKG.replace("\"name\":\"p\"", "\"package\":\"p\""),
            PKG.replace("\"name\":\"p\"", "\"name\":\"p\",\"package\":\"q\""),
            PKG.replace("\"name\":\"p\"", "\"name\":null,\"package\":\"q\""),
            PKG.replace("\"url\":null", "\"url\":\"https://x/p.tgz\""),
            PKG.replace(
                "\"url\":null",
                &format!("\"sha256\":\"{}\"", "aB3".repeat(21) + "f"),
            ),
            PKG.replace("\"name\":\"p\"", "\"name\":\"p\\u00e9\""),
            UNPKG.to_string(),
            UNPKG.replace("\"name\":\"p\"", "\"package\":\"p\",\"version\":\"2\""),
            UNPKG.replace("\"name\":\"p\"", "\"name\":\"p\",\"version\":null"),
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
            PKG.replace("\"version\":\"1.0\"", "\"version\":null"),
            PKG.replace("\"version\":\"1.0\",", ""),
            PKG.replace("\"version\":\"1.0\"", "\"version\":\"\""),
            PKG.replace("\"name\":\"p\"", "\"name\":null"),
            PKG.replace("\"name\":\"p\"", "\"name\":\"\""),
            PKG.replace("\"name\":\"p\"", "\"name\":\"p\",\"name\":\"q\""),
            PKG.replace("\"name\":\"p\"", "\"name\":\"p\",\"x\":1"),
            PKG.replace("\"name\":\"p\"", "\"name\":7"),
            PKG.replace("\"url\":null", "\"url\":\"\""),
            PKG.replace("\"url\":null", "\"sha256\":\"abc\""),
            PKG.replace(
                "\"url\":null",
                &format!("\"sha256\":\"{}\"", "g".repeat(64)),
            ),
            UNPKG.replace("\"name\":\"p\"", "\"version\":\"\""),
            UNPKG.replace("\"name\":\"p\"", "\"x\":null"),
            UNPKG.replace("\"name\":\"p\"", "\"name\":\"p\",\"name\":null"),
            UNPKG.replace("\"name\":\"p\"", "\"package\":null"),
            UNPKG.replace("{\"name\":\"p\"}", "[]"),
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
