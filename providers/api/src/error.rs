use std::fmt;

/// What kind of failure a signer had; the CLI maps each kind to a distinct exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignerErrorKind {
    /// The key material could not be read or parsed (file missing, bad PEM, wrong format).
    InvalidKey,
    /// A password, PIN or token is missing or wrong.
    Credentials,
    /// The key type, curve or mechanism is not supported.
    Unsupported,
    /// A person or policy refused the signing (denied).
    Rejected,
    /// The signing request was canceled (by a person, a timeout or the service).
    Canceled,
    /// The signer could not be reached or failed while signing (network, HSM error, timeout).
    Unavailable,
    /// The signer returned something that is not a valid signature for its key.
    BadSignature,
}

impl fmt::Display for SignerErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::InvalidKey => "invalid key",
            Self::Credentials => "credentials",
            Self::Unsupported => "unsupported",
            Self::Rejected => "rejected",
            Self::Canceled => "canceled",
            Self::Unavailable => "unavailable",
            Self::BadSignature => "bad signature",
        })
    }
}

/// An error from a signing provider. The message says what went wrong and what to do; it never
/// contains a secret.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SignerError {
    kind: SignerErrorKind,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl SignerError {
    /// A new error of `kind` with a user-facing `message`.
    pub fn new(kind: SignerErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// Attach the underlying cause (it must not carry secrets either).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> SignerErrorKind {
        self.kind
    }
}

/// An error and all its causes on one line, joined with `: ` (what anyhow's `{:#}` prints),
/// skipping a cause whose text the line already holds (wrapped errors often repeat it). For
/// reports that do not go through the binary's edge: per-image batch results, retry logs.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}
