//! Where a registry is: the scheme probe (`GET /v2/`, HTTPS first) and the plain-HTTP rule
//! that the probe, token servers and redirects all obey.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio::sync::OnceCell;
use url::Url;

use super::auth::challenge::{self, AuthScheme};
use super::auth::Auth;
use super::error::RegistryError;
use super::lock;
use super::transport::{drain, redact, status_error, Call, Transport};

/// The base URL (`https://host/` or `http://host/`) per registry, decided once by a probe.
pub(crate) struct Endpoints {
    allow_http: bool,
    cells: Mutex<HashMap<String, Arc<OnceCell<Url>>>>,
}

impl Endpoints {
    /// No registry probed yet; `allow_http` lets non-loopback registries fall back to HTTP.
    pub fn new(allow_http: bool) -> Self {
        Self {
            allow_http,
            cells: Mutex::default(),
        }
    }

    /// The base URL of `registry`, decided by the first request and then kept. The probe's
    /// answer also tells `auth` how the registry wants to be authenticated.
    pub async fn base(
        &self,
        transport: &Transport,
        auth: &Auth,
        registry: &str,
    ) -> Result<Url, RegistryError> {
        let cell = lock(&self.cells)
            .entry(registry.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.probe(transport, auth, registry))
            .await
            .cloned()
    }

    /// Find a working scheme with `GET /v2/`. HTTPS first; plain HTTP only for loopback
    /// registries or when allowed, and only when HTTPS failed below HTTP. An untrusted
    /// certificate on a non-loopback registry is reported, never worked around.
    async fn probe(
        &self,
        transport: &Transport,
        auth: &Auth,
        registry: &str,
    ) -> Result<Url, RegistryError> {
        let loopback = is_loopback_registry(registry);
        let may_fall_back = loopback || self.allow_http;
        let https = base_url("https", registry)?;
        let https_err = match ping(transport, auth, registry, &https, !may_fall_back).await {
            Ok(()) => return Ok(https),
            Err(e) => e,
        };
        let fall_back = may_fall_back
            && https_err.is_transport()
            && (loopback || !matches!(https_err, RegistryError::Certificate { .. }));
        if !fall_back {
            return Err(https_err);
        }
        let http = base_url("http", registry)?;
        match ping(transport, auth, registry, &http, true).await {
            Ok(()) => {
                if loopback {
                    tracing::debug!(registry, reason = %https_err, "using plain HTTP for a loopback registry");
                } else {
                    tracing::warn!(registry, reason = %https_err, "using plain HTTP as allowed: HTTPS did not work");
                }
                Ok(http)
            }
            // It speaks TLS but we do not trust it: that is the problem to report.
            Err(_) if matches!(https_err, RegistryError::Certificate { .. }) => Err(https_err),
            Err(http_err) => Err(RegistryError::Unreachable {
                registry: registry.to_string(),
                https: https_err.reason(),
                http: http_err.reason(),
            }),
        }
    }
}

/// `GET /v2/` at `base`: success or a 401 means a registry is there (the 401's challenge is
/// noted as the registry's auth scheme); 404 means something else is.
async fn ping(
    transport: &Transport,
    auth: &Auth,
    registry: &str,
    base: &Url,
    retry_transport: bool,
) -> Result<(), RegistryError> {
    let url = base.join("v2/").map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        detail: e.to_string(),
    })?;
    let method = Method::GET;
    let resp = transport
        .execute(&Call {
            method: method.clone(),
            url: &url,
            headers: HeaderMap::new(),
            body: None,
            retry_transport,
        })
        .await?;
    let scheme = match resp.status() {
        s if s.is_success() => AuthScheme::Anonymous,
        StatusCode::UNAUTHORIZED => {
            AuthScheme::from_challenges(&challenge::from_headers(resp.headers()))
        }
        StatusCode::NOT_FOUND => {
            drain(resp).await;
            return Err(RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!(
                    "{} answered 404: this does not look like an OCI registry (check host and port)",
                    redact(&url)
                ),
            });
        }
        _ => return Err(status_error(resp, &method, transport.timeout()).await),
    };
    drain(resp).await;
    auth.note_probed_scheme(registry, scheme);
    Ok(())
}

fn base_url(scheme: &str, registry: &str) -> Result<Url, RegistryError> {
    Url::parse(&format!("{scheme}://{registry}/")).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        detail: format!("not a usable host name: {e}"),
    })
}

/// Whether a registry name (`host[:port]`) is on this machine.
pub(crate) fn is_loopback_registry(registry: &str) -> bool {
    let host = if let Some(rest) = registry.strip_prefix('[') {
        rest.split(']').next().unwrap_or(rest)
    } else {
        registry.split(':').next().unwrap_or(registry)
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(is_loopback_ip)
}

/// Whether a URL's host is on this machine (the same answer as [`is_loopback_registry`]).
pub(crate) fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => is_loopback_ip(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => is_loopback_ip(IpAddr::V6(a)),
        None => false,
    }
}

/// Loopback, counting IPv4-mapped IPv6 (`::ffff:127.0.0.1`) as loopback: the kernel delivers
/// it to 127.0.0.1, so traffic to it never leaves the machine (Go's `IsLoopback` agrees).
fn is_loopback_ip(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// Whether plain HTTP to `url` is acceptable: loopback, or allowed by the user. Applied to
/// the registry itself, its token server and every redirect hop alike.
pub(crate) fn plain_http_allowed(url: &Url, allow_http: bool) -> bool {
    allow_http || is_loopback_url(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback() {
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:5000",
            "LOCALHOST",
        ] {
            assert!(is_loopback_registry(r), "{r}");
        }
        for r in [
            "example.com",
            "10.0.0.1:5000",
            "[fe80::1]:5000",
            "[::ffff:10.0.0.1]:5000",
            "localhost.example.com",
        ] {
            assert!(!is_loopback_registry(r), "{r}");
        }
        // A URL host gets the same answer as a registry name.
        for (u, want) in [
            ("http://[::ffff:127.0.0.1]:5000/", true),
            ("http://[::1]/", true),
            ("http://127.9.9.9/", true),
            ("http://[::ffff:10.0.0.1]/", false),
            ("http://10.0.0.1/", false),
        ] {
            assert_eq!(is_loopback_url(&Url::parse(u).unwrap()), want, "{u}");
        }
    }
}
