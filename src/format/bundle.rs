//! cosign 3's format: a Sigstore bundle v0.3 holding a DSSE envelope over an in-toto Statement
//! v1 whose subject is the image digest (predicate type `https://sigstore.dev/cosign/sign/v1`).
//! The signed bytes are the DSSE pre-authentication encoding (PAE) of the statement. Built as
//! cosign 3.1.1 builds it for a key, and read back as its verifier reads it (protojson for the
//! bundle and statement), refusing anything two readers could read differently.

// The readers (PAE, strict JSON, statement) live in `sigbridge-payload`, shared with
// `sigbridge serve`'s approval page.
use sigbridge_payload::{pae, strict_json};

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};
use sigbridge_signer::{pem, CertificateMaterial, PublicKey};

use super::{Candidate, Dedupe, Envelope, Payload, SignatureFormat};
use crate::payload::ParsedPayload;
use crate::reference::Digest;
use crate::registry::manifest::Descriptor;
use crate::resolve::ResolvedImage;
use crate::tlog::TlogEvidence;

pub use sigbridge_payload::pae::encode as pae;
use sigbridge_payload::statement::read_statement;
pub use sigbridge_payload::statement::{IN_TOTO_PAYLOAD_TYPE, SIGN_PREDICATE_TYPE, STATEMENT_TYPE};

/// The bundle media type cosign 3 writes (blob, layer and `artifactType`).
pub const BUNDLE_MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";
/// The other spelling of v0.3 that sigstore-go accepts.
const BUNDLE_MEDIA_TYPE_ALT: &str = "application/vnd.dev.sigstore.bundle+json;version=0.3";
/// Manifest annotation naming the bundle's content.
pub const CONTENT_ANNOTATION: &str = "dev.sigstore.bundle.content";
/// Manifest annotation naming the statement's predicate type.
pub const PREDICATE_TYPE_ANNOTATION: &str = "dev.sigstore.bundle.predicateType";
/// Manifest annotation with the creation time (RFC 3339, UTC, seconds).
pub const CREATED_ANNOTATION: &str = "org.opencontainers.image.created";

/// The bundle format, with the per-run settings of the statements it builds.
#[derive(Clone, Debug)]
pub struct SigstoreBundle {
    /// `-a` annotations, put into the statement subject's `annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `publicKey.hint`: std-base64 SHA-256 of the signer's PKIX DER key, as cosign writes it.
    hint: String,
}

impl SigstoreBundle {
    /// The format for signatures made with `key`.
    pub fn new(key: &PublicKey, annotations: BTreeMap<String, String>) -> Self {
        Self {
            annotations,
            hint: key_hint(key),
        }
    }

    /// The format for reading bundles only (keyless verification: no key, so no hint to write).
    pub fn reader() -> Self {
        Self {
            annotations: BTreeMap::new(),
            hint: String::new(),
        }
    }

    /// The in-toto statement cosign 3 signs for `image` (protojson field order).
    pub fn statement(&self, image: &ResolvedImage) -> Vec<u8> {
        statement(&image.digest, &self.annotations)
    }
}

/// The in-toto statement cosign 3 signs for the image `digest` with `-a` `annotations`.
pub fn statement(digest: &Digest, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    #[derive(Serialize)]
    struct Subject<'a> {
        digest: BTreeMap<&'static str, &'a str>,
        annotations: &'a BTreeMap<String, String>,
    }
    #[derive(Serialize)]
    struct Statement<'a> {
        #[serde(rename = "_type")]
        kind: &'static str,
        subject: [Subject<'a>; 1],
        #[serde(rename = "predicateType")]
        predicate_type: &'static str,
        predicate: Map<String, Value>,
    }
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: [Subject {
            digest: BTreeMap::from([(digest.algorithm(), digest.hex())]),
            annotations,
        }],
        predicate_type: SIGN_PREDICATE_TYPE,
        predicate: Map::new(),
    };
    // Serialising plain strings and maps cannot fail.
    serde_json::to_vec(&statement).unwrap_or_default()
}

/// The bytes a key signs for the image `digest` in this format: the DSSE PAE of the statement
/// (what `generate --format bundle` prints).
pub fn signed_bytes(digest: &Digest, annotations: &BTreeMap<String, String>) -> Vec<u8> {
    pae::encode(IN_TOTO_PAYLOAD_TYPE, &statement(digest, annotations))
}

/// What the bytes a key signed in this format (a PAE from `generate --format bundle`) claim,
/// read as `verify` reads a stored bundle; `attach` checks the digest before anything else.
pub fn read_signed_bytes(signed: &[u8]) -> Result<ParsedPayload, String> {
    sigbridge_payload::read_signed_bytes(signed).map_err(|e| e.to_string())
}

/// The DSSE payload (the statement) inside signed bytes that are a PAE.
pub fn pae_payload(signed: &[u8]) -> Option<&[u8]> {
    pae::decode(signed).map(|(_, payload)| payload)
}

/// `publicKey.hint` for `key`: std-base64 SHA-256 of its PKIX DER.
pub fn key_hint(key: &PublicKey) -> String {
    STANDARD.encode(Sha256::digest(key.spki_der()))
}

impl SignatureFormat for SigstoreBundle {
    fn payload(&self, image: &ResolvedImage) -> Payload {
        Payload {
            bytes: signed_bytes(&image.digest, &self.annotations),
            identity: image.repository().name(),
        }
    }

    fn wrap(
        &self,
        payload: &Payload,
        signature: &[u8],
        certificate: Option<&CertificateMaterial>,
    ) -> Envelope {
        // `payload` was built by `Self::payload` (or checked by `attach`), so it is a PAE.
        let (payload_type, statement) =
            pae::decode(&payload.bytes).unwrap_or((IN_TOTO_PAYLOAD_TYPE, &payload.bytes));
        let material = match certificate.and_then(certificate_der) {
            Some(der) => json!({"certificate": {"rawBytes": STANDARD.encode(der)}}),
            None => json!({"publicKey": {"hint": self.hint}}),
        };
        let bundle = json!({
            "mediaType": BUNDLE_MEDIA_TYPE,
            "verificationMaterial": material,
            "dsseEnvelope": {
                "payload": STANDARD.encode(statement),
                "payloadType": payload_type,
                "signatures": [{"sig": STANDARD.encode(signature)}],
            },
        });
        let annotations = BTreeMap::from([
            (CONTENT_ANNOTATION.to_string(), "dsse-envelope".to_string()),
            (
                PREDICATE_TYPE_ANNOTATION.to_string(),
                SIGN_PREDICATE_TYPE.to_string(),
            ),
            (CREATED_ANNOTATION.to_string(), created_now()),
        ]);
        Envelope {
            media_type: BUNDLE_MEDIA_TYPE.to_string(),
            blob: bundle.to_string().into_bytes(),
            annotations,
        }
    }

    fn is_duplicate(&self, _stored: &Descriptor, _new: &Envelope, _dedupe: &Dedupe) -> bool {
        // cosign 3 adds a referrer per signing; beyond byte identity nothing is a duplicate.
        false
    }

    fn screen(&self, stored: &Descriptor) -> Result<(), String> {
        if is_v03(&stored.media_type) {
            Ok(())
        } else {
            Err(format!(
                "bundle {} has media type {:?}; only Sigstore bundle v0.3 ({BUNDLE_MEDIA_TYPE}) is read",
                stored.digest, stored.media_type
            ))
        }
    }

    fn open(&self, stored: &Descriptor, blob: Bytes) -> Result<Candidate, String> {
        let what = format!("bundle {}", stored.digest);
        let bundle = strict_json::parse(&blob).map_err(|e| format!("{what}: {e}"))?;
        let media_type = string_at(&bundle, &["mediaType"]).unwrap_or_default();
        if !is_v03(media_type) {
            return Err(format!(
                "{what} declares media type {media_type:?}; only Sigstore bundle v0.3 is read"
            ));
        }
        let Some(envelope) = bundle.get("dsseEnvelope") else {
            return Err(format!(
                "{what} holds no DSSE envelope (cosign verify requires one for image signatures)"
            ));
        };
        let payload_type = string_at(envelope, &["payloadType"]).unwrap_or_default();
        if payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(format!(
                "{what}: DSSE payloadType is {payload_type:?}, not {IN_TOTO_PAYLOAD_TYPE:?}"
            ));
        }
        let statement = decode_b64(envelope.get("payload"), &what, "dsseEnvelope.payload")?;
        let signatures = match envelope.get("signatures") {
            Some(Value::Array(list)) => list,
            _ => &Vec::new(),
        };
        let [signature] = signatures.as_slice() else {
            return Err(format!(
                "{what}: the DSSE envelope holds {} signatures; exactly one is read",
                signatures.len()
            ));
        };
        let signature_text = string_at(signature, &["sig"])
            .unwrap_or_default()
            .to_string();
        let signature = decode_b64(
            signature.get("sig"),
            &what,
            "dsseEnvelope.signatures[0].sig",
        )?;
        let material = bundle.get("verificationMaterial");
        if material
            .and_then(|m| m.get("x509CertificateChain"))
            .is_some()
        {
            return Err(format!(
                "{what}: a v0.3 bundle may not hold x509CertificateChain (sigstore-go refuses it too)"
            ));
        }
        let certificate = match material.and_then(|m| m.get("certificate")) {
            None => None,
            Some(cert) => {
                let der = decode_b64(cert.get("rawBytes"), &what, "certificate.rawBytes")?;
                Some(pem::encode("CERTIFICATE", &der))
            }
        };
        // Accepted only once verified: `crate::verify` checks them (or fails without trust).
        let tlog = match material.and_then(|m| m.get("tlogEntries")) {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) if list.is_empty() => None,
            Some(Value::Array(list)) => Some(TlogEvidence::BundleEntries(list.clone())),
            Some(_) => {
                return Err(format!(
                    "{what}: verificationMaterial.tlogEntries is not a list"
                ))
            }
        };
        Ok(Candidate {
            signed: Bytes::from(pae::encode(payload_type, &statement)),
            signature,
            signature_text,
            certificate,
            tlog,
        })
    }

    fn claims(&self, stored: &Descriptor, candidate: &Candidate) -> Result<ParsedPayload, String> {
        let what = format!("bundle {}", stored.digest);
        let (_, statement) = pae::decode(&candidate.signed)
            .ok_or_else(|| format!("{what}: signed bytes are not a DSSE PAE"))?;
        read_statement(statement).map_err(|e| format!("{what}: statement {e}"))
    }
}

fn is_v03(media_type: &str) -> bool {
    media_type == BUNDLE_MEDIA_TYPE || media_type == BUNDLE_MEDIA_TYPE_ALT
}

fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

fn decode_b64(value: Option<&Value>, what: &str, field: &str) -> Result<Vec<u8>, String> {
    let text = value
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{what}: {field} is missing or not a string"))?;
    STANDARD
        .decode(text)
        .map_err(|e| format!("{what}: {field} is not valid base64: {e}"))
}

/// The DER of a certificate's PEM, or `None` (then the key hint is written instead).
fn certificate_der(cert: &CertificateMaterial) -> Option<Vec<u8>> {
    match pem::decode_first(cert.certificate_pem.as_bytes()) {
        Ok(block) if block.label() == "CERTIFICATE" => Some(block.contents().to_vec()),
        _ => {
            tracing::warn!("the signer's certificate is not PEM; the bundle names the key instead");
            None
        }
    }
}

/// Now as cosign writes `org.opencontainers.image.created`: `2026-11-30T18:21:10Z`.
fn created_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

#[cfg(test)]
mod tests;
