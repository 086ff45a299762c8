//! A minimal JSON writer for the frames the machines send on every step: text goes straight
//! into one `String`, keys are constants written as they are, strings are escaped exactly as
//! serde_json escapes them and numbers are formatted by serde_json's own number types, so
//! the output is byte-for-byte what `serde_json::to_string` gives for the same value
//! (`tests/proptest_codec.rs` checks that differentially). Used instead of serde on the hot
//! paths because building a `serde_json::Value` first (as `payload_map` does) costs one
//! allocation per key and value.

mod plain;

pub(crate) use plain::{clean_36, plain_len};
use serde_json::{Map, Number, Value};
use std::fmt::Write as _;

/// Appends JSON text to a `String` it borrows.
pub struct JsonOut<'a> {
    buf: &'a mut String,
}

impl<'a> JsonOut<'a> {
    pub fn new(buf: &'a mut String) -> Self {
        JsonOut { buf }
    }

    /// Literal JSON text (punctuation and pre-escaped keys such as `,"id":`).
    #[inline]
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.push_str(s);
        self
    }

    /// A JSON string with its quotes.
    ///
    /// Inline: nearly every string is plain, and then this is one scan and one copy in the
    /// caller (the call into a separate escaper cost a prologue and epilogue per string).
    #[inline(always)]
    pub fn str(&mut self, s: &str) -> &mut Self {
        if plain_len(s.as_bytes()) == s.len() {
            self.quoted(s);
        } else {
            escape_into(self.buf, s);
        }
        self
    }

    /// A JSON string with its quotes, for text that needs no escaping by construction (a
    /// generated UUID, an RFC 3339 stamp from [`crate::time`], a frame type's name): the
    /// same bytes as [`Self::str`] without the scan. Debug builds check the claim.
    #[inline]
    pub fn str_plain(&mut self, s: &str) -> &mut Self {
        debug_assert_eq!(plain_len(s.as_bytes()), s.len(), "not plain: {s:?}");
        self.quoted(s);
        self
    }

    /// `unix_micros` as the quoted RFC 3339 stamp [`crate::time::format_rfc3339_micros`]
    /// writes (always plain), formatted in place.
    #[inline]
    pub fn rfc3339_micros(&mut self, unix_micros: u64) -> &mut Self {
        self.buf.reserve(34);
        self.buf.push('"');
        crate::time::push_rfc3339_micros(self.buf, unix_micros);
        self.buf.push('"');
        self
    }

    /// [`Self::rfc3339_micros`]'s text, the date and time of day taken from `cache` when
    /// they are the last stamp's (see [`crate::time::StampCache`]).
    #[inline]
    pub fn rfc3339_micros_cached(
        &mut self,
        unix_micros: u64,
        cache: &mut crate::time::StampCache,
    ) -> &mut Self {
        self.buf.reserve(34);
        self.buf.push('"');
        crate::time::push_rfc3339_micros_cached(self.buf, unix_micros, cache);
        self.buf.push('"');
        self
    }

    /// The body of [`Self::rfc3339_micros_cached`] without its quotes: for a writer whose
    /// literals around it carry them (`,"ts":"` before, `","corr":"` after), one capacity
    /// check and copy per literal instead of one more per quote.
    #[inline]
    pub fn rfc3339_micros_body_cached(
        &mut self,
        unix_micros: u64,
        cache: &mut crate::time::StampCache,
    ) -> &mut Self {
        crate::time::push_rfc3339_micros_cached(self.buf, unix_micros, cache);
        self
    }

    /// The body of a JSON string without its quotes (the caller's literals carry them):
    /// escaped exactly as [`Self::str`] escapes it.
    #[inline]
    pub fn str_body(&mut self, s: &str) -> &mut Self {
        escape_body_into(self.buf, s);
        self
    }

    /// [`Self::str_body`] for text that needs no escaping by construction (a generated UUID):
    /// copied without the scan. Debug builds check the claim.
    #[inline]
    pub fn plain_body(&mut self, s: &str) -> &mut Self {
        debug_assert_eq!(plain_len(s.as_bytes()), s.len(), "not plain: {s:?}");
        self.buf.push_str(s);
        self
    }

    /// Bytes written so far (for [`Self::repeat`]).
    #[inline]
    pub fn written(&self) -> usize {
        self.buf.len()
    }

    /// Appends a copy of text already written, `range` as given by [`Self::written`] before
    /// and after writing it (a value written twice is escaped once).
    #[inline]
    pub fn repeat(&mut self, range: std::ops::Range<usize>) -> &mut Self {
        self.buf.extend_from_within(range);
        self
    }

    /// `"s"`, with one capacity check.
    #[inline(always)]
    fn quoted(&mut self, s: &str) {
        self.buf.reserve(s.len() + 2);
        self.buf.push('"');
        self.buf.push_str(s);
        self.buf.push('"');
    }

    /// One JSON string whose text is `parts` joined: `str(&parts.concat())` without building
    /// the joined text (escaping is per character, so the parts escape independently).
    pub fn str_joined(&mut self, parts: &[&str]) -> &mut Self {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        self.buf.reserve(len + 2);
        self.buf.push('"');
        for p in parts {
            escape_body_into(self.buf, p);
        }
        self.buf.push('"');
        self
    }

    /// `["a","b"]`, each item escaped as serde_json escapes it (the quotes and commas
    /// written as one literal between items).
    pub fn str_array(&mut self, items: &[String]) -> &mut Self {
        let Some((first, rest)) = items.split_first() else {
            return self.raw("[]");
        };
        self.raw("[\"").str_body(first);
        for s in rest {
            self.raw("\",\"").str_body(s);
        }
        self.raw("\"]")
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        push_u64(self.buf, n);
        self
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        if n < 0 {
            self.buf.push('-');
        }
        push_u64(self.buf, n.unsigned_abs());
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.buf.push_str(if b { "true" } else { "false" });
        self
    }

    pub fn number(&mut self, n: &Number) -> &mut Self {
        // `Number`'s Display is serde_json's own serialisation of it (itoa for integers,
        // zmij's shortest form for floats): both written here the same way, without
        // `core::fmt` (a feedback frame's progress went through it).
        if let Some(u) = n.as_u64() {
            return self.u64(u);
        }
        if let Some(i) = n.as_i64() {
            return self.i64(i);
        }
        match n.as_f64() {
            Some(x) if x.is_finite() => self.float(x),
            _ => {
                let _ = write!(self.buf, "{n}");
                self
            }
        }
    }

    /// A finite float as serde_json writes it; non-finite ones become `null` as there.
    pub fn f64(&mut self, x: f64) -> &mut Self {
        if x.is_finite() {
            self.float(x)
        } else {
            self.raw("null")
        }
    }

    /// A finite float's shortest text, as serde_json's `Number` displays it.
    fn float(&mut self, x: f64) -> &mut Self {
        self.buf.push_str(zmij::Buffer::new().format_finite(x));
        self
    }

    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Null => self.raw("null"),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => self.number(n),
            Value::String(s) => self.str(s),
            Value::Array(items) => {
                self.buf.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(',');
                    }
                    self.value(item);
                }
                self.raw("]")
            }
            Value::Object(m) => self.map(m),
        }
    }

    /// An object in the map's own iteration order (serde_json's order too).
    pub fn map(&mut self, m: &Map<String, Value>) -> &mut Self {
        let mut sep = "{\"";
        for (k, v) in m {
            // The separator, the key's quotes and the colon as literals around its text.
            self.raw(sep).str_body(k).raw("\":");
            self.value(v);
            sep = ",\"";
        }
        if m.is_empty() {
            self.raw("{");
        }
        self.raw("}")
    }
}

/// Appends the decimal digits of `n` (what `Display` writes), without going through
/// `core::fmt`, which showed in the simulator's profile (every frame has a few integers).
fn push_u64(buf: &mut String, n: u64) {
    // One digit (most counters, seqs and metrics): no buffer at all.
    if n < 10 {
        buf.push(char::from(b'0' + n as u8));
        return;
    }
    // itoa: two digits per step from a table, and its text needs no UTF-8 check (a digit
    // loop here then `str::from_utf8` on the digits cost about twice as much).
    buf.push_str(itoa::Buffer::new().format(n));
}

/// serde_json's escaping: `"` and `\` backslashed, control characters below 0x20 as the
/// short escapes `\b \t \n \f \r` or `\u00xx` (lower-case hex); everything else verbatim.
/// Out of line: [`JsonOut::str`] comes here only for a string that needs an escape.
#[inline(never)]
fn escape_into(buf: &mut String, s: &str) {
    // One capacity check for the common, escape-free case instead of three.
    buf.reserve(s.len() + 2);
    buf.push('"');
    escape_body_into(buf, s);
    buf.push('"');
}

/// The escaped text of `s`, without quotes.
#[inline(always)]
fn escape_body_into(buf: &mut String, s: &str) {
    let plain = plain_len(s.as_bytes());
    if plain == s.len() {
        buf.push_str(s);
        return;
    }
    escape_from(buf, s, plain);
}

/// The escaped text of `s` whose first byte to escape is at `at`. After each escape the next
/// run of plain bytes is found by [`plain_len`]'s word-at-a-time scan and copied in one go
/// (text with line breaks, such as a task's output, was matched byte by byte).
#[inline(never)]
fn escape_from(buf: &mut String, s: &str, mut at: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(&b) = bytes.get(at) {
        // `plain_len` stops only at `"`, `\` or a control byte: ASCII, so `at` and `at + 1`
        // are char boundaries.
        buf.push_str(&s[start..at]);
        match b {
            b'"' => buf.push_str("\\\""),
            b'\\' => buf.push_str("\\\\"),
            0x08 => buf.push_str("\\b"),
            0x0c => buf.push_str("\\f"),
            b'\n' => buf.push_str("\\n"),
            b'\r' => buf.push_str("\\r"),
            b'\t' => buf.push_str("\\t"),
            _ => {
                buf.push_str("\\u00");
                buf.push(HEX[usize::from(b >> 4)] as char);
                buf.push(HEX[usize::from(b & 0xf)] as char);
            }
        }
        start = at + 1;
        at = start + plain_len(&bytes[start..]);
    }
    buf.push_str(&s[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(f: impl FnOnce(&mut JsonOut<'_>)) -> String {
        let mut s = String::new();
        f(&mut JsonOut::new(&mut s));
        s
    }

    #[test]
    fn joined_parts_are_the_joined_string() {
        let parts = ["run-1", ":", "n\"0\\", "", "é\u{1}\n", "x"];
        for n in 0..=parts.len() {
            for k in 0..n {
                let p = &parts[k..n];
                assert_eq!(
                    out(|o| {
                        o.str_joined(p);
                    }),
                    out(|o| {
                        o.str(&p.concat());
                    })
                );
            }
        }
    }

    #[test]
    fn plain_writers_write_what_str_writes() {
        for s in [
            "",
            "90c6e112-da0c-4efe-9cb3-ff1de549c2a6",
            "2025-11-03T13:20:00.069108+00:00",
            "cmd.dispatch",
            "é☃😀",
        ] {
            let want = out(|o| {
                o.str(s);
            });
            assert_eq!(
                out(|o| {
                    o.str_plain(s);
                }),
                want
            );
        }
        for us in [0, 1_762_175_750_123_456, u64::MAX] {
            let ts = crate::time::format_rfc3339_micros(us);
            assert_eq!(
                out(|o| {
                    o.raw("x").rfc3339_micros(us);
                }),
                out(|o| {
                    o.raw("x").str(&ts);
                })
            );
        }
    }

    /// The quote-less writers write what the quoting ones write, minus the quotes.
    #[test]
    fn body_writers_write_the_quoted_text_unquoted() {
        for s in ["", "plain", "q\"b\\s/", "\u{0}\u{1f}\n", "é☃😀"] {
            let quoted = out(|o| {
                o.str(s);
            });
            assert_eq!(
                out(|o| {
                    o.raw("\"").str_body(s).raw("\"");
                }),
                quoted
            );
        }
        let id = "90c6e112-da0c-4efe-9cb3-ff1de549c2a6";
        assert_eq!(
            out(|o| {
                o.raw("\"").plain_body(id).raw("\"");
            }),
            out(|o| {
                o.str(id);
            })
        );
        let mut c = crate::time::StampCache::new();
        for us in [0, 1_762_175_750_123_456, 1_762_175_750_999_999, u64::MAX, 7] {
            let want = out(|o| {
                o.rfc3339_micros(us);
            });
            assert_eq!(
                out(|o| {
                    o.rfc3339_micros_cached(us, &mut c);
                }),
                want
            );
            assert_eq!(
                out(|o| {
                    o.raw("\"").rfc3339_micros_body_cached(us, &mut c).raw("\"");
                }),
                want
            );
        }
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "not plain")]
    fn str_plain_checks_its_claim_in_debug_builds() {
        out(|o| {
            o.str_plain("a\"b");
        });
    }

    #[test]
    fn integers_are_written_as_display_writes_them() {
        let mut cases: Vec<i64> = vec![0, 1, 9, 10, 99, 100, -1, -10, i64::MIN, i64::MAX];
        cases.extend((0..63).map(|s| 1i64 << s).flat_map(|x| [x - 1, x, -x]));
        for n in cases {
            let mut b = String::new();
            JsonOut::new(&mut b).i64(n);
            assert_eq!(b, n.to_string());
        }
        for n in [
            0u64,
            7,
            10,
            1 << 40,
            u64::MAX,
            u64::MAX - 1,
            10_000_000_000_000_000_000,
        ] {
            let mut b = String::new();
            JsonOut::new(&mut b).u64(n);
            assert_eq!(b, n.to_string());
        }
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        for s in [
            "",
            "plain",
            "q\"b\\s/",
            "\u{0}\u{1}\u{8}\u{9}\u{a}\u{b}\u{c}\u{d}\u{1f}\u{7f}",
            "é☃😀\u{2028}",
        ] {
            assert_eq!(
                out(|o| {
                    o.str(s);
                }),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    /// Escapes anywhere in long text (runs of plain bytes of every length around them, at
    /// the start and the end, back to back) come out as serde_json writes them.
    #[test]
    fn escapes_between_plain_runs_match_serde_json() {
        let pieces = ["\n", "\"", "\\", "\u{1}", "\u{1f}", "\t", "é", "☃", "😀"];
        for (k, esc) in pieces.iter().enumerate() {
            for run in 0..20 {
                let plain: String = "abcdefghijklmnopqrstuvwxyz"
                    .chars()
                    .cycle()
                    .take(run)
                    .collect();
                let other = pieces[(k + 1) % pieces.len()];
                for s in [
                    format!("{esc}{plain}"),
                    format!("{plain}{esc}"),
                    format!("{plain}{esc}{plain}{other}{plain}"),
                    format!("{esc}{esc}{plain}{esc}{other}{other}"),
                ] {
                    let want = serde_json::to_string(&s).unwrap();
                    assert_eq!(
                        out(|o| {
                            o.str(&s);
                        }),
                        want,
                        "{s:?}"
                    );
                    assert_eq!(
                        out(|o| {
                            o.raw("\"").str_body(&s).raw("\"");
                        }),
                        want
                    );
                }
            }
        }
    }

    /// Floats of every magnitude (random bit patterns, subnormals, integers-valued ones)
    /// are written as serde_json writes them, directly and as a `Number`.
    #[test]
    fn floats_match_serde_json() {
        let mut r = crate::rng::Rng::new(9);
        let mut xs = vec![
            0.5,
            1.0,
            -2.0,
            1e21,
            1e-7,
            5e-324,
            f64::MAX,
            f64::MIN_POSITIVE,
        ];
        xs.extend((0..3_000).map(|_| f64::from_bits(r.next_u64())));
        xs.extend((0..500).map(|i| i as f64 / 7.0));
        for x in xs.into_iter().filter(|x| x.is_finite()) {
            let want = serde_json::to_string(&x).unwrap();
            assert_eq!(
                out(|o| {
                    o.f64(x);
                }),
                want,
                "{x:e}"
            );
            let n = Number::from_f64(x).unwrap();
            assert_eq!(
                out(|o| {
                    o.number(&n);
                }),
                serde_json::to_string(&n).unwrap()
            );
        }
    }

    #[test]
    fn values_match_serde_json() {
        let v = serde_json::json!({
            "b": [1, -2, 3.5, 1e300, 0.1, null, true, false, "x\n"],
            "a": {"z": {}, "y": []},
            "u": u64::MAX,
            "i": i64::MIN,
        });
        assert_eq!(
            out(|o| {
                o.value(&v);
            }),
            serde_json::to_string(&v).unwrap()
        );
        for x in [0.0, -0.0, 1.5, 1e-7, 123456789.125, f64::NAN, f64::INFINITY] {
            assert_eq!(
                out(|o| {
                    o.f64(x);
                }),
                serde_json::to_string(&x).unwrap(),
                "{x}"
            );
        }
    }
}
