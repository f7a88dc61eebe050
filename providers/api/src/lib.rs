//! What every sigbridge signing provider shares: the [`Signer`] trait, the [`PublicKey`]
//! a signature is checked against, and the one place where signatures are normalised to the
//! encoding cosign expects (ASN.1 DER for ECDSA, PKCS#1 v1.5 for RSA).
//!
//! Providers know nothing of registries; the registry client knows nothing of keys.

#![forbid(unsafe_code)]

mod deferred;
mod duration;
mod error;
pub mod oid;
pub mod pem;
mod provider;
mod public_key;
mod signature;

pub use deferred::{Capabilities, SignOutcome, SignRequest, Ticket, Wait};
pub use duration::{format_elapsed, parse_duration};
pub use provider::{LogFormat, OpenContext, OpenError, PasswordSource, Provider, SecretPrompt};

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
///
/// A signer that must wait (for a person's approval) may answer [`SignOutcome::Pending`] with a
/// [`Ticket`] when the request says not to wait; the caller collects it later with
/// [`Signer::collect`] and the same payloads. Signers that are never pending simply sign.
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

    /// What this signer can do besides signing on the spot.
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Sign each payload (the exact bytes; the signer hashes with SHA-256 as cosign does):
    /// one signature per payload, in order, or a ticket when `request` says not to wait.
    async fn sign(
        &self,
        payloads: &[Vec<u8>],
        request: &SignRequest,
    ) -> Result<SignOutcome, SignerError>;

    /// Pick up `ticket` (made by an earlier [`Signer::sign`] of the same `payloads`), waiting
    /// as `wait` says. Signers that are never pending have nothing to collect.
    async fn collect(
        &self,
        ticket: &Ticket,
        payloads: &[Vec<u8>],
        wait: Wait,
    ) -> Result<SignOutcome, SignerError> {
        let _ = (payloads, wait);
        Err(SignerError::new(
            SignerErrorKind::Unsupported,
            format!(
                "{} signs on the spot and has no pending signing job {ticket} to pick up",
                self.describe()
            ),
        ))
    }
}

/// Refuse `signer` where callers other than the key's owner can have it sign and time it (a
/// server, a plugin): what `serve` and the KMS plugin call before signing anything.
pub fn require_safe_for_remote_callers(signer: &dyn Signer) -> Result<(), SignerError> {
    if signer.capabilities().safe_for_remote_callers {
        return Ok(());
    }
    Err(SignerError::new(
        SignerErrorKind::Unsupported,
        format!(
            "{} cannot sign for remote callers: its RSA private-key operation has a timing side channel (RUSTSEC-2023-0071); use an ECDSA or Ed25519 key, or keep the RSA key in an HSM (pkcs11:)",
            signer.describe()
        ),
    ))
}
