//! The library's error type and the exit codes the binary maps it to.
//!
//! Exit codes are a contract for pipelines (documented in README and `sigbridge --help`);
//! 10, 11 and 12 mean what they mean to `cosign verify`; 13 is left unused because cosign uses
//! it (no certificate on a signature).
//!
//! This is the one error→exit-code table: [`Error::exit_code`] for the library's error,
//! the `From` impls below for the component errors that may reach the binary unwrapped, and
//! [`ExitCode::for_chain`] for an error chain as the binary sees it.

use sigbridge_signer::{SignatureError, SignerError, SignerErrorKind};

use crate::payload::PayloadError;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;

/// Stable process exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    /// Everything succeeded.
    Success = 0,
    /// An error not covered below.
    Failure = 1,
    /// The command line was malformed (clap's own code).
    Usage = 2,
    /// An input (reference, annotation, payload, signature, certificate file) is malformed.
    InvalidInput = 3,
    /// A key or trust material could not be loaded: unreadable, malformed, unsupported, the
    /// password/PIN is missing or wrong, or (keyless, transparency log) no trusted root was given.
    Key = 4,
    /// A signature does not verify against the signer's (or the given) public key, or a payload
    /// does not belong to the image; nothing was attached.
    SignatureMismatch = 5,
    /// The registry could not be used: network, TLS, authentication, or an unexpected answer.
    Registry = 6,
    /// A person or policy denied the signing request.
    Rejected = 7,
    /// The signer could not be reached or failed.
    SignerUnavailable = 8,
    /// The signing request was canceled (by a person, the service, or a wait limit).
    Canceled = 9,
    /// `verify`: the image has no signatures (cosign's code).
    NoSignatures = 10,
    /// The image (tag or digest) does not exist (cosign's code).
    ImageNotFound = 11,
    /// `verify`: signatures exist but none matches (cosign's code).
    NoMatchingSignatures = 12,
    /// Nothing was changed because the target already exists or is already final: an output
    /// file (`generate-key-pair`, `public-key --outfile`), or a signing request that already
    /// reached a final status (a provider's `cancel`).
    Conflict = 14,
}

/// Everything that can go wrong in a sigbridge operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed image or repository reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A malformed payload or annotation.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The registry failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A signer failed.
    #[error("{signer}")]
    Signer {
        /// Which signer.
        signer: String,
        /// What went wrong.
        #[source]
        source: SignerError,
    },
    /// A signature or key failed a check.
    #[error("{context}")]
    Signature {
        /// What was being checked.
        context: String,
        /// Why it failed.
        #[source]
        source: SignatureError,
    },
    /// A public key or certificate could not be used.
    #[error("{context}")]
    InvalidKey {
        /// Which key.
        context: String,
        /// Why.
        #[source]
        source: SignatureError,
    },
    /// A key could not be read (missing file, unset variable, not text).
    #[error("{0}")]
    KeyUnavailable(String),
    /// Trust material (a trusted root, Fulcio roots, transparency-log keys) is missing or could
    /// not be loaded.
    #[error("{0}")]
    TrustMaterial(String),
    /// The image does not exist.
    #[error("image not found: {0} (check the reference, and that you may read it)")]
    ImageNotFound(String),
    /// `verify`: no signatures stored for the image.
    #[error("no signatures found for {image} (looked for tag {tag} in {repository})")]
    NoSignatures {
        /// The image.
        image: String,
        /// The signature tag looked up.
        tag: String,
        /// The repository searched.
        repository: String,
    },
    /// `verify`: no stored signature passed every check.
    #[error("no matching signatures:\n{}", reasons.join("\n"))]
    NoMatchingSignatures {
        /// One line per signature layer.
        reasons: Vec<String>,
    },
    /// The payload given does not claim the image's digest.
    #[error("payload claims digest {claimed:?}, but {image} is {actual}; refusing to attach a payload for another image")]
    PayloadDigestMismatch {
        /// What the payload says.
        claimed: String,
        /// The image.
        image: String,
        /// The image's digest.
        actual: String,
    },
    /// An input file or value is malformed.
    #[error("{0}")]
    InvalidInput(String),
    /// The signature manifest in the registry is not one we can safely append to.
    #[error("{0}")]
    UnsafeSignatureManifest(String),
    /// A file to be created already exists; it was left alone.
    #[error("{path} already exists; remove it or choose another path{hint}")]
    FileExists {
        /// The file.
        path: String,
        /// More ways out (e.g. a `--force` flag), starting with `; `, or empty.
        hint: String,
    },
    /// The operation does not apply any more (e.g. canceling a completed signing request).
    #[error("{0}")]
    AlreadyFinal(String),
    /// Reading a local file failed.
    #[error("{path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<&ReferenceError> for ExitCode {
    fn from(_: &ReferenceError) -> Self {
        ExitCode::InvalidInput
    }
}

impl From<&PayloadError> for ExitCode {
    fn from(_: &PayloadError) -> Self {
        ExitCode::InvalidInput
    }
}

impl From<&RegistryError> for ExitCode {
    fn from(_: &RegistryError) -> Self {
        ExitCode::Registry
    }
}

impl ExitCode {
    /// The exit code for an error chain (outermost first): that of the first error in it that
    /// sigbridge knows, else [`ExitCode::Failure`]. The binary passes `anyhow::Error::chain`.
    pub fn for_chain<'a>(
        chain: impl IntoIterator<Item = &'a (dyn std::error::Error + 'static)>,
    ) -> ExitCode {
        chain
            .into_iter()
            .find_map(Self::for_error)
            .unwrap_or(ExitCode::Failure)
    }

    /// The exit code for one error, if it is one of sigbridge's.
    fn for_error(cause: &(dyn std::error::Error + 'static)) -> Option<ExitCode> {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return Some(e.exit_code());
        }
        if let Some(e) = cause.downcast_ref::<RegistryError>() {
            return Some(e.into());
        }
        if let Some(e) = cause.downcast_ref::<ReferenceError>() {
            return Some(e.into());
        }
        cause.downcast_ref::<PayloadError>().map(ExitCode::from)
    }
}

impl Error {
    /// The exit code for this error.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Reference(e) => e.into(),
            Error::Payload(e) => e.into(),
            Error::Registry(e) => e.into(),
            Error::InvalidInput(_) => ExitCode::InvalidInput,
            Error::UnsafeSignatureManifest(_) => ExitCode::Registry,
            Error::Signer { source, .. } => match source.kind() {
                SignerErrorKind::InvalidKey
                | SignerErrorKind::Credentials
                | SignerErrorKind::Unsupported => ExitCode::Key,
                SignerErrorKind::Rejected => ExitCode::Rejected,
                SignerErrorKind::Canceled => ExitCode::Canceled,
                SignerErrorKind::BadSignature => ExitCode::SignatureMismatch,
                _ => ExitCode::SignerUnavailable,
            },
            Error::Signature { .. } | Error::PayloadDigestMismatch { .. } => {
                ExitCode::SignatureMismatch
            }
            Error::InvalidKey { .. } | Error::KeyUnavailable(_) | Error::TrustMaterial(_) => {
                ExitCode::Key
            }
            Error::ImageNotFound(_) => ExitCode::ImageNotFound,
            Error::NoSignatures { .. } => ExitCode::NoSignatures,
            Error::NoMatchingSignatures { .. } => ExitCode::NoMatchingSignatures,
            Error::Io { .. } => ExitCode::InvalidInput,
            Error::FileExists { .. } | Error::AlreadyFinal(_) => ExitCode::Conflict,
        }
    }
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// An outer error with a source, as context layers wrap errors in the binary.
    #[derive(Debug, thiserror::Error)]
    #[error("while doing something")]
    struct Context(#[source] Box<dyn std::error::Error + Send + Sync>);

    fn chain<'e>(
        e: &'e (dyn std::error::Error + 'static),
    ) -> Vec<&'e (dyn std::error::Error + 'static)> {
        std::iter::successors(Some(e), |e| e.source()).collect()
    }

    #[test]
    fn one_table_for_wrapped_and_bare_errors() {
        let registry = || RegistryError::NotFound { what: "x".into() };
        let bare = Context(Box::new(registry()));
        assert_eq!(ExitCode::for_chain(chain(&bare)), ExitCode::Registry);
        let wrapped = Context(Box::new(Error::Registry(registry())));
        assert_eq!(ExitCode::for_chain(chain(&wrapped)), ExitCode::Registry);
        let reference = crate::reference::ImageReference::parse("").unwrap_err();
        assert_eq!(
            ExitCode::for_chain(chain(&Context(Box::new(reference)))),
            ExitCode::InvalidInput
        );
        // The outermost known error decides.
        let outer = Error::ImageNotFound("x".into());
        assert_eq!(ExitCode::for_chain(chain(&outer)), ExitCode::ImageNotFound);
        let unknown = Context(Box::new(std::io::Error::other("disk")));
        assert_eq!(ExitCode::for_chain(chain(&unknown)), ExitCode::Failure);
    }
}
