//! Measures the PHI guard against the labelled set in `tests/data/phi_labelled.tsv`.
//!
//! Each row is `label<TAB>field<TAB>value`. The value replaces that field in an otherwise valid
//! event (or is added, for a field outside the schema) and the event goes through the guard.
//! A row labelled `ok` must be accepted; any other label names the identifier the value is, and
//! the row must be rejected. Run with `--nocapture` to see the figures.

use std::collections::BTreeMap;

use lacuna_insight::{IdentifierKind, PhiGuard};
use serde_json::{Map, Value, json};

const DATA: &str = include_str!("data/phi_labelled.tsv");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Label {
    Ok,
    Phi(IdentifierKind),
}

struct Row {
    line: usize,
    label: Label,
    field: String,
    value: String,
}

fn rows() -> Vec<Row> {
    DATA.lines()
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#') && !l.starts_with("label\t"))
        .map(|(i, l)| {
            let mut parts = l.splitn(3, '\t');
            let (Some(label), Some(field), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("line {}: expected label<TAB>field<TAB>value", i + 1);
            };
            let label = match label {
                "ok" => Label::Ok,
                other => Label::Phi(other.parse().unwrap_or_else(|_| panic!("line {}: unknown label {other}", i + 1))),
            };
            Row { line: i + 1, label, field: field.to_owned(), value: value.to_owned() }
        })
        .collect()
}

fn base_event() -> Map<String, Value> {
    let Value::Object(map) = json!({
        "event_id": "ev_a2b3c4d5e6f7g2h3i4j5k6l7mn",
        "kind": "appointment.completed",
        "client": "p_abcdefghijklmnopqrstuvwxyz",
        "provider": "pv_zyxwvutsrqponmlkjihgfedcba",
        "service_category": "filler",
        "cycle_days": 180,
        "follow_up_days": 14,
        "price_band": "500-999",
        "location_id": "loc_downtown",
        "occurred_at": "2024-06-01T10:45:00Z",
        "starts_at": "2024-06-01T10:00:00Z",
        "ends_at": "2024-06-01T10:45:00Z",
        "membership_id": "m_mmmmmmmmmmmmmmmmmmmmmmmmm2",
    }) else {
        panic!("the base event is an object");
    };
    map
}

/// Day fields are integers on the wire: a plain integer value is sent as a JSON number.
fn wire_value(field: &str, value: &str) -> Value {
    let plain_integer = !value.is_empty()
        && value.len() <= 18
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    match value.parse::<u64>() {
        Ok(n) if field.ends_with("_days") && plain_integer => json!(n),
        _ => json!(value),
    }
}

fn pct(n: usize, d: usize) -> f64 {
    if d == 0 { 100.0 } else { 100.0 * n as f64 / d as f64 }
}

#[test]
fn the_guard_rejects_every_identifier_and_accepts_every_legitimate_value() {
    let rows = rows();
    let guard = PhiGuard::new();
    assert!(guard.check(&Value::Object(base_event())).is_ok(), "the base event must be valid");

    let mut per_label: BTreeMap<Label, (usize, usize)> = BTreeMap::new(); // (rows, rejected)
    let mut confusion: BTreeMap<(IdentifierKind, IdentifierKind), usize> = BTreeMap::new();
    let mut false_rejections = Vec::new();
    let mut missed = Vec::new();
    let mut mismatches = Vec::new();
    for row in &rows {
        let mut event = base_event();
        event.insert(row.field.clone(), wire_value(&row.field, &row.value));
        let outcome = guard.check(&Value::Object(event));
        let entry = per_label.entry(row.label).or_default();
        entry.0 += 1;
        match (row.label, outcome) {
            (Label::Ok, Ok(_)) => {}
            (Label::Ok, Err(r)) => {
                false_rejections.push(format!("line {} {}={:?}: {r}", row.line, row.field, row.value))
            }
            (Label::Phi(_), Ok(_)) => missed.push(format!("line {} {}={:?}", row.line, row.field, row.value)),
            (Label::Phi(label), Err(r)) => {
                entry.1 += 1;
                *confusion.entry((label, r.kind())).or_default() += 1;
                if r.kind() != label {
                    mismatches.push(format!(
                        "line {} {label} in {}: {:?} -> {}",
                        row.line,
                        row.field,
                        row.value,
                        r.kind()
                    ));
                }
            }
        }
    }

    let phi_rows: usize = per_label.iter().filter(|(l, _)| **l != Label::Ok).map(|(_, (n, _))| n).sum();
    let phi_rejected: usize = per_label.values().map(|(_, r)| r).sum();
    let ok_rows = per_label.get(&Label::Ok).map_or(0, |(n, _)| *n);
    let all_rejections = phi_rejected + false_rejections.len();
    let structured: Vec<IdentifierKind> = IdentifierKind::ALL.into_iter().filter(|k| k.is_structured()).collect();
    let structured_rows: usize = structured.iter().map(|k| per_label.get(&Label::Phi(*k)).map_or(0, |(n, _)| *n)).sum();
    let structured_rejected: usize =
        structured.iter().map(|k| per_label.get(&Label::Phi(*k)).map_or(0, |(_, r)| *r)).sum();
    let structured_matched: usize = structured.iter().map(|k| confusion.get(&(*k, *k)).copied().unwrap_or(0)).sum();

    println!("PHI guard on {} labelled rows ({phi_rows} PHI, {ok_rows} ok)", rows.len());
    println!(
        "  recall (rejected PHI / PHI rows):            {:6.2}% ({phi_rejected}/{phi_rows})",
        pct(phi_rejected, phi_rows)
    );
    println!(
        "  recall on structured identifiers:            {:6.2}% ({structured_rejected}/{structured_rows})",
        pct(structured_rejected, structured_rows)
    );
    println!(
        "  precision (true rejections / rejections):    {:6.2}% ({phi_rejected}/{all_rejections})",
        pct(phi_rejected, all_rejections)
    );
    println!(
        "  ok rows accepted:                            {:6.2}% ({}/{ok_rows})",
        pct(ok_rows - false_rejections.len(), ok_rows),
        ok_rows - false_rejections.len()
    );
    println!(
        "  structured rows classified as their label:   {:6.2}% ({structured_matched}/{structured_rows})",
        pct(structured_matched, structured_rows)
    );
    println!("  per kind: rows, recall, classified as label");
    for kind in IdentifierKind::ALL {
        let (n, rejected) = per_label.get(&Label::Phi(kind)).copied().unwrap_or_default();
        let matched = confusion.get(&(kind, kind)).copied().unwrap_or(0);
        println!("    {:<14} {n:4}  {:6.2}%  {:6.2}%", kind.as_str(), pct(rejected, n), pct(matched, n));
    }
    println!("  confusion (rows = label, columns = classified kind):");
    let short = |k: IdentifierKind| k.as_str().chars().take(6).collect::<String>();
    println!("    {:<14}{}", "", IdentifierKind::ALL.iter().map(|k| format!("{:>7}", short(*k))).collect::<String>());
    for label in IdentifierKind::ALL {
        let cells: String = IdentifierKind::ALL
            .iter()
            .map(|c| match confusion.get(&(label, *c)) {
                Some(n) => format!("{n:>7}"),
                None => format!("{:>7}", "."),
            })
            .collect();
        println!("    {:<14}{cells}", label.as_str());
    }
    for m in &mismatches {
        println!("  classified differently: {m}");
    }
    for m in &missed {
        println!("  MISSED: {m}");
    }
    for f in &false_rejections {
        println!("  FALSE REJECTION: {f}");
    }

    // The set itself.
    assert!(rows.len() >= 500, "at least 500 labelled rows, got {}", rows.len());
    assert!(ok_rows >= 150, "at least 150 ok rows, got {ok_rows}");
    for kind in IdentifierKind::ALL {
        let n = per_label.get(&Label::Phi(kind)).map_or(0, |(n, _)| *n);
        assert!(n >= 25, "at least 25 rows of {kind}, got {n}");
    }
    // The guard.
    assert!(pct(phi_rejected, phi_rows) >= 99.0, "overall recall below 99%");
    for kind in &structured {
        let (n, rejected) = per_label.get(&Label::Phi(*kind)).copied().unwrap_or_default();
        assert_eq!(rejected, n, "recall on {kind} must be 100%");
    }
    assert!(false_rejections.is_empty(), "every legitimate value must be accepted (precision 100% on ok rows)");
    assert!(
        pct(structured_matched, structured_rows) >= 95.0,
        "structured identifiers classified as their label: {:.2}% < 95%",
        pct(structured_matched, structured_rows)
    );
    for kind in &structured {
        let (n, _) = per_label.get(&Label::Phi(*kind)).copied().unwrap_or_default();
        let matched = confusion.get(&(*kind, *kind)).copied().unwrap_or(0);
        assert!(pct(matched, n) >= 95.0, "{kind} classified as itself for only {matched}/{n} rows");
    }
    // The counters saw every rejection.
    assert_eq!(guard.rejections().values().sum::<u64>(), all_rejections as u64);
}

/// `check_json` (the fast path over JSON text) must decide exactly as `check` on every labelled
/// row, and on the shapes the fast path cannot read itself: repeated keys, escapes, numbers where
/// strings belong, fractional or negative days, nulls, nested values and text that is not JSON.
#[test]
fn check_json_decides_exactly_as_check() {
    let guard = PhiGuard::new();
    let same = |text: &str, what: &str| {
        let tree: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        let (fast, full) = (guard.check_json(text), guard.check(&tree));
        assert_eq!(fast, full, "{what}: {text}");
    };
    let base = Value::Object(base_event()).to_string();
    same(&base, "the base event");
    for row in rows() {
        let mut event = base_event();
        event.insert(row.field.clone(), wire_value(&row.field, &row.value));
        same(&Value::Object(event).to_string(), &format!("line {}", row.line));
    }
    let mut shapes = vec![
        base.replacen('{', r#"{"client":"p_zzzzzzzzzzzzzzzzzzzzzzzzzz","#, 1),
        base.replacen('{', r#"{"client":"Jane Doe","#, 1),
        base.replace("loc_downtown", r"loc_down\u0074own"),
        base.replace("loc_downtown", r"loc_down\ntown"),
        base.replace("180", "180.0"),
        base.replace("180", "-1"),
        base.replace("180", "1e2"),
        base.replace("180", "\"180\""),
        base.replace("180", "99999"),
        base.replace("\"filler\"", "null"),
        base.replace("\"filler\"", "[\"filler\"]"),
        base.replace("\"loc_downtown\"", "{\"street\":\"1 Main St\"}"),
        base.replace("\"loc_downtown\"", "5551234567"),
        "[]".to_owned(),
        "not json".to_owned(),
        String::new(),
        "{}".to_owned(),
        base.replacen('{', r#"{"email":"jane@example.com","#, 1),
    ];
    for field in ["event_id", "kind", "client", "occurred_at", "service_category"] {
        let mut event = base_event();
        event.remove(field);
        shapes.push(Value::Object(event).to_string());
    }
    for text in &shapes {
        same(text, "shape");
    }
}
