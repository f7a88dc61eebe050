//! cosign's simple-signing format: the signed bytes are the payload JSON (see
//! [`crate::payload`]), stored verbatim as a blob of type
//! `application/vnd.dev.cosign.simplesigning.v1+json`, with the base64 signature and any
//! certificate in annotations.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use sigbridge_signer::CertificateMaterial;

use super::{Candidate, Dedupe, Envelope, Payload, SignatureFormat};
use crate::payload::{ParsedPayload, SimpleSigningPayload};
use crate::registry::manifest::{media_types, Descriptor};
use crate::resolve::ResolvedImage;
use crate::tlog::{TlogEvidence, REKOR_BUNDLE_ANNOTATION};

/// Annotation holding the base64 signature (cosign keeps its old project prefix for this one).
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// Annotation holding the PEM leaf certificate.
pub const CERTIFICATE_ANNOTATION: &str = "dev.sigstore.cosign/certificate";
/// Annotation holding the PEM chain (intermediates to root).
pub const CHAIN_ANNOTATION: &str = "dev.sigstore.cosign/chain";

/// The simple-signing format, with the per-run settings of the payloads it builds.
#[derive(Clone, Debug, Default)]
pub struct SimpleSigning {
    /// The `docker-reference` to claim instead of the repository name.
    pub identity: Option<String>,
    /// `-a` annotations put into `optional`.
    pub annotations: BTreeMap<String, String>,
}

impl SignatureFormat for SimpleSigning {
    fn payload(&self, image: &ResolvedImage) -> Payload {
        let identity = self
            .identity
            .clone()
            .unwrap_or_else(|| image.repository().name());
        let payload = SimpleSigningPayload::new(
            identity.clone(),
            image.digest.clone(),
            self.annotations.clone(),
        );
        Payload {
            bytes: payload.to_bytes(),
            identity,
        }
    }

    fn wrap(
        &self,
        payload: &Payload,
        signature: &[u8],
        certificate: Option<&CertificateMaterial>,
    ) -> Envelope {
        let mut annotations = BTreeMap::new();
        annotations.insert(
            SIGNATURE_ANNOTATION.to_string(),
            base64::engine::general_purpose::STANDARD.encode(signature),
        );
        if let Some(cert) = certificate {
            annotations.insert(
                CERTIFICATE_ANNOTATION.to_string(),
                cert.certificate_pem.clone(),
            );
            // cosign's `attach` omits the chain key when no chain was given.
            if let Some(chain) = &cert.chain_pem {
                annotations.insert(CHAIN_ANNOTATION.to_string(), chain.clone());
            }
        }
        Envelope {
            media_type: media_types::COSIGN_SIMPLE_SIGNING.to_string(),
            blob: payload.bytes.clone(),
            annotations,
        }
    }

    fn is_duplicate(&self, stored: &Descriptor, new: &Envelope, dedupe: &Dedupe) -> bool {
        let Dedupe::VerifiedWith(key) = dedupe else {
            return false;
        };
        let new_layer = new.descriptor();
        if stored.digest != new_layer.digest || stored.media_type != new_layer.media_type {
            return false;
        }
        let empty = BTreeMap::new();
        let have = stored.annotations.as_ref().unwrap_or(&empty);
        let others_match = new
            .annotations
            .iter()
            .filter(|(k, _)| k.as_str() != SIGNATURE_ANNOTATION)
            .all(|(k, v)| have.get(k) == Some(v));
        if !others_match {
            return false;
        }
        let Some(b64) = have.get(SIGNATURE_ANNOTATION) else {
            return false;
        };
        let Ok(stored_sig) = decode_signature_annotation(b64) else {
            return false;
        };
        // Same digest, so the stored payload is `new.blob`.
        key.verify(&new.blob, &stored_sig).is_ok()
    }

    fn screen(&self, stored: &Descriptor) -> Result<(), String> {
        signature_of(stored).map(|_| ())
    }

    fn open(&self, stored: &Descriptor, blob: Bytes) -> Result<Candidate, String> {
        let (signature, signature_text) = signature_of(stored)?;
        Ok(Candidate {
            signed: blob,
            signature,
            signature_text,
            certificate: stored
                .annotations
                .as_ref()
                .and_then(|a| a.get(CERTIFICATE_ANNOTATION))
                .cloned(),
            tlog: stored
                .annotations
                .as_ref()
                .and_then(|a| a.get(REKOR_BUNDLE_ANNOTATION))
                .map(|text| TlogEvidence::RekorBundle(text.clone())),
        })
    }

    fn claims(&self, stored: &Descriptor, candidate: &Candidate) -> Result<ParsedPayload, String> {
        ParsedPayload::parse(&candidate.signed)
            .map_err(|e| format!("signature layer {}: {e}", stored.digest))
    }
}

/// The signature annotation of a stored layer, decoded, and as stored.
fn signature_of(stored: &Descriptor) -> Result<(Vec<u8>, String), String> {
    let Some(b64) = stored
        .annotations
        .as_ref()
        .and_then(|a| a.get(SIGNATURE_ANNOTATION))
    else {
        return Err(format!(
            "signature layer {} is missing {SIGNATURE_ANNOTATION:?} annotation",
            stored.digest
        ));
    };
    let signature = decode_signature_annotation(b64).map_err(|e| {
        format!(
            "signature layer {}: signature is not valid base64: {e}",
            stored.digest
        )
    })?;
    Ok((signature, b64.clone()))
}

/// Decode a signature annotation as cosign does (`base64.StdEncoding`, which skips `\r`/`\n`).
pub fn decode_signature_annotation(b64: &str) -> std::result::Result<Vec<u8>, base64::DecodeError> {
    let cleaned: String = b64.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    base64::engine::general_purpose::STANDARD.decode(cleaned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_annotation_decoding_is_cosign_lenient() {
        assert_eq!(decode_signature_annotation("aGVsbG8=\n").unwrap(), b"hello");
        assert!(decode_signature_annotation("aGVsbG8").is_err());
        assert!(decode_signature_annotation("aGV-bG8=").is_err());
    }

    #[test]
    fn wrap_keeps_certificate_and_omits_a_missing_chain() {
        let payload = Payload {
            bytes: b"{}".to_vec(),
            identity: "r/x".into(),
        };
        let cert = CertificateMaterial {
            certificate_pem: "CERT".into(),
            chain_pem: None,
        };
        let env = SimpleSigning::default().wrap(&payload, b"hello", Some(&cert));
        assert_eq!(env.media_type, media_types::COSIGN_SIMPLE_SIGNING);
        assert_eq!(env.blob, b"{}");
        assert_eq!(env.annotations[SIGNATURE_ANNOTATION], "aGVsbG8=");
        assert_eq!(env.annotations[CERTIFICATE_ANNOTATION], "CERT");
        assert!(!env.annotations.contains_key(CHAIN_ANNOTATION));
    }

    #[test]
    fn a_wrapped_signature_reads_back_and_a_bare_layer_is_screened_out() {
        let format = SimpleSigning::default();
        let payload = Payload {
            bytes: br#"{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"sha256:00"},"type":"cosign container image signature"},"optional":null}"#.to_vec(),
            identity: "r/x".into(),
        };
        let stored = format.wrap(&payload, b"sig", None).descriptor();
        format.screen(&stored).unwrap();
        let candidate = format
            .open(&stored, Bytes::from(payload.bytes.clone()))
            .unwrap();
        assert_eq!(candidate.signed, payload.bytes);
        assert_eq!(candidate.signature, b"sig");
        assert_eq!(candidate.certificate, None);
        let claims = format.claims(&stored, &candidate).unwrap();
        assert_eq!(claims.manifest_digest, "sha256:00");
        assert_eq!(claims.docker_reference, "r/x");

        let bare = Descriptor::new(media_types::COSIGN_SIMPLE_SIGNING, stored.digest.clone(), 1);
        let err = format.screen(&bare).unwrap_err();
        assert!(
            err.contains("is missing \"dev.cosignproject.cosign/signature\" annotation"),
            "{err}"
        );
    }
}
