//! The certificate a keyless signature comes with, read from where cosign stores it: a legacy
//! layer's `dev.sigstore.cosign/certificate` (PEM leaf) and `dev.sigstore.cosign/chain` (PEM,
//! intermediates then root) annotations, a Sigstore bundle's `verificationMaterial`
//! (`certificate.rawBytes`, or v0.1/v0.2 `x509CertificateChain.certificates[]`, base64 DER), or
//! `--certificate` / `--certificate-chain` files.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sigbridge_signer::pem;

use super::KeylessError;

/// The most certificates read from one chain (Fulcio's is two; anything long is not Fulcio's).
const MAX_CHAIN: usize = 8;

/// A leaf certificate and the certificates offered with it, all DER.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateInput {
    /// The signing (leaf) certificate.
    pub leaf_der: Vec<u8>,
    /// Certificates offered with it (intermediates, perhaps a root). They may help build the
    /// path but are never trusted by themselves: anchors come from the trusted root only.
    pub chain_der: Vec<Vec<u8>>,
}

impl CertificateInput {
    /// From a PEM leaf (the first CERTIFICATE block) and an optional PEM chain.
    pub fn from_pem(leaf_pem: &str, chain_pem: Option<&str>) -> Result<Self, KeylessError> {
        let leaf = certificates_in(leaf_pem, "the leaf certificate")?;
        let Some(leaf_der) = leaf.into_iter().next() else {
            return Err(KeylessError::Malformed(
                "no CERTIFICATE PEM block where the leaf certificate should be".into(),
            ));
        };
        let chain_der = match chain_pem {
            Some(text) => certificates_in(text, "the certificate chain")?,
            None => Vec::new(),
        };
        Ok(Self {
            leaf_der,
            chain_der,
        })
    }

    /// Every CERTIFICATE of a PEM chain file (cosign's `--certificate-chain`), DER, in order.
    pub fn chain_from_pem(text: &str) -> Result<Vec<Vec<u8>>, KeylessError> {
        let certs = certificates_in(text, "the certificate chain")?;
        if certs.is_empty() {
            return Err(KeylessError::Malformed(
                "no CERTIFICATE PEM block in the certificate chain".into(),
            ));
        }
        Ok(certs)
    }

    /// From a Sigstore bundle's `verificationMaterial` JSON object: `certificate.rawBytes`
    /// (v0.3) or `x509CertificateChain.certificates[].rawBytes` (v0.1/v0.2; the leaf first).
    /// `None` when it holds no certificate (a key-based bundle).
    pub fn from_verification_material(
        material: &serde_json::Value,
    ) -> Result<Option<Self>, KeylessError> {
        let raw = |v: &serde_json::Value, what: &str| -> Result<Vec<u8>, KeylessError> {
            let text = v
                .get("rawBytes")
                .and_then(|r| r.as_str())
                .ok_or_else(|| KeylessError::Malformed(format!("{what} has no rawBytes string")))?;
            STANDARD.decode(text).map_err(|e| {
                KeylessError::Malformed(format!("{what}: rawBytes is not base64: {e}"))
            })
        };
        if let Some(cert) = material.get("certificate") {
            return Ok(Some(Self {
                leaf_der: raw(cert, "verificationMaterial.certificate")?,
                chain_der: Vec::new(),
            }));
        }
        let Some(chain) = material.get("x509CertificateChain") else {
            return Ok(None);
        };
        let certs = chain
            .get("certificates")
            .and_then(|c| c.as_array())
            .ok_or_else(|| {
                KeylessError::Malformed(
                    "verificationMaterial.x509CertificateChain has no certificates array".into(),
                )
            })?;
        if certs.is_empty() || certs.len() > MAX_CHAIN {
            return Err(KeylessError::Malformed(format!(
                "verificationMaterial.x509CertificateChain has {} certificates (1 to {MAX_CHAIN} expected)",
                certs.len()
            )));
        }
        let mut der = certs
            .iter()
            .map(|c| {
                raw(
                    c,
                    "verificationMaterial.x509CertificateChain.certificates[]",
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let leaf_der = der.remove(0);
        Ok(Some(Self {
            leaf_der,
            chain_der: der,
        }))
    }
}

/// Every CERTIFICATE block of `text`, DER, at most [`MAX_CHAIN`].
fn certificates_in(text: &str, what: &str) -> Result<Vec<Vec<u8>>, KeylessError> {
    let blocks = pem::decode_all(text.as_bytes())
        .map_err(|e| KeylessError::Malformed(format!("{what} is not PEM: {e}")))?;
    let certs: Vec<Vec<u8>> = blocks
        .iter()
        .filter(|b| b.label() == "CERTIFICATE")
        .map(|b| b.contents().to_vec())
        .collect();
    if certs.len() > MAX_CHAIN {
        return Err(KeylessError::Malformed(format!(
            "{what} holds {} certificates, more than {MAX_CHAIN}",
            certs.len()
        )));
    }
    Ok(certs)
}
