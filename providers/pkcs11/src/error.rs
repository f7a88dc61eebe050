//! Errors of the PKCS#11 provider. None of them ever carries a PIN.

use std::path::PathBuf;

use sigbridge_signer::{SignerError, SignerErrorKind};

use crate::uri::UriError;

/// Everything that can go wrong talking to a PKCS#11 module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The URI is malformed or incomplete.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// No module was named anywhere.
    #[error("no PKCS#11 module given: add ?module-path=/path/to/module.so to the URI, or set COSIGN_PKCS11_MODULE_PATH")]
    NoModule,
    /// The module file does not exist.
    #[error("PKCS#11 module {path} not found{hint}")]
    ModuleNotFound {
        /// Where it was looked for.
        path: PathBuf,
        /// What to check.
        hint: String,
    },
    /// The module exists but could not be loaded or initialised.
    #[error("PKCS#11 module {path} could not be loaded: {reason} (is it a PKCS#11 library for this architecture, and are its dependencies and configuration, e.g. SOFTHSM2_CONF, in place?)")]
    ModuleLoad {
        /// The module.
        path: PathBuf,
        /// The loader's or C_Initialize's answer.
        reason: String,
    },
    /// No token matches the URI.
    #[error(
        "no token matching {wanted} in {module}; tokens present: {}",
        list_or_none(present)
    )]
    TokenNotFound {
        /// What the URI asked for.
        wanted: String,
        /// The module.
        module: PathBuf,
        /// One line per token that is there.
        present: Vec<String>,
    },
    /// Several tokens match the URI.
    #[error("{wanted} matches several tokens: {}; add slot-id= or serial= to the URI", present.join("; "))]
    AmbiguousToken {
        /// What the URI asked for.
        wanted: String,
        /// The matching tokens.
        present: Vec<String>,
    },
    /// The URI names no key.
    #[error("the URI names no key: add id=%xx… or object=<label> (see `sigbridge pkcs11 keys`)")]
    NoKeyNamed,
    /// No private key matches.
    #[error(
        "no private key with {wanted} on token {token:?}; signing keys there: {}",
        list_or_none(present)
    )]
    KeyNotFound {
        /// `id …` or `label …`.
        wanted: String,
        /// The token label.
        token: String,
        /// The keys that are there (label, id, type).
        present: Vec<String>,
    },
    /// Several private keys match.
    #[error("{wanted} matches {} private keys on token {token:?}: {}; name the key by id=", candidates.len(), candidates.join("; "))]
    AmbiguousKey {
        /// `id …` or `label …`.
        wanted: String,
        /// The token label.
        token: String,
        /// The candidates (label, id, type).
        candidates: Vec<String>,
    },
    /// The key (or the URI's `type`) is of a kind sigbridge cannot sign with.
    #[error("unsupported key: {0}")]
    UnsupportedKey(String),
    /// The token cannot perform the mechanism the key needs.
    #[error("token {token:?} does not offer {mechanism}, which {key} needs")]
    UnsupportedMechanism {
        /// The token label.
        token: String,
        /// The mechanism(s) needed.
        mechanism: String,
        /// The key type.
        key: String,
    },
    /// The public key could not be found or read.
    #[error("the public key of {0}")]
    PublicKey(String),
    /// The token needs a PIN and none was given.
    #[error("token {token:?} requires login and no PIN was given: put the PIN in a file and name it with pin-source=FILE in the pkcs11: URI (for `sigbridge pkcs11 keys`: --pin-source FILE), or set COSIGN_PKCS11_PIN (on a terminal you are asked)")]
    LoginRequired {
        /// The token label.
        token: String,
    },
    /// The URI carries `pin-value` and its use was not allowed.
    #[error("the pkcs11: URI carries pin-value, which is refused: a PIN in a URI is visible to other users in process listings and lands in shell history. Put the PIN in a file and use ?pin-source=/path/to/file, or set COSIGN_PKCS11_PIN (set SIGBRIDGE_PKCS11_ALLOW_PIN_VALUE=1 to accept pin-value anyway, as cosign does)")]
    PinValueRefused,
    /// The PIN was wrong. Never retried: retries lock tokens.
    #[error("the PIN for token {token:?} is incorrect (CKR_PIN_INCORRECT); not retrying, since repeated failures lock the token{warning}")]
    PinIncorrect {
        /// The token label.
        token: String,
        /// Extra advice if the token says few tries are left.
        warning: String,
    },
    /// The user PIN is locked.
    #[error(
        "the user PIN of token {token:?} is locked; the security officer must unlock or reset it"
    )]
    PinLocked {
        /// The token label.
        token: String,
    },
    /// Reading the PIN failed.
    #[error("reading the PIN: {0}")]
    Pin(String),
    /// The certificate or chain could not be used.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A PKCS#11 call failed.
    #[error("{operation}: {source}")]
    Call {
        /// What was being done.
        operation: String,
        /// The library's error.
        #[source]
        source: cryptoki::error::Error,
    },
    /// Internal state could not be used (a panicked thread).
    #[error("internal error: {0}")]
    Internal(String),
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join("; ")
    }
}

impl Pkcs11Error {
    /// A failed PKCS#11 call.
    pub(crate) fn call(operation: impl Into<String>, source: cryptoki::error::Error) -> Self {
        Self::Call {
            operation: operation.into(),
            source,
        }
    }

    /// The [`SignerErrorKind`] (and so the exit code) this error maps to.
    pub fn kind(&self) -> SignerErrorKind {
        match self {
            Self::Uri(_)
            | Self::NoModule
            | Self::NoKeyNamed
            | Self::KeyNotFound { .. }
            | Self::AmbiguousKey { .. }
            | Self::PublicKey(_)
            | Self::Certificate(_) => SignerErrorKind::InvalidKey,
            Self::UnsupportedKey(_) | Self::UnsupportedMechanism { .. } => {
                SignerErrorKind::Unsupported
            }
            Self::LoginRequired { .. }
            | Self::PinValueRefused
            | Self::PinIncorrect { .. }
            | Self::PinLocked { .. }
            | Self::Pin(_) => SignerErrorKind::Credentials,
            Self::ModuleNotFound { .. }
            | Self::ModuleLoad { .. }
            | Self::TokenNotFound { .. }
            | Self::AmbiguousToken { .. }
            | Self::Call { .. }
            | Self::Internal(_) => SignerErrorKind::Unavailable,
        }
    }
}

impl From<Pkcs11Error> for SignerError {
    fn from(e: Pkcs11Error) -> Self {
        // Wrapped, not chained: the message already includes the cause (chaining would print it
        // twice), and the typed error stays reachable through `downcast_ref`.
        SignerError::wrap(e.kind(), e)
    }
}
