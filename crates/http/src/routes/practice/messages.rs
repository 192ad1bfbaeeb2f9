//! The message outbox as staff see it: status, every attempt, and the decrypted message.

use crate::auth::{Auth, MessagesRead};
use crate::error::ErrorBody;
use crate::json::ValidQuery;
use crate::routes::rfc3339;
use crate::{ApiError, AppState};
use axum::Json;
use axum::extract::State;
use lacuna_practice::messages::MessageView;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Serialize, ToSchema)]
pub struct AttemptResponse {
    attempt: i64,
    at: String,
    /// `sent`, `failed` or `skipped`.
    outcome: String,
    detail: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MessageResponse {
    id: String,
    client_id: String,
    appointment_id: Option<String>,
    /// `confirmation`, `reminder`, `marketing`, `nudge`.
    kind: String,
    channel: String,
    /// `pending`, `sending`, `sent`, `failed` or `skipped`.
    status: String,
    next_attempt_at: String,
    sent_at: Option<String>,
    created_at: String,
    to: Option<String>,
    subject: Option<String>,
    body: Option<String>,
    attempts: Vec<AttemptResponse>,
}

impl From<MessageView> for MessageResponse {
    fn from(m: MessageView) -> Self {
        let r = m.row;
        let (to, subject, body) = match m.payload {
            Some(p) => (p.to, Some(p.subject), Some(p.body)),
            None => (None, None, None),
        };
        Self {
            id: r.id.to_string(),
            client_id: r.client_id.to_string(),
            appointment_id: r.appointment_id.map(|a| a.to_string()),
            kind: r.kind,
            channel: r.channel,
            status: r.status,
            next_attempt_at: rfc3339(r.next_attempt_at),
            sent_at: r.sent_at.map(rfc3339),
            created_at: rfc3339(r.created_at),
            to,
            subject,
            body,
            attempts: m
                .attempts
                .into_iter()
                .map(|a| AttemptResponse {
                    attempt: a.attempt,
                    at: rfc3339(a.attempted_at),
                    outcome: a.outcome,
                    detail: a.detail,
                })
                .collect(),
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct MessageQuery {
    /// Only messages in this state.
    status: Option<String>,
    /// At most this many (default 100, up to 500).
    limit: Option<i64>,
}

/// The outbox, newest first, with every delivery attempt.
#[utoipa::path(get, path = "/api/v1/messages", tag = "messages", params(MessageQuery),
    security(("session" = ["messages.read"]), ("token" = ["messages.read"])),
    responses((status = 200, body = [MessageResponse]), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(st): State<AppState>,
    auth: Auth<MessagesRead>,
    ValidQuery(q): ValidQuery<MessageQuery>,
) -> Result<Json<Vec<MessageResponse>>, ApiError> {
    let rows = st.practice.messages(&auth.principal, q.status.as_deref(), q.limit.unwrap_or(100)).await?;
    Ok(Json(rows.into_iter().map(Into::into).collect()))
}
