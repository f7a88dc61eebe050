//! cosign's simple-signing payload read as `cosign verify` (Go `encoding/json`) reads it,
//! refusing what another verifier could read differently (`read.rs`, with the Go-semantics
//! scanner in `scan.rs`).

use std::collections::BTreeMap;

use serde_json::Value;

mod read;
mod scan;

pub use read::OPTIONAL_MAX_DEPTH;

/// The `critical.type` cosign writes.
pub const COSIGN_SIGNATURE_TYPE: &str = "cosign container image signature";

/// Why a payload or annotation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The bytes are not JSON as Go's `encoding/json` reads it (cosign refuses them too).
    #[error("payload is not valid JSON at byte {offset}: {problem}")]
    Syntax {
        /// Where the problem is.
        offset: usize,
        /// What is wrong there.
        problem: &'static str,
    },
    /// Nested deeper than Go's decoder allows (cosign refuses it too).
    #[error("payload nests more than {limit} arrays and objects (cosign refuses it too)")]
    TooDeep {
        /// Go's `maxNestingDepth`.
        limit: usize,
    },
    /// Two keys of one object name the same field: readers differ on which one counts.
    #[error("payload keys {first} and {second} in {path} name the same field (cosign reads the last one, matching case-insensitively; other verifiers read the first, the exact-case one, or refuse); refusing an ambiguous payload: re-create it with `sigbridge generate` or `cosign generate`")]
    DuplicateKey {
        /// The object holding them (`payload` is the top level).
        path: &'static str,
        /// The first spelling, quoted and escaped.
        first: String,
        /// The repeated spelling, quoted and escaped.
        second: String,
    },
    /// A key names a field only through non-ASCII case folding (Go versions disagree).
    #[error("payload key {key} in {path} matches {field:?} only through Unicode case folding, which Go versions read differently; refusing an ambiguous payload: spell the key {field:?}")]
    FoldedKey {
        /// The object holding it.
        path: &'static str,
        /// The key, quoted and escaped.
        key: String,
        /// The field it folds onto.
        field: &'static str,
    },
    /// A number in `optional` does not fit a float64 (cosign's decoder fails on it).
    #[error("payload {path} holds the number {number}, which is out of range for a float64 (cosign refuses it too)")]
    NumberOutOfRange {
        /// Where, e.g. `optional."key"`.
        path: String,
        /// The number as written (shortened if long).
        number: String,
    },
    /// A value in `optional` nests deeper than sigbridge builds.
    #[error("payload {path} nests more than {OPTIONAL_MAX_DEPTH} levels; sigbridge refuses annotation values this deep (see docs/security.md, Limits)")]
    OptionalTooDeep {
        /// Where, e.g. `optional."key"`.
        path: String,
    },
    /// A required field is missing or has the wrong JSON type.
    #[error("payload field {field} is {problem}")]
    Field {
        /// Dotted path of the field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// An `-a key=value` annotation could not be parsed.
    #[error("unable to parse annotation {input:?}: {reason}")]
    Annotation {
        /// The flag value.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A payload as read back from a registry, as cosign reads it, except that anything two
/// verifiers could read differently is refused (see [`ParsedPayload::parse`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedPayload {
    /// `critical.identity.docker-reference` (may be empty).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`, as written.
    pub manifest_digest: String,
    /// `critical.type`, as written.
    pub signature_type: String,
    /// `optional`, or `None` when null or absent.
    pub optional: Option<serde_json::Map<String, Value>>,
    /// The payload as cosign re-marshals it for output: canonical key spelling, unknown
    /// fields dropped, `optional` keys sorted.
    pub json: Value,
}

impl ParsedPayload {
    /// Parse payload bytes as Go's `json.Unmarshal` into cosign's struct reads them: keys
    /// match fields exactly, else ASCII case-insensitively; unknown fields are ignored (any
    /// depth up to Go's 10000, any number); invalid UTF-8 in strings reads as U+FFFD.
    ///
    /// Refused, because cosign, containers/image and an exact-case reader could disagree on
    /// what they mean: two keys naming the same field at a level that is read (root,
    /// `critical`, `identity`, `image`; exact duplicates in `optional`), and a key that reaches
    /// a field only through non-ASCII folding (`doc\u212aer-…`). Also refused, as cosign
    /// refuses them: bad JSON, trailing data, nesting over 10000, wrong types, numbers in
    /// `optional` out of float64 range.
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        read::parse(bytes)
    }

    /// cosign's `correctAnnotations`: every wanted key must be present with an equal **string**
    /// value (a JSON number never equals a flag's string).
    pub fn has_annotations(&self, wanted: &BTreeMap<String, String>) -> bool {
        if wanted.is_empty() {
            return true;
        }
        let Some(optional) = &self.optional else {
            return false;
        };
        wanted
            .iter()
            .all(|(k, v)| matches!(optional.get(k), Some(Value::String(s)) if s == v))
    }
}

/// `text` quoted and escaped for an error message, shortened when long (keys and numbers in a
/// refused payload can be arbitrarily large).
fn shown(text: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut out = String::from("\"");
    for c in text.chars().take(MAX_CHARS) {
        out.extend(c.escape_default());
    }
    if text.chars().nth(MAX_CHARS).is_some() {
        out.push_str("...");
    }
    out.push('"');
    out
}

#[cfg(test)]
mod semantics_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_parse() {
        let old = br#"{"Critical":{"Identity":{"docker-reference":""},"Image":{"Docker-manifest-digest":"sha256:x"},"Type":"cosign container signature"},"Optional":{"n":1,"s":"v"},"extra":true}"#;
        let p = ParsedPayload::parse(old).unwrap();
        assert_eq!(p.manifest_digest, "sha256:x");
        assert_eq!(p.signature_type, "cosign container signature");
        let want = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(p.has_annotations(&want("s", "v")));
        assert!(!p.has_annotations(&want("n", "1")));
        assert!(!p.has_annotations(&want("s", "w")));
        assert!(ParsedPayload::parse(b"[]").is_err());
        assert!(
            ParsedPayload::parse(br#"{"critical":{"image":{"docker-manifest-digest":5}}}"#)
                .is_err()
        );
        let null_opt = ParsedPayload::parse(br#"{"critical":{},"optional":null}"#).unwrap();
        assert!(!null_opt.has_annotations(&want("a", "b")));
        assert!(null_opt.has_annotations(&BTreeMap::new()));
    }
}
