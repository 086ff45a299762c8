//! The id of an ack the scheduler sends: the UUID `Rng::uuid_v4` would draw, written into a
//! stack buffer. An ack's id goes into its frame and nowhere else, so the `String` that
//! `uuid_v4` hands back (an allocation and a free per ack) is not needed.

use crate::rng::Rng;

/// Bytes in a hyphenated UUID.
pub(crate) const UUID_LEN: usize = uuid::fmt::Hyphenated::LENGTH;

/// Exactly the text `rng.uuid_v4()` returns, with the same two draws from `rng`
/// (`matches_uuid_v4_and_its_draws`): version nibble 4 in byte 6, variant bits 10 in byte 8.
pub(crate) fn uuid_v4_into<'b>(rng: &mut Rng, text: &'b mut [u8; UUID_LEN]) -> &'b str {
    let hi = (rng.next_u64() & !0xf000) | 0x4000;
    let lo = (rng.next_u64() & !(0xc0 << 56)) | (0x80 << 56);
    uuid::Uuid::from_u64_pair(hi, lo)
        .hyphenated()
        .encode_lower(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_uuid_v4_and_its_draws() {
        for seed in [0u64, 1, 7, 42, u64::MAX] {
            let (mut a, mut b) = (Rng::new(seed), Rng::new(seed));
            for _ in 0..200 {
                let mut text = [0u8; UUID_LEN];
                assert_eq!(uuid_v4_into(&mut a, &mut text), b.uuid_v4());
            }
            // Both streams are still in step.
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }
}
