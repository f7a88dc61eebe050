//! Where a registry is: the scheme probe (`GET /v2/`, HTTPS first) and the plain-HTTP rule
//! that the probe, token servers and redirects all obey.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use tokio::sync::OnceCell;
use url::Url;

use super::auth::challenge::{self, AuthScheme};
use super::auth::Auth;
use super::error::RegistryError;
use super::lock;
use super::plain_http::is_loopback_registry;
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
