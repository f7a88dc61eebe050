//! The registry client: scheme choice, authentication, retries, and the manifest and blob
//! operations sigbridge needs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret as _, SecretString};
use tokio::sync::OnceCell;
use url::Url;

use super::challenge::{self, AuthScheme};
use super::credentials::{default_files, Credential, CredentialSources, Secret};
use super::error::{login_command, RegistryError, HTTP_FLAG};
use super::manifest::{media_types, sniff_media_type};
use super::transport::{
    backoff, classify, drain, is_loopback_registry, is_loopback_url, plain_http_allowed,
    read_declared, read_limited, redact, response_excerpt, retry_after, status_error, MAX_RETRIES,
};
use super::{Descriptor, FetchedManifest, RegistryOptions};
use crate::reference::{Digest, Repository};

/// Manifests larger than this are refused (the limit distribution and most registries apply).
pub const MAX_MANIFEST_SIZE: u64 = 4 * 1024 * 1024;
/// CA bundles larger than this are refused (the whole Mozilla bundle is about 220 KiB).
pub const MAX_CA_FILE_SIZE: u64 = 1024 * 1024;
/// Token responses larger than this are refused.
const MAX_TOKEN_RESPONSE: u64 = 1024 * 1024;
/// Token lifetime when the token server does not say (the distribution token spec's default).
const DEFAULT_TOKEN_SECONDS: u64 = 60;
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// Characters allowed in a tag (the first may not be `.` or `-`).
const TAG_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.";

/// A client for OCI distribution registries. Cheap to clone: clones share one HTTP client
/// (connection pool), the scheme decisions, credentials and cached tokens.
#[derive(Clone)]
pub struct RegistryClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    allow_http: bool,
    timeout: Duration,
    credentials: CredentialSources,
    /// Base URL (`https://host/` or `http://host/`) per registry, decided once by a ping.
    endpoints: Mutex<HashMap<String, Arc<OnceCell<Url>>>>,
    /// How each registry asked to be authenticated (from the ping or a later 401).
    schemes: Mutex<HashMap<String, AuthScheme>>,
    /// Credentials per registry, looked up once and only when a registry asks for them.
    resolved: Mutex<HashMap<String, Arc<OnceCell<Option<Credential>>>>>,
    /// Bearer tokens per (registry, scopes).
    tokens: Mutex<HashMap<(String, String), CachedToken>>,
}

#[derive(Clone)]
struct CachedToken {
    value: SecretString,
    expires: Instant,
}

impl fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegistryClient")
            .field("allow_http", &self.inner.allow_http)
            .field("timeout", &self.inner.timeout)
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

/// The maps hold plain data that a panicking holder cannot leave half-updated, so a poisoned
/// lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where a request goes: a path under the registry's base URL, or a URL the registry gave us.
enum Target {
    Path(String),
    Url(Url),
}

/// Headers for a blob body.
fn octet_stream() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers
}

/// How long a blob may be.
#[derive(Clone, Copy)]
enum BlobSize {
    AtMost(u64),
    Exactly(u64),
}

/// One HTTP exchange, repeatable for retries.
struct Call<'a> {
    method: Method,
    url: &'a Url,
    headers: HeaderMap,
    body: Option<Bytes>,
    /// Retry connection failures (off for the HTTPS probe that may fall back to HTTP).
    retry_transport: bool,
}

/// Pull, or pull and push.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Pull,
    Push,
}

impl Access {
    fn actions(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "pull,push",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Access::Pull => "pull",
            Access::Push => "push",
        }
    }
}

impl RegistryClient {
    /// Build a client. Fails only on unusable options (an unreadable or empty CA file).
    pub fn new(opts: RegistryOptions) -> Result<Self, RegistryError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .timeout(opts.request_timeout)
            .connect_timeout(opts.request_timeout.min(Duration::from_secs(30)))
            .redirect(redirect_policy(opts.allow_http));
        for path in &opts.ca_files {
            let fail = |detail: String| RegistryError::CaFile {
                path: path.display().to_string(),
                detail,
            };
            let pem = read_ca_file(path).map_err(fail)?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| fail(format!("not a PEM certificate bundle: {e}")))?;
            if certs.is_empty() {
                return Err(fail("no PEM certificates in it".into()));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if opts.insecure_skip_tls_verify {
            tracing::warn!(
                "TLS certificate verification is OFF for every registry: anyone on the network path can impersonate them"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Client(super::transport::chain_message(&e)))?;
        let explicit = match (opts.username, opts.password) {
            (Some(u), p) => Some((u, p.unwrap_or_else(|| SecretString::from(String::new())))),
            (None, Some(_)) => {
                tracing::warn!("a registry password was given without a username; ignoring it");
                None
            }
            (None, None) => None,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                allow_http: opts.allow_http,
                timeout: opts.request_timeout,
                credentials: CredentialSources {
                    explicit,
                    files: default_files(opts.docker_config.as_deref()),
                    helper_dir: None,
                    helper_timeout: super::credentials::HELPER_TIMEOUT,
                },
                endpoints: Mutex::default(),
                schemes: Mutex::default(),
                resolved: Mutex::default(),
                tokens: Mutex::default(),
            }),
        })
    }

    /// HEAD a manifest by tag or digest (falling back to GET when the registry gives no
    /// digest or media type, or refuses HEAD with 405); `Ok(None)` on 404. The digest is the
    /// registry's claim, not confirmed by bytes: to pin an image, use
    /// [`get_manifest`](Self::get_manifest), which hashes what it reads.
    pub async fn head_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<Descriptor>, RegistryError> {
        let wanted = check_reference(reference)?;
        let resp = self
            .request(
                repo,
                Access::Pull,
                Method::HEAD,
                Target::Path(manifest_path(repo, reference)?),
                accept_manifests(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => return Ok(None),
            StatusCode::METHOD_NOT_ALLOWED => {
                tracing::debug!(%repo, reference, "HEAD not allowed; fetching the manifest");
                return Ok(self
                    .get_manifest(repo, reference)
                    .await?
                    .map(|m| Descriptor {
                        size: m.bytes.len() as u64,
                        media_type: m.media_type,
                        digest: m.digest,
                    }));
            }
            s if s.is_success() => {}
            _ => return Err(status_error(resp, &Method::HEAD, self.inner.timeout).await),
        }
        let headers = resp.headers();
        let digest = content_digest(headers);
        let media_type = content_type(headers);
        // Not `Response::content_length`: for HEAD that is the (empty) body's length.
        let size = headers
            .get(reqwest::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match (digest, media_type, size) {
            (Some(digest), Some(media_type), Some(size))
                if media_types::ACCEPTED_MANIFESTS.contains(&media_type.as_str())
                    && wanted.as_ref().is_none_or(|w| *w == digest) =>
            {
                Ok(Some(Descriptor {
                    media_type,
                    digest,
                    size,
                }))
            }
            _ => {
                tracing::debug!(%repo, reference, "HEAD gave no usable digest; fetching the manifest");
                Ok(self
                    .get_manifest(repo, reference)
                    .await?
                    .map(|m| Descriptor {
                        size: m.bytes.len() as u64,
                        media_type: m.media_type,
                        digest: m.digest,
                    }))
            }
        }
    }

    /// GET a manifest (OCI manifest or index, Docker v2 manifest or manifest list), at most
    /// 4 MiB; `Ok(None)` on 404. The bytes are checked against `reference` when it is a
    /// digest, and against `Docker-Content-Digest` when the registry sends one.
    pub async fn get_manifest(
        &self,
        repo: &Repository,
        reference: &str,
    ) -> Result<Option<FetchedManifest>, RegistryError> {
        let wanted = check_reference(reference)?;
        let method = Method::GET;
        let resp = self
            .request(
                repo,
                Access::Pull,
                method.clone(),
                Target::Path(manifest_path(repo, reference)?),
                accept_manifests(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => {
                drain(resp).await;
                return Ok(None);
            }
            s if s.is_success() => {}
            _ => return Err(status_error(resp, &method, self.inner.timeout).await),
        }
        let announced = content_digest(resp.headers());
        let header_type = content_type(resp.headers());
        let what = format!("manifest {repo}:{reference}");
        let bytes =
            read_limited(resp, MAX_MANIFEST_SIZE, &what, &method, self.inner.timeout).await?;
        let digest = Digest::of(&bytes);
        if let Some(expected) = wanted.as_ref().or(announced.as_ref()) {
            if *expected != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: expected.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let media_type = manifest_media_type(header_type, &bytes, &what)?;
        Ok(Some(FetchedManifest {
            media_type,
            digest,
            bytes,
        }))
    }

    /// PUT a manifest under a tag or digest; returns its digest, computed here and checked
    /// against the registry's `Docker-Content-Digest` when present.
    pub async fn put_manifest(
        &self,
        repo: &Repository,
        reference: &str,
        media_type: &str,
        body: Bytes,
    ) -> Result<Digest, RegistryError> {
        let wanted = check_reference(reference)?;
        let what = format!("manifest {repo}:{reference}");
        if body.len() as u64 > MAX_MANIFEST_SIZE {
            return Err(RegistryError::TooLarge {
                what,
                limit: MAX_MANIFEST_SIZE,
            });
        }
        let digest = Digest::of(&body);
        if let Some(w) = wanted {
            if w != digest {
                return Err(RegistryError::DigestMismatch {
                    what,
                    expected: w.to_string(),
                    actual: digest.to_string(),
                });
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type).map_err(|_| RegistryError::UnsupportedMediaType {
                what: what.clone(),
                media_type: media_type.to_string(),
            })?,
        );
        let method = Method::PUT;
        let resp = self
            .request(
                repo,
                Access::Push,
                method.clone(),
                Target::Path(manifest_path(repo, reference)?),
                headers,
                Some(body),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &method, self.inner.timeout).await);
        }
        check_announced(resp.headers(), &digest, &what)?;
        drain(resp).await;
        Ok(digest)
    }

    /// Whether the repository has blob `digest`.
    pub async fn blob_exists(
        &self,
        repo: &Repository,
        digest: &Digest,
    ) -> Result<bool, RegistryError> {
        self.blob_exists_for(repo, digest, Access::Pull).await
    }

    async fn blob_exists_for(
        &self,
        repo: &Repository,
        digest: &Digest,
        access: Access,
    ) -> Result<bool, RegistryError> {
        let resp = self
            .request(
                repo,
                access,
                Method::HEAD,
                Target::Path(blob_path(repo, digest)?),
                HeaderMap::new(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            s if s.is_success() => Ok(true),
            _ => Err(status_error(resp, &Method::HEAD, self.inner.timeout).await),
        }
    }

    /// Upload a blob unless the repository already has it: POST for an upload session, then
    /// one monolithic PUT to the returned location with `digest=` added to its query.
    pub async fn put_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        // upload_blob checks the body against `digest`; checking existence first is only an
        // optimisation, so a wrong digest is caught either way.
        if self.blob_exists_for(repo, digest, Access::Push).await? {
            tracing::debug!(%repo, %digest, "blob already present");
            return Ok(());
        }
        self.upload_blob(repo, digest, body).await
    }

    /// Upload a blob without first asking whether it exists (for content that is new by
    /// construction, like a fresh signature payload). Tries the single-request monolithic
    /// upload (`POST …/uploads/?digest=` with the body, answered 201) and falls back to
    /// POST-then-PUT when the registry answers 202, as the distribution spec allows.
    pub async fn upload_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        body: Bytes,
    ) -> Result<(), RegistryError> {
        let what = format!("blob {digest} for {repo}");
        let actual = Digest::of(&body);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        let resp = self
            .request(
                repo,
                Access::Push,
                Method::POST,
                Target::Path(format!("v2/{}/blobs/uploads/?digest={digest}", repo.path())),
                octet_stream(),
                Some(body.clone()),
            )
            .await?;
        if resp.status() == StatusCode::CREATED {
            check_announced(resp.headers(), digest, &what)?;
            drain(resp).await;
            return Ok(());
        }
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_error(resp, &Method::POST, self.inner.timeout).await);
        }
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| RegistryError::Protocol {
                registry: repo.registry().to_string(),
                detail: "upload started without a Location header".into(),
            })?;
        // Relative locations are relative to the URL that answered.
        let mut upload = resp
            .url()
            .join(&location)
            .map_err(|e| RegistryError::Protocol {
                registry: repo.registry().to_string(),
                detail: format!("upload Location is not a URL: {e}"),
            })?;
        drain(resp).await;
        upload
            .query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let resp = self
            .request(
                repo,
                Access::Push,
                Method::PUT,
                Target::Url(upload),
                octet_stream(),
                Some(body),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(resp, &Method::PUT, self.inner.timeout).await);
        }
        check_announced(resp.headers(), digest, &what)?;
        drain(resp).await;
        Ok(())
    }

    /// GET a blob, refusing more than `max_size` bytes (counted while streaming) and bytes
    /// that do not hash to `digest`.
    pub async fn get_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        max_size: u64,
    ) -> Result<Bytes, RegistryError> {
        self.fetch_blob(repo, digest, BlobSize::AtMost(max_size))
            .await
    }

    /// GET a blob whose descriptor declares `size` bytes: a body of any other length is
    /// refused, and at most `size + 1` bytes are read, whatever the registry streams. The
    /// caller bounds `size`; the bytes must hash to `digest`.
    pub async fn get_blob_sized(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: u64,
    ) -> Result<Bytes, RegistryError> {
        self.fetch_blob(repo, digest, BlobSize::Exactly(size)).await
    }

    async fn fetch_blob(
        &self,
        repo: &Repository,
        digest: &Digest,
        size: BlobSize,
    ) -> Result<Bytes, RegistryError> {
        let what = format!("blob {digest} in {repo}");
        let method = Method::GET;
        let resp = self
            .request(
                repo,
                Access::Pull,
                method.clone(),
                Target::Path(blob_path(repo, digest)?),
                HeaderMap::new(),
                None,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => {
                drain(resp).await;
                return Err(RegistryError::NotFound { what });
            }
            s if s.is_success() => {}
            _ => return Err(status_error(resp, &method, self.inner.timeout).await),
        }
        let timeout = self.inner.timeout;
        let bytes = match size {
            BlobSize::AtMost(max) => read_limited(resp, max, &what, &method, timeout).await?,
            BlobSize::Exactly(n) => read_declared(resp, n, &what, &method, timeout).await?,
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
        Ok(bytes)
    }

    // ----------------------------------------------------------------------------------------
    // Requests with authentication

    /// Send a request for `repo`, authenticating as the registry asks. A 401 carrying a
    /// challenge is answered once (new token for the scopes it names, or Basic credentials);
    /// 401 and 403 that remain become auth errors, every other status is the caller's.
    async fn request(
        &self,
        repo: &Repository,
        access: Access,
        method: Method,
        target: Target,
        headers: HeaderMap,
        body: Option<Bytes>,
    ) -> Result<Response, RegistryError> {
        let registry = repo.registry();
        let base = self.endpoint(registry).await?;
        let url = match target {
            Target::Path(p) => base.join(&p).map_err(|e| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("cannot build a URL for {p}: {e}"),
            })?,
            Target::Url(u) => u,
        };
        // Credentials go only to the registry itself, never to a host it sends us to.
        let same_origin = url.origin() == base.origin();
        let mut scopes = vec![format!("repository:{}:{}", repo.path(), access.actions())];
        let mut fresh = false;
        let mut answered_challenge = false;
        loop {
            let auth = if same_origin {
                self.authorization(registry, &scopes, fresh).await?
            } else {
                None
            };
            let mut h = headers.clone();
            if let Some(a) = &auth {
                h.insert(AUTHORIZATION, a.clone());
            }
            let resp = self
                .execute(&Call {
                    method: method.clone(),
                    url: &url,
                    headers: h,
                    body: body.clone(),
                    retry_transport: true,
                })
                .await?;
            match resp.status() {
                StatusCode::UNAUTHORIZED if same_origin && !answered_challenge => {
                    answered_challenge = true;
                    let challenges = challenge::from_headers(resp.headers());
                    let scheme = AuthScheme::from_challenges(&challenges);
                    let previous = lock(&self.inner.schemes).get(registry).cloned();
                    let retry = match &scheme {
                        AuthScheme::Bearer { scopes: named, .. } => {
                            for s in named {
                                if !scopes.contains(s) {
                                    scopes.push(s.clone());
                                }
                            }
                            true
                        }
                        AuthScheme::Basic => {
                            previous != Some(AuthScheme::Basic)
                                && self.credential(registry).await?.is_some()
                        }
                        AuthScheme::Anonymous => false,
                    };
                    lock(&self.inner.schemes).insert(registry.to_string(), scheme);
                    if retry {
                        tracing::debug!(registry, scopes = %scopes.join(" "), "answering a 401 challenge");
                        fresh = true;
                        drain(resp).await;
                        continue;
                    }
                    return Err(self.unauthorized(registry, resp, &method).await);
                }
                StatusCode::UNAUTHORIZED => {
                    return Err(self.unauthorized(registry, resp, &method).await)
                }
                StatusCode::FORBIDDEN => {
                    return Err(self.forbidden(repo, access, resp, &method).await)
                }
                _ => return Ok(resp),
            }
        }
    }

    /// The `Authorization` value for `registry` and `scopes`, or `None` for anonymous.
    async fn authorization(
        &self,
        registry: &str,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<HeaderValue>, RegistryError> {
        let scheme = lock(&self.inner.schemes)
            .get(registry)
            .cloned()
            .unwrap_or(AuthScheme::Anonymous);
        let (realm, service) = match scheme {
            AuthScheme::Anonymous => return Ok(None),
            AuthScheme::Basic => {
                return Ok(match self.credential(registry).await?.map(|c| c.secret) {
                    Some(Secret::Basic { username, password }) => {
                        Some(basic_header(&username, &password))
                    }
                    Some(Secret::RegistryToken(t)) => Some(bearer_header(&t)),
                    // An OAuth refresh token means nothing to a Basic registry.
                    Some(Secret::IdentityToken(_)) | None => None,
                });
            }
            AuthScheme::Bearer { realm, service, .. } => (realm, service),
        };
        let credential = self.credential(registry).await?;
        if let Some(Credential {
            secret: Secret::RegistryToken(t),
            ..
        }) = &credential
        {
            return Ok(Some(bearer_header(t)));
        }
        let key = (registry.to_string(), scopes.join(" "));
        if !fresh {
            let now = Instant::now();
            let tokens = lock(&self.inner.tokens);
            // A pull+push token serves pulls too.
            let wider = (registry.to_string(), key.1.replace(":pull", ":pull,push"));
            let hit = tokens
                .get(&key)
                .filter(|t| t.expires > now)
                .or_else(|| tokens.get(&wider).filter(|t| t.expires > now));
            if let Some(t) = hit {
                return Ok(Some(bearer_header(&t.value)));
            }
        }
        let token = self
            .fetch_token(
                registry,
                &realm,
                service.as_deref(),
                scopes,
                credential.as_ref(),
            )
            .await?;
        let header = bearer_header(&token.value);
        lock(&self.inner.tokens).insert(key, token);
        Ok(Some(header))
    }

    /// Ask the token server for a bearer token: OAuth2 refresh-token POST when we hold an
    /// identity token, else GET with Basic credentials (or none).
    async fn fetch_token(
        &self,
        registry: &str,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
    ) -> Result<CachedToken, RegistryError> {
        let mut url = Url::parse(realm).map_err(|_| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: format!("token realm {realm:?} is not a URL"),
        })?;
        match url.scheme() {
            "https" => {}
            "http" if plain_http_allowed(&url, self.inner.allow_http) => {}
            _ => {
                return Err(RegistryError::Protocol {
                    registry: registry.to_string(),
                    detail: format!(
                        "its token server {} is not HTTPS; refusing to send credentials there (pass {HTTP_FLAG} if plain HTTP is intended)",
                        redact(&url)
                    ),
                })
            }
        }
        let mut headers = HeaderMap::new();
        let (method, body) = match credential.map(|c| &c.secret) {
            Some(Secret::IdentityToken(refresh)) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "refresh_token");
                form.append_pair("refresh_token", refresh.expose_secret());
                form.append_pair("client_id", "sigbridge");
                if let Some(s) = service {
                    form.append_pair("service", s);
                }
                form.append_pair("scope", &scopes.join(" "));
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                );
                (Method::POST, Some(Bytes::from(form.finish())))
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    // Docker sends the account too; some token servers log or require it.
                    if let Some(Secret::Basic { username, .. }) = other {
                        q.append_pair("account", username);
                    }
                    for scope in scopes {
                        q.append_pair("scope", scope);
                    }
                }
                if let Some(Secret::Basic { username, password }) = other {
                    headers.insert(AUTHORIZATION, basic_header(username, password));
                }
                (Method::GET, None)
            }
        };
        let resp = self
            .execute(&Call {
                method: method.clone(),
                url: &url,
                headers,
                body,
                retry_transport: true,
            })
            .await?;
        let status = resp.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let said = response_excerpt(resp, &method, self.inner.timeout).await;
            let used = self.describe(credential);
            let detail = if said.is_empty() {
                format!("its token server refused {used}")
            } else {
                format!("its token server refused {used}: {said}")
            };
            return Err(RegistryError::Unauthorized {
                registry: registry.to_string(),
                detail,
                login: login_command(registry),
            });
        }
        if !status.is_success() {
            return Err(status_error(resp, &method, self.inner.timeout).await);
        }
        let body = read_limited(
            resp,
            MAX_TOKEN_RESPONSE,
            "token response",
            &method,
            self.inner.timeout,
        )
        .await?;
        #[derive(serde::Deserialize)]
        struct TokenResponse {
            #[serde(default)]
            token: Option<SecretString>,
            #[serde(default)]
            access_token: Option<SecretString>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: format!("token response is not JSON: {e}"),
            })?;
        let value = [parsed.token, parsed.access_token]
            .into_iter()
            .flatten()
            .find(|t| !t.expose_secret().is_empty())
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.to_string(),
                detail: "token response has neither `token` nor `access_token`".into(),
            })?;
        let lifetime = parsed
            .expires_in
            .filter(|s| *s > 0)
            .unwrap_or(DEFAULT_TOKEN_SECONDS);
        // Renew a little early so a token does not expire between check and use.
        let margin = (lifetime / 2).min(10);
        Ok(CachedToken {
            value,
            expires: Instant::now() + Duration::from_secs(lifetime - margin),
        })
    }

    /// The registry's credentials, looked up on first need and kept.
    async fn credential(&self, registry: &str) -> Result<Option<Credential>, RegistryError> {
        let cell = lock(&self.inner.resolved)
            .entry(registry.to_string())
            .or_default()
            .clone();
        let found = cell
            .get_or_try_init(|| async {
                let sources = self.inner.credentials.clone();
                let reg = registry.to_string();
                // Reads files and may run a helper process: keep it off the async threads.
                tokio::task::spawn_blocking(move || sources.resolve(&reg))
                    .await
                    .map_err(|e| {
                        RegistryError::Client(format!("credential lookup did not finish: {e}"))
                    })?
            })
            .await?;
        Ok(found.clone())
    }

    /// Who we were, for auth errors (never the secret).
    fn describe(&self, credential: Option<&Credential>) -> String {
        match credential {
            Some(c) => format!("credentials from {}", c.source),
            None => {
                let files = &self.inner.credentials.files;
                if files.is_empty() {
                    "anonymous access (no credentials configured)".to_string()
                } else {
                    let names: Vec<String> =
                        files.iter().map(|f| f.display().to_string()).collect();
                    format!(
                        "anonymous access (no credentials for it in {})",
                        names.join(", ")
                    )
                }
            }
        }
    }

    async fn unauthorized(&self, registry: &str, resp: Response, method: &Method) -> RegistryError {
        let challenge_error = challenge::from_headers(resp.headers())
            .iter()
            .find_map(|c| c.param("error").map(str::to_string));
        let said = response_excerpt(resp, method, self.inner.timeout).await;
        let used = match self.credential(registry).await {
            Ok(c) => self.describe(c.as_ref()),
            Err(e) => format!("no credentials ({e})"),
        };
        let mut detail = format!("tried {used}");
        if !said.is_empty() {
            detail.push_str("; registry said: ");
            detail.push_str(&said);
        }
        if let Some(e) = challenge_error {
            detail.push_str(&format!(" [{e}]"));
        }
        RegistryError::Unauthorized {
            registry: registry.to_string(),
            detail,
            login: login_command(registry),
        }
    }

    async fn forbidden(
        &self,
        repo: &Repository,
        access: Access,
        resp: Response,
        method: &Method,
    ) -> RegistryError {
        let said = response_excerpt(resp, method, self.inner.timeout).await;
        let used = match self.credential(repo.registry()).await {
            Ok(c) => self.describe(c.as_ref()),
            Err(e) => format!("no credentials ({e})"),
        };
        let detail = if said.is_empty() {
            used
        } else {
            format!("{used}; registry said: {said}")
        };
        RegistryError::Forbidden {
            registry: repo.registry().to_string(),
            repository: repo.path().to_string(),
            action: access.verb(),
            detail,
            login: login_command(repo.registry()),
        }
    }

    // ----------------------------------------------------------------------------------------
    // Scheme choice

    /// The base URL of `registry`, decided by the first request and then kept.
    async fn endpoint(&self, registry: &str) -> Result<Url, RegistryError> {
        let cell = lock(&self.inner.endpoints)
            .entry(registry.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.ping(registry)).await.cloned()
    }

    /// Find a working scheme with `GET /v2/`. HTTPS first; plain HTTP only for loopback
    /// registries or when allowed, and only when HTTPS failed below HTTP. An untrusted
    /// certificate on a non-loopback registry is reported, never worked around.
    async fn ping(&self, registry: &str) -> Result<Url, RegistryError> {
        let loopback = is_loopback_registry(registry);
        let may_fall_back = loopback || self.inner.allow_http;
        let https = base_url("https", registry)?;
        let https_err = match self.ping_at(registry, &https, !may_fall_back).await {
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
        match self.ping_at(registry, &http, true).await {
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

    async fn ping_at(
        &self,
        registry: &str,
        base: &Url,
        retry_transport: bool,
    ) -> Result<(), RegistryError> {
        let url = base.join("v2/").map_err(|e| RegistryError::Protocol {
            registry: registry.to_string(),
            detail: e.to_string(),
        })?;
        let method = Method::GET;
        let resp = self
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
            _ => return Err(status_error(resp, &method, self.inner.timeout).await),
        };
        drain(resp).await;
        lock(&self.inner.schemes)
            .entry(registry.to_string())
            .or_insert(scheme);
        Ok(())
    }

    // ----------------------------------------------------------------------------------------
    // One exchange, with retries

    /// Send `call`, retrying connection failures (if allowed), 429 and 502/503/504 up to
    /// [`MAX_RETRIES`] times with jittered backoff (or `Retry-After`, capped).
    async fn execute(&self, call: &Call<'_>) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        loop {
            let mut rb = self
                .inner
                .http
                .request(call.method.clone(), call.url.clone())
                .headers(call.headers.clone());
            if let Some(body) = &call.body {
                rb = rb.body(body.clone());
            }
            let started = Instant::now();
            match rb.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    tracing::debug!(
                        method = %call.method,
                        url = %redact(call.url),
                        status = status.as_u16(),
                        attempt,
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "registry request"
                    );
                    // 500 is retried only for reads: docker-registry answers 500 to a GET of
                    // a tag while another client's PUT is rewriting the tag's link file in
                    // place (it reads an empty link), which concurrent signers hit.
                    let transient = matches!(status.as_u16(), 429 | 502 | 503 | 504)
                        || (status == StatusCode::INTERNAL_SERVER_ERROR
                            && matches!(call.method, Method::GET | Method::HEAD));
                    if transient && attempt < MAX_RETRIES {
                        let wait = retry_after(resp.headers()).unwrap_or_else(|| backoff(attempt));
                        drain(resp).await;
                        tracing::debug!(
                            status = status.as_u16(),
                            wait_ms = wait.as_millis() as u64,
                            "retrying"
                        );
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    return Ok(resp);
                }
                Err(e) => {
                    let failure = classify(e);
                    tracing::debug!(
                        method = %call.method,
                        url = %redact(call.url),
                        attempt,
                        error = ?failure,
                        "registry request failed"
                    );
                    if call.retry_transport && failure.is_retryable() && attempt < MAX_RETRIES {
                        tokio::time::sleep(backoff(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(failure.into_error(&call.method, call.url, self.inner.timeout));
                }
            }
        }
    }
}

/// Every hop of a redirect obeys the rules of a first request: only `http` and `https`, plain
/// HTTP only to loopback or when allowed, never from HTTPS down to plain HTTP off this machine,
/// and at most [`MAX_REDIRECTS`] hops. A refusal is final (see `TransportFailure::Redirect`).
fn redirect_policy(allow_http: bool) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects (a loop?)"));
        }
        let to = attempt.url();
        let from_https = attempt
            .previous()
            .last()
            .is_some_and(|u| u.scheme() == "https");
        let refusal = match to.scheme() {
            "https" => None,
            "http" if from_https && !is_loopback_url(to) => {
                Some("refusing a redirect from HTTPS to plain HTTP".to_string())
            }
            "http" if !plain_http_allowed(to, allow_http) => Some(format!(
                "refusing a redirect to plain HTTP at {} (not loopback; pass {HTTP_FLAG} if plain HTTP is intended)",
                redact(to)
            )),
            "http" => None,
            other => Some(format!("refusing a redirect to an unsupported {other}: URL")),
        };
        match refusal {
            Some(reason) => attempt.error(reason),
            None => attempt.follow(),
        }
    })
}

/// Read a CA bundle, at most [`MAX_CA_FILE_SIZE`] bytes (one more proves it is too large):
/// `--registry-cacert /dev/zero` must not read forever.
fn read_ca_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut pem = Vec::new();
    file.take(MAX_CA_FILE_SIZE + 1)
        .read_to_end(&mut pem)
        .map_err(|e| e.to_string())?;
    if pem.len() as u64 > MAX_CA_FILE_SIZE {
        return Err(format!(
            "it is larger than {MAX_CA_FILE_SIZE} bytes: that is not a PEM CA bundle (pass the CA certificate file itself)"
        ));
    }
    Ok(pem)
}

fn base_url(scheme: &str, registry: &str) -> Result<Url, RegistryError> {
    Url::parse(&format!("{scheme}://{registry}/")).map_err(|e| RegistryError::Protocol {
        registry: registry.to_string(),
        detail: format!("not a usable host name: {e}"),
    })
}

fn basic_header(username: &str, password: &SecretString) -> HeaderValue {
    let raw = zeroize::Zeroizing::new(format!("{username}:{}", password.expose_secret()));
    let encoded = zeroize::Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes())
    ));
    sensitive_header(&encoded)
}

fn bearer_header(token: &SecretString) -> HeaderValue {
    let value = zeroize::Zeroizing::new(format!("Bearer {}", token.expose_secret()));
    sensitive_header(&value)
}

/// A header value hidden from `Debug` output. A value with characters HTTP cannot carry
/// becomes an empty one; the registry then refuses it like any wrong credential.
fn sensitive_header(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

fn accept_manifests() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        ACCEPT,
        HeaderValue::from_static(
            "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json",
        ),
    );
    h
}

/// A tag or digest, checked so it cannot change the URL's path; the digest if it is one.
fn check_reference(reference: &str) -> Result<Option<Digest>, RegistryError> {
    let bad = || RegistryError::InvalidReference {
        reference: reference.to_string(),
    };
    if reference.contains(':') {
        return reference.parse::<Digest>().map(Some).map_err(|_| bad());
    }
    let ok = !reference.is_empty()
        && reference.len() <= 128
        && !reference.starts_with(['.', '-'])
        && reference.chars().all(|c| TAG_CHARS.contains(c));
    if ok {
        Ok(None)
    } else {
        Err(bad())
    }
}

/// A repository path with no empty, `.` or `..` components (URL joining would resolve them).
fn check_path(repo: &Repository) -> Result<&str, RegistryError> {
    let path = repo.path();
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(RegistryError::Protocol {
            registry: repo.registry().to_string(),
            detail: format!("repository path {path:?} has empty or dot components"),
        });
    }
    Ok(path)
}

fn manifest_path(repo: &Repository, reference: &str) -> Result<String, RegistryError> {
    Ok(format!("v2/{}/manifests/{reference}", check_path(repo)?))
}

fn blob_path(repo: &Repository, digest: &Digest) -> Result<String, RegistryError> {
    Ok(format!("v2/{}/blobs/{digest}", check_path(repo)?))
}

/// `Docker-Content-Digest`, if present and SHA-256 (other algorithms are ignored: we hash
/// with SHA-256 ourselves anyway).
fn content_digest(headers: &HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The media type of `Content-Type`, without parameters.
fn content_type(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let mt = v.split(';').next().unwrap_or(v).trim();
    (!mt.is_empty()).then(|| mt.to_ascii_lowercase())
}

/// A registry that announces a digest for what we uploaded must announce ours.
fn check_announced(headers: &HeaderMap, digest: &Digest, what: &str) -> Result<(), RegistryError> {
    match content_digest(headers) {
        Some(d) if d != *digest => Err(RegistryError::DigestMismatch {
            what: format!("{what} (Docker-Content-Digest after upload)"),
            expected: digest.to_string(),
            actual: d.to_string(),
        }),
        _ => Ok(()),
    }
}

/// The media type of fetched manifest bytes: the `Content-Type` when it is one we accept,
/// else the body's `mediaType` (or its shape), which must be one we accept.
fn manifest_media_type(
    header: Option<String>,
    bytes: &[u8],
    what: &str,
) -> Result<String, RegistryError> {
    if let Some(h) = &header {
        if media_types::ACCEPTED_MANIFESTS.contains(&h.as_str()) {
            return Ok(h.clone());
        }
    }
    match sniff_media_type(bytes) {
        Some(mt) if media_types::ACCEPTED_MANIFESTS.contains(&mt.as_str()) => Ok(mt),
        sniffed => Err(RegistryError::UnsupportedMediaType {
            what: what.to_string(),
            media_type: header.or(sniffed).unwrap_or_else(|| "(none)".to_string()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        assert_eq!(check_reference("latest").unwrap(), None);
        assert_eq!(
            check_reference("sha256-abc.sig").unwrap(),
            None,
            "cosign signature tags are tags"
        );
        let d = Digest::of(b"x");
        assert_eq!(check_reference(&d.to_string()).unwrap(), Some(d));
        for bad in [
            "",
            "../x",
            "a/b",
            "-x",
            ".x",
            "sha256:nothex",
            "a?b",
            &"t".repeat(129),
        ] {
            assert!(check_reference(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn media_type_choice() {
        let oci = br#"{"schemaVersion":2,"config":{}}"#;
        assert_eq!(
            manifest_media_type(Some("application/json".into()), oci, "m").unwrap(),
            media_types::OCI_MANIFEST
        );
        assert_eq!(
            manifest_media_type(Some(media_types::DOCKER_MANIFEST_LIST.into()), b"{}", "m")
                .unwrap(),
            media_types::DOCKER_MANIFEST_LIST
        );
        let e = manifest_media_type(
            Some("application/vnd.docker.distribution.manifest.v1+prettyjws".into()),
            br#"{"schemaVersion":1}"#,
            "m",
        )
        .unwrap_err();
        assert!(
            matches!(e, RegistryError::UnsupportedMediaType { .. }),
            "{e}"
        );
    }

    #[test]
    fn headers_are_sensitive() {
        let h = basic_header("u", &SecretString::from("p".to_string()));
        assert!(h.is_sensitive());
        assert!(!format!("{h:?}").contains("dTpw"));
        assert_eq!(h.to_str().unwrap(), "Basic dTpw");
    }

    #[test]
    fn bad_repository_paths_are_refused() {
        // A `..` component never reaches the client: references refuse it at parse.
        assert!(Repository::parse("example.com/a/../b").is_err());
        let repo = Repository::parse("example.com/a/b").unwrap();
        assert_eq!(manifest_path(&repo, "t").unwrap(), "v2/a/b/manifests/t");
        // The client's own check still refuses a reference that would leave the repository.
        assert!(check_reference("../t").is_err());
    }
}
