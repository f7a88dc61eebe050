//! What can go wrong in a keyless check, each naming what failed and what to do.

use std::time::SystemTime;

/// A keyless certificate or signature that was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeylessError {
    /// The certificate material could not be read.
    #[error("certificate: {0}")]
    Malformed(String),
    /// The trusted root names no certificate authority valid at the signing time.
    #[error("no certificate authority in the trusted root is valid at the signing time {}; check the trusted root (--trusted-root / SIGSTORE_ROOT_FILE)", rfc3339(*.0))]
    NoAuthorityAt(SystemTime),
    /// A certificate of the chain was not valid at the signing time.
    #[error("certificate is not valid at the signing time {}: {what}", rfc3339(*at))]
    OutsideValidity {
        /// The signing time.
        at: SystemTime,
        /// Which certificate and its span.
        what: String,
    },
    /// The leaf does not chain to a root of the trusted root.
    #[error("certificate does not chain to a trusted Fulcio root valid at {}: {reason}; check the trusted root (--trusted-root / SIGSTORE_ROOT_FILE)", rfc3339(*at))]
    UntrustedChain {
        /// The signing time.
        at: SystemTime,
        /// Why (from path validation).
        reason: String,
    },
    /// A certificate of the chain does not allow code signing.
    #[error("certificate is not for code signing: {0}")]
    WrongKeyUsage(String),
    /// A `--certificate-github-workflow-*` value differs from the certificate's.
    #[error("expected GitHub Workflow {field} not found in certificate (wanted {wanted:?}, the certificate has {found})")]
    WorkflowMismatch {
        /// Which extension, as cosign names it (Trigger, SHA, Name, Repository, Ref).
        field: &'static str,
        /// The flag's value.
        wanted: String,
        /// The certificate's value, or "none".
        found: String,
    },
    /// The SAN or the issuer does not match the identity flags (cosign's sentence, then which).
    #[error("none of the expected identities matched what was in the certificate, got subjects [{}] with issuer {issuer} ({mismatch})", subjects.join(", "))]
    IdentityMismatch {
        /// The certificate's SANs.
        subjects: Vec<String>,
        /// The certificate's OIDC issuer.
        issuer: String,
        /// What did not match: the identity, the issuer, or both.
        mismatch: String,
    },
    /// The signature does not verify with the certificate's key.
    #[error("signature does not verify with the certificate's key: {0}")]
    Signature(String),
}

/// `at` as RFC 3339 UTC (seconds), for messages.
pub(crate) fn rfc3339(at: SystemTime) -> String {
    let secs = match at.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} s since 1970"))
}
