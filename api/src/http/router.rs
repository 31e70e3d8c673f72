//! Routes and the layers around them.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::problem::{Problem, ensure_problem};
use super::{AppState, openapi, routes};

/// The application: every `/v1` route with body limit, timeout and problem mapping.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    Router::new()
        .route("/v1/health", get(routes::health::health))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/v1/auth/login", post(routes::auth::login))
        .route("/v1/identify", post(routes::identify::identify))
        .route("/v1/subjects", post(routes::subjects::enrol))
        .route("/v1/audit", get(routes::audit::audit))
        .fallback(not_found)
        .with_state(state)
        // axum's extractor limit (Multipart, Json) set to the same value as the outer
        // tower-http limit, which rejects a too-large Content-Length before any read
        .layer(DefaultBodyLimit::max(max_body))
        .layer(RequestBodyLimitLayer::new(max_body))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
        // outermost, so it also sees the 413/408 produced by the layers above
        .layer(axum::middleware::map_response(ensure_problem))
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, Some("no such endpoint".into())).into_response_with(None)
}
