//! Reading transparency-log entries: cosign's legacy Rekor bundle annotation
//! (`dev.sigstore.cosign/bundle`) and a Sigstore bundle's `verificationMaterial.tlogEntries`,
//! both into one [`TlogEntry`].

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::inclusion::InclusionProof;
use super::TlogError;

/// The layer annotation holding a legacy Rekor bundle.
pub const REKOR_BUNDLE_ANNOTATION: &str = "dev.sigstore.cosign/bundle";

/// One log entry with what its signed entry timestamp (SET) is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogEntry {
    /// The entry body as the SET signs it: std base64 of the canonicalized body.
    pub body_b64: String,
    /// The decoded body (Rekor's JSON of the entry kind).
    pub body: Vec<u8>,
    /// When the log integrated it (Unix seconds).
    pub integrated_time: i64,
    /// Its index in the log.
    pub log_index: i64,
    /// The log's id as the SET signs it: lowercase hex of the 32-byte id.
    pub log_id_hex: String,
    /// The log's id, raw.
    pub log_id: Vec<u8>,
    /// The SET: an ASN.1 ECDSA signature by the log key (always in a legacy bundle; a bundle
    /// entry may have an inclusion proof instead).
    pub set: Option<Vec<u8>>,
    /// A bundle entry's inclusion proof with its checkpoint, when it has one.
    pub inclusion_proof: Option<InclusionProof>,
}

impl TlogEntry {
    /// Read a `dev.sigstore.cosign/bundle` annotation. Unknown or duplicate fields are refused
    /// (Go's reader would take them case-insensitively or keep the last; we do not guess).
    pub fn from_rekor_bundle(annotation: &str) -> Result<Self, TlogError> {
        let bad = |reason: String| TlogError::Malformed { reason };
        let parsed: super::RekorBundleView = serde_json::from_str(annotation)
            .map_err(|e| bad(format!("{REKOR_BUNDLE_ANNOTATION} annotation: {e}")))?;
        let p = parsed.payload;
        let log_id = hex::decode(&p.log_id)
            .map_err(|_| bad(format!("Payload.logID {:?} is not hex", p.log_id)))?;
        Ok(Self {
            body: decode(&p.body, "Payload.body")?,
            body_b64: p.body,
            integrated_time: p.integrated_time,
            log_index: p.log_index,
            // Signed as written: cosign puts the annotation's text into the SET payload.
            log_id_hex: p.log_id,
            log_id,
            set: Some(decode(
                &parsed.signed_entry_timestamp,
                "SignedEntryTimestamp",
            )?),
            inclusion_proof: None,
        })
    }

    /// Read one entry of a Sigstore bundle's `tlogEntries` (protojson: int64 as a string or a
    /// number, bytes as std base64). It needs an inclusion promise, an inclusion proof, or
    /// both (as sigstore-go): without either nothing can be checked offline.
    pub fn from_bundle_entry(entry: &Value, index: usize) -> Result<Self, TlogError> {
        let field = |name: &str| format!("tlogEntries[{index}].{name}");
        let bad = |reason: String| TlogError::Malformed { reason };
        let text = |path: &[&str]| -> Result<&str, TlogError> {
            path.iter()
                .try_fold(entry, |v, k| v.get(k))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    bad(format!(
                        "{} is missing or not a string",
                        field(&path.join("."))
                    ))
                })
        };
        let int = |name: &str| -> Result<i64, TlogError> {
            match entry.get(name) {
                Some(Value::String(s)) => s.parse().ok(),
                Some(Value::Number(n)) => n.as_i64(),
                _ => None,
            }
            .ok_or_else(|| bad(format!("{} is missing or not an integer", field(name))))
        };
        let body_b64 = text(&["canonicalizedBody"])?.to_string();
        let log_id = decode(text(&["logId", "keyId"])?, &field("logId.keyId"))?;
        let set = match entry.get("inclusionPromise") {
            None | Some(Value::Null) => None,
            Some(promise) => {
                let path = field("inclusionPromise.signedEntryTimestamp");
                let text = promise
                    .get("signedEntryTimestamp")
                    .and_then(Value::as_str)
                    .ok_or_else(|| bad(format!("{path} is missing or not a string")))?;
                Some(decode(text, &path)?)
            }
        };
        let inclusion_proof = InclusionProof::from_bundle_entry(entry, index)?;
        if set.is_none() && inclusion_proof.is_none() {
            return Err(bad(format!(
                "tlogEntries[{index}] has neither an inclusionPromise nor an inclusionProof: an entry is checked offline by its signed entry timestamp or its inclusion proof"
            )));
        }
        Ok(Self {
            body: decode(&body_b64, &field("canonicalizedBody"))?,
            body_b64,
            integrated_time: int("integratedTime")?,
            log_index: int("logIndex")?,
            log_id_hex: hex::encode(&log_id),
            log_id,
            set,
            inclusion_proof,
        })
    }
}

fn decode(text: &str, field: &str) -> Result<Vec<u8>, TlogError> {
    STANDARD.decode(text).map_err(|e| TlogError::Malformed {
        reason: format!("{field} is not valid base64: {e}"),
    })
}
