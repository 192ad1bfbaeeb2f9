//! Exports of the practice's own data as CSV: clients, services, providers, appointments,
//! transactions. Privileged (fresh MFA if enrolled), recorded in `exports` and the audit trail.

use crate::auth::{Auth, ExportsCreate};
use crate::error::ErrorBody;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lacuna_practice::exports::ExportKind;

/// A spreadsheet would run a cell starting with `=`, `+`, `-`, `@` (or a tab / carriage return)
/// as a formula: such cells get a leading `'`. Phone numbers (`+` and digits) stay as they are.
fn defuse(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = match cell.as_bytes().first() {
        Some(b'=' | b'@' | b'\t' | b'\r') => true,
        Some(b'+' | b'-') => !cell[1..].bytes().all(|b| b.is_ascii_digit()) || cell.len() == 1,
        _ => false,
    };
    if risky { format!("'{cell}").into() } else { cell.into() }
}

/// Downloads one kind of record as CSV.
#[utoipa::path(get, path = "/api/v1/exports/{kind}", tag = "exports",
    params(("kind" = String, Path, description = "clients, services, providers, appointments or transactions")),
    security(("session" = ["exports.create"]), ("token" = ["exports.create"])),
    responses((status = 200, description = "text/csv attachment"), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn export(
    State(st): State<AppState>,
    auth: Auth<ExportsCreate>,
    Path(kind): Path<String>,
) -> Result<Response, ApiError> {
    let kind = ExportKind::parse(&kind).ok_or_else(ApiError::not_found)?;
    let table = st.practice.export(&auth.principal, kind).await?;
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(table.header).map_err(|_| ApiError::internal())?;
    for row in &table.rows {
        w.write_record(row.iter().map(|c| defuse(c).into_owned())).map_err(|_| ApiError::internal())?;
    }
    let body = w.into_inner().map_err(|_| ApiError::internal())?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{}.csv\"", kind.name())),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::defuse;

    #[test]
    fn formulas_are_defused() {
        assert_eq!(defuse("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("-2+3"), "'-2+3");
        assert_eq!(defuse("+14155550134"), "+14155550134");
        assert_eq!(defuse("Jane"), "Jane");
        assert_eq!(defuse(""), "");
    }
}
