//! Handlers, one module per resource, and the multipart reader they share.

pub mod admin;
pub mod audit;
pub mod auth;
pub mod cases;
pub mod events;
pub mod evidence;
pub mod health;
pub mod identify;
pub mod password;
pub mod retention;
pub mod subjects;
pub mod uploads;

use axum::Json;
use axum::body::Bytes;
use axum::extract::Multipart;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;

use crate::error::{ApiError, Result};

/// Maps a multipart failure to a fixed-text error: 413 when the body limit was hit, 415
/// for a non-multipart content type, else 400. The library's own text is not echoed.
fn multipart_error(status: StatusCode) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge("the request body exceeds the size limit".into()),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::UnsupportedMediaType("expected multipart/form-data with a boundary".into())
        }
        _ => ApiError::BadRequest("malformed multipart/form-data body".into()),
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(r: MultipartRejection) -> Self {
        // axum answers 400 for a missing/invalid boundary; a wrong content type is the
        // more useful 415 for clients
        match r {
            MultipartRejection::InvalidBoundary(_) => multipart_error(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            other => multipart_error(other.status()),
        }
    }
}

impl From<MultipartError> for ApiError {
    fn from(e: MultipartError) -> Self {
        multipart_error(e.status())
    }
}

/// Reads every part of a multipart body into memory (the body limit bounds the total).
/// Parts must be named and among `allowed`; at most `max_parts` of them.
pub async fn read_parts(mut mp: Multipart, allowed: &[&str], max_parts: usize) -> Result<Vec<(String, Bytes)>> {
    let mut parts = Vec::new();
    while let Some(field) = mp.next_field().await? {
        let name = field.name().unwrap_or("").to_string();
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::BadRequest(format!("unexpected form field; allowed: {}", allowed.join(", "))));
        }
        if parts.len() == max_parts {
            return Err(ApiError::BadRequest(format!("at most {max_parts} form fields")));
        }
        let bytes = field.bytes().await?;
        parts.push((name, bytes));
    }
    Ok(parts)
}

/// A JSON body or a fixed-text error: 415 without the JSON content type, else 400 (the
/// library's text, which can quote the request, is not echoed).
pub fn json_body<T>(body: std::result::Result<Json<T>, JsonRejection>) -> Result<T> {
    match body {
        Ok(Json(v)) => Ok(v),
        Err(JsonRejection::MissingJsonContentType(_)) => {
            Err(ApiError::UnsupportedMediaType("expected application/json".into()))
        }
        Err(JsonRejection::BytesRejection(r)) => Err(multipart_error(r.status())),
        Err(_) => Err(ApiError::BadRequest("the JSON body does not match the documented schema".into())),
    }
}

/// Maps a store error of an upload: a part of the wrong length or a digest that does not
/// match what the client declared is the client's error (400), not ours.
pub fn client_integrity(e: epatrol_store::StoreError) -> ApiError {
    match e {
        epatrol_store::StoreError::Integrity(m) => ApiError::BadRequest(m),
        other => other.into(),
    }
}

/// Form field names of fingerprint images: `finger` (position unknown, matches any
/// finger) or `finger_1` … `finger_10` (ISO/IEC 19794-2 position: 1 right thumb … 5 right
/// little, 6 left thumb … 10 left little).
pub const FINGER_FIELDS: [&str; 11] = [
    "finger",
    "finger_1",
    "finger_2",
    "finger_3",
    "finger_4",
    "finger_5",
    "finger_6",
    "finger_7",
    "finger_8",
    "finger_9",
    "finger_10",
];

/// The finger position a form field name stands for, if it is a fingerprint field.
pub fn finger_position(field: &str) -> Option<u8> {
    FINGER_FIELDS.iter().position(|f| *f == field).map(|p| p as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finger_fields_map_to_iso_positions() {
        assert_eq!(finger_position("finger"), Some(0));
        assert_eq!(finger_position("finger_1"), Some(1));
        assert_eq!(finger_position("finger_10"), Some(10));
        for other in ["finger_0", "finger_11", "face", "finger_", "Finger"] {
            assert_eq!(finger_position(other), None, "{other}");
        }
    }
}
