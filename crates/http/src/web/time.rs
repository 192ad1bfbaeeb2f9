//! Showing instants in the practice's time zone, and turning a typed local date and time into
//! the RFC 3339 instant the services take (which then apply every rule to it).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// The practice's zone; an unknown name (never stored: the services validate it) falls back to UTC.
pub(crate) fn zone(name: &str) -> TimeZone {
    TimeZone::get(name).unwrap_or(TimeZone::UTC)
}

fn zoned(ts: i64, tz: &TimeZone) -> Option<Zoned> {
    Timestamp::from_second(ts).ok().map(|t| t.to_zoned(tz.clone()))
}

/// `14:30`
pub(crate) fn clock(ts: i64, tz: &TimeZone) -> String {
    zoned(ts, tz).map(|z| z.strftime("%H:%M").to_string()).unwrap_or_default()
}

/// `Tue 14 Jul 2026`
pub(crate) fn day(ts: i64, tz: &TimeZone) -> String {
    zoned(ts, tz).map(|z| z.strftime("%a %-d %b %Y").to_string()).unwrap_or_default()
}

/// `Tue 14 Jul 2026, 14:30`
pub(crate) fn day_time(ts: i64, tz: &TimeZone) -> String {
    zoned(ts, tz).map(|z| z.strftime("%a %-d %b %Y, %H:%M").to_string()).unwrap_or_default()
}

/// The local date of an instant.
pub(crate) fn date_of(ts: i64, tz: &TimeZone) -> Option<Date> {
    zoned(ts, tz).map(|z| z.date())
}

pub(crate) fn today(tz: &TimeZone) -> Date {
    Zoned::now().with_time_zone(tz.clone()).date()
}

pub(crate) fn parse_date(raw: &str) -> Option<Date> {
    raw.trim().parse().ok()
}

/// The instant a local date starts (midnight, or the first instant after a DST gap).
pub(crate) fn start_of(date: Date, tz: &TimeZone) -> i64 {
    date.to_zoned(tz.clone()).map(|z| z.timestamp().as_second()).unwrap_or(0)
}

/// A local date and `HH:MM` as RFC 3339, or `None` if either is not well formed.
pub(crate) fn local_rfc3339(date: &str, clock: &str, tz: &TimeZone) -> Option<String> {
    let d = parse_date(date)?;
    let (h, m) = clock.trim().split_once(':')?;
    let (h, m): (i8, i8) = (h.parse().ok()?, m.get(..2)?.parse().ok()?);
    let t = jiff::civil::Time::new(h, m, 0, 0).ok()?;
    let z = d.to_datetime(t).to_zoned(tz.clone()).ok()?;
    Some(crate::routes::rfc3339(z.timestamp().as_second()))
}

/// `2026-07-14` of a date.
pub(crate) fn iso(d: Date) -> String {
    d.strftime("%Y-%m-%d").to_string()
}

/// `Tuesday 14 July 2026`
pub(crate) fn long_date(d: Date) -> String {
    d.strftime("%A %-d %B %Y").to_string()
}

/// `Tue 14`
pub(crate) fn short_date(d: Date) -> String {
    d.strftime("%a %-d").to_string()
}

pub(crate) fn add_days(d: Date, n: i64) -> Date {
    d.checked_add(jiff::Span::new().days(n)).unwrap_or(d)
}

/// Monday of the date's week.
pub(crate) fn monday_of(d: Date) -> Date {
    add_days(d, -i64::from(d.weekday().to_monday_zero_offset()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_times_become_instants_in_the_zone() {
        let tz = zone("America/New_York");
        assert_eq!(local_rfc3339("2026-07-14", "09:30", &tz).as_deref(), Some("2026-07-14T13:30:00Z"));
        assert_eq!(local_rfc3339("2026-07-14", "9h", &tz), None);
        assert_eq!(local_rfc3339("14/07/2026", "09:30", &tz), None);
        let ts = start_of(parse_date("2026-07-14").unwrap_or_default(), &tz);
        assert_eq!(clock(ts, &tz), "00:00");
        assert_eq!(iso(monday_of(parse_date("2026-07-16").unwrap_or_default())), "2026-07-13");
    }
}
