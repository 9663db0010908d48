//! API errors: a status code and Docker's `{"message": "..."}` body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: u16,
    /// The message (what the docker CLI prints after "Error response from
    /// daemon: ").
    pub message: String,
}

impl ApiError {
    /// An error with a status.
    pub fn new(status: u16, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: bad parameters.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, message)
    }

    /// 404: no such object.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(404, message)
    }

    /// 409: conflicts with the object's state.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(409, message)
    }

    /// 500: the daemon failed.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut body =
            serde_json::to_vec(&serde_json::json!({ "message": self.message })).unwrap_or_default();
        body.push(b'\n');
        (status, [("content-type", "application/json")], body).into_response()
    }
}
