//! Who is using the page: the identity of a live session cookie (password mode), or the
//! identity a trusted reverse proxy names in its header (proxy-header mode, where a random
//! cookie, never stored, binds the forms' CSRF tokens to the browser).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};

use super::session::{self, SessionId};
use super::{csrf, html_response, internal, pages};
use crate::config::WebAuth;
use crate::{now, Service};

/// The signed-in user.
pub(crate) struct User {
    pub(crate) name: String,
    pub(crate) session: SessionId,
    /// A new session's cookie, to send with the response.
    set_cookie: Option<String>,
}

impl User {
    /// The CSRF token forms carry for this session.
    pub(crate) fn csrf(&self) -> String {
        csrf::token(self.session.as_str())
    }

    /// Whether `presented` is this session's CSRF token.
    pub(crate) fn csrf_ok(&self, presented: Option<&str>) -> bool {
        csrf::check(self.session.as_str(), presented)
    }

    /// `response`, with the new session's cookie when one was made.
    pub(crate) fn finish(&self, mut response: Response) -> Response {
        if let Some(c) = self
            .set_cookie
            .as_deref()
            .and_then(|c| HeaderValue::from_str(c).ok())
        {
            response.headers_mut().append(header::SET_COOKIE, c);
        }
        response
    }
}

/// The session cookie's name for this service.
pub(crate) fn cookie_name(service: &Service) -> &'static str {
    if service.web.tls {
        session::COOKIE_TLS
    } else {
        session::COOKIE
    }
}

/// The live session named by the request's cookie, if any.
pub(crate) fn session_of(
    service: &Service,
    headers: &HeaderMap,
) -> Result<Option<(SessionId, String)>, Response> {
    let Some(id) = session::cookie(headers, cookie_name(service)).and_then(SessionId::from_cookie)
    else {
        return Ok(None);
    };
    match session::lookup(&service.store, &id, now()) {
        Ok(Some(name)) => Ok(Some((id, name))),
        Ok(None) => Ok(None),
        Err(e) => Err(internal(&e)),
    }
}

/// Start a session for `name`: the id and its `Set-Cookie` value.
pub(crate) fn start_session(
    service: &Service,
    name: &str,
) -> Result<(SessionId, String), Response> {
    let lifetime = service.web.session_lifetime.as_secs();
    let t = now();
    let id = session::create(
        &service.store,
        name,
        t,
        t.saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX)),
    )
    .map_err(|e| internal(&e))?;
    let cookie = session::set_cookie(&id, service.web.tls, lifetime);
    Ok((id, cookie))
}

/// The user, or the response to send instead: the login page (password mode), 401 (proxy
/// mode without a trusted proxy or its header), 403 (a name that is no identity).
pub(crate) fn user(
    service: &Arc<Service>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<User, Response> {
    let web = &service.config.web;
    match web.auth {
        WebAuth::Password => match session_of(service, headers)? {
            Some((session, name)) if service.config.identity(&name).is_some() => Ok(User {
                name,
                session,
                set_cookie: None,
            }),
            _ => Err(Redirect::to("/web/login").into_response()),
        },
        WebAuth::ProxyHeader => {
            let refuse = |code, msg: String| {
                Err(html_response(
                    code,
                    pages::error(None, "Not signed in", &msg),
                ))
            };
            if !web.trusted_proxies.contains(&peer.ip().to_canonical()) {
                tracing::info!(%peer, "web page: refused a request that did not come through a trusted proxy");
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    "This page is reached only through the reverse proxy that signs approvers in (trusted_proxies in the service's configuration).".into(),
                );
            }
            let Some(name) = headers
                .get(web.header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
            else {
                return refuse(
                    StatusCode::UNAUTHORIZED,
                    format!(
                        "The reverse proxy did not name a user in the {} header.",
                        web.header
                    ),
                );
            };
            if service.config.identity(name).is_none() {
                return refuse(
                    StatusCode::FORBIDDEN,
                    format!("{name} is not an identity of this service; ask its administrators to add it to serve.toml."),
                );
            }
            // No database session: the proxy names the user on every request, so the cookie
            // only binds CSRF tokens to this browser. A client that never sends it back gets a
            // new one each time and writes nothing.
            let cookie =
                session::cookie(headers, cookie_name(service)).and_then(SessionId::from_cookie);
            Ok(match cookie {
                Some(session) => User {
                    name: name.to_string(),
                    session,
                    set_cookie: None,
                },
                None => {
                    let session = SessionId::random();
                    let cookie = session::set_cookie(
                        &session,
                        service.web.tls,
                        service.web.session_lifetime.as_secs(),
                    );
                    User {
                        name: name.to_string(),
                        session,
                        set_cookie: Some(cookie),
                    }
                }
            })
        }
    }
}

/// The page refusing a form whose CSRF token is missing or foreign.
pub(crate) fn csrf_refused(user: &User) -> Response {
    let csrf = user.csrf();
    let viewer = pages::Viewer {
        name: &user.name,
        csrf: &csrf,
    };
    user.finish(html_response(
        StatusCode::FORBIDDEN,
        pages::error(
            Some(&viewer),
            "Form refused",
            "The form's CSRF token is missing or does not belong to your session; reload the page and try again.",
        ),
    ))
}
