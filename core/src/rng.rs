//! Seeded pseudo-random numbers for the core: jitter and envelope ids. Deterministic by
//! construction so that a simulation replays bit-for-bit from its seed.

/// xoshiro256** seeded through splitmix64. Small, fast and good enough for jitter and ids;
/// not for cryptography.
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
        // Big-endian bytes 0-7 are `hi`, 8-15 `lo`: byte 6 takes the version nibble 4,
        // byte 8 the variant bits 10.
        let hi = (self.next_u64() & !0xf000) | 0x4000;
        let lo = (self.next_u64() & !(0xc0 << 56)) | (0x80 << 56);
        // Every frame carries one: 32 hex digits eight at a time (no per-digit loop), each
        // group copied to its place around the dashes of one word-aligned buffer (the UTF-8
        // check then reads it a word pair at a time from its first byte).
        let (a, b, c, d) = (hex8(hi >> 32), hex8(hi), hex8(lo >> 32), hex8(lo));
        let mut out = UuidText([b'-'; 36]);
        let o = &mut out.0;
        o[0..8].copy_from_slice(&a);
        o[9..13].copy_from_slice(&b[..4]);
        o[14..18].copy_from_slice(&b[4..]);
        o[19..23].copy_from_slice(&c[..4]);
        o[24..28].copy_from_slice(&c[4..]);
        o[28..36].copy_from_slice(&d);
        // Only hex digits and '-': valid UTF-8.
        std::str::from_utf8(&out.0).map_or_else(|_| String::new(), str::to_owned)
    }
}

/// A UUID's text being written (see [`Rng::uuid_v4`]).
#[repr(align(8))]
struct UuidText([u8; 36]);

/// The low 32 bits of `x` as 8 lowercase hex digits, most significant first (SWAR: each
/// nibble is spread into its own byte, then turned into `0-9` / `a-f` all at once).
fn hex8(x: u64) -> [u8; 8] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let x = x & 0xffff_ffff;
    let x = (x | (x << 16)) & 0x0000_ffff_0000_ffff;
    let x = (x | (x << 8)) & 0x00ff_00ff_00ff_00ff;
    let x = (x | (x << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    // A nibble of 10 or more carries into bit 4 when 6 is added: those bytes get the
    // extra 39 that takes `'0' + n` to `'a' + n - 10`.
    let letters = ((x + ONES * 6) >> 4) & ONES;
    (x + ONES * b'0' as u64 + letters * 39).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn hex8_matches_format() {
        for x in [
            0u64,
            1,
            9,
            10,
            15,
            0xdead_beef,
            0xffff_ffff,
            0x1234_5678_9abc_def0,
        ] {
            let want = format!("{:08x}", x & 0xffff_ffff);
            assert_eq!(std::str::from_utf8(&hex8(x)).unwrap(), want, "{x:x}");
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
