//! What every sigbridge signing provider shares: the [`Signer`] trait, the [`PublicKey`]
//! a signature is checked against, and the one place where signatures are normalised to the
//! encoding cosign expects (ASN.1 DER for ECDSA, PKCS#1 v1.5 for RSA).
//!
//! Providers know nothing of registries; the registry client knows nothing of keys.

#![forbid(unsafe_code)]

mod error;
pub mod oid;
pub mod pem;
mod public_key;
mod signature;

pub use error::{error_chain, SignerError, SignerErrorKind};
pub use public_key::{KeyKind, PublicKey, MIN_RSA_BITS};
pub use signature::{classify_unkeyed_signature, normalise_signature, SignatureError};

use async_trait::async_trait;

/// A PEM certificate (and optional chain) that a signer holds for its key, attached to the
/// signature as `dev.sigstore.cosign/certificate` and `dev.sigstore.cosign/chain`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateMaterial {
    /// PEM text of the leaf certificate.
    pub certificate_pem: String,
    /// PEM concatenation of intermediates up to the root, if known.
    pub chain_pem: Option<String>,
}

/// Something that signs cosign payloads with a key it holds.
///
/// `sign` takes a batch so that a remote service can put a whole release under one approval;
/// providers that sign one payload at a time just loop. The returned signatures are in the
/// provider's native encoding (for example raw `r||s` from PKCS#11); the caller normalises them
/// with [`normalise_signature`] and verifies each against [`Signer::public_key`] before anything
/// is attached.
#[async_trait]
pub trait Signer: Send + Sync {
    /// A short description for logs and errors (never contains secrets).
    fn describe(&self) -> String;

    /// The public key that every signature from this signer must verify against.
    async fn public_key(&self) -> Result<PublicKey, SignerError>;

    /// Certificate material to attach next to signatures, if the signer has any.
    async fn certificate(&self) -> Result<Option<CertificateMaterial>, SignerError> {
        Ok(None)
    }

    /// How many payloads to hand to one [`Signer::sign`] call. `None` means all of them at once:
    /// a remote service that waits for a person puts a whole release under one approval.
    /// Local and HSM signers take moderate batches so results stream out as they are attached.
    fn batch_size(&self) -> Option<usize> {
        Some(256)
    }

    /// Sign each payload (the exact bytes; the signer hashes with SHA-256 as cosign does).
    /// Returns one signature per payload, in order.
    async fn sign(&self, payloads: &[Vec<u8>]) -> Result<Vec<Vec<u8>>, SignerError>;
}
