use sigbridge_signer::{SignatureError, SignerError, SignerErrorKind};

/// Why a local key file could not be used. `origin` is the file path (or whatever name the
/// caller gave); messages never contain key material or passwords.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalKeyError {
    /// The file could not be read.
    #[error("cannot read key file {origin}: {error}")]
    Io {
        /// The file.
        origin: String,
        /// The I/O error (in the message already, so not chained as a source).
        error: std::io::Error,
    },
    /// The file is far larger than any key file.
    #[error("{origin} is larger than {limit} bytes: that is not a key file")]
    TooLarge {
        /// The file.
        origin: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The PEM text is missing or damaged.
    #[error("{origin} is not a usable PEM key file: {error}")]
    Pem {
        /// The file.
        origin: String,
        /// What is wrong with the PEM.
        error: sigbridge_signer::pem::PemError,
    },
    /// A public key or certificate was given where a private key is needed.
    #[error("{origin} holds a {label}, not a private key: signing needs the private key file (such as cosign.key)")]
    NotAPrivateKey {
        /// The file.
        origin: String,
        /// The PEM label found.
        label: String,
    },
    /// A PEM label for a key format that is not supported.
    #[error("{origin}: PEM \"{label}\" is not supported{hint}")]
    UnsupportedFormat {
        /// The file.
        origin: String,
        /// The PEM label found.
        label: String,
        /// Advice on converting the key (may be empty).
        hint: &'static str,
    },
    /// The cosign encrypted-key envelope is damaged (bad JSON, bad base64, bad lengths).
    #[error("{origin} is not a valid cosign encrypted key: {reason}")]
    MalformedEnvelope {
        /// The file.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The envelope asks for an algorithm or parameters cosign neither writes nor accepts.
    #[error("{origin} uses unsupported encryption: {reason}")]
    UnsupportedEncryption {
        /// The file.
        origin: String,
        /// What is unsupported.
        reason: String,
    },
    /// The key is encrypted and no password was given.
    #[error("{origin} is encrypted and no password was given: set COSIGN_PASSWORD (set but empty means an empty password)")]
    PasswordRequired {
        /// The file.
        origin: String,
    },
    /// Decryption failed: the password is wrong (or the ciphertext was altered).
    #[error("wrong password for {origin}: the key could not be decrypted (if the password is right, the file is damaged)")]
    WrongPassword {
        /// The file.
        origin: String,
    },
    /// The private key bytes are not a valid key of the format the label says.
    #[error("{origin}: malformed private key: {reason}")]
    MalformedKey {
        /// The file.
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// A valid key of a type or size cosign-compatible signing does not use.
    #[error("{origin}: unsupported key: {what} (sigbridge signs with ECDSA P-256 or P-384, RSA of 2048 bits or more, or Ed25519)")]
    UnsupportedKey {
        /// The file.
        origin: String,
        /// The key type found.
        what: String,
    },
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
    /// Encrypting a key for writing failed.
    #[error("encrypting the key failed: {reason}")]
    Encryption {
        /// What failed.
        reason: String,
    },
    /// Signing itself failed.
    #[error("signing with {origin} failed: {reason}")]
    Signing {
        /// The file.
        origin: String,
        /// What failed.
        reason: String,
    },
    /// The signature just made does not verify with the key's own public key.
    #[error("signing with {origin} produced a signature that does not verify: {error}")]
    SelfCheck {
        /// The file.
        origin: String,
        /// Why verification failed.
        error: SignatureError,
    },
}

impl LocalKeyError {
    /// The kind of failure, as the CLI maps it to an exit code.
    pub fn kind(&self) -> SignerErrorKind {
        match self {
            Self::Io { .. }
            | Self::TooLarge { .. }
            | Self::Pem { .. }
            | Self::NotAPrivateKey { .. }
            | Self::MalformedEnvelope { .. }
            | Self::MalformedKey { .. } => SignerErrorKind::InvalidKey,
            Self::UnsupportedFormat { .. }
            | Self::UnsupportedEncryption { .. }
            | Self::UnsupportedKey { .. } => SignerErrorKind::Unsupported,
            Self::PasswordRequired { .. } | Self::WrongPassword { .. } => {
                SignerErrorKind::Credentials
            }
            Self::Random(_) | Self::Encryption { .. } | Self::Signing { .. } => {
                SignerErrorKind::Unavailable
            }
            Self::SelfCheck { .. } => SignerErrorKind::BadSignature,
        }
    }
}

impl From<LocalKeyError> for SignerError {
    fn from(err: LocalKeyError) -> Self {
        // Wrapped, not chained: the message already carries every detail, and the typed error
        // stays reachable for callers that need it.
        SignerError::wrap(err.kind(), err)
    }
}
