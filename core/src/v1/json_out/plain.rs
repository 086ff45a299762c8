//! `plain_len`: how much of a byte string JSON leaves as it is. Both directions of the codec
//! scan nearly every byte of every frame with it (the writer to know a string needs no
//! escaping, the fast decoder to find a string's closing quote), so it reads a word (8
//! bytes) per step. A string's last partial word is read as the one full word that ends at
//! its last byte: the bytes it shares with the word before are known to be clean, so its
//! first flagged byte is still the first. (SSE2 would read 16 bytes a step, but even its
//! register-only intrinsics need `unsafe` to call outside `#[target_feature]` functions,
//! and the core forbids `unsafe`.)

/// True for the bytes JSON must escape: `"`, `\` and the control characters below 0x20.
#[inline]
fn special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// How many leading bytes of `b` need no escaping in JSON: the index of the first `"`, `\`
/// or control character (below 0x20), or `b.len()`.
#[inline]
pub(crate) fn plain_len(b: &[u8]) -> usize {
    let n = b.len();
    if n < 8 {
        return short_plain_len(b);
    }
    let mut i = 0;
    while i + 8 <= n {
        let h = word_hits(word(b, i));
        if h != 0 {
            return i + first(h);
        }
        i += 8;
    }
    if i == n {
        return n;
    }
    let h = word_hits(word(b, n - 8));
    if h != 0 {
        n - 8 + first(h)
    } else {
        n
    }
}

/// True when none of the 36 bytes needs escaping: a UUID-long string body (most ids the
/// fast decoder reads) checked as five overlapping words with one branch, where the
/// [`plain_len`] loop takes five steps. (With no flagged byte there is no borrow, so a word
/// has no hit at all exactly when all its bytes are clean.)
#[inline(always)]
pub(crate) fn clean_36(b: &[u8; 36]) -> bool {
    let hits = word_hits(word(b, 0))
        | word_hits(word(b, 8))
        | word_hits(word(b, 16))
        | word_hits(word(b, 24))
        | word_hits(word(b, 28));
    hits == 0
}

/// [`plain_len`] of fewer than 8 bytes (the writers' tenants, worker ids, small keys): from
/// 4 bytes on, the first four and the last four read as one word, whose lowest flagged lane
/// is the answer (the last four overlap clean bytes only when the first four are clean, and
/// a clean lane borrows nothing into the next); below 4, byte by byte.
#[inline]
fn short_plain_len(b: &[u8]) -> usize {
    let n = b.len();
    match (b.first_chunk::<4>(), b.last_chunk::<4>()) {
        (Some(lo), Some(hi)) => {
            let w = u64::from(u32::from_le_bytes(*lo)) | u64::from(u32::from_le_bytes(*hi)) << 32;
            let h = word_hits(w);
            if h == 0 {
                return n;
            }
            let f = first(h);
            // Lane 4 + k holds byte n - 4 + k (f >= 4 and n >= 4: no underflow).
            if f < 4 {
                f
            } else {
                n + f - 8
            }
        }
        _ => b.iter().position(|&c| special(c)).unwrap_or(n),
    }
}

/// The index of the lowest flagged byte of a word's hit mask (one high bit per byte).
#[inline]
fn first(hits: u64) -> usize {
    (hits.trailing_zeros() / 8) as usize
}

/// The eight bytes at `b[at..at + 8]` as a little-endian word. Callers keep `at + 8 <= len`.
#[inline]
fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A mask with the high bit of every byte of `v` that may be special; the LOWEST set one
/// is exact (later ones may be false positives: borrows run upwards).
#[inline]
fn word_hits(v: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte is flagged if it is below 0x20 or equal to `"` or `\` (classic bit tricks:
    // `x - 0x01..` borrows into the high bit exactly for zero bytes of `x`). Bytes of
    // 0x80 and above never flag: their high bit is masked out by `!v` (`x` and `bs`
    // share `v`'s high bits). `x = v ^ 0x02` maps `"` (0x22) to 0x20 and keeps every
    // byte below 0x20 below it, while 0x20..=0x23 only swap among themselves: `x < 0x21`
    // flags exactly the control characters and `"`, one test instead of two.
    let x = v ^ (ONES * 0x02);
    let ctl_or_quote = x.wrapping_sub(ONES * 0x21);
    let bs = v ^ (ONES * b'\\' as u64);
    (ctl_or_quote | bs.wrapping_sub(ONES)) & !v & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one byte at a time: the oracle.
    fn slow(b: &[u8]) -> usize {
        b.iter().position(|&c| special(c)).unwrap_or(b.len())
    }

    #[test]
    fn finds_the_first_byte_to_escape_in_known_strings() {
        for s in [
            "",
            "abc",
            "0123456789abcdef\"",
            "é☃😀 ok",
            "xxxxxxx\u{1f}",
            "\\",
            "90c6e112-da0c-4efe-9cb3-ff1de549c2a6",
            "2025-11-03T13:20:00.069108+00:00",
        ] {
            assert_eq!(plain_len(s.as_bytes()), slow(s.as_bytes()), "{s:?}");
        }
    }

    /// Every length 0..48 (every split into words, tails and overlaps), every byte value
    /// at every position, behind plain ASCII and behind bytes of 0x80 and above, and a
    /// second special byte after the first (the tail word overlaps flagged bytes then).
    #[test]
    fn agrees_with_the_byte_loop_for_every_length_byte_and_position() {
        for len in 0..48usize {
            for fill in [b'a', 0xc3u8, 0xffu8, b'#'] {
                let clean = vec![fill; len];
                assert_eq!(plain_len(&clean), slow(&clean), "len {len} fill {fill:#x}");
                for at in 0..len {
                    for c in 0..=255u8 {
                        let mut v = clean.clone();
                        v[at] = c;
                        assert_eq!(plain_len(&v), slow(&v), "len {len} {c:#x} at {at}");
                    }
                    for later in at + 1..len {
                        let mut v = clean.clone();
                        v[at] = b'"';
                        v[later] = 0;
                        assert_eq!(plain_len(&v), at, "len {len} at {at} then {later}");
                    }
                }
            }
        }
    }

    /// `clean_36` against the definition: every byte value at every position of a clean
    /// 36-byte text (ASCII and high bytes around it), and the clean texts themselves.
    #[test]
    fn clean_36_is_true_exactly_when_no_byte_is_special() {
        for fill in [b'a', b'-', 0xc3u8, 0xffu8, 0x21, 0x23, 0x5d] {
            let clean = [fill; 36];
            assert!(clean_36(&clean), "fill {fill:#x}");
            for at in 0..36 {
                for c in 0..=255u8 {
                    let mut v = clean;
                    v[at] = c;
                    assert_eq!(clean_36(&v), !special(c), "{c:#x} at {at} fill {fill:#x}");
                }
            }
        }
        let uuid: &[u8; 36] = b"90c6e112-da0c-4efe-9cb3-ff1de549c2a6";
        assert!(clean_36(uuid));
    }

    /// The word scan alone against the definition on every byte value in every lane, with every other lane varied.
    #[test]
    fn word_hits_lowest_lane_is_exact() {
        for c in 0..=255u8 {
            for lane in 0..8 {
                for other in [b'a', 0x80, 0xff, 0x20, 0x21, 0x23, 0x5b, 0x5d] {
                    let mut w = [other; 8];
                    w[lane] = c;
                    let h = word_hits(u64::from_le_bytes(w));
                    let want = w.iter().position(|&b| special(b));
                    assert_eq!((h != 0).then(|| first(h)), want, "{c:#x} in lane {lane}");
                }
            }
        }
    }
}
