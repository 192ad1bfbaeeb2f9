use crate::ApiError;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// Liveness: answers without touching the database (the bare ceiling for benchmarks).
#[utoipa::path(get, path = "/healthz", tag = "meta", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}
