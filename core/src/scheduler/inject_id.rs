//! The envelope id of a frame a harness injects, read to recognise its ack later. The
//! answer is defined by serde: the top-level `"id"` string of the text parsed as a JSON
//! value (`None` for invalid JSON, a non-object, no `id` or a non-string one; the last of
//! duplicate keys wins). Injected frames (`pkg.install`, `pkg.uninstall`) are outside the
//! codec's fast decoder, and building a `serde_json::Value` per frame cost more than the
//! rest of `inject`, so a borrowed scan answers for the plain text harnesses write and
//! serde stays the reference for everything else.
//!
//! The scan is one-sided like the codec's fast path: it answers only when the text lies in a
//! subset every JSON parser reads the same way (no backslash escape, no control character,
//! no exponent, bounded digits and nesting) and says "not sure" otherwise.

use crate::v1::json_out::plain_len;

/// Exactly `serde_json::from_str::<Value>(text)` → top-level `"id"` as a string.
pub(crate) fn envelope_id(text: &str) -> Option<String> {
    match scan(text) {
        Some(id) => id.map(str::to_string),
        None => serde_id(text),
    }
}

/// The reference answer.
fn serde_id(text: &str) -> Option<String> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
}

/// Below serde_json's recursion limit (128), so nothing accepted here is refused there.
const MAX_DEPTH: u32 = 64;
/// Integer digits that always give a finite `f64` (the largest is about 1.8e308).
const MAX_INT_DIGITS: usize = 300;

/// `Some(answer)` when sure, `None` for "ask serde".
fn scan(text: &str) -> Option<Option<&str>> {
    let mut s = Scan {
        s: text,
        b: text.as_bytes(),
        i: 0,
    };
    s.ws();
    if s.b.get(s.i) != Some(&b'{') {
        // Not an object (or not JSON at all): `Value::get` finds no id either way.
        return Some(None);
    }
    let id = s.top_object()?;
    s.ws();
    (s.i == s.b.len()).then_some(id)
}

struct Scan<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Scan<'a> {
    /// The four whitespace bytes JSON (and serde_json) skip.
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    /// The top-level object (at `{`): its last `"id"` member, `Some(None)` if that is not
    /// a string or there is none.
    fn top_object(&mut self) -> Option<Option<&'a str>> {
        self.i += 1;
        let mut id = None;
        if self.eat(b'}') {
            return Some(id);
        }
        loop {
            self.ws();
            let key = self.plain_str()?;
            if !self.eat(b':') {
                return None;
            }
            self.ws();
            if key == "id" {
                id = match self.b.get(self.i) {
                    Some(b'"') => Some(self.plain_str()?),
                    _ => {
                        self.value(1)?;
                        None
                    }
                };
            } else {
                self.value(1)?;
            }
            if self.eat(b',') {
                continue;
            }
            return self.eat(b'}').then_some(id);
        }
    }

    /// A string without escapes or control characters (at `"`), borrowed from the text.
    fn plain_str(&mut self) -> Option<&'a str> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        let start = self.i + 1;
        let end = start + plain_len(self.b.get(start..)?);
        if self.b.get(end) != Some(&b'"') {
            return None; // an escape, a control character or the end of the text
        }
        self.i = end + 1;
        // Both ends are ASCII quotes, so these are char boundaries of the text.
        self.s.get(start..end)
    }

    /// Skips one value (at its first byte) of the plain subset, `depth` containers deep.
    fn value(&mut self, depth: u32) -> Option<()> {
        match *self.b.get(self.i)? {
            b'"' => self.plain_str().map(drop),
            b'{' | b'[' if depth >= MAX_DEPTH => None,
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.plain_str()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    self.ws();
                    self.value(depth + 1)?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b'}').then_some(());
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.ws();
                    self.value(depth + 1)?;
                    if self.eat(b',') {
                        continue;
                    }
                    return self.eat(b']').then_some(());
                }
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => self.number(),
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Some(())
        } else {
            None
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?` with a bounded integer part; an exponent is left to
    /// serde (`1e400` is out of range there).
    fn number(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let int = self.digits();
        match int {
            0 => return None,
            1 => {}
            n if n > MAX_INT_DIGITS || self.b[self.i - n] == b'0' => return None,
            _ => {}
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return None;
            }
        }
        match self.b.get(self.i) {
            Some(b'e' | b'E') => None,
            _ => Some(()),
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: &str = r#"{"type":"pkg.install","id":"pkg-op-7","ts":"2025-11-03T13:20:00.000000Z","tenant":"default","sender":{"role":"scheduler","id":"scheduler-control"},"ack":{"request":true},"payload":{"name":"extra.pkg1","version":"1.0.0","n":[1,-2.5,0,true,false,null,{}],"e":[]}}"#;

    #[test]
    fn agrees_with_serde_on_hand_picked_texts() {
        let cases = [
            FRAME,
            r#"{"id":"a"}"#,
            r#" { "id" : "a" } "#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"id":"a","id":1}"#,
            r#"{"id":1,"id":"b"}"#,
            r#"{"id":null}"#,
            r#"{"id":"a\u0062"}"#,
            r#"{"i\u0064":"x"}"#,
            r#"{"id":"a\nb"}"#,
            "{\"id\":\"a\nb\"}",
            r#"{"id":"a","x":1e400}"#,
            r#"{"id":"a","x":1e3}"#,
            r#"{"id":"a","x":01}"#,
            r#"{"id":"a","x":-}"#,
            r#"{"id":"a","x":1.}"#,
            r#"{"id":"a","x":.5}"#,
            r#"{"id":"a","x":-0.5}"#,
            r#"{"id":"a","x":[1,]}"#,
            r#"{"id":"a",}"#,
            r#"{"id":"a"} x"#,
            r#"{"id":"a"}}"#,
            r#"{"id":"a""#,
            r#"{"id":"a","x":tru}"#,
            r#"{"id":"a","x":NaN}"#,
            r#"{"x":{"id":"inner"}}"#,
            r#"["id","a"]"#,
            r#""id""#,
            "",
            "   ",
            "{",
            "{}",
            r#"{"id":"é☃😀"}"#,
            r#"{"id":""}"#,
            "{\"id\":\"a\",\"x\":\"\u{1}\"}",
        ];
        for t in cases {
            assert_eq!(envelope_id(t), serde_id(t), "{t:?}");
        }
        assert_eq!(envelope_id(FRAME).as_deref(), Some("pkg-op-7"));
        assert_eq!(
            scan(FRAME),
            Some(Some("pkg-op-7")),
            "the common frame is read without serde"
        );
        let deep = format!(
            "{{\"id\":\"d\",\"x\":{}{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert_eq!(envelope_id(&deep), serde_id(&deep));
        let big = format!("{{\"id\":\"b\",\"x\":{}}}", "9".repeat(400));
        assert_eq!(envelope_id(&big), serde_id(&big));
    }

    proptest! {
        /// Damaged copies of a frame: a byte range replaced by JSON-ish text.
        #[test]
        fn agrees_with_serde_on_damaged_frames(
            at in 0..FRAME.len(),
            cut in 0usize..8,
            insert in r#"[ {}\[\]",:0-9eE.+\-a-z\\\n]{0,6}"#,
        ) {
            let end = (at + cut).min(FRAME.len());
            let t = format!("{}{}{}", &FRAME[..at], insert, &FRAME[end..]);
            prop_assert_eq!(envelope_id(&t), serde_id(&t), "{:?}", t);
        }

        /// Small JSON-ish texts from the characters that matter.
        #[test]
        fn agrees_with_serde_on_generated_texts(t in r#"\{[ {}\[\]",:0-9eE.\-idtrunl\\]{0,24}"#) {
            prop_assert_eq!(envelope_id(&t), serde_id(&t), "{:?}", t);
        }
    }
}
