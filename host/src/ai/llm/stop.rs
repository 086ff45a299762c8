//! Turning generated token bytes into streamed text: multi-byte characters split across
//! tokens are held until complete, and stop strings are matched on the text (so a stop
//! string spanning several tokens is found). Text that could still turn out to be the start
//! of a stop string is held back, so nothing after a stop string is ever streamed.

/// What one token's bytes produced.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Push {
    /// Text that is now final and may be streamed (possibly empty).
    pub delta: String,
    /// A stop string was completed; the text ends before it.
    pub stopped: bool,
}

pub struct TextStream {
    stops: Vec<String>,
    /// Bytes of an incomplete UTF-8 sequence waiting for the next token.
    pending: Vec<u8>,
    text: String,
    /// `text[..emitted]` has been handed out; always a char boundary.
    emitted: usize,
}

impl TextStream {
    pub fn new(stops: Vec<String>) -> Self {
        TextStream {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            pending: Vec::new(),
            text: String::new(),
            emitted: 0,
        }
    }

    /// The final text so far (held-back text included, anything after a stop excluded).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Adds one token's bytes.
    pub fn push(&mut self, bytes: &[u8]) -> Push {
        self.pending.extend_from_slice(bytes);
        self.decode_pending(false);
        // A stop can only start at or after `emitted`: text before it was checked to hold
        // no stop string and no prefix of one that reaches its end.
        if let Some(at) = self.find_stop() {
            self.text.truncate(at);
            self.pending.clear();
            let delta = self.text[self.emitted..].to_string();
            self.emitted = self.text.len();
            return Push {
                delta,
                stopped: true,
            };
        }
        let safe = self.text.len() - self.held_suffix();
        let delta = self.text[self.emitted..safe].to_string();
        self.emitted = safe;
        Push {
            delta,
            stopped: false,
        }
    }

    /// Ends the stream (end of generation or token limit): everything still held is
    /// final, incomplete UTF-8 becomes U+FFFD.
    pub fn finish(&mut self) -> String {
        self.decode_pending(true);
        let delta = self.text[self.emitted..].to_string();
        self.emitted = self.text.len();
        delta
    }

    /// Moves the complete UTF-8 prefix of `pending` into `text`; invalid bytes become
    /// U+FFFD. With `flush`, an incomplete tail is replaced too.
    fn decode_pending(&mut self, flush: bool) {
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    self.text.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let good = e.valid_up_to();
                    // Invariant: from_utf8 said the first `good` bytes are valid UTF-8.
                    self.text
                        .push_str(std::str::from_utf8(&self.pending[..good]).unwrap_or(""));
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..good + bad);
                        }
                        None if flush => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.clear();
                            return;
                        }
                        None => {
                            self.pending.drain(..good);
                            return;
                        }
                    }
                }
            }
        }
    }

    fn find_stop(&self) -> Option<usize> {
        let tail = &self.text[self.emitted..];
        self.stops
            .iter()
            .filter_map(|s| tail.find(s.as_str()))
            .min()
            .map(|i| self.emitted + i)
    }

    /// Length of the longest suffix of the unemitted text that is a proper prefix of a stop
    /// string (that text must wait for the next token).
    fn held_suffix(&self) -> usize {
        let tail = &self.text[self.emitted..];
        let mut held = 0;
        for stop in &self.stops {
            for (i, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..i];
                if i > held && tail.ends_with(prefix) {
                    held = i;
                }
            }
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], tokens: &[&[u8]]) -> (Vec<String>, bool, String) {
        let mut s = TextStream::new(stops.iter().map(|s| s.to_string()).collect());
        let mut deltas = Vec::new();
        for t in tokens {
            let p = s.push(t);
            deltas.push(p.delta);
            if p.stopped {
                return (deltas, true, s.text().to_string());
            }
        }
        deltas.push(s.finish());
        (deltas, false, s.text().to_string())
    }

    #[test]
    fn plain_text_streams_token_by_token() {
        let (d, stopped, text) = run(&[], &[b"Hel", b"lo", b" world"]);
        assert_eq!(d, vec!["Hel", "lo", " world", ""]);
        assert!(!stopped);
        assert_eq!(text, "Hello world");
    }

    #[test]
    fn a_stop_string_spanning_tokens_ends_the_text_before_it() {
        let (d, stopped, text) = run(&["\nUser:"], &[b"Sure.", b"\nUs", b"er", b":", b" more"]);
        assert!(stopped);
        assert_eq!(text, "Sure.");
        // The partial match was held back, never streamed.
        assert_eq!(d.concat(), "Sure.");
        assert_eq!(d, vec!["Sure.", "", "", ""]);
    }

    #[test]
    fn a_false_start_of_a_stop_string_is_released() {
        let (d, stopped, text) = run(&["END"], &[b"the EN", b"D", b"!"]);
        assert!(stopped);
        assert_eq!(text, "the ");
        assert_eq!(d.concat(), "the ");
        let (d, stopped, text) = run(&["END"], &[b"the EN", b"ough", b"!"]);
        assert!(!stopped);
        assert_eq!(text, "the ENough!");
        assert_eq!(d, vec!["the ", "ENough", "!", ""]);
    }

    #[test]
    fn the_earliest_of_several_stops_wins_and_a_stop_inside_one_token_cuts_it() {
        let (_, stopped, text) = run(&["b", "xyz"], &[b"aaxyzab"]);
        assert!(stopped);
        assert_eq!(text, "aa");
    }

    #[test]
    fn multibyte_characters_split_across_tokens_are_held_until_complete() {
        let e = "é😀".as_bytes(); // c3 a9 | f0 9f 98 80
        let (d, _, text) = run(&[], &[&e[..1], &e[1..3], &e[3..5], &e[5..]]);
        assert_eq!(d, vec!["", "é", "", "😀", ""]);
        assert_eq!(text, "é😀");
    }

    #[test]
    fn invalid_or_truncated_utf8_becomes_replacement_characters() {
        let (_, _, text) = run(&[], &[b"a\xffb", b"\xf0\x9f"]);
        assert_eq!(text, "a\u{fffd}b\u{fffd}");
    }
}
