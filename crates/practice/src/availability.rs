//! Working hours in the tenant's local time, DST-correct (jiff with its bundled tz database),
//! and the open-slot search.

use crate::{Practice, PracticeError, Result};
use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use lacuna_accounts::Principal;
use lacuna_domain::{LocationId, Permission, ProviderId, ServiceId, ValidationError};
use lacuna_storage::now_unix;
use lacuna_storage::practice::appointments::BusyRow;
use lacuna_storage::practice::catalog::{HoursRow, TimeOffRow};
use std::collections::BTreeMap;

/// Slots start on this grid (seconds).
pub const SLOT_GRID_SECS: i64 = 15 * 60;
/// The longest range one availability search may cover (days).
pub const MAX_RANGE_DAYS: i32 = 31;

const WEEKDAYS: [&str; 7] = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/// A time zone from its IANA name (e.g. `America/New_York`).
pub fn parse_time_zone(field: &str, name: &str) -> Result<TimeZone, ValidationError> {
    TimeZone::get(name.trim())
        .map_err(|_| ValidationError::new(field, "must be an IANA time zone name like America/New_York"))
}

/// An RFC 3339 timestamp (`2026-03-09T13:00:00Z`, any offset) as Unix seconds.
pub fn parse_instant(field: &str, raw: &str) -> Result<i64, ValidationError> {
    raw.trim()
        .parse::<Timestamp>()
        .map(|t| t.as_second())
        .map_err(|_| ValidationError::new(field, "must be an RFC 3339 time like 2026-03-09T09:00:00-04:00"))
}

/// A calendar date `YYYY-MM-DD`.
pub fn parse_date(field: &str, raw: &str) -> Result<Date, ValidationError> {
    raw.trim().parse::<Date>().map_err(|_| ValidationError::new(field, "must be a date like 2026-03-09"))
}

/// `"09:30"` as minutes from midnight; `"24:00"` is the end of the day.
pub fn parse_clock(field: &str, raw: &str) -> Result<i64, ValidationError> {
    let bad = || ValidationError::new(field, "must be a time of day like 09:00 (24-hour, 24:00 = midnight)");
    let (h, m) = raw.trim().split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: i64 = h.parse().map_err(|_| bad())?;
    let m: i64 = m.parse().map_err(|_| bad())?;
    if !(0..60).contains(&m) || !(0..=24).contains(&h) || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// Minutes from midnight as `"09:30"`.
pub fn format_clock(min: i64) -> String {
    format!("{:02}:{:02}", min / 60, min % 60)
}

fn zoned(tz: &TimeZone, unix: i64) -> Result<jiff::Zoned, ValidationError> {
    Timestamp::from_second(unix)
        .map(|t| t.to_zoned(tz.clone()))
        .map_err(|_| ValidationError::new("starts_at", "is out of range"))
}

/// The Unix second of a local wall-clock minute on `date` (a minute inside a DST gap moves
/// forward, as clocks do).
fn local_instant(tz: &TimeZone, date: Date, minute: i64) -> Option<i64> {
    let (date, minute) = if minute >= 1440 { (date.tomorrow().ok()?, minute - 1440) } else { (date, minute) };
    let dt = date.at((minute / 60) as i8, (minute % 60) as i8, 0, 0);
    dt.to_zoned(tz.clone()).ok().map(|z| z.timestamp().as_second())
}

/// Checks that `[start, block_end)` lies inside one of the provider's working windows at
/// `location` on that local day. Errors name the field and say why.
pub fn check_within_hours(
    tz: &TimeZone,
    hours: &[HoursRow],
    location: LocationId,
    start: i64,
    block_end: i64,
) -> Result<(), ValidationError> {
    let zs = zoned(tz, start)?;
    let ze = zoned(tz, block_end)?;
    let weekday = zs.weekday().to_monday_zero_offset() as i64;
    let day_name = WEEKDAYS[weekday as usize];
    let day: Vec<&HoursRow> = hours.iter().filter(|h| h.weekday == weekday).collect();
    if day.is_empty() {
        return Err(ValidationError::new("starts_at", format!("the provider does not work on {day_name}s")));
    }
    let here: Vec<&&HoursRow> = day.iter().filter(|h| h.location_id == location).collect();
    if here.is_empty() {
        return Err(ValidationError::new(
            "location_id",
            format!("the provider does not work at this location on {day_name}s"),
        ));
    }
    let start_min = zs.hour() as i64 * 60 + zs.minute() as i64;
    let mut end_min = ze.hour() as i64 * 60 + ze.minute() as i64 + i64::from(ze.second() > 0);
    if ze.date() != zs.date() {
        let next_midnight = zs.date().tomorrow().ok() == Some(ze.date()) && end_min == 0;
        end_min = if next_midnight { 1440 } else { i64::MAX };
    }
    if here.iter().any(|h| h.start_min <= start_min && end_min <= h.end_min) {
        return Ok(());
    }
    let windows: Vec<String> =
        here.iter().map(|h| format!("{}-{}", format_clock(h.start_min), format_clock(h.end_min))).collect();
    Err(ValidationError::new(
        "starts_at",
        format!(
            "is outside the provider's working hours on {day_name}s ({} local time, service and buffer included)",
            windows.join(", ")
        ),
    ))
}

/// Whether `[start, end)` overlaps any of the (sorted by start) intervals.
fn overlaps(intervals: &[(i64, i64)], start: i64, end: i64) -> bool {
    // Intervals starting at or after `end` cannot overlap; of the others any one may.
    let upto = intervals.partition_point(|&(s, _)| s < end);
    intervals[..upto].iter().any(|&(_, e)| e > start)
}

/// One open slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub starts_at: i64,
    pub location_id: LocationId,
}

/// Open slots of one provider between the local dates `from..=to`: grid starts where the whole
/// `block_secs` fits inside a working window, clear of `busy` and `off` (both sorted by start)
/// and not before `now`.
#[allow(clippy::too_many_arguments)]
pub fn open_slots(
    tz: &TimeZone,
    hours: &[HoursRow],
    location: Option<LocationId>,
    from: Date,
    to: Date,
    block_secs: i64,
    busy: &[(i64, i64)],
    off: &[(i64, i64)],
    now: i64,
) -> Vec<Slot> {
    let mut out = Vec::new();
    let mut date = from;
    while date <= to {
        let weekday = date.weekday().to_monday_zero_offset() as i64;
        for h in hours.iter().filter(|h| h.weekday == weekday && location.is_none_or(|l| l == h.location_id)) {
            let (Some(ws), Some(we)) = (local_instant(tz, date, h.start_min), local_instant(tz, date, h.end_min))
            else {
                continue;
            };
            let mut t = ws.div_euclid(SLOT_GRID_SECS) * SLOT_GRID_SECS;
            if t < ws {
                t += SLOT_GRID_SECS;
            }
            while t + block_secs <= we {
                if t >= now && !overlaps(busy, t, t + block_secs) && !overlaps(off, t, t + block_secs) {
                    out.push(Slot { starts_at: t, location_id: h.location_id });
                }
                t += SLOT_GRID_SECS;
            }
        }
        match date.tomorrow() {
            Ok(d) => date = d,
            Err(_) => break,
        }
    }
    out.sort_by_key(|s| s.starts_at);
    out.dedup_by_key(|s| s.starts_at);
    out
}

/// One provider's weekly hours, busy intervals and time off.
type ProviderCalendar = (Vec<HoursRow>, Vec<(i64, i64)>, Vec<(i64, i64)>);

/// An availability search.
#[derive(Debug, Clone)]
pub struct AvailabilityQuery {
    pub service_id: String,
    pub provider_id: Option<String>,
    pub location_id: Option<String>,
    /// `YYYY-MM-DD`, the tenant's local dates, both inclusive.
    pub from: String,
    pub to: String,
}

/// Open slots per provider.
#[derive(Debug, Clone)]
pub struct Availability {
    pub timezone: String,
    pub service_id: ServiceId,
    pub providers: Vec<(ProviderId, Vec<Slot>)>,
}

pub(crate) fn parse_ref<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T, ValidationError> {
    raw.trim().parse().map_err(|_| ValidationError::new(field, "must be an id"))
}

impl Practice {
    /// Open slots for a service between two local dates (at most 31 days), per provider who
    /// performs it (or the one asked for). Appointments and time off of the range are read once.
    pub async fn availability(&self, p: &Principal, q: AvailabilityQuery) -> Result<Availability> {
        let service_id: ServiceId = parse_ref("service_id", &q.service_id)?;
        let provider_id: Option<ProviderId> =
            q.provider_id.as_deref().filter(|s| !s.is_empty()).map(|s| parse_ref("provider_id", s)).transpose()?;
        let location_id: Option<LocationId> =
            q.location_id.as_deref().filter(|s| !s.is_empty()).map(|s| parse_ref("location_id", s)).transpose()?;
        let from = parse_date("from", &q.from)?;
        let to = parse_date("to", &q.to)?;
        if to < from {
            return Err(PracticeError::invalid("to", "must not be before from"));
        }
        let days = (to - from).get_days();
        if days >= MAX_RANGE_DAYS {
            return Err(PracticeError::invalid("to", format!("the range may cover at most {MAX_RANGE_DAYS} days")));
        }

        let mut tx = self.read(p, Permission::ScheduleRead).await?;
        let settings = tx.practice_settings().await?;
        let tz = parse_time_zone("timezone", &settings.timezone)?;
        let service = tx.service(service_id).await?.ok_or(PracticeError::NotFound)?;
        if !service.active {
            return Err(PracticeError::invalid("service_id", "the service is not active"));
        }
        if let Some(l) = location_id {
            tx.location(l).await?.ok_or(PracticeError::NotFound)?;
        }
        let mut providers: Vec<ProviderId> = match provider_id {
            Some(pid) => {
                let pr = tx.provider(pid).await?.ok_or(PracticeError::NotFound)?;
                if !pr.active || !tx.provider_performs(pid, service_id).await? { vec![] } else { vec![pid] }
            }
            None => {
                let active: Vec<ProviderId> =
                    tx.providers().await?.into_iter().filter(|r| r.active).map(|r| r.id).collect();
                let performs = tx.provider_services(None).await?;
                active.into_iter().filter(|id| performs.iter().any(|(p, s)| p == id && *s == service_id)).collect()
            }
        };
        providers.sort();

        // The whole range in absolute time, with a day's margin for any offset.
        let range_start = local_instant(&tz, from, 0).unwrap_or(0) - 86_400;
        let range_end = local_instant(&tz, to, 1440).unwrap_or(i64::MAX / 2) + 86_400;
        let only = if providers.len() == 1 { providers.first().copied() } else { None };
        let hours = tx.provider_hours(only).await?;
        let busy: Vec<BusyRow> = tx.busy(only, range_start, range_end).await?;
        let off: Vec<TimeOffRow> = tx.time_off(only, range_start, range_end).await?;
        drop(tx);

        let mut by_provider: BTreeMap<ProviderId, ProviderCalendar> =
            providers.iter().map(|p| (*p, Default::default())).collect();
        for (pid, h) in hours {
            if let Some(e) = by_provider.get_mut(&pid) {
                e.0.push(h);
            }
        }
        for b in busy {
            if let Some(e) = by_provider.get_mut(&b.provider_id) {
                e.1.push((b.starts_at, b.blocks_until));
            }
        }
        for o in off {
            if let Some(e) = by_provider.get_mut(&o.provider_id) {
                e.2.push((o.starts_at, o.ends_at));
            }
        }
        let block_secs = (service.duration_min + service.buffer_min) * 60;
        let now = now_unix();
        let providers = by_provider
            .into_iter()
            .map(|(pid, (hours, mut busy, mut off))| {
                busy.sort_unstable();
                off.sort_unstable();
                (pid, open_slots(&tz, &hours, location_id, from, to, block_secs, &busy, &off, now))
            })
            .collect();
        Ok(Availability { timezone: settings.timezone, service_id, providers })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ny() -> TimeZone {
        parse_time_zone("tz", "America/New_York").expect("tz")
    }

    #[test]
    fn clocks_parse() {
        assert_eq!(parse_clock("start", "09:30").ok(), Some(570));
        assert_eq!(parse_clock("end", "24:00").ok(), Some(1440));
        assert!(parse_clock("end", "24:30").is_err());
        assert!(parse_clock("end", "9:30").is_err());
        assert!(parse_clock("end", "09:60").is_err());
    }

    #[test]
    fn zones_are_validated() {
        assert!(parse_time_zone("timezone", "Europe/Paris").is_ok());
        assert!(parse_time_zone("timezone", "Mars/Olympus").is_err());
    }

    #[test]
    fn local_nine_follows_dst() {
        let tz = ny();
        let winter = local_instant(&tz, parse_date("d", "2026-03-06").expect("d"), 540).expect("w");
        let summer = local_instant(&tz, parse_date("d", "2026-03-09").expect("d"), 540).expect("s");
        // 09:00 EST = 14:00Z; 09:00 EDT = 13:00Z.
        assert_eq!(winter % 86_400, 14 * 3600);
        assert_eq!(summer % 86_400, 13 * 3600);
    }

    #[test]
    fn hours_check_uses_local_time() {
        let tz = ny();
        let loc = LocationId::new();
        // Monday 09:00-17:00.
        let hours = [HoursRow { location_id: loc, weekday: 0, start_min: 540, end_min: 1020 }];
        let mon_9 = local_instant(&tz, parse_date("d", "2026-03-09").expect("d"), 540).expect("t");
        assert!(check_within_hours(&tz, &hours, loc, mon_9, mon_9 + 3600).is_ok());
        let e = check_within_hours(&tz, &hours, loc, mon_9 - 3600, mon_9).err().map(|e| e.field);
        assert_eq!(e.as_deref(), Some("starts_at"));
        let e = check_within_hours(&tz, &hours, LocationId::new(), mon_9, mon_9 + 3600).err().map(|e| e.field);
        assert_eq!(e.as_deref(), Some("location_id"));
        let e = check_within_hours(&tz, &hours, loc, mon_9 + 86_400, mon_9 + 90_000).err().map(|e| e.field);
        assert_eq!(e.as_deref(), Some("starts_at"));
    }

    #[test]
    fn slots_skip_busy_time() {
        let tz = TimeZone::UTC;
        let loc = LocationId::new();
        let d = parse_date("d", "2026-03-09").expect("d");
        let hours = [HoursRow { location_id: loc, weekday: 0, start_min: 540, end_min: 660 }];
        let nine = local_instant(&tz, d, 540).expect("t");
        let busy = [(nine + 1800, nine + 3600)];
        let slots = open_slots(&tz, &hours, None, d, d, 1800, &busy, &[], 0);
        let starts: Vec<i64> = slots.iter().map(|s| (s.starts_at - nine) / 60).collect();
        assert_eq!(starts, vec![0, 60, 75, 90]);
    }
}
