//! cosign 3's signed bytes: the DSSE pre-authentication encoding of an in-toto Statement v1
//! whose one subject is the image digest (predicate type `https://sigstore.dev/cosign/sign/v1`),
//! read as cosign 3's verifier (protojson) reads it, refusing anything two readers could read
//! differently (the [`crate::strict_json`] rules).

use serde_json::{json, Value};

use crate::simple_signing::ParsedPayload;
use crate::{pae, strict_json};

/// The DSSE payload type of an in-toto statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// The statement type cosign 3 writes.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a cosign 3 image signature.
pub const SIGN_PREDICATE_TYPE: &str = "https://sigstore.dev/cosign/sign/v1";

/// Why signed bytes or a statement were refused.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    /// The bytes are not a PAE whose lengths add up.
    #[error("not a DSSE pre-authentication encoding (\"DSSEv1 <len> <type> <len> <statement>\")")]
    NotPae,
    /// The PAE wraps something other than an in-toto statement.
    #[error("DSSE payload type is {found:?}, not {IN_TOTO_PAYLOAD_TYPE:?}")]
    PayloadType {
        /// The type the PAE names.
        found: String,
    },
    /// Inside a PAE: the statement was refused.
    #[error("statement {0}")]
    InPae(Box<StatementError>),
    /// Not JSON, or JSON with keys two readers could take for one field.
    #[error("{0}")]
    Json(String),
    /// `_type` is not in-toto Statement v1.
    #[error("_type is {found:?}, not {STATEMENT_TYPE:?}")]
    Type {
        /// The `_type` found (empty when missing).
        found: String,
    },
    /// Not a cosign image signature statement.
    #[error("predicateType is {found:?}, not {SIGN_PREDICATE_TYPE:?}")]
    PredicateType {
        /// The `predicateType` found (empty when missing).
        found: String,
    },
    /// Not exactly one subject.
    #[error("names {count} subjects; exactly one (the image) is read")]
    Subjects {
        /// How many there are.
        count: usize,
    },
    /// The subject's SHA-256 is not a digest.
    #[error("subject sha256 digest {found:?} is not 64 lowercase hex digits")]
    SubjectDigest {
        /// What `digest.sha256` holds (empty when missing).
        found: String,
    },
    /// `annotations` is neither an object nor null.
    #[error("subject annotations are not an object")]
    Annotations,
}

/// What signed bytes (a PAE, what `sigbridge generate --format bundle` prints) claim, read as
/// cosign 3's `verify` reads a stored bundle's statement.
pub fn read_signed_bytes(signed: &[u8]) -> Result<ParsedPayload, StatementError> {
    let (payload_type, statement) = pae::decode(signed).ok_or(StatementError::NotPae)?;
    if payload_type != IN_TOTO_PAYLOAD_TYPE {
        return Err(StatementError::PayloadType {
            found: payload_type.to_string(),
        });
    }
    read_statement(statement).map_err(|e| StatementError::InPae(Box::new(e)))
}

/// What a cosign 3 signing statement claims. `docker_reference` is empty: the statement names
/// no repository (cosign prints the verified reference there).
pub fn read_statement(bytes: &[u8]) -> Result<ParsedPayload, StatementError> {
    let statement = strict_json::parse(bytes).map_err(StatementError::Json)?;
    let kind = string_at(&statement, &["_type"]).unwrap_or_default();
    if kind != STATEMENT_TYPE {
        return Err(StatementError::Type {
            found: kind.to_string(),
        });
    }
    let predicate_type = string_at(&statement, &["predicateType"]).unwrap_or_default();
    // cosign does not check it; an attestation of something else is not an approval to run.
    if predicate_type != SIGN_PREDICATE_TYPE {
        return Err(StatementError::PredicateType {
            found: predicate_type.to_string(),
        });
    }
    let subjects = match statement.get("subject") {
        Some(Value::Array(list)) => list.as_slice(),
        _ => &[],
    };
    let [subject] = subjects else {
        return Err(StatementError::Subjects {
            count: subjects.len(),
        });
    };
    let hex = string_at(subject, &["digest", "sha256"]).unwrap_or_default();
    let manifest_digest = format!("sha256:{hex}");
    if crate::checked_sha256(&manifest_digest).is_none() {
        return Err(StatementError::SubjectDigest {
            found: hex.to_string(),
        });
    }
    let optional = match subject.get("annotations") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(map.clone()),
        Some(_) => return Err(StatementError::Annotations),
    };
    let json = json!({
        "critical": {
            "identity": {"docker-reference": ""},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": predicate_type,
        },
        "optional": optional.clone().map(Value::Object).unwrap_or_else(|| json!({})),
    });
    Ok(ParsedPayload {
        docker_reference: String::new(),
        manifest_digest,
        signature_type: predicate_type.to_string(),
        optional,
        json,
    })
}

fn string_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
}

#[cfg(test)]
mod tests;
