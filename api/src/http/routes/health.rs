//! `GET /v1/health`: liveness without login.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the server answers (models and catalog were loaded at start).
    pub status: &'static str,
    /// Server version.
    pub version: &'static str,
}

/// The server is up and its models and catalog are loaded.
#[utoipa::path(get, path = "/v1/health", tag = "meta", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}
