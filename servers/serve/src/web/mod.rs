//! The approvers' web page: server-rendered HTML without JavaScript. Approvers sign in with a
//! password (argon2id hash in serve.toml) or arrive through a trusted reverse proxy that names
//! them in a header; a session cookie then carries them, and every form is CSRF-checked.
//! Approvals and denials go through the same store calls, rules ([`crate::decide`]) and audit
//! entries as the API's.

// Handlers' helpers return `Result<_, Response>` (the page to send instead); boxing every
// refusal buys nothing here, as in the API module.
#![allow(clippy::result_large_err)]

mod auth;
mod csrf;
mod html;
mod login;
mod pages;
pub mod password;
mod payload;
mod requests;
mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::map_response;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::config::{ConfigError, ServeConfig};
use crate::rate::RateLimiter;
use crate::Service;

/// Largest accepted form body.
const MAX_FORM_BYTES: usize = 64 * 1024;

/// What the web page keeps besides the service's state.
pub(crate) struct WebState {
    /// Failed logins per `name:` and per `addr:`.
    pub(crate) login_failures: RateLimiter,
    pub(crate) session_lifetime: Duration,
    /// Cookies get `Secure` and the `__Host-` prefix.
    pub(crate) tls: bool,
}

impl WebState {
    pub(crate) fn new(config: &ServeConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            login_failures: RateLimiter::new(config.web.max_login_failures_per_minute),
            session_lifetime: config.session_lifetime()?,
            tls: config.tls_cert.is_some(),
        })
    }
}

pub(crate) fn router(service: Arc<Service>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/web", get(home))
        .route("/web/", get(home))
        .route("/web/style.css", get(style))
        .route("/web/login", get(login::page).post(login::submit))
        .route("/web/logout", post(login::logout))
        .route("/web/requests", get(requests::list))
        .route("/web/requests/{id}", get(requests::show))
        .route("/web/requests/{id}/approve", post(requests::approve))
        .route("/web/requests/{id}/deny", post(requests::deny))
        .layer(map_response(security_headers))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .with_state(service)
}

async fn home() -> Redirect {
    Redirect::to("/web/requests")
}

async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        html::STYLE,
    )
        .into_response()
}

/// No scripts, no framing, no caching of pages that show requests, styles only from here.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    r
}

/// An HTML response.
pub(crate) fn html_response(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The page for a failed state database (details only in the log).
pub(crate) fn internal(e: &dyn std::fmt::Display) -> Response {
    tracing::error!("web page: {e}");
    html_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::error(
            None,
            "Internal error",
            "The service's state database failed; see its log.",
        ),
    )
}
