//! Forms: what was typed (kept on a refused post), the one error a service returned (shown next
//! to the field it names, or above the form when it names none), and labelled inputs.

use crate::ApiError;
use maud::{Markup, html};

/// A posted form, or the values a form starts with.
#[derive(Debug, Default, Clone)]
pub(crate) struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    pub fn set(&mut self, k: &str, v: impl Into<String>) {
        self.0.retain(|(n, _)| n != k);
        self.0.push((k.to_string(), v.into()));
    }

    pub fn push(&mut self, k: &str, v: impl Into<String>) {
        self.0.push((k.to_string(), v.into()));
    }

    /// The first value of `k` ("" if absent).
    pub fn get(&self, k: &str) -> &str {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    /// The value of `k` if it is not blank.
    pub fn opt(&self, k: &str) -> Option<String> {
        let v = self.get(k).trim();
        (!v.is_empty()).then(|| v.to_string())
    }

    /// Every value of `k` (checkbox groups, multi-selects).
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(n, _)| n == k).map(|(_, v)| v.as_str()).collect()
    }

    pub fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(n, _)| n == k)
    }
}

/// The error a service returned for a form (services name the field they refuse).
#[derive(Debug, Clone)]
pub(crate) struct FieldError {
    pub code: String,
    pub field: Option<String>,
    pub message: String,
    /// A shorter text beside the field when the banner already says it all (conflicts).
    pub beside: Option<String>,
}

impl From<ApiError> for FieldError {
    fn from(e: ApiError) -> Self {
        let message = match e.code {
            // A 500 says nothing more to a browser than to an API client.
            "internal" => "Something went wrong on our side. Please try again.".to_string(),
            _ => capitalise(&e.message),
        };
        Self { code: e.code.to_string(), field: e.field, message, beside: None }
    }
}

impl FieldError {
    /// An error found while reading the form itself (e.g. a number that is not one).
    pub fn invalid(field: &str, message: &str) -> Self {
        Self { code: "invalid".into(), field: Some(field.into()), message: message.into(), beside: None }
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Field names as services report them map to the labels people read.
fn field_label(field: &str) -> String {
    field.replace("_id", "").replace("_min", "").replace('_', " ")
}

/// Renders one form: its values, its error and its labelled fields.
pub(crate) struct Form<'a> {
    pub values: &'a FormData,
    pub error: Option<&'a FieldError>,
    /// The fields this form shows: an error naming one of them is shown beside it.
    pub fields: &'a [&'a str],
}

impl<'a> Form<'a> {
    pub fn new(values: &'a FormData, error: Option<&'a FieldError>, fields: &'a [&'a str]) -> Self {
        Self { values, error, fields }
    }

    fn error_for(&self, name: &str) -> Option<&str> {
        self.error.filter(|e| e.field.as_deref() == Some(name)).map(|e| e.beside.as_deref().unwrap_or(&e.message))
    }

    /// Above the form: a conflict (it concerns the whole request), or an error naming no field
    /// of this form.
    pub fn banner(&self) -> Markup {
        let Some(e) = self.error else { return html! {} };
        let beside_field = e.field.as_deref().is_some_and(|f| self.fields.contains(&f));
        let conflict = e.code == "slot_taken" || e.code == "conflict";
        html! {
            @if conflict || !beside_field {
                div.alert.alert-error role="alert" {
                    @if conflict && e.code == "slot_taken" {
                        strong { "That time was just taken. " }
                    }
                    @match (&e.field, beside_field) {
                        (Some(f), false) => { (field_label(f)) ": " (e.message) }
                        _ => { (e.message) }
                    }
                }
            } @else {
                div.alert.alert-error role="alert" { "Please correct the field marked below." }
            }
        }
    }

    fn wrap(&self, name: &str, label: &str, hint: Option<&str>, input: Markup) -> Markup {
        let err = self.error_for(name);
        html! {
            div.field.has-error[err.is_some()] {
                label for=(id(name)) { (label) }
                (input)
                @if let Some(h) = hint { p.hint id=(format!("{}-hint", id(name))) { (h) } }
                @if let Some(m) = err { p.field-error id=(format!("{}-error", id(name))) { (m) } }
            }
        }
    }

    fn described_by(&self, name: &str, hint: Option<&str>) -> Option<String> {
        let mut ids = Vec::new();
        if hint.is_some() {
            ids.push(format!("{}-hint", id(name)));
        }
        if self.error_for(name).is_some() {
            ids.push(format!("{}-error", id(name)));
        }
        (!ids.is_empty()).then(|| ids.join(" "))
    }

    /// A text-like input (`text`, `email`, `password`, `number`, `date`, `time`, `search`, `tel`).
    pub fn input(&self, name: &str, label: &str, kind: &str, hint: Option<&str>, required: bool) -> Markup {
        let invalid = self.error_for(name).is_some();
        let value = if kind == "password" { "" } else { self.values.get(name) };
        let input = html! {
            input id=(id(name)) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[invalid.then_some("true")] aria-describedby=[self.described_by(name, hint)]
                autocomplete=[autocomplete(name, kind)];
        };
        self.wrap(name, label, hint, input)
    }

    pub fn textarea(&self, name: &str, label: &str, hint: Option<&str>) -> Markup {
        let invalid = self.error_for(name).is_some();
        let input = html! {
            textarea id=(id(name)) name=(name) rows="4" aria-invalid=[invalid.then_some("true")]
                aria-describedby=[self.described_by(name, hint)] { (self.values.get(name)) }
        };
        self.wrap(name, label, hint, input)
    }

    /// A select; `options` are `(value, label)`.
    pub fn select(&self, name: &str, label: &str, options: &[(String, String)], hint: Option<&str>) -> Markup {
        let invalid = self.error_for(name).is_some();
        let current = self.values.get(name);
        let input = html! {
            select id=(id(name)) name=(name) aria-invalid=[invalid.then_some("true")]
                aria-describedby=[self.described_by(name, hint)] {
                @for (v, l) in options {
                    option value=(v) selected[v == current] { (l) }
                }
            }
        };
        self.wrap(name, label, hint, input)
    }

    pub fn checkbox(&self, name: &str, label: &str, hint: Option<&str>) -> Markup {
        let checked = !self.values.get(name).is_empty();
        let err = self.error_for(name);
        html! {
            div.field.field-check.has-error[err.is_some()] {
                input id=(id(name)) name=(name) type="checkbox" value="on" checked[checked];
                label for=(id(name)) { (label) }
                @if let Some(h) = hint { p.hint { (h) } }
                @if let Some(m) = err { p.field-error { (m) } }
            }
        }
    }

    /// A group of checkboxes sharing one name; `options` are `(value, label)`.
    pub fn checkboxes(&self, name: &str, legend: &str, options: &[(String, String)], hint: Option<&str>) -> Markup {
        let chosen = self.values.all(name);
        let err = self.error_for(name);
        html! {
            fieldset.field.has-error[err.is_some()] {
                legend { (legend) }
                @if let Some(h) = hint { p.hint { (h) } }
                div.check-grid {
                    @for (i, (v, l)) in options.iter().enumerate() {
                        div.field-check {
                            input id=(format!("{}-{i}", id(name))) name=(name) type="checkbox" value=(v)
                                checked[chosen.contains(&v.as_str())];
                            label for=(format!("{}-{i}", id(name))) { (l) }
                        }
                    }
                }
                @if let Some(m) = err { p.field-error { (m) } }
            }
        }
    }
}

/// The element id of a field.
pub(crate) fn id(name: &str) -> String {
    format!("f-{}", name.replace(['[', ']', '.'], "-"))
}

fn autocomplete(name: &str, kind: &str) -> Option<&'static str> {
    match (name, kind) {
        ("password", _) => Some("current-password"),
        ("new_password", _) => Some("new-password"),
        ("email", _) => Some("email"),
        ("code", _) => Some("one-time-code"),
        _ => None,
    }
}

/// The hidden CSRF field every authenticated form carries.
pub(crate) fn csrf(token: &str) -> Markup {
    html! { input type="hidden" name="csrf_token" value=(token); }
}

/// Parses a whole number typed into a form; the error names the field.
pub(crate) fn int(form: &FormData, field: &str) -> Result<Option<i64>, FieldError> {
    match form.opt(field) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| FieldError::invalid(field, "Must be a whole number.")),
    }
}

/// Parses an amount like `120` or `120.50` into minor units (cents).
pub(crate) fn money(form: &FormData, field: &str) -> Result<Option<i64>, FieldError> {
    let Some(v) = form.opt(field) else { return Ok(None) };
    let bad = || FieldError::invalid(field, "Must be an amount like 120 or 120.50.");
    let (whole, frac) = v.split_once('.').unwrap_or((&v, ""));
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) || frac.len() > 2 {
        return Err(bad());
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = whole.parse().map_err(|_| bad())?;
    let frac: i64 = if frac.is_empty() { 0 } else { format!("{frac:0<2}").parse().map_err(|_| bad())? };
    whole.checked_mul(100).and_then(|w| w.checked_add(frac)).map(Some).ok_or_else(bad)
}

/// Minor units as an amount (`12050` → `120.50`).
pub(crate) fn amount(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, (minor % 100).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_amounts_and_names_the_field() {
        let f = FormData::from_pairs([("p", "120.5"), ("q", "12,00"), ("r", "7")]);
        assert_eq!(money(&f, "p").ok().flatten(), Some(12050));
        assert_eq!(money(&f, "r").ok().flatten(), Some(700));
        assert_eq!(money(&f, "q").err().and_then(|e| e.field), Some("q".to_string()));
        assert_eq!(money(&f, "absent").ok().flatten(), None);
        assert_eq!(amount(12050), "120.50");
    }

    #[test]
    fn form_data_keeps_every_value() {
        let f = FormData::parse(b"a=1&b=x+y&a=2&csrf_token=t");
        assert_eq!(f.all("a"), vec!["1", "2"]);
        assert_eq!(f.get("b"), "x y");
        assert_eq!(f.opt("missing"), None);
    }
}
