//! UTC date-times for `--from`/`--to-datetime`, without a date library.
//!
//! Accepts `YYYY-MM-DDTHH:MM:SS[.mmm][Z]` (a space may replace the `T`; the time is UTC, and
//! an explicit offset such as `+02:00` is applied), or a bare date `YYYY-MM-DD` (midnight UTC).
//! Days are counted with the proleptic Gregorian civil-from-days algorithm (H. Hinnant).

use crate::base::civil::days_from_civil;

/// Milliseconds since the Unix epoch for `text`, or why it is not a date-time.
pub fn parse_datetime_ms(text: &str) -> Result<i64, String> {
    let bad = || format!("'{text}' is not a date-time like 2024-05-01T12:00:00Z");
    let s = text.trim();
    let (date, rest) = match s.find(['T', ' ']) {
        Some(at) => (&s[..at], &s[at + 1..]),
        None => (s, ""),
    };
    let mut d = date.split('-');
    let year = num(d.next(), 4, 4).ok_or_else(bad)?;
    let month = num(d.next(), 2, 2).ok_or_else(bad)?;
    let day = num(d.next(), 2, 2).ok_or_else(bad)?;
    if d.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad());
    }
    let (clock, offset_min) = split_offset(rest).ok_or_else(bad)?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.split(':').filter(|p| !p.is_empty());
    let hour = opt_num(t.next()).ok_or_else(bad)?;
    let minute = opt_num(t.next()).ok_or_else(bad)?;
    let second = opt_num(t.next()).ok_or_else(bad)?;
    if t.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return Err(bad());
    }
    let millis = match frac.len() {
        0 => 0,
        1..=9 if frac.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{frac:0<3}");
            padded[..3].parse::<i64>().map_err(|_| bad())?
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_min * 60;
    Ok(seconds * 1_000 + millis)
}

fn num(part: Option<&str>, min_len: usize, max_len: usize) -> Option<i64> {
    let p = part?;
    if p.len() < min_len || p.len() > max_len || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse().ok()
}

fn opt_num(part: Option<&str>) -> Option<i64> {
    match part {
        None => Some(0),
        p => num(p, 2, 2),
    }
}

/// Splits `12:00:00+02:00` into the clock and the offset in minutes east of UTC.
fn split_offset(rest: &str) -> Option<(&str, i64)> {
    if let Some(clock) = rest.strip_suffix('Z') {
        return Some((clock, 0));
    }
    let Some(at) = rest.rfind(['+', '-']) else {
        return Some((rest, 0));
    };
    let sign = if rest.as_bytes()[at] == b'-' { -1 } else { 1 };
    let (hh, mm) = rest[at + 1..].split_once(':')?;
    let minutes = num(Some(hh), 2, 2)? * 60 + num(Some(mm), 2, 2)?;
    Some((&rest[..at], sign * minutes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::civil::format_utc_ms;

    #[test]
    fn parses_known_instants() {
        assert_eq!(parse_datetime_ms("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_datetime_ms("1970-01-02"), Ok(86_400_000));
        assert_eq!(
            parse_datetime_ms("2024-02-29T12:34:56.789Z"),
            Ok(1_709_210_096_789)
        );
        assert_eq!(
            parse_datetime_ms("2024-02-29 14:34:56.789+02:00"),
            Ok(1_709_210_096_789)
        );
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-01T25:00",
            "2024-1-1",
            "2024-01-01T10:00:00.x",
        ] {
            assert!(parse_datetime_ms(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_round_trips_parse() {
        for ms in [0, 1_709_210_096_789, 951_782_400_000, -86_400_000] {
            assert_eq!(parse_datetime_ms(&format_utc_ms(ms)), Ok(ms), "{ms}");
        }
        assert_eq!(format_utc_ms(1_709_210_096_789), "2024-02-29T12:34:56.789Z");
    }
}
