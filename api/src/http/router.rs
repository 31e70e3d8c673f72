//! Routes and the layers around them.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use super::problem::{Problem, ensure_problem};
use super::{AppState, openapi, routes};

/// The application: every `/v1` route with body limit, timeout and problem mapping.
/// Footage uploads get their own, larger body limit and longer timeout.
pub fn router(state: Arc<AppState>) -> Router {
    let max_body = state.config.max_body_bytes;
    let timeout = state.config.request_timeout;
    let api = Router::new()
        .route("/v1/health", get(routes::health::health))
        .route("/v1/openapi.json", get(openapi::openapi_json))
        .route("/v1/metrics", get(super::metrics::metrics))
        .route("/v1/auth/login", post(routes::auth::login))
        .route("/v1/auth/logout", post(routes::admin::logout))
        .route("/v1/auth/password", post(routes::password::change))
        .route("/v1/users/{login}/password", post(routes::password::reset))
        .route("/v1/users", post(routes::admin::create_user))
        .route("/v1/users/{login}/disable", post(routes::admin::disable_user))
        .route("/v1/users/{login}/enable", post(routes::admin::enable_user))
        .route("/v1/devices", post(routes::admin::enroll_device))
        .route("/v1/devices/{device}/disable", post(routes::admin::disable_device))
        .route("/v1/devices/{device}/enable", post(routes::admin::enable_device))
        .route("/v1/identify", post(routes::identify::identify))
        .route("/v1/subjects", post(routes::subjects::enrol))
        .route("/v1/subjects/{external_id}", delete(routes::subjects::delete_subject))
        .route("/v1/subjects/{external_id}/flags", put(routes::subjects::set_flags))
        .route("/v1/subjects/{external_id}/templates", post(routes::subjects::add_templates))
        .route("/v1/audit", get(routes::audit::audit))
        .route("/v1/events", get(routes::events::events))
        .route("/v1/evidence", get(routes::evidence::search))
        .route("/v1/evidence/{digest}", get(routes::evidence::metadata))
        .route("/v1/evidence/{digest}/content", get(routes::evidence::content))
        .route("/v1/evidence/{digest}/thumbnails/{idx}", get(routes::evidence::thumbnail))
        .route("/v1/evidence/{digest}/custody", get(routes::evidence::custody))
        .route("/v1/evidence/{digest}/tier", post(routes::retention::reclassify))
        .route("/v1/evidence/{digest}/holds", post(routes::retention::place_hold))
        .route("/v1/evidence/{digest}/holds/release", post(routes::retention::release_holds))
        .route("/v1/incidents", post(routes::retention::file_incident))
        .route("/v1/cases", post(routes::cases::open_case))
        .route("/v1/cases/{reference}/evidence", post(routes::cases::link_evidence))
        .route("/v1/cases/{reference}/close", post(routes::cases::close_case))
        .route("/v1/uploads", post(routes::uploads::begin))
        .route("/v1/uploads/{id}", get(routes::uploads::status))
        .route("/v1/uploads/{id}/complete", post(routes::uploads::complete));
    let upload_timeout = state.config.upload_timeout;
    let footage = Router::new().route("/v1/evidence", post(routes::evidence::upload));
    let parts = Router::new().route("/v1/uploads/{id}/parts/{idx}", put(routes::uploads::put_part));
    with_limits(api, max_body as u64, timeout)
        .merge(with_limits(footage, state.config.max_upload_bytes, upload_timeout))
        .merge(with_limits(parts, routes::uploads::MAX_PART_SIZE, upload_timeout))
        .layer(axum::middleware::from_fn_with_state(state.clone(), super::metrics::track))
        .fallback(not_found)
        .with_state(state)
        // outermost, so it also sees the 413/408 produced by the layers above
        .layer(axum::middleware::map_response(ensure_problem))
}

/// Body limit and whole-request timeout for the routes of `r`: axum's extractor limit
/// (Multipart, Json, Bytes) at the same value as tower-http's, which rejects a too-large
/// `Content-Length` before any read.
fn with_limits(r: Router<Arc<AppState>>, max_body: u64, timeout: Duration) -> Router<Arc<AppState>> {
    let max = usize::try_from(max_body).unwrap_or(usize::MAX);
    r.layer(DefaultBodyLimit::max(max))
        .layer(RequestBodyLimitLayer::new(max))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout))
}

async fn not_found() -> Response {
    Problem::new(StatusCode::NOT_FOUND, Some("no such endpoint".into())).into_response_with(None)
}
