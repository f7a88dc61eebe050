//! The registry client: one HTTP transport, the per-registry endpoint and authentication
//! state, and the authenticated request every operation goes through.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, AUTHORIZATION};
use reqwest::{Method, Response, StatusCode};
use secrecy::SecretString;
use url::Url;

use super::auth::credentials::{default_files, CredentialSources, HELPER_TIMEOUT};
use super::auth::{Access, Auth};
use super::endpoint::Endpoints;
use super::error::RegistryError;
use super::transport::{drain, Call, Transport};
use super::RegistryOptions;
use crate::reference::Repository;

/// A client for OCI distribution registries. Cheap to clone: clones share one HTTP client
/// (connection pool), the scheme decisions, credentials and cached tokens.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    endpoints: Endpoints,
    auth: Auth,
    allow_http: bool,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("allow_http", &self.inner.allow_http)
            .field("timeout", &self.inner.transport.timeout())
            .field("auth", &self.inner.auth)
            .finish_non_exhaustive()
    }
}

/// Where a request goes: a path under the registry's base URL, or a URL the registry gave us.
pub(crate) enum Target {
    Path(String),
    Url(Url),
}

impl RegistryClient {
    /// Build a client. Fails only on unusable options (an unreadable or empty CA file).
    pub fn new(opts: RegistryOptions) -> Result<Self, RegistryError> {
        let transport = Transport::new(&opts)?;
        let explicit = match (opts.username, opts.password) {
            (Some(u), p) => Some((u, p.unwrap_or_else(|| SecretString::from(String::new())))),
            (None, Some(_)) => {
                tracing::warn!("a registry password was given without a username; ignoring it");
                None
            }
            (None, None) => None,
        };
        let credentials = CredentialSources {
            explicit,
            files: default_files(opts.docker_config.as_deref()),
            helper_dir: None,
            helper_timeout: HELPER_TIMEOUT,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                transport,
                endpoints: Endpoints::new(opts.allow_http),
                auth: Auth::new(credentials, opts.allow_http),
                allow_http: opts.allow_http,
            }),
        })
    }

    /// The limit for one whole request.
    pub(crate) fn timeout(&self) -> Duration {
        self.inner.transport.timeout()
    }

    /// Send a request for `repo`, authenticating as the registry asks. A 401 carrying a
    /// challenge is answered once (new token for the scopes it names, or Basic credentials);
    /// 401 and 403 that remain become auth errors, every other status is the caller's.
    pub(crate) async fn request(
        &self,
        repo: &Repository,
        access: Access,
        method: Method,
        target: Target,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        let Inner {
            transport,
            endpoints,
            auth,
            ..
        } = &*self.inner;
        let registry = repo.registry();
        let base = endpoints.base(transport, auth, registry).await?;
        let url = match target {
            Target::Path(p) => base.join(&p).map_err(|e| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("cannot build a URL for {p}: {e}"),
            })?,
            Target::Url(u) => u,
        };
        // Credentials go only to the registry itself, never to a host it sends us to.
        let same_origin = url.origin() == base.origin();
        let mut scopes = vec![access.scope(repo)];
        let mut fresh = false;
        let mut answered_challenge = false;
        loop {
            let authorization = if same_origin {
                auth.authorization(transport, registry, &scopes, fresh)
                    .await?
            } else {
                None
            };
            let mut h = headers.clone();
            if let Some(a) = &authorization {
                h.insert(AUTHORIZATION, a.clone());
            }
            let resp = transport
                .execute(&Call {
                    method: method.clone(),
                    url: &url,
                    headers: h,
                    body: body.clone(),
                    retry_transport: true,
                })
                .await?;
            let timeout = transport.timeout();
            match resp.status() {
                StatusCode::UNAUTHORIZED if same_origin && !answered_challenge => {
                    answered_challenge = true;
                    if auth
                        .answer_challenge(registry, resp.headers(), &mut scopes)
                        .await?
                    {
                        tracing::debug!(registry, scopes = %scopes.join(" "), "answering a 401 challenge");
                        fresh = true;
                        drain(resp).await;
                        continue;
                    }
                    return Err(auth.unauthorized(registry, resp, &method, timeout).await);
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(auth.unauthorized(registry, resp, &method, timeout).await)
                }
                StatusCode::FORBIDDEN => {
                    return Err(auth.forbidden(repo, access, resp, &method, timeout).await)
                }
                _ => return Ok(resp),
            }
        }
    }
}
