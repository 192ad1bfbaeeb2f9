//! Card numbers are never accepted anywhere: a Luhn-valid run of 13 to 19 digits in any input is
//! refused before it is parsed or stored. Card numbers are written as one block of digits or in
//! groups separated by single spaces or dashes (4-4-4-4, 4-6-5, 4-4-4-4-3…).
//!
//! What is not a card number, so that legitimate input is never refused by chance:
//! - a run that touches a letter or digit on either side (part of a longer token, e.g. a hex id);
//! - a grouped run whose first group is not 4 digits or whose groups exceed 6 digits (UUIDs are
//!   8-4-4-4-12, so no run inside one can ever qualify);
//! - a run directly after `+` (an international phone number).

/// Whether `text` holds something that looks like a payment card number.
pub fn contains_card_number(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let before = if i > 0 { Some(text[i - 1]) } else { None };
        // A maximal run: digits, with single separators between digits.
        let mut digits = Vec::with_capacity(19);
        let mut groups: Vec<usize> = vec![0];
        let mut j = i;
        while j < text.len() {
            let b = text[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                if let Some(g) = groups.last_mut() {
                    *g += 1;
                }
                j += 1;
            } else if (b == b' ' || b == b'-') && j + 1 < text.len() && text[j + 1].is_ascii_digit() {
                groups.push(0);
                j += 1;
            } else {
                break;
            }
        }
        let after = text.get(j).copied();
        let bounded = !before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'+')
            && !after.is_some_and(|b| b.is_ascii_alphanumeric());
        let card_like_groups = groups.len() == 1 || (groups[0] == 4 && groups.iter().all(|g| *g <= 6));
        if bounded && card_like_groups && (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
            return true;
        }
        i = j.max(i + 1);
    }
    false
}

/// The Luhn checksum over decimal digits.
pub fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 1 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_card_numbers_are_found_in_any_format() {
        for s in [
            "4111111111111111",
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            r#"{"note":"card 5555555555554444 thanks"}"#,
            "378282246310005",
            "6011111111111117",
            r#"{"n":4242424242424242}"#,
            "4000 0566 5566 5556",
        ] {
            assert!(contains_card_number(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn ordinary_values_pass() {
        for s in [
            "4111111111111112", // Luhn-invalid
            "411111111111",     // too short
            r#"{"phone":"+44 20 7946 0958 123"}"#,
            "2026-11-23T10:00:00Z",
            "12345678-1234-4123-8123-123456789012",
            r#"{"price_minor":12500,"duration_min":45}"#,
            "pm_1PqR2sT3uV4wX5yZ",
            "a4111111111111111b",
            "7f3e2b1c-1234-4123-8123-412345678903",
        ] {
            assert!(!contains_card_number(s.as_bytes()), "{s}");
        }
    }

    #[test]
    fn no_uuid_is_ever_taken_for_a_card_number() {
        // Runs inside a UUID are either bounded by hex letters or grouped 8-4-4-4-12.
        for _ in 0..200_000 {
            let id = uuid::Uuid::new_v4().to_string();
            assert!(!contains_card_number(id.as_bytes()), "{id}");
            assert!(!contains_card_number(format!("{{\"id\":\"{id}\"}}").as_bytes()), "{id}");
        }
        // The worst case: every hex digit a decimal digit.
        assert!(!contains_card_number(b"41111111-1111-4111-8111-111111111111"));
        assert!(!contains_card_number(b"4111-1111-1111-1111111111111"));
    }

    #[test]
    fn card_numbers_next_to_punctuation_are_still_found() {
        for s in ["pm_4242 4242 4242 4242", "card:4111111111111111.", "(4111-1111-1111-1111)", "3782-822463-10005"] {
            assert!(contains_card_number(s.as_bytes()), "{s}");
        }
    }
}
