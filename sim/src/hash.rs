//! The stable, dependency-free hash of the action log (determinism self-check). It takes
//! eight bytes per step, in four independent lanes over 32-byte blocks (FNV-1a took one
//! byte, and hashing every frame's text was a visible share of the run time); every input
//! bit still reaches the state, so two runs that differ anywhere in their logs still hash
//! apart with overwhelming probability.

const SEED: u64 = 0xcbf2_9ce4_8422_2325;
/// An odd 64-bit constant (the golden ratio's, as in SplitMix64 / wyhash).
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Incremental hash over bytes and integers. Same input, same value, on every platform
/// (little-endian words are read explicitly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogHash(u64);

impl Default for LogHash {
    fn default() -> Self {
        LogHash(SEED)
    }
}

/// Bytes per step of the four-lane loop, and the lanes' starting offsets from the state.
const BLOCK: usize = 32;
const LANE: [u64; 3] = [
    0x243f_6a88_85a3_08d3,
    0x1319_8a2e_0370_7344,
    0xa409_3822_299f_31d0,
];

/// The first eight bytes of `c` (at least eight), little-endian.
#[inline]
fn word(c: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&c[..8]);
    u64::from_le_bytes(w)
}

#[inline]
fn mix(h: u64, w: u64) -> u64 {
    (h ^ w).wrapping_mul(K).rotate_left(31)
}

impl LogHash {
    pub fn bytes(&mut self, b: &[u8]) {
        let mut h = self.0;
        let mut rest = b;
        if b.len() >= BLOCK {
            // Four independent lanes, 32 bytes a step: one lane's chain of multiplies was
            // bound by their latency, not their number, and most frames are a few hundred
            // bytes. Each lane still takes every bit of its words.
            let mut lanes = [h, h ^ LANE[0], h ^ LANE[1], h ^ LANE[2]];
            let mut blocks = b.chunks_exact(BLOCK);
            for blk in &mut blocks {
                for (j, lane) in lanes.iter_mut().enumerate() {
                    *lane = mix(*lane, word(&blk[j * 8..]));
                }
            }
            h = lanes.iter().fold(h, |acc, &l| mix(acc, l));
            rest = blocks.remainder();
        }
        let mut words = rest.chunks_exact(8);
        for c in &mut words {
            h = mix(h, word(c));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            // Zero padding is unambiguous because `str` hashes the length first and
            // `u64` always hashes whole words.
            let mut w = [0u8; 8];
            w[..tail.len()].copy_from_slice(tail);
            h = mix(h, u64::from_le_bytes(w));
        }
        self.0 = h;
    }
    pub fn u64(&mut self, v: u64) {
        self.0 = mix(self.0, v);
    }
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
    pub fn value(&self) -> u64 {
        // A final avalanche so nearby states do not give nearby values.
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// The action-log hash as a run keeps it: `None` when nobody will read the value (a sweep
/// without `--check-determinism`), so such a run does not pay for hashing every frame.
#[derive(Debug, Clone, Copy)]
pub struct OptHash(Option<LogHash>);

impl OptHash {
    pub fn new(on: bool) -> Self {
        OptHash(on.then(LogHash::default))
    }
    #[inline]
    pub fn u64(&mut self, v: u64) {
        if let Some(h) = &mut self.0 {
            h.u64(v);
        }
    }
    #[inline]
    pub fn str(&mut self, s: &str) {
        if let Some(h) = &mut self.0 {
            h.str(s);
        }
    }
    pub fn value(&self) -> Option<u64> {
        self.0.map(|h| h.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(parts: &[&str]) -> u64 {
        let mut h = LogHash::default();
        for p in parts {
            h.str(p);
        }
        h.value()
    }

    #[test]
    fn differs_by_input_and_is_stable() {
        assert_ne!(of(&["abc"]), of(&["abd"]));
        assert_eq!(of(&["abc"]), of(&["abc"]));
        // Word boundaries and the padding of a short tail do not collide.
        assert_ne!(of(&["abcdefgh"]), of(&["abcdefgh\0"]));
        assert_ne!(of(&["ab", "c"]), of(&["a", "bc"]));
        assert_ne!(of(&["0123456789abcdef"]), of(&["0123456789abcdeg"]));
    }

    #[test]
    fn every_byte_position_matters() {
        let base = "x".repeat(40);
        let h0 = of(&[&base]);
        for i in 0..base.len() {
            let mut s = base.clone().into_bytes();
            s[i] = b'y';
            let s = String::from_utf8(s).unwrap_or_default();
            assert_ne!(of(&[&s]), h0, "byte {i}");
        }
    }

    /// The long string's value, computed in Python from the definition like the one above.
    const PINNED_LONG: u64 = 0x5c09_60a4_9724_ba64;

    #[test]
    fn value_is_the_same_on_every_platform() {
        // Pinned (computed independently, in Python, from the definition): a change here
        // changes every recorded log hash.
        let mut h = LogHash::default();
        h.u64(7);
        h.str("astra");
        assert_eq!(h.value(), 0xe2b5_1378_a8de_480c);
        // Long enough for the four lanes (70 bytes: two blocks, then a word and a tail).
        let mut h = LogHash::default();
        h.str(&"0123456789".repeat(7));
        assert_eq!(h.value(), PINNED_LONG);
    }

    #[test]
    fn opt_hash_is_the_log_hash_or_nothing() {
        let (mut on, mut off, mut plain) =
            (OptHash::new(true), OptHash::new(false), LogHash::default());
        for h in [&mut on, &mut off] {
            h.u64(7);
            h.str("astra");
        }
        plain.u64(7);
        plain.str("astra");
        assert_eq!(on.value(), Some(plain.value()));
        assert_eq!(off.value(), None);
    }
}
