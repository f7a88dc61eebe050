//! The entry body cross-check: the log entry must be about this very signature — its
//! signature, its key or certificate and its payload — or the SET proves nothing about it
//! (cosign `compareSigs`, `comparePublicKey`, `bundleHash`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use sigbridge_signer::pem;

use super::TlogError;

/// What the layer holds, for comparison with the entry body.
#[derive(Clone, Copy, Debug)]
pub struct SignedMaterial<'a> {
    /// The signature as the layer stores it (the annotation's text, or a DSSE `sig`).
    pub signature_b64: &'a str,
    /// DER of the key the signature verified with (SubjectPublicKeyInfo as the verifier
    /// encodes it) or of the layer's certificate, whichever the signature was checked with.
    pub verifier_der: &'a [u8],
    /// The bytes whose SHA-256 the entry records: the payload blob (hashedrekord, rekord) or
    /// the DSSE payload (dsse).
    pub payload: &'a [u8],
}

/// Check a hashedrekord or rekord v0.0.1 body against a legacy layer.
pub fn check_rekord_body(body: &[u8], signed: &SignedMaterial<'_>) -> Result<(), TlogError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| TlogError::Malformed {
        reason: format!("entry body is not JSON: {e}"),
    })?;
    let kind = kind_of(&parsed)?;
    if kind != "hashedrekord" && kind != "rekord" {
        return Err(TlogError::BodyMismatch {
            what: "kind",
            detail: format!("{kind} v0.0.1 is not a signature entry; hashedrekord or rekord v0.0.1 is read for a signature layer"),
        });
    }
    let spec = &parsed["spec"];
    let signature = str_at(spec, &["signature", "content"], "spec.signature.content")?;
    compare_signature(signature, signed.signature_b64)?;
    let key = str_at(
        spec,
        &["signature", "publicKey", "content"],
        "spec.signature.publicKey.content",
    )?;
    compare_verifier(key, signed.verifier_der)?;
    compare_hash(&spec["data"]["hash"], "spec.data.hash", signed.payload)
}

/// Check a dsse v0.0.1 body against the single signature of a bundle's DSSE envelope.
pub fn check_dsse_body(body: &[u8], signed: &SignedMaterial<'_>) -> Result<(), TlogError> {
    let parsed: Value = serde_json::from_slice(body).map_err(|e| TlogError::Malformed {
        reason: format!("entry body is not JSON: {e}"),
    })?;
    let kind = kind_of(&parsed)?;
    if kind != "dsse" {
        return Err(TlogError::BodyMismatch {
            what: "kind",
            detail: format!("{kind} v0.0.1 is not a DSSE entry; dsse v0.0.1 is read for a bundle's DSSE envelope"),
        });
    }
    let spec = &parsed["spec"];
    let signatures = spec["signatures"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let [one] = signatures else {
        return Err(TlogError::BodyMismatch {
            what: "signature",
            detail: format!(
                "the entry holds {} signatures; exactly one is read",
                signatures.len()
            ),
        });
    };
    compare_signature(
        str_at(one, &["signature"], "spec.signatures[0].signature")?,
        signed.signature_b64,
    )?;
    compare_verifier(
        str_at(one, &["verifier"], "spec.signatures[0].verifier")?,
        signed.verifier_der,
    )?;
    compare_hash(&spec["payloadHash"], "spec.payloadHash", signed.payload)
}

fn kind_of(parsed: &Value) -> Result<&str, TlogError> {
    let kind = parsed["kind"].as_str().unwrap_or_default();
    let version = parsed["apiVersion"].as_str().unwrap_or_default();
    if version != "0.0.1" {
        return Err(TlogError::BodyMismatch {
            what: "kind",
            detail: format!("{kind:?} apiVersion {version:?} is not read; only 0.0.1"),
        });
    }
    Ok(kind)
}

fn str_at<'a>(value: &'a Value, path: &[&str], field: &str) -> Result<&'a str, TlogError> {
    path.iter()
        .try_fold(value, |v, k| v.get(k))
        .and_then(Value::as_str)
        .ok_or_else(|| TlogError::Malformed {
            reason: format!("entry body {field} is missing or not a string"),
        })
}

/// cosign compares the body's signature, re-encoded as std base64, with the layer's text.
fn compare_signature(in_body: &str, on_layer: &str) -> Result<(), TlogError> {
    let decoded = STANDARD.decode(in_body).map_err(|e| TlogError::Malformed {
        reason: format!("entry body signature is not valid base64: {e}"),
    })?;
    if STANDARD.encode(decoded) != on_layer {
        return Err(TlogError::BodyMismatch {
            what: "signature",
            detail: "the entry's signature is not the signature being verified".into(),
        });
    }
    Ok(())
}

/// The body holds base64 of a PEM (PUBLIC KEY or CERTIFICATE); its DER must equal ours.
fn compare_verifier(in_body: &str, verifier_der: &[u8]) -> Result<(), TlogError> {
    let pem_text = STANDARD.decode(in_body).map_err(|e| TlogError::Malformed {
        reason: format!("entry body public key is not valid base64: {e}"),
    })?;
    let block = pem::decode_first(&pem_text).map_err(|e| TlogError::Malformed {
        reason: format!("entry body public key is not PEM: {e}"),
    })?;
    if block.contents() != verifier_der {
        return Err(TlogError::BodyMismatch {
            what: "public key",
            detail: format!(
                "the entry's {} is not the key or certificate the signature was verified with",
                block.label()
            ),
        });
    }
    Ok(())
}

fn compare_hash(hash: &Value, field: &str, payload: &[u8]) -> Result<(), TlogError> {
    let algorithm = hash["algorithm"].as_str().unwrap_or_default();
    if algorithm != "sha256" {
        return Err(TlogError::BodyMismatch {
            what: "payload hash",
            detail: format!("{field}.algorithm is {algorithm:?}, not \"sha256\""),
        });
    }
    let value = hash["value"].as_str().unwrap_or_default();
    let actual = hex::encode(Sha256::digest(payload));
    if value != actual {
        return Err(TlogError::BodyMismatch {
            what: "payload hash",
            detail: format!("{field}.value is {value:?}, the payload's sha256 is {actual:?}"),
        });
    }
    Ok(())
}
