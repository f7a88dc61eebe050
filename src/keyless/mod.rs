//! Keyless verification: a signature made with a short-lived Fulcio certificate instead of a
//! long-lived key. Given the certificate material, the signed bytes, the signature, the trusted
//! root and the signing time, [`verify_keyless`] checks, in cosign's order:
//!
//! 1. the path ([`chain`]): the leaf chains to a certificate authority of the trusted root valid
//!    at the signing time, every certificate valid then, code signing allowed;
//! 2. the identity ([`policy`] over [`fulcio`]): SANs, OIDC issuer, GitHub workflow values;
//! 3. the signature with the leaf's key.
//!
//! The signing time is not read here: it is the integrated time of a transparency-log entry
//! verified by the caller (a certificate lives ten minutes; without a verified time anyone
//! holding an expired certificate's key could sign). [`verify_keyless`] cannot be called
//! without one.
//!
//! Crates: rustls-webpki for path validation (an explicit verification time, EKU checks,
//! critical-extension handling, ring's ECDSA/RSA/Ed25519), x509-cert (RustCrypto) to read the
//! Fulcio extensions and validity dates webpki does not expose, `regex` for the
//! `--certificate-*-regexp` flags.

pub mod chain;
mod error;
pub mod fulcio;
pub mod material;
pub mod policy;
pub mod signing_time;
#[cfg(test)]
mod test_ca;

use std::time::SystemTime;

use sigbridge_signer::PublicKey;

pub use error::KeylessError;
pub use fulcio::{CertificateIdentity, Workflow};
pub use material::CertificateInput;
pub use policy::{IdentityPolicy, Matcher};

use crate::trust::TrustedRoot;

/// What a successful keyless check established.
#[derive(Clone, Debug)]
pub struct KeylessVerified {
    /// Who the certificate names.
    pub identity: CertificateIdentity,
    /// The authority it chains to (its URI, for messages).
    pub authority: String,
}

/// Verify a keyless `signature` over `signed` (the exact signed bytes: a simple-signing blob, a
/// DSSE PAE) made with `material`'s leaf, at `signing_time` (the verified integrated time of
/// its transparency-log entry), against `root` and `policy`.
pub fn verify_keyless(
    material: &CertificateInput,
    signed: &[u8],
    signature: &[u8],
    root: &TrustedRoot,
    signing_time: SystemTime,
    policy: &IdentityPolicy,
) -> Result<KeylessVerified, KeylessError> {
    let authority =
        chain::verify_chain(&material.leaf_der, &material.chain_der, root, signing_time)?;
    let identity = CertificateIdentity::of(&material.leaf_der)?;
    policy.check(&identity)?;
    let key = PublicKey::from_certificate_der(&material.leaf_der)
        .map_err(|e| KeylessError::Malformed(format!("the signing certificate's key: {e}")))?;
    key.verify(signed, signature)
        .map_err(|e| KeylessError::Signature(e.to_string()))?;
    Ok(KeylessVerified {
        identity,
        authority: authority.uri.clone(),
    })
}

#[cfg(test)]
mod tests;
