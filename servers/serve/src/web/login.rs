//! `/web/login` and `/web/logout`. The login form is CSRF-protected by a random pre-login
//! cookie; failures are rate limited per name and per address, audited without the password,
//! and cost the same argon2 work whether or not the name exists.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, session_of, start_session};
use super::session::{self, SessionId};
use super::{csrf, html_response, internal, pages, password};
use crate::config::WebAuth;
use crate::{now, Service};

/// Longest name looked up or recorded.
const MAX_NAME: usize = 256;

fn login_cookie(service: &Service) -> &'static str {
    if service.web.tls {
        "__Host-sigbridge_login"
    } else {
        "sigbridge_login"
    }
}

/// The form with a fresh pre-login cookie.
fn form(service: &Service, status: StatusCode, name: &str, error: Option<&str>) -> Response {
    let secret = SessionId::random();
    let secure = if service.web.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{secure}",
        login_cookie(service),
        secret.as_str()
    );
    let mut r = html_response(
        status,
        pages::login(&csrf::token(secret.as_str()), name, error),
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn page(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if service.config.web.auth == WebAuth::ProxyHeader {
        return Redirect::to("/web/requests").into_response();
    }
    match session_of(&service, &headers) {
        // A session of an identity since removed from serve.toml signs in afresh (the list
        // would send it straight back here).
        Ok(Some((_, name))) if service.config.identity(&name).is_some() => {
            Redirect::to("/web/requests").into_response()
        }
        Ok(_) => form(&service, StatusCode::OK, "", None),
        Err(r) => r,
    }
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: Option<String>,
}

pub(crate) async fn submit(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if service.config.web.auth == WebAuth::ProxyHeader {
        return Redirect::to("/web/requests").into_response();
    }
    let name: String = f.name.trim().chars().take(MAX_NAME).collect();
    let secret = session::cookie(&headers, login_cookie(&service)).unwrap_or("");
    if secret.is_empty() || !csrf::check(secret, f.csrf.as_deref()) {
        return form(
            &service,
            StatusCode::FORBIDDEN,
            &name,
            Some("The sign-in form was not sent from this page or is stale (its CSRF token is missing or wrong); try again."),
        );
    }
    let ip = peer.ip().to_canonical().to_string();
    let by_name = format!("name:{name}");
    let by_addr = format!("addr:{ip}");
    let limiter = &service.web.login_failures;
    let t = Instant::now();
    if let Err(wait) = limiter.peek(&by_name, t).and(limiter.peek(&by_addr, t)) {
        let secs = crate::rate::retry_after_secs(wait);
        audit(&service, &name, "login-refused", &ip);
        let mut r = form(
            &service,
            StatusCode::TOO_MANY_REQUESTS,
            &name,
            Some(&format!("Too many failed sign-ins for this name or from this address; try again in {secs} s.")),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        return r;
    }
    let stored = service
        .config
        .identity(&name)
        .and_then(|i| i.password_argon2.clone());
    let password = f.password;
    // argon2 takes tens of milliseconds of CPU: off the reactor. An unknown name is checked
    // against a decoy so that it takes as long as a known one.
    let ok = tokio::task::spawn_blocking(move || match stored {
        Some(h) => h.verify(&password),
        None => {
            if let Some(d) = password::decoy() {
                let _ = d.verify(&password);
            }
            false
        }
    })
    .await
    .unwrap_or(false);
    if !ok {
        let _ = limiter.check(&by_name, t);
        let _ = limiter.check(&by_addr, t);
        audit(&service, &name, "login-failed", &ip);
        return form(
            &service,
            StatusCode::UNAUTHORIZED,
            &name,
            Some("Wrong name or password."),
        );
    }
    let (_, cookie) = match start_session(&service, &name) {
        Ok(s) => s,
        Err(r) => return r,
    };
    audit(&service, &name, "login", &ip);
    let mut r = Redirect::to("/web/requests").into_response();
    for c in [
        cookie,
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            login_cookie(&service),
            if service.web.tls { "; Secure" } else { "" }
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r
}

fn audit(service: &Service, name: &str, action: &str, ip: &str) {
    let detail = json!({ "from": ip });
    if let Err(e) = service.store.record_event(name, action, &detail, now()) {
        tracing::error!("cannot record {action} in the audit log: {e}");
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    pub(crate) csrf: Option<String>,
}

pub(crate) async fn logout(
    State(service): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    let user = match auth::user(&service, &headers, peer) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if !user.csrf_ok(f.csrf.as_deref()) {
        return auth::csrf_refused(&user);
    }
    if let Err(e) = session::delete(&service.store, &user.session) {
        return internal(&e);
    }
    audit(
        &service,
        &user.name,
        "logout",
        &peer.ip().to_canonical().to_string(),
    );
    let mut r = Redirect::to("/web/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::clear_cookie(service.web.tls)) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
