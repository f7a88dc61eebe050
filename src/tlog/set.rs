//! The signed entry timestamp (SET, the "inclusion promise"): the log key's ECDSA signature over
//! the RFC 8785 canonical JSON of `{body, integratedTime, logID, logIndex}` (cosign
//! `VerifySET`, sigstore-go `tlog.VerifySET`), made with the key whose id is `logID` and that
//! was valid at `integratedTime`.

use std::time::{Duration, SystemTime};

use serde_json::json;
use sigbridge_signer::{KeyKind, PublicKey};

use super::{TlogEntry, TlogError};
use crate::trust::TrustedRoot;

/// Check `entry`'s SET against the logs of `root`; the integrated time it vouches for.
pub fn verify_set(entry: &TlogEntry, root: &TrustedRoot) -> Result<SystemTime, TlogError> {
    let seconds = u64::try_from(entry.integrated_time).map_err(|_| TlogError::Malformed {
        reason: format!("integratedTime {} is negative", entry.integrated_time),
    })?;
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(seconds);
    if !root.tlogs.iter().any(|k| k.log_id == entry.log_id) {
        return Err(TlogError::UnknownLog {
            log_id: entry.log_id_hex.clone(),
        });
    }
    let key = root
        .tlog_key(&entry.log_id, at)
        .ok_or_else(|| TlogError::LogKeyNotValid {
            log_id: entry.log_id_hex.clone(),
            integrated_time: entry.integrated_time,
        })?;
    let payload = json!({
        "body": entry.body_b64,
        "integratedTime": entry.integrated_time,
        "logID": entry.log_id_hex,
        "logIndex": entry.log_index,
    });
    let canonical =
        serde_json_canonicalizer::to_vec(&payload).map_err(|e| TlogError::Malformed {
            reason: format!("cannot canonicalise the SET payload: {e}"),
        })?;
    let Some(set) = &entry.set else {
        return Err(TlogError::Malformed {
            reason: "the entry has no signed entry timestamp (inclusionPromise)".into(),
        });
    };
    let log_key = PublicKey::from_spki_der(&key.spki_der).map_err(|e| TlogError::SetInvalid {
        reason: format!("the log key of {} is unusable: {e}", entry.log_id_hex),
    })?;
    // cosign and sigstore-go accept only ECDSA log keys and ASN.1 signatures (VerifyASN1).
    if !matches!(log_key.kind(), KeyKind::EcdsaP256 | KeyKind::EcdsaP384) {
        return Err(TlogError::SetInvalid {
            reason: format!("the log key of {} is not ECDSA", entry.log_id_hex),
        });
    }
    if !is_short_der_sequence(set) {
        return Err(TlogError::SetInvalid {
            reason: "SignedEntryTimestamp is not an ASN.1 ECDSA signature".into(),
        });
    }
    log_key
        .verify(&canonical, set)
        .map_err(|_| TlogError::SetInvalid {
            reason: format!(
                "SignedEntryTimestamp does not verify with the key of log {} over body, integratedTime, logID and logIndex",
                entry.log_id_hex
            ),
        })?;
    Ok(at)
}

/// A DER SEQUENCE with a one-byte length filling the input: every ECDSA P-256/P-384 signature.
pub(super) fn is_short_der_sequence(bytes: &[u8]) -> bool {
    matches!(bytes, [0x30, len, rest @ ..] if *len < 0x80 && usize::from(*len) == rest.len())
}
