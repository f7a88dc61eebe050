//! The HTTP exchange: one reqwest client (CA bundles, redirect policy), the one retry policy
//! for registry requests, error classification, bounded body reads, registry error excerpts,
//! URL redaction.

use std::error::Error as StdError;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use reqwest::{Method, Response, StatusCode};
use sigbridge_retry::{parse_retry_after, RetryPolicy};
use url::Url;

use super::error::{ErrorBody, RegistryError, HTTP_FLAG};
use super::plain_http::{is_loopback_url, plain_http_allowed};
use super::{RegistryOptions, MAX_CA_FILE_SIZE};

/// How registry requests are retried: 3 retries about 0.25 s, 0.5 s, 1 s apart, and a
/// `Retry-After` of at most 30 s (a CLI run should not stall for minutes on one registry).
pub(crate) fn registry_retry_policy() -> RetryPolicy {
    RetryPolicy {
        base: Duration::from_millis(250),
        max_delay: Duration::from_secs(8),
        max_retry_after: Duration::from_secs(30),
        max_retries: 3,
    }
}
/// Redirects followed before giving up.
const MAX_REDIRECTS: usize = 10;
/// How much of an error body is read to find the registry's message.
pub(crate) const MAX_ERROR_BODY: u64 = 1024 * 1024;
/// How much of the registry's message ends up in an error.
pub(crate) const MAX_EXCERPT: usize = 1024;

/// One HTTP exchange, repeatable for retries.
pub(crate) struct Call<'a> {
    pub method: Method,
    pub url: &'a Url,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// Retry connection failures (off for the HTTPS probe that may fall back to HTTP).
    pub retry_transport: bool,
}

/// The HTTP client and how it retries. Knows nothing of authentication or registries' API.
pub(crate) struct Transport {
    http: reqwest::Client,
    timeout: Duration,
    retry: RetryPolicy,
}

impl Transport {
    /// Build the HTTP client from the options (CA bundles, certificate checks, timeouts,
    /// redirect policy).
    pub fn new(opts: &RegistryOptions) -> Result<Self, RegistryError> {
        let mut builder = trusting_builder(opts)?.redirect(redirect_policy(opts.allow_http));
        if opts.insecure_skip_tls_verify {
            tracing::warn!(
                "TLS certificate verification is OFF for every registry: anyone on the network path can impersonate them"
            );
            builder = builder.danger_accept_invalid_certs(true);
        }
        let http = builder
            .build()
            .map_err(|e| RegistryError::Client(chain_message(&e)))?;
        Ok(Self {
            http,
            timeout: opts.request_timeout,
            retry: registry_retry_policy(),
        })
    }

    /// The limit for one whole request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Send `call`, retrying connection failures (if allowed), 429 and 502/503/504 as the
    /// retry policy allows, waiting its backoff or the registry's `Retry-After` (capped).
    pub async fn execute(&self, call: &Call<'_>) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        loop {
            let mut rb = self
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
                    if is_transient(status, &call.method) && self.retry.allows(attempt) {
                        let wait = self
                            .retry
                            .delay(attempt, retry_after(resp.headers(), SystemTime::now()));
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
                    if call.retry_transport && failure.is_retryable() && self.retry.allows(attempt)
                    {
                        tokio::time::sleep(self.retry.backoff(attempt)).await;
                        attempt += 1;
                        continue;
                    }
                    return Err(failure.into_error(&call.method, call.url, self.timeout));
                }
            }
        }
    }
}

/// A client builder with the options' user agent and timeouts that trusts the system roots
/// plus the options' CA bundles (`--registry-cacert`). Certificate checks stay on: turning
/// them off is the caller's decision.
pub(crate) fn trusting_builder(
    opts: &RegistryOptions,
) -> Result<reqwest::ClientBuilder, RegistryError> {
    let mut builder = reqwest::Client::builder()
        .user_agent(opts.user_agent.clone())
        .timeout(opts.request_timeout)
        .connect_timeout(opts.request_timeout.min(Duration::from_secs(30)));
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
    Ok(builder)
}

/// Whether an answer is worth asking again for. 500 is retried only for reads:
/// docker-registry answers 500 to a GET of a tag while another client's PUT is rewriting the
/// tag's link file in place (it reads an empty link), which concurrent signers hit.
fn is_transient(status: StatusCode, method: &Method) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
        || (status == StatusCode::INTERNAL_SERVER_ERROR
            && matches!(*method, Method::GET | Method::HEAD))
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

/// A failure below HTTP, sorted by what the user can do about it.
#[derive(Debug)]
pub(crate) enum TransportFailure {
    /// The peer's certificate was not accepted.
    Certificate(String),
    /// TLS failed otherwise (often: the server speaks plain HTTP).
    Tls(String),
    /// No connection could be made.
    Connect(String),
    /// No answer in time.
    Timeout,
    /// A redirect was refused (loop, too many hops, unknown scheme, plain-HTTP rule): asking
    /// again gets the same redirect.
    Redirect(String),
    /// Anything else (reset mid-request, malformed HTTP).
    Other(String),
}

impl TransportFailure {
    /// Worth trying again: the network may recover, a certificate will not.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            TransportFailure::Connect(_) | TransportFailure::Other(_)
        )
    }

    /// The error for a request `method url` that failed this way.
    pub fn into_error(self, method: &Method, url: &Url, timeout: Duration) -> RegistryError {
        match self {
            TransportFailure::Certificate(detail) => RegistryError::Certificate {
                registry: host_port(url),
                detail,
            },
            TransportFailure::Tls(detail) => RegistryError::Tls {
                registry: host_port(url),
                detail,
            },
            TransportFailure::Connect(detail) => RegistryError::Connect {
                url: redact(url),
                detail,
            },
            TransportFailure::Timeout => RegistryError::Network {
                method: method.to_string(),
                url: redact(url),
                detail: format!(
                    "no complete answer within {} s; the registry may be slow or unreachable",
                    timeout.as_secs()
                ),
            },
            TransportFailure::Redirect(detail) => RegistryError::Network {
                method: method.to_string(),
                url: redact(url),
                detail: format!("redirect refused: {detail}"),
            },
            TransportFailure::Other(detail) => RegistryError::Network {
                method: method.to_string(),
                url: redact(url),
                detail,
            },
        }
    }
}

/// Sort a reqwest error. The URL is dropped first: it may carry pre-signed query parameters.
pub(crate) fn classify(err: reqwest::Error) -> TransportFailure {
    let err = err.without_url();
    if let Some(tls) = find_rustls_error(&err) {
        return match tls {
            rustls::Error::InvalidCertificate(_)
            | rustls::Error::NoCertificatesPresented
            | rustls::Error::InvalidCertRevocationList(_) => {
                TransportFailure::Certificate(tls.to_string())
            }
            other => TransportFailure::Tls(other.to_string()),
        };
    }
    if err.is_timeout() {
        return TransportFailure::Timeout;
    }
    let detail = chain_message(&err);
    if err.is_redirect() {
        return TransportFailure::Redirect(detail);
    }
    if err.is_connect() {
        TransportFailure::Connect(detail)
    } else {
        TransportFailure::Other(detail)
    }
}

/// The rustls error somewhere in the chain. `io::Error::source` skips the error it wraps, so
/// wrapped errors are looked at through `get_ref`.
fn find_rustls_error<'e>(err: &'e (dyn StdError + 'static)) -> Option<&'e rustls::Error> {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(inner) = io.get_ref() {
                if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                    return Some(tls);
                }
                if let Some(found) = find_rustls_error(inner) {
                    return Some(found);
                }
            }
        }
        cur = e.source();
    }
    None
}

/// The messages of an error chain, joined, without repeats.
pub(crate) fn chain_message(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = cur {
        let msg = e.to_string();
        // hyper/reqwest wrapper layers say nothing the layer below does not.
        let generic = msg == "error sending request" || msg.starts_with("client error (");
        if !generic && !msg.is_empty() && !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
        cur = e.source();
    }
    if parts.is_empty() {
        return err.to_string();
    }
    parts.join(": ")
}

/// `scheme://host[:port]/path`, with `?…` for a query that was dropped.
pub(crate) fn redact(url: &Url) -> String {
    let mut out = format!("{}://{}{}", url.scheme(), host_port(url), url.path());
    if url.query().is_some() {
        out.push_str("?…");
    }
    out
}

/// `host[:port]` of a URL (IPv6 in brackets).
pub(crate) fn host_port(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(a)) => format!("[{a}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    }
}

/// `Retry-After` (seconds or an HTTP-date, relative to `now`), uncapped: the policy caps it.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, now)
}

/// Read a body, refusing more than `limit` bytes whatever `Content-Length` says.
pub(crate) async fn read_limited(
    mut resp: Response,
    limit: u64,
    what: &str,
    method: &Method,
    timeout: Duration,
) -> Result<Bytes, RegistryError> {
    let too_large = || RegistryError::TooLarge {
        what: what.to_string(),
        limit,
    };
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let url = resp.url().clone();
    let initial = resp.content_length().unwrap_or(0).min(limit).min(1 << 20);
    // Bounded by the 1 MiB cap just above.
    let mut buf = BytesMut::with_capacity(usize::try_from(initial).unwrap_or(0));
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| classify(e).into_error(method, &url, timeout))?;
        let Some(chunk) = chunk else { break };
        if (buf.len() + chunk.len()) as u64 > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Read a body that must be exactly `declared` bytes: a different `Content-Length` is refused
/// before reading, and at most `declared + 1` bytes are ever buffered (the extra byte proves
/// the body is longer). The caller bounds `declared`.
pub(crate) async fn read_declared(
    mut resp: Response,
    declared: u64,
    what: &str,
    method: &Method,
    timeout: Duration,
) -> Result<Bytes, RegistryError> {
    let mismatch = |detail: String| RegistryError::SizeMismatch {
        what: what.to_string(),
        declared,
        detail,
    };
    if let Some(n) = resp.content_length().filter(|n| *n != declared) {
        return Err(mismatch(format!("the registry announced {n} bytes")));
    }
    let url = resp.url().clone();
    let mut buf = BytesMut::with_capacity(usize::try_from(declared.min(1 << 20)).unwrap_or(0));
    loop {
        let chunk = resp
            .chunk()
            .await
            .map_err(|e| classify(e).into_error(method, &url, timeout))?;
        let Some(chunk) = chunk else { break };
        let room = usize::try_from(declared - buf.len() as u64).unwrap_or(usize::MAX);
        if chunk.len() > room {
            // Dropping the response closes the connection: nothing more is downloaded.
            return Err(mismatch("the body is longer".to_string()));
        }
        buf.extend_from_slice(&chunk);
    }
    if (buf.len() as u64) < declared {
        return Err(mismatch(format!(
            "the body ended after {} bytes",
            buf.len()
        )));
    }
    Ok(buf.freeze())
}

/// Read and discard a (small) body so the connection can be reused.
pub(crate) async fn drain(mut resp: Response) {
    let mut left: usize = 64 * 1024;
    while let Ok(Some(chunk)) = resp.chunk().await {
        left = left.saturating_sub(chunk.len());
        if left == 0 {
            break;
        }
    }
}

/// `text` cleaned for one line of an error message: whitespace runs collapsed, control
/// characters dropped, at most [`MAX_EXCERPT`] characters.
pub(crate) fn clean_excerpt(text: &str) -> String {
    let cleaned: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if cleaned.chars().count() > MAX_EXCERPT {
        let mut cut: String = cleaned.chars().take(MAX_EXCERPT).collect();
        cut.push('…');
        cut
    } else {
        cleaned
    }
}

/// What the registry said in an error body: `CODE: message` for each entry of the
/// distribution error JSON, else a cleaned text excerpt. At most [`MAX_EXCERPT`] characters.
#[cfg(test)]
pub(crate) fn error_excerpt(body: &[u8]) -> String {
    clean_excerpt(&ErrorBody::parse(body).text)
}

/// The excerpt of an error response's body (empty for HEAD or when unreadable).
pub(crate) async fn response_excerpt(resp: Response, method: &Method, timeout: Duration) -> String {
    response_error_body(resp, method, timeout).await.text
}

/// An error response's body: its codes and its excerpt (both empty for HEAD or when
/// unreadable).
async fn response_error_body(resp: Response, method: &Method, timeout: Duration) -> ErrorBody {
    let text_only = |text: &str| ErrorBody {
        codes: Vec::new(),
        text: text.to_string(),
    };
    if *method == Method::HEAD {
        return text_only("");
    }
    match read_limited(resp, MAX_ERROR_BODY, "error response", method, timeout).await {
        Ok(body) => {
            let parsed = ErrorBody::parse(&body);
            ErrorBody {
                text: clean_excerpt(&parsed.text),
                codes: parsed.codes,
            }
        }
        Err(RegistryError::TooLarge { .. }) => text_only("(error body too large to show)"),
        Err(_) => text_only(""),
    }
}

/// The error for an unexpected status.
pub(crate) async fn status_error(
    resp: Response,
    method: &Method,
    timeout: Duration,
) -> RegistryError {
    let status = resp.status();
    let url = redact(resp.url());
    let ErrorBody {
        codes,
        text: excerpt,
    } = response_error_body(resp, method, timeout).await;
    let reason = status.canonical_reason().unwrap_or("");
    let mut detail = if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    };
    if !excerpt.is_empty() {
        detail.push_str(": ");
        detail.push_str(&excerpt);
    }
    RegistryError::Status {
        method: method.to_string(),
        url,
        status: status.as_u16(),
        detail,
        codes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts() {
        assert_eq!(
            error_excerpt(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}},{"code":"X","message":""}]}"#),
            "MANIFEST_UNKNOWN: manifest unknown; X"
        );
        assert_eq!(
            error_excerpt(b"<html>\n  Bad\tGateway\r\n</html>"),
            "<html> Bad Gateway </html>"
        );
        let long = "a".repeat(5000);
        assert_eq!(
            error_excerpt(long.as_bytes()).chars().count(),
            MAX_EXCERPT + 1
        );
    }

    #[test]
    fn redaction() {
        let u = Url::parse("https://user:pw@h:5000/v2/x/blobs/uploads/abc?_state=secret&digest=d")
            .unwrap();
        assert_eq!(redact(&u), "https://h:5000/v2/x/blobs/uploads/abc?…");
        let u = Url::parse("http://[::1]:5000/v2/").unwrap();
        assert_eq!(redact(&u), "http://[::1]:5000/v2/");
    }

    #[test]
    fn retry_after_takes_seconds_and_dates_and_the_policy_caps_it() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let policy = registry_retry_policy();
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(
            policy.delay(0, retry_after(&h, now)),
            policy.max_retry_after
        );
        // The HTTP-date form (RFC 9110) was ignored before; registries behind CDNs send it.
        let date = httpdate_in(now, 7);
        h.insert(reqwest::header::RETRY_AFTER, date.parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(reqwest::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    /// `now + secs` as an HTTP-date (IMF-fixdate), without a date crate.
    fn httpdate_in(now: SystemTime, secs: u64) -> String {
        // 1_700_000_000 is Tue, 14 Nov 2023 22:13:20 GMT.
        assert_eq!(
            now,
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
        );
        assert!(secs < 40);
        format!("Tue, 14 Nov 2023 22:13:{:02} GMT", 20 + secs)
    }

    #[test]
    fn transient_statuses() {
        assert!(is_transient(StatusCode::SERVICE_UNAVAILABLE, &Method::PUT));
        assert!(is_transient(StatusCode::TOO_MANY_REQUESTS, &Method::POST));
        assert!(is_transient(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Method::GET
        ));
        assert!(!is_transient(
            StatusCode::INTERNAL_SERVER_ERROR,
            &Method::PUT
        ));
        assert!(!is_transient(StatusCode::NOT_FOUND, &Method::GET));
    }
}
