//! Timestamps as the json-file log records them: RFC 3339 in UTC with
//! nanoseconds, formatted and parsed by hand (no date library: the shim
//! must stay small).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NANOS_PER_SEC: u32 = 1_000_000_000;
const SECS_PER_DAY: i64 = 86_400;
/// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar.
const EPOCH_SHIFT_DAYS: i64 = 719_468;
/// Days in 400 Gregorian years.
const DAYS_PER_ERA: i64 = 146_097;

/// A point in time: whole seconds since 1970-01-01T00:00:00Z and the
/// nanoseconds within that second (always below 1 000 000 000).
///
/// Ordering is chronological.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    /// Seconds since the Unix epoch; negative before 1970.
    pub secs: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
}

/// RFC 3339 text of a [`Timestamp`], kept on the stack.
#[derive(Clone, Copy)]
pub(crate) struct TimeText {
    buf: [u8; 48],
    len: usize,
}

impl TimeText {
    /// The text as bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
            self.len += 1;
        }
    }

    /// Appends `v` in decimal, zero-padded to at least `width` digits.
    fn push_num(&mut self, v: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut n = 0;
        let mut v = v;
        while v > 0 || n < width {
            if let Some(d) = digits.get_mut(n) {
                *d = b'0' + (v % 10) as u8;
            }
            v /= 10;
            n += 1;
            if n >= digits.len() {
                break;
            }
        }
        for i in (0..n).rev() {
            self.push(digits[i]);
        }
    }
}

impl fmt::Debug for TimeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl Timestamp {
    /// Builds a timestamp, carrying whole seconds out of `nanos`.
    pub fn new(secs: i64, nanos: u32) -> Self {
        Timestamp {
            secs: secs.saturating_add(i64::from(nanos / NANOS_PER_SEC)),
            nanos: nanos % NANOS_PER_SEC,
        }
    }

    /// The current wall-clock time (`CLOCK_REALTIME`).
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// The same point as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        if self.secs >= 0 {
            UNIX_EPOCH + Duration::new(self.secs.unsigned_abs(), self.nanos)
        } else {
            UNIX_EPOCH - Duration::new(self.secs.unsigned_abs(), 0) + Duration::new(0, self.nanos)
        }
    }

    /// Formats like Go's `time.RFC3339Nano` in UTC, the form json-file
    /// writes: `2026-11-22T08:41:02.123456789Z`, trailing zeros of the
    /// fraction trimmed and no fraction at all for whole seconds.
    pub fn to_rfc3339_nano(self) -> String {
        String::from_utf8_lossy(self.text(false).as_bytes()).into_owned()
    }

    /// Formats with exactly nine fraction digits
    /// (`2026-11-22T08:41:02.120000000Z`), the form `docker logs -t` prints.
    pub fn to_rfc3339_nano_fixed(self) -> String {
        String::from_utf8_lossy(self.text(true).as_bytes()).into_owned()
    }

    /// Whether the year lies in 0..=9999, the range RFC 3339 (and Go's
    /// JSON time encoding, which json-file uses) can express.
    pub(crate) fn in_rfc3339_range(self) -> bool {
        // 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
        (-62_167_219_200..=253_402_300_799).contains(&self.secs)
    }

    /// The RFC 3339 text; `fixed` keeps all nine fraction digits.
    pub(crate) fn text(self, fixed: bool) -> TimeText {
        let days = self.secs.div_euclid(SECS_PER_DAY);
        let rem = self.secs.rem_euclid(SECS_PER_DAY) as u64;
        let (year, month, day) = civil_from_days(days);
        let mut t = TimeText {
            buf: [0; 48],
            len: 0,
        };
        if year < 0 {
            t.push(b'-');
        }
        t.push_num(year.unsigned_abs(), 4);
        t.push(b'-');
        t.push_num(u64::from(month), 2);
        t.push(b'-');
        t.push_num(u64::from(day), 2);
        t.push(b'T');
        t.push_num(rem / 3600, 2);
        t.push(b':');
        t.push_num(rem / 60 % 60, 2);
        t.push(b':');
        t.push_num(rem % 60, 2);
        let nanos = self.nanos % NANOS_PER_SEC;
        if fixed || nanos != 0 {
            let mut width = 9;
            let mut frac = nanos;
            if !fixed {
                while frac % 10 == 0 {
                    frac /= 10;
                    width -= 1;
                }
            }
            t.push(b'.');
            t.push_num(u64::from(frac), width);
        }
        t.push(b'Z');
        t
    }

    /// Parses RFC 3339 text (`2026-11-22T08:41:02.123456789Z`, or with a
    /// `+hh:mm`/`-hh:mm` offset), as Go's JSON time decoding accepts it.
    /// Fraction digits beyond nine are truncated. `None` when malformed.
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        let s = text.as_bytes();
        if s.len() < 20 {
            return None;
        }
        let year = digits(s, 0, 4)?;
        let month = digits(s, 5, 2)?;
        let day = digits(s, 8, 2)?;
        let hour = digits(s, 11, 2)?;
        let minute = digits(s, 14, 2)?;
        let second = digits(s, 17, 2)?;
        if s[4] != b'-' || s[7] != b'-' || s[10] != b'T' || s[13] != b':' || s[16] != b':' {
            return None;
        }
        if !(1..=12).contains(&month)
            || day < 1
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let mut i = 19;
        let mut nanos: u32 = 0;
        if s.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            let mut scale = NANOS_PER_SEC / 10;
            while let Some(&c) = s.get(i) {
                if !c.is_ascii_digit() {
                    break;
                }
                nanos += u32::from(c - b'0') * scale;
                scale /= 10;
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        let offset: i64 = match s.get(i) {
            Some(b'Z') if i + 1 == s.len() => 0,
            Some(&sign @ (b'+' | b'-')) if i + 6 == s.len() => {
                let oh = digits(s, i + 1, 2)?;
                let om = digits(s, i + 4, 2)?;
                if s[i + 3] != b':' || oh > 23 || om > 59 {
                    return None;
                }
                let off = i64::from(oh * 3600 + om * 60);
                if sign == b'-' { -off } else { off }
            }
            _ => return None,
        };
        let days = days_from_civil(i64::from(year), month, day);
        let secs = days * SECS_PER_DAY + i64::from(hour * 3600 + minute * 60 + second) - offset;
        Some(Timestamp { secs, nanos })
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(e) => {
                let d = e.duration();
                let secs = i64::try_from(d.as_secs()).map_or(i64::MIN, |s| -s);
                if d.subsec_nanos() == 0 {
                    Timestamp { secs, nanos: 0 }
                } else {
                    Timestamp {
                        secs: secs.saturating_sub(1),
                        nanos: NANOS_PER_SEC - d.subsec_nanos(),
                    }
                }
            }
        }
    }
}

impl From<(i64, u32)> for Timestamp {
    fn from((secs, nanos): (i64, u32)) -> Self {
        Timestamp::new(secs, nanos)
    }
}

impl fmt::Display for Timestamp {
    /// The RFC3339Nano form json-file writes (fraction trimmed).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.text(false).as_bytes()))
    }
}

/// `n` ASCII digits of `s` from `at` as a number.
fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = s.get(at..at + n)?;
    let mut v = 0u32;
    for &c in part {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Year, month (1–12) and day (1–31) of a day count since 1970-01-01,
/// counting in 400-year eras of a calendar whose years start in March
/// (so the leap day falls at the end of the year).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + EPOCH_SHIFT_DAYS;
    let era = z.div_euclid(DAYS_PER_ERA);
    let day_of_era = z.rem_euclid(DAYS_PER_ERA); // 0..=146096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let march_month = (5 * day_of_year + 2) / 153; // 0 = March … 11 = February
    let day = (day_of_year - (153 * march_month + 2) / 5 + 1) as u32;
    let month = if march_month < 10 {
        march_month + 3
    } else {
        march_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (the inverse of
/// [`civil_from_days`]).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let march_month = i64::from((month + 9) % 12);
    let day_of_year = (153 * march_month + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT_DAYS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(secs: i64, nanos: u32) -> Timestamp {
        Timestamp { secs, nanos }
    }

    #[test]
    fn formats_like_go_rfc3339nano() {
        assert_eq!(ts(0, 0).to_rfc3339_nano(), "1970-01-01T00:00:00Z");
        // 2026-11-22T08:41:02Z
        let base = 1_795_336_862;
        assert_eq!(
            ts(base, 123_456_789).to_rfc3339_nano(),
            "2026-11-22T08:41:02.123456789Z"
        );
        assert_eq!(
            ts(base, 120_000_000).to_rfc3339_nano(),
            "2026-11-22T08:41:02.12Z"
        );
        assert_eq!(
            ts(base, 1).to_rfc3339_nano(),
            "2026-11-22T08:41:02.000000001Z"
        );
        assert_eq!(ts(base, 0).to_rfc3339_nano(), "2026-11-22T08:41:02Z");
        assert_eq!(
            ts(base, 120_000_000).to_rfc3339_nano_fixed(),
            "2026-11-22T08:41:02.120000000Z"
        );
        assert_eq!(
            ts(base, 0).to_rfc3339_nano_fixed(),
            "2026-11-22T08:41:02.000000000Z"
        );
        // Go's own test value from moby's jsonlog tests.
        assert_eq!(
            ts(1_504_227_661, 1).to_rfc3339_nano(),
            "2017-09-01T01:01:01.000000001Z"
        );
        assert_eq!(ts(951_782_400, 0).to_rfc3339_nano(), "2000-02-29T00:00:00Z");
        assert_eq!(
            ts(-1, 500_000_000).to_rfc3339_nano(),
            "1969-12-31T23:59:59.5Z"
        );
        assert_eq!(
            ts(-62_135_596_800, 0).to_rfc3339_nano(),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(
            ts(253_402_300_799, 999_999_999).to_rfc3339_nano(),
            "9999-12-31T23:59:59.999999999Z"
        );
        assert!(ts(253_402_300_799, 0).in_rfc3339_range());
        assert!(!ts(253_402_300_800, 0).in_rfc3339_range());
        assert!(ts(-62_167_219_200, 0).in_rfc3339_range());
        assert!(!ts(-62_167_219_201, 0).in_rfc3339_range());
        assert_eq!(format!("{}", ts(base, 5)), "2026-11-22T08:41:02.000000005Z");
    }

    #[test]
    fn calendar_round_trips_every_day_of_many_years() {
        let mut prev: Option<(i64, u32, u32)> = None;
        for days in -800_000..800_000i64 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=12).contains(&m));
            assert!(
                d >= 1
                    && i64::from(d) <= i64::from(days_in_month(y.rem_euclid(400) as u32 + 2000, m))
            );
            if let Some((py, pm, pd)) = prev {
                assert!((y, m, d) > (py, pm, pd));
            }
            prev = Some((y, m, d));
        }
    }

    #[test]
    fn parses_what_it_formats() {
        for &(s, n) in &[
            (0i64, 0u32),
            (1_795_336_862, 123_456_789),
            (1_795_336_862, 100),
            (-1, 999_999_999),
            (951_782_400, 0),
            (253_402_300_799, 999_999_999),
        ] {
            let t = ts(s, n);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_rfc3339_nano()), Some(t));
            assert_eq!(
                Timestamp::parse_rfc3339(&t.to_rfc3339_nano_fixed()),
                Some(t)
            );
        }
    }

    #[test]
    fn parses_offsets_and_rejects_garbage() {
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22T10:41:02.5+02:00"),
            Some(ts(1_795_336_862, 500_000_000))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22T03:11:02-05:30"),
            Some(ts(1_795_336_862, 0))
        );
        assert_eq!(
            Timestamp::parse_rfc3339("2026-11-22T08:41:02.1234567891Z"),
            Some(ts(1_795_336_862, 123_456_789))
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-11-22 08:41:02Z",
            "2026-11-22T08:41:02",
            "2026-11-22T08:41:02.Z",
            "2026-13-22T08:41:02Z",
            "2026-02-29T08:41:02Z",
            "2026-11-31T08:41:02Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T08:60:00Z",
            "2026-11-22T08:41:60Z",
            "2026-11-22T08:41:02ZZ",
            "2026-11-22T08:41:02+0200",
            "2026-11-22T08:41:02+02:00x",
            "2026-11-22T08:41:02+24:00",
            "+026-11-22T08:41:02Z",
            "2026-1a-22T08:41:02Z",
            "2026-11-22T08:41:02.12é",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(bad), None, "{bad}");
        }
        assert!(Timestamp::parse_rfc3339("2024-02-29T00:00:00Z").is_some());
    }

    #[test]
    fn converts_system_time_both_ways() {
        let t = ts(1_795_336_862, 123_456_789);
        assert_eq!(Timestamp::from(t.to_system_time()), t);
        let before = ts(-10, 250_000_000);
        assert_eq!(Timestamp::from(before.to_system_time()), before);
        assert_eq!(Timestamp::from((5, 1_500_000_000)), ts(6, 500_000_000));
        let now = Timestamp::now();
        assert!(now.secs > 1_700_000_000 && now.nanos < NANOS_PER_SEC);
    }
}
