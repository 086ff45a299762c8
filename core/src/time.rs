//! Virtual time for the sans-io core: a monotonic `Instant` the driver supplies, and
//! RFC 3339 formatting/validation of wall-clock timestamps without reading any clock.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, Sub};
use std::time::Duration;

/// A point on the driver's monotonic clock, in microseconds since an arbitrary origin
/// (the driver's start, or the simulator's epoch). The core never reads a clock itself.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Instant(pub u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub fn from_micros(us: u64) -> Self {
        Instant(us)
    }
    pub fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1000))
    }
    pub fn as_micros(self) -> u64 {
        self.0
    }
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

impl fmt::Debug for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:06}s", self.0 / 1_000_000, self.0 % 1_000_000)
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(
            self.0
                .saturating_add(d.as_micros().min(u64::MAX as u128) as u64),
        )
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// Maps the monotonic clock onto wall time: `wall(now) = epoch_unix_micros + now`.
/// The driver measures the epoch once at start; the simulator picks a fixed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WallClock {
    pub epoch_unix_micros: u64,
}

impl WallClock {
    pub fn new(epoch_unix_micros: u64) -> Self {
        WallClock { epoch_unix_micros }
    }
    /// RFC 3339 UTC with an explicit `+00:00` offset and microseconds, as the scheduler sends.
    pub fn rfc3339(&self, now: Instant) -> String {
        format_rfc3339_micros(self.unix_micros(now))
    }

    /// The wall time of `now` in unix microseconds (what [`Self::rfc3339`] formats).
    pub fn unix_micros(&self, now: Instant) -> u64 {
        self.epoch_unix_micros.saturating_add(now.0)
    }
}

/// Formats unix microseconds as `YYYY-MM-DDTHH:MM:SS.ffffff+00:00`.
pub fn format_rfc3339_micros(unix_micros: u64) -> String {
    let mut s = String::with_capacity(32);
    push_rfc3339_micros(&mut s, unix_micros);
    s
}

/// Appends [`format_rfc3339_micros`]'s text to `buf`: the frame writers put the stamp
/// straight into the frame (no `String` of its own to allocate, copy and free).
pub fn push_rfc3339_micros(buf: &mut String, unix_micros: u64) {
    // One writer: a fresh cache holds a correct entry (the epoch), so this is the cached
    // writer's text with nothing to reuse.
    push_rfc3339_micros_cached(buf, unix_micros, &mut StampCache::new());
}

/// The last second a machine stamped, as its `YYYY-MM-DDTHH:MM:SS` text: a machine stamps
/// several frames in the same second and most of its frames on the same day, so
/// [`push_rfc3339_micros_cached`] re-derives the civil date only when the day changes and
/// the time of day only when the second does. Owned by its caller (the core reads no
/// clock and keeps no global state); it changes no output, only how much is recomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StampCache {
    /// Unix seconds that `head` spells.
    secs: u64,
    /// `secs / 86_400`, the day `head[..10]` spells.
    days: u64,
    head: [u8; 19],
}

impl StampCache {
    /// Starts at the unix epoch (a correct entry, so no "empty" state to test for).
    pub fn new() -> Self {
        StampCache {
            secs: 0,
            days: 0,
            head: *b"1970-01-01T00:00:00",
        }
    }
}

impl Default for StampCache {
    fn default() -> Self {
        Self::new()
    }
}

/// [`push_rfc3339_micros`]'s text (the same bytes, `stamp_cache_writes_what_the_plain_writer_writes`),
/// reusing the date and time of day `cache` holds when `unix_micros` falls on its day or second.
pub fn push_rfc3339_micros_cached(buf: &mut String, unix_micros: u64, cache: &mut StampCache) {
    let secs = unix_micros / 1_000_000;
    if secs != cache.secs {
        let days = secs / 86_400;
        if days != cache.days {
            let (y, m, d) = civil_from_unsigned_days(days);
            if y > 9999 {
                // Never cached: the fixed layout has four year digits.
                return push_wide_year(buf, unix_micros);
            }
            put_date(&mut cache.head, y, m, d);
            cache.days = days;
        }
        put_time_of_day(&mut cache.head, secs % 86_400);
        cache.secs = secs;
    }
    let mut b = Stamp(*TEMPLATE);
    b.0[..19].copy_from_slice(&cache.head);
    put_micros(&mut b.0, unix_micros % 1_000_000);
    b.push_to(buf);
}

/// The layout both writers fill in.
const TEMPLATE: &[u8; 32] = b"0000-00-00T00:00:00.000000+00:00";

/// A stamp being written, word-aligned so that the UTF-8 check of its 32 ASCII bytes takes
/// the standard library's two-words-at-a-time path from the first byte (from an unaligned
/// start it goes byte by byte up to the first word boundary).
#[repr(align(8))]
struct Stamp([u8; 32]);

impl Stamp {
    fn push_to(&self, buf: &mut String) {
        // Only ASCII digits and punctuation were written: valid UTF-8 (`unwrap_or_default`
        // never takes its default), copied in one go (a `char` collect pushed 32 times).
        buf.push_str(std::str::from_utf8(&self.0).unwrap_or_default());
    }
}

/// The digits of `v` (below 100) at `b[at..at + 2]`.
#[inline(always)]
fn put2(b: &mut [u8], at: usize, v: u64) {
    // Every caller passes a value below 100; `min` keeps the index in the table anyway
    // (a compare instead of the multiply-shift-subtract of a `% 100`).
    let i = v.min(99) as usize * 2;
    b[at] = DIGIT_PAIRS[i];
    b[at + 1] = DIGIT_PAIRS[i + 1];
}

/// `YYYY-MM-DD` at `b[..10]` (the dashes are the template's); `y` is at most 9999.
#[inline(always)]
fn put_date(b: &mut [u8], y: u64, m: u32, d: u32) {
    put2(b, 0, y / 100);
    put2(b, 2, y % 100);
    put2(b, 5, u64::from(m));
    put2(b, 8, u64::from(d));
}

/// `HH:MM:SS` at `b[11..19]` from the second of the day.
#[inline(always)]
fn put_time_of_day(b: &mut [u8], sod: u64) {
    put2(b, 11, sod / 3600);
    put2(b, 14, (sod / 60) % 60);
    put2(b, 17, sod % 60);
}

/// The six fraction digits at `b[20..26]`.
#[inline(always)]
fn put_micros(b: &mut [u8], micros: u64) {
    put2(b, 20, micros / 10_000);
    put2(b, 22, (micros / 100) % 100);
    put2(b, 24, micros % 100);
}

/// A stamp past year 9999 (never in practice; `u64` micros reach year 586,912): formatted.
#[cold]
fn push_wide_year(buf: &mut String, unix_micros: u64) {
    use std::fmt::Write as _;
    let secs = unix_micros / 1_000_000;
    let micros = unix_micros % 1_000_000;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_unsigned_days(secs / 86_400);
    // Writing to a `String` cannot fail.
    let _ = write!(
        buf,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}+00:00",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60
    );
}

#[cfg(test)]
mod stamp_cache_tests {
    use super::*;
    use crate::rng::Rng;

    fn plain(us: u64) -> String {
        let mut s = String::from("x");
        push_rfc3339_micros(&mut s, us);
        s
    }

    fn cached(us: u64, c: &mut StampCache) -> String {
        let mut s = String::from("x");
        push_rfc3339_micros_cached(&mut s, us, c);
        s
    }

    /// Any sequence of stamps, close together (same second, same day, the next day) or
    /// far apart (random, past year 9999 and back), is written as the plain writer writes
    /// it: the cache only ever skips work.
    #[test]
    fn stamp_cache_writes_what_the_plain_writer_writes() {
        let mut c = StampCache::new();
        let mut r = Rng::new(5);
        let mut us = 1_762_175_750_123_456u64;
        let fixed = [
            0,
            1,
            999_999,
            1_000_000,
            86_399_999_999,
            86_400_000_000,
            951_782_400_000_000,
            253_402_300_799_999_999,
            253_402_300_800_000_000,
            u64::MAX,
            0,
        ];
        for &f in &fixed {
            assert_eq!(cached(f, &mut c), plain(f), "{f}");
        }
        for i in 0..20_000u64 {
            us = match i % 7 {
                0 => r.below(253_402_300_800_000_000),
                1 => us.saturating_add(r.below(1_000)),
                2 => us.saturating_add(r.below(3_000_000)),
                3 => us.saturating_add(r.below(200_000_000_000)),
                4 => (us - us % 86_400_000_000).saturating_add(86_400_000_000 - 1),
                5 => us.saturating_add(1),
                _ => us.saturating_sub(r.below(2_000_000)),
            };
            assert_eq!(cached(us, &mut c), plain(us), "{us}");
        }
    }

    /// Every day from 1970 to past year 9999 (what the fixed layout covers) gets the date
    /// Hinnant's signed form gives.
    #[test]
    fn civil_agrees_on_every_day_to_9999() {
        for d in 0..2_933_000u64 {
            let (y, m, dd) = civil_from_days(d as i64);
            assert_eq!(civil_from_unsigned_days(d), (y as u64, m, dd), "{d}");
        }
    }

    #[test]
    fn a_new_cache_is_the_epoch() {
        let mut c = StampCache::default();
        assert_eq!(cached(0, &mut c), "x1970-01-01T00:00:00.000000+00:00");
        assert_eq!(cached(5, &mut c), "x1970-01-01T00:00:00.000005+00:00");
    }
}

/// `"000102…99"`: the two digits of every number below 100.
const DIGIT_PAIRS: [u8; 200] = {
    let mut t = [0u8; 200];
    let mut n = 0;
    while n < 100 {
        t[2 * n] = b'0' + (n / 10) as u8;
        t[2 * n + 1] = b'0' + (n % 10) as u8;
        n += 1;
    }
    t
};

/// [`civil_from_days`] for the days of a `u64` unix time (never before 1970), in Neri and
/// Schneider's form ("Euclidean affine functions and their application to calendar
/// algorithms", 2022): the same dates from days since 0000-03-01, with three of the
/// divisions by constants turned into multiply-and-shift steps (`civil_days_agree` and
/// `civil_agrees_on_every_day_to_9999` check it against the signed form).
fn civil_from_unsigned_days(days: u64) -> (u64, u32, u32) {
    let n = days + 719_468;
    // Century and day of the century (times 4, plus 3, to make the quotient exact).
    let n1 = 4 * n + 3;
    let c = n1 / 146_097;
    let n2 = (n1 % 146_097) | 3;
    // Year of the century and day of the (March-based) year from one 64-bit product.
    let p2 = 2_939_745 * n2;
    let z = p2 >> 32;
    let day_of_year = (p2 & 0xffff_ffff) / 2_939_745 / 4;
    // Month (high half) and day (low half) from one more product: 2141 / 65536 stands in
    // for 5 / 153, the March-based months' average length.
    let n3 = 2141 * day_of_year + 197_913;
    let m = (n3 >> 16) as u32;
    let d = ((n3 & 0xffff) / 2141) as u32 + 1;
    // January and February belong to the next civil year.
    let jan_feb = day_of_year >= 306;
    (
        100 * c + z + u64::from(jan_feb),
        if jan_feb { m - 12 } else { m },
        d,
    )
}

/// Howard Hinnant's days-since-epoch → civil date conversion (proleptic Gregorian).
#[cfg(test)]
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Checks that `s` is an RFC 3339 date-time **with** a UTC offset (`Z` or `±hh:mm`), the
/// form the scheduler's `AwareDatetime` accepts. Returns the reason when it is not.
///
/// Every decoded frame's `ts` goes through this: the fixed part is read from a 19-byte
/// array (no bounds checks, no per-range loops); `validate_reference` in the tests is the
/// straightforward form it must agree with, reason for reason.
pub fn validate_rfc3339_aware(s: &str) -> Result<(), &'static str> {
    if encoder_form(s.as_bytes()) {
        return Ok(());
    }
    validate_general(s)
}

/// [`encoder_form`] for the fast decoder's light path, which checks a stamp it does not
/// keep (no `&str` to build): `true` only for bytes [`validate_rfc3339_aware`] accepts
/// (all ASCII, so a plain JSON string body); `false` says nothing, the caller validates.
#[inline(always)]
pub(crate) fn is_encoder_stamp(b: &[u8]) -> bool {
    encoder_form(b)
}

/// True for `YYYY-MM-DDTHH:MM:SS.ffffff+hh:mm` (the 32 bytes both encoders write) with
/// the field ranges [`validate_general`] checks: a stamp it accepts. Every other text is
/// `false` and goes to `validate_general` for its answer and reason. Four word tests
/// instead of a byte-by-byte walk (every decoded frame's `ts` comes through here).
/// Always inline and `validate_general` never: merged into one body, the compiler hoisted
/// the general check's byte loads and spills into the encoder form's path (~115
/// instructions a stamp instead of ~70).
#[inline(always)]
fn encoder_form(b: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TEMPLATE: &[u8; 32] = b"0000-00-00T00:00:00.000000+00:00";
    // For each of the four words, the bits that must be zero once it is xored with the
    // template: every bit of a separator lane (it must equal the template's byte), the high
    // nibble of a digit lane (a digit is 0x30..=0x39, so xored with '0' it is 0..=9).
    const MUST_BE_ZERO: [u64; 4] = {
        let mut m = [0u64; 4];
        let mut i = 0;
        while i < 32 {
            let lane = if TEMPLATE[i] == b'0' { 0xf0 } else { 0xff };
            m[i / 8] |= lane << (8 * (i % 8));
            i += 1;
        }
        m
    };
    let Ok(b) = <&[u8; 32]>::try_from(b) else {
        return false;
    };
    let word = |a: &[u8; 32], k: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&a[8 * k..8 * k + 8]);
        u64::from_le_bytes(w)
    };
    let mut bad = 0u64;
    for (k, &zero) in MUST_BE_ZERO.iter().enumerate() {
        let y = word(b, k) ^ word(TEMPLATE, k);
        // A lane left at 0..=15 is a digit exactly when adding 6 does not reach bit 4; a
        // lane already flagged by the first term may carry into the next (one more flag).
        bad |= (y & zero) | (y.wrapping_add(ONES * 6) & (ONES * 0x10));
    }
    if bad != 0 {
        return false;
    }
    // All digits now, so two digits compare as their value when read as one big-endian
    // pair: the field ranges without a parse.
    let pair = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let within = |i: usize, lo: &[u8; 2], hi: &[u8; 2]| {
        (u16::from_be_bytes(*lo)..=u16::from_be_bytes(*hi)).contains(&pair(i))
    };
    within(5, b"01", b"12")
        && within(8, b"01", b"31")
        && pair(11) <= u16::from_be_bytes(*b"23")
        && pair(14) <= u16::from_be_bytes(*b"59")
        && pair(17) <= u16::from_be_bytes(*b"60")
}

/// The full check, with the reason for a rejection.
#[inline(never)]
#[cold]
fn validate_general(s: &str) -> Result<(), &'static str> {
    let b = s.as_bytes();
    let h: &[u8; 19] = match b.first_chunk::<19>() {
        Some(h) if b.len() >= 20 => h,
        _ => return Err("too short for an RFC 3339 date-time with offset"),
    };
    let dig = |i: usize| h[i].wrapping_sub(b'0') < 10;
    let date = dig(0) & dig(1) & dig(2) & dig(3) & (h[4] == b'-') & dig(5) & dig(6);
    if !(date & (h[7] == b'-') & dig(8) & dig(9)) {
        return Err("date part must be YYYY-MM-DD");
    }
    if !matches!(h[10], b'T' | b't' | b' ') {
        return Err("date and time must be separated by 'T'");
    }
    let time = dig(11) & dig(12) & (h[13] == b':') & dig(14) & dig(15) & (h[16] == b':');
    if !(time & dig(17) & dig(18)) {
        return Err("time part must be HH:MM:SS");
    }
    // Both bytes are ASCII digits (checked above): their value without a `str::parse`.
    let num = |i: usize| u32::from(h[i] - b'0') * 10 + u32::from(h[i + 1] - b'0');
    if !(1..=12).contains(&num(5)) || !(1..=31).contains(&num(8)) {
        return Err("month or day out of range");
    }
    if num(11) > 23 || num(14) > 59 || num(17) > 60 {
        return Err("hour, minute or second out of range");
    }
    fraction_and_offset(&b[19..])
}

/// The part of an RFC 3339 stamp after its seconds: an optional `.digits`, then `Z` or
/// `±hh:mm`. Shared with the tests' reference validator (this part did not change).
fn fraction_and_offset(rest: &[u8]) -> Result<(), &'static str> {
    let mut i = 0;
    if rest.first() == Some(&b'.') {
        i = 1;
        while rest.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == 1 {
            return Err("fraction of a second needs digits");
        }
    }
    match &rest[i..] {
        [b'Z'] | [b'z'] => Ok(()),
        [b'+' | b'-', h1, h2, b':', m1, m2]
            if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) =>
        {
            Ok(())
        }
        [] => Err("a UTC offset (Z or +hh:mm) is required"),
        _ => Err("offset must be Z or +hh:mm"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339_micros(0), "1970-01-01T00:00:00.000000+00:00");
        // 2025-11-03T13:15:50.123456Z
        assert_eq!(
            format_rfc3339_micros(1_762_175_750_123_456),
            "2025-11-03T13:15:50.123456+00:00"
        );
        // leap day
        assert_eq!(
            format_rfc3339_micros(951_782_400_000_000),
            "2000-02-29T00:00:00.000000+00:00"
        );
    }

    #[test]
    fn buffer_formatting_matches_format() {
        let mut r = crate::rng::Rng::new(5);
        let mut cases = vec![0u64, 1, 59_999_999, 253_402_300_799_999_999];
        cases.extend((0..5_000).map(|_| r.below(253_402_300_800_000_000)));
        cases.extend((0..500).map(|_| 253_402_300_800_000_000 + r.below(u64::MAX / 2)));
        for us in cases {
            let secs = us / 1_000_000;
            let sod = secs % 86_400;
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let want = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}+00:00",
                sod / 3600,
                (sod / 60) % 60,
                sod % 60,
                us % 1_000_000
            );
            assert_eq!(format_rfc3339_micros(us), want, "{us}");
        }
    }

    /// The unsigned date conversion against the signed one on every day of 0..=9999 and
    /// on random days up to `u64::MAX` microseconds.
    #[test]
    fn civil_days_agree() {
        let mut days: Vec<u64> = (0..3_000_000).step_by(7).collect();
        days.extend(0..800);
        let mut r = crate::rng::Rng::new(6);
        days.extend((0..5_000).map(|_| r.below(u64::MAX / 86_400_000_000)));
        days.push(u64::MAX / 86_400_000_000);
        for d in days {
            let (y, m, dd) = civil_from_days(d as i64);
            assert_eq!(civil_from_unsigned_days(d), (y as u64, m, dd), "{d}");
        }
    }

    /// The word test accepts only what the general check accepts, and accepts every stamp
    /// the formatter writes.
    #[test]
    fn encoder_form_is_a_subset_of_the_general_check() {
        let mut r = crate::rng::Rng::new(8);
        for _ in 0..2_000 {
            let t = format_rfc3339_micros(r.below(253_402_300_800_000_000));
            assert!(encoder_form(t.as_bytes()), "{t}");
            let b = t.as_bytes();
            for at in 0..b.len() {
                for c in 0..=255u8 {
                    let mut v = b.to_vec();
                    v[at] = c;
                    if encoder_form(&v) {
                        let s = String::from_utf8(v).unwrap();
                        assert_eq!(validate_general(&s), Ok(()), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn formatted_timestamps_validate() {
        for us in [0u64, 1, 1_762_175_750_123_456, 4_102_444_799_999_999] {
            assert_eq!(validate_rfc3339_aware(&format_rfc3339_micros(us)), Ok(()));
        }
    }

    /// The form `validate_rfc3339_aware` had before it read a fixed-size array: the oracle.
    fn validate_reference(s: &str) -> Result<(), &'static str> {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| {
            b.get(r.clone())
                .is_some_and(|x| x.iter().all(u8::is_ascii_digit))
        };
        if b.len() < 20 {
            return Err("too short for an RFC 3339 date-time with offset");
        }
        if !(digits(0..4) && b[4] == b'-' && digits(5..7) && b[7] == b'-' && digits(8..10)) {
            return Err("date part must be YYYY-MM-DD");
        }
        if !(b[10] == b'T' || b[10] == b't' || b[10] == b' ') {
            return Err("date and time must be separated by 'T'");
        }
        if !(digits(11..13) && b[13] == b':' && digits(14..16) && b[16] == b':' && digits(17..19)) {
            return Err("time part must be HH:MM:SS");
        }
        let num = |r: std::ops::Range<usize>| -> u32 {
            u32::from(b[r.start] - b'0') * 10 + u32::from(b[r.start + 1] - b'0')
        };
        if !(1..=12).contains(&num(5..7)) || !(1..=31).contains(&num(8..10)) {
            return Err("month or day out of range");
        }
        if num(11..13) > 23 || num(14..16) > 59 || num(17..19) > 60 {
            return Err("hour, minute or second out of range");
        }
        fraction_and_offset(&b[19..])
    }

    /// The encoders' 32-byte form with every two-digit value 00..=99 in each ranged field
    /// (month, day, hour, minute, second): `encoder_form` accepts exactly what
    /// `validate_general` accepts, at both ends of every range.
    #[test]
    fn encoder_form_ranges_agree_with_the_general_check() {
        let base = "2025-11-03T13:20:00.069108+00:00";
        for at in [5, 8, 11, 14, 17] {
            for v in 0..100u32 {
                let mut s = base.to_string();
                s.replace_range(at..at + 2, &format!("{v:02}"));
                assert_eq!(
                    encoder_form(s.as_bytes()),
                    validate_general(&s).is_ok(),
                    "{s}"
                );
            }
        }
    }

    /// Same answer, reason for reason, as the reference on valid stamps and on every one
    /// of them with any position replaced by each of a set of telling bytes, cut short or
    /// extended.
    #[test]
    fn validation_agrees_with_the_reference() {
        let mut r = crate::rng::Rng::new(9);
        let mut bases = vec![
            "2025-11-03T13:15:50+00:00".to_string(),
            "2025-11-03T13:15:50Z".to_string(),
            "2025-11-03t13:15:50.5-07:30".to_string(),
            "2025-11-03 13:15:50.123456z".to_string(),
            "1999-12-31T23:59:60.000001+14:00".to_string(),
        ];
        bases.extend((0..40).map(|_| format_rfc3339_micros(r.below(253_402_300_800_000_000))));
        let swaps = b"0189:-.+ZzTt x\"\x00\xff";
        let mut n = 0;
        for base in &bases {
            let b = base.as_bytes();
            for at in 0..=b.len() {
                let mut cut = b[..at].to_vec();
                for &c in swaps.iter() {
                    let mut v = b.to_vec();
                    if at < v.len() {
                        v[at] = c;
                    } else {
                        v.push(c);
                    }
                    cut.push(c);
                    for t in [&v, &cut] {
                        let t = String::from_utf8_lossy(t);
                        assert_eq!(validate_rfc3339_aware(&t), validate_reference(&t), "{t:?}");
                        n += 1;
                    }
                    cut.pop();
                }
                let t = String::from_utf8_lossy(&cut);
                assert_eq!(validate_rfc3339_aware(&t), validate_reference(&t), "{t:?}");
            }
        }
        assert!(n > 10_000);
    }

    #[test]
    fn validation_rejects_naive_and_garbage() {
        assert!(validate_rfc3339_aware("2025-11-03T13:15:50+00:00").is_ok());
        assert!(validate_rfc3339_aware("2025-11-03T13:15:50Z").is_ok());
        assert!(validate_rfc3339_aware("2025-11-03T13:15:50.5-07:30").is_ok());
        assert!(validate_rfc3339_aware("2025-11-03T13:15:50").is_err());
        assert!(validate_rfc3339_aware("2025-11-03T13:15:50.123456").is_err());
        assert!(validate_rfc3339_aware("2025-13-03T13:15:50Z").is_err());
        assert!(validate_rfc3339_aware("not a time at all, really").is_err());
        assert!(validate_rfc3339_aware("2025-11-03T13:15:50.+00:00").is_err());
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let a = Instant::from_millis(5);
        assert_eq!(a + Duration::from_millis(1), Instant::from_millis(6));
        assert_eq!(Instant::ZERO - a, Duration::ZERO);
        assert_eq!(
            Instant(u64::MAX) + Duration::from_secs(1),
            Instant(u64::MAX)
        );
    }
}
