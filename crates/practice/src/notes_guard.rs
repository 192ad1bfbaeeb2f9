//! The PHI guard for client notes. Notes hold non-clinical information only ("prefers
//! afternoons", "likes a quiet room"); a note that carries an identifier of the kinds below or
//! clinical terms is flagged. The practice chooses what a flag does (`notes_phi_policy`):
//! `warn` (the default) stores the note and answers with a warning naming the field and the
//! kind, `reject` refuses it with 422. Neither ever echoes the value.
//!
//! Identifiers are recognised by Insight's own detector ([`lacuna_insight::classify`]), so that
//! Practice and Insight agree on what an identifier looks like. It reports one kind per value, the
//! strongest first, so a note is examined clause by clause and then word by word: a date early in
//! a note cannot hide a record number later on.
//!
//! What is flagged, and why not more: email addresses, phone numbers, SSNs, record and account
//! numbers, web and IP addresses and street addresses (a client's own email and phone have their
//! own encrypted, blind-indexed fields; anything in the notes is someone else's or a copy), and a
//! short list of unambiguous clinical words (diagnoses, medications, pregnancy…). Names, dates and
//! ZIP codes are not flagged: notes legitimately say "prefers Anna", "back after 3/14", and the
//! false alarms would teach staff to ignore the warning.

use lacuna_domain::ValidationError;
use lacuna_insight::{IdentifierKind, classify};

/// What a practice does with a flagged note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotesPolicy {
    /// Store it and warn.
    Warn,
    /// Refuse it (422).
    Reject,
}

impl NotesPolicy {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        match raw.trim() {
            "warn" => Ok(Self::Warn),
            "reject" => Ok(Self::Reject),
            _ => Err(ValidationError::new(field, "must be warn or reject")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Reject => "reject",
        }
    }
}

/// Why a note was flagged: the kind only, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finding {
    Identifier(IdentifierKind),
    /// A clinical term (diagnosis, medication, condition).
    Clinical,
}

impl Finding {
    /// The kind's name as the API reports it (`Ssn`, `Email`, …, `ClinicalTerm`).
    pub fn kind(self) -> &'static str {
        match self {
            Self::Identifier(k) => k.as_str(),
            Self::Clinical => "ClinicalTerm",
        }
    }
}

/// The identifier kinds a note may not hold.
const FLAGGED: &[IdentifierKind] = &[
    IdentifierKind::Email,
    IdentifierKind::Phone,
    IdentifierKind::Ssn,
    IdentifierKind::RecordNumber,
    IdentifierKind::Url,
    IdentifierKind::IpAddress,
    IdentifierKind::PostalAddress,
];

/// Words that only appear in clinical notes. Deliberately short: spa words ("therapy",
/// "treatment", "retinol", "sensitive skin", "allergic to lavender") are not on it.
const CLINICAL_WORDS: &[&str] = &[
    "diagnosis",
    "diagnosed",
    "diagnoses",
    "prescription",
    "prescriptions",
    "prescribed",
    "medication",
    "medications",
    "dosage",
    "mg",
    "pregnant",
    "pregnancy",
    "hiv",
    "diabetes",
    "diabetic",
    "cancer",
    "chemotherapy",
    "chemo",
    "tumor",
    "tumour",
    "bipolar",
    "schizophrenia",
    "epilepsy",
    "epileptic",
    "seizures",
    "hepatitis",
    "herpes",
    "warfarin",
    "anticoagulant",
    "anticoagulants",
    "accutane",
    "isotretinoin",
    "insulin",
    "antibiotics",
    "antidepressant",
    "antidepressants",
];

/// The first reason a note should not be stored as it is, if any.
pub fn check(note: &str) -> Option<Finding> {
    let flagged = |s: &str| {
        let k = classify(s);
        FLAGGED.contains(&k).then_some(Finding::Identifier(k))
    };
    let clauses: Vec<&str> = clauses(note).collect();
    if let Some(f) = clauses.iter().find_map(|c| flagged(c)) {
        return Some(f);
    }
    let words = note.split_whitespace().map(|w| w.trim_matches(|c: char| ",;:!?()[]\"'".contains(c)));
    let words: Vec<&str> = words.map(|w| w.trim_end_matches('.')).filter(|w| !w.is_empty()).collect();
    if let Some(f) = words.iter().find_map(|w| flagged(w)) {
        return Some(f);
    }
    let clinical = words.iter().any(|w| {
        let lower = w.to_lowercase();
        CLINICAL_WORDS.contains(&lower.as_str()) || dose(&lower)
    });
    clinical.then_some(Finding::Clinical)
}

/// A dose written as one word: `20mg`, `0.5ml`.
fn dose(word: &str) -> bool {
    ["mg", "mcg", "ml"].iter().any(|unit| {
        word.strip_suffix(unit).is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit() || c == '.'))
    })
}

/// Lines, and sentences or clauses within them (a `.`, `,`, `!` or `?` followed by a space,
/// or a `;`). Dots inside emails and web addresses do not split.
fn clauses(note: &str) -> impl Iterator<Item = &str> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = note.as_bytes();
    for (i, c) in note.char_indices() {
        let next_is_space = bytes.get(i + 1).is_none_or(|b| b.is_ascii_whitespace());
        if c == '\n' || c == ';' || (matches!(c, '.' | ',' | '!' | '?') && next_is_space) {
            out.push(&note[start..i]);
            start = i + c.len_utf8();
        }
    }
    out.push(&note[start..]);
    out.into_iter().map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_notes_pass() {
        for note in [
            "Prefers afternoons",
            "Prefers afternoons, likes Anna as her provider. Quiet room please.",
            "Allergic to lavender oil; use the unscented lotion",
            "Tips well. Parks at the back. Back from holiday after 3/14.",
            "Wants the 60 minute massage next time, firm pressure",
            "Referred by Maria Lopez",
            "Sensitive skin - patch test new products first",
            "Birthday month discount applied in March",
            "Bring the gift voucher next visit",
            "Likes the 9am slot on Tuesdays, coffee with oat milk",
        ] {
            assert_eq!(check(note), None, "{note}");
        }
    }

    #[test]
    fn identifiers_and_clinical_terms_are_flagged() {
        let cases = [
            ("SSN 123-45-6789", "Ssn"),
            ("Prefers afternoons. Her SSN is 123-45-6789", "Ssn"),
            ("MRN 48213377, see chart", "RecordNumber"),
            ("Back after 3/14. MRN 48213377", "RecordNumber"),
            ("Her husband's email is john.doe@example.com", "Email"),
            ("call her sister at (415) 555-0134 if late", "Phone"),
            ("Diagnosed with rosacea last year", "ClinicalTerm"),
            ("On warfarin, bruises easily", "ClinicalTerm"),
            ("takes 20mg daily", "ClinicalTerm"),
            ("Pregnant - no retinoids", "ClinicalTerm"),
        ];
        for (note, kind) in cases {
            assert_eq!(check(note).map(Finding::kind), Some(kind), "{note}");
        }
    }

    #[test]
    fn policy_names_round_trip() {
        for p in [NotesPolicy::Warn, NotesPolicy::Reject] {
            assert_eq!(NotesPolicy::parse("f", p.name()), Ok(p));
        }
        assert_eq!(NotesPolicy::parse("f", "ignore").map_err(|e| e.field), Err("f".to_string()));
    }
}
