//! The pseudonymous event: the only shape Insight accepts.
//!
//! Every field has a newtype or an enum whose only constructor validates the exact format, so an
//! [`InsightEvent`] that exists is valid. There is deliberately no `Deserialize`: the only way from
//! JSON to an event is [`crate::PhiGuard::check`], which counts and classifies what it refuses.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Serialize, Serializer};

/// Length of the base32 part of pseudonyms and ids: 128 bits, RFC 4648 base32, no padding.
const BASE32_LEN: usize = 26;

/// A short ASCII string held inline (no heap allocation): every id of an event fits in `N`
/// bytes, so parsing, cloning and hashing an event never allocates. Only built from
/// text that a validator accepted, which is ASCII; compares, orders and hashes as its text.
#[derive(Clone)]
struct Inline<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> Inline<N> {
    /// `None` if `text` is longer than `N` bytes (or 255).
    fn new(text: &str) -> Option<Self> {
        let len = u8::try_from(text.len()).ok().filter(|l| usize::from(*l) <= N)?;
        let mut bytes = [0u8; N];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(Self { len, bytes })
    }

    fn as_str(&self) -> &str {
        // Built from a `&str` only, so always valid UTF-8; "" is never taken.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl<const N: usize> PartialEq for Inline<N> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.bytes == other.bytes
    }
}

impl<const N: usize> Eq for Inline<N> {}

impl<const N: usize> Hash for Inline<N> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `eq`: the length and the zero-padded bytes, 16 at a time (a hasher's
        // word-sized writes are far cheaper than its path for byte strings longer than 16).
        state.write_u8(self.len);
        let mut words = self.bytes.chunks_exact(16);
        for word in &mut words {
            state.write_u128(u128::from_le_bytes(word.try_into().unwrap_or([0; 16])));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 16];
            last[..rest.len()].copy_from_slice(rest);
            state.write_u128(u128::from_le_bytes(last));
        }
    }
}

impl<const N: usize> PartialOrd for Inline<N> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<const N: usize> Ord for Inline<N> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl<const N: usize> fmt::Debug for Inline<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl<const N: usize> Serialize for Inline<N> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Largest accepted value of `cycle_days` and `follow_up_days` (ten years).
pub const MAX_DAYS: u16 = 3650;

/// The JSON keys of an event, in the order the guard validates them. Anything else is refused.
pub const FIELDS: [&str; 14] = [
    "event_id",
    "kind",
    "client",
    "provider",
    "service_category",
    "cycle_days",
    "follow_up_days",
    "price_band",
    "location_id",
    "occurred_at",
    "starts_at",
    "ends_at",
    "membership_id",
    "appointment_ref",
];

/// The price bands, in major currency units. Exact amounts are never sent to Insight.
pub const PRICE_BANDS: [&str; 6] = ["0-49", "50-99", "100-249", "250-499", "500-999", "1000+"];

fn is_base32_lower(s: &str) -> bool {
    s.len() == BASE32_LEN && s.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7'))
}

macro_rules! pseudonym {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Inline<{ $prefix.len() + BASE32_LEN }>);

        impl $name {
            /// The literal prefix before the 26 base32 characters.
            pub const PREFIX: &'static str = $prefix;

            /// Accepts exactly the prefix followed by 26 lowercase RFC 4648 base32 characters.
            pub fn parse(value: &str) -> Option<Self> {
                let rest = value.strip_prefix($prefix)?;
                if !is_base32_lower(rest) {
                    return None;
                }
                Inline::new(value).map(Self)
            }

            /// The pseudonym as sent.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pseudonym!(
    /// A client's pseudonym: `p_` + a 128-bit HMAC under the tenant's key, base32 without padding.
    ClientPseudonym,
    "p_"
);
pseudonym!(
    /// A provider's pseudonym: `pv_` + 26 lowercase base32 characters.
    ProviderPseudonym,
    "pv_"
);
pseudonym!(
    /// A membership or package, pseudonymised: `m_` + 26 lowercase base32 characters.
    MembershipPseudonym,
    "m_"
);
pseudonym!(
    /// An appointment, pseudonymised: `a_` + 26 lowercase base32 characters. Shared by the
    /// `booked`, `completed`, `cancelled` and `no_show` events of one appointment, so that Insight
    /// can tell which booking a later event closes (and follow a booking that is rescheduled).
    AppointmentRef,
    "a_"
);

/// An event id: `ev_` + 26 lowercase base32 characters, or a lowercase hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct EventId(Inline<36>);

impl EventId {
    /// Accepts `ev_` + 26 lowercase base32 characters, or `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex.
    pub fn parse(value: &str) -> Option<Self> {
        let ok = match value.strip_prefix("ev_") {
            Some(rest) => is_base32_lower(rest),
            None => is_lower_uuid(value),
        };
        if !ok {
            return None;
        }
        Inline::new(value).map(Self)
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// A UUID id's 128 bits; `None` for an `ev_` id. One-to-one: a UUID id is accepted only in
    /// its one lowercase hyphenated spelling, and an `ev_` id is never a UUID.
    pub fn uuid_bits(&self) -> Option<u128> {
        let text = self.0.as_str().as_bytes();
        if text.len() != 36 || text.starts_with(b"ev_") {
            return None;
        }
        // Validated at parse: hex digits `0-9a-f` everywhere but the four hyphens. A digit's value
        // is its low nibble, plus 9 for the letters (0x61.. has bit 6 set).
        let bits = (text.iter().filter(|b| **b != b'-'))
            .fold(0u128, |acc, b| (acc << 4) | u128::from((b & 0x0f) + 9 * (b >> 6)));
        Some(bits)
    }
}

fn is_lower_uuid(s: &str) -> bool {
    // 8-4-4-4-12 lowercase hex digits, hyphens at 8, 13, 18 and 23.
    let b = s.as_bytes();
    let hex = |part: &[u8]| part.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
    b.len() == 36
        && [b[8], b[13], b[18], b[23]] == [b'-'; 4]
        && [&b[..8], &b[9..13], &b[14..18], &b[19..23], &b[24..]].into_iter().all(hex)
}

/// A practice location: `loc_` + 1 to 32 characters `[a-z0-9]`.
///
/// A suffix made only of seven or more digits is refused even though it fits the character set:
/// it could be a phone number, an SSN or a record number smuggled in as an id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct LocationId(Inline<36>);

impl LocationId {
    /// The literal prefix.
    pub const PREFIX: &'static str = "loc_";

    /// Accepts `loc_` + 1..=32 characters of `[a-z0-9]`, unless they are seven or more digits only.
    pub fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix(Self::PREFIX)?;
        let charset =
            (1..=32).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let digit_run = rest.len() >= 7 && rest.bytes().all(|b| b.is_ascii_digit());
        if !charset || digit_run {
            return None;
        }
        Inline::new(value).map(Self)
    }

    /// The id as sent.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// An instant, as RFC 3339 in UTC: `YYYY-MM-DDTHH:MM:SS[.fffffffff]Z`, year 2000..=2100.
///
/// Held as numbers — seconds since the Unix epoch, nanoseconds, and how many fraction digits were
/// sent — which is all the strict format can say, so [`Timestamp::text`] gives back exactly the
/// text as sent (`.5` and `.50` stay distinct). 16 bytes, and as small inside an `Option`: an
/// event carries three. Equal when the texts are equal; ordered chronologically (then by the
/// number of fraction digits, to agree with equality).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
    digits: FractionDigits,
}

/// How many digits of a second's fraction a timestamp was sent with (none, or 1 to 9). An enum,
/// so that `Option<Timestamp>` needs no extra room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
enum FractionDigits {
    None,
    D1,
    D2,
    D3,
    D4,
    D5,
    D6,
    D7,
    D8,
    D9,
}

impl FractionDigits {
    const ALL: [FractionDigits; 10] =
        [Self::None, Self::D1, Self::D2, Self::D3, Self::D4, Self::D5, Self::D6, Self::D7, Self::D8, Self::D9];

    fn of(count: usize) -> Option<Self> {
        Self::ALL.get(count).copied()
    }

    fn count(self) -> usize {
        self as usize
    }
}

/// First and last second of the accepted years: 2000-01-01T00:00:00Z and 2100-12-31T23:59:59Z.
const FIRST_SECOND: i64 = 946_684_800;
const LAST_SECOND: i64 = 4_133_980_799;

/// The text of a [`Timestamp`], built on the stack (at most 30 bytes).
#[derive(Clone)]
pub struct TimestampText(Inline<30>);

impl std::ops::Deref for TimestampText {
    type Target = str;
    fn deref(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for TimestampText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self)
    }
}

impl fmt::Debug for TimestampText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text())
    }
}

impl Timestamp {
    /// Validates the fixed format structurally: field widths, month 1-12, a day that exists in that
    /// month (leap years included), hour 0-23, minute and second 0-59, 1-9 fractional digits, `Z`.
    pub fn parse(value: &str) -> Option<Self> {
        let b = value.as_bytes();
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let year = digits(&b[0..4])?;
        let month = digits(&b[5..7])?;
        let day = digits(&b[8..10])?;
        let hour = digits(&b[11..13])?;
        let minute = digits(&b[14..16])?;
        let second = digits(&b[17..19])?;
        let (fraction, nanos) = match &b[19..] {
            [b'Z'] => (FractionDigits::None, 0),
            [b'.', frac @ .., b'Z'] => {
                let value = digits(frac)?;
                let scale = 10u32.checked_pow(u32::try_from(9usize.checked_sub(frac.len())?).ok()?)?;
                (FractionDigits::of(frac.len())?, value * scale)
            }
            _ => return None,
        };
        let ok = (2000..=2100).contains(&year)
            && (1..=12).contains(&month)
            && (1..=days_in_month(year, month)).contains(&day)
            && hour <= 23
            && minute <= 59
            && second <= 59;
        if !ok {
            return None;
        }
        let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
        let secs = days * 86_400 + i64::from(hour) * 3_600 + i64::from(minute) * 60 + i64::from(second);
        Some(Self { secs, nanos, digits: fraction })
    }

    /// The timestamp's text, exactly as sent (or, from [`Timestamp::from_unix_seconds`], without a
    /// fraction).
    pub fn text(&self) -> TimestampText {
        const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819202122232425262728293031323334353637383940414243444546474849\
                                    5051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899";
        let (days, rest) = (self.secs.div_euclid(86_400), self.secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        // Written straight into an `Inline`: ASCII digits and punctuation only.
        let mut out = Inline { len: 20, bytes: [0; 30] };
        out.bytes[..20].copy_from_slice(b"0000-00-00T00:00:00Z");
        for (at, value) in [
            (0, year / 100),
            (2, year % 100),
            (5, month),
            (8, day),
            (11, rest / 3_600),
            (14, rest % 3_600 / 60),
            (17, rest % 60),
        ] {
            // Every value is 0..=99 here (the year is 2000..=2100 by construction).
            let pair = usize::try_from(value).unwrap_or(0).min(99) * 2;
            out.bytes[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
        }
        let count = self.digits.count();
        if count == 0 {
            return TimestampText(out);
        }
        // `.` and the first `count` of the nine digits of the nanoseconds, then `Z`.
        out.bytes[19] = b'.';
        let mut nanos = self.nanos;
        for at in (20..29).rev() {
            out.bytes[at] = b'0' + (nanos % 10) as u8;
            nanos /= 10;
        }
        out.bytes[20 + count] = b'Z';
        out.len = u8::try_from(21 + count).unwrap_or(20);
        TimestampText(out)
    }

    /// Whole seconds since the Unix epoch (any fraction is dropped).
    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    /// The instant `secs` seconds after the Unix epoch, whose text is `YYYY-MM-DDTHH:MM:SSZ`;
    /// `None` outside the accepted years 2000..=2100.
    pub fn from_unix_seconds(secs: i64) -> Option<Self> {
        (FIRST_SECOND..=LAST_SECOND).contains(&secs).then_some(Self { secs, nanos: 0, digits: FractionDigits::None })
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month, day).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (if month <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, month, day)
}

/// Parses a run of ASCII digits (at most 9) into a number.
fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || b.len() > 9 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// Days in a month of the proleptic Gregorian calendar; 0 for a month outside 1..=12.
pub(crate) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A number of days, 0..=[`MAX_DAYS`] (treatment cycle, follow-up window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Days(u16);

impl Days {
    /// Accepts 0..=[`MAX_DAYS`].
    pub fn new(days: u64) -> Option<Self> {
        u16::try_from(days).ok().filter(|d| *d <= MAX_DAYS).map(Self)
    }

    /// The number of days.
    pub fn get(self) -> u16 {
        self.0
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire form.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Accepts exactly the wire form (case-sensitive).
            pub fn parse(value: &str) -> Option<Self> {
                match value { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(
    /// What happened.
    EventKind {
        AppointmentBooked => "appointment.booked",
        AppointmentCompleted => "appointment.completed",
        AppointmentCancelled => "appointment.cancelled",
        AppointmentNoShow => "appointment.no_show",
        MembershipStarted => "membership.started",
        MembershipRenewed => "membership.renewed",
        MembershipRedeemed => "membership.redeemed",
        MembershipCancelled => "membership.cancelled",
        MembershipExpired => "membership.expired",
    }
);

impl EventKind {
    /// Appointment events must name a service category; membership events may omit it.
    pub const fn is_appointment(self) -> bool {
        matches!(
            self,
            EventKind::AppointmentBooked
                | EventKind::AppointmentCompleted
                | EventKind::AppointmentCancelled
                | EventKind::AppointmentNoShow
        )
    }
}

string_enum!(
    /// The kind of service, coarse enough to say nothing about a person.
    ServiceCategory {
        Neurotoxin => "neurotoxin",
        Filler => "filler",
        Laser => "laser",
        Facial => "facial",
        Massage => "massage",
        Hair => "hair",
        Nails => "nails",
        Other => "other",
    }
);

string_enum!(
    /// A price band in major currency units; see [`PRICE_BANDS`].
    PriceBand {
        /// 0 to 49.
        Under50 => "0-49",
        /// 50 to 99.
        From50 => "50-99",
        /// 100 to 249.
        From100 => "100-249",
        /// 250 to 499.
        From250 => "250-499",
        /// 500 to 999.
        From500 => "500-999",
        /// 1000 and above.
        From1000 => "1000+",
    }
);

/// A pseudonymous event, the only shape Insight accepts. Build it with [`crate::PhiGuard::check`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InsightEvent {
    /// Idempotency key of the event.
    pub event_id: EventId,
    /// What happened.
    pub kind: EventKind,
    /// Who it happened to, pseudonymously.
    pub client: ClientPseudonym,
    /// Who provided the service, pseudonymously.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderPseudonym>,
    /// Required for appointment events, optional for membership events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_category: Option<ServiceCategory>,
    /// Expected days between treatments of this kind.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cycle_days: Option<Days>,
    /// Days after the treatment within which a check-in is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up_days: Option<Days>,
    /// Coarse price of the service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub price_band: Option<PriceBand>,
    /// Where it happened.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<LocationId>,
    /// When the event happened.
    pub occurred_at: Timestamp,
    /// Start of the appointment slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<Timestamp>,
    /// End of the appointment slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// The membership or package concerned, pseudonymously.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub membership_id: Option<MembershipPseudonym>,
    /// The appointment concerned, pseudonymously (appointment events; optional). Without it a
    /// later event is matched to its booking by client, service category and `starts_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appointment_ref: Option<AppointmentRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const B32: &str = "abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn pseudonyms_need_prefix_and_26_lowercase_base32() {
        assert!(ClientPseudonym::parse(&format!("p_{B32}")).is_some());
        assert!(ClientPseudonym::parse("p_a2b3c4d5e6f7g2h3i4j5k6l7mn").is_some());
        assert!(ClientPseudonym::parse(&format!("p_{}", &B32[..25])).is_none());
        assert!(ClientPseudonym::parse(&format!("p_{B32}a")).is_none());
        assert!(ClientPseudonym::parse(&format!("p_{}", B32.to_uppercase())).is_none());
        assert!(ClientPseudonym::parse("p_abcdefghijklmnopqrstuvwxy1").is_none(), "1 is not base32");
        assert!(ClientPseudonym::parse("p_abcdefghijklmnopqrstuvwxy8").is_none(), "8 is not base32");
        assert!(ClientPseudonym::parse(&format!("pv_{B32}")).is_none());
        assert!(ClientPseudonym::parse(&format!(" p_{B32}")).is_none());
        assert!(ProviderPseudonym::parse(&format!("pv_{B32}")).is_some());
        assert!(ProviderPseudonym::parse(&format!("p_{B32}")).is_none());
        assert!(MembershipPseudonym::parse(&format!("m_{B32}")).is_some());
        assert!(MembershipPseudonym::parse(&format!("mm_{B32}")).is_none());
        assert!(MembershipPseudonym::parse("m_").is_none());
        assert!(AppointmentRef::parse(&format!("a_{B32}")).is_some());
        assert!(AppointmentRef::parse(&format!("a_{}", &B32[..25])).is_none());
        assert!(AppointmentRef::parse(&format!("ap_{B32}")).is_none());
    }

    #[test]
    fn event_ids() {
        assert!(EventId::parse(&format!("ev_{B32}")).is_some());
        assert!(EventId::parse("550e8400-e29b-41d4-a716-446655440000").is_some());
        assert!(EventId::parse("550E8400-E29B-41D4-A716-446655440000").is_none());
        assert!(EventId::parse("550e8400e29b41d4a716446655440000").is_none());
        assert!(EventId::parse("550e8400-e29b-41d4a-716-446655440000").is_none(), "a hyphen out of place");
        assert!(EventId::parse("550e8400-e29b-41d4-a716-4466554400é").is_none(), "36 bytes, not ASCII");
        assert!(EventId::parse("550e8400-e29b-41d4-a716-44665544000g").is_none());
        assert!(EventId::parse("{550e8400-e29b-41d4-a716-446655440000}").is_none());
        assert!(EventId::parse("ev_short").is_none());
        assert!(EventId::parse("").is_none());
    }

    #[test]
    fn uuid_event_ids_have_their_bits() {
        let text = "0190f1e2-3a4b-7c5d-8e6f-a0b1c2d3e4f5";
        let id = EventId::parse(text).expect("valid");
        assert_eq!(id.uuid_bits(), Some(u128::from_str_radix(&text.replace('-', ""), 16).expect("hex")));
        let max = EventId::parse("ffffffff-ffff-ffff-ffff-ffffffffffff").expect("valid");
        assert_eq!(max.uuid_bits(), Some(u128::MAX));
        let ev = EventId::parse("ev_abcdefghijklmnopqrstuvwxyz").expect("valid");
        assert_eq!(ev.uuid_bits(), None);
    }

    #[test]
    fn location_ids() {
        for ok in ["loc_a", "loc_main", "loc_downtown2", "loc_123456", &format!("loc_{}", "a1".repeat(16))] {
            assert!(LocationId::parse(ok).is_some(), "{ok}");
        }
        for bad in ["loc_", "loc_Main", "loc_main-st", "loc_main st", &format!("loc_{}", "a".repeat(33)), "main"] {
            assert!(LocationId::parse(bad).is_none(), "{bad}");
        }
        assert!(LocationId::parse("loc_5551234567").is_none(), "a bare digit run could be a phone number");
    }

    #[test]
    fn timestamps() {
        for ok in [
            "2024-06-01T09:30:00Z",
            "2000-01-01T00:00:00Z",
            "2100-12-31T23:59:59Z",
            "2024-02-29T12:00:00Z",
            "2000-02-29T12:00:00Z",
            "2024-06-01T09:30:00.5Z",
            "2024-06-01T09:30:00.123456789Z",
        ] {
            let ts = Timestamp::parse(ok).unwrap_or_else(|| panic!("{ok} refused"));
            assert_eq!(&*ts.text(), ok, "the text comes back exactly as sent");
        }
        for bad in [
            "1999-12-31T23:59:59Z",
            "2101-01-01T00:00:00Z",
            "2023-02-29T12:00:00Z",
            "2100-02-29T12:00:00Z",
            "2024-04-31T12:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-00-10T00:00:00Z",
            "2024-06-00T00:00:00Z",
            "2024-06-01T24:00:00Z",
            "2024-06-01T23:60:00Z",
            "2024-06-01T23:59:60Z",
            "2024-06-01T09:30:00",
            "2024-06-01T09:30:00z",
            "2024-06-01t09:30:00Z",
            "2024-06-01 09:30:00Z",
            "2024-06-01T09:30:00+00:00",
            "2024-06-01T09:30:00.Z",
            "2024-06-01T09:30:00.1234567890Z",
            "2024-6-01T09:30:00Z",
            "+2024-06-01T09:30:00Z",
            "2024-06-01",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn timestamps_keep_their_text_and_order_chronologically() {
        let t = |s: &str| Timestamp::parse(s).expect("valid");
        for text in [
            "2024-06-01T09:30:00.000000001Z",
            "2024-06-01T09:30:00.100000000Z",
            "2024-06-01T09:30:00.05Z",
            "2024-06-01T09:30:00.0Z",
            "2100-12-31T23:59:59.999999999Z",
        ] {
            assert_eq!(&*t(text).text(), text);
            assert_eq!(serde_json::to_value(t(text)).expect("serializes"), serde_json::json!(text));
        }
        // Equal exactly when the texts are: the same instant with other digits is another value.
        assert_ne!(t("2024-06-01T09:30:00.5Z"), t("2024-06-01T09:30:00.50Z"));
        assert_ne!(t("2024-06-01T09:30:00Z"), t("2024-06-01T09:30:00.0Z"));
        assert_eq!(t("2024-06-01T09:30:00.25Z"), t("2024-06-01T09:30:00.25Z"));
        let ordered = [
            "2024-06-01T09:30:00Z",
            "2024-06-01T09:30:00.0Z",
            "2024-06-01T09:30:00.000000001Z",
            "2024-06-01T09:30:00.5Z",
            "2024-06-01T09:30:00.50Z",
            "2024-06-01T09:30:01Z",
            "2024-06-02T00:00:00Z",
        ];
        assert!(ordered.windows(2).all(|w| t(w[0]) < t(w[1])), "chronological order");
        assert_eq!(std::mem::size_of::<Option<Timestamp>>(), 16);
    }

    #[test]
    fn timestamps_convert_to_and_from_unix_seconds() {
        let cases = [
            ("2000-01-01T00:00:00Z", 946_684_800),
            ("2024-02-29T12:00:00Z", 1_709_208_000),
            ("2024-06-01T09:30:15.75Z", 1_717_234_215),
            ("2100-12-31T23:59:59Z", 4_133_980_799),
        ];
        for (text, secs) in cases {
            let ts = Timestamp::parse(text).expect("valid");
            assert_eq!(ts.unix_seconds(), secs, "{text}");
            let back = Timestamp::from_unix_seconds(secs).expect("in range");
            assert_eq!(back.unix_seconds(), secs);
            assert_eq!(&*back.text(), format!("{}Z", &text[..19]), "fractions are dropped");
        }
        for day in (0..36_890).step_by(13) {
            let secs = 946_684_800 + day * 86_400 + day % 86_400;
            let ts = Timestamp::from_unix_seconds(secs).expect("in range");
            let reparsed = Timestamp::parse(&ts.text()).expect("the text it writes is valid");
            assert_eq!((reparsed.unix_seconds(), &reparsed), (secs, &ts), "{}", ts.text());
        }
        assert!(Timestamp::from_unix_seconds(946_684_799).is_none());
        assert!(Timestamp::from_unix_seconds(4_133_980_800).is_none());
    }

    #[test]
    fn days() {
        assert_eq!(Days::new(0).map(Days::get), Some(0));
        assert_eq!(Days::new(3650).map(Days::get), Some(3650));
        assert!(Days::new(3651).is_none());
        assert!(Days::new(u64::MAX).is_none());
    }

    #[test]
    fn enums_round_trip_their_wire_form() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventKind::ALL.len(), 9);
        for category in ServiceCategory::ALL {
            assert_eq!(ServiceCategory::parse(category.as_str()), Some(*category));
        }
        assert_eq!(ServiceCategory::ALL.len(), 8);
        assert_eq!(PriceBand::ALL.iter().map(|b| b.as_str()).collect::<Vec<_>>(), PRICE_BANDS);
        assert!(EventKind::parse("Appointment.Booked").is_none());
        assert!(ServiceCategory::parse("Filler").is_none());
        assert!(PriceBand::parse("1000").is_none());
        assert!(EventKind::AppointmentNoShow.is_appointment());
        assert!(!EventKind::MembershipExpired.is_appointment());
    }
}
