//! Human wording for evidence: durations, weekdays, money.

use super::DAY_SECS;

/// A duration in words, by its magnitude: "less than a day", else in days rounded to the nearest
/// day: "1 day", "9 days" (under two weeks), "3 weeks" (under 60 days, whole weeks), "5 months"
/// (under two years, rounded to 30.44-day months), "2 years" (whole years). The sign is ignored.
pub fn human_duration(secs: i64) -> String {
    let day = DAY_SECS.unsigned_abs();
    let secs = secs.unsigned_abs();
    if secs < day {
        return "less than a day".to_owned();
    }
    let days = (secs + day / 2) / day;
    let (n, unit) = match days {
        1..=13 => (days, "day"),
        14..=59 => (days / 7, "week"),
        // Rounded months of 30.44 days, in integer arithmetic.
        60..=729 => ((days * 100 + 1_522) / 3_044, "month"),
        _ => (days / 365, "year"),
    };
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

/// How long ago an instant `secs` seconds in the past was: "today" within a day, else
/// "3 weeks ago".
pub fn human_ago(secs: i64) -> String {
    if secs.unsigned_abs() < DAY_SECS.unsigned_abs() {
        "today".to_owned()
    } else {
        format!("{} ago", human_duration(secs))
    }
}

/// How far ahead an instant `secs` seconds in the future is: "today" within a day, else "in 2 days".
pub fn human_in(secs: i64) -> String {
    if secs.unsigned_abs() < DAY_SECS.unsigned_abs() {
        "today".to_owned()
    } else {
        format!("in {}", human_duration(secs))
    }
}

/// Weekday names, Monday first.
const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// The weekday (0 = Monday) of an instant in Unix seconds, in UTC.
pub(crate) fn weekday(secs: i64) -> usize {
    // 1970-01-01 was a Thursday (3 with Monday = 0).
    (secs.div_euclid(DAY_SECS) + 3).rem_euclid(7) as usize
}

/// The hour of day (0..24) of an instant in Unix seconds, in UTC.
pub(crate) fn hour(secs: i64) -> usize {
    (secs.rem_euclid(DAY_SECS) / 3_600) as usize
}

/// "Tuesday".
pub(crate) fn weekday_name(day: usize) -> &'static str {
    WEEKDAYS.get(day).copied().unwrap_or("?")
}

/// Minor units as whole major units, rounded: 75 000 → "750".
pub(crate) fn major_units(minor: i64) -> String {
    format!("{}", (minor + 50).div_euclid(100))
}

/// "1 visit", "3 visits".
pub(crate) fn plural(n: u32, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_would_say_them() {
        let d = |days: i64| human_duration(days * DAY_SECS);
        assert_eq!(human_duration(3_600), "less than a day");
        assert_eq!(human_duration(DAY_SECS + 11 * 3_600), "1 day");
        assert_eq!(human_duration(DAY_SECS + 12 * 3_600), "2 days", "rounded to the nearest day");
        assert_eq!(d(1), "1 day");
        assert_eq!(d(13), "13 days");
        assert_eq!(d(14), "2 weeks");
        assert_eq!(d(21), "3 weeks");
        assert_eq!(d(59), "8 weeks");
        assert_eq!(d(60), "2 months");
        assert_eq!(d(150), "5 months");
        assert_eq!(d(300), "10 months");
        assert_eq!(d(365), "12 months");
        assert_eq!(d(729), "24 months");
        assert_eq!(d(730), "2 years");
        assert_eq!(d(-21), "3 weeks", "the sign is ignored");
        assert_eq!(human_ago(150 * DAY_SECS), "5 months ago");
        assert_eq!(human_ago(3_600), "today");
        assert_eq!(human_in(2 * DAY_SECS + 5), "in 2 days");
    }

    #[test]
    fn weekdays_and_hours_in_utc() {
        // 2024-06-04T14:30:00Z was a Tuesday.
        let secs = 1_717_511_400;
        assert_eq!(weekday_name(weekday(secs)), "Tuesday");
        assert_eq!(hour(secs), 14);
        assert_eq!(weekday_name(weekday(0)), "Thursday");
        assert_eq!(major_units(75_000), "750");
        assert_eq!(major_units(2_549), "25");
        assert_eq!(plural(1, "visit"), "1 visit");
        assert_eq!(plural(2, "visit"), "2 visits");
    }
}
