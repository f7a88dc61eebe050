//! sigbridge signing provider for SignPath-style REST signing services.
//!
//! One `sign` call is one signing request: every payload of the batch goes into one zip, so that
//! one approval covers a whole release. Legacy payloads are `.json` files and the DSSE PAEs of
//! cosign 3 bundles `.pae` files (`payload.json` / `payload.pae` alone, or
//! `payloads/NNN-sha256-HEX.json|pae` for several), so an artifact configuration can select each. The request is submitted with
//! `POST {base}/v1/{org}/SigningRequests/SubmitWithArtifact` (201 + `Location`), polled until it
//! reaches a final status (with backoff, `Retry-After` and bounded retries of idempotent calls),
//! and on `Completed` the signed zip is downloaded (bounded) and opened defensively: exactly the
//! expected `*.sig` entries, no path tricks, no zip bombs. The signatures are returned in the
//! encoding the service used (DER, raw `r||s`, or base64 of either); the caller normalises and
//! verifies each against [`sigbridge_signer::Signer::public_key`] before attaching anything.
//!
//! A submit whose outcome is unknown (the body was sent, no answer came back) is never retried:
//! the error says a request may exist and how to find and resume it.

#![forbid(unsafe_code)]

mod artifact;
mod client;
mod config;
mod id;
mod payload_kind;
mod progress;
mod provider;
mod retry;
mod signer;
mod status;

pub use artifact::{build_artifact, extract_signatures, Artifact, ArtifactError, ExtractLimits};
pub use client::{ClientError, SignPathClient};
pub use config::{ConfigError, SignPathConfig, TokenSource};
pub use id::RequestId;
pub use payload_kind::{inspect as inspect_payload, PayloadInfo, PayloadKind};
pub use progress::{Reporter, WaitReporter};
pub use provider::{open_signpath, SignPathProvider};
pub use retry::{parse_retry_after, RetryPolicy};
pub use signer::{
    ticket_id, SignPathOptions, SignPathSigner, DEFAULT_WAIT_TIMEOUT, PROVIDER_NAME,
    WAIT_TIMEOUT_ENV,
};
pub use status::{RequestStatus, Status};
