//! cosign's simple-signing payload: built byte-for-byte as `cosign generate` writes it, and
//! parsed as `cosign verify` (Go `encoding/json`) reads it, refusing what another verifier
//! could read differently (`read.rs`, with the Go-semantics scanner in `scan.rs`).
//!
//! Byte identity with cosign (Go `encoding/json`, struct field order, compact, no trailing
//! newline) is what makes a payload made here indistinguishable from one cosign made:
//! `{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":"cosign container image signature"},"optional":null}`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::reference::Digest;

pub(crate) mod fold;
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

/// A payload to be signed: identity, digest and optional string annotations.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimpleSigningPayload {
    docker_reference: String,
    manifest_digest: Digest,
    annotations: Option<BTreeMap<String, String>>,
}

impl SimpleSigningPayload {
    /// A payload for `manifest_digest`, claiming `docker_reference` (cosign: the repository name,
    /// or the identity the user asked for, verbatim). Empty annotations give `"optional":null`,
    /// because cosign only creates the map when at least one `-a` was given.
    pub fn new(
        docker_reference: impl Into<String>,
        manifest_digest: Digest,
        annotations: BTreeMap<String, String>,
    ) -> Self {
        let annotations = if annotations.is_empty() {
            None
        } else {
            Some(annotations)
        };
        Self {
            docker_reference: docker_reference.into(),
            manifest_digest,
            annotations,
        }
    }

    /// The digest this payload claims.
    pub fn manifest_digest(&self) -> &Digest {
        &self.manifest_digest
    }

    /// The exact bytes cosign would produce (Go JSON: compact, struct order, sorted map keys,
    /// HTML-safe escaping, no trailing newline).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(256);
        out.push_str(r#"{"critical":{"identity":{"docker-reference":"#);
        push_go_string(&mut out, &self.docker_reference);
        out.push_str(r#"},"image":{"docker-manifest-digest":"#);
        push_go_string(&mut out, &self.manifest_digest.to_string());
        out.push_str(r#"},"type":"#);
        push_go_string(&mut out, COSIGN_SIGNATURE_TYPE);
        out.push_str(r#"},"optional":"#);
        match &self.annotations {
            None => out.push_str("null"),
            Some(map) => {
                out.push('{');
                // BTreeMap iterates in byte order of the keys, which is how Go sorts map keys.
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_go_string(&mut out, k);
                    out.push(':');
                    push_go_string(&mut out, v);
                }
                out.push('}');
            }
        }
        out.push('}');
        out.into_bytes()
    }
}

/// Append `s` as a JSON string exactly as Go's `encoding/json` (with HTML escaping on, the
/// default for `json.Marshal`) writes it.
fn push_go_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            // Go 1.22+ writes these two short forms; cosign 2.5 is built with a newer Go.
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Parse `-a` flag values as cosign does: each value is split on commas (pflag's StringSlice
/// reads it as one CSV record, so `"a,b"` quoting works), each item on its first `=`; later
/// duplicates win.
pub fn parse_annotations<S: AsRef<str>>(
    values: &[S],
) -> Result<BTreeMap<String, String>, PayloadError> {
    let mut map = BTreeMap::new();
    for value in values {
        let value = value.as_ref();
        for item in split_csv_record(value)? {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| PayloadError::Annotation {
                    input: item.clone(),
                    reason: "expected key=value",
                })?;
            map.insert(k.to_string(), v.to_string());
        }
    }
    Ok(map)
}

/// One CSV record as Go's `encoding/csv` reads it with default settings (no lazy quotes).
fn split_csv_record(line: &str) -> Result<Vec<String>, PayloadError> {
    if line.is_empty() {
        return Ok(Vec::new());
    }
    let err = |reason| PayloadError::Annotation {
        input: line.to_string(),
        reason,
    };
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(err("unterminated quoted field")),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(_) => return Err(err("extraneous \" in field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err(err("bare \" in non-quoted field")),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
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

    const D: &str = "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec";

    #[test]
    fn cosign_vector_without_annotations() {
        let p = SimpleSigningPayload::new(
            "index.docker.io/namespace/image",
            D.parse().unwrap(),
            BTreeMap::new(),
        );
        assert_eq!(
            String::from_utf8(p.to_bytes()).unwrap(),
            r#"{"critical":{"identity":{"docker-reference":"index.docker.io/namespace/image"},"image":{"docker-manifest-digest":"sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec"},"type":"cosign container image signature"},"optional":null}"#
        );
    }

    #[test]
    fn annotations_sorted_and_go_escaped() {
        let a = parse_annotations(&[
            "foo=bar",
            "a=1",
            "html=<a&b>",
            "sep=\u{2028}x\u{2029}",
            "ctl=\u{1}\u{8}",
        ])
        .unwrap();
        let p = SimpleSigningPayload::new("r", D.parse().unwrap(), a);
        let s = String::from_utf8(p.to_bytes()).unwrap();
        assert!(s.ends_with(
            r#""optional":{"a":"1","ctl":"\u0001\b","foo":"bar","html":"\u003ca\u0026b\u003e","sep":"\u2028x\u2029"}}"#
        ), "{s}");
        // Whatever Go escapes, it must still be the same JSON.
        let parsed: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(parsed["optional"]["html"], "<a&b>");
    }

    #[test]
    fn annotation_flag_parsing() {
        let a = parse_annotations(&["a=1,b=2", "c=x=y", r#""d=with,comma",e="#, "a=3"]).unwrap();
        assert_eq!(a["a"], "3");
        assert_eq!(a["b"], "2");
        assert_eq!(a["c"], "x=y");
        assert_eq!(a["d"], "with,comma");
        assert_eq!(a["e"], "");
        assert!(parse_annotations(&["novalue"]).is_err());
        assert!(parse_annotations(&[r#"a"b=1"#]).is_err());
    }

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
