//! The HTTP side: one reqwest client, bearer auth, bounded retries of idempotent calls,
//! `Retry-After`, and a submit that is never repeated once its outcome is unknown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use futures::StreamExt as _;
use reqwest::header::{HeaderMap, AUTHORIZATION, LOCATION, RETRY_AFTER};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use sigbridge_signer::{error_chain, SignerErrorKind};

use crate::artifact::Artifact;
use crate::config::SignPathConfig;
use crate::id::RequestId;
use crate::retry::{parse_retry_after, RetryPolicy};
use crate::status::RequestStatus;

/// A failed call. Messages never contain the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The service answered with an error status.
    #[error("{what}: the service answered HTTP {status}{hint}{body}")]
    Http {
        /// The operation.
        what: String,
        /// The status code.
        status: u16,
        /// Advice for the status (may be empty).
        hint: &'static str,
        /// `; the service said: …` (may be empty).
        body: String,
    },
    /// The service could not be reached (after the retries allowed).
    #[error("{what}: {reason}")]
    Network {
        /// The operation.
        what: String,
        /// Why (the error chain, without secrets).
        reason: String,
    },
    /// TLS could not be set up with the service: retrying will not help.
    #[error("{what}: TLS with the service failed ({detail}){hint}")]
    Tls {
        /// The operation.
        what: String,
        /// The TLS library's reason.
        detail: String,
        /// What to do (starts with `: ` or is empty).
        hint: &'static str,
    },
    /// The submit was sent but no answer came back: a signing request may or may not exist.
    #[error("submitting the signing request: {reason}. The request body was sent, so the service may have created a signing request anyway; sigbridge does not submit again automatically, to avoid a duplicate request needing a second approval. Check the SignPath web UI (or `sigbridge signpath status ID --signer ...` if you know the id) and, if a request exists, continue with `sigbridge sign --resume ID --signer ... IMAGES...`; otherwise run the same `sign` again")]
    SubmitOutcomeUnknown {
        /// What happened.
        reason: String,
    },
    /// The answer was not what the API documents.
    #[error("{what}: {reason}")]
    Protocol {
        /// The operation.
        what: String,
        /// What was wrong.
        reason: String,
    },
    /// A download exceeded its size limit.
    #[error("{what}: the response is larger than the {limit} bytes allowed")]
    TooLarge {
        /// The operation.
        what: String,
        /// The limit.
        limit: u64,
    },
}

impl ClientError {
    /// The signer error kind (and so the exit code) for this failure.
    pub fn kind(&self) -> SignerErrorKind {
        match self {
            Self::Http {
                status: 401 | 403, ..
            } => SignerErrorKind::Credentials,
            Self::Protocol { .. } | Self::TooLarge { .. } => SignerErrorKind::BadSignature,
            _ => SignerErrorKind::Unavailable,
        }
    }

    /// The HTTP status, if the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn hint_for(status: u16) -> &'static str {
    match status {
        401 => " (unauthorised: check the API token in SIGNPATH_API_TOKEN or the token file)",
        403 => " (forbidden: is the token's user a submitter of this signing policy, and is the organisation id right?)",
        404 => " (not found: check the organisation id, project and signing policy slugs, and the request id)",
        _ => "",
    }
}

fn retryable(status: StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// At most this many quick retries of a refused connection before any request exists: a
/// typo'd port fails in seconds, a restarting service still gets a moment.
const QUICK_RETRIES: u32 = 2;
/// Longest wait between those quick retries.
const QUICK_RETRY_MAX_DELAY: Duration = Duration::from_secs(1);

/// Whether a signing request exists yet: before one does, a service that cannot be reached at
/// all is far more likely a wrong URI than an outage, so connection failures end quickly;
/// after, an outage is waited out (the request, maybe approved already, is not lost).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    BeforeRequest,
    AfterRequest,
}

/// A failure below HTTP, sorted by whether trying again can help.
#[derive(Debug)]
enum Failure {
    /// TLS failed: never transient. `plain_http` when the peer answered in plain HTTP.
    Tls { detail: String, plain_http: bool },
    /// The connection was refused (nothing listens there, or not yet).
    Refused(String),
    /// No connection for another reason (DNS, unreachable network, connect timeout).
    NoConnection(String),
    /// Anything after the connection was made (reset, timeout, malformed answer).
    Other(String),
}

impl Failure {
    fn classify(e: &reqwest::Error) -> Self {
        if let Some(tls) = find_in_chain::<rustls::Error>(e) {
            return Failure::Tls {
                detail: tls.to_string(),
                plain_http: matches!(tls, rustls::Error::InvalidMessage(_)),
            };
        }
        let reason = error_chain(e);
        if e.is_connect() {
            let refused = find_in_chain::<std::io::Error>(e)
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
            if refused {
                return Failure::Refused(reason);
            }
            return Failure::NoConnection(reason);
        }
        Failure::Other(reason)
    }

    /// How many retries this failure gets in `phase` (the policy's bound when patient).
    fn retries(&self, phase: Phase, patient: u32) -> u32 {
        match (self, phase) {
            (Failure::Tls { .. }, _) => 0,
            (Failure::Refused(_), Phase::BeforeRequest) => QUICK_RETRIES.min(patient),
            (Failure::NoConnection(_), Phase::BeforeRequest) => 0,
            _ => patient,
        }
    }

    fn reason(&self) -> &str {
        match self {
            Failure::Tls { detail, .. } => detail,
            Failure::Refused(r) | Failure::NoConnection(r) | Failure::Other(r) => r,
        }
    }

    /// The final error for operation `what` after `attempts` tries.
    fn into_error(self, what: &str, attempts: u32) -> ClientError {
        match self {
            Failure::Tls { detail, plain_http } => ClientError::Tls {
                what: what.to_string(),
                detail,
                hint: if plain_http {
                    ": the server does not speak TLS; use signpath+http:// for a plain-HTTP server"
                } else {
                    ": check the host and port in the signer URI and that the service's certificate is trusted (a private CA: add ca-file=CA.pem to the URI)"
                },
            },
            other => {
                let advice = if matches!(other, Failure::Refused(_) | Failure::NoConnection(_)) {
                    "; check the host and port in the signer URI and that the service is running"
                } else {
                    ""
                };
                ClientError::Network {
                    what: what.to_string(),
                    reason: format!(
                        "{} (gave up after {attempts} attempt{}){advice}",
                        other.reason(),
                        if attempts == 1 { "" } else { "s" }
                    ),
                }
            }
        }
    }
}

/// The first `T` in an error's source chain, looking inside `io::Error`s (whose `source`
/// skips the error they wrap).
fn find_in_chain<'e, T: std::error::Error + 'static>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e T> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(found) = find_in_chain::<T>(inner) {
                return Some(found);
            }
        }
        cur = e.source();
    }
    None
}

/// Report a retry at the default verbosity: what failed, why, and how long until the next try.
fn warn_retry(what: &str, reason: &str, delay: Duration, retry: u32, of: u32) {
    tracing::warn!(
        "{what} failed: {reason}; retrying in {:.1} s (retry {retry} of {of})",
        delay.as_secs_f64()
    );
}

/// Talks to one organisation's SignPath API.
pub struct SignPathClient {
    http: reqwest::Client,
    config: SignPathConfig,
    retry: RetryPolicy,
    status_route_missing: AtomicBool,
    /// Per-call timeout for API calls.
    call_timeout: Duration,
    /// Timeout for a whole artifact download.
    download_timeout: Duration,
}

impl std::fmt::Debug for SignPathClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignPathClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl SignPathClient {
    /// A client for `config` with `retry` for idempotent calls.
    pub fn new(config: SignPathConfig, retry: RetryPolicy) -> Result<Self, ClientError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("sigbridge-signpath/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            // Redirects would carry the bearer token to wherever they point.
            .redirect(reqwest::redirect::Policy::none());
        // Added to the system's roots, not instead of them.
        for cert in &config.ca_certificates {
            builder = builder.add_root_certificate(cert.clone());
        }
        let http = builder.build().map_err(|e| ClientError::Network {
            what: "creating the HTTP client".into(),
            reason: error_chain(&e),
        })?;
        Ok(Self {
            http,
            config,
            retry,
            status_route_missing: AtomicBool::new(false),
            call_timeout: Duration::from_secs(100),
            download_timeout: Duration::from_secs(600),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SignPathConfig {
        &self.config
    }

    fn request(&self, method: Method, url: &str) -> RequestBuilder {
        self.http
            .request(method, url)
            .header(AUTHORIZATION, self.config.bearer())
            .timeout(self.call_timeout)
    }

    /// Turn an error answer into a [`ClientError::Http`], quoting (a bounded, token-free
    /// part of) the body.
    async fn http_error(&self, what: &str, resp: Response) -> ClientError {
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(Ok(chunk)) = stream.next().await {
            body.extend_from_slice(&chunk);
            if body.len() > 2048 {
                break;
            }
        }
        let mut text: String = String::from_utf8_lossy(&body).chars().take(500).collect();
        text = text.replace(
            self.config.bearer().trim_start_matches("Bearer "),
            "[redacted]",
        );
        let text = text.trim();
        ClientError::Http {
            what: what.to_string(),
            status,
            hint: hint_for(status),
            body: if text.is_empty() {
                String::new()
            } else {
                format!("; the service said: {text}")
            },
        }
    }

    /// Send an idempotent request, retrying 429/502/503/504 and network errors with backoff
    /// (honouring `Retry-After`) up to the policy's bound; before a request exists, a service
    /// that cannot be connected to gets at most [`QUICK_RETRIES`]; TLS failures none. Returns
    /// the final response, which may still be an error status.
    async fn send_idempotent(
        &self,
        what: &str,
        phase: Phase,
        build: &(dyn Fn() -> RequestBuilder + Sync),
    ) -> Result<Response, ClientError> {
        let mut attempt = 0;
        loop {
            let outcome = build().send().await;
            let (failure, ra) = match outcome {
                Ok(resp) if retryable(resp.status()) => {
                    let ra = retry_after(resp.headers());
                    (
                        Failure::Other(format!("HTTP {}", resp.status().as_u16())),
                        ra,
                    )
                }
                Ok(resp) => return Ok(resp),
                Err(e) => (Failure::classify(&e), None),
            };
            let allowed = failure.retries(phase, self.retry.max_retries);
            if attempt >= allowed {
                return Err(failure.into_error(what, attempt + 1));
            }
            let mut delay = self.retry.delay(attempt, ra);
            if allowed < self.retry.max_retries {
                delay = delay.min(QUICK_RETRY_MAX_DELAY);
            }
            warn_retry(what, failure.reason(), delay, attempt + 1, allowed);
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// `POST …/SigningRequests/SubmitWithArtifact` (falling back to the deprecated
    /// `POST …/SigningRequests` when the service does not have the new route). Retried only
    /// when the service certainly did not take the request: a failed connection, or an
    /// explicit 429/503 refusal.
    pub async fn submit(
        &self,
        artifact: &Artifact,
        description: Option<&str>,
    ) -> Result<RequestId, ClientError> {
        let what = "submitting the signing request";
        let form = || -> Result<Form, ClientError> {
            let c = &self.config;
            let mut form = Form::new()
                .text("projectSlug", c.project_slug.clone())
                .text("signingPolicySlug", c.signing_policy_slug.clone());
            if let Some(ac) = &c.artifact_configuration_slug {
                form = form.text("artifactConfigurationSlug", ac.clone());
            }
            if let Some(d) = description {
                form = form.text("description", d.to_string());
            }
            for (k, v) in &c.parameters {
                form = form.text(format!("parameters.{k}"), v.clone());
            }
            let part = Part::bytes(artifact.zip.clone())
                .file_name(artifact.file_name.clone())
                .mime_str("application/octet-stream")
                .map_err(|e| ClientError::Protocol {
                    what: what.into(),
                    reason: error_chain(&e),
                })?;
            Ok(form.part("artifact", part))
        };
        let mut routes = vec![
            self.config.api_url("SigningRequests/SubmitWithArtifact"),
            self.config.api_url("SigningRequests"),
        ]
        .into_iter();
        let mut url = routes.next().unwrap_or_default();
        let mut attempt = 0;
        loop {
            let sent = self
                .request(Method::POST, &url)
                .multipart(form()?)
                .send()
                .await;
            let resp = match sent {
                Ok(resp) => resp,
                // Failed to connect (or to set up TLS): nothing was sent, so trying again
                // cannot create a duplicate; but with no request yet, fail fast.
                Err(e) if e.is_connect() => {
                    let failure = Failure::classify(&e);
                    let allowed = failure.retries(Phase::BeforeRequest, self.retry.max_retries);
                    if attempt < allowed {
                        let delay = self.retry.delay(attempt, None).min(QUICK_RETRY_MAX_DELAY);
                        warn_retry(what, failure.reason(), delay, attempt + 1, allowed);
                        tokio::time::sleep(delay).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(match failure.into_error(what, attempt + 1) {
                        ClientError::Network { what, reason } => ClientError::Network {
                            what,
                            reason: format!("{reason}; nothing was submitted"),
                        },
                        other => other,
                    });
                }
                Err(e) => {
                    return Err(ClientError::SubmitOutcomeUnknown {
                        reason: error_chain(&e),
                    })
                }
            };
            let status = resp.status();
            if matches!(status.as_u16(), 429 | 503) && attempt < self.retry.max_retries {
                let delay = self.retry.delay(attempt, retry_after(resp.headers()));
                warn_retry(
                    what,
                    &format!(
                        "the service answered HTTP {} (no request was created)",
                        status.as_u16()
                    ),
                    delay,
                    attempt + 1,
                    self.retry.max_retries,
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                if let Some(next) = routes.next() {
                    tracing::info!("SubmitWithArtifact not found; using the older POST …/SigningRequests route");
                    url = next;
                    continue;
                }
            }
            if matches!(status.as_u16(), 502 | 504) {
                return Err(ClientError::SubmitOutcomeUnknown {
                    reason: format!(
                        "a gateway answered HTTP {} after the request was sent",
                        status.as_u16()
                    ),
                });
            }
            if !status.is_success() {
                return Err(self.http_error(what, resp).await);
            }
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            return match location.as_deref().and_then(RequestId::from_location) {
                Some(id) => Ok(id),
                None => Err(ClientError::Protocol {
                    what: what.into(),
                    reason: format!(
                        "the service answered HTTP {} without a Location header naming the new signing request ({}); a request was probably created: look for it in the SignPath web UI and resume it with `sigbridge sign --resume ID`",
                        status.as_u16(),
                        location.as_deref().map_or("none".to_string(), |l| format!("got {l:?}"))
                    ),
                }),
            };
        }
    }

    async fn get_json(&self, what: &str, url: &str) -> Result<Option<RequestStatus>, ClientError> {
        let resp = self
            .send_idempotent(what, Phase::AfterRequest, &|| {
                self.request(Method::GET, url)
            })
            .await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(self.http_error(what, resp).await);
        }
        let body = read_bounded(what, resp, 1024 * 1024).await?;
        RequestStatus::from_json(&body)
            .map(Some)
            .map_err(|reason| ClientError::Protocol {
                what: what.into(),
                reason,
            })
    }

    fn not_found(&self, what: &str, id: &RequestId) -> ClientError {
        ClientError::Http {
            what: what.into(),
            status: 404,
            hint: "",
            body: format!(
                "; there is no signing request {id} in organisation {} (check the id and the organisation in the signer URI)",
                self.config.organization_id
            ),
        }
    }

    /// `GET …/SigningRequests/{id}`: the full data.
    pub async fn get_request(&self, id: &RequestId) -> Result<RequestStatus, ClientError> {
        let what = format!("reading signing request {id}");
        self.get_json(
            &what,
            &self.config.api_url(&format!("SigningRequests/{id}")),
        )
        .await?
        .ok_or_else(|| self.not_found(&what, id))
    }

    /// `GET …/SigningRequests/{id}/Status` (the polling route), falling back to the full
    /// data route on services that do not have it.
    pub async fn get_status(&self, id: &RequestId) -> Result<RequestStatus, ClientError> {
        if !self.status_route_missing.load(Ordering::Relaxed) {
            let what = format!("polling signing request {id}");
            let url = self.config.api_url(&format!("SigningRequests/{id}/Status"));
            if let Some(s) = self.get_json(&what, &url).await? {
                return Ok(s);
            }
            self.status_route_missing.store(true, Ordering::Relaxed);
        }
        self.get_request(id).await
    }

    /// Download a binary resource with a size bound, retrying the whole download on network
    /// errors (it is idempotent).
    async fn download(&self, what: &str, url: &str, limit: u64) -> Result<Vec<u8>, ClientError> {
        let mut attempt = 0;
        loop {
            let resp = self
                .send_idempotent(what, Phase::AfterRequest, &|| {
                    self.request(Method::GET, url)
                        .timeout(self.download_timeout)
                })
                .await?;
            if !resp.status().is_success() {
                return Err(self.http_error(what, resp).await);
            }
            match read_bounded(what, resp, limit).await {
                Err(ClientError::Network { reason, .. }) if attempt < self.retry.max_retries => {
                    let delay = self.retry.delay(attempt, None);
                    warn_retry(
                        what,
                        &format!("download interrupted: {reason}"),
                        delay,
                        attempt + 1,
                        self.retry.max_retries,
                    );
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// `GET …/SigningRequests/{id}/SignedArtifact` (at most `limit` bytes).
    pub async fn download_signed(
        &self,
        id: &RequestId,
        limit: u64,
    ) -> Result<Vec<u8>, ClientError> {
        self.download(
            &format!("downloading the signed artifact of {id}"),
            &self
                .config
                .api_url(&format!("SigningRequests/{id}/SignedArtifact")),
            limit,
        )
        .await
    }

    /// `GET …/SigningRequests/{id}/UnsignedArtifact` (at most `limit` bytes).
    pub async fn download_unsigned(
        &self,
        id: &RequestId,
        limit: u64,
    ) -> Result<Vec<u8>, ClientError> {
        self.download(
            &format!("downloading the submitted artifact of {id}"),
            &self
                .config
                .api_url(&format!("SigningRequests/{id}/UnsignedArtifact")),
            limit,
        )
        .await
    }

    async fn certificate_at(
        &self,
        what: &str,
        phase: Phase,
        urls: &[String],
    ) -> Result<Option<Vec<u8>>, ClientError> {
        for url in urls {
            let resp = self
                .send_idempotent(what, phase, &|| self.request(Method::GET, url))
                .await?;
            if resp.status() == StatusCode::NOT_FOUND {
                continue;
            }
            if !resp.status().is_success() {
                return Err(self.http_error(what, resp).await);
            }
            return read_bounded(what, resp, 256 * 1024).await.map(Some);
        }
        Ok(None)
    }

    /// The signing policy's certificate (`GET …/Projects/{p}/SigningPolicies/{s}/Certificate/X509Certificate`),
    /// DER or PEM; `None` if the service does not offer it.
    pub async fn policy_certificate(&self) -> Result<Option<Vec<u8>>, ClientError> {
        let c = &self.config;
        let rest = format!(
            "Projects/{}/SigningPolicies/{}/Certificate/X509Certificate",
            c.project_slug, c.signing_policy_slug
        );
        self.certificate_at(
            "fetching the signing policy's certificate",
            Phase::BeforeRequest,
            &[c.api_url(&rest)],
        )
        .await
    }

    /// The certificate a request was signed with (`GET …/SigningRequests/{id}/X509Certificate`,
    /// `v1` then `v1-pre`); `None` if the service does not offer it.
    pub async fn request_certificate(
        &self,
        id: &RequestId,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let rest = format!("SigningRequests/{id}/X509Certificate");
        self.certificate_at(
            &format!("fetching the certificate of signing request {id}"),
            Phase::AfterRequest,
            &[
                self.config.api_url(&rest),
                self.config.versioned_url("v1-pre", &rest),
            ],
        )
        .await
    }

    /// `POST …/SigningRequests/{id}/Cancel`.
    pub async fn cancel(&self, id: &RequestId) -> Result<(), ClientError> {
        let what = format!("canceling signing request {id}");
        let url = self.config.api_url(&format!("SigningRequests/{id}/Cancel"));
        let resp = self
            .send_idempotent(&what, Phase::AfterRequest, &|| {
                self.request(Method::POST, &url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body("{}")
            })
            .await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(self.http_error(&what, resp).await)
        }
    }
}

/// Read a body, refusing more than `limit` bytes (checked on `Content-Length` and while
/// streaming).
async fn read_bounded(what: &str, resp: Response, limit: u64) -> Result<Vec<u8>, ClientError> {
    if resp.content_length().is_some_and(|l| l > limit) {
        return Err(ClientError::TooLarge {
            what: what.into(),
            limit,
        });
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ClientError::Network {
            what: what.into(),
            reason: error_chain(&e),
        })?;
        if (out.len() + chunk.len()) as u64 > limit {
            return Err(ClientError::TooLarge {
                what: what.into(),
                limit,
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_depends_on_whether_a_request_exists() {
        let refused = Failure::Refused("refused".into());
        let dns = Failure::NoConnection("dns error".into());
        let tls = Failure::Tls {
            detail: "received corrupt message of type InvalidContentType".into(),
            plain_http: true,
        };
        let reset = Failure::Other("connection reset".into());
        // Before: a couple of quick retries for refused, none for DNS or TLS.
        assert_eq!(refused.retries(Phase::BeforeRequest, 8), QUICK_RETRIES);
        assert_eq!(dns.retries(Phase::BeforeRequest, 8), 0);
        assert_eq!(tls.retries(Phase::BeforeRequest, 8), 0);
        assert_eq!(reset.retries(Phase::BeforeRequest, 8), 8);
        // After: an outage is waited out as before; TLS is still not transient.
        assert_eq!(refused.retries(Phase::AfterRequest, 8), 8);
        assert_eq!(dns.retries(Phase::AfterRequest, 8), 8);
        assert_eq!(tls.retries(Phase::AfterRequest, 8), 0);
        let e = tls.into_error("fetching", 1).to_string();
        assert!(
            e.contains("use signpath+http:// for a plain-HTTP server"),
            "{e}"
        );
    }
}
