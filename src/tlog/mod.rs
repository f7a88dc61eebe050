//! Transparency-log (Rekor) entries checked offline: an entry is accepted when its signed entry
//! timestamp verifies with a trusted log key valid at its integrated time (`set.rs`) and its
//! body is about the very signature, key and payload being verified (`body.rs`). Entries come
//! from cosign's legacy `dev.sigstore.cosign/bundle` annotation or a Sigstore bundle's
//! `tlogEntries` (`entry.rs`). A bundle entry's inclusion proof, when present, must lead to
//! the root of a checkpoint the log key signed (`inclusion.rs` with `merkle.rs` and
//! `checkpoint.rs`); its integrated time is trusted only with a verified SET, as sigstore-go.
//! Nothing here contacts a log.

mod body;
mod checkpoint;
mod entry;
mod inclusion;
mod merkle;
mod policy;
mod set;

use std::time::SystemTime;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use body::{check_dsse_body, check_rekord_body, SignedMaterial};
pub use checkpoint::{key_hint, verify_checkpoint, Checkpoint, CheckpointError};
pub use entry::{TlogEntry, REKOR_BUNDLE_ANNOTATION};
pub use inclusion::{verify_inclusion_proof, InclusionProof};
pub use merkle::{leaf_hash, node_hash, InclusionError};
pub use policy::TlogPolicy;
pub use set::verify_set;

use crate::trust::TrustedRoot;

/// Why keyless verification refuses an entry verified by its inclusion proof alone.
pub const NO_SIGNED_TIME: &str = "the transparency log entry was verified by its inclusion proof only: without an inclusion promise (SET) its integratedTime is not signed, and keyless verification needs a signed integration time to check the certificate at";

/// Why a log entry was refused; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// The entry or its body cannot be read.
    #[error("transparency log entry is malformed: {reason}")]
    Malformed {
        /// What is wrong, naming the field.
        reason: String,
    },
    /// No trusted log has the entry's id.
    #[error("transparency log entry names log {log_id}, which no trusted log key has (check --trusted-root or SIGSTORE_REKOR_PUBLIC_KEY)")]
    UnknownLog {
        /// The log id, hex.
        log_id: String,
    },
    /// The log's key was not valid when the entry was integrated.
    #[error("transparency log key {log_id} was not valid at the entry's integratedTime {integrated_time} (outside its validFor)")]
    LogKeyNotValid {
        /// The log id, hex.
        log_id: String,
        /// The entry's integrated time (Unix seconds).
        integrated_time: i64,
    },
    /// The SET does not verify.
    #[error("transparency log entry's signed entry timestamp is invalid: {reason}")]
    SetInvalid {
        /// What failed.
        reason: String,
    },
    /// A bundle entry's inclusion proof does not lead to its root.
    #[error("transparency log entry's inclusion proof does not verify: {reason}")]
    InclusionProofInvalid {
        /// What failed.
        reason: String,
    },
    /// A bundle entry's checkpoint is malformed or not signed by the log key.
    #[error("transparency log entry's checkpoint is invalid: {reason}")]
    CheckpointInvalid {
        /// What failed.
        reason: String,
    },
    /// The checkpoint commits to another tree than the inclusion proof.
    #[error("transparency log entry's checkpoint {what} {checkpoint} is not the inclusion proof's {proof}")]
    CheckpointMismatch {
        /// Which: tree size or root hash.
        what: &'static str,
        /// The checkpoint's value.
        checkpoint: String,
        /// The proof's value.
        proof: String,
    },
    /// The body is about something else.
    #[error("transparency log entry body does not match the {what}: {detail}")]
    BodyMismatch {
        /// Which part: signature, public key, payload hash, kind.
        what: &'static str,
        /// The details.
        detail: String,
    },
}

/// Log material found with a signature, as stored (read and checked only when asked, so
/// `--insecure-ignore-tlog` ignores even a malformed one, as cosign does).
#[derive(Clone, Debug, PartialEq)]
pub enum TlogEvidence {
    /// The `dev.sigstore.cosign/bundle` annotation's text.
    RekorBundle(String),
    /// A Sigstore bundle's `verificationMaterial.tlogEntries`.
    BundleEntries(Vec<Value>),
}

/// What a verified entry vouches for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTlog {
    /// When the log integrated the signature, as a verified SET vouches for it (a legacy
    /// bundle; the earliest of a Sigstore bundle's entries with a promise): the signing time
    /// keyless checks use. `None` when only inclusion proofs verified: their integrated time
    /// is not signed, so it is not trusted (sigstore-go `VerifyTlogEntry`).
    pub integrated_time: Option<SystemTime>,
    /// The legacy Rekor bundle, for output as cosign prints it (`optional.Bundle`).
    pub rekor_bundle: Option<RekorBundleView>,
}

/// cosign's `RekorBundle` (`pkg/cosign/bundle/rekor.go`): read from the legacy annotation
/// (unknown fields refused) and printed as cosign marshals it (field order as Go's struct).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RekorBundleView {
    #[serde(rename = "SignedEntryTimestamp")]
    signed_entry_timestamp: String,
    #[serde(rename = "Payload")]
    payload: RekorPayloadView,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RekorPayloadView {
    body: String,
    #[serde(rename = "integratedTime")]
    integrated_time: i64,
    #[serde(rename = "logIndex")]
    log_index: i64,
    #[serde(rename = "logID")]
    log_id: String,
}

impl RekorBundleView {
    fn of(entry: &TlogEntry) -> Self {
        Self {
            // A legacy bundle always has its SET (`from_rekor_bundle`).
            signed_entry_timestamp: entry
                .set
                .as_deref()
                .map(|s| STANDARD.encode(s))
                .unwrap_or_default(),
            payload: RekorPayloadView {
                body: entry.body_b64.clone(),
                integrated_time: entry.integrated_time,
                log_index: entry.log_index,
                log_id: entry.log_id_hex.clone(),
            },
        }
    }
}

/// Check log `evidence` for a signature: each entry's SET with `root`'s log keys and each
/// body against `signed` (hashedrekord/rekord for a legacy layer, dsse for a bundle).
pub fn verify_evidence(
    evidence: &TlogEvidence,
    signed: &SignedMaterial<'_>,
    root: &TrustedRoot,
) -> Result<VerifiedTlog, TlogError> {
    match evidence {
        TlogEvidence::RekorBundle(text) => {
            let entry = TlogEntry::from_rekor_bundle(text)?;
            // Lowercase only: cosign signs the text as written, sigstore-go re-encodes it.
            if entry.log_id_hex != hex::encode(&entry.log_id) {
                return Err(TlogError::Malformed {
                    reason: format!("Payload.logID {:?} is not lowercase hex", entry.log_id_hex),
                });
            }
            check_rekord_body(&entry.body, signed)?;
            let integrated_time = verify_set(&entry, root)?;
            Ok(VerifiedTlog {
                integrated_time: Some(integrated_time),
                rekor_bundle: Some(RekorBundleView::of(&entry)),
            })
        }
        TlogEvidence::BundleEntries(entries) => {
            if entries.is_empty() {
                return Err(TlogError::Malformed {
                    reason: "tlogEntries is empty".into(),
                });
            }
            let mut earliest: Option<SystemTime> = None;
            for (i, raw) in entries.iter().enumerate() {
                // Each entry has a promise, a proof or both (`from_bundle_entry`); every one
                // present must verify.
                let entry = TlogEntry::from_bundle_entry(raw, i)?;
                check_dsse_body(&entry.body, signed)?;
                if entry.set.is_some() {
                    let at = verify_set(&entry, root)?;
                    earliest = Some(earliest.map_or(at, |e| e.min(at)));
                }
                if let Some(proof) = &entry.inclusion_proof {
                    verify_inclusion_proof(&entry, proof, root)?;
                }
            }
            Ok(VerifiedTlog {
                integrated_time: earliest,
                rekor_bundle: None,
            })
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_inclusion;
