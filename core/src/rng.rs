//! Seeded pseudo-random numbers for the core: jitter and envelope ids. Deterministic by
//! construction so that a simulation replays bit-for-bit from its seed.

/// xoshiro256** seeded through splitmix64. Small, fast and good enough for jitter and ids;
/// not for cryptography.
/// Bytes in a hyphenated UUID.
pub const UUID_LEN: usize = uuid::fmt::Hyphenated::LENGTH;

#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            s: [next(), next(), next(), next()],
        }
    }

    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `[0, bound)`; `bound == 0` yields 0.
    pub fn below(&mut self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // Lemire's multiply-shift; the tiny bias is irrelevant for jitter.
        ((self.next_u64() as u128 * bound as u128) >> 64) as u64
    }

    /// Uniform float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p` (clamped to [0, 1]).
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p.clamp(0.0, 1.0)
    }

    /// A random UUIDv4 string (lowercase, hyphenated), drawn from this generator.
    pub fn uuid_v4(&mut self) -> String {
        let mut text = [0u8; UUID_LEN];
        self.uuid_v4_into(&mut text).to_owned()
    }

    /// [`Self::uuid_v4`]'s text (the same two draws) written into `text`, for an id that
    /// goes into one frame and nowhere else (the scheduler's acks): no `String` to allocate.
    pub fn uuid_v4_into<'b>(&mut self, text: &'b mut [u8; UUID_LEN]) -> &'b str {
        // Big-endian bytes 0-7 are `hi`, 8-15 `lo`: byte 6 takes the version nibble 4,
        // byte 8 the variant bits 10.
        let hi = (self.next_u64() & !0xf000) | 0x4000;
        let lo = (self.next_u64() & !(0xc0 << 56)) | (0x80 << 56);
        // Every frame carries one. The `uuid` crate writes the same text (big-endian `hi`
        // then `lo`, lowercase, hyphenated; `uuid_matches_the_formatted_reference`) and hands
        // it back as a `str`: a 36-byte UTF-8 check was a quarter of this function.
        uuid::Uuid::from_u64_pair(hi, lo)
            .hyphenated()
            .encode_lower(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-place writer makes the same two draws and the same text as `uuid_v4`.
    #[test]
    fn uuid_v4_into_matches_uuid_v4_and_its_draws() {
        for seed in [0u64, 1, 7, 42, u64::MAX] {
            let (mut a, mut b) = (Rng::new(seed), Rng::new(seed));
            for _ in 0..200 {
                let mut text = [0u8; UUID_LEN];
                assert_eq!(a.uuid_v4_into(&mut text), b.uuid_v4());
            }
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
        assert_ne!(Rng::new(1).next_u64(), Rng::new(2).next_u64());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(7);
        for bound in [1u64, 2, 3, 1000, u64::MAX] {
            for _ in 0..200 {
                assert!(r.below(bound) < bound);
            }
        }
        assert_eq!(r.below(0), 0);
    }

    /// The former formatting, as the reference the buffer version must match exactly.
    fn uuid_by_format(hi: u64, lo: u64) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&hi.to_be_bytes());
        b[8..].copy_from_slice(&lo.to_be_bytes());
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }

    #[test]
    fn uuid_matches_the_formatted_reference() {
        let mut r = Rng::new(11);
        let mut shadow = Rng::new(11);
        for _ in 0..2_000 {
            let (hi, lo) = (shadow.next_u64(), shadow.next_u64());
            assert_eq!(r.uuid_v4(), uuid_by_format(hi, lo));
        }
    }

    #[test]
    fn uuid_shape() {
        let mut r = Rng::new(3);
        let u = r.uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
        assert!(u
            .chars()
            .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
