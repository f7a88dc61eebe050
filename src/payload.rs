//! cosign's simple-signing payload: built byte-for-byte as `cosign generate` writes it here,
//! and read as `cosign verify` (Go `encoding/json`) reads it by the strict reader in the
//! `sigbridge-payload` crate (shared with `sigbridge serve`'s approval page), re-exported here.
//!
//! Byte identity with cosign (Go `encoding/json`, struct field order, compact, no trailing
//! newline) is what makes a payload made here indistinguishable from one cosign made:
//! `{"critical":{"identity":{"docker-reference":R},"image":{"docker-manifest-digest":D},"type":"cosign container image signature"},"optional":null}`.

use std::collections::BTreeMap;

use crate::reference::Digest;

pub use sigbridge_payload::simple_signing::{
    ParsedPayload, PayloadError, COSIGN_SIGNATURE_TYPE, OPTIONAL_MAX_DEPTH,
};

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
        let parsed: serde_json::Value = serde_json::from_str(&s).unwrap();
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
}
