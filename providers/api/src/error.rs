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
#[derive(Debug)]
pub struct SignerError {
    kind: SignerErrorKind,
    message: String,
    cause: Cause,
}

/// What a [`SignerError`] keeps of the error under it.
#[derive(Debug)]
enum Cause {
    None,
    /// A lower error, reported as the next link of the chain.
    Source(Box<dyn std::error::Error + Send + Sync + 'static>),
    /// The provider's own typed error whose text is this error's message: kept for
    /// [`SignerError::downcast_ref`], and its causes (not itself) continue the chain, so the
    /// text is not printed twice.
    Wrapped(Box<dyn std::error::Error + Send + Sync + 'static>),
}

impl SignerError {
    /// A new error of `kind` with a user-facing `message`.
    pub fn new(kind: SignerErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            cause: Cause::None,
        }
    }

    /// A provider's typed error as a [`SignerError`] of `kind`: its text becomes the message
    /// and the error itself stays reachable through [`SignerError::downcast_ref`].
    pub fn wrap(
        kind: SignerErrorKind,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self {
            kind,
            message: error.to_string(),
            cause: Cause::Wrapped(Box::new(error)),
        }
    }

    /// Attach the underlying cause (it must not carry secrets either).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Cause::Source(Box::new(source));
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> SignerErrorKind {
        self.kind
    }

    /// The provider error this one was made from (by [`SignerError::wrap`] or
    /// [`SignerError::with_source`]), if it is a `T`.
    pub fn downcast_ref<T: std::error::Error + 'static>(&self) -> Option<&T> {
        match &self.cause {
            Cause::None => None,
            Cause::Source(e) | Cause::Wrapped(e) => e.downcast_ref::<T>(),
        }
    }
}

impl fmt::Display for SignerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SignerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::None => None,
            Cause::Source(e) => Some(e.as_ref()),
            Cause::Wrapped(e) => e.source(),
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("lower: {0}")]
    struct Lower(&'static str);

    #[test]
    fn wrapped_errors_keep_their_type_without_repeating_their_text() {
        let e = SignerError::wrap(SignerErrorKind::InvalidKey, Lower("bad"));
        assert_eq!(e.to_string(), "lower: bad");
        assert_eq!(e.downcast_ref::<Lower>().map(|l| l.0), Some("bad"));
        assert_eq!(error_chain(&e), "lower: bad");
        assert!(std::error::Error::source(&e).is_none());
    }

    #[test]
    fn sources_are_the_next_link() {
        let e = SignerError::new(SignerErrorKind::Unavailable, "upper").with_source(Lower("x"));
        assert_eq!(error_chain(&e), "upper: lower: x");
        assert!(e.downcast_ref::<Lower>().is_some());
    }
}
