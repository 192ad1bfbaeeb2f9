//! The identifier detector: says which HIPAA Safe Harbor identifier a refused value looks like.
//!
//! It never decides whether a value is accepted — the field formats in [`crate::event`] do that —
//! it only explains a refusal, so that counters and logs can say *why* without saying *what*.
//! The structured patterns are tried first, strongest first (email, URL, IP address, SSN, phone,
//! date, ZIP/postcode, postal address, record number), on the whole value and then on every run of
//! up to [`MAX_WINDOW`] words inside it; then names; then free text; anything else is malformed.
//! Hand-written rather than regex-based: the formats are few and fixed, and this keeps the
//! boundary crate free of heavy dependencies.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Serialize;

use crate::event::days_in_month;

/// What a refused value looks like. The order of the variants is the order of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum IdentifierKind {
    /// A person's name ("Jane Doe", "Doe, Jane", "Dr. Anna Müller", "山田太郎").
    Name,
    /// An email address, including plus-addressing and light obfuscation (`[at]`, `(dot)`).
    Email,
    /// A telephone or fax number: US and international, separators, `+`, `00`, extensions.
    Phone,
    /// A street line, unit designator or post office box.
    PostalAddress,
    /// A US ZIP (5 or 9 digits), UK or Canadian postcode.
    ZipCode,
    /// A calendar date (birth, admission…) in any common numeric or named-month format.
    Date,
    /// A US Social Security number, with or without separators.
    Ssn,
    /// A medical record, account, health plan, licence, card or similar number.
    RecordNumber,
    /// A web address, with or without scheme.
    Url,
    /// An IPv4 or IPv6 address.
    IpAddress,
    /// Words that are none of the above: notes, comments, sentences.
    FreeText,
    /// Not the field's format, and not recognisably any identifier.
    Malformed,
}

impl IdentifierKind {
    /// Number of kinds.
    pub const COUNT: usize = 12;

    /// Every kind, in counter order.
    pub const ALL: [IdentifierKind; Self::COUNT] = [
        IdentifierKind::Name,
        IdentifierKind::Email,
        IdentifierKind::Phone,
        IdentifierKind::PostalAddress,
        IdentifierKind::ZipCode,
        IdentifierKind::Date,
        IdentifierKind::Ssn,
        IdentifierKind::RecordNumber,
        IdentifierKind::Url,
        IdentifierKind::IpAddress,
        IdentifierKind::FreeText,
        IdentifierKind::Malformed,
    ];

    /// The variant's name.
    pub const fn as_str(self) -> &'static str {
        match self {
            IdentifierKind::Name => "Name",
            IdentifierKind::Email => "Email",
            IdentifierKind::Phone => "Phone",
            IdentifierKind::PostalAddress => "PostalAddress",
            IdentifierKind::ZipCode => "ZipCode",
            IdentifierKind::Date => "Date",
            IdentifierKind::Ssn => "Ssn",
            IdentifierKind::RecordNumber => "RecordNumber",
            IdentifierKind::Url => "Url",
            IdentifierKind::IpAddress => "IpAddress",
            IdentifierKind::FreeText => "FreeText",
            IdentifierKind::Malformed => "Malformed",
        }
    }

    /// True for the kinds recognised by a structural pattern (as opposed to names, free text
    /// and malformed values).
    pub const fn is_structured(self) -> bool {
        !matches!(self, IdentifierKind::Name | IdentifierKind::FreeText | IdentifierKind::Malformed)
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for IdentifierKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of an unknown identifier kind (the input itself is not echoed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown identifier kind")]
pub struct UnknownIdentifierKind;

impl FromStr for IdentifierKind {
    type Err = UnknownIdentifierKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdentifierKind::ALL.into_iter().find(|k| k.as_str() == s).ok_or(UnknownIdentifierKind)
    }
}

/// Longest run of words examined when looking for an identifier inside a longer value.
const MAX_WINDOW: usize = 6;
/// Only the start of a very long value is examined; it is refused either way.
const MAX_CLASSIFY_CHARS: usize = 2048;

type Detector = fn(&str) -> bool;

/// The structured detectors, strongest first.
const STRUCTURED: [(IdentifierKind, Detector); 9] = [
    (IdentifierKind::Email, is_email),
    (IdentifierKind::Url, is_url),
    (IdentifierKind::IpAddress, is_ip),
    (IdentifierKind::Ssn, is_ssn),
    (IdentifierKind::Phone, is_phone),
    (IdentifierKind::Date, is_date),
    (IdentifierKind::ZipCode, is_zip),
    (IdentifierKind::PostalAddress, is_address),
    (IdentifierKind::RecordNumber, is_record_number),
];

/// Says which identifier `value` looks like; [`IdentifierKind::Malformed`] if none.
pub fn classify(value: &str) -> IdentifierKind {
    let mut v = value.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = v.char_indices().nth(MAX_CLASSIFY_CHARS) {
        v.truncate(cut);
    }
    if v.is_empty() {
        return IdentifierKind::Malformed;
    }
    if let Some((kind, _)) = STRUCTURED.iter().find(|(_, detect)| detect(&v)) {
        return *kind;
    }
    let tokens: Vec<&str> = v.split(' ').collect();
    if tokens.len() > 1 {
        for (kind, detect) in STRUCTURED {
            for start in 0..tokens.len() {
                for size in 1..=MAX_WINDOW.min(tokens.len() - start) {
                    if size == tokens.len() {
                        continue;
                    }
                    let window = tokens[start..start + size].join(" ");
                    let window = trim_window(&window);
                    if !window.is_empty() && detect(window) {
                        return kind;
                    }
                }
            }
        }
    }
    if is_name(&v) {
        IdentifierKind::Name
    } else if is_free_text(&tokens) {
        IdentifierKind::FreeText
    } else {
        IdentifierKind::Malformed
    }
}

/// Trims sentence punctuation around a run of words, keeping parentheses that pair up.
fn trim_window(w: &str) -> &str {
    let mut w = w.trim_matches(|c: char| matches!(c, ',' | ';' | '!' | '?' | '"' | '\'' | '“' | '”' | '’' | '‘'));
    w = w.trim_end_matches(['.', ':']);
    let opens = w.matches('(').count();
    let closes = w.matches(')').count();
    if opens > closes {
        w = w.strip_prefix('(').unwrap_or(w);
    } else if closes > opens {
        w = w.strip_suffix(')').unwrap_or(w);
    }
    w.trim()
}

/// Lowercase key of a word: without surrounding punctuation.
fn key(word: &str) -> String {
    word.trim_matches(|c: char| matches!(c, ':' | '.' | '#' | ',' | ';' | '=' | '(' | ')')).to_lowercase()
}

/// Drops leading label words ("DOB:", "Phone", "ssn#", "tel:") when something follows them.
fn strip_leading_words<'a>(s: &'a str, words: &[&str]) -> &'a str {
    let mut rest = s.trim_start();
    loop {
        let end = rest.find(' ').unwrap_or(rest.len());
        let token = &rest[..end];
        if let Some(colon) = token.find(':') {
            let label = key(&token[..colon]);
            if words.contains(&label.as_str()) && colon + 1 < token.len() {
                rest = rest[colon + 1..].trim_start();
                continue;
            }
        }
        let k = key(token);
        let punctuation = !token.is_empty() && token.chars().all(|c| matches!(c, '-' | ':' | '#' | '=' | '–' | '—'));
        if (punctuation || (!k.is_empty() && words.contains(&k.as_str()))) && end < rest.len() {
            rest = rest[end..].trim_start();
        } else {
            return rest;
        }
    }
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

fn number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || !all_digits(s) {
        return None;
    }
    s.parse().ok()
}

// ---------------------------------------------------------------------------------------------
// Email, URL, IP

fn is_domain(host: &str) -> bool {
    let labels: Vec<&str> = host.split('.').collect();
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let tld_ok = labels.last().is_some_and(|t| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic));
    host.len() <= 253 && labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

fn is_email(s: &str) -> bool {
    let s = strip_leading_words(s, &["email", "e-mail", "mail", "mailto", "courriel"]);
    let mut v = s.to_lowercase();
    for at in [" [at] ", " (at) ", " {at} ", "[at]", "(at)", "{at}", " @ "] {
        v = v.replace(at, "@");
    }
    for dot in [" [dot] ", " (dot) ", "[dot]", "(dot)"] {
        v = v.replace(dot, ".");
    }
    let v = v.strip_prefix("mailto:").unwrap_or(&v);
    if v.contains(' ') || v.matches('@').count() != 1 {
        return false;
    }
    let Some((local, domain)) = v.split_once('@') else {
        return false;
    };
    let local_ok = (1..=64).contains(&local.len())
        && local.chars().all(|c| c.is_alphanumeric() || "!#$%&'*+=?^_`{|}~.-".contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    local_ok && is_domain(domain)
}

/// Top-level domains for which a bare host ("janedoe.com") counts as a web address.
const KNOWN_TLDS: &[&str] = &[
    "com", "org", "net", "edu", "gov", "mil", "int", "io", "co", "uk", "de", "fr", "in", "us", "ca", "au", "nz", "ie",
    "es", "it", "nl", "be", "ch", "at", "se", "no", "dk", "fi", "pl", "pt", "br", "mx", "ar", "jp", "cn", "kr", "ru",
    "za", "ng", "ke", "info", "biz", "me", "app", "dev", "health", "clinic", "spa", "beauty", "salon", "care", "ly",
    "tv", "ai", "xyz", "online", "site", "shop", "store", "link", "page", "blog", "social", "eu", "asia",
];

fn is_url(s: &str) -> bool {
    let s = strip_leading_words(s, &["url", "website", "web", "site", "link", "homepage", "profile"]);
    if s.contains(' ') || s.is_empty() {
        return false;
    }
    let lower = s.to_lowercase();
    if let Some(i) = lower.find("://") {
        let scheme = &lower[..i];
        return scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
            && lower.len() > i + 3;
    }
    let host_end = lower.find(['/', '?', '#', ':']).unwrap_or(lower.len());
    let (host, rest) = lower.split_at(host_end);
    if !is_domain(host) {
        return false;
    }
    let tld = host.rsplit('.').next().unwrap_or_default();
    host.starts_with("www.") || KNOWN_TLDS.contains(&tld) || (rest.starts_with('/') && rest.len() > 1)
}

fn is_ip(s: &str) -> bool {
    let mut t = strip_leading_words(s, &["ip", "ipv4", "ipv6", "ip-address", "address", "addr", "from"]);
    let mut had_port = false;
    if let Some(inner) = t.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return false;
        };
        let after = &inner[end + 1..];
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(|p| all_digits(p) && p.len() <= 5)) {
            return false;
        }
        t = &inner[..end];
        had_port = true;
    }
    if let Some((addr, prefix)) = t.rsplit_once('/')
        && all_digits(prefix)
        && prefix.len() <= 3
    {
        t = addr;
    }
    if let Some((addr, _zone)) = t.split_once('%') {
        t = addr;
    }
    if t.parse::<Ipv4Addr>().is_ok() || t.parse::<Ipv6Addr>().is_ok() {
        return true;
    }
    !had_port
        && t.rsplit_once(':')
            .is_some_and(|(addr, port)| all_digits(port) && port.len() <= 5 && addr.parse::<Ipv4Addr>().is_ok())
}

// ---------------------------------------------------------------------------------------------
// SSN, phone

fn is_ssn(s: &str) -> bool {
    let s = strip_leading_words(
        s,
        &["ssn", "ss", "soc", "sec", "social", "security", "number", "no", "num", "nr", "ssan", "tin", "itin"],
    );
    let b = s.as_bytes();
    if !s.is_ascii() {
        return false;
    }
    match b.len() {
        9 => all_digits(s),
        11 => {
            let sep = b[3];
            matches!(sep, b'-' | b' ' | b'.')
                && b[6] == sep
                && all_digits(&s[0..3])
                && all_digits(&s[4..6])
                && all_digits(&s[7..11])
        }
        _ => false,
    }
}

const PHONE_WORDS: &[&str] = &[
    "tel",
    "phone",
    "ph",
    "mobile",
    "mob",
    "cell",
    "cellphone",
    "fax",
    "telefax",
    "telephone",
    "telefon",
    "telefono",
    "teléfono",
    "téléphone",
    "tél",
    "handy",
    "portable",
    "mobil",
    "home",
    "work",
    "office",
    "number",
    "no",
    "nr",
    "num",
    "contact",
    "call",
    "whatsapp",
    "sms",
    "text",
    "t",
    "m",
    "f",
    "h",
    "w",
    "p",
    "c",
    "fixe",
];

/// Drops a trailing extension: "x204", "ext. 12", "extension 7", "#3".
fn strip_extension(s: &str) -> &str {
    let lower = s.to_ascii_lowercase();
    for marker in ["extension", "ext.", "ext", "x", "#"] {
        if let Some(i) = lower.rfind(marker) {
            let tail = lower[i + marker.len()..].trim_start_matches(['.', ':', ' ']);
            let head = s[..i].trim_end().trim_end_matches(',').trim_end();
            if (1..=6).contains(&tail.len())
                && all_digits(tail)
                && head.ends_with(|c: char| c.is_ascii_digit() || c == ')')
            {
                return head;
            }
        }
    }
    s
}

fn is_phone(s: &str) -> bool {
    let s = strip_extension(strip_leading_words(s, PHONE_WORDS)).trim();
    let (plus, body) = match s.strip_prefix('+') {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    };
    if !body.starts_with(|c: char| c.is_ascii_digit() || c == '(') || !body.ends_with(|c: char| c.is_ascii_digit()) {
        return false;
    }
    let mut digits = String::new();
    let mut groups: Vec<usize> = vec![0];
    let mut in_parens = false;
    let mut parens = 0;
    for c in body.chars() {
        match c {
            '0'..='9' => {
                digits.push(c);
                if let Some(last) = groups.last_mut() {
                    *last += 1;
                }
            }
            ' ' | '-' | '.' | '/' => groups.push(0),
            '(' if !in_parens && parens < 2 => {
                in_parens = true;
                parens += 1;
            }
            ')' if in_parens => in_parens = false,
            _ => return false,
        }
    }
    groups.retain(|g| *g > 0);
    if in_parens {
        return false;
    }
    // ZIP+4 ("02139-4307") is not a phone number.
    if !plus && groups == [5, 4] {
        return false;
    }
    let n = digits.len();
    if plus {
        (8..=15).contains(&n) && !digits.starts_with('0')
    } else if let Some(international) = digits.strip_prefix("00") {
        // "00" then a country code, which never starts with 0.
        (10..=17).contains(&n) && !international.starts_with('0')
    } else if digits.starts_with('0') {
        (9..=12).contains(&n)
    } else {
        // A country code without "+": "91-98765-43210", "44 20 7946 0958".
        let country_code = groups.len() >= 3 && groups[0] <= 3 && (11..=13).contains(&n);
        n == 10 || (n == 11 && digits.starts_with('1')) || (n == 7 && groups == [3, 4]) || country_code
    }
}

// ---------------------------------------------------------------------------------------------
// Dates

const DATE_WORDS: &[&str] = &[
    "dob",
    "d.o.b",
    "d-o-b",
    "birthdate",
    "birthday",
    "born",
    "on",
    "geb",
    "geboren",
    "né",
    "née",
    "nee",
    "le",
    "am",
    "date",
    "of",
    "birth",
    "bday",
    "b-day",
    "fecha",
    "de",
    "nacimiento",
    "dt",
];

const MONTHS: &[(&str, u32)] = &[
    ("january", 1),
    ("jan", 1),
    ("february", 2),
    ("feb", 2),
    ("march", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("may", 5),
    ("june", 6),
    ("jun", 6),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("october", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("december", 12),
    ("dec", 12),
    // French
    ("janvier", 1),
    ("février", 2),
    ("fevrier", 2),
    ("mars", 3),
    ("avril", 4),
    ("mai", 5),
    ("juin", 6),
    ("juillet", 7),
    ("août", 8),
    ("aout", 8),
    ("septembre", 9),
    ("octobre", 10),
    ("novembre", 11),
    ("décembre", 12),
    ("decembre", 12),
    // German
    ("januar", 1),
    ("jänner", 1),
    ("februar", 2),
    ("märz", 3),
    ("maerz", 3),
    ("juni", 6),
    ("juli", 7),
    ("oktober", 10),
    ("dezember", 12),
    // Spanish
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("setiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
];

const WEEKDAYS: &[&str] = &[
    "monday",
    "mon",
    "tuesday",
    "tue",
    "tues",
    "wednesday",
    "wed",
    "thursday",
    "thu",
    "thur",
    "thurs",
    "friday",
    "fri",
    "saturday",
    "sat",
    "sunday",
    "sun",
];

fn valid_day(year: u32, month: u32, day: u32) -> bool {
    day >= 1 && day <= days_in_month(year, month)
}

fn four_digit_year(s: &str) -> Option<u32> {
    number(s).filter(|y| s.len() == 4 && (1900..=2100).contains(y))
}

fn is_date(s: &str) -> bool {
    let s = strip_leading_words(s, DATE_WORDS).trim_end_matches('.');
    // An ISO date with a time part: "1985-04-12T10:00:00", "1999-12-31T23:59:59Z", "1985-04-12 08:30".
    if s.len() > 11 && s.is_char_boundary(10) && matches!(s.as_bytes()[10], b'T' | b't' | b' ') {
        return numeric_date(&s[..10]) && is_time_of_day(&s[11..]);
    }
    numeric_date(s) || compact_date(s) || named_date(s)
}

/// "08:30", "23:59:59", "00:00:00.000Z", "10:00:00+02:00".
fn is_time_of_day(s: &str) -> bool {
    let s = s.trim_end_matches(['Z', 'z']);
    let s = match s.rfind(['+', '-']) {
        Some(i) if i >= 5 => &s[..i],
        _ => s,
    };
    let s = s.split_once('.').map_or(s, |(hms, frac)| if all_digits(frac) { hms } else { "" });
    let parts: Vec<&str> = s.split(':').collect();
    let two = |p: &str, max: u32| p.len() == 2 && number(p).is_some_and(|n| n <= max);
    match parts.as_slice() {
        [h, m] => two(h, 23) && two(m, 59),
        [h, m, sec] => two(h, 23) && two(m, 59) && two(sec, 60),
        _ => false,
    }
}

fn numeric_date(s: &str) -> bool {
    for sep in ['/', '-', '.', ' '] {
        let parts: Vec<&str> = s.split(sep).map(str::trim).collect();
        if parts.len() != 3 || !parts.iter().all(|p| all_digits(p)) {
            continue;
        }
        let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
        let (Some(a), Some(b), Some(c)) = (number(parts[0]), number(parts[1]), number(parts[2])) else {
            continue;
        };
        if lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2 && four_digit_year(parts[0]).is_some() && valid_day(a, b, c) {
            return true;
        }
        if lens[0] <= 2 && lens[1] <= 2 {
            let year = match lens[2] {
                4 => four_digit_year(parts[2]),
                2 if sep != ' ' => Some(2000),
                _ => None,
            };
            if let Some(y) = year
                && (valid_day(y, b, a) || valid_day(y, a, b))
            {
                return true;
            }
        }
    }
    false
}

fn compact_date(s: &str) -> bool {
    if s.len() != 8 || !all_digits(s) {
        return false;
    }
    let n = |r: std::ops::Range<usize>| number(&s[r]).unwrap_or(0);
    let ymd = four_digit_year(&s[0..4]).is_some_and(|y| valid_day(y, n(4..6), n(6..8)));
    let dmy_or_mdy =
        four_digit_year(&s[4..8]).is_some_and(|y| valid_day(y, n(2..4), n(0..2)) || valid_day(y, n(0..2), n(2..4)));
    ymd || dmy_or_mdy
}

enum DatePart {
    Month(u32, bool),
    Num(u32, usize),
}

fn named_date(s: &str) -> bool {
    let mut parts = Vec::new();
    for raw in s.split(|c: char| c.is_whitespace() || matches!(c, ',' | '.' | '-' | '/')).filter(|t| !t.is_empty()) {
        let lower = raw.to_lowercase();
        if matches!(lower.as_str(), "of" | "the" | "de" | "del" | "el") {
            continue;
        }
        if parts.is_empty() && WEEKDAYS.contains(&lower.as_str()) {
            continue;
        }
        if let Some((_, m)) = MONTHS.iter().find(|(name, _)| *name == lower) {
            parts.push(DatePart::Month(*m, raw.starts_with(char::is_uppercase)));
            continue;
        }
        let lower = lower.trim_start_matches(['\'', '’']).to_owned();
        let digits = lower.trim_end_matches(|c: char| c.is_alphabetic() || c == 'º' || c == '°');
        let suffix = &lower[digits.len()..];
        if !matches!(suffix, "" | "st" | "nd" | "rd" | "th" | "er" | "º" | "°") {
            return false;
        }
        match number(digits) {
            Some(n) => parts.push(DatePart::Num(n, digits.len())),
            None => return false,
        }
    }
    let year = |n: u32, len: usize| match len {
        4 if (1900..=2100).contains(&n) => Some(n),
        2 => Some(2000),
        _ => None,
    };
    let day_ok = |d: u32, len: usize, m: u32, y: u32| len <= 2 && valid_day(y, m, d);
    match parts.as_slice() {
        [DatePart::Num(y, 4), DatePart::Month(m, _), DatePart::Num(d, dl)] => {
            year(*y, 4).is_some_and(|y| day_ok(*d, *dl, *m, y))
        }
        [DatePart::Month(m, _), DatePart::Num(d, dl), DatePart::Num(y, yl)]
        | [DatePart::Num(d, dl), DatePart::Month(m, _), DatePart::Num(y, yl)] => {
            year(*y, *yl).is_some_and(|y| day_ok(*d, *dl, *m, y))
        }
        [DatePart::Month(_, _), DatePart::Num(y, 4)] => year(*y, 4).is_some(),
        [DatePart::Month(m, true), DatePart::Num(d, dl)] | [DatePart::Num(d, dl), DatePart::Month(m, true)] => {
            day_ok(*d, *dl, *m, 2000)
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------------------------
// ZIP and postcodes

fn is_zip(s: &str) -> bool {
    let s = strip_leading_words(
        s,
        &["zip", "zipcode", "zip-code", "code", "postcode", "post", "postal", "plz", "cp", "pin", "pincode", "eircode"],
    );
    us_zip(s) || uk_postcode(s) || ca_postcode(s)
}

fn us_zip(s: &str) -> bool {
    if !s.is_ascii() {
        return false;
    }
    match s.len() {
        5 => all_digits(s),
        10 => all_digits(&s[..5]) && matches!(s.as_bytes()[5], b'-' | b' ') && all_digits(&s[6..]),
        _ => false,
    }
}

fn uk_postcode(s: &str) -> bool {
    if !s.is_ascii() || s.matches(' ').count() > 1 {
        return false;
    }
    let compact: Vec<u8> = s.bytes().filter(|b| *b != b' ').map(|b| b.to_ascii_uppercase()).collect();
    if !(5..=7).contains(&compact.len()) || (s.contains(' ') && s.find(' ') != Some(s.len() - 4)) {
        return false;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let l = |b: &u8| b.is_ascii_uppercase();
    let d = |b: &u8| b.is_ascii_digit();
    let inward_ok = d(&inward[0]) && l(&inward[1]) && l(&inward[2]);
    let outward_ok = match outward {
        [a, b] => l(a) && d(b),
        [a, b, c] => l(a) && ((d(b) && d(c)) || (l(b) && d(c)) || (d(b) && l(c))),
        [a, b, c, e] => l(a) && l(b) && d(c) && (d(e) || l(e)),
        _ => false,
    };
    inward_ok && outward_ok
}

fn ca_postcode(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().map(|b| b.to_ascii_uppercase()).collect();
    let compact: Vec<u8> = match b.len() {
        6 => b,
        7 if matches!(b[3], b' ' | b'-') => b.iter().enumerate().filter(|(i, _)| *i != 3).map(|(_, c)| *c).collect(),
        _ => return false,
    };
    compact.iter().enumerate().all(|(i, c)| if i % 2 == 0 { c.is_ascii_uppercase() } else { c.is_ascii_digit() })
}

// ---------------------------------------------------------------------------------------------
// Postal addresses

/// Street types that, after a house number, make an address whatever their case.
const STREET_SUFFIXES: &[&str] = &[
    "street",
    "st",
    "avenue",
    "ave",
    "av",
    "road",
    "rd",
    "boulevard",
    "blvd",
    "highway",
    "hwy",
    "parkway",
    "pkwy",
    "ln",
    "dr",
    "ct",
    "pl",
    "ter",
    "terrace",
    "cir",
    "sq",
    "cres",
    "crescent",
    "trl",
    "straße",
    "strasse",
    "str",
    "expressway",
    "expy",
    "freeway",
    "fwy",
    "broadway",
    "mews",
    "esplanade",
    "causeway",
    "alley",
    "aly",
    "plaza",
    "boul",
    "bd",
];
/// Street types that are also common words or surnames: they count only when capitalised.
const AMBIGUOUS_SUFFIXES: &[&str] = &[
    "drive", "way", "walk", "lane", "court", "place", "close", "row", "square", "circle", "loop", "trail", "path",
    "grove", "gardens", "parade", "quay", "wharf", "rise", "pike", "cove", "commons", "run", "green", "hill", "view",
];
/// Street words that come before the name: "12 rue de la Paix", "Via Roma 12".
const LEADING_STREET_WORDS: &[&str] = &[
    "rue",
    "avenue",
    "av",
    "boulevard",
    "bd",
    "chemin",
    "impasse",
    "allée",
    "allee",
    "quai",
    "calle",
    "avenida",
    "carrer",
    "rua",
    "via",
    "viale",
    "piazza",
    "corso",
    "plaza",
    "paseo",
    "travessa",
    "strada",
    "largo",
    "ulica",
    "ul",
];
/// German compound street names: "Hauptstraße 5", "Musterstr. 12a".
const COMPOUND_STREET_ENDINGS: &[&str] =
    &["straße", "strasse", "str", "weg", "allee", "platz", "gasse", "damm", "ufer", "ring", "gracht", "laan", "vej"];
const UNIT_WORDS: &[&str] =
    &["apt", "apartment", "suite", "ste", "flat", "appt", "appartement", "whg", "wohnung", "piso"];
const WEAK_UNIT_WORDS: &[&str] = &["unit", "floor", "fl", "room", "rm", "building", "bldg", "level", "lvl", "block"];
/// Words that never sit between a house number and a street type.
const NOT_STREET_NAME: &[&str] = &[
    "the", "a", "an", "in", "on", "at", "of", "to", "for", "with", "and", "or", "by", "from", "her", "his", "my",
    "our", "their", "is", "was", "be", "per", "min", "mins", "minute", "minutes", "hour", "hours", "hr", "hrs", "day",
    "days", "week", "weeks", "month", "months", "year", "years", "yr", "yrs", "unit", "units", "ml", "mg", "cc",
    "times", "time", "syringe", "syringes", "session", "sessions", "km", "mile", "miles", "block", "blocks", "pm",
    "am", "x",
];

struct Word<'a> {
    raw: &'a str,
    key: String,
}

fn words(s: &str) -> Vec<Word<'_>> {
    s.split_whitespace()
        .map(|w| {
            let raw = w.trim_matches(|c: char| matches!(c, ',' | ';' | ':' | '(' | ')' | '"'));
            Word { raw, key: raw.to_lowercase().replace('.', "") }
        })
        .filter(|w| !w.key.is_empty())
        .collect()
}

fn capitalised(raw: &str) -> bool {
    raw.starts_with(char::is_uppercase)
}

fn is_house_number(k: &str) -> bool {
    let digits = k.trim_end_matches(|c: char| c.is_ascii_lowercase());
    if digits.len() < k.len() {
        return all_digits(digits) && digits.len() <= 6 && k.len() - digits.len() == 1;
    }
    if let Some((a, b)) = k.split_once(['-', '/']) {
        return all_digits(a) && all_digits(b) && a.len() <= 5 && b.len() <= 5;
    }
    all_digits(k) && k.len() <= 6
}

fn is_unit_id(k: &str) -> bool {
    let k = k.trim_start_matches('#');
    (k.chars().any(|c| c.is_ascii_digit()) && k.len() <= 6 && k.chars().all(|c| c.is_alphanumeric() || c == '-'))
        || (k.chars().count() == 1 && k.chars().all(char::is_alphabetic))
}

fn is_street_name_word(w: &Word<'_>) -> bool {
    let k = w.key.as_str();
    if NOT_STREET_NAME.contains(&k) {
        return false;
    }
    let ordinal = k
        .strip_suffix("st")
        .or_else(|| k.strip_suffix("nd"))
        .or_else(|| k.strip_suffix("rd"))
        .or_else(|| k.strip_suffix("th"))
        .is_some_and(all_digits);
    ordinal || k.chars().all(|c| c.is_alphabetic() || matches!(c, '\'' | '’' | '-'))
}

fn is_address(s: &str) -> bool {
    let w = words(s);
    let k = |i: usize| w.get(i).map_or("", |x| x.key.as_str());
    for i in 0..w.len() {
        // Post office boxes and rural routes.
        let po_box = (k(i) == "po" && k(i + 1) == "box" && is_unit_id(k(i + 2)))
            || (k(i) == "p" && k(i + 1) == "o" && k(i + 2) == "box" && is_unit_id(k(i + 3)))
            || (k(i) == "post" && k(i + 1) == "office" && k(i + 2) == "box" && is_unit_id(k(i + 3)))
            || (matches!(k(i), "pobox" | "postfach" | "apartado" | "postbus") && is_unit_id(k(i + 1)))
            || (matches!(k(i), "rr" | "hc") && all_digits(k(i + 1)) && k(i + 2) == "box");
        // "Apt 4B", "Suite 200", "Flat 3".
        let unit = UNIT_WORDS.contains(&k(i)) && is_unit_id(k(i + 1));
        if po_box || unit {
            return true;
        }
        if is_house_number(k(i)) {
            // "12 rue de la Paix", "27 Avenue des Champs-Élysées".
            if LEADING_STREET_WORDS.contains(&k(i + 1)) && w.get(i + 2).is_some_and(is_street_name_word) {
                return true;
            }
            // "123 Main St", "742 Evergreen Terrace", "3500 Deer Creek Rd".
            for j in i + 2..w.len().min(i + 6) {
                if !w[i + 1..j].iter().all(is_street_name_word) {
                    break;
                }
                let suffix = &w[j];
                let strong = STREET_SUFFIXES.contains(&suffix.key.as_str());
                let weak = AMBIGUOUS_SUFFIXES.contains(&suffix.key.as_str()) && capitalised(suffix.raw);
                if strong || weak {
                    return true;
                }
            }
        }
        // "Via Roma 12", "Calle Mayor 3".
        if LEADING_STREET_WORDS.contains(&k(i)) && capitalised(w[i].raw) {
            for j in i + 2..w.len().min(i + 6) {
                if is_house_number(k(j)) && w[i + 1..j].iter().all(is_street_name_word) {
                    return true;
                }
                if !is_street_name_word(&w[j]) {
                    break;
                }
            }
        }
        // "Hauptstraße 5", "Berliner Straße 12".
        let compound = COMPOUND_STREET_ENDINGS.iter().any(|end| k(i).ends_with(end) && k(i).len() > end.len() + 2);
        let german = compound || matches!(k(i), "straße" | "strasse" | "str" | "weg" | "allee" | "platz");
        if german && capitalised(w[i].raw) && is_house_number(k(i + 1)) {
            return true;
        }
    }
    // "Building 7, Floor 3": only designators and their numbers.
    let all_units = !w.is_empty()
        && w.len().is_multiple_of(2)
        && w.chunks(2).all(|p| {
            (UNIT_WORDS.contains(&p[0].key.as_str()) || WEAK_UNIT_WORDS.contains(&p[0].key.as_str()))
                && is_unit_id(&p[1].key)
        });
    // "Elm Street", "Old Mill Road": capitalised words ending in an unambiguous street type.
    let street_name = (2..=5).contains(&w.len())
        && w.last().is_some_and(|l| STREET_SUFFIXES.contains(&l.key.as_str()) && l.key.len() > 2)
        && w.iter()
            .all(|x| capitalised(x.raw) && x.raw.chars().all(|c| c.is_alphabetic() || matches!(c, '.' | '\'' | '-')));
    all_units || street_name
}

// ---------------------------------------------------------------------------------------------
// Record numbers

/// Labels of record, account, plan, licence and similar numbers.
const RECORD_WORDS: &[&str] = &[
    "mrn",
    "medical",
    "record",
    "med",
    "rec",
    "medrec",
    "chart",
    "patient",
    "pt",
    "pid",
    "acct",
    "account",
    "acc",
    "a/c",
    "policy",
    "member",
    "subscriber",
    "group",
    "grp",
    "health",
    "plan",
    "insurance",
    "ins",
    "claim",
    "beneficiary",
    "medicaid",
    "medicare",
    "mbi",
    "hicn",
    "nhs",
    "nhi",
    "license",
    "licence",
    "dl",
    "driver's",
    "drivers",
    "driver",
    "passport",
    "vin",
    "serial",
    "certificate",
    "cert",
    "iban",
    "case",
    "ref",
    "reference",
    "card",
    "credit",
    "debit",
    "routing",
    "aba",
    "npi",
    "dea",
    "emr",
    "ehr",
    "tax",
    "ein",
    "itin",
    "bank",
    "id",
    "health-plan",
    "insurer",
    "payer",
    "chart#",
    "umr",
    "hn",
];
const RECORD_FILLERS: &[&str] = &["no", "nr", "num", "number", "id", "nº", "n°", "identifier", "code", "#", "-"];

fn is_uuid_shape(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn is_id_token(t: &str) -> bool {
    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '.'))
}

fn is_record_number(s: &str) -> bool {
    // Labelled: "MRN 12345678", "Acct# 99-1234", "Policy # HP-4482-9910", "NHS 943 476 5919".
    let spaced = s.replace(['#', ':'], " ");
    let tokens: Vec<String> = spaced.split_whitespace().map(|t| t.trim_matches(['.', ',', ';']).to_owned()).collect();
    let lower: Vec<String> = tokens.iter().map(|t| t.to_lowercase()).collect();
    let labels =
        lower.iter().take_while(|t| RECORD_WORDS.contains(&t.as_str()) || RECORD_FILLERS.contains(&t.as_str())).count();
    if labels > 0 && RECORD_WORDS.contains(&lower[0].as_str()) {
        let id = &tokens[labels..];
        if (1..=6).contains(&id.len())
            && id.iter().all(|t| is_id_token(t))
            && id.iter().map(|t| digit_count(t)).sum::<usize>() >= 4
        {
            return true;
        }
    }
    // Unlabelled: long digit runs, grouped digits, alphanumeric identifiers.
    let t = s.trim();
    let grouped = t.chars().all(|c| c.is_ascii_digit() || matches!(c, '-' | ' ' | '.' | '/'))
        && t.starts_with(|c: char| c.is_ascii_digit())
        && t.ends_with(|c: char| c.is_ascii_digit());
    let n = digit_count(t);
    if grouped && ((all_digits(t) && n >= 6) || n >= 8) {
        return true;
    }
    t.len() <= 40
        && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && t.chars().any(|c| c.is_ascii_alphabetic())
        && n >= 5
        && !is_uuid_shape(t)
}

// ---------------------------------------------------------------------------------------------
// Names and free text

const TITLES: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "herr", "frau", "mme", "mlle", "sra", "srta",
    "señor", "señora", "dott", "dra", "rev", "lady", "lord", "mister", "madam", "madame", "monsieur",
];
const SUFFIXES: &[&str] = &["jr", "sr", "ii", "iii", "iv", "phd", "md", "rn", "dds", "dmd", "esq", "np", "pa-c"];
const PARTICLES: &[&str] = &[
    "van", "von", "der", "den", "de", "del", "della", "da", "di", "du", "la", "le", "bin", "binti", "ibn", "al", "el",
    "ben", "bat", "ter", "ten", "dos", "das", "do", "y", "e", "zu", "af", "av",
];
/// Capitalised words that are schema values sent in the wrong case, not names.
const SCHEMA_WORDS: &[&str] = &[
    "neurotoxin",
    "filler",
    "laser",
    "facial",
    "massage",
    "hair",
    "nails",
    "other",
    "appointment",
    "membership",
    "booked",
    "completed",
    "cancelled",
    "expired",
    "renewed",
    "redeemed",
    "started",
];

fn name_char(c: char) -> bool {
    c.is_alphabetic() || matches!(c, '\'' | '’' | '-' | '.')
}

fn is_capitalised_word(t: &str) -> bool {
    capitalised(t) && t.chars().all(name_char) && t.chars().any(char::is_lowercase)
}

fn is_all_caps_word(t: &str) -> bool {
    t.chars().all(name_char)
        && t.chars().filter(|c| c.is_alphabetic()).count() >= 2
        && !t.chars().any(char::is_lowercase)
}

fn is_uncased_word(t: &str) -> bool {
    t.chars().all(|c| c.is_alphabetic() || matches!(c, '·' | '-'))
        && t.chars().any(char::is_alphabetic)
        && !t.chars().any(|c| c.is_uppercase() || c.is_lowercase())
}

fn is_initial(t: &str) -> bool {
    let mut chars = t.chars();
    matches!((chars.next(), chars.next(), chars.next()), (Some(c), None, None) | (Some(c), Some('.'), None) if c.is_uppercase())
}

fn is_name(s: &str) -> bool {
    let lower = s.to_lowercase();
    if SCHEMA_WORDS.contains(&lower.as_str())
        || crate::event::EventKind::parse(&lower).is_some()
        || !s.chars().all(|c| name_char(c) || c == ' ' || c == ',')
    {
        return false;
    }
    // "JOHN SMITH", "SMITH, JOHN": all capitals, at least two words.
    let all_caps = s.split([' ', ',']).filter(|w| !w.is_empty()).count() >= 2
        && s.chars().any(char::is_uppercase)
        && !s.chars().any(char::is_lowercase);
    match s.split(',').collect::<Vec<_>>().as_slice() {
        [whole] => name_words(whole, 1..=5, all_caps),
        [last, first] if SUFFIXES.contains(&key(first).as_str()) => name_words(last, 1..=5, all_caps),
        [last, first] => {
            // "MARTIN, Sophie": the capitals of one side count if the other side has a capitalised word.
            let caps = all_caps || s.split([' ', ',']).any(is_capitalised_word);
            name_words(last, 1..=3, caps) && name_words(first, 1..=4, caps)
        }
        [last, first, suffix] if SUFFIXES.contains(&key(suffix).as_str()) => {
            name_words(last, 1..=3, all_caps) && name_words(first, 1..=4, all_caps)
        }
        _ => false,
    }
}

fn name_words(s: &str, count: std::ops::RangeInclusive<usize>, all_caps: bool) -> bool {
    let mut toks: Vec<&str> = s.split_whitespace().collect();
    while toks.len() > 1 && toks.first().is_some_and(|t| TITLES.contains(&key(t).as_str())) {
        toks.remove(0);
    }
    while toks.len() > 1 && toks.last().is_some_and(|t| SUFFIXES.contains(&key(t).as_str())) {
        toks.pop();
    }
    if !count.contains(&toks.len()) {
        return false;
    }
    // "DUPONT Jean": a surname in capitals beside capitalised given names.
    let caps_surname = all_caps || toks.iter().any(|t| is_capitalised_word(t));
    let mut has_word = false;
    for (i, t) in toks.iter().enumerate() {
        if is_uncased_word(t) || is_capitalised_word(t) || (caps_surname && is_all_caps_word(t)) {
            has_word = true;
        } else if !(is_initial(t) || (PARTICLES.contains(&t.to_lowercase().as_str()) && i + 1 < toks.len())) {
            return false;
        }
    }
    has_word
}

fn is_free_text(tokens: &[&str]) -> bool {
    tokens.len() >= 2 && tokens.iter().any(|t| t.chars().filter(|c| c.is_alphabetic()).count() >= 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use IdentifierKind::*;

    fn check(kind: IdentifierKind, values: &[&str]) {
        for v in values {
            assert_eq!(classify(v), kind, "{v:?}");
        }
    }

    #[test]
    fn emails() {
        check(
            Email,
            &[
                "jane.doe@example.com",
                "j.smith+spa@mail.example.co.uk",
                "MARIA.GARCIA@EXAMPLE.ORG",
                "o'brien@example.ie",
                "mailto:jane@example.com",
                "Email: a.b@c.de",
                "jane[at]example[dot]com",
                "jane (at) example.com",
                "reach her at jane@example.com please",
            ],
        );
        assert_ne!(classify("jane@localhost"), Email);
        assert_ne!(classify("@example.com"), Email);
    }

    #[test]
    fn urls() {
        check(
            Url,
            &[
                "https://example.com/patients/jane",
                "http://www.example.org",
                "www.janedoe-aesthetics.com",
                "example.com/profile/123",
                "instagram.com/jane.doe",
                "tiktok.com/@jane.doe",
                "janedoe.com",
                "HTTPS://EXAMPLE.COM",
                "http://192.168.0.1/admin",
                "ftp://files.example.net/x",
            ],
        );
        assert_ne!(classify("photo.jpg"), Url);
        assert_ne!(classify("e.g."), Url);
    }

    #[test]
    fn ip_addresses() {
        check(
            IpAddress,
            &[
                "192.168.1.10",
                "8.8.4.4",
                "198.51.100.7:8080",
                "172.16.254.1/24",
                "2001:db8::1",
                "2001:0db8:85a3:0000:0000:8a2e:0370:7334",
                "fe80::1%eth0",
                "::ffff:192.0.2.128",
                "[2001:db8::2]:443",
                "IP: 203.0.113.9",
            ],
        );
        assert_ne!(classify("256.1.1.1"), IpAddress);
    }

    #[test]
    fn ssns() {
        check(Ssn, &["123-45-6789", "078 05 1120", "219099999", "SSN: 123-45-6789", "ss# 123.45.6789"]);
    }

    #[test]
    fn phones() {
        check(
            Phone,
            &[
                "(555) 123-4567",
                "555-123-4567",
                "555.123.4567",
                "5551234567",
                "+1 555 123 4567",
                "1-800-555-0199",
                "555-123-4567 x204",
                "(555) 123-4567 ext. 12",
                "+44 20 7946 0958",
                "020 7946 0958",
                "07700 900123",
                "+49 (0)30 1234567",
                "030/12345678",
                "+33 1 23 45 67 89",
                "06.12.34.56.78",
                "+91 98765 43210",
                "Fax: (555) 987-6543",
                "tel:+15551234567",
                "555-0142",
                "0044 20 7946 0958",
            ],
        );
        assert_eq!(classify("02139-4307"), ZipCode);
        assert_eq!(classify("12.04.1985"), Date);
    }

    #[test]
    fn dates() {
        check(
            Date,
            &[
                "1985-04-12",
                "04/12/1985",
                "12.04.1985",
                "April 12, 1985",
                "12 Apr 1985",
                "12-Apr-1985",
                "12-APR-85",
                "Apr. 12, 1985",
                "4/12/85",
                "1985/04/12",
                "19850412",
                "12th April 1985",
                "April 12th, 1985",
                "DOB: 1990-07-23",
                "born 3 March 1978",
                "Saturday, March 3, 1979",
                "1985-04-12T00:00:00",
                "1999-12-31T23:59:59Z",
                "7 juillet 1988",
                "12. März 1975",
                "12 de abril de 1985",
                "December 1980",
                "March 5",
                "31/12/1969",
            ],
        );
        for not_date in ["1985", "13/13/1985", "2023-02-29", "may be late", "2024-06-01T10:00:00Zx"] {
            assert_ne!(classify(not_date), Date, "{not_date}");
        }
    }

    #[test]
    fn zips_and_postcodes() {
        check(
            ZipCode,
            &[
                "90210",
                "10001-1234",
                "02139",
                "94105 2345",
                "ZIP 60614",
                "SW1A 1AA",
                "EC1A 1BB",
                "M1 1AE",
                "B33 8TH",
                "DN55 1PT",
                "sw1a1aa",
                "K1A 0B1",
                "H2X-1Y4",
                "Postcode: LS1 4AP",
            ],
        );
    }

    #[test]
    fn addresses() {
        check(
            PostalAddress,
            &[
                "123 Main St",
                "456 Oak Avenue, Apt 4B",
                "Apt 4B",
                "Suite 200",
                "PO Box 1234",
                "P.O. Box 567",
                "221B Baker Street",
                "742 Evergreen Terrace",
                "12 rue de la Paix",
                "Hauptstraße 5",
                "Musterstr. 12a",
                "Via Roma 12",
                "Calle Mayor 3",
                "Building 7, Floor 3",
                "Elm Street",
                "1 Infinite Loop",
                "RR 2 Box 152",
                "45 Elm St., Springfield, IL 62704",
                "lives at 42 Elm Street near the park",
            ],
        );
        for not_address in ["took 2 pills in the way", "10 min drive from here", "20 units botox"] {
            assert_ne!(classify(not_address), PostalAddress, "{not_address}");
        }
    }

    #[test]
    fn record_numbers() {
        check(
            RecordNumber,
            &[
                "MRN 12345678",
                "MRN: 00482913",
                "Acct# 99-1234",
                "Account No. 4471-2290",
                "Med Rec #A-203948",
                "Policy # HP-4482-9910",
                "Health Plan ID 88213-001",
                "Medicare 1EG4-TE5-MK73",
                "NHS 943 476 5919",
                "4111 1111 1111 1111",
                "123456",
                "A12345678",
                "IBAN DE89 3704 0044 0532 0130 00",
            ],
        );
    }

    #[test]
    fn names() {
        check(
            Name,
            &[
                "Jane Doe",
                "Doe, Jane",
                "María José García",
                "Dr. Anna Müller",
                "O'Brien, Siobhan",
                "Jean-Luc Moreau",
                "Ana de la Cruz",
                "José Luis Rodríguez Jr.",
                "SMITH, JOHN",
                "Nguyễn Văn An",
                "Иван Петров",
                "山田太郎",
                "محمد علي",
                "Connor MacLeod",
                "J. R. Tolkien",
            ],
        );
        assert_ne!(classify("Filler"), Name);
    }

    #[test]
    fn free_text_and_malformed() {
        check(
            FreeText,
            &["client prefers mornings, allergic to latex", "pregnant, avoid retinoids", "VIP client", "jane doe"],
        );
        check(
            Malformed,
            &[
                "",
                "   ",
                "p_ABC",
                "loc_Main",
                "ev_123",
                "250-300",
                "2024-13-01T00:00:00Z",
                "550E8400-E29B-41D4-A716-446655440000",
                "filler",
                "Filler",
                "Appointment.Booked",
                "42",
            ],
        );
    }

    #[test]
    fn kind_names_parse_back() {
        for kind in IdentifierKind::ALL {
            assert_eq!(kind.as_str().parse::<IdentifierKind>(), Ok(kind));
            assert_eq!(IdentifierKind::ALL[kind.index()], kind);
        }
        assert!("Nope".parse::<IdentifierKind>().is_err());
    }

    #[test]
    fn never_panics_on_odd_input() {
        let alphabet: Vec<char> = "aZ09 -./:@#+()[]_,;'’éíß山ı\u{301}\u{200b}\tTxX%".chars().collect();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..20_000 {
            let len = (state % 24) as usize;
            let s: String = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = classify(&s);
        }
    }

    #[test]
    fn long_values_are_classified_without_blowing_up() {
        let long = "word ".repeat(10_000);
        assert_eq!(classify(&long), FreeText);
        let multibyte = "é".repeat(5000);
        assert_eq!(classify(&multibyte), Malformed);
    }
}
