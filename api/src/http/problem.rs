//! RFC 9457 problem details: the one place where [`ApiError`] becomes an HTTP response,
//! plus a response mapper that turns every other error response (404 from the router,
//! 413 from the body limit, 408 from the timeout, axum's plain-text rejections) into the
//! same shape, so clients parse one error format.
//!
//! Problem texts never carry personal data: 5xx details go to the log only, and 4xx
//! details are fixed strings or validation messages about the request's form.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use epatrol_store::StoreError;

/// Media type of problem responses.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Problem type URI; `about:blank` means "see the status code".
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary (the status reason).
    pub title: String,
    /// HTTP status code.
    pub status: u16,
    /// What went wrong, without personal data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Problem {
    /// A problem for `status` with an optional detail.
    pub fn new(status: StatusCode, detail: Option<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
        }
    }

    /// The problem as a response with the right media type.
    pub fn into_response_with(self, extra: Option<(header::HeaderName, HeaderValue)>) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut res = (status, body).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if let Some((k, v)) = extra {
            res.headers_mut().insert(k, v);
        }
        res
    }
}

impl ApiError {
    /// The HTTP status this error maps to.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Overloaded { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Refused(_)) => StatusCode::FORBIDDEN,
            ApiError::Engine(_) | ApiError::Store(_) | ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = match &self {
            ApiError::BadRequest(m) | ApiError::PayloadTooLarge(m) | ApiError::UnsupportedMediaType(m) => {
                Some(m.clone())
            }
            // store messages name records (external ids); keep them out of the answer
            ApiError::NotFound(_) => Some("no such record".into()),
            ApiError::Conflict(_) => Some("a record with the same key already exists; nothing was changed".into()),
            ApiError::Unauthenticated(m) | ApiError::Forbidden(m) => Some((*m).into()),
            ApiError::Overloaded { .. } => Some("the identification queue is full; retry later".into()),
            ApiError::TooManyRequests { .. } => Some("too many requests for this account; retry later".into()),
            ApiError::RangeNotSatisfiable(size) => {
                Some(format!("send one byte range within the {size}-byte file, e.g. bytes=0-1023"))
            }
            ApiError::Store(StoreError::Refused(m)) => Some(m.clone()),
            ApiError::Engine(_) | ApiError::Store(_) | ApiError::Internal(_) => {
                tracing::error!(error = %self, "request failed");
                None
            }
        };
        let extra = match &self {
            ApiError::Unauthenticated(_) => Some((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))),
            ApiError::Overloaded { retry_after_secs } => {
                Some((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)))
            }
            ApiError::TooManyRequests { retry_after_secs } => {
                Some((header::RETRY_AFTER, HeaderValue::from(*retry_after_secs)))
            }
            ApiError::RangeNotSatisfiable(size) => {
                HeaderValue::from_str(&format!("bytes */{size}")).ok().map(|v| (header::CONTENT_RANGE, v))
            }
            _ => None,
        };
        Problem::new(status, detail).into_response_with(extra)
    }
}

/// Response mapper: any error response that is not already problem+json (router 404/405,
/// tower-http's 413 and 408, axum extractor rejections) is replaced by a problem with the
/// same status and headers. The original plain-text body is dropped rather than echoed,
/// because rejection texts can quote the request.
///
/// A 413 or 408 also gets `Connection: close`: the rest of the body is never read, so
/// the connection cannot carry another request, and saying so stops clients from
/// reusing it (they would see the next request fail mid-flight).
pub async fn ensure_problem(mut res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    if status == StatusCode::PAYLOAD_TOO_LARGE || status == StatusCode::REQUEST_TIMEOUT {
        res.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    if is_problem {
        return res;
    }
    let (mut parts, _) = res.into_parts();
    let body = serde_json::to_vec(&Problem::new(status, None)).unwrap_or_default();
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_json(res: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn overload_is_503_with_retry_after_as_problem_json() {
        let res = ApiError::Overloaded { retry_after_secs: 1 }.into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[header::RETRY_AFTER], "1");
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(body_json(res).await["status"], 503);
    }

    #[tokio::test]
    async fn server_errors_and_store_messages_are_not_echoed() {
        let res = ApiError::Internal("secret path /data/x and Surname".into()).into_response();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = body_json(res).await;
        assert!(body.get("detail").is_none(), "{body}");
        let res = ApiError::from(StoreError::Conflict("subject P-123".into())).into_response();
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert!(!body_json(res).await.to_string().contains("P-123"));
        let res = ApiError::Unauthenticated("invalid or expired token").into_response();
        assert_eq!(res.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[tokio::test]
    async fn plain_error_responses_become_problems_and_successes_pass_through() {
        let plain = (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded: echo of input").into_response();
        let res = ensure_problem(plain).await;
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(res.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(res.headers()[header::CONNECTION], "close");
        let body = body_json(res).await;
        assert_eq!(body["status"], 413);
        assert!(!body.to_string().contains("echo"));
        // the unread rest of the body makes the connection unusable: tell the client
        let res = ensure_problem((StatusCode::PAYLOAD_TOO_LARGE, "x").into_response()).await;
        assert_eq!(res.headers()[header::CONNECTION], "close");
        let ok = ensure_problem((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(ok.headers()[header::CONTENT_TYPE], "text/plain; charset=utf-8");
    }
}
