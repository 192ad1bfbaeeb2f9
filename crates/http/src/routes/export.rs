//! Shared shape of every export: `?format=csv|jsonl`, an attachment, one row per record.

use crate::ApiError;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `csv` or `jsonl` (default).
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportQuery {
    pub fn format(&self) -> Result<ExportFormat, ApiError> {
        match self.format.as_deref() {
            None | Some("jsonl") => Ok(ExportFormat::JsonLines),
            Some("csv") => Ok(ExportFormat::Csv),
            Some(_) => {
                Err(ApiError::field(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "format", "must be csv or jsonl"))
            }
        }
    }
}

pub fn query_error(_: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "query string is malformed")
}

/// Builds the attachment. JSON lines serialize each row; for CSV, `csv_row` writes a flat record
/// (the first one written also writes the header).
pub fn respond<J: Serialize>(
    format: ExportFormat,
    name: &str,
    rows: &[J],
    csv_row: impl Fn(&J, &mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> Result<Response, ApiError> {
    let (ctype, ext, body) = match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            for r in rows {
                csv_row(r, &mut w).map_err(|_| ApiError::internal())?;
            }
            ("text/csv; charset=utf-8", "csv", w.into_inner().map_err(|_| ApiError::internal())?)
        }
        ExportFormat::JsonLines => {
            let mut out = Vec::new();
            for r in rows {
                serde_json::to_writer(&mut out, r).map_err(|_| ApiError::internal())?;
                out.push(b'\n');
            }
            ("application/x-ndjson", "jsonl", out)
        }
    };
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, ctype.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.{ext}\"")),
        ],
        body,
    )
        .into_response())
}
