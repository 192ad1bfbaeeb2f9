//! Clients: personal fields sealed with the tenant's data key; exact lookup by email or phone
//! through keyed blind indexes.

use crate::notes_guard::{self, NotesPolicy};
use crate::search::{CANDIDATE_CAP, Query, client_tokens};
use crate::{Practice, PracticeError, Result, TenantKeys};
use lacuna_accounts::Principal;
use lacuna_domain::{ClientId, Email, Permission, ValidationError, required_text};
use lacuna_storage::now_unix;
use lacuna_storage::practice::clients::ClientRow;

const TABLE: &str = "clients";

/// What staff type in to add or edit a client.
#[derive(Debug, Clone, Default)]
pub struct ClientInput {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// `YYYY-MM-DD`.
    pub birthday: Option<String>,
    pub marketing_consent: bool,
    pub notes: Option<String>,
}

/// A client, decrypted for someone allowed to see it.
#[derive(Clone)]
pub struct Client {
    pub id: ClientId,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub birthday: Option<String>,
    pub marketing_consent: bool,
    pub notes: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Personal data never reaches a log line by accident.
        f.debug_struct("Client").field("id", &self.id).finish_non_exhaustive()
    }
}

/// A saved client and the warnings of the notes' PHI guard (field and kind, never the value).
/// Dereferences to the client.
#[derive(Debug, Clone)]
pub struct Saved {
    pub client: Client,
    pub warnings: Vec<Warning>,
}

impl std::ops::Deref for Saved {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

/// A field that was stored but looks like it holds what it should not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Warning {
    pub field: &'static str,
    /// The kind of identifier (`Ssn`, `Email`, …) or `ClinicalTerm`.
    pub kind: &'static str,
}

/// Applies the practice's notes policy: `Err` under `reject`, a warning under `warn`.
fn guard_notes(policy: &str, notes: Option<&str>) -> Result<Vec<Warning>> {
    let Some(finding) = notes.and_then(notes_guard::check) else { return Ok(Vec::new()) };
    match NotesPolicy::parse("notes_phi_policy", policy) {
        Ok(NotesPolicy::Warn) => Ok(vec![Warning { field: "notes", kind: finding.kind() }]),
        // An unreadable setting fails closed.
        _ => Err(PracticeError::PhiRejected { field: "notes", kind: finding.kind() }),
    }
}

/// Validated, normalised client fields.
pub(crate) struct ValidClient {
    pub name: String,
    pub email: Option<Email>,
    pub phone: Option<String>,
    pub birthday: Option<String>,
    pub marketing_consent: bool,
    pub notes: Option<String>,
}

pub(crate) fn validate(input: ClientInput) -> Result<ValidClient, ValidationError> {
    let name = required_text("name", &input.name, 200)?;
    let email = non_empty(input.email).map(|e| Email::parse("email", &e)).transpose()?;
    let phone = non_empty(input.phone).map(|p| normalise_phone("phone", &p)).transpose()?;
    let birthday = non_empty(input.birthday).map(|b| parse_birthday("birthday", &b)).transpose()?;
    let notes = non_empty(input.notes).map(|n| required_text("notes", &n, 4000)).transpose()?;
    Ok(ValidClient { name, email, phone, birthday, marketing_consent: input.marketing_consent, notes })
}

fn non_empty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Digits with an optional leading `+`; spaces, dots, dashes and parentheses are dropped.
/// 7 to 15 digits (E.164's limit).
pub fn normalise_phone(field: &str, raw: &str) -> Result<String, ValidationError> {
    let trimmed = raw.trim();
    let plus = trimmed.starts_with('+');
    let mut digits = String::new();
    for (i, c) in trimmed.chars().enumerate() {
        match c {
            '0'..='9' => digits.push(c),
            '+' if i == 0 => {}
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => {
                return Err(ValidationError::new(field, "must be a phone number (digits, spaces, dashes, + in front)"));
            }
        }
    }
    if !(7..=15).contains(&digits.len()) {
        return Err(ValidationError::new(field, "must have 7 to 15 digits"));
    }
    Ok(if plus { format!("+{digits}") } else { digits })
}

fn parse_birthday(field: &str, raw: &str) -> Result<String, ValidationError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(raw.trim(), fmt)
        .map_err(|_| ValidationError::new(field, "must be a date like 1985-04-23"))?;
    let today = time::OffsetDateTime::now_utc().date();
    if date > today || date.year() < 1900 {
        return Err(ValidationError::new(field, "must be a real date of birth"));
    }
    Ok(date.to_string())
}

/// The blind-index form of an email or phone: what exact lookups compare.
pub(crate) fn email_index(keys: &TenantKeys, email: &Email) -> Vec<u8> {
    keys.blind_index("email", email.as_str())
}

pub(crate) fn phone_index(keys: &TenantKeys, phone: &str) -> Vec<u8> {
    keys.blind_index("phone", phone.trim_start_matches('+'))
}

pub(crate) fn seal_row(keys: &TenantKeys, id: ClientId, v: &ValidClient, created_at: i64, now: i64) -> ClientRow {
    let rid = id.to_string();
    ClientRow {
        id,
        name_ct: keys.seal(TABLE, "name_ct", &rid, &v.name),
        email_ct: keys.seal_opt(TABLE, "email_ct", &rid, v.email.as_ref().map(Email::as_str)),
        phone_ct: keys.seal_opt(TABLE, "phone_ct", &rid, v.phone.as_deref()),
        birthday_ct: keys.seal_opt(TABLE, "birthday_ct", &rid, v.birthday.as_deref()),
        notes_ct: keys.seal_opt(TABLE, "notes_ct", &rid, v.notes.as_deref()),
        email_bidx: v.email.as_ref().map(|e| email_index(keys, e)),
        phone_bidx: v.phone.as_deref().map(|p| phone_index(keys, p)),
        marketing_consent: v.marketing_consent,
        created_at,
        updated_at: now,
    }
}

pub(crate) fn open_row(keys: &TenantKeys, r: &ClientRow) -> Result<Client> {
    let rid = r.id.to_string();
    Ok(Client {
        id: r.id,
        name: keys.open(TABLE, "name_ct", &rid, &r.name_ct)?,
        email: keys.open_opt(TABLE, "email_ct", &rid, r.email_ct.as_deref())?,
        phone: keys.open_opt(TABLE, "phone_ct", &rid, r.phone_ct.as_deref())?,
        birthday: keys.open_opt(TABLE, "birthday_ct", &rid, r.birthday_ct.as_deref())?,
        notes: keys.open_opt(TABLE, "notes_ct", &rid, r.notes_ct.as_deref())?,
        marketing_consent: r.marketing_consent,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

impl Practice {
    /// Adds a client. Personal fields are sealed before they reach the database; the notes pass
    /// the PHI guard under the practice's policy.
    pub async fn create_client(&self, p: &Principal, input: ClientInput) -> Result<Saved> {
        let v = validate(input)?;
        let keys = self.keys(p.tenant).await?;
        let now = now_unix();
        let row = seal_row(&keys, ClientId::new(), &v, now, now);
        let tokens = search_tokens(&keys, &v);
        let mut tx = self.write(p, Permission::ClientsWrite).await?;
        let warnings = guard_notes(&tx.practice_settings().await?.notes_phi_policy, v.notes.as_deref())?;
        tx.insert_client(&row).await?;
        tx.insert_client_search_tokens(&pairs(row.id, tokens)).await?;
        tx.commit().await?;
        Ok(Saved { client: open_row(&keys, &row)?, warnings })
    }

    /// One client, decrypted.
    pub async fn get_client(&self, p: &Principal, id: ClientId) -> Result<Client> {
        let mut tx = self.read(p, Permission::ClientsRead).await?;
        let row = tx.client(id).await?.ok_or(PracticeError::NotFound)?;
        drop(tx);
        open_row(&self.keys(p.tenant).await?, &row)
    }

    /// Clients with exactly this email (blind-index lookup; the database never sees it).
    pub async fn clients_by_email(&self, p: &Principal, email: &str) -> Result<Vec<Client>> {
        let email = Email::parse("email", email)?;
        let keys = self.keys(p.tenant).await?;
        let mut tx = self.read(p, Permission::ClientsRead).await?;
        let rows = tx.clients_by_email_bidx(&email_index(&keys, &email)).await?;
        drop(tx);
        rows.iter().map(|r| open_row(&keys, r)).collect()
    }

    /// Clients with exactly this phone number, however it is formatted.
    pub async fn clients_by_phone(&self, p: &Principal, phone: &str) -> Result<Vec<Client>> {
        let phone = normalise_phone("phone", phone)?;
        let keys = self.keys(p.tenant).await?;
        let mut tx = self.read(p, Permission::ClientsRead).await?;
        let rows = tx.clients_by_phone_bidx(&phone_index(&keys, &phone)).await?;
        drop(tx);
        rows.iter().map(|r| open_row(&keys, r)).collect()
    }

    /// Changes some fields of a client (absent fields keep their value). Every changed field is
    /// re-sealed, the blind indexes and search tokens are rebuilt, and the change is audited
    /// (field names only, never values).
    pub async fn update_client(&self, p: &Principal, id: ClientId, patch: ClientPatch) -> Result<Saved> {
        p.require(Permission::ClientsWrite)?;
        let keys = self.keys(p.tenant).await?;
        let mut tx = self.write(p, Permission::ClientsWrite).await?;
        let row = tx.client(id).await?.ok_or(PracticeError::NotFound)?;
        let old = open_row(&keys, &row)?;
        let changed = patch.changed_fields();
        let notes_changed = matches!(patch.notes, Some(Some(_)));
        let input = ClientInput {
            name: patch.name.unwrap_or(old.name),
            email: patch.email.unwrap_or(old.email),
            phone: patch.phone.unwrap_or(old.phone),
            birthday: patch.birthday.unwrap_or(old.birthday),
            marketing_consent: patch.marketing_consent.unwrap_or(old.marketing_consent),
            notes: patch.notes.unwrap_or(old.notes),
        };
        let v = validate(input)?;
        // Only new notes are checked: an old note does not block editing a phone number.
        let warnings = if notes_changed {
            guard_notes(&tx.practice_settings().await?.notes_phi_policy, v.notes.as_deref())?
        } else {
            Vec::new()
        };
        let new_row = seal_row(&keys, id, &v, row.created_at, now_unix().max(row.created_at));
        if !tx.update_client(&new_row).await? {
            return Err(PracticeError::NotFound);
        }
        tx.delete_client_search_tokens(id).await?;
        tx.insert_client_search_tokens(&pairs(id, search_tokens(&keys, &v))).await?;
        self.audit(&mut tx, p, "client.update", Some(format!("client:{id}")), serde_json::json!({ "fields": changed }))
            .await?;
        tx.commit().await?;
        Ok(Saved { client: open_row(&keys, &new_row)?, warnings })
    }

    /// Finds clients by what a front desk types: a few letters of a name or email, or digits of a
    /// phone number (see [`crate::search`] for how, and what that leaks). Without a query, the
    /// most recently added clients. At most `limit` (1..=50), best matches first.
    pub async fn search_clients(&self, p: &Principal, q: Option<&str>, limit: usize) -> Result<Vec<Client>> {
        p.require(Permission::ClientsRead)?;
        let limit = limit.clamp(1, 50);
        let keys = self.keys(p.tenant).await?;
        let raw = q.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            let mut tx = self.read(p, Permission::ClientsRead).await?;
            let rows = tx.recent_clients(limit as i64).await?;
            drop(tx);
            return rows.iter().map(|r| open_row(&keys, r)).collect();
        }
        if raw.chars().count() > 200 {
            return Err(PracticeError::invalid("q", "must be at most 200 characters"));
        }
        let query = Query::parse(raw)
            .ok_or_else(|| PracticeError::invalid("q", "type at least 2 letters or digits of a word"))?;
        let started = std::time::Instant::now();
        let mut tx = self.read(p, Permission::ClientsRead).await?;
        let rows = tx.clients_with_tokens(&query.tokens(&keys), CANDIDATE_CAP).await?;
        drop(tx);
        let fetched = started.elapsed();
        let mut found = Vec::with_capacity(rows.len());
        for r in &rows {
            let c = open_row(&keys, r)?;
            if let Some(score) = query.rank(&c) {
                found.push((score, c.name.to_lowercase(), c.id.to_string(), c));
            }
        }
        found.sort_unstable_by(|a, b| (a.0, &a.1, &a.2).cmp(&(b.0, &b.1, &b.2)));
        // Counts and timings only: never the query or a result.
        tracing::debug!(
            words = query.words.len(),
            candidates = rows.len(),
            matches = found.len(),
            db_us = fetched.as_micros() as u64,
            verify_us = (started.elapsed() - fetched).as_micros() as u64,
            "client search"
        );
        Ok(found.into_iter().take(limit).map(|(_, _, _, c)| c).collect())
    }
}

/// A partial edit: `None` keeps the field; for optional fields `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    pub name: Option<String>,
    pub email: Option<Option<String>>,
    pub phone: Option<Option<String>>,
    pub birthday: Option<Option<String>>,
    pub marketing_consent: Option<bool>,
    pub notes: Option<Option<String>>,
}

impl ClientPatch {
    fn changed_fields(&self) -> Vec<&'static str> {
        let mut f = Vec::new();
        for (name, set) in [
            ("name", self.name.is_some()),
            ("email", self.email.is_some()),
            ("phone", self.phone.is_some()),
            ("birthday", self.birthday.is_some()),
            ("marketing_consent", self.marketing_consent.is_some()),
            ("notes", self.notes.is_some()),
        ] {
            if set {
                f.push(name);
            }
        }
        f
    }
}

/// The search tokens of validated client fields.
pub(crate) fn search_tokens(keys: &TenantKeys, v: &ValidClient) -> Vec<Vec<u8>> {
    client_tokens(keys, &v.name, v.email.as_ref().map(Email::as_str), v.phone.as_deref())
}

fn pairs(id: ClientId, tokens: Vec<Vec<u8>>) -> Vec<(ClientId, Vec<u8>)> {
    tokens.into_iter().map(|t| (id, t)).collect()
}

/// A client sealed and tokenised, ready for bulk insertion (benchmarks, imports): the row and its
/// search tokens. Validates exactly like [`Practice::create_client`].
pub fn prepare_client(keys: &TenantKeys, input: ClientInput, now: i64) -> Result<(ClientRow, Vec<Vec<u8>>)> {
    let v = validate(input)?;
    let row = seal_row(keys, ClientId::new(), &v, now, now);
    Ok((row, search_tokens(keys, &v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_digits() {
        assert_eq!(normalise_phone("phone", "+1 (415) 555-0134").ok().as_deref(), Some("+14155550134"));
        assert_eq!(normalise_phone("phone", "415.555.0134").ok().as_deref(), Some("4155550134"));
        assert!(normalise_phone("phone", "call me").is_err());
        assert!(normalise_phone("phone", "12345").is_err());
    }

    #[test]
    fn birthdays_must_be_real_dates() {
        assert_eq!(parse_birthday("birthday", "1985-04-23").ok().as_deref(), Some("1985-04-23"));
        assert!(parse_birthday("birthday", "1985-02-30").is_err());
        assert!(parse_birthday("birthday", "2999-01-01").is_err());
        assert!(parse_birthday("birthday", "23/04/1985").is_err());
    }

    #[test]
    fn names_are_required() {
        let e = validate(ClientInput { name: "  ".into(), ..Default::default() }).err();
        assert_eq!(e.map(|e| e.field).as_deref(), Some("name"));
    }
}
