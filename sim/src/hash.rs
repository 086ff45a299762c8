//! FNV-1a 64: the stable, dependency-free hash of the action log (determinism self-check).

/// Incremental FNV-1a over bytes and integers. Same input, same value, on every platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv64(u64);

impl Default for Fnv64 {
    fn default() -> Self {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv64 {
    pub fn bytes(&mut self, b: &[u8]) {
        let mut h = self.0;
        for &x in b {
            h ^= x as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
    pub fn value(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differs_by_input_and_is_stable() {
        let mut a = Fnv64::default();
        a.str("abc");
        let mut b = Fnv64::default();
        b.str("abd");
        assert_ne!(a.value(), b.value());
        let mut c = Fnv64::default();
        c.str("abc");
        assert_eq!(a, c);
    }
}
