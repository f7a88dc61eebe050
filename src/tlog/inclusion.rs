//! A bundle entry's inclusion proof (`tlogEntries[i].inclusionProof`): the entry body is leaf
//! `logIndex` of the tree of `treeSize` leaves whose root is `rootHash` (`merkle.rs`), and the
//! log key signed a checkpoint of that very size and root (`checkpoint.rs`). As sigstore-go's
//! `tlog.VerifyInclusion` for Rekor v1, plus the tree size, which Rekor's check leaves out.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::checkpoint::verify_checkpoint;
use super::merkle::{leaf_hash, verify_inclusion};
use super::{TlogEntry, TlogError};
use crate::trust::TrustedRoot;

/// An inclusion proof as a bundle carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry's index in the tree the proof is for (Rekor v1: within its shard, so not
    /// the entry's global `logIndex`).
    pub log_index: u64,
    /// The root the audit path leads to.
    pub root_hash: Vec<u8>,
    /// The tree's size.
    pub tree_size: u64,
    /// The audit path, leaf to root.
    pub hashes: Vec<Vec<u8>>,
    /// The signed note committing to `tree_size` and `root_hash`.
    pub checkpoint: String,
}

impl InclusionProof {
    /// Read `tlogEntries[index].inclusionProof` (protojson: int64 as a string or a number,
    /// bytes as std base64); `None` when absent or null.
    pub fn from_bundle_entry(entry: &Value, index: usize) -> Result<Option<Self>, TlogError> {
        let proof = match entry.get("inclusionProof") {
            None | Some(Value::Null) => return Ok(None),
            Some(p) => p,
        };
        let field = |name: &str| format!("tlogEntries[{index}].inclusionProof.{name}");
        let bad = |reason: String| TlogError::Malformed { reason };
        let uint = |name: &str| -> Result<u64, TlogError> {
            match proof.get(name) {
                // protojson leaves out a zero; only an index can be zero (a tree cannot).
                None if name == "logIndex" => Some(0),
                Some(Value::String(s)) => s.parse().ok(),
                Some(Value::Number(n)) => n.as_u64(),
                _ => None,
            }
            .ok_or_else(|| {
                bad(format!(
                    "{} is missing or not a non-negative integer",
                    field(name)
                ))
            })
        };
        let bytes = |v: Option<&Value>, name: String| -> Result<Vec<u8>, TlogError> {
            let text = v
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{name} is missing or not a string")))?;
            STANDARD
                .decode(text)
                .map_err(|e| bad(format!("{name} is not valid base64: {e}")))
        };
        let hashes = match proof.get("hashes") {
            // protojson leaves out an empty list (a one-leaf tree has no path).
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, h)| bytes(Some(h), field(&format!("hashes[{i}]"))))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad(format!("{} is not a list", field("hashes")))),
        };
        let checkpoint = proof
            .get("checkpoint")
            .and_then(|c| c.get("envelope"))
            .and_then(Value::as_str)
            .ok_or_else(|| {
                bad(format!(
                    "{} is missing: an inclusion proof is checked against the log's signed checkpoint",
                    field("checkpoint.envelope")
                ))
            })?;
        Ok(Some(Self {
            log_index: uint("logIndex")?,
            root_hash: bytes(proof.get("rootHash"), field("rootHash"))?,
            tree_size: uint("treeSize")?,
            hashes,
            checkpoint: checkpoint.to_string(),
        }))
    }
}

/// Check `proof` for `entry`'s body with the key of the entry's log in `root`.
pub fn verify_inclusion_proof(
    entry: &TlogEntry,
    proof: &InclusionProof,
    root: &TrustedRoot,
) -> Result<(), TlogError> {
    // Any key with the log's id: a checkpoint carries no time to check a validity span
    // against (sigstore-go looks the verifier up by id alone too). The integrated time of an
    // entry with only a proof is not trusted, so nothing here vouches for a time.
    let key = root
        .tlogs
        .iter()
        .find(|k| k.log_id == entry.log_id)
        .ok_or_else(|| TlogError::UnknownLog {
            log_id: entry.log_id_hex.clone(),
        })?;
    verify_inclusion(
        proof.log_index,
        proof.tree_size,
        &leaf_hash(&entry.body),
        &proof.hashes,
        &proof.root_hash,
    )
    .map_err(|e| TlogError::InclusionProofInvalid {
        reason: format!(
            "entry body as leaf {} of a tree of {}: {e}",
            proof.log_index, proof.tree_size
        ),
    })?;
    let checkpoint =
        verify_checkpoint(&proof.checkpoint, key).map_err(|e| TlogError::CheckpointInvalid {
            reason: format!("{e} (log {})", entry.log_id_hex),
        })?;
    if checkpoint.size != proof.tree_size {
        return Err(TlogError::CheckpointMismatch {
            what: "tree size",
            checkpoint: checkpoint.size.to_string(),
            proof: proof.tree_size.to_string(),
        });
    }
    if checkpoint.root_hash != proof.root_hash {
        return Err(TlogError::CheckpointMismatch {
            what: "root hash",
            checkpoint: hex::encode(&checkpoint.root_hash),
            proof: hex::encode(&proof.root_hash),
        });
    }
    Ok(())
}
