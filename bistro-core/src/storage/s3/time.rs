//! The two timestamp forms S3 uses: ISO 8601 in listings
//! (`2024-05-01T12:34:56.789Z`) and the HTTP date in `Last-Modified`
//! (`Wed, 01 May 2024 12:34:56 GMT`). Both are UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Howard Hinnant's algorithm.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
            if leap { 29 } else { 28 }
        }
    }
}

fn number(s: &str) -> Option<u32> {
    (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

fn to_time(
    year: u32,
    month: u32,
    day: u32,
    h: u32,
    m: u32,
    s: u32,
    millis: u32,
) -> Option<SystemTime> {
    let year = i64::from(year);
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && h < 24
        && m < 60
        && s < 61;
    if !valid {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let secs = days * 86_400 + u64::from(h * 3600 + m * 60 + s);
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(u64::from(millis)))
}

fn clock(hms: &str) -> Option<(u32, u32, u32)> {
    let mut parts = hms.split(':');
    let h = parts.next().filter(|p| p.len() == 2).and_then(number)?;
    let m = parts.next().filter(|p| p.len() == 2).and_then(number)?;
    let s = parts.next().filter(|p| p.len() == 2).and_then(number)?;
    parts.next().is_none().then_some((h, m, s))
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff…]Z`.
pub(crate) fn parse_iso8601(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-');
    let year = d.next().filter(|p| p.len() == 4).and_then(number)?;
    let month = d.next().filter(|p| p.len() == 2).and_then(number)?;
    let day = d.next().filter(|p| p.len() == 2).and_then(number)?;
    if d.next().is_some() {
        return None;
    }
    let (hms, fraction) = match time.split_once('.') {
        Some((hms, f)) => (hms, Some(f)),
        None => (time, None),
    };
    let (h, m, sec) = clock(hms)?;
    let millis = match fraction {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let ms: String = f.chars().chain("000".chars()).take(3).collect();
            ms.parse().ok()?
        }
        Some(_) => return None,
    };
    to_time(year, month, day, h, m, sec, millis)
}

/// Parses the HTTP date `Www, DD Mon YYYY HH:MM:SS GMT` (RFC 7231 IMF-fixdate).
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let mut p = s.split(' ');
    let weekday = p.next()?;
    let day = p.next().filter(|x| x.len() == 2).and_then(number)?;
    let month = p.next()?;
    let year = p.next().filter(|x| x.len() == 4).and_then(number)?;
    let (h, m, sec) = clock(p.next()?)?;
    if p.next()? != "GMT" || p.next().is_some() || weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|&name| name == month)?;
    to_time(year, u32::try_from(month).ok()? + 1, day, h, m, sec, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(t: SystemTime) -> f64 {
        t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    }

    #[test]
    fn known_instants() {
        // 2024-05-01T12:34:56Z = 1714566896 (date -d @1714566896 -u).
        assert_eq!(
            secs(parse_iso8601("2024-05-01T12:34:56Z").unwrap()),
            1_714_566_896.0
        );
        assert_eq!(
            secs(parse_iso8601("2024-05-01T12:34:56.789Z").unwrap()),
            1_714_566_896.789
        );
        assert_eq!(
            secs(parse_iso8601("1970-01-01T00:00:00.000Z").unwrap()),
            0.0
        );
        assert_eq!(
            secs(parse_iso8601("2000-02-29T00:00:00Z").unwrap()),
            951_782_400.0
        );
        assert_eq!(
            secs(parse_http_date("Wed, 01 May 2024 12:34:56 GMT").unwrap()),
            1_714_566_896.0
        );
        assert_eq!(
            secs(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT").unwrap()),
            0.0
        );
    }

    #[test]
    fn rejects_malformed() {
        for s in [
            "",
            "2024-05-01T12:34:56",
            "2024-13-01T12:34:56Z",
            "2023-02-29T00:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:34:56.Z",
            "2024-5-01T12:34:56Z",
            "+024-05-01T12:34:56Z",
            "1969-12-31T23:59:59Z",
        ] {
            assert!(parse_iso8601(s).is_none(), "{s}");
        }
        for s in [
            "Wed, 01 May 2024 12:34:56 UTC",
            "Wed, 1 May 2024 12:34:56 GMT",
            "Wed, 01 Mai 2024 12:34:56 GMT",
            "Wed 01 May 2024 12:34:56 GMT",
            "Wed, 01 May 2024 12:34:56 GMT extra",
        ] {
            assert!(parse_http_date(s).is_none(), "{s}");
        }
    }
}
