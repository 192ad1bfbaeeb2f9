//! Swapping old pseudonyms for new ones inside stored text (event bodies, gap keys, evidence),
//! after a rotation of a tenant's pseudonym key. Both sides of the Insight boundary use it.

use std::collections::HashMap;

/// Replaces every token of `text` found in `map` — a token being a maximal run of
/// `[a-z0-9_]` (pseudonyms are `p_`, `pv_`, `m_`, `a_` or `loc_` followed by lowercase base32,
/// so they are always whole tokens, in JSON, in gap keys and in evidence alike). `None` when
/// nothing changed.
pub fn rename_tokens(text: &str, map: &HashMap<String, String>) -> Option<String> {
    let is_token = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut rest = text;
    while let Some(start) = rest.find(is_token) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let len = tail.find(|c: char| !is_token(c)).unwrap_or(tail.len());
        let token = &tail[..len];
        match map.get(token) {
            Some(new) => {
                out.push_str(new);
                changed = true;
            }
            None => out.push_str(token),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_whole_tokens_only() {
        let map: HashMap<String, String> = [("p_old".to_string(), "p_new".to_string())].into();
        assert_eq!(
            rename_tokens(r#"{"client":"p_old","x":"p_older"}"#, &map).as_deref(),
            Some(r#"{"client":"p_new","x":"p_older"}"#)
        );
        assert_eq!(rename_tokens("rebook_due|p_old|filler", &map).as_deref(), Some("rebook_due|p_new|filler"));
        assert_eq!(
            rename_tokens("p_old · last filler 5 months ago", &map).as_deref(),
            Some("p_new · last filler 5 months ago")
        );
        assert_eq!(rename_tokens("nothing here", &map), None);
        assert_eq!(rename_tokens("", &map), None);
    }
}
