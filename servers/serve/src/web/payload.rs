//! What an approver needs to know about each file to be signed: the image it is for
//! (`repo@sha256:…`), its annotations and its SHA-256. Reads cosign simple-signing payloads
//! (`critical.identity.docker-reference`, `critical.image.docker-manifest-digest`, `optional`)
//! and DSSE pre-authentication encodings of in-toto statements (`subject[].name` and
//! `digest.sha256`, `predicateType`). Anything else is shown by name and digest only.

use sha2::{Digest as _, Sha256};

/// One file that will be signed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Described {
    /// Its name in the upload.
    pub(crate) file: String,
    /// SHA-256, hex.
    pub(crate) sha256: String,
    /// The kind of payload, for the page.
    pub(crate) kind: &'static str,
    /// `repo@sha256:…` of each image it claims.
    pub(crate) images: Vec<String>,
    /// `key`/`value` annotations (simple signing `optional`) or the in-toto predicate type.
    pub(crate) annotations: Vec<(String, String)>,
}

/// Describe `bytes`, uploaded as `file`.
pub(crate) fn describe(file: &str, bytes: &[u8]) -> Described {
    let mut d = Described {
        file: file.to_string(),
        sha256: hex::encode(Sha256::digest(bytes)),
        kind: "unrecognised payload",
        images: Vec::new(),
        annotations: Vec::new(),
    };
    if let Some((payload_type, body)) = pae(bytes) {
        d.kind = "DSSE statement";
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) {
            for s in v["subject"].as_array().into_iter().flatten() {
                let name = s["name"].as_str().unwrap_or("?");
                let digest = s["digest"]["sha256"].as_str().unwrap_or("?");
                d.images.push(format!("{name}@sha256:{digest}"));
            }
            if let Some(t) = v["predicateType"].as_str() {
                d.annotations.push(("predicateType".into(), t.to_string()));
            }
        }
        d.annotations
            .push(("payloadType".into(), payload_type.to_string()));
        return d;
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let critical = &v["critical"];
        if let (Some(repo), Some(digest)) = (
            critical["identity"]["docker-reference"].as_str(),
            critical["image"]["docker-manifest-digest"].as_str(),
        ) {
            d.kind = "cosign simple signing";
            d.images.push(format!("{repo}@{digest}"));
        }
        if let Some(optional) = v["optional"].as_object() {
            for (k, value) in optional {
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                d.annotations.push((k.clone(), text));
            }
        }
    }
    d
}

/// `(type, body)` of `"DSSEv1" SP len SP type SP len SP body`.
fn pae(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let rest = bytes.strip_prefix(b"DSSEv1 ")?;
    let (type_len, rest) = length(rest)?;
    let payload_type = std::str::from_utf8(rest.get(..type_len)?).ok()?;
    let rest = rest.get(type_len..)?.strip_prefix(b" ")?;
    let (body_len, rest) = length(rest)?;
    (rest.len() == body_len).then_some((payload_type, rest))
}

fn length(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let space = bytes.iter().position(|b| *b == b' ')?;
    let n = std::str::from_utf8(&bytes[..space]).ok()?.parse().ok()?;
    Some((n, &bytes[space + 1..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simple_signing_payload_names_its_image_and_annotations() {
        let p = br#"{"critical":{"identity":{"docker-reference":"reg/app"},"image":{"docker-manifest-digest":"sha256:ab"},"type":"cosign container image signature"},"optional":{"commit":"<script>","n":3}}"#;
        let d = describe("payloads/001.json", p);
        assert_eq!(d.images, vec!["reg/app@sha256:ab".to_string()]);
        assert_eq!(
            d.annotations,
            vec![
                ("commit".into(), "<script>".into()),
                ("n".into(), "3".into())
            ]
        );
        assert_eq!(d.sha256, hex::encode(Sha256::digest(p)));
    }

    #[test]
    fn a_dsse_statement_names_its_subjects() {
        let body = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"reg/app","digest":{"sha256":"cd"}}],"predicateType":"https://slsa.dev/provenance/v1"}"#;
        let t = "application/vnd.in-toto+json";
        let mut pae_bytes = format!("DSSEv1 {} {t} {} ", t.len(), body.len()).into_bytes();
        pae_bytes.extend_from_slice(body);
        let d = describe("payload.pae", &pae_bytes);
        assert_eq!(d.images, vec!["reg/app@sha256:cd".to_string()]);
        assert_eq!(d.kind, "DSSE statement");
        assert_eq!(describe("x.json", b"garbage").kind, "unrecognised payload");
    }
}
