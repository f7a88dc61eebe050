//! The air-gapped attach: a payload signed elsewhere, already checked by the caller, wrapped by
//! the format and written by the store like any other signature. Only byte-identical stored
//! signatures count as duplicates (there may be no key to check others with).

use sigbridge_signer::CertificateMaterial;

use crate::error::Result;
use crate::format::{Dedupe, Payload, SignatureFormat};
use crate::resolve::ResolvedImage;
use crate::store::{write_and_settle, AttachOutcome, SignatureStore};

/// Store `signature` over `payload` for `image`, keeping every signature already stored.
pub async fn attach_signature(
    format: &dyn SignatureFormat,
    store: &dyn SignatureStore,
    image: &ResolvedImage,
    payload: &Payload,
    signature: &[u8],
    certificate: Option<&CertificateMaterial>,
) -> Result<AttachOutcome> {
    let envelope = format.wrap(payload, signature, certificate);
    let duplicate = |stored: &_, new: &_| format.is_duplicate(stored, new, &Dedupe::ExactOnly);
    let outcomes = write_and_settle(store, image, &[envelope], &duplicate).await?;
    Ok(outcomes
        .first()
        .copied()
        .unwrap_or(AttachOutcome::AlreadyPresent))
}
