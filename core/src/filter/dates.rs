//! Dates as SpamAssassin reads them (`Util::parse_rfc822_date`): lenient where mail is
//! sloppy (no time zone is -0000, an unknown zone name too, a day past the month's end
//! rolls over, years clamped to 1970–2037), so that the date rules (`DATE_IN_PAST_*`,
//! `DATE_IN_FUTURE_*`) measure what SpamAssassin measures.

/// Named zones SpamAssassin knows, and their offsets in minutes.
const ZONES: &[(&str, i64)] = &[
    ("UT", 0),
    ("UTC", 0),
    ("NDT", -150),
    ("AST", -240),
    ("ADT", -180),
    ("NST", -210),
    ("EST", -300),
    ("EDT", -240),
    ("CST", -360),
    ("CDT", -300),
    ("MST", -420),
    ("MDT", -360),
    ("PST", -480),
    ("PDT", -420),
    ("HST", -600),
    ("AKST", -540),
    ("AKDT", -480),
    ("HADT", -540),
    ("HAST", -600),
    ("GMT", 0),
    ("BST", 60),
    ("IST", 60),
    ("WET", 0),
    ("WEST", 60),
    ("CET", 60),
    ("CEST", 120),
    ("EET", 120),
    ("EEST", 180),
    ("MSK", 180),
    ("MSD", 240),
    ("MET", 60),
    ("MEZ", 60),
    ("MEST", 120),
    ("MESZ", 120),
    ("BRST", -120),
    ("BRT", -180),
    ("AEST", 600),
    ("AEDT", 660),
    ("ACST", 570),
    ("ACDT", 630),
    ("AWST", 480),
    ("NZST", 720),
    ("NZDT", 780),
    ("JST", 540),
    ("KST", 540),
    ("HKT", 480),
    ("SGT", 480),
    ("PHT", 480),
    ("IDT", 180),
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// The first word of 2 to 4 capitals (SpamAssassin's `\b([A-Z]{2,4}(?:-DST)?)\b`), with
/// its "-DST" if one follows.
fn zone_name(text: &str) -> Option<String> {
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    let mut offset = 0;
    for word in words {
        let start = offset;
        offset += word.len() + 1;
        if (2..=4).contains(&word.len()) && word.bytes().all(|b| b.is_ascii_uppercase()) {
            let rest = text.get(start + word.len()..).unwrap_or("");
            let dst = rest.strip_prefix("-DST").is_some_and(|after| {
                !after.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            });
            return Some(if dst {
                format!("{word}-DST")
            } else {
                word.to_string()
            });
        }
    }
    None
}

/// Seconds since the epoch of a date header's text, or None when it names no day, month
/// and year SpamAssassin can find.
pub(super) fn parse(date: &str) -> Option<i64> {
    let spaced = date.replace(',', " ");
    let mut tokens: Vec<&str> = spaced.split_whitespace().collect();
    let month = |t: &str| {
        MONTHS
            .iter()
            .position(|m| t.eq_ignore_ascii_case(m))
            .map(|i| i as i64 + 1)
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    // "H:MM" or "HH:MM:SS" and the like, read without collecting the parts (this runs
    // on every word of every date header and Received header).
    let is_time = |t: &str| {
        let mut parts = 0;
        for (i, part) in t.split(':').enumerate() {
            let width_ok = if i == 0 {
                (1..=2).contains(&part.len())
            } else {
                part.len() == 2
            };
            if i > 2 || !width_ok || !digits(part) {
                return false;
            }
            parts += 1;
        }
        parts >= 2
    };
    // The date: "D Mon YYYY", else "Mon D HH:MM:SS YYYY", else "D Mon YY(Y)".
    let (day, mon, mut year, year_digits) = find_date(&mut tokens, month, digits, is_time)?;
    if year_digits == 2 && year < 50 {
        year += 2000;
    } else if year_digits != 4 {
        year += 1900;
    }
    let (mut hour, mut minute, mut second) = (0, 0, 0);
    if let Some(i) = tokens.iter().position(|t| is_time(t)) {
        let parts: Vec<i64> = tokens[i]
            .split(':')
            .filter_map(|p| p.parse().ok())
            .collect();
        hour = parts.first().copied().unwrap_or(0);
        minute = parts.get(1).copied().unwrap_or(0);
        second = parts.get(2).copied().unwrap_or(0);
        tokens.remove(i);
    }
    // "+hhmm" or "-hhmm" (ASCII: the byte offsets below are character offsets).
    let numeric_zone = tokens.iter().find_map(|t| {
        let sign = match t.as_bytes().first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return None,
        };
        let hours: i64 = t.get(1..3).filter(|h| digits(h))?.parse().ok()?;
        let minutes: i64 = t.get(3..5).filter(|m| digits(m))?.parse().ok()?;
        (t.len() == 5).then_some(sign * (hours * 60 + minutes))
    });
    let offset_minutes = match numeric_zone {
        Some(offset) => offset,
        // Only the first name-like word counts, known or not.
        None => zone_name(&tokens.join(" "))
            .and_then(|name| ZONES.iter().find(|(n, _)| *n == name))
            .map_or(0, |(_, offset)| *offset),
    };
    second = second.min(59);
    minute = minute.min(59);
    hour = hour.min(23);
    let (mut day, mut mon) = (day, mon);
    if day > days_in_month(year, mon) {
        day = 1;
        mon += 1;
        if mon > 12 {
            mon = 1;
            year += 1;
        }
    }
    year = year.clamp(1970, 2037);
    if day < 1 {
        return None;
    }
    let time = days_from_civil(year, mon, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((time - offset_minutes * 60).max(0))
}

/// Finds and removes the day, month and year tokens: (day, month, year, year's digits).
fn find_date(
    tokens: &mut Vec<&str>,
    month: impl Fn(&str) -> Option<i64>,
    digits: impl Fn(&str) -> bool,
    is_time: impl Fn(&str) -> bool,
) -> Option<(i64, i64, i64, usize)> {
    let n = tokens.len();
    for i in 0..n.saturating_sub(2) {
        let (d, m, y) = (tokens[i], tokens[i + 1], tokens[i + 2]);
        if digits(d) && y.len() == 4 && digits(y) {
            if let Some(mon) = month(m) {
                let found = (d.parse().ok()?, mon, y.parse().ok()?, 4);
                tokens.drain(i..i + 3);
                return Some(found);
            }
        }
    }
    for i in 0..n.saturating_sub(3) {
        let (m, d, t, y) = (tokens[i], tokens[i + 1], tokens[i + 2], tokens[i + 3]);
        if digits(d) && is_time(t) && t.split(':').count() == 3 && y.len() == 4 && digits(y) {
            if let Some(mon) = month(m) {
                let found = (d.parse().ok()?, mon, y.parse().ok()?, 4);
                // The time stays: it is read next.
                tokens.remove(i + 3);
                tokens.drain(i..i + 2);
                return Some(found);
            }
        }
    }
    for i in 0..n.saturating_sub(2) {
        let (d, m, y) = (tokens[i], tokens[i + 1], tokens[i + 2]);
        if digits(d) && (2..=3).contains(&y.len()) && digits(y) {
            if let Some(mon) = month(m) {
                let found = (d.parse().ok()?, mon, y.parse().ok()?, y.len());
                tokens.drain(i..i + 3);
                return Some(found);
            }
        }
    }
    None
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn well_formed_dates() {
        // 2002-08-26 14:12:47 UTC.
        assert_eq!(
            parse("Mon, 26 Aug 2002 10:12:47 -0400 (EDT)"),
            Some(1_030_371_167)
        );
        assert_eq!(
            parse("Mon, 26 Aug 2002 15:12:47 +0100 (IST)"),
            Some(1_030_371_167)
        );
        assert_eq!(parse("26 Aug 2002 14:12:47 GMT"), Some(1_030_371_167));
        assert_eq!(parse("Mon Aug 26 10:12:47 2002 EDT"), Some(1_030_371_167));
    }

    #[test]
    fn sloppy_dates_as_spamassassin_reads_them() {
        // No zone, or one it cannot read: -0000.
        assert_eq!(parse("Fri, 23 Aug 2002 19:27:52"), Some(1_030_130_872));
        assert_eq!(
            parse("Thu, 29 Aug 2002 15:36:58 +-0500"),
            Some(1_030_635_418)
        );
        assert_eq!(parse("Thu, 29 Aug 2002 15:36:58 XYZ"), Some(1_030_635_418));
        // Two-digit years, a day past the month's end, years out of range.
        assert_eq!(parse("1 Jan 02 00:00:00 +0000"), Some(1_009_843_200));
        assert_eq!(
            parse("31 Apr 2002 00:00:00 +0000"),
            parse("1 May 2002 00:00:00 +0000")
        );
        assert_eq!(
            parse("Thu, 22 Aug 0102 12:07:35 +0800"),
            parse("22 Aug 1970 12:07:35 +0800")
        );
        assert_eq!(parse("no date here"), None);
        assert_eq!(parse(""), None);
    }
}
