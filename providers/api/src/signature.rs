//! STUB: to be implemented (helper A). Interface is fixed.
use crate::PublicKey;

/// Why a signature or key was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// Placeholder.
    #[error("{0}")]
    Invalid(String),
}

/// Convert what a signer returned into cosign's encoding for `key`.
pub fn normalise_signature(_key: &PublicKey, _raw: &[u8]) -> Result<Vec<u8>, SignatureError> {
    todo!()
}
