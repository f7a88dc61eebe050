//! HTTP plumbing shared by the client: error classification, bounded body reads, registry
//! error excerpts, retry timing, URL redaction.

use std::error::Error as StdError;
use std::net::IpAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rand::Rng as _;
use reqwest::header::HeaderMap;
use reqwest::{Method, Response};
use url::Url;

use super::error::RegistryError;

/// How many times a request is repeated after the first try.
pub(crate) const MAX_RETRIES: u32 = 3;
/// Longest `Retry-After` we honour; a registry asking for more gets this.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// How much of an error body is read to find the registry's message.
pub(crate) const MAX_ERROR_BODY: u64 = 1024 * 1024;
/// How much of the registry's message ends up in an error.
pub(crate) const MAX_EXCERPT: usize = 1024;

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

/// Exponential backoff with jitter: about 0.2 s, 0.4 s, 0.8 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(5);
    Duration::from_millis(base + rand::thread_rng().gen_range(0..=base / 2))
}

/// `Retry-After` in seconds (the HTTP-date form is rare from registries and ignored), capped.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
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

/// What the registry said in an error body: `CODE: message` for each entry of the
/// distribution error JSON, else a cleaned text excerpt. At most [`MAX_EXCERPT`] characters.
pub(crate) fn error_excerpt(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code.clone(),
                _ => e.message.clone(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => String::from_utf8_lossy(body).into_owned(),
    };
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

/// The excerpt of an error response's body (empty for HEAD or when unreadable).
pub(crate) async fn response_excerpt(resp: Response, method: &Method, timeout: Duration) -> String {
    if *method == Method::HEAD {
        return String::new();
    }
    match read_limited(resp, MAX_ERROR_BODY, "error response", method, timeout).await {
        Ok(body) => error_excerpt(&body),
        Err(RegistryError::TooLarge { .. }) => "(error body too large to show)".to_string(),
        Err(_) => String::new(),
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
    let excerpt = response_excerpt(resp, method, timeout).await;
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

    #[test]
    fn redaction() {
        let u = Url::parse("https://user:pw@h:5000/v2/x/blobs/uploads/abc?_state=secret&digest=d")
            .unwrap();
        assert_eq!(redact(&u), "https://h:5000/v2/x/blobs/uploads/abc?…");
        let u = Url::parse("http://[::1]:5000/v2/").unwrap();
        assert_eq!(redact(&u), "http://[::1]:5000/v2/");
    }

    #[test]
    fn retry_after_is_capped() {
        let mut h = HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(reqwest::header::RETRY_AFTER, "3600".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
        assert!(
            backoff(0) >= Duration::from_millis(200) && backoff(2) <= Duration::from_millis(1200)
        );
    }
}
