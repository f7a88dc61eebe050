//! One GET of a small document (a public key a vendor publishes) over HTTPS, trusting what the
//! registry client trusts: the system roots plus `--registry-cacert`. Stricter than a registry
//! request: certificate checks are always on, every redirect must stay on HTTPS, the body is
//! capped, and there is no authentication and no retry.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use url::Url;

use super::error::{RegistryError, CA_FLAG};
use super::plain_http::is_loopback_url;
use super::transport::{classify, read_limited, redact, trusting_builder, TransportFailure};
use super::RegistryOptions;

/// Redirect hops followed before giving up.
const MAX_REDIRECTS: usize = 5;

/// A GET that did not yield the document.
#[derive(Debug, thiserror::Error)]
#[error("{url}: {reason}")]
pub struct FetchError {
    /// The URL asked for, without its query string.
    pub url: String,
    /// What failed.
    pub reason: FetchFailure,
}

/// Why a GET failed, worded for the person who gave the URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchFailure {
    /// Neither `https` nor (where allowed) `http`.
    #[error("only https:// URLs can be fetched")]
    Scheme,
    /// Plain HTTP that is not allowed (not asked for, or not to this machine).
    #[error("plain HTTP is refused: use https:// (plain HTTP is accepted only from this machine's loopback, and only when asked)")]
    PlainHttp,
    /// The HTTP client could not be set up (e.g. a `--registry-cacert` file is unusable).
    #[error("{0}")]
    Setup(RegistryError),
    /// The server's certificate was not accepted.
    #[error("the server's TLS certificate was not accepted ({0}): pass {CA_FLAG} with the CA that signed it")]
    Certificate(String),
    /// TLS failed otherwise.
    #[error("the TLS handshake failed ({0})")]
    Tls(String),
    /// No connection could be made.
    #[error("could not connect ({0}): check the address and that the server is running")]
    Connect(String),
    /// No complete answer in time.
    #[error("no complete answer within {} s", .0.as_secs())]
    Timeout(Duration),
    /// A redirect was refused (to plain HTTP or another scheme, or too many hops).
    #[error("redirect refused: {0}")]
    Redirect(String),
    /// The server answered with an error status.
    #[error("the server answered HTTP {0}")]
    Status(StatusCode),
    /// The body is larger than the cap.
    #[error("the answer is larger than the {0}-byte limit")]
    TooLarge(u64),
    /// Anything else (reset mid-answer, malformed HTTP).
    #[error("{0}")]
    Other(String),
}

/// GET `url` and return its body, at most `limit` bytes. `https` always; `http` only when
/// `allow_loopback_http` and the host is this machine. Certificates are checked against the
/// system roots and `opts.ca_files` even when `opts.insecure_skip_tls_verify` is set: a
/// document fetched from anyone is worth nothing.
pub async fn get_small(
    opts: &RegistryOptions,
    url: &Url,
    limit: u64,
    allow_loopback_http: bool,
) -> Result<Bytes, FetchError> {
    let fail = |reason: FetchFailure| FetchError {
        url: redact(url),
        reason,
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback_http && is_loopback_url(url) => {}
        "http" => return Err(fail(FetchFailure::PlainHttp)),
        _ => return Err(fail(FetchFailure::Scheme)),
    }
    let http = trusting_builder(opts)
        .and_then(|b| {
            b.redirect(https_only_redirects())
                .build()
                .map_err(|e| RegistryError::Client(e.to_string()))
        })
        .map_err(|e| fail(FetchFailure::Setup(e)))?;
    let failure = |e: reqwest::Error| match classify(e) {
        TransportFailure::Certificate(d) => FetchFailure::Certificate(d),
        TransportFailure::Tls(d) => FetchFailure::Tls(d),
        TransportFailure::Connect(d) => FetchFailure::Connect(d),
        TransportFailure::Timeout => FetchFailure::Timeout(opts.request_timeout),
        TransportFailure::Redirect(d) => FetchFailure::Redirect(d),
        TransportFailure::Other(d) => FetchFailure::Other(d),
    };
    let resp = http
        .get(url.clone())
        .send()
        .await
        .map_err(|e| fail(failure(e)))?;
    if !resp.status().is_success() {
        return Err(fail(FetchFailure::Status(resp.status())));
    }
    read_limited(
        resp,
        limit,
        "the answer",
        &Method::GET,
        opts.request_timeout,
    )
    .await
    .map_err(|e| {
        fail(match e {
            RegistryError::TooLarge { limit, .. } => FetchFailure::TooLarge(limit),
            other => FetchFailure::Other(other.to_string()),
        })
    })
}

/// Follow a redirect only to HTTPS, and only a few hops.
fn https_only_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if attempt.url().scheme() == "https" {
            attempt.follow()
        } else {
            let to = redact(attempt.url());
            attempt.error(format!("{to} is not https://"))
        }
    })
}
