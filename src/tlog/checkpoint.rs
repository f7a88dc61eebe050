//! A log checkpoint (signed tree head) as a signed note (C2SP `signed-note` and
//! `tlog-checkpoint`, the form Rekor v1 writes into `inclusionProof.checkpoint.envelope`):
//!
//! ```text
//! <origin>\n<tree size>\n<base64 root hash>\n[<extension line>\n ...]\n— <name> <base64(key hint || signature)>\n...
//! ```
//!
//! The key hint is the first 4 bytes of SHA-256 of the log key's DER SubjectPublicKeyInfo — the
//! first 4 bytes of the log id (Rekor `getPublicKeyHash`). The signature is over the note text
//! up to and including the newline before the blank line.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use sigbridge_signer::{KeyKind, PublicKey};

use super::set::is_short_der_sequence;
use crate::trust::TransparencyLogKey;

/// The line prefix of a note signature: an em dash and a space.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A checkpoint whose signature verified with the log key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line (Rekor v1: `<host> - <tree id>`).
    pub origin: String,
    /// The tree size the checkpoint commits to.
    pub size: u64,
    /// The root hash of that tree.
    pub root_hash: Vec<u8>,
}

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a signed note holding a checkpoint.
    #[error("checkpoint is malformed: {0}")]
    Malformed(String),
    /// No signature line carries the log key's hint.
    #[error("checkpoint has no signature by the log key (key hint {hint}); its signature lines name {found}")]
    NoLogSignature {
        /// The log key's hint, hex.
        hint: String,
        /// The hints found, hex.
        found: String,
    },
    /// A line is signed by another key (Rekor v1 refuses these too).
    #[error("checkpoint carries a signature by another key (key hint {0}); only the log's own signature is accepted")]
    ForeignSignature(String),
    /// The log key's signature does not verify.
    #[error("checkpoint signature {name:?} does not verify with the log key over the note text")]
    BadSignature {
        /// The signature line's name.
        name: String,
    },
    /// The log key cannot verify checkpoints.
    #[error("the log key cannot verify a checkpoint: {0}")]
    UnusableKey(String),
}

struct NoteSignature {
    name: String,
    hint: [u8; 4],
    signature: Vec<u8>,
}

/// Parse `envelope` and verify it with `key`; the checkpoint it signs.
pub fn verify_checkpoint(
    envelope: &str,
    key: &TransparencyLogKey,
) -> Result<Checkpoint, CheckpointError> {
    let (note, signatures) = split_note(envelope)?;
    let checkpoint = parse_body(note)?;
    let hint: [u8; 4] = key_hint(&key.spki_der);
    let found: Vec<&NoteSignature> = signatures.iter().filter(|s| s.hint == hint).collect();
    if let Some(other) = signatures.iter().find(|s| s.hint != hint) {
        // Rekor v1 (`SignedNote.Verify`, used by cosign and sigstore-go) refuses a note with any
        // line not by the log key; so do we, to agree on every checkpoint.
        if found.is_empty() {
            return Err(CheckpointError::NoLogSignature {
                hint: hex::encode(hint),
                found: signatures
                    .iter()
                    .map(|s| hex::encode(s.hint))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        return Err(CheckpointError::ForeignSignature(hex::encode(other.hint)));
    }
    let log_key = PublicKey::from_spki_der(&key.spki_der)
        .map_err(|e| CheckpointError::UnusableKey(e.to_string()))?;
    // Rekor v1 signs checkpoints with its ECDSA or Ed25519 key (RSA-PSS options aside).
    if matches!(log_key.kind(), KeyKind::Rsa { .. }) {
        return Err(CheckpointError::UnusableKey(
            "RSA log keys are not supported".into(),
        ));
    }
    for sig in found {
        let ecdsa = log_key.kind().ecdsa_coordinate_len().is_some();
        if ecdsa && !is_short_der_sequence(&sig.signature) {
            return Err(CheckpointError::Malformed(format!(
                "signature {:?} is not an ASN.1 ECDSA signature",
                sig.name
            )));
        }
        log_key
            .verify(note.as_bytes(), &sig.signature)
            .map_err(|_| CheckpointError::BadSignature {
                name: sig.name.clone(),
            })?;
    }
    Ok(checkpoint)
}

/// The signed-note key hint of a log key: SHA-256 of its SPKI DER, first 4 bytes.
pub fn key_hint(spki_der: &[u8]) -> [u8; 4] {
    let digest = Sha256::digest(spki_der);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Split a signed note into its text (with its final newline) and its signature lines.
fn split_note(envelope: &str) -> Result<(&str, Vec<NoteSignature>), CheckpointError> {
    let bad = |m: &str| CheckpointError::Malformed(m.to_string());
    let split = envelope
        .rfind("\n\n")
        .ok_or_else(|| bad("no blank line between the note text and its signatures"))?;
    let (note, rest) = (&envelope[..=split], &envelope[split + 2..]);
    let lines = rest
        .strip_suffix('\n')
        .ok_or_else(|| bad("the signature block does not end with a newline"))?;
    let signatures = lines
        .split('\n')
        .map(parse_signature_line)
        .collect::<Result<Vec<_>, _>>()?;
    Ok((note, signatures))
}

fn parse_signature_line(line: &str) -> Result<NoteSignature, CheckpointError> {
    let bad = |m: String| CheckpointError::Malformed(m);
    let rest = line.strip_prefix(SIGNATURE_PREFIX).ok_or_else(|| {
        bad(format!(
            "signature line {line:?} does not start with \"— \""
        ))
    })?;
    let (name, b64) = rest
        .split_once(' ')
        .filter(|(name, b64)| !name.is_empty() && !b64.contains(' '))
        .ok_or_else(|| {
            bad(format!(
                "signature line {line:?} is not \"— <name> <base64>\""
            ))
        })?;
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| bad(format!("signature {name:?} is not base64: {e}")))?;
    let [a, b, c, d, signature @ ..] = bytes.as_slice() else {
        return Err(bad(format!(
            "signature {name:?} is shorter than its key hint"
        )));
    };
    if signature.is_empty() {
        return Err(bad(format!("signature {name:?} is empty")));
    }
    Ok(NoteSignature {
        name: name.to_string(),
        hint: [*a, *b, *c, *d],
        signature: signature.to_vec(),
    })
}

/// The checkpoint lines: origin, decimal size, base64 root hash, then extension lines (read
/// and ignored: Rekor v1 writes `Timestamp: ...` there, unsigned by anything but this note).
fn parse_body(note: &str) -> Result<Checkpoint, CheckpointError> {
    let bad = |m: String| CheckpointError::Malformed(m);
    let text = note.strip_suffix('\n').unwrap_or(note);
    let mut lines = text.split('\n');
    let origin = lines
        .next()
        .filter(|l| !l.is_empty())
        .ok_or_else(|| bad("the origin line is empty".into()))?;
    let size_line = lines
        .next()
        .ok_or_else(|| bad("the tree size line is missing".into()))?;
    // Decimal without sign or leading zeros (C2SP tlog-checkpoint).
    let size = Some(size_line)
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()) && (*s == "0" || !s.starts_with('0')))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| bad(format!("tree size {size_line:?} is not a decimal number")))?;
    let root_line = lines
        .next()
        .ok_or_else(|| bad("the root hash line is missing".into()))?;
    let root_hash = STANDARD
        .decode(root_line)
        .map_err(|e| bad(format!("root hash {root_line:?} is not base64: {e}")))?;
    if root_hash.len() != 32 {
        return Err(bad(format!(
            "root hash is {} bytes, not 32 (SHA-256)",
            root_hash.len()
        )));
    }
    if lines.any(str::is_empty) {
        return Err(bad("an extension line is empty".into()));
    }
    Ok(Checkpoint {
        origin: origin.to_string(),
        size,
        root_hash,
    })
}
