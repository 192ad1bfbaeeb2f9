//! Client search without plaintext in the database: keyed search tokens.
//!
//! Every client gets a set of tokens in `client_search`: HMAC-SHA256 (the tenant's blind-index
//! key, domain `search`, truncated to [`TOKEN_LEN`] bytes) of
//! - each prefix of 2..=[`MAX_PREFIX`] characters of every word of the name and of the email's
//!   local part and first domain label (lower case, words split at anything not a letter or digit);
//! - each prefix of 2..=[`MAX_PREFIX`] digits of the phone number, of its last ten digits (the
//!   national number without a country code), and its last four and last seven digits whole.
//!
//! A query is split the same way; each word becomes one token (cut to [`MAX_PREFIX`]), the
//! database intersects them, and only the candidates (at most [`CANDIDATE_CAP`]) are decrypted,
//! checked against the full query words in memory (which removes truncation and collision false
//! positives) and ranked.
//!
//! Leakage, accepted on purpose: tokens are deterministic within a tenant, so someone holding the
//! database (but not the keys) learns which clients share a prefix (e.g. a common surname), how
//! many tokens a client has (roughly how long their name and email are), and, watching queries,
//! which clients a search returned. They learn no letter, name, email or phone number, and nothing
//! across tenants (each tenant has its own key). Tenant data-key rotation does not change tokens
//! (they use the separate blind-index key); a tenant's key shredding makes them meaningless.

use crate::TenantKeys;
use crate::clients::Client;

/// Longest prefix indexed; longer query words are cut to it, then verified in memory.
pub const MAX_PREFIX: usize = 8;
/// Shortest prefix indexed (and shortest query word considered).
pub const MIN_PREFIX: usize = 2;
/// Bytes of each stored token. Collisions only add candidates, which verification removes.
pub const TOKEN_LEN: usize = 16;
/// Most candidates the database returns for one search (all of them are decrypted).
pub const CANDIDATE_CAP: i64 = 200;
/// Most query words used.
pub const MAX_QUERY_WORDS: usize = 5;

fn token(keys: &TenantKeys, text: &str) -> Vec<u8> {
    let mut t = keys.blind_index("search", text);
    t.truncate(TOKEN_LEN);
    t
}

/// Lower-case words of letters and digits.
pub(crate) fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.chars().flat_map(char::to_lowercase).collect())
        .collect()
}

fn prefixes(word: &str, out: &mut Vec<String>) {
    let chars: Vec<char> = word.chars().collect();
    for n in MIN_PREFIX..=chars.len().min(MAX_PREFIX) {
        out.push(chars[..n].iter().collect());
    }
}

fn email_words(email: &str) -> Vec<String> {
    let (local, domain) = email.split_once('@').unwrap_or((email, ""));
    let mut w = words(local);
    if let Some(label) = domain.split('.').next() {
        w.extend(words(label));
    }
    w
}

fn phone_digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

fn last(digits: &str, n: usize) -> &str {
    &digits[digits.len().saturating_sub(n)..]
}

/// The plain texts a client is findable by (each is HMAC-ed before it is stored).
fn index_texts(name: &str, email: Option<&str>, phone: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for w in words(name) {
        prefixes(&w, &mut out);
    }
    if let Some(e) = email {
        for w in email_words(e) {
            prefixes(&w, &mut out);
        }
    }
    if let Some(p) = phone {
        let d = phone_digits(p);
        prefixes(&d, &mut out);
        prefixes(last(&d, 10), &mut out);
        out.push(last(&d, 4).to_string());
        out.push(last(&d, 7).to_string());
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// The search tokens of a client.
pub fn client_tokens(keys: &TenantKeys, name: &str, email: Option<&str>, phone: Option<&str>) -> Vec<Vec<u8>> {
    index_texts(name, email, phone).iter().map(|t| token(keys, t)).collect()
}

/// A parsed query: the words to match (a phone-like query is one word of digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub words: Vec<String>,
}

impl Query {
    /// None if nothing searchable was typed (no word of at least [`MIN_PREFIX`] characters).
    pub fn parse(q: &str) -> Option<Self> {
        let trimmed = q.trim();
        let phone_like = trimmed.chars().any(|c| c.is_ascii_digit())
            && trimmed.chars().all(|c| c.is_ascii_digit() || " +-.()".contains(c));
        let mut ws = if phone_like { vec![phone_digits(trimmed)] } else { words(trimmed) };
        ws.retain(|w| w.chars().count() >= MIN_PREFIX);
        ws.sort_unstable();
        ws.dedup();
        // Longest words are the most selective.
        ws.sort_by_key(|w| std::cmp::Reverse(w.chars().count()));
        ws.truncate(MAX_QUERY_WORDS);
        (!ws.is_empty()).then_some(Self { words: ws })
    }

    /// One token per word, in the words' order (longest first: the first token drives the
    /// database's intersection, so it should be the most selective); words that share their first
    /// [`MAX_PREFIX`] characters share a token, kept once.
    pub fn tokens(&self, keys: &TenantKeys) -> Vec<Vec<u8>> {
        let mut t: Vec<Vec<u8>> = Vec::with_capacity(self.words.len());
        for w in &self.words {
            let tok = token(keys, &w.chars().take(MAX_PREFIX).collect::<String>());
            if !t.contains(&tok) {
                t.push(tok);
            }
        }
        t
    }

    /// Whether a decrypted client really matches, and how well (lower is better).
    pub fn rank(&self, c: &Client) -> Option<u8> {
        let name = words(&c.name);
        let email = c.email.as_deref().map(email_words).unwrap_or_default();
        let digits = c.phone.as_deref().map(phone_digits).unwrap_or_default();
        let mut score = 0u8;
        for w in &self.words {
            if name.iter().any(|n| n.starts_with(w.as_str())) {
                continue;
            }
            if email.iter().any(|n| n.starts_with(w.as_str())) {
                score = score.max(1);
                continue;
            }
            if !digits.is_empty() && digits.contains(w.as_str()) {
                score = score.max(1);
                continue;
            }
            return None;
        }
        Some(score)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_covers_name_email_and_phone() {
        let t = index_texts("Jane O'Neil", Some("jane.doe@glow.example"), Some("+14155550134"));
        for want in
            ["ja", "jan", "jane", "ne", "neil", "do", "doe", "gl", "glow", "14", "141555", "4155550", "0134", "5550134"]
        {
            assert!(t.contains(&want.to_string()), "{want} missing from {t:?}");
        }
        assert!(!t.iter().any(|x| x.contains("example")), "top-level labels are not indexed");
        assert!(t.iter().all(|x| x.chars().count() <= MAX_PREFIX && x.chars().count() >= MIN_PREFIX));
    }

    #[test]
    fn queries_parse() {
        assert_eq!(Query::parse("  "), None);
        assert_eq!(Query::parse("j"), None);
        assert_eq!(Query::parse("Ja Do").map(|q| q.words), Some(vec!["do".to_string(), "ja".to_string()]));
        assert_eq!(Query::parse("(415) 555-01").map(|q| q.words), Some(vec!["41555501".to_string()]));
        assert_eq!(Query::parse("ÉLO").map(|q| q.words), Some(vec!["élo".to_string()]));
    }
}
