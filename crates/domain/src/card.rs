//! Card numbers are never accepted anywhere: a Luhn-valid run of 13 to 19 digits (single spaces
//! or dashes allowed between digits) in any input is refused before it is parsed or stored.
//!
//! A run directly after `+` is an international phone number, not a card, and is let through.

/// Whether `text` holds something that looks like a payment card number.
pub fn contains_card_number(text: &[u8]) -> bool {
    let mut i = 0;
    while i < text.len() {
        if !text[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let after_plus = i > 0 && text[i - 1] == b'+';
        // A maximal run: digits, with single separators between digits.
        let mut digits = Vec::with_capacity(19);
        let mut j = i;
        while j < text.len() {
            let b = text[j];
            if b.is_ascii_digit() {
                digits.push(b - b'0');
                j += 1;
            } else if (b == b' ' || b == b'-') && j + 1 < text.len() && text[j + 1].is_ascii_digit() {
                j += 1;
            } else {
                break;
            }
        }
        if !after_plus && (13..=19).contains(&digits.len()) && luhn_valid(&digits) {
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
        ] {
            assert!(!contains_card_number(s.as_bytes()), "{s}");
        }
    }
}
